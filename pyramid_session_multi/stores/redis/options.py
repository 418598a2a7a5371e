"""The options a Redis topology is read from, each described once, in :data:`OPTIONS`.

As redis-py's ``connection.py`` keeps one table of the query arguments of a
URL and their parsers, each option here is one :class:`RedisOption`: its
setting's name, the reader of its value, what it says, and where the client
takes it.  Everything else (:data:`TOPOLOGY_OPTIONS`, which are secret, the
arguments of :func:`~pyramid_session_multi.stores.redis.redis_client_callable`,
what each connection is given) is derived from the table.

A ``redis_url`` is parsed by redis-py's own ``parse_url``, the parser its
``Redis.from_url`` uses, so the add-on accepts what redis-py connects to.
"""

import ipaddress
import math
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from redis.connection import SSLConnection, UnixDomainSocketConnection, parse_url

from ...masking import hide_password, without_password
from ...values import Reader, Refused, as_boolean, as_nonempty_text, read, shown, whole_number

#: What ``redis_url`` may start with.
URL_SCHEMES = ("redis", "rediss", "unix")

Address = tuple[str, int]

#: What a list of nodes takes.
ADDRESSES = "host:port host:port … (spaces or commas between; [IPv6]:port)"


def address_text(address: Address) -> str:
    """``host:port`` (``[host]:port`` for an IPv6 address)."""
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


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


def as_host(value: Any) -> str:
    """A host name or an IP address (``[IPv6]`` too)."""
    text = as_nonempty_text(value)
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if _host_problem(text) is not None:
        raise Refused("a host name or an IP address")
    return text


def as_port(value: Any) -> int:
    """A port number, 1 to 65535."""
    return whole_number(value, "a port number, 1 to 65535", 1, 65535)


def as_db(value: Any) -> int:
    """A database number, 0 or more."""
    return whole_number(value, "a database number, 0 or more")


