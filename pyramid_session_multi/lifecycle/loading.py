"""Loading one namespace: the factory, then the checks that may reject the session.

Each check is a small function taking the namespace's configuration, the
request, the new session and its partner's session (``None`` when not
bound), and returning ``None`` to keep the session or a reason to reject
it.  Which checks a namespace's load runs, and in what order, is its
pipeline's (see :mod:`.pipeline`), not a branch in the manager.
"""

import logging
from collections.abc import Callable
from typing import Any

from ..binding import belongs
from ..failures import failure_log_of

logger = logging.getLogger(__name__)

#: A load check: ``(work, namespace_config, request, session, partner) -> reason
#: or None``; ``work`` is the request's :class:`~.work.RequestWork`.
Check = Callable[[Any, Any, Any, Any, Any], str | None]

#: A load step, run on a session the factory has just made, before observers
#: see it and before the checks: called with the request's
#: :class:`~.work.RequestWork`, the namespace's
#: configuration, the request, the session, and the namespace's
#: :class:`~pyramid_session_multi.lifecycle.ending.NamespaceEnd` (``None``
#: for a namespace whose end of request is not the add-on's).
Step = Callable[[Any, Any, Any, Any, Any], None]


def call_for_namespace(role: str, namespace: str, func: Any, *args: Any) -> Any:
    """Call ``func(*args)``; an exception gets a note naming ``namespace``."""
    try:
        return func(*args)
    except Exception as exc:
        exc.add_note(f"pyramid_session_multi: raised by the {role} of namespace {namespace!r}")
        raise


def log_load_error(namespace: str, exc: Exception, request: Any) -> None:
    """Log that ``namespace`` could not be loaded, so operators see which store failed:
    each distinct failure once per interval, with a count, where ``request``'s
    registry has a :class:`~pyramid_session_multi.failures.FailureLog`."""
    log = failure_log_of(request.registry)
    if log is not None:
        # the error goes on to the caller, with its traceback
        log.report(logger, namespace, "could not be loaded", exc, traceback=False)
        return
    logger.error("namespace %r could not be loaded: %s: %s", namespace, type(exc).__name__, exc)


def validator_check(
    work: Any, namespace_config: Any, request: Any, session: Any, partner: Any
) -> str | None:
    """Reject a session the namespace's validator says no to."""
    validator = namespace_config.validator
    if validator is None:
        return None
    try:
        valid = validator(request, session)
    except Exception as exc:
        exc.add_note(
            "pyramid_session_multi: raised by the validator of namespace "
            f"{namespace_config.namespace!r}"
        )
        raise
    return None if valid else "validator"


def binding_check(
    work: Any, namespace_config: Any, request: Any, session: Any, partner: Any
) -> str | None:
    """Reject a bound session that was not written beside this partner session."""
    if partner is None or belongs(namespace_config.library, session, partner):
        return None
    return "binding"
