"""Revoking: recording that a user's sessions are over, from a request.

``revoke(userid)`` writes one record to the shared revocation store: *the
sessions of this user recorded before this time are over* (the load check
that honours it is :mod:`.revoked`).  A logout that could not destroy a
server-side session records the end of its login the same way
(:func:`record_unended`).  Both receive the request's unit of work (see
:mod:`.work`); the directive that sets the store is
:mod:`pyramid_session_multi.revocation`'s.
"""

import logging
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from pyramid.exceptions import ConfigurationError

from ..events import SessionInvalidated, hash_session_id, log_decision
from ..exceptions import RevocationStoreUnavailable
from .changes import carried, logout_failed
from .devices import Device, device_id, keeps_devices, note_moved
from .ending import INVALIDATED
from .fallbacks import retire_at_logout
from .lifetime import (
    MAX_TIMEOUT,
    check_userid,
    issue_time,
    lifetime_of,
    remember_login,
    remembered_login,
)
from .revoked import describe_store, remember_revocation, store_error
from .work import RequestWork

__all__ = [
    "log_revocation",
    "record_ttl",
    "record_unended",
    "revoke",
    "revoke_user",
]

logger = logging.getLogger(__name__)

#: Seconds a revocation record is kept beyond the longest absolute timeout.
TTL_MARGIN = 5


def record_ttl(manager_config: Any) -> int:
    """How long a revocation must be kept: until no session it can match is alive.

    ``manager_config`` is anything with the namespaces' ``configs`` (the
    registry utility, or a request's :class:`~..lifecycle.work.RequestWork`).

    A session recorded before the revocation is refused at its first load
    after it, so the record must outlive only the sessions never loaded
    since: a namespace's session ends within the shorter of its idle and
    absolute timeouts.  The record is kept for the longest of those among
    the namespaces, with a margin; a namespace with neither bounds it at
    ten years (``MAX_TIMEOUT``), so that every record expires.
    """
    longest = 0
    for namespace_config in manager_config.configs.values():
        limits = [
            limit
            for limit in (namespace_config.absolute_timeout, namespace_config.idle_timeout)
            if limit is not None
        ]
        longest = max(longest, min(limits) if limits else MAX_TIMEOUT)
    return min(longest or MAX_TIMEOUT, MAX_TIMEOUT) + TTL_MARGIN


#: How much later than a session's login the record of its logout is: it ends
#: that session (and the user's older ones), not the user's later logins.
UNENDED_MARGIN = 0.001


def record_unended(work: RequestWork, logins: Any, failures: dict[str, Exception]) -> None:
    """Record, for a logout that could not destroy some server-side sessions
    (``failures``: their stores were down), the end of the user's login in
    the revocation store, so a copy of the old cookie is refused once the
    store is back.

    ``logins`` are the users and login times the request's sessions
    recorded (the same for every namespace one login rotated).  The record
    refuses the sessions of that user recorded up to that login: this
    device's, and the user's older logins on other devices, but no later
    one.  Without a store, or without a recorded user, nothing can be
    recorded: that is logged, and the failures are what ``invalidate()``
    returns.
    """
    store = work.revocations
    names = ", ".join(repr(namespace) for namespace in sorted(failures))
    if store is None or not logins:
        why = "no revocation store is set" if store is None else "no user is recorded"
        logger.warning(
            "logout: namespace %s could not be destroyed and %s: a copy of its cookie "
            "may bring it back once its store is",
            names,
            why,
        )
        return
    for userid, login in sorted(logins, key=str):
        try:
            store.revoke(str(userid), float(login) + UNENDED_MARGIN, record_ttl(work))
        except Exception as exc:
            message = store_error(store, exc)
            for failure in failures.values():
                failure.add_note(
                    f"pyramid_session_multi: its end could not be recorded either: {message}"
                )
            logger.error(
                "logout: namespace %s could not be destroyed, nor its end recorded in the "
                "revocation store (%s): %s",
                names,
                describe_store(store),
                message,
            )
            return
    for failure in failures.values():
        failure.add_note(
            "pyramid_session_multi: its end is recorded in the revocation store: "
            "its old cookie is refused"
        )
    logger.warning(
        "logout: namespace %s could not be destroyed; the end of the login is recorded "
        "in the revocation store, so its old cookie is refused",
        names,
    )


def revoke_user(manager_config: Any, userid: Any) -> float:
    """Record in the store that ``userid``'s sessions recorded before now are over.

    ``manager_config`` is the registry utility (or anything with its
    ``revocations`` and ``configs``).

    Returns the time of the revocation.  Raises
    :class:`~pyramid.exceptions.ConfigurationError` when no store is set,
    :class:`RevocationStoreUnavailable` when the store cannot be reached.
    """
    userid = check_userid(userid)
    store = manager_config.revocations
    if store is None:
        raise ConfigurationError(
            "pyramid_session_multi: revoke() needs a revocation store, shared by every "
            "process of the application: set session_multi.revocations (a Redis or "
            "SQLAlchemy URL) or call config.set_revocation_store(...)"
        )
    at = issue_time()
    try:
        store.revoke(str(userid), at, record_ttl(manager_config))
    except Exception as exc:
        raise RevocationStoreUnavailable(
            f"pyramid_session_multi: the revocation could not be recorded: the revocation "
            f"store ({describe_store(store)}) failed: {store_error(store, exc)}"
        ) from exc
    return at


