"""Signing a user out everywhere: the load check, ``revoke()`` and the directive.

``rotate(userid=...)`` records, in the stamps of every namespace it rotates
(see :mod:`..lifecycle.lifetime`), the user and the time.  ``revoke(userid)``
writes one record to the shared revocation store: *the sessions of this user
recorded before this time are over*.  Every process then refuses such a
session when it is next loaded (:func:`revocation_check`), client-side
cookies included, since the record outlives every session it can match.

A request asks the store once per recorded user at most, and only when it
loads a session that has a user recorded; a request with none costs nothing.
"""

import logging
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from pyramid.config import Configurator
from pyramid.exceptions import ConfigurationError

from ..config import (
    LATE_ORDER,
    MAX_TIMEOUT,
    _require_manager_config,
    get_manager_config,
    stamp_for_revocations,
)
from ..events import SessionInvalidated, hash_session_id, log_decision
from ..lifecycle.changes import carried, logout_failed
from ..lifecycle.ending import INVALIDATED
from ..lifecycle.fallbacks import retire_at_logout
from ..lifecycle.lifetime import (
    check_userid,
    issue_time,
    lifetime_of,
    remember_login,
    remembered_login,
)
from ..lifecycle.loading import APPLIES, CHECKS, SELF_JUDGED

logger = logging.getLogger("pyramid_session_multi")

#: The reason a revoked session is rejected with.
REVOKED = "revoked"

#: Seconds a revocation record is kept beyond the longest absolute timeout.
TTL_MARGIN = 5

logger = logging.getLogger(__name__)

#: Where a request keeps what it asked the store (userid -> time or ``None``).
_CACHE = "_session_multi_revocations"


class RevocationStoreUnavailable(RuntimeError):
    """The revocation store could not be reached.

    Raised while loading a namespace whose session has a user recorded (the
    namespace is named, and nothing is deleted: the request fails as it would
    if the namespace's own store were down), and by ``revoke()``.
    """


def describe_store(store: Any) -> str:
    """How errors name a store (never with a password)."""
    describe = getattr(store, "describe", None)
    if callable(describe):
        try:
            return str(describe())
        except Exception:
            pass
    return type(store).__name__


def store_error(store: Any, exc: Exception) -> str:
    """``exc`` as errors show it: its type and message, without the store's password."""
    message = f"{type(exc).__name__}: {exc}"
    hide = getattr(store, "hide_password", None)
    if callable(hide):
        try:
            return str(hide(message))
        except Exception:
            return type(exc).__name__
    return message


def record_ttl(manager_config: Any) -> int:
    """How long a revocation must be kept: until no session it can match is alive.

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


def _cache(request: Any) -> dict[str, float | None]:
    cache: dict[str, float | None] | None = request.__dict__.get(_CACHE)
    if cache is None:
        cache = request.__dict__[_CACHE] = {}
    return cache


def revocation_check(namespace_config: Any, request: Any, session: Any, partner: Any) -> str | None:
    """Reject a session recorded for a user revoked since it was recorded."""
    lifetime = lifetime_of(session)
    if lifetime is None or lifetime.stamps.userid is None:
        return None
    manager = request.__dict__.get("session_multi")
    manager_config = getattr(manager, "_config", None)
    if manager_config is None:
        manager_config = get_manager_config(request.registry)
    store = None if manager_config is None else manager_config.revocations
    if store is None:
        return None
    userid = str(lifetime.stamps.userid)
    cache = _cache(request)
    if userid in cache:
        revoked = cache[userid]
    else:
        try:
            revoked = store.revoked_at(userid)
        except Exception as exc:
            raise RevocationStoreUnavailable(
                f"pyramid_session_multi: namespace {namespace_config.namespace!r} cannot be "
                f"loaded: the revocation store ({describe_store(store)}) could not say whether "
                f"its user was signed out: {store_error(store, exc)}"
            ) from exc
        cache[userid] = revoked
    login = lifetime.stamps.login
    if revoked is not None and (login is None or login < revoked):
        return REVOKED
    return None


#: How much later than a session's login the record of its logout is: it ends
#: that session (and the user's older ones), not the user's later logins.
UNENDED_MARGIN = 0.001


def record_unended(manager: Any, logins: Any, failures: dict[str, Exception]) -> None:
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
    manager_config = manager._config
    store = manager_config.revocations
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
            store.revoke(str(userid), float(login) + UNENDED_MARGIN, record_ttl(manager_config))
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


def revoke(manager: Any, userid: Any, keep_current: bool) -> None:
    """End ``userid``'s sessions everywhere; see ``SessionMultiManager.revoke``."""
    userid = check_userid(userid)
    request = manager._live_request()
    manager_config = manager._config
    # what this request carries is loaded, and judged, before the revocation exists;
    # a namespace that cannot be (its store is down) does not stop the revocation:
    # a session of it recorded for the user ends at its next load
    sessions = {}
    for namespace in carried(manager, request):
        try:
            sessions[namespace] = manager[namespace]
        except Exception as exc:
            logger.error(
                "namespace %r could not be loaded while revoking; a session of it "
                "recorded for the user ends when it is next loaded: %s: %s",
                namespace,
                type(exc).__name__,
                exc,
            )
    at = revoke_user(manager_config, userid)
    log_revocation(request.registry.settings, userid, keep_current)
    _cache(request)[str(userid)] = at
    login = remembered_login(request)
    if keep_current and login is not None and str(login[0]) == str(userid):
        # a namespace first used later in this request is the user's, after this
        # (a login of another user in this request stays that user's)
        remember_login(request, userid)
    events = []
    failures: dict[str, Exception] = {}
    for namespace, session in _recorded_for(sessions, str(userid)):
        namespace_config = manager._configs[namespace]
        lifetime = lifetime_of(session)
        assert lifetime is not None
        if keep_current:
            # recorded again at the revocation's own time: not before it, so kept
            lifetime.stamps = replace(lifetime.stamps, login=at)
            try:
                namespace_config.library.mark_changed(session)
            except Exception as exc:
                _contained(manager, namespace, exc, "could not be recorded anew")
            continue
        try:
            old_id = manager._session_id(namespace, session)
            session.invalidate()
        except Exception as exc:
            # revoked all the same: logged out as invalidate() would, the others too
            logout_failed(manager, namespace, exc, failures)
            continue
        state = manager._end_of(namespace_config, session)
        state.ended = INVALIDATED
        log_decision(logger, "revoked", namespace, "revoke", request.registry.settings, old_id)
        retire_at_logout(namespace_config, request, state)
        manager.tell_observers("namespace_invalidated", namespace)
        events.append(manager._event(SessionInvalidated, namespace, session, old_id))
    manager._deliver(events)


