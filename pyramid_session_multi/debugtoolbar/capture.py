"""What the SessionMulti panel records, kept apart from how it is shown.

Nothing here changes what the application sends:

- ingress is read from a *detached* copy of the request (same cookies,
  registry and scheme, empty body): the session the factory builds there
  registers its callbacks on that copy, which is never finished, so it
  cannot set a cookie or write to a backend;
- egress is read from the live sessions' raw storage, never through the
  accessors that mark a session accessed (and would re-issue its cookie).
"""

from typing import Any

from pyramid.request import Request

from ..binding import BINDING_KEY
from ..budget import COOKIE_SIZE_LIMIT
from ..config import NamespaceConfig
from ..hidden import take
from ..lifecycle.detached import detached_request
from ..lifecycle.devices import device_id
from ..lifecycle.lifetime import LIFETIME_KEY
from ..manager import call_for_namespace

__all__ = [
    "COOKIE_SIZE_LIMIT",
    "NotReadable",
    "Reprs",
    "loaded_items",
    "raw_items",
    "read_detached",
    "safe_repr",
    "shown",
    "snapshot",
]


class NotReadable(Exception):
    """An untouched namespace the panel will not read (it says why)."""


#: A value's repr is cut past this many characters.
REPR_LIMIT = 2000


def safe_repr(value: Any) -> str:
    """``repr(value)``, cut to :data:`REPR_LIMIT`; never raises."""
    try:
        text = repr(value)
    except Exception as exc:
        return f"<repr failed: {type(exc).__name__}: {exc}>"
    if len(text) > REPR_LIMIT:
        return f"{text[:REPR_LIMIT]}… ({len(text)} characters in all)"
    return text


def describe_error(exc: BaseException) -> str:
    notes = " ".join(getattr(exc, "__notes__", []))
    return f"{type(exc).__name__}: {safe_repr(str(exc))[1:-1]} {notes}".strip()


class Reprs(dict[str, str]):
    """Data already shown as reprs (see :func:`snapshot`)."""


def _reprs(data: dict[Any, Any] | None) -> dict[str, str] | None:
    if data is None:
        return None
    return Reprs({safe_repr(key): safe_repr(value) for key, value in data.items()})


#: Types whose instances never change, so that their repr can wait.
_SETTLED = frozenset({str, int, float, bool, bytes, complex, type(None)})


def snapshot(data: dict[Any, Any] | None) -> dict[Any, Any] | None:
    """``data`` (a copy of a session's storage) as it is now, shown later by :func:`shown`.

    Data made only of values that cannot change is kept as it is, to be
    formatted only if the panel is looked at; anything else is formatted
    now, before the application changes it in place.
    """
    if data is None:
        return None
    for key, value in data.items():
        if type(value) not in _SETTLED or type(key) not in _SETTLED:
            return _reprs(data)
    return data


def shown(data: dict[Any, Any] | None) -> dict[str, str] | None:
    """What :func:`snapshot` kept, as reprs."""
    if data is None or type(data) is Reprs:
        return data
    return _reprs(data)


def _as_stored(config: NamespaceConfig, data: dict[Any, Any] | None) -> dict[Any, Any] | None:
    """The application's data of ``data`` read as its library stores it.

    A stamped namespace's stored data holds the add-on's lifetime record
    (shown apart, as the lifetime), a bound or partner one its binding
    token: they are taken out, and any key of the application's spelled the
    same is shown as the application's.  A session
    the add-on loaded has its record out already; there, and in a namespace
    that keeps none, every key is the application's.
    """
    if data is None:
        return data
    data = dict(data)
    if config.stamped and config.library.records_in_data:
        take(data, LIFETIME_KEY)
    if config.bound_to is not None or config.partner:
        take(data, BINDING_KEY)
    return data


