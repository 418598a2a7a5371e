"""Revocations in Redis: one key per user, expiring with the last session it can match."""

from typing import Any

from zope.interface import implementer

from ..interfaces import IDeviceIndex, IRevocationStore
from ..lifecycle.devices import Device, by_user, device_id, is_ended, live
from ..lifecycle.lifetime import now
from ..masking import hide_password, without_password

#: The prefix of the keys, one per revoked user.
DEFAULT_PREFIX = "session_multi:revoked:"

#: The prefix of the device index's keys: ``u:USERID`` (a hash of the user's
#: entries), ``id:DEVICE`` (the user of a device), ``end:USERID`` (a hash of
#: the user's ended logins).
DEFAULT_DEVICE_PREFIX = "session_multi:devices:"

# Merge a device's entry into its user's hash (ARGV: id, entry, now), drop the
# user's expired entries, and keep the hash until its last entry expires.
_RECORD_DEVICE = """
local now = tonumber(ARGV[3])
local new = cjson.decode(ARGV[2])
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old then
    local o = cjson.decode(old)
    if o[8] > now then
        if o[4] ~= '' then new[4] = o[4] end
        if o[5] < new[5] then new[5] = o[5] end
        if o[6] > new[6] then new[6] = o[6] end
        if o[8] > new[8] then new[8] = o[8] end
        local seen = {}
        for _, n in ipairs(new[7]) do seen[n] = true end
        for _, n in ipairs(o[7]) do
            if not seen[n] then table.insert(new[7], n); seen[n] = true end
        end
        table.sort(new[7])
    end
end
local latest = new[8]
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
    if fields[i] ~= ARGV[1] then
        local e = cjson.decode(fields[i + 1])[8]
        if e <= now then
            redis.call('HDEL', KEYS[1], fields[i])
        elseif e > latest then
            latest = e
        end
    end
end
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(new))
redis.call('PEXPIRE', KEYS[1], math.max(1, math.ceil((latest - now) * 1000)))
return new[8]
"""

# Whether a login is over at ``now``: ended (in the hash of the user's ended
# logins, to the millisecond as stamped) or revoked (logged in before the time
# the user's revocation key holds).
_LOGIN_OVER = """
local function login_over(ended_key, revoked_key, login, now)
    local ends = redis.call('HGETALL', ended_key)
    for i = 1, #ends, 2 do
        if tonumber(ends[i + 1]) > now and math.abs(tonumber(ends[i]) - login) < 0.0005 then
            return true
        end
    end
    local revoked = redis.call('GET', revoked_key)
    return revoked ~= false and login < tonumber(revoked)
end
"""

# The write of a device's entry (KEYS: the user's entries, the device's id, the
# user's ended logins, the user's revocation; ARGV: id, entry, now, userid, ms),
# unless its login is over: a request in flight when it was ended writes nothing.
_RECORD_LIVE_DEVICE = (
    _LOGIN_OVER
    + """
local new = cjson.decode(ARGV[2])
if login_over(KEYS[3], KEYS[4], new[3], tonumber(ARGV[3])) then
    return 0
end
local function record()
"""
    + _RECORD_DEVICE
    + """
end
-- the same first keys and arguments as _RECORD_DEVICE's
record()
local ttl = tonumber(ARGV[5])
if redis.call('PTTL', KEYS[2]) < ttl then
    redis.call('SET', KEYS[2], ARGV[4], 'PX', ttl)
end
return 1
"""
)

# Keep a device's user under its id no shorter than it was (ARGV: userid, ms).
_DEVICE_USER = """
local ttl = tonumber(ARGV[2])
if redis.call('PTTL', KEYS[1]) < ttl then
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
end
return 1
"""

# Delete the user's entries that are expired, or (ARGV: now, then logins)
# logged out; with ARGV[2] = 'before', those logged in before ARGV[3].  Returns
# the ids of the entries deleted (whose ``id:`` keys are deleted next).
_DROP_DEVICES = """
local now = tonumber(ARGV[1])
local before = nil
local gone = {}
if ARGV[2] == 'before' then
    before = tonumber(ARGV[3])
else
    for i = 2, #ARGV do gone[tonumber(ARGV[i])] = true end
end
local fields = redis.call('HGETALL', KEYS[1])
local deleted = {}
for i = 1, #fields, 2 do
    local entry = cjson.decode(fields[i + 1])
    local login = entry[3]
    if entry[8] <= now or gone[login] or (before and login < before) then
        redis.call('HDEL', KEYS[1], fields[i])
        table.insert(deleted, fields[i])
    end
end
return deleted
"""

