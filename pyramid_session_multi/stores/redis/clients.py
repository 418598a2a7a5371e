"""The redis-py clients of a topology, and the ``redis_client_callable`` that hands
one to pyramid_session_redis."""

import threading
from collections.abc import Callable, Mapping
from typing import Any

from pyramid.exceptions import ConfigurationError
from redis.cluster import ClusterNode

from ...exceptions import SettingsError
from ...libraries.base import closure_of
from ...masking import hide_password, without_password
from ..breaker import Breakers, CircuitBreaker
from .cluster import SessionRedisCluster
from .guarded import BREAKER_FAILURES, BreakerRedis, RedisCircuitOpen
from .options import NODE, OPTIONS, TLS, parsed_url
from .topology import CLUSTER, SENTINEL, SINGLE, RedisTopology, server_url, topology_from_options


def _connection_options(topology: RedisTopology) -> dict[str, Any]:
    """What every connection to a data node takes (not the sentinels')."""
    names = [option.argument for option in OPTIONS.values() if option.passed == NODE]
    return {name: getattr(topology, name) for name in names if getattr(topology, name) is not None}


def _tls_options(topology: RedisTopology, flag: bool = True) -> dict[str, Any]:
    if not topology.ssl:
        return {}
    options: dict[str, Any] = {"ssl": True} if flag else {}
    for name in [option.argument for option in OPTIONS.values() if option.passed == TLS]:
        value = getattr(topology, name)
        if value is not None:
            options[name] = value
    return options


def make_redis_client(topology: RedisTopology, **client_options: Any) -> Any:
    """A new redis-py client of ``topology``.

    One server: :class:`redis.Redis`; Sentinel: the :class:`redis.Redis` of
    :meth:`redis.sentinel.Sentinel.master_for`, which asks the sentinels
    where the master is whenever it connects, so it follows a failover;
    Cluster: a :class:`SessionRedisCluster` (without
    ``require_full_coverage``: the masters that are up keep serving their
    slots while another's fail over).  The cluster client connects at once,
    to learn the cluster's slots; the others on their first command.

    Unless :attr:`RedisTopology.breaker_interval` is ``None``, the client of
    one server or of a Sentinel's master has a
    :class:`~pyramid_session_multi.stores.breaker.CircuitBreaker` of its own
    (``client.session_multi_breaker``): after a timeout or a connection
    error its commands fail at once with :class:`RedisCircuitOpen` for that
    many seconds, then one goes through to try the server again.  A
    cluster's client has one per node
    (``client.session_multi_breakers``, a
    :class:`~pyramid_session_multi.stores.breaker.Breakers`): a node
    failing stops only the commands of its own slots, and a replica promoted
    in its place is reached at once (see :class:`SessionRedisCluster`).

    :param topology: where to connect, and how.
    :param client_options: more keyword arguments for the client (or, for
        Sentinel, for the master's connections), such as ``encoding``.
    """
    client = _make_client(topology, **client_options)
    interval = topology.breaker_interval
    if interval is None:
        return client
    secrets = [
        f"redis://:{password}@"
        for password in (topology.password, topology.sentinel_password)
        if password
    ]
    if topology.url:
        secrets.append(topology.url)

    def mask(text: str) -> str:
        for url in secrets:
            text = hide_password(text, url)
        return text

    if topology.kind == CLUSTER:

        def node_breaker(node: str) -> CircuitBreaker:
            return CircuitBreaker(
                f"Redis Cluster node {node}",
                interval,
                failures=BREAKER_FAILURES,
                error=RedisCircuitOpen,
                mask=mask,
            )

        client.session_multi_breakers = Breakers(node_breaker)
    else:
        client.session_multi_breaker = CircuitBreaker(
            store_name(topology),
            interval,
            failures=BREAKER_FAILURES,
            error=RedisCircuitOpen,
            mask=mask,
        )
    return client


def store_name(topology: RedisTopology) -> str:
    """How logs, the panel and ``psessions`` name the Redis of ``topology``
    (its addresses, never a password)."""
    if topology.kind == CLUSTER:
        return f"Redis Cluster at {' '.join(topology.addresses)}"
    if topology.kind == SENTINEL:
        return f"Redis master {topology.master} (sentinels {' '.join(topology.addresses)})"
    parsed = parsed_url(without_password(topology.url or ""))
    if "path" in parsed:
        return f"Redis at {parsed['path']}"
    return f"Redis at {parsed.get('host')}:{parsed.get('port') or 6379}"


