"""SQL databases behind a circuit breaker: one per database URL and process.

Beaker's ``ext:database`` sessions and the
:class:`~pyramid_session_multi.revocation.SQLRevocationStore` reach their
database through an SQLAlchemy engine.  :func:`guard_engine` puts the
engine behind the :class:`~pyramid_session_multi.stores.breaker.CircuitBreaker`
of its URL:

* a new connection that fails (refused, timed out, the server shutting
  down), or a statement that fails with an error SQLAlchemy reads as a
  disconnect, opens it; SQLAlchemy then drops the pooled connections;
* while it is open, every new connection fails at once with
  :class:`SQLCircuitOpen`, without reaching the network;
* once the interval is over, one connection goes through: its success
  closes the breaker.

Any other error (a constraint, a syntax error) means the database answers.

Beaker makes its engine itself, from a URL: the SQLAlchemy plugin
:class:`BreakerPlugin`, named ``session_multi_breaker`` (``?plugin=
session_multi_breaker`` in the URL; an ``ext:database`` namespace declared
in settings gets it unless its URL names plugins of its own), guards it.
Its ``breaker_interval`` query parameter sets the interval (seconds, 5 by
default; ``off``: no breaker).

Engines of the same URL share one breaker in a process (Beaker keeps one
engine per URL; a sweep and a revocation store on the same database see
the same state): :func:`sql_breakers` lists them.
"""

import threading
from typing import Any

from ..masking import hide_password
from .breaker import DEFAULT_INTERVAL, CircuitBreaker, CircuitOpen

#: The name of :class:`BreakerPlugin` for SQLAlchemy (``?plugin=...``).
PLUGIN = "session_multi_breaker"

#: The query parameter of a URL that sets the interval (seconds, or ``off``).
INTERVAL_PARAMETER = "breaker_interval"


class SQLCircuitOpen(CircuitOpen):
    """A connection to a database refused at once: its circuit breaker is open."""


class _Book:
    """The breakers of this process, by database URL (made when an engine of
    the URL is first guarded, never at import)."""

    def __init__(self) -> None:
        self.breakers: dict[str, CircuitBreaker] = {}
        self.lock = threading.Lock()

    def of(self, url: Any, interval: float) -> CircuitBreaker:
        key = url.render_as_string(hide_password=False)
        with self.lock:
            breaker = self.breakers.get(key)
            if breaker is None:
                breaker = self.breakers[key] = CircuitBreaker(
                    store_name(url),
                    interval,
                    failures=(Exception,),
                    error=SQLCircuitOpen,
                    mask=_masking(url),
                )
            return breaker


_BOOK = _Book()


def _masking(url: Any) -> Any:
    """What takes the password of ``url`` (an SQLAlchemy URL) out of a text.

    A password holding ``@`` is split by the URL's parser at its first one,
    the rest taken for the host: that rest is masked too."""
    password = url.password or ""
    spilled = (url.host or "").rpartition("@")[0]
    if spilled:
        password = f"{password}@{spilled}" if password else spilled
    if not password:
        return None
    as_url = f"db://user:{password}@host"
    return lambda text: hide_password(text, as_url)


def store_name(url: Any) -> str:
    """How logs and the panel name the database of an SQLAlchemy URL (no password)."""
    # a password holding "@" would be split into the host
    host = (url.host or "").rpartition("@")[2]
    where = f"{host}:{url.port}" if host and url.port else host or url.database or "?"
    if host and url.database:
        where = f"{where}/{url.database}"
    return f"{url.get_backend_name()} at {where}"


def sql_breakers() -> list[CircuitBreaker]:
    """Every SQL circuit breaker of this process, by store name."""
    with _BOOK.lock:
        breakers = list(_BOOK.breakers.values())
    return sorted(breakers, key=lambda breaker: breaker.store)


def breaker_of_url(url: str) -> CircuitBreaker | None:
    """The circuit breaker of the database at ``url`` (an SQLAlchemy URL,
    its plugin parameters ignored), once an engine of it was guarded."""
    import sqlalchemy as sa

    parsed = sa.make_url(url).difference_update_query(["plugin", "plugins", INTERVAL_PARAMETER])
    with _BOOK.lock:
        return _BOOK.breakers.get(parsed.render_as_string(hide_password=False))