def revoke(work: RequestWork, userid: Any, keep_current: bool) -> None:
    """End ``userid``'s sessions everywhere; see ``SessionMultiManager.revoke``."""
    userid = check_userid(userid)
    request = work.request
    # what this request carries is loaded, and judged, before the revocation exists;
    # a namespace that cannot be (its store is down) does not stop the revocation:
    # a session of it recorded for the user ends at its next load
    sessions = {}
    for namespace in carried(work):
        try:
            sessions[namespace] = work.load(namespace)
        except Exception as exc:
            logger.error(
                "namespace %r could not be loaded while revoking; a session of it "
                "recorded for the user ends when it is next loaded: %s: %s",
                namespace,
                type(exc).__name__,
                exc,
            )
    # the unit of work knows the store and every namespace's configuration
    at = revoke_user(work, userid)
    log_revocation(request.registry.settings, userid, keep_current)
    remember_revocation(work, str(userid), at)
    login = remembered_login(work)
    if keep_current and login is not None and str(login[0]) == str(userid):
        # a namespace first used later in this request is the user's, after this
        # (a login of another user in this request stays that user's)
        remember_login(work, userid)
    events = []
    failures: dict[str, Exception] = {}
    for namespace, session in _recorded_for(sessions, str(userid)):
        namespace_config = work.configs[namespace]
        lifetime = lifetime_of(session)
        assert lifetime is not None
        if keep_current:
            # recorded again at the revocation's own time: not before it, so kept
            lifetime.stamps = replace(lifetime.stamps, login=at)
            try:
                namespace_config.library.mark_changed(session)
            except Exception as exc:
                _contained(work, namespace, exc, "could not be recorded anew")
                continue
            # a new login of this device: listed under it
            note_moved(work, namespace)
            continue
        try:
            old_id = work.session_id(namespace, session)
            session.invalidate()
        except Exception as exc:
            # revoked all the same: logged out as invalidate() would, the others too
            logout_failed(work, namespace, exc, failures)
            continue
        work.end(namespace_config, session, INVALIDATED)
        log_decision(logger, "revoked", namespace, "revoke", request.registry.settings, old_id)
        retire_at_logout(work, namespace_config)
        work.tell_observers("namespace_invalidated", namespace)
        events.append(work.event(SessionInvalidated, namespace, session, old_id))
    work.deliver(events)


def log_revocation(settings: Any, userid: Any, keep_current: bool = False) -> None:
    """Log one INFO line for a revocation recorded: the user as a keyed hash,
    as session ids are (:func:`~pyramid_session_multi.events.hash_session_id`)."""
    logger.info(
        "user revoked: user_hash=%s reason=%s",
        hash_session_id(settings, str(userid)),
        "other devices" if keep_current else "everywhere",
    )


def _contained(work: RequestWork, namespace: str, exc: Exception, what: str) -> None:
    """A namespace's failure while revoking: logged, named; its cookie is deleted."""
    exc.add_note(f"pyramid_session_multi: namespace {namespace!r} {what} while revoking")
    logger.error(
        "namespace %r %s while revoking; its cookie is deleted: %s: %s",
        namespace,
        what,
        type(exc).__name__,
        exc,
    )
    work.drop_cookie(work.configs[namespace])


def _recorded_for(sessions: dict[str, Any], userid: str) -> Iterator[tuple[str, Any]]:
    for namespace, session in sessions.items():
        lifetime = lifetime_of(session)
        if lifetime is None or lifetime.stamps.userid is None:
            continue
        if str(lifetime.stamps.userid) == userid:
            yield namespace, session


def _device_index(work: RequestWork, what: str) -> Any:
    store = work.revocations
    if not keeps_devices(store):
        raise ConfigurationError(
            f"pyramid_session_multi: {what} needs a revocation store that keeps a device "
            "index (every built-in one does): set session_multi.revocations (a Redis or "
            "SQLAlchemy URL) or call config.set_revocation_store(...)"
        )
    return store


def current_devices(work: RequestWork) -> set[str]:
    """The ids of the devices whose sessions this request carries (loaded to be judged)."""
    found = set()
    for namespace in carried(work):
        try:
            session = work.load(namespace)
        except Exception:
            continue  # a namespace that cannot be loaded names no device
        lifetime = lifetime_of(session) if session is not None else None
        if lifetime is None or work.ended_earlier(namespace):
            continue
        stamps = lifetime.stamps
        if stamps.userid is not None and stamps.login is not None:
            found.add(device_id(stamps.userid, stamps.login))
    return found


def list_devices(work: RequestWork, userid: Any) -> list[Device]:
    """``userid``'s live devices; see ``SessionMultiManager.devices``."""
    userid = check_userid(userid)
    store = _device_index(work, "devices()")
    try:
        listed = store.devices(str(userid))
    except Exception as exc:
        raise RevocationStoreUnavailable(
            f"pyramid_session_multi: the devices could not be listed: the revocation "
            f"store ({describe_store(store)}) failed: {store_error(store, exc)}"
        ) from exc
    here = current_devices(work)
    return [replace(device, current=device.id in here) for device in listed]


def end_device(work: RequestWork, device: str) -> Device | None:
    """End one device everywhere; see ``SessionMultiManager.revoke_device``."""
    if not isinstance(device, str) or not device:
        raise ValueError(f"pyramid_session_multi: a device id is text, not {device!r}")
    store = _device_index(work, "revoke_device()")
    try:
        ended: Device | None = store.end_device(device, record_ttl(work))
    except Exception as exc:
        raise RevocationStoreUnavailable(
            f"pyramid_session_multi: the device could not be ended: the revocation "
            f"store ({describe_store(store)}) failed: {store_error(store, exc)}"
        ) from exc
    if ended is not None:
        logger.info(
            "device ended: user_hash=%s",
            hash_session_id(work.request.registry.settings, ended.userid),
        )
        work.ended[ended.userid] = work.ended.get(ended.userid, frozenset()) | {ended.login}
    return ended
