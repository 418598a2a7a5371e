"""Session cookies: finding the one a factory writes, and the rules browsers apply.

Where each library keeps its cookie settings is its adapter's business
(:mod:`.libraries`); this module asks the adapter, and knows what makes a
cookie name unusable or a cookie refused.
"""

import re
from collections.abc import Iterable
from typing import Any

from .libraries import library_for
from .libraries.base import COOKIE_ATTRIBUTES

CookieInfo = dict[str, Any]

# RFC 6265 token characters but '$' (old cookies' attributes start with it);
# WebOb refuses anything else at response time.
_TOKEN = re.compile(r"^[!#%&'*+\-.^_`|~0-9A-Za-z]+$")
# Names WebOb reads as cookie attributes: setting such a cookie fails.
_RESERVED = frozenset(
    {"domain", "samesite", "max-age", "path", "expires", "comment", "secure", "httponly", "version"}
)


def cookie_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a cookie name, or ``None`` if it can."""
    if not isinstance(name, str) or not _TOKEN.match(name):
        return "a cookie name is letters, digits and !#%&'*+-.^_`|~ only"
    if name.lower() in _RESERVED:
        return f"{name!r} is a cookie attribute name"
    return None


def discover_cookie(factory: Any, added: Iterable[Any] = ()) -> CookieInfo | None:
    """Return what can be learnt of the cookie ``factory`` writes.

    The result is a dict with ``name`` and whichever of
    :data:`COOKIE_ATTRIBUTES` the library exposes, or ``None`` when not even
    the name can be found.  ``added`` are the application's own library
    adapters, tried first.
    """
    return library_for(factory, added).cookie(factory)  # type: ignore[no-any-return]


def discover_cookie_name(factory: Any, added: Iterable[Any] = ()) -> str | None:
    """Return the name of the cookie ``factory`` writes, or ``None``."""
    info = discover_cookie(factory, added)
    return None if info is None else str(info["name"])


def browser_refusal(name: str, cookie: CookieInfo) -> str | None:
    """Why browsers would refuse cookie ``name`` with attributes ``cookie``.

    ``cookie`` is what :func:`discover_cookie` found; a rule whose attribute
    could not be read is not applied.  Returns ``None`` when browsers keep it.
    """
    secure = cookie.get("secure")
    samesite = cookie.get("samesite")
    known_insecure = "secure" in cookie and not secure
    if isinstance(samesite, str) and samesite.lower() == "none" and known_insecure:
        return "browsers refuse SameSite=None without Secure; set secure=True or SameSite=Lax"
    if name.startswith("__Host-"):
        if known_insecure:
            return "browsers refuse a __Host- cookie without Secure; set secure=True"
        if cookie.get("domain"):
            return "browsers refuse a __Host- cookie with a Domain; leave the domain unset"
        if cookie.get("path") not in (None, "/"):
            return "browsers refuse a __Host- cookie whose Path is not /; set path='/'"
    if name.startswith("__Secure-") and known_insecure:
        return "browsers refuse a __Secure- cookie without Secure; set secure=True"
    return None


__all__ = [
    "COOKIE_ATTRIBUTES",
    "CookieInfo",
    "browser_refusal",
    "cookie_name_problem",
    "discover_cookie",
    "discover_cookie_name",
]
