"""What the application asks of every namespace at once: rotate, invalidate.

Each works the same way: do the change in every namespace, a failure
contained to its namespace (its cookie is then deleted at the end of the
request), then tell observers and event subscribers, each on its own, once
every namespace is done.  :meth:`SessionMultiManager.rotate` and
:meth:`SessionMultiManager.invalidate` are the public faces of these
functions, and document them.
"""

import logging
from collections.abc import Sequence
from typing import Any

from pyramid.interfaces import ICSRFStoragePolicy

from ..events import SessionInvalidated, SessionRotated, log_decision
from ..exceptions import RotatedTooLate
from .detached import detached_request
from .devices import forget_logins, note_moved, note_replaced
from .ending import INVALIDATED
from .fallbacks import retire_at_logout
from .lifetime import issue_time, lifetime_of, remember_login, rotation
from .work import RequestWork

logger = logging.getLogger(__name__)


def carried(work: RequestWork) -> list[str]:
    """The namespaces loaded so far or whose cookie the request carries, partners first.

    A namespace is carried too where the request carries only a cookie one
    of its fallbacks reads: loading it migrates that session, which a
    logout, a login or a revocation must then act on, not leave behind.
    """
    cookies = work.request.cookies
    found = [
        namespace_config
        for namespace, namespace_config in work.configs.items()
        if work.loaded(namespace) is not None
        or namespace_config.cookie_name in cookies
        or any(fallback.cookie_name in cookies for fallback in namespace_config.fallbacks)
    ]
    found.sort(key=lambda namespace_config: namespace_config.binding_depth)
    return [namespace_config.namespace for namespace_config in found]


def rotate(
    work: RequestWork, namespaces: Sequence[str], raise_errors: bool, userid: Any = None
) -> dict[str, Exception]:
    """Rotate ``namespaces`` (every carried one if empty); see ``SessionMultiManager.rotate``."""
    request = work.request
    failures: dict[str, Exception] = {}
    events = []
    replaced: set[tuple[Any, float]] = set()
    # one time for the whole rotation: a login is recorded at the same time in
    # every namespace it rotates (it names the device, and a logout's recorded
    # end must cover them all)
    at = issue_time()
    if userid is not None and not namespaces:
        # a login: a namespace first loaded later in this request is new, and the user's
        remember_login(work, userid, at)
    # a policy keeping its CSRF token in a namespace renews it there (see .csrf)
    csrf_rotated = getattr(
        request.registry.queryUtility(ICSRFStoragePolicy), "session_rotated", None
    )
    for namespace in namespaces or carried(work):
        namespace_config = work.configs[namespace]
        session = None
        try:
            session = work.load(namespace)
            if session is None:
                continue
            library = namespace_config.library
            library.load(session)
            old_id = work.session_id(namespace, session)
            if work.saved_already(namespace_config, session):
                # its new cookie would not reach the client: ended, not left as it was
                events.extend(_end_too_late(work, namespace_config, session, old_id, failures))
                continue
            # the absolute clock restarts; the user is recorded, or kept
            lifetime = lifetime_of(session)
            before = None if lifetime is None else lifetime.stamps
            rotated = rotation(session, userid, at)
            retire = library.rotate(session)
            rotated()
            if lifetime is not None and lifetime.stamps.userid is not None:
                note_moved(work, namespace)
            if (
                lifetime is not None
                and before is not None
                and before.login is not None
                and before.login != lifetime.stamps.login
            ):
                # a new login on this client: the one before is no longer its device
                replaced.add((before.userid, before.login))
            if csrf_rotated is not None:
                csrf_rotated(namespace, session)
        except Exception as exc:
            exc.add_note(f"pyramid_session_multi: rotating namespace {namespace!r} failed")
            logger.error(
                "namespace %r could not be rotated; its cookie is deleted: %s: %s",
                namespace,
                type(exc).__name__,
                exc,
            )
            failures[namespace] = exc
            work.enlist(namespace_config, session)
            work.drop_cookie(namespace_config)
            continue
        work.mark_rotated(namespace_config, session, retire)
        reason = "login" if userid is not None else "rotate"
        log_decision(logger, "rotated", namespace, reason, request.registry.settings, old_id)
        work.tell_observers("namespace_rotated", namespace)
        events.append(work.event(SessionRotated, namespace, session, old_id=old_id))
    note_replaced(work, replaced)
    return _tell(work, failures, events, raise_errors)


def _end_too_late(
    work: RequestWork,
    namespace_config: Any,
    session: Any,
    old_id: str | None,
    failures: dict[str, Exception],
) -> list[Any]:
    """End a session rotated once its library had saved it and set its cookie
    (see :class:`~pyramid_session_multi.exceptions.RotatedTooLate`), as a
    logout of its namespace would; the events to send."""
    namespace = namespace_config.namespace
    exc = RotatedTooLate(namespace)
    failures[namespace] = exc
    logger.error("%s", exc)
    # read before invalidate(), which restarts the stamps with nobody
    lifetime = lifetime_of(session)
    stamps = None if lifetime is None else lifetime.stamps
    try:
        session.invalidate()
        # and what the client carries: not the same where a rotation earlier
        # in the request was dropped (an exception view answered), which kept it
        destroy(namespace_config, work.request)
    except Exception as again:
        exc.add_note(
            f"pyramid_session_multi: ending it failed too, its cookie is deleted but its "
            f"stored data may remain: {type(again).__name__}: {again}"
        )
        work.drop_cookie(namespace_config)
        return []
    event = _logged_out(work, namespace_config, session, old_id, "late rotation", failures)
    # as a logout of it in the view: what is bound to it ends with it, settled
    # by the end of request (partners first along a chain)
    ending = {namespace}
    for other in sorted(work.configs.values(), key=lambda config: config.binding_depth):
        bound = work.loaded(other.namespace) if other.bound_to in ending else None
        if bound is not None:
            ending.add(other.namespace)
            work.enlist(other, bound)
    if stamps is not None and stamps.userid is not None:
        forget_logins(work, {(stamps.userid, stamps.login)})
    return [event]


