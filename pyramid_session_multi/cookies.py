"""Finding the cookie a session factory writes, without calling it.

Session libraries keep their cookie settings in different places: pyramid's
cookie sessions (and so pyramid_nacl_session) on the session class,
pyramid_beaker in the class's ``_options``, pyramid_session_redis in the
closure of the factory function.  Each reader below knows one of them.
"""

import inspect
import re
from collections.abc import Callable
from typing import Any

#: The attributes :func:`discover_cookie_attributes` reports, in order.
COOKIE_ATTRIBUTES = ("secure", "httponly", "samesite", "max_age", "path", "domain")

CookieInfo = dict[str, Any]

# RFC 6265 token characters; WebOb refuses anything else at response time.
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
    if name.startswith("$"):
        return "a cookie name may not start with '$'"
    return None


def _from_pyramid_cookie_session(factory: Any) -> CookieInfo | None:
    # pyramid.session.BaseCookieSessionFactory returns a class with these.
    name = getattr(factory, "_cookie_name", None)
    if not isinstance(name, str):
        return None
    return {
        "name": name,
        "secure": getattr(factory, "_cookie_secure", None),
        "httponly": getattr(factory, "_cookie_httponly", None),
        "samesite": getattr(factory, "_cookie_samesite", None),
        "max_age": getattr(factory, "_cookie_max_age", None),
        "path": getattr(factory, "_cookie_path", None),
        "domain": getattr(factory, "_cookie_domain", None),
    }


def _from_beaker(factory: Any) -> CookieInfo | None:
    # pyramid_beaker.BeakerSessionFactoryConfig returns a SessionObject
    # subclass whose ``_options`` are Beaker's session options.
    options = getattr(factory, "_options", None)
    if not isinstance(options, dict) or not inspect.isclass(factory):
        return None
    if not any(cls.__module__.startswith("beaker.") for cls in factory.__mro__):
        return None
    return {
        "name": options.get("key", "beaker.session.id"),
        "secure": options.get("secure", False),
        "httponly": options.get("httponly", False),
        "samesite": options.get("samesite", "Lax"),
        "max_age": options.get("cookie_expires"),
        "path": options.get("cookie_path", "/"),
        "domain": options.get("cookie_domain"),
    }


def _from_redis_closure(factory: Any) -> CookieInfo | None:
    # pyramid_session_redis.RedisSessionFactory returns a closure over its
    # arguments; the cookie settings are among its free variables.
    if not inspect.isfunction(factory) or factory.__closure__ is None:
        return None
    free = dict(zip(factory.__code__.co_freevars, factory.__closure__, strict=False))
    cell = free.get("cookie_name")
    if cell is None:
        return None
    try:
        name = cell.cell_contents
    except ValueError:  # an empty cell
        return None
    if not isinstance(name, str):
        return None
    info: CookieInfo = {"name": name}
    kwargs_cell = free.get("set_cookie_kwargs")
    kwargs = kwargs_cell.cell_contents if kwargs_cell is not None else {}
    if isinstance(kwargs, dict):
        for attribute in COOKIE_ATTRIBUTES:
            info[attribute] = kwargs.get(attribute)
    return info


def _from_plain_attribute(factory: Any) -> CookieInfo | None:
    # A hand-written factory may simply say ``factory.cookie_name = "x"``.
    name = getattr(factory, "cookie_name", None)
    if isinstance(name, str):
        return {"name": name}
    return None


_READERS: "tuple[Callable[[Any], CookieInfo | None], ...]" = (
    _from_pyramid_cookie_session,
    _from_beaker,
    _from_redis_closure,
    _from_plain_attribute,
)


def discover_cookie(factory: Any) -> CookieInfo | None:
    """Return what can be learnt of the cookie ``factory`` writes.

    The result is a dict with ``name`` and whichever of
    :data:`COOKIE_ATTRIBUTES` the library exposes, or ``None`` when the
    factory is not one this module knows.
    """
    for reader in _READERS:
        info = reader(factory)
        if info is not None:
            return info
    return None


def discover_cookie_name(factory: Any) -> str | None:
    """Return the name of the cookie ``factory`` writes, or ``None``."""
    info = discover_cookie(factory)
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