def log_revocation(settings: Any, userid: Any, keep_current: bool = False) -> None:
    """Log one INFO line for a revocation recorded: the user as a keyed hash,
    as session ids are (:func:`~pyramid_session_multi.events.hash_session_id`)."""
    logger.info(
        "user revoked: user_hash=%s reason=%s",
        hash_session_id(settings, str(userid)),
        "other devices" if keep_current else "everywhere",
    )


def _contained(manager: Any, namespace: str, exc: Exception, what: str) -> None:
    """A namespace's failure while revoking: logged, named; its cookie is deleted."""
    exc.add_note(f"pyramid_session_multi: namespace {namespace!r} {what} while revoking")
    logger.error(
        "namespace %r %s while revoking; its cookie is deleted: %s: %s",
        namespace,
        what,
        type(exc).__name__,
        exc,
    )
    manager._end_of(manager._configs[namespace], None).drop_cookie = True


def _recorded_for(sessions: dict[str, Any], userid: str) -> Iterator[tuple[str, Any]]:
    for namespace, session in sessions.items():
        lifetime = lifetime_of(session)
        if lifetime is None or lifetime.stamps.userid is None:
            continue
        if str(lifetime.stamps.userid) == userid:
            yield namespace, session


def set_revocation_store(config: Configurator, store: Any) -> None:
    """Keep revocations in ``store``: ``config.set_revocation_store(store)``.

    ``store`` (an object, a class to instantiate, or a dotted name to either)
    provides :class:`~pyramid_session_multi.interfaces.IRevocationStore`;
    every process of the application must share it.  Once a store is set,
    every namespace keeps lifetime stamps, so ``rotate(userid=...)`` can
    record its user.  One store per application: setting it twice at one
    include level is a conflict, and an including configuration overrides an
    included one.  The ``session_multi.revocations`` setting calls this
    with the store its URL names.
    """
    manager_config = _require_manager_config(config.registry)
    store = config.maybe_dotted(store)
    if isinstance(store, type):
        store = store()
    missing = [
        name for name in ("revoked_at", "revoke") if not callable(getattr(store, name, None))
    ]
    if missing:
        raise ConfigurationError(
            f"pyramid_session_multi: the revocation store {store!r} lacks "
            f"{', '.join(missing)}; see pyramid_session_multi.interfaces.IRevocationStore."
        )

    def register() -> None:
        manager_config.revocations = store
        # namespaces an earlier commit registered record users too; later ones
        # are stamped as they are added
        for namespace_config in manager_config.configs.values():
            stamp_for_revocations(namespace_config)

    intr = config.introspectable(
        "session_multi revocation store", "revocations", describe_store(store),
        "session_multi revocation store",
    )  # fmt: skip
    intr["store"] = store
    config.action(("pyramid_session_multi", "revocation store"), register, introspectables=(intr,))


def stamp_every_namespace(config: Configurator) -> None:
    """At commit, once a revocation store is set: every namespace keeps stamps."""
    registry = config.registry

    def stamp() -> None:
        manager_config = get_manager_config(registry)
        if manager_config is None or manager_config.revocations is None:
            return
        for namespace_config in manager_config.configs.values():
            stamp_for_revocations(namespace_config)

    config.action(("pyramid_session_multi", "stamp for revocations"), stamp, order=LATE_ORDER)


CHECKS.append(revocation_check)
# a session keeping its own stamps with a user recorded goes through the checks
SELF_JUDGED.add(revocation_check)
# a store stamps every namespace; a session of one that is not stamped records no user
APPLIES[revocation_check] = lambda namespace_config: namespace_config.stamped