def invalidate(work: RequestWork, raise_errors: bool, unended: Any = None) -> dict[str, Exception]:
    """Log out of every carried namespace; see ``SessionMultiManager.invalidate``.

    ``unended``, where given, is called with the request's work, the users
    and login times the sessions loaded recorded, and the failures, when a
    namespace could not be destroyed (see :func:`.revoking.record_unended`).
    """
    request = work.request
    failures: dict[str, Exception] = {}
    loaded: dict[str, Any] = {}
    # every one loaded before any is invalidated: a bound namespace is then
    # checked against its partner as the client sent it, not as logged out
    events = []
    for namespace in carried(work):
        try:
            session = work.load(namespace)
        except Exception as exc:
            # what failed may be a check the logout has no use for (a revocation
            # store down): the session still dies, read again without any
            try:
                old_id = destroy(work.configs[namespace], request)
            except Exception as again:
                exc.add_note(
                    f"pyramid_session_multi: destroying it unchecked failed too: "
                    f"{type(again).__name__}: {again}"
                )
                logout_failed(work, namespace, exc, failures)
                continue
            logger.warning(
                "namespace %r could not be loaded (%s: %s); logged out without it: "
                "its stored data is deleted and its cookie too",
                namespace,
                type(exc).__name__,
                exc,
            )
            namespace_config = work.configs[namespace]
            work.drop_cookie(namespace_config)
            _retired(work, namespace, failures)
            work.tell_observers("namespace_invalidated", namespace)
            events.append(work.event(SessionInvalidated, namespace, None, old_id))
            continue
        if session is not None:
            loaded[namespace] = session
    logins = {
        (lifetime.stamps.userid, lifetime.stamps.login)
        for lifetime in map(lifetime_of, loaded.values())
        if lifetime is not None and lifetime.stamps.userid is not None
    }
    for namespace, session in loaded.items():
        namespace_config = work.configs[namespace]
        try:
            namespace_config.library.load(session)
            old_id = work.session_id(namespace, session)
            late = work.saved_already(namespace_config, session)
            session.invalidate()
            if late:
                # after the end of request: a rotation it dropped (an exception
                # view answered) kept the session the client's cookie names whole
                destroy(namespace_config, request)
        except Exception as exc:
            logout_failed(work, namespace, exc, failures)
            continue
        events.append(_logged_out(work, namespace_config, session, old_id, "logout", failures))
    if failures and unended is not None:
        unended(work, logins, failures)
    forget_logins(work, logins)
    return _tell(work, failures, events, raise_errors)


def _logged_out(
    work: RequestWork,
    namespace_config: Any,
    session: Any,
    old_id: str | None,
    reason: str,
    failures: dict[str, Exception],
) -> Any:
    """What follows a session's ``invalidate()`` at a logout (or an ending in
    its place, for ``reason``): its end noted, logged, its fallback copies
    retired, observers told; the event to send."""
    namespace = namespace_config.namespace
    work.end(namespace_config, session, INVALIDATED)
    settings = work.request.registry.settings
    log_decision(logger, "invalidated", namespace, reason, settings, old_id)
    _retired(work, namespace, failures)
    work.tell_observers("namespace_invalidated", namespace)
    return work.event(SessionInvalidated, namespace, session, old_id)


def _retired(work: RequestWork, namespace: str, failures: dict[str, Exception]) -> None:
    """Retire ``namespace``'s fallback copies at its logout; a copy that could
    not be deleted is the namespace's failure in ``failures``."""
    exc = retire_at_logout(work, work.configs[namespace])
    if exc is not None:
        failures.setdefault(namespace, exc)


def destroy(namespace_config: Any, request: Any) -> str | None:
    """Delete the stored state of the session ``request`` carries for
    ``namespace_config``'s namespace, read on a detached copy of the request
    with none of the load's checks; its id, where known.

    A logout needs no revocation lookup, no validator, no lifetime: what the
    client holds dies whatever they would say.
    """
    detached = detached_request(request)
    session = namespace_config.loader(detached)
    if session is None:
        return None
    if namespace_config.prepare is not None:
        namespace_config.prepare(namespace_config.namespace, session)
    library = namespace_config.library
    library.load(session)
    old_id = library.session_id(session)
    session.invalidate()
    return old_id if isinstance(old_id, str) else None


def logout_failed(
    work: RequestWork, namespace: str, exc: Exception, failures: dict[str, Exception]
) -> None:
    """Log that ``namespace`` could not be invalidated, note it in ``failures``,
    and have its cookie deleted all the same."""
    exc.add_note(f"pyramid_session_multi: invalidating namespace {namespace!r} failed")
    logger.error(
        "namespace %r could not be invalidated; its cookie is deleted "
        "but its stored data may remain: %s: %s",
        namespace,
        type(exc).__name__,
        exc,
    )
    failures[namespace] = exc
    work.drop_cookie(work.configs[namespace])


def _tell(
    work: RequestWork, failures: dict[str, Exception], events: list[Any], raise_errors: bool
) -> dict[str, Exception]:
    """Send ``events`` now that the work is done; raise the first failure if asked to."""
    subscriber_failures = work.deliver(events)
    if raise_errors and (failures or subscriber_failures):
        raise next(iter([*failures.values(), *subscriber_failures]))
    return failures