def as_interval(value: Any) -> float | None:
    """A ``breaker_interval``: seconds, more than 0; ``off``: ``None`` (no breaker)."""
    if isinstance(value, str) and value.strip().lower() == "off":
        return None
    try:
        interval = float(value)
    except (TypeError, ValueError):
        interval = float("nan")
    if not interval > 0:
        raise ValueError(
            f"{INTERVAL_PARAMETER}={value!r} is not valid: it takes seconds (a number "
            "more than 0) or off"
        )
    return interval


def guard_engine(
    engine: Any, interval: float = DEFAULT_INTERVAL, url: Any = None
) -> CircuitBreaker:
    """Put ``engine`` behind the circuit breaker of its URL; returns the breaker.

    :param engine: an SQLAlchemy engine.
    :param interval: seconds the breaker stays open (for the first engine of
        the URL; later ones share its breaker).
    :param url: the URL the breaker is kept under, the engine's by default.

    The breaker makes the engine's new connections itself (a ``do_connect``
    listener): a ``do_connect`` listener added to the engine later, which
    would change the connection's arguments, is not reached.
    """
    from sqlalchemy import event

    breaker = _BOOK.of(engine.url if url is None else url, interval)
    guarded: object = getattr(engine, "session_multi_breaker", None)
    if guarded is not None:  # guarded already (by the plugin, or an earlier call)
        return breaker
    dbapi_error: Any = getattr(engine.dialect, "loaded_dbapi", None)
    dbapi_error = getattr(dbapi_error, "Error", Exception)

    def connect(dialect: Any, record: Any, cargs: Any, cparams: Any) -> Any:
        probe = breaker.before()
        try:
            connection = dialect.connect(*cargs, **cparams)
        except BaseException as exc:
            if isinstance(exc, dbapi_error):
                breaker.failed(exc, probe)
            elif probe:
                breaker.succeeded(probe)
            raise
        breaker.succeeded(probe)
        return connection

    def error(context: Any) -> None:
        # a pooled connection found dead by its pre-ping is replaced at once:
        # the new connection tells whether the database answers
        if context.is_disconnect and not getattr(context, "is_pre_ping", False):
            breaker.failed(context.original_exception)

    event.listen(engine, "do_connect", connect)
    event.listen(engine, "handle_error", error)
    engine.session_multi_breaker = breaker
    return breaker


class BreakerPlugin:
    """The SQLAlchemy plugin ``session_multi_breaker``: the engine of a URL that
    names it (``?plugin=session_multi_breaker``) is guarded by
    :func:`guard_engine`, with the URL's ``breaker_interval`` (seconds, or
    ``off``), which SQLAlchemy then drops from the URL."""

    def __init__(self, url: Any, kwargs: dict[str, Any]) -> None:
        given = url.query.get(INTERVAL_PARAMETER, DEFAULT_INTERVAL)
        if isinstance(given, tuple):
            given = given[-1]
        #: the interval of the breaker, ``None``: none
        self.interval = as_interval(given)
        self.url = url.difference_update_query(["plugin", "plugins", INTERVAL_PARAMETER])

    def update_url(self, url: Any) -> Any:
        return url.difference_update_query([INTERVAL_PARAMETER])

    def handle_dialect_kwargs(self, dialect_cls: Any, dialect_args: dict[str, Any]) -> None:
        """Nothing to add (SQLAlchemy's plugin contract)."""

    def handle_pool_kwargs(self, pool_cls: Any, pool_args: dict[str, Any]) -> None:
        """Nothing to add (SQLAlchemy's plugin contract)."""

    def engine_created(self, engine: Any) -> None:
        if self.interval is not None:
            guard_engine(engine, self.interval, self.url)


def with_breaker_plugin(url: str) -> str:
    """``url`` naming :data:`PLUGIN`, unless it names plugins of its own."""
    import sqlalchemy as sa

    if "plugin" in sa.make_url(url).query:
        return url
    return f"{url}{'&' if '?' in url else '?'}plugin={PLUGIN}"
