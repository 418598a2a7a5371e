"""The add-on's records in a session's own storage, and the application's keys beside them.

The add-on keeps a small record of its own in the data a session library
saves (lifetime stamps under
:data:`~pyramid_session_multi.lifecycle.lifetime.LIFETIME_KEY`, a recorded
user under :data:`~pyramid_session_multi.libraries.pyramid_cookie.USER_KEY`),
taken out before the application sees the session and put in only while the
library saves it.

An application may write a key spelled the same (a client chooses the keys
of a form the application stores with ``session.update()``).  That key is
the application's data: while the record is stored, the application's value
rides *inside* it (``{"a": value, "r": record}``; a record is never a
``dict``), so what is stored under the key is always the add-on's, and a
client can never make the add-on take its data for a record.

Everything here reads and writes through ``dict``'s own methods: a
session's would mark it accessed or changed.
"""

from typing import Any

#: What :func:`conceal` returns when the application had no key of its own.
ABSENT: Any = object()

_APPLICATION = "a"
_RECORD = "r"


def reveal(storage: dict[Any, Any], key: str, stored: Any) -> Any:
    """The record ``stored`` (just taken out from under ``key``) holds; the
    application's own value it carried goes back into ``storage``."""
    if type(stored) is not dict:
        return stored
    if _APPLICATION in stored:
        dict.__setitem__(storage, key, stored[_APPLICATION])
    return stored.get(_RECORD)


def take(storage: dict[Any, Any], key: str) -> Any:
    """Take the record stored under ``key`` out of ``storage`` (``None`` if none),
    leaving the application's own value for the key in its place."""
    stored = dict.pop(storage, key, None)
    if stored is None or type(stored) is not dict:  # a record alone: no application value
        return stored
    return reveal(storage, key, stored)


def conceal(storage: dict[Any, Any], key: str, record: Any) -> Any:
    """Store ``record`` (``None``: no record) under ``key`` for the library to save.

    Returns the application's own value for the key (:data:`ABSENT` if it has
    none), for :func:`restore` once the library has saved.
    """
    own = dict.pop(storage, key, ABSENT)
    if own is ABSENT:
        if record is not None:
            dict.__setitem__(storage, key, record)
        return ABSENT
    stored = {_APPLICATION: own}
    if record is not None:
        stored[_RECORD] = record
    dict.__setitem__(storage, key, stored)
    return own


def restore(storage: dict[Any, Any], key: str, own: Any) -> None:
    """Undo :func:`conceal`: the application's own value (if any) is back under ``key``."""
    dict.pop(storage, key, None)
    if own is not ABSENT:
        dict.__setitem__(storage, key, own)


def split(stored: Any, missing: Any) -> tuple[Any, Any]:
    """What is stored under a record's key, as ``(the application's own value,
    the record)``, each ``missing`` where there is none."""
    if stored is missing:
        return missing, missing
    if type(stored) is not dict:
        return missing, stored
    return stored.get(_APPLICATION, missing), stored.get(_RECORD, missing)


def join(own: Any, record: Any, missing: Any) -> Any:
    """The inverse of :func:`split`: what to store (``missing``: nothing)."""
    if own is missing:
        return record
    stored = {_APPLICATION: own}
    if record is not missing:
        stored[_RECORD] = record
    return stored
