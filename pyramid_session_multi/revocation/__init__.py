"""Where "this user was signed out everywhere, at this time" is kept, and how it is used.

See :doc:`/narr/lifetimes`.  A store provides
:class:`~pyramid_session_multi.interfaces.IRevocationStore`; set one with
``config.set_revocation_store(store)`` or the ``session_multi.revocations``
setting (:func:`store_from_url`).
"""

from typing import Any

from ..exceptions import RevocationStoreUnavailable
from ..masking import hide_in, password_of, without_password
from .core import (
    REVOKED,
    describe_store,
    record_ttl,
    record_unended,
    revocation_check,
    revoke,
    revoke_user,
    set_revocation_store,
    stamp_every_namespace,
)
from .memory import MemoryRevocationStore
from .redis import RedisRevocationStore
from .sql import SQLRevocationStore

#: URL schemes that name a Redis server; any other URL is SQLAlchemy's.
REDIS_SCHEMES = ("redis", "rediss", "unix")


def store_from_url(url: str) -> Any:
    """The store a ``session_multi.revocations`` URL names.

    ``redis://``, ``rediss://`` or ``unix://``: a
    :class:`RedisRevocationStore`; ``postgresql://``, ``postgresql+psycopg://``,
    ``sqlite:///...`` or any other SQLAlchemy URL: an
    :class:`SQLRevocationStore`.  Nothing is connected yet.  Raises
    ``ValueError`` saying what is accepted.
    """
    accepts = (
        "a Redis URL (redis://HOST:PORT/DB, rediss://..., unix://...) or an SQLAlchemy "
        "URL (postgresql+psycopg://USER@HOST/DB, sqlite:///PATH)"
    )
    if not isinstance(url, str) or not url.strip():
        raise ValueError(f"is empty: it takes {accepts}")
    url = url.strip()
    shown = without_password(url)
    scheme, sep, _rest = url.partition("://")
    if not sep or not scheme:
        raise ValueError(f"= {shown!r} is not a URL: it takes {accepts}")
    if scheme.lower() in REDIS_SCHEMES:
        try:
            return RedisRevocationStore.from_url(url)
        except ImportError as exc:
            raise ValueError(f"names Redis, but the redis package is not installed: {exc}") from exc
        except ValueError as exc:
            raise ValueError(f"= {shown!r} is not a Redis URL: {hide_in(str(exc), url)}") from exc
    try:
        import sqlalchemy  # noqa: F401
    except ImportError as exc:
        raise ValueError(
            f"= {shown!r} names an SQL database, but SQLAlchemy is not installed"
        ) from exc
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        return SQLRevocationStore(url)
    except (ArgumentError, NoSuchModuleError, ImportError, ValueError) as exc:
        if password_of(url) is not None or "@" in url or shown != url:
            # a parser's message quotes the piece it choked on: a part of the password,
            # where one holding ":", "@", "/" or "#" was split elsewhere
            why = (
                "it does not parse (percent-encode a password's ':', '@', '/', '#' and '%', "
                "and give the port as a number)"
            )
        else:
            why = f"{type(exc).__name__}: {hide_in(str(exc), url)}"
        raise ValueError(f"= {shown!r} is not {accepts}: {why}") from exc


__all__ = [
    "REVOKED",
    "MemoryRevocationStore",
    "RedisRevocationStore",
    "RevocationStoreUnavailable",
    "SQLRevocationStore",
    "describe_store",
    "record_ttl",
    "record_unended",
    "revocation_check",
    "revoke",
    "revoke_user",
    "set_revocation_store",
    "stamp_every_namespace",
    "store_from_url",
]
