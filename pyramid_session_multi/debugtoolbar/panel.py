"""The SessionMulti panel of pyramid_debugtoolbar."""

from collections.abc import Callable
from typing import Any

from pyramid.request import Request
from zope.interface import implementer

from ..budget import COOKIE_HEADER_LIMIT, CookieBudget, header_total
from ..checks import Finding, run_checks
from ..config import get_manager_config
from ..cookies import COOKIE_ATTRIBUTES
from ..describe import describe_breakers, describe_namespaces, describe_store_breakers
from ..interfaces import ISessionMultiObserver
from . import capture

try:
    from pyramid_debugtoolbar.panels import DebugPanel
except ImportError:  # pragma: no cover - the toolbar is an optional extra
    DebugPanel = object


@implementer(ISessionMultiObserver)
class NamespaceRecorder:
    """Told by the manager about each namespace the application loads."""

    def __init__(
        self,
        on_load: Callable[[str, Any], None],
        on_refused: Callable[[str, int, int], None],
        on_identity: Callable[[str, str], None],
    ) -> None:
        self.on_load = on_load
        self.on_refused = on_refused
        self.on_identity = on_identity

    def namespace_loaded(self, namespace: str, session: Any) -> None:
        self.on_load(namespace, session)

    def namespace_rotated(self, namespace: str) -> None:
        self.on_identity(namespace, "rotated")

    def namespace_invalidated(self, namespace: str) -> None:
        self.on_identity(namespace, "invalidated")

    def namespace_rejected(self, namespace: str, reason: str) -> None:
        if reason in ("idle", "absolute"):
            self.on_identity(namespace, f"expired ({reason})")
        elif reason == "revoked":
            self.on_identity(namespace, "revoked")
        else:
            self.on_identity(namespace, f"rejected ({reason})")

    def namespace_migrated(self, namespace: str, fallback: str) -> None:
        self.on_identity(namespace, f"moved from {fallback}")

    def namespace_retired(self, namespace: str, fallback: str) -> None:
        self.on_identity(namespace, f"retired {fallback}")

    def namespace_failed(self, namespace: str, error: Exception) -> None:
        self.on_identity(namespace, f"not saved: {type(error).__name__}")

    def namespace_merged(self, namespace: str, outcome: Any) -> None:
        if outcome.dropped is not None:
            self.on_identity(namespace, "not saved: it ended in a parallel request")
            return
        if outcome.kept_theirs:
            keys = ", ".join(map(capture.safe_repr, outcome.kept_theirs))
            self.on_identity(namespace, f"merged: kept {keys} of a parallel save")
        if outcome.conflicts:
            keys = ", ".join(map(capture.safe_repr, outcome.conflicts))
            self.on_identity(namespace, f"conflict: {keys} changed in parallel too")

    def cookie_refused(self, namespace: str, size: int, limit: int) -> None:
        self.on_refused(namespace, size, limit)

    def cookie_header_over(self, total: int, limit: int) -> None:
        # the panel measures the total itself once the response is complete
        pass


