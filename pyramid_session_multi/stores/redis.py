"""Connecting to Redis: one server, a Sentinel-watched master, or a Redis Cluster.

Everything the add-on (and an application) needs to reach Redis is read here,
once: a :class:`RedisTopology` says where the data lives and how to
connect; :func:`make_redis_client` makes the redis-py client of one;
:class:`RedisClientCallable` hands that client to pyramid_session_redis as its
``redis_client_callable``, made on the first request and kept.

From settings (the ``redis`` factory kind), the options in
:data:`TOPOLOGY_OPTIONS` are read by :func:`topology_from_options`; from code,
:func:`redis_client_callable` takes the same things as keyword arguments.

On a cluster, pyramid_session_redis makes each new session id unique with
``WATCH``/``MULTI``/``EXEC`` in a ``pipeline()``, which redis-py's cluster
pipeline refuses unless asked for a transaction (and, before redis-py 6.1,
refuses outright).  The client made here is a
:class:`~redis.cluster.RedisCluster` whose ``pipeline()`` is a transaction
on the master serving the key's hash slot (:class:`SlotTransaction`): the
library is not patched, it is given a client that does what it asks.
"""

import ipaddress
import math
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import redis
from pyramid.exceptions import ConfigurationError
from redis.cluster import ClusterNode, RedisCluster
from redis.commands.core import CoreCommands
from redis.exceptions import (
    AskError,
    ClusterDownError,
    MovedError,
    RedisClusterException,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..libraries.base import closure_of
from ..masking import without_password
from ..settings import SettingsError, _as_boolean, _Refused
from .breaker import DEFAULT_INTERVAL, CircuitBreaker, CircuitOpen

#: :attr:`RedisTopology.kind` of one server.
SINGLE = "single"
#: :attr:`RedisTopology.kind` of a master found through Sentinel.
SENTINEL = "sentinel"
#: :attr:`RedisTopology.kind` of a Redis Cluster.
CLUSTER = "cluster"

#: The options (settings of a ``redis`` namespace) a topology is read from.
#: ``redis_url``, ``redis_host``, ``redis_port``, ``redis_db``,
#: ``redis_password``, ``redis_unix_socket_path`` and ``redis_socket_timeout``
#: are pyramid_session_redis's own names; the others are the add-on's.
TOPOLOGY_OPTIONS = frozenset(
    {
        "redis_url",
        "redis_host",
        "redis_port",
        "redis_db",
        "redis_unix_socket_path",
        "redis_cluster_nodes",
        "redis_sentinels",
        "redis_sentinel_master",
        "redis_username",
        "redis_password",
        "redis_sentinel_username",
        "redis_sentinel_password",
        "redis_ssl",
        "redis_ssl_ca_certs",
        "redis_ssl_certfile",
        "redis_ssl_keyfile",
        "redis_socket_timeout",
        "redis_socket_connect_timeout",
        "redis_breaker_interval",
    }
)

#: Options never shown in an error.
_SECRET_OPTIONS = frozenset({"redis_password", "redis_sentinel_password"})

#: What ``redis_url`` may start with.
_URL_SCHEMES = ("redis", "rediss", "unix")

Address = tuple[str, int]


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
        return [_address_text(address) for address in self.nodes]


# -- reading a topology from options ----------------------------------------------------


def _address_text(address: Address) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


_ADDRESSES = "host:port host:port … (spaces or commas between; [IPv6]:port)"


def _is_number(text: str) -> bool:
    """ASCII digits only: ``str.isdigit`` also takes ``²`` and other scripts' digits."""
    return text.isascii() and text.isdigit()


#: What a host name or an IPv4 address is made of.
_HOST_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_")


def _host_problem(host: str) -> str | None:
    """Why ``host`` (a name, an IPv4 address, or an IPv6 one) is none, or ``None``."""
    if ":" in host:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return "is not a host name, an IPv4 address or an IPv6 address"
        return None
    if not host or not set(host) <= _HOST_CHARACTERS:
        return "is not a host name or an IP address (no scheme, path or separator)"
    return None


def _as_host(value: Any) -> str:
    accepts = "a host name or an IP address"
    text = _as_text(value)
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if _host_problem(text) is not None:
        raise _Refused(accepts)
    return text


def _as_port(value: Any) -> int:
    accepts = "a port number, 1 to 65535"
    if isinstance(value, int) and not isinstance(value, bool):
        port = value
    elif isinstance(value, str) and _is_number(value.strip()):
        port = int(value)
    else:
        raise _Refused(accepts)
    if not 0 < port < 65536:
        raise _Refused(accepts)
    return port


def _shown(item: Any) -> str:
    """How an error shows a listed node: a URL pasted there keeps no password."""
    if isinstance(item, tuple | list):
        return repr(type(item)(without_password(str(part)) for part in item))
    return repr(without_password(str(item)))


def _as_address(item: Any) -> Address:
    if isinstance(item, tuple | list) and len(item) == 2:
        host, port = item
        problem = _host_problem(host.strip()) if isinstance(host, str) else None
        if problem is not None:
            raise _Refused(
                problem=f"lists {_shown(item)}, whose host {problem}; it takes {_ADDRESSES}"
            )
    elif isinstance(item, str):
        text = item.strip()
        bracketed = text.startswith("[")
        if bracketed:
            host, _, rest = text[1:].partition("]")
            port = rest[1:] if rest.startswith(":") else None
        else:
            host, _, port = text.rpartition(":")
        if port is None or not host:
            raise _Refused(
                problem=f"lists {_shown(item)}, which is not host:port; it takes {_ADDRESSES}"
            )
        problem = _host_problem(host)
        if problem is None and ":" in host and not bracketed:
            problem = "has an IPv6 address without brackets"
        if problem is not None:
            raise _Refused(
                problem=f"lists {_shown(item)}, whose host {problem}; it takes {_ADDRESSES}"
            )
    else:
        raise _Refused(_ADDRESSES)
    if not isinstance(host, str) or not host.strip():
        raise _Refused(problem=f"lists {_shown(item)}, which has no host; it takes {_ADDRESSES}")
    try:
        number = _as_port(port)
    except _Refused:
        raise _Refused(
            problem=f"lists {_shown(item)}, whose port {without_password(str(port))!r} is not "
            "a number from 1 to 65535; "
            f"it takes {_ADDRESSES}"
        ) from None
    return host.strip(), number


def _as_addresses(value: Any) -> tuple[Address, ...]:
    """``host:port`` words (or, from code, a list of them or of ``(host, port)``)."""
    if isinstance(value, str):
        items: list[Any] = value.replace(",", " ").split()
    elif isinstance(value, Iterable) and not isinstance(value, bytes | Mapping):
        items = list(value)
    else:
        raise _Refused(_ADDRESSES)
    if not items:
        raise _Refused(problem=f"is empty: it takes {_ADDRESSES}")
    addresses: list[Address] = []
    for item in items:
        address = _as_address(item)
        if address in addresses:
            raise _Refused(problem=f"lists {_address_text(address)} twice")
        addresses.append(address)
    return tuple(addresses)


def _as_timeout(value: Any) -> float | None:
    """Seconds, more than 0 (decimals allowed); ``none`` or nothing: not set."""
    accepts = "a number of seconds greater than 0 (0.5 is half a second), or none"
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("", "none"):
            return None
        try:
            number = float(text)
        except ValueError:
            raise _Refused(accepts) from None
    elif isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    else:
        raise _Refused(accepts)
    if not math.isfinite(number) or number <= 0:
        raise _Refused(accepts)
    return number


def _as_breaker_interval(value: Any) -> float | None:
    """Seconds, more than 0; ``off``: no circuit breaker."""
    if isinstance(value, str) and value.strip().lower() == "off":
        return None
    try:
        interval = _as_timeout(value)
    except _Refused:
        raise _Refused("a number of seconds greater than 0, or off") from None
    if interval is None:
        raise _Refused("a number of seconds greater than 0, or off")
    return interval


def _as_name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _Refused(problem="is empty: it takes the name the sentinels monitor the master by")
    return value.strip()


def _as_optional_name(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Refused("text")
    return value.strip() or None


def _as_password(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Refused("text")
    return value if value.strip() else None


def _as_file(value: Any) -> str:
    if not isinstance(value, str | os.PathLike) or not str(value).strip():
        raise _Refused("the path of a file")
    path = str(value).strip()
    if not os.path.isfile(path):
        raise _Refused(problem=f"= {path!r}: there is no such file")
    return path


def _as_url(value: Any) -> str:
    accepts = "a URL redis://[user:password@]host:port/db, rediss://… (TLS) or unix:///path"
    if not isinstance(value, str) or not value.strip():
        raise _Refused(accepts)
    text = value.strip()
    parts = urlsplit(text)
    if parts.scheme not in _URL_SCHEMES:
        hint = ""
        if "sentinel" in parts.scheme:
            hint = "; for Sentinel give redis_sentinels and redis_sentinel_master"
        raise _Refused(problem=f"has the scheme {parts.scheme!r}: it takes {accepts}{hint}")
    if parts.scheme != "unix":
        try:
            parts.port  # noqa: B018 - a port that is not a number raises here
        except ValueError:
            raise _Refused(problem=f"has a port that is not a number: it takes {accepts}") from None
        if not parts.hostname:
            raise _Refused(problem=f"names no host: it takes {accepts}")
        if not _is_number(parts.path.strip("/")) and parts.path.strip("/"):
            raise _Refused(problem=f"names a database that is not a number: it takes {accepts}")
    return text


def _as_db(value: Any) -> int:
    accepts = "a database number, 0 or more"
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and _is_number(value.strip()):
        return int(value)
    raise _Refused(accepts)


def _as_text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _Refused("text")
    return value.strip()


_READERS: dict[str, Callable[[Any], Any]] = {
    "redis_url": _as_url,
    "redis_host": _as_host,
    "redis_port": _as_port,
    "redis_db": _as_db,
    "redis_unix_socket_path": _as_text,
    "redis_cluster_nodes": _as_addresses,
    "redis_sentinels": _as_addresses,
    "redis_sentinel_master": _as_name,
    "redis_username": _as_optional_name,
    "redis_password": _as_password,
    "redis_sentinel_username": _as_optional_name,
    "redis_sentinel_password": _as_password,
    "redis_ssl": _as_boolean,
    "redis_ssl_ca_certs": _as_file,
    "redis_ssl_certfile": _as_file,
    "redis_ssl_keyfile": _as_file,
    "redis_socket_timeout": _as_timeout,
    "redis_socket_connect_timeout": _as_timeout,
    "redis_breaker_interval": _as_breaker_interval,
}


def _read(options: Mapping[str, Any], key: Callable[[str], str]) -> dict[str, Any]:
    read = {}
    for option in sorted(TOPOLOGY_OPTIONS & set(options)):
        value = options[option]
        try:
            read[option] = _READERS[option](value)
        except _Refused as refused:
            if refused.problem is not None:
                raise SettingsError(f"{key(option)} {refused.problem}") from None
            shown = "..." if option in _SECRET_OPTIONS else _shown(value)
            raise SettingsError(
                f"{key(option)} = {shown} is not valid: it takes {refused.accepts}"
            ) from None
    return read


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
    given = _read(options, key)
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
    scheme = urlsplit(url).scheme if url else None
    ssl = given.get("redis_ssl", scheme == "rediss")
    if url is not None and "redis_ssl" in given and ssl != (scheme == "rediss"):
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
        "username": given.get("redis_username"),
        "password": given.get("redis_password"),
        "ssl": ssl,
        "ssl_ca_certs": given.get("redis_ssl_ca_certs"),
        "ssl_certfile": given.get("redis_ssl_certfile"),
        "ssl_keyfile": given.get("redis_ssl_keyfile"),
        "socket_timeout": given.get("redis_socket_timeout"),
        "socket_connect_timeout": given.get("redis_socket_connect_timeout"),
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
        url = _server_url(given, ssl)
    elif "redis_db" in given:
        raise SettingsError(
            f"{key('redis_db')} is given with {key('redis_url')}, which names its database "
            "(redis://host:port/DB): give it in the URL"
        )
    if ssl and urlsplit(url).scheme == "unix":
        raise SettingsError(f"{key('redis_ssl')} = true: TLS is not used over a Unix socket")
    return RedisTopology(SINGLE, url=url, **common)


def _server_url(given: Mapping[str, Any], ssl: bool) -> str:
    db = given.get("redis_db", 0)
    if "redis_unix_socket_path" in given:
        return f"unix://{given['redis_unix_socket_path']}?db={db}"
    host = given.get("redis_host", "localhost")
    scheme = "rediss" if ssl else "redis"
    return f"{scheme}://{_address_text((host, given.get('redis_port', 6379)))}/{db}"


# -- the clients ----------------------------------------------------------------------


def _connection_options(topology: RedisTopology) -> dict[str, Any]:
    """What every connection to a data node takes (not the sentinels')."""
    options: dict[str, Any] = {}
    for name in ("username", "password", "socket_timeout", "socket_connect_timeout"):
        value = getattr(topology, name)
        if value is not None:
            options[name] = value
    return options


def _tls_options(topology: RedisTopology, flag: bool = True) -> dict[str, Any]:
    if not topology.ssl:
        return {}
    options: dict[str, Any] = {"ssl": True} if flag else {}
    for name in ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile"):
        value = getattr(topology, name)
        if value is not None:
            options[name] = value
    return options


_REROUTE = (
    RedisConnectionError,
    RedisTimeoutError,
    MovedError,
    AskError,
    ClusterDownError,
    TryAgainError,
    SlotNotCoveredError,
)


class SlotTransaction(CoreCommands):
    """``pipeline()`` of :class:`SessionRedisCluster`: a ``MULTI``/``EXEC``
    transaction, with ``WATCH``, on the master serving one hash slot.

    Redis runs a transaction on one server; in a cluster that is the master
    of the slot of the keys involved, so every command given must name keys
    of one slot (each of pyramid_session_redis's names one key).  The
    commands run on a plain redis-py pipeline of that master, with its usual
    meaning: after ``watch()`` commands run at once, after ``multi()`` they
    are queued until ``execute()``.

    A failover or a slot moving to another master shows up as a connection
    error or a ``MOVED`` reply: the cluster's map of slots is then refreshed,
    and the transaction's first command is tried once more on the master the
    map now names.  Any later error is raised (with the map refreshed for the
    next transaction): pyramid_session_redis then fails the request, as a
    store outage does.
    """

    def __init__(self, cluster: RedisCluster) -> None:
        self._cluster: Any = cluster
        self._pipeline: Any = None
        self._slot: int | None = None
        self._multi = False

    def __enter__(self) -> "SlotTransaction":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.reset()

    def _slot_of(self, args: tuple[Any, ...]) -> int:
        if str(args[0]).upper() == "WATCH":
            slots = {self._cluster.keyslot(name) for name in args[1:]}
        else:
            slot = self._cluster.determine_slot(*args)
            slots = {slot} if slot is not None else set()
        if len(slots) != 1 or (self._slot is not None and slots != {self._slot}):
            raise RedisClusterException(
                f"a transaction on a Redis Cluster runs on one hash slot: {args[0]} names "
                "keys of another, or of several"
            )
        return int(slots.pop())

    def _open(self, slot: int) -> Any:
        if self._pipeline is None:
            node = self._cluster.nodes_manager.get_node_from_slot(slot)
            self._pipeline = self._cluster.get_redis_connection(node).pipeline(transaction=True)
            self._slot = slot
            if self._multi:
                self._pipeline.multi()
        return self._pipeline

    def _refresh(self) -> None:
        try:
            self._cluster.nodes_manager.initialize()
        except Exception:  # the cluster is unreachable: the caller's error says so
            pass

    def execute_command(self, *args: Any, **options: Any) -> Any:
        """Run (or queue) one command on the slot's master."""
        slot = self._slot_of(args)
        first = self._pipeline is None
        try:
            return self._open(slot).execute_command(*args, **options)
        except _REROUTE:
            self._refresh()
            if not first:
                raise
        self.reset()
        return self._open(slot).execute_command(*args, **options)

    def watch(self, *names: Any) -> Any:
        """Watch ``names`` (of one slot); the commands that follow run at once."""
        return self.execute_command("WATCH", *names)

    def unwatch(self) -> Any:
        return True if self._pipeline is None else self._pipeline.unwatch()

    def multi(self) -> None:
        """Queue the commands that follow, to run together on :meth:`execute`."""
        if self._pipeline is None:
            self._multi = True
        else:
            self._pipeline.multi()

    def execute(self, raise_on_error: bool = True) -> list[Any]:
        """Run the queued commands as one transaction (``WatchError`` if a
        watched key changed)."""
        if self._pipeline is None:
            self._multi = False
            return []
        try:
            return list(self._pipeline.execute(raise_on_error))
        except _REROUTE:
            self._refresh()
            raise
        finally:
            self._drop()

    def reset(self) -> None:  # type: ignore[override]  # a pipeline's, not the RESET command
        """Forget the queued commands and watched keys; free the connection."""
        if self._pipeline is not None:
            try:
                self._pipeline.reset()
            except Exception:  # a dead connection: redis-py has let it go
                pass
        self._drop()

    def _drop(self) -> None:
        self._pipeline = None
        self._slot = None
        self._multi = False


class RedisCircuitOpen(CircuitOpen, RedisConnectionError):
    """A Redis command refused at once: its client's circuit breaker is open.

    Both :class:`~pyramid_session_multi.stores.breaker.CircuitOpen` and
    redis-py's ``ConnectionError``, so what handles Redis going away
    handles this too.
    """


#: What opens a Redis client's circuit breaker.
BREAKER_FAILURES = (RedisConnectionError, RedisTimeoutError)


def _guarded(breaker: CircuitBreaker | None, function: Callable[..., Any], *args: Any) -> Any:
    if breaker is None:
        return function(*args)
    return breaker.call(function, *args)


class BreakerRedis(redis.Redis):
    """A :class:`redis.Redis` whose commands and pipelines go through its
    :attr:`session_multi_breaker`, when it has one."""

    #: the client's circuit breaker (``None``: none)
    session_multi_breaker: CircuitBreaker | None = None

    def execute_command(self, *args: Any, **options: Any) -> Any:
        breaker = self.session_multi_breaker
        if breaker is None:
            return super().execute_command(*args, **options)  # type: ignore[no-untyped-call]
        return breaker.call(super().execute_command, *args, **options)

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Any:
        pipeline = BreakerPipeline(
            self.connection_pool, self.response_callbacks, transaction, shard_hint
        )
        pipeline.session_multi_breaker = self.session_multi_breaker
        return pipeline


class BreakerPipeline(redis.client.Pipeline):
    """The pipeline of a :class:`BreakerRedis`: what reaches the server goes
    through the breaker (commands queued for later do not)."""

    session_multi_breaker: CircuitBreaker | None = None

    def immediate_execute_command(self, *args: Any, **options: Any) -> Any:
        breaker = self.session_multi_breaker
        if breaker is None:
            return super().immediate_execute_command(*args, **options)  # type: ignore[no-untyped-call]
        return breaker.call(super().immediate_execute_command, *args, **options)

    def execute(self, raise_on_error: bool = True) -> list[Any]:
        return list(_guarded(self.session_multi_breaker, super().execute, raise_on_error))


class SessionRedisCluster(RedisCluster):
    """A :class:`~redis.cluster.RedisCluster` whose default ``pipeline()`` is a
    transaction on one slot's master (:class:`SlotTransaction`), as
    ``pipeline()`` is on one server.

    ``pipeline(transaction=False)`` is redis-py's own cluster pipeline, which
    sends commands for many slots without a transaction.
    """

    def pipeline(self, transaction: bool | None = None, shard_hint: Any = None) -> Any:
        if transaction is False:
            return super().pipeline(transaction=None, shard_hint=shard_hint)  # type: ignore[no-untyped-call]
        if shard_hint:
            raise RedisClusterException("shard_hint is not used in cluster mode")
        return SlotTransaction(self)  # type: ignore[abstract]


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
    cluster's client has none: one master failing must not stop the others'
    sessions, and redis-py's cluster client reroutes to the promoted replica.

    :param topology: where to connect, and how.
    :param client_options: more keyword arguments for the client (or, for
        Sentinel, for the master's connections), such as ``encoding``.
    """
    client = _make_client(topology, **client_options)
    if topology.breaker_interval is not None and topology.kind != CLUSTER:
        client.session_multi_breaker = CircuitBreaker(
            store_name(topology),
            topology.breaker_interval,
            failures=BREAKER_FAILURES,
            error=RedisCircuitOpen,
        )
    return client


def store_name(topology: RedisTopology) -> str:
    """How logs, the panel and ``psessions`` name the Redis of ``topology``
    (its addresses, never a password)."""
    if topology.kind == CLUSTER:
        return f"Redis Cluster at {' '.join(topology.addresses)}"
    if topology.kind == SENTINEL:
        return f"Redis master {topology.master} (sentinels {' '.join(topology.addresses)})"
    parts = urlsplit(without_password(topology.url or ""))
    if parts.scheme == "unix":
        return f"Redis at {parts.path}"
    return f"Redis at {parts.hostname}:{parts.port or 6379}"


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
        sentinel = Sentinel(  # type: ignore[no-untyped-call]
            list(topology.nodes),
            sentinel_kwargs={**sentinel_options, **_tls_options(topology)},
        )
        assert topology.master is not None
        return sentinel.master_for(  # type: ignore[no-untyped-call]
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
        """The circuit breaker of the client, once made (``None`` before, or without one)."""
        return getattr(self._client, "session_multi_breaker", None)

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
    arguments = {
        "url": url,
        "cluster_nodes": cluster_nodes,
        "sentinels": sentinels,
        "sentinel_master": sentinel_master,
        "db": db,
        "username": username,
        "password": password,
        "sentinel_username": sentinel_username,
        "sentinel_password": sentinel_password,
        "ssl": ssl,
        "ssl_ca_certs": ssl_ca_certs,
        "ssl_certfile": ssl_certfile,
        "ssl_keyfile": ssl_keyfile,
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": socket_connect_timeout,
        "breaker_interval": breaker_interval,
    }
    options = {f"redis_{name}": value for name, value in arguments.items() if value is not None}
    try:
        topology = topology_from_options(options, key=lambda option: option[len("redis_") :])
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
        url = _server_url(read, False)
    timeout = redis_options.get("socket_timeout")
    return RedisTopology(
        SINGLE,
        url=url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,  # what redis-py falls back to
    )


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
