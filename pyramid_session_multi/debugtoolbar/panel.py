"""The SessionMulti panel of pyramid_debugtoolbar."""

from typing import Any

from pyramid.request import Request
from zope.interface import implementer

from ..budget import COOKIE_HEADER_LIMIT, CookieBudget, header_total
from ..checks import Finding, run_checks
from ..config import get_manager_config
from ..cookies import COOKIE_ATTRIBUTES
from ..describe import (
    describe_breakers,
    describe_lifetime,
    describe_namespaces,
    describe_store_breakers,
)
from ..interfaces import ISessionMultiObserver
from . import capture

try:
    from pyramid_debugtoolbar.panels import DebugPanel
except ImportError:  # pragma: no cover - the toolbar is an optional extra
    DebugPanel = object


@implementer(ISessionMultiObserver)
class NamespaceRecorder:
    """What the manager tells an observer, put as the panel records it.

    A subclass implements :meth:`namespace_loaded`, :meth:`mark` (what
    happened to a namespace, as the panel labels it) and :meth:`refused`;
    the panel is one, so that observing a request makes nothing more than
    the panel itself.
    """

    def namespace_loaded(self, namespace: str, session: Any) -> None:
        raise NotImplementedError

    def mark(self, namespace: str, what: str) -> None:
        raise NotImplementedError

    def refused(self, namespace: str, size: int, limit: int) -> None:
        raise NotImplementedError

    def namespace_rotated(self, namespace: str) -> None:
        self.mark(namespace, "rotated")

    def namespace_invalidated(self, namespace: str) -> None:
        self.mark(namespace, "invalidated")

    def namespace_rejected(self, namespace: str, reason: str) -> None:
        if reason in ("idle", "absolute"):
            self.mark(namespace, f"expired ({reason})")
        elif reason == "revoked":
            self.mark(namespace, "revoked")
        else:
            self.mark(namespace, f"rejected ({reason})")

    def namespace_migrated(self, namespace: str, fallback: str) -> None:
        self.mark(namespace, f"moved from {fallback}")

    def namespace_retired(self, namespace: str, fallback: str) -> None:
        self.mark(namespace, f"retired {fallback}")

    def namespace_failed(self, namespace: str, error: Exception) -> None:
        self.mark(namespace, f"not saved: {type(error).__name__}")

    def namespace_merged(self, namespace: str, outcome: Any) -> None:
        if outcome.dropped is not None:
            self.mark(namespace, "not saved: it ended in a parallel request")
            return
        if outcome.kept_theirs:
            keys = ", ".join(map(capture.safe_repr, outcome.kept_theirs))
            self.mark(namespace, f"merged: kept {keys} of a parallel save")
        if outcome.conflicts:
            keys = ", ".join(map(capture.safe_repr, outcome.conflicts))
            self.mark(namespace, f"conflict: {keys} changed in parallel too")

    def cookie_refused(self, namespace: str, size: int, limit: int) -> None:
        self.refused(namespace, size, limit)

    def cookie_header_over(self, total: int, limit: int) -> None:
        # the panel measures the total itself once the response is complete
        pass