def _make_client(topology: RedisTopology, **client_options: Any) -> Any:
    options = {**_connection_options(topology), **client_options}
    if topology.kind == CLUSTER:
        return SessionRedisCluster(
            startup_nodes=[
                ClusterNode(host, port)  # type: ignore[no-untyped-call]
                for host, port in topology.nodes
            ],
            require_full_coverage=False,
            **options,
            **_tls_options(topology),
        )
    if topology.kind == SENTINEL:
        from redis.sentinel import Sentinel

        sentinel_options: dict[str, Any] = {
            name: value
            for name, value in (
                ("username", topology.sentinel_username),
                ("password", topology.sentinel_password),
                ("socket_timeout", topology.socket_timeout),
                ("socket_connect_timeout", topology.socket_connect_timeout),
            )
            if value is not None
        }
        # typed from redis-py 8.2 on, untyped before: called as Any either way
        sentinel_class: Any = Sentinel
        sentinel = sentinel_class(
            list(topology.nodes),
            sentinel_kwargs={**sentinel_options, **_tls_options(topology)},
        )
        assert topology.master is not None
        return sentinel.master_for(
            topology.master,
            redis_class=BreakerRedis,
            db=topology.db,
            **options,
            **_tls_options(topology),
        )
    assert topology.url is not None
    # rediss:// says TLS itself; the files go with it
    return BreakerRedis.from_url(topology.url, **options, **_tls_options(topology, flag=False))


def close_redis_client(client: Any) -> None:
    """Close ``client`` and, for Sentinel, its connections to the sentinels."""
    pool = getattr(client, "connection_pool", None)
    manager = getattr(pool, "sentinel_manager", None)
    client.close()
    for sentinel in getattr(manager, "sentinels", ()):
        sentinel.close()


