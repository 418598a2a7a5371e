"""Revocations in Redis: one key per user, expiring with the last session it can match."""

from typing import Any

from zope.interface import implementer

from ..interfaces import IRevocationStore
from ..masking import hide_password, without_password

#: The prefix of the keys, one per revoked user.
DEFAULT_PREFIX = "session_multi:revoked:"

# Keep the later of two revocations (clocks of two hosts may disagree by a
# little), and give the key the new time to live.
_REVOKE = """
local old = redis.call('GET', KEYS[1])
local at = ARGV[1]
if old and tonumber(old) > tonumber(at) then at = old end
if ARGV[2] == '' then
    redis.call('SET', KEYS[1], at)
else
    redis.call('SET', KEYS[1], at, 'EX', tonumber(ARGV[2]))
end
return at
"""


@implementer(IRevocationStore)
class RedisRevocationStore:
    """Revocations in Redis, one key per revoked user (``prefix`` + userid).

    ``client`` is a ``redis.Redis`` (any client with ``get`` and
    ``register_script``), made by :meth:`from_url` from a URL. A lookup is
    one ``GET``; a revocation one script call, which keeps the later of two
    times and sets the key's time to live.
    """

    def __init__(self, client: Any, prefix: str = DEFAULT_PREFIX, url: str | None = None) -> None:
        self.client = client
        self.prefix = prefix
        self._url = url
        self._revoke = client.register_script(_REVOKE)

    @classmethod
    def from_url(
        cls, url: str, prefix: str = DEFAULT_PREFIX, **options: Any
    ) -> "RedisRevocationStore":
        """A store on a new client for ``url`` (``redis://``, ``rediss://`` or ``unix://``).

        The client is made as the add-on makes its namespaces' (see
        ``pyramid_session_multi.stores.redis``), with short socket
        timeouts by default, so that a store that went away fails a request
        quickly; ``options`` are more of that module's ``TOPOLOGY_OPTIONS``
        (``redis_socket_timeout`` ...).  A mistake in them raises
        :class:`ValueError`.
        """
        from ..stores.redis import topology_from_options

        given = {"redis_socket_timeout": 2, "redis_socket_connect_timeout": 2, **options}
        try:
            topology = topology_from_options({**given, "redis_url": url})
        except Exception as exc:  # the settings' own error, which names the option
            raise ValueError(str(exc)) from exc
        return cls.from_topology(topology, prefix, url)

    @classmethod
    def from_topology(
        cls, topology: Any, prefix: str = DEFAULT_PREFIX, url: str | None = None
    ) -> "RedisRevocationStore":
        """A store on a new client of a
        ``pyramid_session_multi.stores.redis.RedisTopology``: one server,
        a Sentinel-watched master or a Redis Cluster (one key per user, so a
        cluster spreads them)."""
        from ..stores.redis import make_redis_client

        return cls(make_redis_client(topology), prefix, url)

    def describe(self) -> str:
        if self._url is None:
            return "Redis"
        from ..stores.redis.options import parsed_url  # needs redis-py, as the store does

        # parsed once the password is out: one holding "/" or "@" would split elsewhere
        try:
            parsed = parsed_url(without_password(self._url))
        except ValueError:
            return "Redis"
        host = parsed.get("host")
        where = str(host or parsed.get("path") or "?")
        if host and parsed.get("port"):
            where = f"{where}:{parsed['port']}"
        return (
            f"Redis at {where}/{parsed['db']}" if host and "db" in parsed else f"Redis at {where}"
        )

    def hide_password(self, message: str) -> str:
        """``message`` (a client's error) without the server's password."""
        return hide_password(message, self._url)

    @property
    def breakers(self) -> list[Any]:
        """The circuit breakers of its client: one, or one per cluster node used."""
        from ..stores.redis import breakers_of_client

        return breakers_of_client(self.client)

    def revoked_at(self, userid: str) -> float | None:
        value = self.client.get(self.prefix + userid)
        return None if value is None else float(value)

    def sweep(self, at: float, ttl: int, dry_run: bool = False) -> int:
        """Give every record an earlier version left without a time to live one
        (what is left of ``ttl`` since its revocation), or delete it where
        nothing is left; returns how many records were changed.  Redis
        deletes the others itself."""
        changed = 0
        for key in self.client.scan_iter(match=self.prefix + "*", count=500):
            if self.client.ttl(key) != -1:
                continue
            value = self.client.get(key)
            if value is None:
                continue
            left = int(float(value) + ttl - at)
            changed += 1
            if dry_run:
                continue
            if left <= 0:
                self.client.delete(key)
            else:
                self.client.expire(key, left)
        return changed

    def revoke(self, userid: str, at: float, ttl: int | None) -> None:
        self._revoke(keys=[self.prefix + userid], args=[repr(at), "" if ttl is None else ttl])
