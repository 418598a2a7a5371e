"""The load check that ends a session whose user was signed out everywhere since.

``rotate(userid=...)`` records the user and the time in a session's stamps
(see :mod:`.lifetime`); ``revoke(userid)`` writes to the shared revocation
store that the user's sessions recorded before then are over.  A request
asks the store once per recorded user at most, and only when it loads a
session that has a user recorded; a request with none costs nothing.
"""

from typing import Any

from ..exceptions import RevocationStoreUnavailable
from .devices import is_ended, keeps_devices, note_moved
from .lifetime import lifetime_of
from .loading import log_load_error

#: The reason a revoked session is rejected with.
REVOKED = "revoked"


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


def revocation_check(
    work: Any, namespace_config: Any, request: Any, session: Any, partner: Any
) -> str | None:
    """Reject a session recorded for a user revoked since it was recorded."""
    lifetime = lifetime_of(session)
    if lifetime is None:
        return None
    stamps = lifetime.stamps
    if stamps.userid is None or work.revocations is None:
        return None
    login = stamps.login
    if is_refused(login, *ask_revocation(work, namespace_config, str(stamps.userid))):
        # revoked, or its device was ended: client-side cookies and old copies included
        return REVOKED
    if lifetime.moved:
        # a login, or the idle clock moved in this load: the device index hears of it
        note_moved(work, namespace_config.namespace)
    return None


def kept_as_made(work: Any, namespace_config: Any, request: Any, session: Any) -> bool:
    """Whether a session of a quick namespace (see :mod:`.pipeline`) that records
    a user, and did not end on load, is kept as it was made: its user was not
    revoked since its login, its device was not ended, and its device's entry
    has nothing to hear (its stamps did not move).

    ``False`` sends the session through its namespace's full load, whose
    :func:`revocation_check` refuses it or notes its device, from the answer
    asked here (the store is asked once per user and request either way).
    Raises :class:`~pyramid_session_multi.exceptions.RevocationStoreUnavailable`
    as that check does, logged as a load's error: a store that cannot answer
    keeps no session.
    """
    user = session._session_multi_login()
    if user is None:
        return False
    login = user[1]
    try:
        revoked, ended = ask_revocation(work, namespace_config, str(user[0]))
    except Exception as exc:
        log_load_error(namespace_config.namespace, exc, request)
        raise
    if (revoked is not None and login < revoked) or (ended and is_ended(login, ended)):
        return False  # refused, as revocation_check says
    return not (session._session_multi_moved and keeps_devices(work.revocations))


def is_refused(login: float | None, revoked: float | None, ended: frozenset[float]) -> bool:
    """Whether a session recorded at ``login`` is over: its user was ``revoked``
    since, or its login is among the ``ended`` ones."""
    if revoked is not None and (login is None or login < revoked):
        return True
    return login is not None and is_ended(login, ended)


def ask_revocation(
    work: Any, namespace_config: Any, userid: str
) -> tuple[float | None, frozenset[float]]:
    """What the request knows of ``userid``: the revocation and ended logins
    the store said (asked once per request), or that this request recorded."""
    cache = work.revoked
    if userid in cache:
        return cache[userid], work.ended.get(userid, frozenset())
    store = work.revocations
    try:
        revoked, ended = revocation_of(store, userid)
    except Exception as exc:
        raise RevocationStoreUnavailable(
            f"pyramid_session_multi: namespace {namespace_config.namespace!r} cannot be "
            f"loaded: the revocation store ({describe_store(store)}) could not say whether "
            f"its user was signed out: {store_error(store, exc)}"
        ) from exc
    cache[userid] = revoked
    work.ended[userid] = ended
    return revoked, ended


def revocation_of(store: Any, userid: str) -> tuple[float | None, frozenset[float]]:
    """What ``store`` says of ``userid``: its revocation, and its ended logins
    (none from a store without a device index)."""
    ask = getattr(store, "revocation_of", None)
    if callable(ask):
        answer: tuple[float | None, frozenset[float]] = ask(userid)
        return answer
    return store.revoked_at(userid), frozenset()


def remember_revocation(work: Any, userid: str, at: float) -> None:
    """A revocation this request recorded: its sessions are judged by it, not
    by what the store said before."""
    work.revoked[userid] = at