class RedisClientCallable:
    """A ``redis_client_callable`` for pyramid_session_redis: the client of
    one :class:`RedisTopology`, made on the first request that needs it (so
    scripts that only load the application connect to nothing) and kept for
    every request after, in every thread.

    Each one has its own client: two namespaces on two servers each reach
    their own (where pyramid_session_redis's default keeps one client per
    application, made by whichever namespace connects first).
    """

    def __init__(self, topology: RedisTopology) -> None:
        #: where the client connects
        self.topology = topology
        self._client: Any = None
        self._lock = threading.Lock()

    def __call__(self, request: Any = None, **redis_options: Any) -> Any:
        """The client; pyramid_session_redis's own ``redis_options`` are
        ignored but ``encoding`` and ``encoding_errors``, which the topology
        does not hold."""
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    extra = {
                        name: redis_options[name]
                        for name in ("encoding", "encoding_errors")
                        if redis_options.get(name) is not None
                    }
                    self._client = make_redis_client(self.topology, **extra)
                client = self._client
        return client

    @property
    def breaker(self) -> CircuitBreaker | None:
        """The circuit breaker of the client, once made (``None`` before, or without
        one; a cluster's client has one per node: :attr:`breakers`)."""
        return getattr(self._client, "session_multi_breaker", None)

    @property
    def breakers(self) -> list[CircuitBreaker]:
        """Every circuit breaker of the client: its one, or one per cluster node
        a command was sent to; none before the client is made."""
        return breakers_of_client(self._client)

    def close(self) -> None:
        """Close the client, if made; the next call makes a new one."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            close_redis_client(client)

    def __repr__(self) -> str:
        return f"<RedisClientCallable {self.topology.describe()}>"


def redis_client_callable(
    url: str | None = None,
    *,
    cluster_nodes: Any = None,
    sentinels: Any = None,
    sentinel_master: str | None = None,
    db: int | None = None,
    username: str | None = None,
    password: str | None = None,
    sentinel_username: str | None = None,
    sentinel_password: str | None = None,
    ssl: bool | None = None,
    ssl_ca_certs: str | None = None,
    ssl_certfile: str | None = None,
    ssl_keyfile: str | None = None,
    socket_timeout: float | None = None,
    socket_connect_timeout: float | None = None,
    breaker_interval: float | str | None = None,
) -> RedisClientCallable:
    """A ``redis_client_callable`` for ``pyramid_session_redis.RedisSessionFactory``,
    for the topology the arguments describe: what the settings of a ``redis``
    namespace say, from code.  Give one of ``url``, ``cluster_nodes`` or
    ``sentinels`` (with ``sentinel_master``); nothing connects until a
    request needs the namespace.

    A mistake (a port that is not a number, a master name without sentinels,
    …: see :func:`topology_from_options`) is a
    :class:`~pyramid.exceptions.ConfigurationError` naming the argument.

    :param url: one server: ``redis://[user:password@]host:port/db``,
        ``rediss://…`` (TLS) or ``unix:///path?db=N``.
    :param cluster_nodes: start-up nodes of a Redis Cluster: ``host:port``
        words in one string, or a list of ``host:port`` or ``(host, port)``.
        Any nodes will do; the client learns the others from them.
    :param sentinels: the sentinels, given as ``cluster_nodes`` are.
    :param sentinel_master: the name the sentinels monitor the master by.
    :param db: the database of a Sentinel's master (a URL names its own).
    :param username: the ACL user of the data nodes (a URL's own wins).
    :param password: their password (a URL's own wins).
    :param sentinel_username: the sentinels' own ACL user, if they have one.
    :param sentinel_password: the sentinels' own password, if they have one.
    :param ssl: TLS to the nodes (and sentinels); a URL says it with ``rediss://``.
    :param ssl_ca_certs: the CA certificates to check the servers' against.
    :param ssl_certfile: a client certificate, for servers that ask for one.
    :param ssl_keyfile: its private key.
    :param socket_timeout: seconds a reply may take before the request
        fails: without it, a node that stops answering holds requests as long
        as redis-py's own default allows.
    :param socket_connect_timeout: seconds a connection may take (the
        ``socket_timeout`` if not given).
    :param breaker_interval: seconds the client's circuit breaker stays open
        after a timeout or a connection error (its commands fail at once
        meanwhile), 5 by default; ``"off"`` for no breaker.
    """
    # every parameter is an option of the table, named without its "redis_"
    arguments = dict(locals())
    options = {f"redis_{name}": value for name, value in arguments.items() if value is not None}
    try:
        topology = topology_from_options(options, key=lambda option: OPTIONS[option].argument)
    except SettingsError as exc:
        raise ConfigurationError(f"redis_client_callable(): {exc}") from None
    return RedisClientCallable(topology)


def redis_client_from_options(
    options: Mapping[str, Any], key: Callable[[str], str] = lambda option: option
) -> Any:
    """A new redis-py client for the topology ``options`` describe.

    For any part of an application that keeps data in the same Redis as its
    sessions, from the same kind of settings (``redis_url``,
    ``redis_cluster_nodes``, ``redis_sentinels`` … as in
    :func:`topology_from_options`, whose errors name ``key(option)``).
    Close it with :func:`close_redis_client`.
    """
    return make_redis_client(topology_from_options(options, key))


# -- what a factory connects to ---------------------------------------------------------


def topology_of(factory: Any) -> RedisTopology | None:
    """The topology a pyramid_session_redis factory connects to, if it can be known.

    A factory given a :class:`RedisClientCallable` (from settings, or
    :func:`redis_client_callable`) says it; one with the library's own
    connection is one server, with the library's socket timeout; one with an
    application's own ``redis_client_callable`` is ``None``.
    """
    closure = closure_of(factory)
    given = closure.get("redis_client_callable")
    if isinstance(given, RedisClientCallable):
        return given.topology
    if given is not None or "redis_options" not in closure:
        return None
    redis_options = closure["redis_options"]
    url = closure.get("redis_url")
    if not isinstance(url, str):
        read = {
            "redis_host": redis_options.get("host") or "localhost",
            "redis_port": redis_options.get("port") or 6379,
            "redis_db": redis_options.get("db") or 0,
        }
        if redis_options.get("unix_socket_path"):
            read = {
                "redis_unix_socket_path": redis_options["unix_socket_path"],
                "redis_db": read["redis_db"],
            }
        url = server_url(read, False)
    timeout = redis_options.get("socket_timeout")
    return RedisTopology(
        SINGLE,
        url=url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,  # what redis-py falls back to
    )


def breakers_of_client(client: Any) -> list[CircuitBreaker]:
    """The circuit breakers of a client ``make_redis_client()`` made: its
    one, or one per cluster node a command was sent to; ``[]`` for another
    client, or one without breakers."""
    one = getattr(client, "session_multi_breaker", None)
    if isinstance(one, CircuitBreaker):
        return [one]
    several = getattr(client, "session_multi_breakers", None)
    return several.all() if isinstance(several, Breakers) else []


def breakers_of(factory: Any) -> list[CircuitBreaker]:
    """The circuit breakers of a pyramid_session_redis factory's client, as
    :func:`breakers_of_client` gives them (``[]`` until a request made the
    client, and for a client that is not the add-on's)."""
    given = closure_of(factory).get("redis_client_callable")
    if isinstance(given, RedisClientCallable):
        return given.breakers
    return []


def breaker_of(factory: Any) -> CircuitBreaker | None:
    """The circuit breaker of a pyramid_session_redis factory's client.

    ``None`` when the factory's client has none: it is not made yet (nothing
    connects before a request needs the namespace), it is the library's own
    or an application's, or its ``redis_breaker_interval`` is ``off``.
    """
    given = closure_of(factory).get("redis_client_callable")
    if isinstance(given, RedisClientCallable):
        return given.breaker
    return None