def _as_address(item: Any) -> Address:
    if isinstance(item, tuple | list) and len(item) == 2:
        host, port = item
        problem = _host_problem(host.strip()) if isinstance(host, str) else None
        if problem is not None:
            raise Refused(
                problem=f"lists {shown(item)}, whose host {problem}; it takes {ADDRESSES}"
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
            raise Refused(
                problem=f"lists {shown(item)}, which is not host:port; it takes {ADDRESSES}"
            )
        problem = _host_problem(host)
        if problem is None and ":" in host and not bracketed:
            problem = "has an IPv6 address without brackets"
        if problem is not None:
            raise Refused(
                problem=f"lists {shown(item)}, whose host {problem}; it takes {ADDRESSES}"
            )
    else:
        raise Refused(ADDRESSES)
    if not isinstance(host, str) or not host.strip():
        raise Refused(problem=f"lists {shown(item)}, which has no host; it takes {ADDRESSES}")
    try:
        number = as_port(port)
    except Refused:
        raise Refused(
            problem=f"lists {shown(item)}, whose port {without_password(str(port))!r} is not "
            "a number from 1 to 65535; "
            f"it takes {ADDRESSES}"
        ) from None
    return host.strip(), number


def as_addresses(value: Any) -> tuple[Address, ...]:
    """``host:port`` words (or, from code, a list of them or of ``(host, port)``)."""
    if isinstance(value, str):
        items: list[Any] = value.replace(",", " ").split()
    elif isinstance(value, Iterable) and not isinstance(value, bytes | Mapping):
        items = list(value)
    else:
        raise Refused(ADDRESSES)
    if not items:
        raise Refused(problem=f"is empty: it takes {ADDRESSES}")
    addresses: list[Address] = []
    for item in items:
        address = _as_address(item)
        if address in addresses:
            raise Refused(problem=f"lists {address_text(address)} twice")
        addresses.append(address)
    return tuple(addresses)


def as_timeout(value: Any) -> float | None:
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
            raise Refused(accepts) from None
    elif isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    else:
        raise Refused(accepts)
    if not math.isfinite(number) or number <= 0:
        raise Refused(accepts)
    return number


def as_breaker_interval(value: Any) -> float | None:
    """Seconds, more than 0; ``off``: no circuit breaker."""
    accepts = "a number of seconds greater than 0, or off"
    if isinstance(value, str) and value.strip().lower() == "off":
        return None
    try:
        interval = as_timeout(value)
    except Refused:
        raise Refused(accepts) from None
    if interval is None:
        raise Refused(accepts)
    return interval


def as_master_name(value: Any) -> str:
    """The name the sentinels monitor the master by."""
    if not isinstance(value, str) or not value.strip():
        raise Refused(problem="is empty: it takes the name the sentinels monitor the master by")
    return value.strip()


def as_optional_name(value: Any) -> str | None:
    """A user name; nothing for none."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise Refused("text")
    return value.strip() or None


def as_password(value: Any) -> str | None:
    """A password, kept as given; nothing for none."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise Refused("text")
    return value if value.strip() else None


def as_file(value: Any) -> str:
    """The path of a file that exists."""
    if not isinstance(value, str | os.PathLike) or not str(value).strip():
        raise Refused("the path of a file")
    path = str(value).strip()
    if not os.path.isfile(path):
        raise Refused(problem=f"= {path!r}: there is no such file")
    return path


def as_url(value: Any) -> str:
    """A URL redis-py's ``parse_url`` reads, naming a host (or a socket) and a
    database that is a number."""
    accepts = "a URL redis://[user:password@]host:port/db, rediss://… (TLS) or unix:///path"
    if not isinstance(value, str) or not value.strip():
        raise Refused(accepts)
    text = value.strip()
    scheme = url_scheme(text)
    if scheme not in URL_SCHEMES:
        hint = ""
        if "sentinel" in scheme:
            hint = "; for Sentinel give redis_sentinels and redis_sentinel_master"
        raise Refused(problem=f"has the scheme {scheme!r}: it takes {accepts}{hint}")
    try:
        parsed = parsed_url(text)
    except ValueError as exc:
        if _port_is_not_a_number(text):
            raise Refused(problem=f"has a port that is not a number: it takes {accepts}") from None
        refusal = hide_password(str(exc), text)
        raise Refused(problem=f"is refused by redis-py ({refusal}): it takes {accepts}") from None
    if parsed.get("connection_class") is not UnixDomainSocketConnection:
        if not parsed.get("host"):
            raise Refused(problem=f"names no host: it takes {accepts}")
        # parse_url skips a database that is not a number, for redis-py's default
        if "db" not in parsed and text.partition("://")[2].partition("/")[2].strip("/"):
            raise Refused(problem=f"names a database that is not a number: it takes {accepts}")
    return text


def _port_is_not_a_number(url: str) -> bool:
    # the port as parse_url reads it: urllib's, which refuses one that is not a number
    try:
        urlparse(url).port  # noqa: B018
    except ValueError:
        return True
    return False


def url_scheme(url: str) -> str:
    """The scheme of ``url`` (``rediss`` …), lowercase as redis-py's parser matches it."""
    scheme, separator, _ = url.partition("://")
    return scheme if separator else ""


def parsed_url(url: str) -> dict[str, Any]:
    """What redis-py's ``parse_url`` reads of ``url``: the keyword arguments of
    its connection pool (``host``, ``db``, ``connection_class`` …)."""
    parsed: dict[str, Any] = parse_url(url)  # type: ignore[no-untyped-call]
    return parsed


def url_uses_tls(url: str) -> bool:
    """Whether redis-py connects to ``url`` (read by :func:`as_url`) over TLS."""
    return parsed_url(url).get("connection_class") is SSLConnection


def url_is_socket(url: str) -> bool:
    """Whether ``url`` (read by :func:`as_url`) names a Unix socket."""
    return parsed_url(url).get("connection_class") is UnixDomainSocketConnection


#: Where the client takes an option: every connection to a data node, the TLS
#: files of every connection, the client's circuit breaker, or nowhere as
#: such (it says where the data is).
NODE = "node"
TLS = "tls"
BREAKER = "breaker"
WHERE = "where"


@dataclass(frozen=True)
class RedisOption:
    """One option of a Redis topology."""

    #: the setting's name in a ``redis`` namespace (``redis_url``)
    name: str
    #: reads the setting's value (text, or a value from code)
    read: Reader
    #: what it says, in a few words
    about: str
    #: :data:`NODE`, :data:`TLS`, :data:`BREAKER` or :data:`WHERE`
    passed: str = WHERE
    #: never shown in an error
    secret: bool = False
    #: pyramid_session_redis's own name for it (its settings reader knows it)
    library: bool = False

    @property
    def argument(self) -> str:
        """Its name from code (``redis_client_callable(url=…)``), and the
        :class:`~pyramid_session_multi.stores.redis.RedisTopology` field it fills."""
        return self.name[len("redis_") :]


def _table(*options: RedisOption) -> dict[str, RedisOption]:
    return {option.name: option for option in options}


#: Every option a topology is read from, by name.
OPTIONS = _table(
    RedisOption("redis_url", as_url, "one server, as a URL", library=True),
    RedisOption("redis_host", as_host, "one server's host", library=True),
    RedisOption("redis_port", as_port, "its port", library=True),
    RedisOption("redis_db", as_db, "the database number", library=True),
    RedisOption(
        "redis_unix_socket_path", as_nonempty_text, "one server's Unix socket", library=True
    ),
    RedisOption("redis_cluster_nodes", as_addresses, "start-up nodes of a Redis Cluster"),
    RedisOption("redis_sentinels", as_addresses, "the sentinels watching the master"),
    RedisOption("redis_sentinel_master", as_master_name, "the master's name at the sentinels"),
    RedisOption("redis_username", as_optional_name, "the data nodes' ACL user", NODE),
    RedisOption(
        "redis_password", as_password, "the data nodes' password", NODE, secret=True, library=True
    ),
    RedisOption("redis_sentinel_username", as_optional_name, "the sentinels' ACL user"),
    RedisOption("redis_sentinel_password", as_password, "the sentinels' password", secret=True),
    RedisOption("redis_ssl", as_boolean, "TLS to every node"),
    RedisOption("redis_ssl_ca_certs", as_file, "the CA certificates", TLS),
    RedisOption("redis_ssl_certfile", as_file, "a client certificate", TLS),
    RedisOption("redis_ssl_keyfile", as_file, "its private key", TLS),
    RedisOption("redis_socket_timeout", as_timeout, "seconds a reply may take", NODE, library=True),
    RedisOption("redis_socket_connect_timeout", as_timeout, "seconds a connection may take", NODE),
    RedisOption(
        "redis_breaker_interval",
        as_breaker_interval,
        "seconds the client's circuit breaker stays open",
        BREAKER,
    ),
)

#: The options (settings of a ``redis`` namespace) a topology is read from:
#: those of :data:`OPTIONS`.
TOPOLOGY_OPTIONS = frozenset(OPTIONS)


def read_topology_options(options: Mapping[str, Any], key: Callable[[str], str]) -> dict[str, Any]:
    """The :data:`TOPOLOGY_OPTIONS` among ``options``, each read by its reader;
    a refusal names ``key(option)``."""
    return {
        name: read(key(name), options[name], OPTIONS[name].read, OPTIONS[name].secret)
        for name in sorted(TOPOLOGY_OPTIONS & set(options))
    }