class SessionMultiDebugPanel(NamespaceRecorder, DebugPanel):  # type: ignore[misc]
    """Every namespace's configuration, ingress and egress for one request.

    It observes through
    :meth:`~pyramid_session_multi.SessionMultiManager.add_observer` and reads
    through ``capture``; the response the application sends is the same with
    the panel active, inactive or absent.

    During the request it records only what would be lost afterwards (the
    sessions' data as they came in and went out, the response); everything
    shown is worked out from that when the panel is rendered, so that a
    request nobody looks at in the toolbar costs little.
    """

    name = "session_multi"
    title = "SessionMulti"
    nav_title = title
    template = "pyramid_session_multi.debugtoolbar:templates/session_multi.dbtmako"
    user_activate = True
    has_content = True

    def __init__(self, request: Request) -> None:
        self._request: Request | None = request
        self._sessions: dict[str, Any] = {}
        # what keep_loaded returned, to undo it on a session that never loaded
        self._stops: dict[str, Any] = {}
        self._reports: dict[str, dict[str, Any]] = {}
        # rotated / invalidated / rejected, per namespace; a rejection comes
        # before the namespace has a report, while it loads
        self._marks: dict[str, list[str]] = {}
        # what describe() said of each stamped session at the end of the request
        self._lifetimes: dict[str, Any] = {}
        #: the response, once its cookies are set: read when the panel is rendered
        self._response: Any = None
        self.data: dict[str, Any] = {
            "included": False,
            "is_active": False,
            "cookie_limit": capture.COOKIE_SIZE_LIMIT,
            "header_limit": COOKIE_HEADER_LIMIT,
            "header_total": None,
            "egress_captured": False,
        }
        registry = request.registry
        config = get_manager_config(registry)
        if config is None:
            return
        self._config = config
        self._registry = registry
        self.data["included"] = True
        if config.configs:
            request.session_multi.add_observer(self)

    @property
    def nav_subtitle(self) -> str:
        if not self.data["included"]:
            return ""
        touched = sum(1 for r in self._reports.values() if r["accessed"])
        return f"{touched}/{len(self._config.configs)}"

    def _report(self, namespace: str, accessed: bool) -> dict[str, Any]:
        namespace_config = self._config.configs[namespace]
        report: dict[str, Any] = {
            "namespace": namespace,
            "cookie_name": namespace_config.cookie_name,
            "accessed": accessed,
            "has_discriminator": namespace_config.discriminator is not None,
            "discriminator": None,
            "mounted": None,
            "ingress": None,
            "egress": None,
            "changes": [],
            "cookie": "none",
            "cookie_size": None,
            "error": None,
            "note": None,
            "ingress_pending": False,
            "identity": (),
            "lifetime": None,
        }
        self._reports[namespace] = report
        return report

    def _read_ingress(self, report: dict[str, Any]) -> None:
        namespace_config = self._config.get(report["namespace"])
        assert namespace_config is not None and self._request is not None
        try:
            allowed, report["ingress"] = capture.read_detached(self._request, namespace_config)
        except capture.NotReadable as exc:
            report["note"] = str(exc)
            return
        except Exception as exc:
            report["error"] = capture.describe_error(exc)
            return
        if report["has_discriminator"]:
            report["discriminator"] = capture.safe_repr(allowed)

    def namespace_loaded(self, namespace: str, session: Any) -> None:
        report = self._report(namespace, accessed=True)
        report["mounted"] = session is not None
        if report["has_discriminator"]:
            report["discriminator"] = repr(session is not None)
        if session is None:
            return
        self._sessions[namespace] = session
        # The live session's storage, read raw, is the ingress; a lazy one
        # the panel must not load is read again from a detached request.
        # This runs inside the application's request: it must never raise.
        library = self._config.configs[namespace].library
        try:
            report["ingress"] = capture.raw_items(library, session)
        except Exception as exc:
            report["error"] = capture.describe_error(exc)
            return
        if report["ingress"] is None:
            if library.reads_store_when_loaded:
                # read what it loaded, if the application loads it, at egress,
                # as it was before the application changed it in place
                report["ingress_pending"] = True
                try:
                    keep_loaded = getattr(library, "keep_loaded", None)
                    if keep_loaded is not None:
                        stop = keep_loaded(session)
                        if callable(stop):
                            self._stops[namespace] = stop
                except Exception as exc:
                    report["error"] = capture.describe_error(exc)
            else:
                self._read_ingress(report)

    def mark(self, namespace: str, what: str) -> None:
        marks = self._marks.setdefault(namespace, [])
        if what not in marks:
            marks.append(what)

    def refused(self, namespace: str, size: int, limit: int) -> None:
        report = self._reports.get(namespace)
        if report is not None:
            report["cookie"] = "refused"
            report["cookie_size"] = size
            if self._budget().oversize == "drop":
                outcome = "not sent, the client keeps its previous cookie (oversize = drop)"
            else:
                outcome = "the response failed (oversize = raise)"
            report["error"] = (
                f"the cookie would be {size} bytes, over the {limit}-byte limit: {outcome}"
            )

    def process_response(self, response: Any) -> None:
        request = self._request
        if request is None or not self.data["included"]:
            return
        self.data["is_active"] = self.is_active
        if self.is_active:
            for namespace in self._config.namespaces:
                if namespace not in self._reports:
                    report = self._report(namespace, accessed=False)
                    self._read_ingress(report)
                    report["mounted"] = report["error"] is None and (
                        report["ingress"] is not None or not report["has_discriminator"]
                    )
        # Session cookies are set by response callbacks, after the toolbar's
        # tween: look at the response once they have run (this one is last).
        request.add_response_callback(self._capture_egress)

    def _capture_egress(self, request: Request, response: Any) -> None:
        # what the sessions hold now, before anything after the request changes
        # them; the rest is read from the response when the panel is rendered
        configs = self._config.configs
        for namespace, session in self._sessions.items():
            report = self._reports[namespace]
            try:
                namespace_config = configs[namespace]
                if report["ingress_pending"]:
                    report["ingress"] = capture.loaded_items(namespace_config, session)
                    if report["ingress"] is None:
                        report["note"] = "not read: the application never used this session"
                    # read: nothing of the panel's stays on it after the request
                    stop = self._stops.get(namespace)
                    if stop is not None:
                        stop()
                report["egress"] = capture.raw_items(namespace_config.library, session)
                if namespace_config.stamped:
                    # seconds left: as of the end of the request
                    self._lifetimes[namespace] = describe_lifetime(namespace_config, session)
            except Exception as exc:  # a response callback must not break the response
                report["error"] = capture.describe_error(exc)
        self._response = response
        self.data["egress_captured"] = True
        self._sessions = {}
        self._stops = {}

    def _budget(self) -> CookieBudget:
        try:
            return CookieBudget.from_settings(self._registry.settings)
        except Exception:  # the application refused them at start-up already
            return CookieBudget()

    def _finish_reports(self) -> int | None:
        """Each report as shown, and the Cookie header's total (``None`` if unknown)."""
        response = self._response
        for namespace, report in self._reports.items():
            report["identity"] = self._marks.get(namespace, [])
            try:
                report["ingress"] = capture.shown(report["ingress"])
                report["egress"] = capture.shown(report["egress"])
                report["lifetime"] = capture.lifetime_report(self._lifetimes.get(namespace))
                report["changes"] = capture.compare(report["ingress"], report["egress"])
                if response is None:
                    continue
                outcome, size = capture.cookie_outcome(response, report["cookie_name"])
                # a refused cookie is not in the response: what was refused, and
                # why, is what the panel shows
                if report["cookie"] != "refused" or outcome != "none":
                    report["cookie"], report["cookie_size"] = outcome, size
            except Exception as exc:
                report["error"] = capture.describe_error(exc)
        if response is None or self._request is None:
            return None
        try:
            return header_total(self._request, response, self._config.namespaces_to_cookienames)
        except Exception:
            return None

    def render_vars(self, request: Request) -> dict[str, Any]:
        configuration: list[dict[str, Any]] = []
        findings: list[Finding] = []
        breakers: dict[str, list[dict[str, Any]]] = {}
        revocation_breakers: list[dict[str, Any]] = []
        header: int | None = None
        limits: dict[str, int] = {}
        if self.data["included"]:
            budget = self._budget()
            limits = {"cookie_limit": budget.cookie_limit, "header_limit": budget.header_limit}
            header = self._finish_reports()
            configuration = describe_namespaces(self._config)
            for namespace in self._config.namespaces:
                breakers[namespace] = describe_breakers(self._config.get(namespace))
            revocation_breakers = describe_store_breakers(self._config.revocations)
            # the toolbar renders with its own request: use the application's settings
            findings = run_checks(self._config, self._registry.settings)
        by_namespace: dict[str, list[Finding]] = {}
        for finding in findings:
            by_namespace.setdefault(finding.namespace, []).append(finding)
        return {
            "reports": list(self._reports.values()),
            "header_total": header,
            **limits,
            "configuration": configuration,
            "attributes": (*COOKIE_ATTRIBUTES, "partitioned"),
            "findings": findings,
            "findings_by_namespace": by_namespace,
            "breakers": breakers,
            "revocation_breakers": revocation_breakers,
        }


__all__: list[str] = ["SessionMultiDebugPanel"]
