"""One adapter per session library: everything the add-on knows about each.

An adapter (an :class:`~pyramid_session_multi.interfaces.ISessionLibrary`)
says which factories are its library's, what cookie they write, how to
read a session's data without side effects, what its id is, and how to
rotate it.  The built-in ones are tried after any the application added
with ``config.add_session_library()``; a factory none of them claims gets
:class:`SessionLibrary`, the generic fallback.
"""

from collections.abc import Iterable
from typing import Any

from .base import LIFETIME_ATTRIBUTE, SAVE_KEY, UNKNOWN, SessionLibrary
from .beaker import BeakerLibrary, is_beaker_factory
from .pyramid_cookie import PyramidCookieLibrary, is_pyramid_cookie_factory
from .redis import RedisLibrary

#: The libraries the add-on knows, in the order they are tried.
BUILTIN_LIBRARIES: tuple[SessionLibrary, ...] = (
    PyramidCookieLibrary(),
    RedisLibrary(),
    BeakerLibrary(),
)

#: What a factory no library claims gets.
GENERIC = SessionLibrary()


def library_for(factory: Any, added: Iterable[Any] = ()) -> Any:
    """The library adapter of ``factory``: the first of ``added`` (the
    application's, newest first) and then :data:`BUILTIN_LIBRARIES` that
    claims it, else :data:`GENERIC`."""
    for library in (*added, *BUILTIN_LIBRARIES):
        if library.claims(factory):
            return library
    return GENERIC


__all__ = [
    "BUILTIN_LIBRARIES",
    "GENERIC",
    "LIFETIME_ATTRIBUTE",
    "SAVE_KEY",
    "UNKNOWN",
    "BeakerLibrary",
    "PyramidCookieLibrary",
    "RedisLibrary",
    "SessionLibrary",
    "is_beaker_factory",
    "is_pyramid_cookie_factory",
    "library_for",
]
