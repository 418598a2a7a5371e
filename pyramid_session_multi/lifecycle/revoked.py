"""The load check that ends a session whose user was signed out everywhere since.

``rotate(userid=...)`` records the user and the time in a session's stamps
(see :mod:`.lifetime`); ``revoke(userid)`` writes to the shared revocation
store that the user's sessions recorded before then are over.  A request
asks the store once per recorded user at most, and only when it loads a
session that has a user recorded; a request with none costs nothing.
"""

from typing import Any

from ..exceptions import RevocationStoreUnavailable
from .lifetime import lifetime_of

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
    if lifetime is None or lifetime.stamps.userid is None:
        return None
    store = work.revocations
    if store is None:
        return None
    userid = str(lifetime.stamps.userid)
    cache = work.revoked
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


def remember_revocation(work: Any, userid: str, at: float) -> None:
    """A revocation this request recorded: its sessions are judged by it, not
    by what the store said before."""
    work.revoked[userid] = at
