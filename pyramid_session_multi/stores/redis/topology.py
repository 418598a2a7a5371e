"""Where a namespace's Redis data lives: one server, a Sentinel-watched master,
or a Redis Cluster, read from the options of :mod:`.options` and checked together."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ...exceptions import SettingsError
from ..breaker import DEFAULT_INTERVAL
from .options import (
    NODE,
    OPTIONS,
    TLS,
    Address,
    address_text,
    read_topology_options,
    url_is_socket,
    url_uses_tls,
)

#: :attr:`RedisTopology.kind` of one server.
SINGLE = "single"
#: :attr:`RedisTopology.kind` of a master found through Sentinel.
SENTINEL = "sentinel"
#: :attr:`RedisTopology.kind` of a Redis Cluster.
CLUSTER = "cluster"


@dataclass(frozen=True)
class RedisTopology:
    """Where a namespace's Redis data lives and how to connect to it.

    Made by :func:`topology_from_options` (or :func:`redis_client_callable`),
    which check it; its client is made by :func:`make_redis_client`.
    """

    #: :data:`SINGLE`, :data:`SENTINEL` or :data:`CLUSTER`
    kind: str
    #: one server: its URL (``redis://``, ``rediss://`` or ``unix://``); it may
    #: hold a password, so it is left out of the repr
    url: str | None = field(default=None, repr=False)
    #: a cluster's start-up nodes, or the sentinels, as ``(host, port)``
    nodes: tuple[Address, ...] = ()
    #: the name the sentinels know the master by
    master: str | None = None
    #: the database (a sentinel's master; a URL names its own, a cluster has only 0)
    db: int = 0
    #: the ACL user and password of the data nodes (a URL's own win)
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    #: the sentinels' own ACL user and password
    sentinel_username: str | None = field(default=None, repr=False)
    sentinel_password: str | None = field(default=None, repr=False)
    #: TLS (a URL says it with ``rediss://``), and its files
    ssl: bool = False
    ssl_ca_certs: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    #: seconds a reply may take, and a connection; ``None``: redis-py's default
    socket_timeout: float | None = None
    socket_connect_timeout: float | None = None
    #: seconds its :class:`~pyramid_session_multi.stores.breaker.CircuitBreaker`
    #: stays open after a timeout or connection error; ``None``: no breaker
    breaker_interval: float | None = field(default=DEFAULT_INTERVAL, compare=False)

    def describe(self) -> str:
        """``single``, ``cluster``, or ``sentinel master NAME``: what ``psessions`` shows."""
        if self.kind == SENTINEL:
            return f"sentinel master {self.master}"
        return self.kind

    @property
    def addresses(self) -> list[str]:
        """:attr:`nodes` as ``host:port`` text."""
        return [address_text(address) for address in self.nodes]


def _refuse_together(given: Mapping[str, Any], key: Callable[[str], str], one: str) -> None:
    """Refuse every option of :data:`_EXCLUSIVE` ``[one]`` given beside ``one``."""
    for other in _EXCLUSIVE[one]:
        if other in given:
            raise SettingsError(
                f"{key(one)} and {key(other)} are both given: {_WHY_EXCLUSIVE[one]}; "
                "give one of them"
            )


#: The options that say where the data is, and those that cannot come with each.
_EXCLUSIVE = {
    "redis_cluster_nodes": (
        "redis_url",
        "redis_host",
        "redis_port",
        "redis_unix_socket_path",
        "redis_sentinels",
        "redis_sentinel_master",
    ),
    "redis_sentinels": ("redis_url", "redis_host", "redis_port", "redis_unix_socket_path"),
    "redis_url": ("redis_host", "redis_port", "redis_unix_socket_path"),
    "redis_unix_socket_path": ("redis_host", "redis_port"),
}
_WHY_EXCLUSIVE = {
    "redis_cluster_nodes": "a Redis Cluster is found through its nodes alone",
    "redis_sentinels": "the sentinels say where the master is",
    "redis_url": "the URL names the server",
    "redis_unix_socket_path": "a Unix socket has no host or port",
}


def topology_from_options(
    options: Mapping[str, Any], key: Callable[[str], str] = lambda option: option
) -> RedisTopology:
    """The topology that ``options`` (the :data:`TOPOLOGY_OPTIONS` among them) describe.

    ``options`` hold text from an .ini file (``env:`` already resolved) or
    values from code; other options are ignored. Where nothing says where
    the data is, it is one server at ``localhost:6379``, as for
    pyramid_session_redis.  A mistake is a
    :class:`~pyramid_session_multi.settings.SettingsError` naming
    ``key(option)``:

    - a port that is not a number, a node list that is empty, lists one node
      twice or has an entry that is not ``host:port``;
    - ``redis_sentinels`` without ``redis_sentinel_master``, or the master
      name (or the sentinels' credentials) without sentinels;
    - two ways of finding the data at once: ``redis_cluster_nodes`` beside
      ``redis_url``, the sentinels or a host; ``redis_sentinels`` beside a
      URL or host; a URL beside a host, port or socket;
    - a database other than 0 for a cluster, which has only that one;
    - TLS files without TLS, TLS asked of a ``redis://`` or ``unix://`` URL;
    - a timeout that is not a number of seconds greater than 0;
    - a ``redis_breaker_interval`` that is neither such a number nor ``off``.

    :param options: the options, by name (``redis_cluster_nodes``, …).
    :param key: the setting's full name for an option, to name it in errors
        (``session_multi.NAMESPACE.OPTION`` for a namespace).
    """
    given = read_topology_options(options, key)
    for one in _EXCLUSIVE:
        if one in given:
            _refuse_together(given, key, one)
    sentinel_only = ("redis_sentinel_master", "redis_sentinel_username", "redis_sentinel_password")
    if "redis_sentinels" in given and "redis_sentinel_master" not in given:
        raise SettingsError(
            f"{key('redis_sentinel_master')} is required with {key('redis_sentinels')}: "
            "the name the sentinels monitor the master by"
        )
    for option in sentinel_only:
        if option in given and "redis_sentinels" not in given:
            raise SettingsError(
                f"{key(option)} is given without {key('redis_sentinels')}: "
                "list the sentinels (host:port host:port …)"
            )
    url = given.get("redis_url")
    url_tls = url is not None and url_uses_tls(url)
    ssl = given.get("redis_ssl", url_tls)
    if url is not None and "redis_ssl" in given and ssl != url_tls:
        raise SettingsError(
            f"{key('redis_ssl')} = {options['redis_ssl']!r} disagrees with {key('redis_url')}, "
            "whose scheme says whether to use TLS: rediss:// for TLS, redis:// without"
        )
    for option in ("redis_ssl_ca_certs", "redis_ssl_certfile", "redis_ssl_keyfile"):
        if option in given and not ssl:
            raise SettingsError(
                f"{key(option)} is given but TLS is not used: set {key('redis_ssl')} = true "
                f"(or a rediss:// {key('redis_url')})"
            )
    if "redis_ssl_keyfile" in given and "redis_ssl_certfile" not in given:
        raise SettingsError(
            f"{key('redis_ssl_keyfile')} is given without {key('redis_ssl_certfile')}, "
            "the client certificate it is the key of"
        )
    common: dict[str, Any] = {
        "db": given.get("redis_db", 0),
        "ssl": ssl,
        **{
            option.argument: given.get(name)
            for name, option in OPTIONS.items()
            if option.passed in (NODE, TLS)
        },
        "breaker_interval": given.get("redis_breaker_interval", DEFAULT_INTERVAL),
    }
    if "redis_cluster_nodes" in given:
        if common["db"] != 0:
            raise SettingsError(
                f"{key('redis_db')} = {options['redis_db']!r} is not valid with "
                f"{key('redis_cluster_nodes')}: a Redis Cluster has only database 0"
            )
        return RedisTopology(CLUSTER, nodes=given["redis_cluster_nodes"], **common)
    if "redis_sentinels" in given:
        return RedisTopology(
            SENTINEL,
            nodes=given["redis_sentinels"],
            master=given["redis_sentinel_master"],
            sentinel_username=given.get("redis_sentinel_username"),
            sentinel_password=given.get("redis_sentinel_password"),
            **common,
        )
    if url is None:
        url = server_url(given, ssl)
    elif "redis_db" in given:
        raise SettingsError(
            f"{key('redis_db')} is given with {key('redis_url')}, which names its database "
            "(redis://host:port/DB): give it in the URL"
        )
    if ssl and url_is_socket(url):
        raise SettingsError(f"{key('redis_ssl')} = true: TLS is not used over a Unix socket")
    return RedisTopology(SINGLE, url=url, **common)


def server_url(given: Mapping[str, Any], ssl: bool) -> str:
    db = given.get("redis_db", 0)
    if "redis_unix_socket_path" in given:
        return f"unix://{given['redis_unix_socket_path']}?db={db}"
    host = given.get("redis_host", "localhost")
    scheme = "rediss" if ssl else "redis"
    return f"{scheme}://{address_text((host, given.get('redis_port', 6379)))}/{db}"