class SessionMultiDebugPanel(DebugPanel):  # type: ignore[misc]
    """Every namespace's configuration, ingress and egress for one request.

    It observes through
    :meth:`~pyramid_session_multi.SessionMultiManager.add_observer` and reads
    through ``capture``; the response the application sends is the same with
    the panel active, inactive or absent.
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
        self._reports: dict[str, dict[str, Any]] = {}
        # rotated / invalidated / rejected, per namespace; a rejection comes
        # before the namespace has a report, while it loads
        self._marks: dict[str, list[str]] = {}
        #: the cookie budget's policy: what a refused cookie means for the response
        self._oversize = "raise"
        self.data: dict[str, Any] = {
            "included": False,
            "is_active": False,
            "namespaces": self._reports,
            "cookie_limit": capture.COOKIE_SIZE_LIMIT,
            "header_limit": COOKIE_HEADER_LIMIT,
            "header_total": None,
            "egress_captured": False,
        }
        config = get_manager_config(request.registry)
        if config is None:
            return
        self._config = config
        self._settings = request.registry.settings
        self.data["included"] = True
        try:
            budget = CookieBudget.from_settings(self._settings)
        except Exception:  # the application refused them at start-up already
            budget = CookieBudget()
        self._oversize = budget.oversize
        self.data["cookie_limit"] = budget.cookie_limit
        self.data["header_limit"] = budget.header_limit
        if config.namespaces:
            request.session_multi.add_observer(
                NamespaceRecorder(self._namespace_loaded, self._cookie_refused, self._identity)
            )

    @property
    def nav_subtitle(self) -> str:
        if not self.data["included"]:
            return ""
        touched = sum(1 for r in self._reports.values() if r["accessed"])
        return f"{touched}/{len(self._config.namespaces)}"

    def _report(self, namespace: str, accessed: bool) -> dict[str, Any]:
        report: dict[str, Any] = {
            "namespace": namespace,
            "cookie_name": self._config.get_namespace_cookiename(namespace),
            "accessed": accessed,
            "has_discriminator": self._config.get_namespace_discriminator(namespace) is not None,
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
            "identity": self._marks.setdefault(namespace, []),
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

    def _namespace_loaded(self, namespace: str, session: Any) -> None:
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
        try:
            report["ingress"] = capture.raw_items(self._library(namespace), session)
        except Exception as exc:
            report["error"] = capture.describe_error(exc)
            return
        if report["ingress"] is None:
            if self._library(namespace).reads_store_when_loaded:
                # read what it loaded, if the application loads it, at egress
                report["ingress_pending"] = True
            else:
                self._read_ingress(report)

    def _library(self, namespace: str) -> Any:
        namespace_config = self._config.get(namespace)
        assert namespace_config is not None
        return namespace_config.library

    def _identity(self, namespace: str, what: str) -> None:
        marks = self._marks.setdefault(namespace, [])
        if what not in marks:
            marks.append(what)

    def _cookie_refused(self, namespace: str, size: int, limit: int) -> None:
        report = self._reports.get(namespace)
        if report is not None:
            report["cookie"] = "refused"
            report["cookie_size"] = size
            if self._oversize == "drop":
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
        for namespace, report in self._reports.items():
            try:
                library = self._library(namespace)
                namespace_config = self._config.get(namespace)
                assert namespace_config is not None
                if report["ingress_pending"]:
                    report["ingress"] = capture.loaded_items(
                        namespace_config, self._sessions[namespace]
                    )
                    if report["ingress"] is None:
                        report["note"] = "not read: the application never used this session"
                if namespace in self._sessions:
                    report["egress"] = capture.raw_items(library, self._sessions[namespace])
                    report["lifetime"] = capture.lifetime_report(
                        namespace_config, self._sessions[namespace]
                    )
                report["changes"] = capture.compare(report["ingress"], report["egress"])
                outcome, size = capture.cookie_outcome(response, report["cookie_name"])
                # a refused cookie is not in the response: what was refused, and
                # why, is what the panel shows
                if report["cookie"] != "refused" or outcome != "none":
                    report["cookie"], report["cookie_size"] = outcome, size
            except Exception as exc:  # a response callback must not break the response
                report["error"] = capture.describe_error(exc)
        try:
            self.data["header_total"] = header_total(
                request, response, self._config.namespaces_to_cookienames
            )
        except Exception:  # a response callback must not break the response
            self.data["header_total"] = None
        self.data["egress_captured"] = True
        self._sessions = {}
        self._request = None

    def render_vars(self, request: Request) -> dict[str, Any]:
        configuration: list[dict[str, Any]] = []
        findings: list[Finding] = []
        breakers: dict[str, list[dict[str, Any]]] = {}
        revocation_breakers: list[dict[str, Any]] = []
        if self.data["included"]:
            configuration = describe_namespaces(self._config)
            for namespace in self._config.namespaces:
                breakers[namespace] = describe_breakers(self._config.get(namespace))
            revocation_breakers = describe_store_breakers(self._config.revocations)
            # the toolbar renders with its own request: use the application's settings
            findings = run_checks(self._config, self._settings)
        by_namespace: dict[str, list[Finding]] = {}
        for finding in findings:
            by_namespace.setdefault(finding.namespace, []).append(finding)
        return {
            "reports": list(self._reports.values()),
            "configuration": configuration,
            "attributes": (*COOKIE_ATTRIBUTES, "partitioned"),
            "findings": findings,
            "findings_by_namespace": by_namespace,
            "breakers": breakers,
            "revocation_breakers": revocation_breakers,
        }


__all__: list[str] = ["SessionMultiDebugPanel"]
