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

A hung server (stopped, not gone) answers no statement, and the driver
waits for it without a timeout of its own.  A guarded engine whose
driver has a socket (psycopg, psycopg2: ``fileno()``) gives each
statement, commit, rollback and checkout ping ``statement_timeout_client``
seconds (the URL's query parameter, :data:`DEFAULT_TIMEOUT` by default;
``off``: none): past it, the process's one
:class:`~pyramid_session_multi.stores.watchdog.Watchdog` thread shuts the
connection's socket down, the call fails with the driver's connection
error, which opens the breaker, and the connection is discarded.  A
statement that takes longer on purpose needs a larger timeout.  A
PostgreSQL URL without ``connect_timeout`` gets that timeout as its
connect timeout too (whole seconds, 2 at least).

Engines of the same URL share one breaker in a process (Beaker keeps one
engine per URL; a sweep and a revocation store on the same database see
the same state): :func:`sql_breakers` lists them.
"""

import math
import threading
from typing import Any

from ..masking import hide_password
from .breaker import DEFAULT_INTERVAL, CircuitBreaker, CircuitOpen
from .watchdog import Watchdog

#: The name of :class:`BreakerPlugin` for SQLAlchemy (``?plugin=...``).
PLUGIN = "session_multi_breaker"

#: The query parameter of a URL that sets the interval (seconds, or ``off``).
INTERVAL_PARAMETER = "breaker_interval"

#: The query parameter of a URL that sets the seconds a statement may wait
#: for its answer (or ``off``).
TIMEOUT_PARAMETER = "statement_timeout_client"

#: Seconds a statement of a guarded engine may wait for its answer, unless
#: its URL sets :data:`TIMEOUT_PARAMETER`.
DEFAULT_TIMEOUT = 5.0

#: The query parameters this module reads, dropped from a URL before it is used.
PARAMETERS = (INTERVAL_PARAMETER, TIMEOUT_PARAMETER)


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

#: The watchdog of the statements of every guarded engine (its thread starts
#: at the first statement).
_WATCHDOG = Watchdog()


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

    parsed = sa.make_url(url).difference_update_query(["plugin", "plugins", *PARAMETERS])
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


def as_timeout(value: Any) -> float | None:
    """A ``statement_timeout_client``: seconds, more than 0; ``off``: ``None`` (none)."""
    if isinstance(value, str) and value.strip().lower() == "off":
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = float("nan")
    if not 0 < seconds < float("inf"):
        raise ValueError(
            f"{TIMEOUT_PARAMETER}={value!r} is not valid: it takes seconds (a number "
            "more than 0) or off"
        )
    return seconds


def query_value(url: Any, name: str, default: Any) -> Any:
    """The last value of the query parameter ``name`` of an SQLAlchemy URL."""
    given = url.query.get(name, default)
    return given[-1] if isinstance(given, tuple) else given


def guard_engine(
    engine: Any,
    interval: float = DEFAULT_INTERVAL,
    url: Any = None,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> CircuitBreaker:
    """Put ``engine`` behind the circuit breaker of its URL; returns the breaker.

    :param engine: an SQLAlchemy engine.
    :param interval: seconds the breaker stays open (for the first engine of
        the URL; later ones share its breaker).
    :param url: the URL the breaker is kept under, the engine's by default.
    :param timeout: seconds a statement, commit, rollback or checkout ping
        may wait for its answer before its socket is shut down (``None``:
        no limit); only for a driver whose connections have ``fileno()``.
        A PostgreSQL URL without a ``connect_timeout`` gets this one too
        (whole seconds, 2 at least: libpq's unit and floor).

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
        if timeout is not None and dialect.name == "postgresql":
            # libpq waits for a hung server's handshake forever by default
            cparams.setdefault("connect_timeout", max(2, math.ceil(timeout)))
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
        hung = getattr(context.original_exception, _UNANSWERED, False)
        if hung:
            context.is_disconnect = True  # its socket is shut: discard it
        # a pooled connection found dead by its pre-ping is replaced at once:
        # the new connection tells whether the database answers (unless the
        # ping went unanswered: the database is hung)
        if context.is_disconnect and (hung or not getattr(context, "is_pre_ping", False)):
            breaker.failed(context.original_exception)

    event.listen(engine, "do_connect", connect)
    event.listen(engine, "handle_error", error)
    if timeout is not None:
        _watch_calls(engine, timeout)
    engine.session_multi_breaker = breaker
    return breaker


#: The attribute that marks an error of a call the watchdog cut.
_UNANSWERED = "session_multi_unanswered"


def _fileno(dbapi_connection: Any) -> int | None:
    """The socket of a DBAPI connection, if its driver tells it."""
    fileno = getattr(dbapi_connection, "fileno", None)
    if fileno is None:
        return None
    try:
        number = fileno()
    except Exception:  # closed, or not a driver with a socket
        return None
    return number if isinstance(number, int) and number >= 0 else None


def _watch_calls(engine: Any, timeout: float) -> None:
    """Give every statement, commit, rollback and checkout ping of ``engine``
    ``timeout`` seconds, through the watchdog (the dialect's methods that
    wait for the server, wrapped on this engine's dialect only)."""
    dialect = engine.dialect
    for name in ("do_ping", "do_commit", "do_rollback"):
        setattr(dialect, name, _timed(getattr(dialect, name), timeout, lambda given: given))
    for name in ("do_execute", "do_executemany", "do_execute_no_params"):
        method = getattr(dialect, name)
        setattr(dialect, name, _timed(method, timeout, _cursors_connection))


def _cursors_connection(cursor: Any) -> Any:
    return getattr(cursor, "connection", None)


def _timed(call: Any, timeout: float, connection_of: Any) -> Any:
    """``call`` (a dialect's method whose first argument is a DBAPI connection
    or cursor) under the watchdog; an error of a call it cut is marked."""

    def timed(given: Any, *args: Any) -> Any:
        fileno = _fileno(connection_of(given))
        if fileno is None:
            return call(given, *args)
        token = _WATCHDOG.arm(fileno, timeout)
        try:
            return call(given, *args)
        except Exception as exc:
            if _WATCHDOG.disarm(token):
                try:
                    setattr(exc, _UNANSWERED, True)
                except AttributeError:  # an error class with slots
                    pass
            raise
        finally:
            _WATCHDOG.disarm(token)

    return timed


class BreakerPlugin:
    """The SQLAlchemy plugin ``session_multi_breaker``: the engine of a URL that
    names it (``?plugin=session_multi_breaker``) is guarded by
    :func:`guard_engine`, with the URL's ``breaker_interval`` (seconds, or
    ``off``) and ``statement_timeout_client`` (seconds, or ``off``), which
    SQLAlchemy then drops from the URL."""

    def __init__(self, url: Any, kwargs: dict[str, Any]) -> None:
        #: the interval of the breaker, ``None``: none
        self.interval = as_interval(query_value(url, INTERVAL_PARAMETER, DEFAULT_INTERVAL))
        #: the seconds a statement may wait, ``None``: no limit
        self.timeout = as_timeout(query_value(url, TIMEOUT_PARAMETER, DEFAULT_TIMEOUT))
        self.url = url.difference_update_query(["plugin", "plugins", *PARAMETERS])

    def update_url(self, url: Any) -> Any:
        return url.difference_update_query(list(PARAMETERS))

    def handle_dialect_kwargs(self, dialect_cls: Any, dialect_args: dict[str, Any]) -> None:
        """Nothing to add (SQLAlchemy's plugin contract)."""

    def handle_pool_kwargs(self, pool_cls: Any, pool_args: dict[str, Any]) -> None:
        """Nothing to add (SQLAlchemy's plugin contract)."""

    def engine_created(self, engine: Any) -> None:
        if self.interval is not None:
            guard_engine(engine, self.interval, self.url, self.timeout)


def with_breaker_plugin(url: str) -> str:
    """``url`` naming :data:`PLUGIN`, unless it names plugins of its own."""
    import sqlalchemy as sa

    if "plugin" in sa.make_url(url).query:
        return url
    return f"{url}{'&' if '?' in url else '?'}plugin={PLUGIN}"