# Record an ended login (ARGV: login, until, now); drop the expired ones.
_END_LOGIN = """
local now = tonumber(ARGV[3])
local latest = tonumber(ARGV[2])
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
    local until_ = tonumber(fields[i + 1])
    if until_ <= now then
        redis.call('HDEL', KEYS[1], fields[i])
    elseif until_ > latest then
        latest = until_
    end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], math.max(1, math.ceil((latest - now) * 1000)))
return 1
"""

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


@implementer(IRevocationStore, IDeviceIndex)
class RedisRevocationStore:
    """Revocations in Redis, one key per revoked user (``prefix`` + userid).

    ``client`` is a ``redis.Redis`` (any client with ``get`` and
    ``register_script``), made by :meth:`from_url` from a URL. A lookup is
    one ``GET``; a revocation one script call, which keeps the later of two
    times and sets the key's time to live.

    The device index lives under ``device_prefix``: a hash per user of its
    entries, a key per device naming its user, and a hash per user of its
    ended logins, every key expiring with the last entry it holds.  A
    device's entry is written by one script that first reads its user's
    ended logins and revocation, so a request in flight when its device was
    ended never lists it again; a revocation deletes the ``id:`` keys of the
    logins it ends.  On a Redis Cluster, whose slots part a user's keys,
    each script touches one key, and an entry written for a login found
    over just after is deleted again.
    """

    def __init__(
        self,
        client: Any,
        prefix: str = DEFAULT_PREFIX,
        url: str | None = None,
        device_prefix: str = DEFAULT_DEVICE_PREFIX,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.device_prefix = device_prefix
        #: the pub/sub channel each revocation and device end is published on
        #: (the userid), for the mirrors of every process (see ``revocation.mirror``)
        self.channel = f"{device_prefix}changes"
        self._url = url
        self._revoke = client.register_script(_REVOKE)
        self._record_device = client.register_script(_RECORD_DEVICE)
        self._device_user = client.register_script(_DEVICE_USER)
        self._drop_devices = client.register_script(_DROP_DEVICES)
        self._end_login = client.register_script(_END_LOGIN)
        self._record_live_device = client.register_script(_RECORD_LIVE_DEVICE)
        # a cluster client knows its nodes
        self._cluster = callable(getattr(client, "get_nodes", None))

    def _user_key(self, userid: str) -> str:
        return f"{self.device_prefix}u:{userid}"

    def _id_key(self, device_id: str) -> str:
        return f"{self.device_prefix}id:{device_id}"

    def _ended_key(self, userid: str) -> str:
        return f"{self.device_prefix}end:{userid}"

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

    @staticmethod
    def _script(script: Any, client: Any, keys: list[str], args: list[Any]) -> Any:
        """Run ``script`` on ``client``; in a pipeline with ``EVAL``: a pipeline's
        ``EVALSHA`` would first ask the server, a call of its own (the circuit
        breaker lets one through while it tries the server again)."""
        if client is not None and hasattr(client, "command_stack"):
            return client.eval(script.script, len(keys), *keys, *args)
        return script(keys=keys, args=args, client=client)

    def _together(self, *calls: Any) -> list[Any]:
        """Run ``calls`` (each given a client) in one round trip: one pipeline,
        not a transaction.  On a Redis Cluster, whose keys of one user lie on
        several masters, one after another."""
        if self._cluster:
            return [call(self.client) for call in calls]
        pipe = self.client.pipeline(transaction=False)
        for call in calls:
            call(pipe)
        return list(pipe.execute())

    def revoke(self, userid: str, at: float, ttl: int | None) -> None:
        _at, dropped, _published = self._together(
            lambda client: self._script(
                self._revoke, client, [self.prefix + userid], [repr(at), "" if ttl is None else ttl]
            ),
            lambda client: self._script(
                self._drop_devices,
                client,
                [self._user_key(userid)],
                [repr(now()), "before", repr(at)],
            ),
            lambda client: client.publish(self.channel, userid),
        )
        # the ids of the logins it ended go with their entries
        ids = [each.decode() if isinstance(each, bytes) else str(each) for each in dropped]
        if ids:
            self._together(
                *(lambda client, each=each: client.delete(self._id_key(each)) for each in ids)
            )

    def record_device(self, device: Device, replaced: Any = ()) -> None:
        t = now()
        ttl = max(1, int((device.expires - t) * 1000) + 1)
        gone = by_user(replaced)
        if not self._cluster:
            # one script checks the login's end and revocation and writes: an
            # ended device is never written back; the replaced entries are
            # deleted in the same round trip
            def write(client: Any) -> Any:
                return self._script(
                    self._record_live_device,
                    client,
                    [
                        self._user_key(device.userid),
                        self._id_key(device.id),
                        self._ended_key(device.userid),
                        self.prefix + device.userid,
                    ],
                    [device.id, device.as_json(), repr(t), device.userid, ttl],
                )

            if not gone:
                write(None)
                return
            self._together(*self._forgetting(gone), write)
            return
        # a cluster keeps the user's keys on several masters: the entry is
        # written, then taken back if its login is over; an end is written
        # before its entry is deleted, so a write after that delete sees it
        self._together(
            *self._forgetting(gone),
            lambda client: self._script(
                self._record_device,
                client,
                [self._user_key(device.userid)],
                [device.id, device.as_json(), repr(t)],
            ),
            lambda client: self._script(
                self._device_user, client, [self._id_key(device.id)], [device.userid, ttl]
            ),
        )
        revoked, ended = self.revocation_of(device.userid)
        if (revoked is not None and device.login < revoked) or is_ended(device.login, ended):
            self.forget_devices(device.userid, [device.login])

    def devices(self, userid: str) -> list[Device]:
        entries = self.client.hvals(self._user_key(userid))
        return live((Device.from_json(entry) for entry in entries), now())

    def find_device(self, device_id: str) -> Device | None:
        userid = self.client.get(self._id_key(device_id))
        if userid is None:
            return None
        if isinstance(userid, bytes):
            userid = userid.decode()
        entry = self.client.hget(self._user_key(userid), device_id)
        if entry is None:
            return None
        device = Device.from_json(entry)
        return device if device.expires > now() else None

    def end_device(self, device_id: str, ttl: int) -> Device | None:
        device = self.find_device(device_id)
        if device is None:
            return None
        t = now()
        # the end first: a device unlisted but not ended would stay logged in
        self._together(
            lambda client: self._script(
                self._end_login,
                client,
                [self._ended_key(device.userid)],
                [repr(device.login), repr(t + ttl), repr(t)],
            ),
            lambda client: client.publish(self.channel, device.userid),
        )
        self.forget_devices(device.userid, [device.login])
        return device

    def forget_devices(self, userid: str, logins: Any) -> None:
        calls = self._forgetting({userid: list(logins)})
        if calls:
            self._together(*calls)

    def _forgetting(self, logins: dict[str, list[float]]) -> list[Any]:
        """The calls deleting the entries of ``logins`` (userid -> login
        times) and their ``id:`` keys, for :meth:`_together`."""
        calls: list[Any] = []
        for userid, times in logins.items():
            ids = [device_id(userid, login) for login in times]
            if not ids:
                continue
            user_key = self._user_key(userid)
            id_keys = [self._id_key(each) for each in ids]
            calls.append(lambda client, key=user_key, ids=ids: client.hdel(key, *ids))
            calls.extend(lambda client, key=key: client.delete(key) for key in id_keys)
        return calls

    def revocation_of(self, userid: str) -> tuple[float | None, frozenset[float]]:
        revoked, ends = self._together(
            lambda client: client.get(self.prefix + userid),
            lambda client: client.hgetall(self._ended_key(userid)),
        )
        t = now()
        ended = frozenset(float(login) for login, until in ends.items() if float(until) > t)
        return (None if revoked is None else float(revoked)), ended
