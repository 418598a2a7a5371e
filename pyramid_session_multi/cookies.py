"""Session cookies: finding the one a factory writes, and the rules browsers apply.

Where each library keeps its cookie settings is its adapter's business
(:mod:`.libraries`); this module asks the adapter, and knows what makes a
cookie name unusable or a cookie refused.
"""

import re
from collections.abc import Iterable
from typing import Any

from webob.cookies import make_cookie

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


#: Characters that end or split a cookie attribute, or that a header may not carry.
_ATTRIBUTE_BREAKERS = re.compile(r"[;,\s\x00-\x1f\x7f]")


def cookie_attribute_problem(value: Any) -> str | None:
    """Why ``value`` cannot be a cookie's Path or Domain, or ``None`` if it can.

    A ``;`` would add attributes of its own choosing (``Domain=...``), a
    ``,`` splits the header for some parsers, whitespace and control
    characters (CR, LF) break or forge headers, and non-ASCII text is
    encoded differently by every layer on the way.
    """
    if value is None:
        return None
    if not isinstance(value, str):
        return f"it is text, not {type(value).__name__}"
    if not value.isascii():
        return "it takes ASCII characters only"
    match = _ATTRIBUTE_BREAKERS.search(value)
    if match is not None:
        return (
            f"it may not contain {match.group()!r} (no ';', ',', whitespace or control characters)"
        )
    return None


#: The attribute WebOb cannot write: CHIPS, a cookie kept per top-level site.
PARTITIONED = "Partitioned"


def is_partitioned(header: str) -> bool:
    """Whether the ``Set-Cookie`` value ``header`` carries ``Partitioned``."""
    return any(part.strip().lower() == "partitioned" for part in header.split(";")[1:])


def partitioned(header: str) -> str:
    """The ``Set-Cookie`` value ``header`` with ``Partitioned`` added, once."""
    return header if is_partitioned(header) else f"{header}; {PARTITIONED}"


def deletion_header(
    name: str,
    *,
    path: str,
    domain: str | None,
    secure: bool,
    samesite: str | None,
    partitioned_: bool,
) -> str:
    """The ``Set-Cookie`` value that makes a browser drop cookie ``name``.

    A browser applies a deletion only to the cookie it would have accepted
    with those attributes: a ``__Host-``/``__Secure-`` cookie, or one with
    ``SameSite=None``, needs ``Secure`` on its deletion too, and a
    partitioned cookie needs ``Partitioned``; ``Path`` and ``Domain`` pick
    the cookie among those of the same name.
    """
    value = str(
        make_cookie(name, None, path=path, domain=domain, secure=bool(secure), samesite=samesite)
    )
    return partitioned(value) if partitioned_ else value


def deletion_secure(name: str, cookie: CookieInfo, partitioned_: bool = False) -> bool:
    """Whether the deletion of cookie ``name`` must carry ``Secure``.

    When the cookie is secure, and wherever a browser would accept the
    cookie only with ``Secure`` (a ``__Host-`` or ``__Secure-`` name,
    ``SameSite=None``, ``Partitioned``) even if the library's setting
    could not be read.
    """
    samesite = cookie.get("samesite")
    return bool(
        cookie.get("secure")
        or partitioned_
        or name.startswith(("__Host-", "__Secure-"))
        or (isinstance(samesite, str) and samesite.lower() == "none")
    )


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
    if cookie.get("partitioned") and not secure:
        return "browsers refuse a Partitioned cookie without Secure; set secure=True"
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


def cookie_headers(headers: list[tuple[str, str]], cookie_name: str) -> list[str]:
    """The values of the ``Set-Cookie`` headers among ``headers`` that set ``cookie_name``."""
    prefix = cookie_name + "="
    return [
        value
        for name, value in headers
        if name.lower() == "set-cookie" and value.lstrip().startswith(prefix)
    ]


def sets_new_cookie(
    before: list[tuple[str, str]], after: list[tuple[str, str]], cookie_name: str
) -> bool:
    """Whether the headers ``after`` set ``cookie_name`` in a way those ``before`` did not
    (a library may rewrite the headers it finds: compare, not count)."""
    old = cookie_headers(before, cookie_name)
    new = cookie_headers(after, cookie_name)
    return len(new) > len(old) or new != old


__all__ = [
    "COOKIE_ATTRIBUTES",
    "PARTITIONED",
    "CookieInfo",
    "browser_refusal",
    "cookie_attribute_problem",
    "cookie_headers",
    "cookie_name_problem",
    "deletion_header",
    "deletion_secure",
    "discover_cookie",
    "discover_cookie_name",
    "is_partitioned",
    "partitioned",
    "sets_new_cookie",
]