def lifetime_report(described: dict[str, Any] | None) -> dict[str, Any] | None:
    """Seconds left before idle and absolute expiry and the recorded user, as
    text, from what :func:`~pyramid_session_multi.describe.describe_lifetime`
    said of a session at the end of its request; ``None`` for a namespace
    that keeps no lifetime stamps."""
    if described is None:
        return None
    left = {
        kind: None if seconds is None else f"{seconds:.0f} s"
        for kind, seconds in (
            ("idle", described["idle_left"]),
            ("absolute", described["absolute_left"]),
        )
    }
    userid, login = described["userid"], described.get("login")
    return {
        "idle_left": left["idle"],
        "absolute_left": left["absolute"],
        "userid": None if userid is None else safe_repr(userid),
        # the device this request is, as devices() and psessions --devices name it
        "device": None if userid is None or login is None else device_id(userid, login),
    }


def raw_items(library: Any, session: Any) -> dict[Any, Any] | None:
    """The session's data, as :func:`snapshot` keeps it, without touching its
    accessors, or ``None``.

    ``None`` means the library cannot read it without side effects (see
    :meth:`~pyramid_session_multi.libraries.SessionLibrary.read`): a lazy
    session the application never loaded, or a library the add-on does not
    know.
    """
    return snapshot(library.read(session))


def loaded_items(config: NamespaceConfig, session: Any) -> dict[Any, Any] | None:
    """What a lazy session held when the application loaded it, as :func:`snapshot`
    keeps it."""
    return snapshot(_as_stored(config, config.library.loaded_data(session)))


def read_detached(request: Request, config: NamespaceConfig) -> tuple[Any, dict[str, str] | None]:
    """Call ``config``'s discriminator and factory on a detached request.

    Returns ``(discriminator result, data)``; data is ``None`` when the
    discriminator turns the request away.  Exceptions propagate.
    """
    copy = detached_request(request)
    allowed: Any = True
    if config.discriminator is not None:
        allowed = call_for_namespace("discriminator", config.namespace, config.discriminator, copy)
        if not allowed:
            return allowed, None
    library = config.library
    if library.reads_store_when_loaded:
        if config.cookie_name not in request.cookies:
            return allowed, {}  # the library would only mint a new id
        # Loading it would create lock files, directories or the SQL table
        # for whatever id the client sent: the panel leaves the store alone.
        raise NotReadable(
            f"not read: the application did not load this {library.name} namespace, "
            "and reading it here would touch its store"
        )
    session = call_for_namespace("session factory", config.namespace, config.factory, copy)
    # made here, not loaded by the add-on: its data is as the library stores it
    stored = library.read(session)
    if stored is None and hasattr(session, "items"):
        # A lazy session on a detached request: loading it is harmless here.
        stored = dict(session.items())
    return allowed, _reprs(_as_stored(config, stored))


def compare(ingress: dict[str, str] | None, egress: dict[str, str] | None) -> list[tuple[str, str]]:
    """Each key with ``added``, ``changed``, ``removed`` or ``""``."""
    before, after = ingress or {}, egress if egress is not None else (ingress or {})
    marks = []
    for key in sorted(set(before) | set(after)):
        if key not in before:
            mark = "added"
        elif key not in after:
            mark = "removed"
        elif before[key] != after[key]:
            mark = "changed"
        else:
            mark = ""
        marks.append((key, mark))
    return marks


def cookie_outcome(response: Any, cookie_name: str) -> tuple[str, int | None]:
    """``("set" | "deleted" | "none", size in bytes)`` for ``cookie_name``."""
    outcome, size = "none", None
    for header in response.headers.getall("Set-Cookie"):
        name, _, rest = header.strip().partition("=")
        if name != cookie_name:
            continue
        value = rest.split(";", 1)[0]
        attributes = rest.lower()
        expired = (
            "max-age=0" in attributes
            or "expires=thu, 01-jan-1970" in attributes
            or "expires=thu, 01 jan 1970" in attributes
        )
        outcome = "deleted" if expired or not value else "set"
        size = len(name) + 1 + len(value)
    return outcome, size
