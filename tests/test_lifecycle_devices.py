"""A user's devices: the index every revocation store keeps, devices() and
revoke_device() through real applications, and a property test against a model.

Each store is a real one: memory, a real redis-server, SQLite, a real
PostgreSQL.  The add-on's clock is moved by the test (the ``clock`` fixture).
"""

import pytest
import redis
from pyramid.exceptions import ConfigurationError

from pyramid_session_multi.lifecycle.devices import Device, device_id, device_of, live
from pyramid_session_multi.lifecycle.lifetime import Stamps
from pyramid_session_multi.revocation import (
    MemoryRevocationStore,
    RedisRevocationStore,
    SQLRevocationStore,
)
from tests.support.redis_server import redis_keys

STORES = ("memory", "redis", "sqlite", "postgresql")


def make_store(kind, request, tmp_path):
    """A fresh revocation store of ``kind``, on a real server where it has one."""
    if kind == "memory":
        return MemoryRevocationStore()
    if kind == "redis":
        return RedisRevocationStore.from_url(request.getfixturevalue("redis_db"))
    if kind == "sqlite":
        return SQLRevocationStore(f"sqlite:///{tmp_path / 'devices.sqlite'}")
    return SQLRevocationStore(request.getfixturevalue("postgresql_url"))


@pytest.fixture(params=STORES)
def store(request, tmp_path, clock):
    store = make_store(request.param, request, tmp_path)
    store.kind = request.param
    yield store
    engine = getattr(store, "engine", None)
    if engine is not None:
        engine.dispose()


class Namespace:
    def __init__(self, namespace, idle_timeout=None, absolute_timeout=None):
        self.namespace = namespace
        self.idle_timeout = idle_timeout
        self.absolute_timeout = absolute_timeout


def entry(userid, login, active=None, namespaces=("signed",), idle=600, agent="Firefox"):
    active = login if active is None else active
    seen = [
        (Namespace(name, idle_timeout=idle), Stamps(login, active, userid, login))
        for name in namespaces
    ]
    return device_of(userid, login, agent, seen)


def left_in(store):
    """What the store holds of the device index, expired or not."""
    if store.kind == "memory":
        counts = store.counts()
        return counts["devices"] + counts["ended"]
    if store.kind == "redis":
        return len(store.client.keys(store.device_prefix + "*"))
    import sqlalchemy as sa

    with store.engine.connect() as connection:
        return sum(
            connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            for table in (store.device_table, store.ended_table)
        )


def test_a_device_id_is_opaque_and_the_same_for_one_login():
    assert device_id("alice", 100.0) == device_id("alice", 100.0)
    assert device_id("alice", 100.0) != device_id("alice", 100.001)
    assert device_id("alice", 100.0) != device_id("bob", 100.0)
    assert "alice" not in device_id("alice", 100.0)


def test_an_entry_lives_as_long_as_its_longest_lived_session():
    short = (Namespace("a", idle_timeout=60), Stamps(100.0, 150.0, "u", 100.0))
    long = (Namespace("b", absolute_timeout=1000), Stamps(100.0, 120.0, "u", 100.0))
    device = device_of("u", 100.0, "", [short, long])
    assert device.expires == 1100.0
    assert device.last_seen == 150.0
    assert device.namespaces == ("a", "b")
    assert Device.from_json(device.as_json()) == device


def test_the_index_lists_a_users_live_devices_latest_login_first(store, clock):
    t = clock.now
    store.record_device(entry("alice", t))
    store.record_device(entry("alice", t + 1, agent="Safari"))
    store.record_device(entry("bob", t + 2))
    listed = store.devices("alice")
    assert [device.login for device in listed] == [t + 1, t]
    assert listed[0].user_agent == "Safari"
    assert store.find_device(listed[1].id) == listed[1]
    assert store.devices("carol") == []
    assert store.find_device("no-such-device") is None


def test_a_later_use_moves_last_seen_and_adds_namespaces(store, clock):
    t = clock.now
    store.record_device(entry("alice", t, namespaces=("signed",)))
    store.record_device(entry("alice", t, active=t + 100, namespaces=("redis",), agent=""))
    (device,) = store.devices("alice")
    assert device.created == t
    assert device.last_seen == t + 100
    assert device.namespaces == ("redis", "signed")
    assert device.user_agent == "Firefox"
    assert device.expires == t + 100 + 600


def test_an_entry_is_not_listed_once_its_sessions_cannot_be_alive(store, clock):
    t = clock.now
    store.record_device(entry("alice", t))
    clock.at(601)
    assert store.devices("alice") == []
    assert store.find_device(device_id("alice", t)) is None
    # the next write of the user's entries deletes it
    store.record_device(entry("alice", clock.now))
    assert len(store.devices("alice")) == 1
    if store.kind != "redis":  # Redis deletes its keys on its own clock
        assert left_in(store) == 1


def test_ending_a_device_records_its_login_and_unlists_it(store, clock):
    t = clock.now
    store.record_device(entry("alice", t))
    store.record_device(entry("alice", t + 1))
    ended = store.end_device(device_id("alice", t), 3600)
    assert ended.login == t
    assert [device.login for device in store.devices("alice")] == [t + 1]
    assert store.revocation_of("alice") == (None, frozenset({t}))
    assert store.revocation_of("bob") == (None, frozenset())
    # an unknown or already ended device records nothing
    assert store.end_device(device_id("alice", t), 3600) is None
    assert store.end_device("no-such-device", 3600) is None
    clock.at(3601)
    assert store.revocation_of("alice") == (None, frozenset())


def test_a_revocation_unlists_the_logins_it_ends(store, clock):
    t = clock.now
    store.record_device(entry("alice", t))
    store.record_device(entry("alice", t + 2))
    store.record_device(entry("bob", t))
    store.revoke("alice", t + 1, 3600)
    assert [device.login for device in store.devices("alice")] == [t + 2]
    assert len(store.devices("bob")) == 1
    assert store.revocation_of("alice") == (t + 1, frozenset())


def test_a_write_of_an_ended_login_does_not_list_it_again(store, clock):
    # a request of the device, in flight while another ends it, moves its stamps
    # (its idle clock, a rotation) and writes its entry after the end
    t = clock.now
    store.record_device(entry("alice", t))
    store.record_device(entry("alice", t + 1))
    store.end_device(device_id("alice", t), 3600)
    held = left_in(store)
    store.record_device(entry("alice", t, active=t + 60))
    assert [device.login for device in store.devices("alice")] == [t + 1]
    assert store.find_device(device_id("alice", t)) is None
    # nothing is written back: no entry, and (on Redis) no key of its id
    assert left_in(store) == held


def test_a_write_of_a_revoked_login_does_not_list_it_again(store, clock):
    # revoke(keep_current=True) from another device: its login is kept (stamped
    # at the revocation), the others' in-flight writes are not
    t = clock.now
    store.record_device(entry("alice", t))
    store.revoke("alice", t + 1, 3600)
    held = left_in(store)
    store.record_device(entry("alice", t, active=t + 60))
    assert store.devices("alice") == []
    assert left_in(store) == held
    # the login the revocation kept, and a later one, are listed
    store.record_device(entry("alice", t + 1))
    store.record_device(entry("alice", t + 2))
    assert [device.login for device in store.devices("alice")] == [t + 2, t + 1]


def test_a_revocation_leaves_nothing_of_the_logins_it_ends(store, clock):
    t = clock.now
    store.record_device(entry("alice", t))
    store.record_device(entry("alice", t + 1))
    store.revoke("alice", t + 2, 3600)
    assert store.devices("alice") == []
    # neither the entries nor (on Redis) the keys naming the devices' user
    assert left_in(store) == 0


def test_a_logout_unlists_its_device(store, clock):
    t = clock.now
    store.record_device(entry("alice", t))
    store.record_device(entry("alice", t + 1))
    store.forget_devices("alice", [t])
    assert [device.login for device in store.devices("alice")] == [t + 1]
    assert store.find_device(device_id("alice", t)) is None
    store.forget_devices("alice", [t + 1])
    assert store.devices("alice") == []
    # the user's entries are gone with the last, and so are (on Redis) the devices' ids
    assert left_in(store) == 0


def test_a_write_deletes_the_entries_of_the_logins_it_replaced(store, clock):
    t = clock.now
    store.record_device(entry("alice", t))
    store.record_device(entry("bob", t + 1))
    # a login as bob on the client of both, say: one write
    store.record_device(entry("bob", t + 2), replaced=[("alice", t), ("bob", t + 1)])
    assert store.devices("alice") == []
    assert [device.login for device in store.devices("bob")] == [t + 2]
    assert store.find_device(device_id("alice", t)) is None
    assert store.find_device(device_id("bob", t + 1)) is None
    store.forget_devices("bob", [t + 2])
    # nothing left (on Redis, neither the users' entries nor the devices' ids)
    assert left_in(store) == 0


def test_every_redis_key_of_the_index_expires_with_what_it_holds(redis_db, clock):
    store = RedisRevocationStore.from_url(redis_db)
    t = clock.now
    store.record_device(entry("alice", t, idle=600))
    store.end_device(device_id("alice", t), 3600)
    store.record_device(entry("alice", t + 1, idle=600))
    client = redis.StrictRedis.from_url(redis_db)
    try:
        ttls = {key: client.pttl(key) for key in client.keys("*")}
    finally:
        client.close()
    assert ttls, "the index wrote nothing"
    assert all(0 < ttl <= 3600 * 1000 for ttl in ttls.values()), ttls
    assert len(redis_keys(redis_db)) == 3  # the user's entries, the device's id, the ended logins


def test_the_sql_sweep_deletes_expired_entries_and_ends(tmp_path, clock):
    store = SQLRevocationStore(f"sqlite:///{tmp_path / 'sweep.sqlite'}")
    store.kind = "sqlite"
    t = clock.now
    store.record_device(entry("alice", t))
    store.record_device(entry("bob", t + 1))
    store.end_device(device_id("bob", t + 1), 60)
    assert store.sweep(t + 10, 60, dry_run=True) == 0
    assert store.sweep(t + 700, 60, dry_run=True) == 2
    assert left_in(store) == 2
    assert store.sweep(t + 700, 60) == 2
    assert left_in(store) == 0


def test_live_drops_expired_entries():
    device = entry("alice", 100.0)
    assert live([device], 100.0) == [device]
    assert live([device], device.expires) == []


# through real applications: a signed-cookie namespace and a Redis one per login

import webtest  # noqa: E402

from tests.support.lifetime_apps import build_lifetime_wsgi, library_factory  # noqa: E402

LOGGED_IN = ("signed", "redis")


def devices_view(request):
    return [
        {
            "id": device.id,
            "user_agent": device.user_agent,
            "created": device.created,
            "last_seen": device.last_seen,
            "namespaces": list(device.namespaces),
            "current": device.current,
        }
        for device in request.session_multi.devices(request.params["userid"])
    ]


def end_view(request):
    return {"ended": request.session_multi.revoke_device(request.params["id"])}


def devices_app(store, redis_url, directory, idle_timeout=600):
    def register(config):
        for name in LOGGED_IN:
            config.register_session_factory(
                name, library_factory(name, redis_url, directory), idle_timeout=idle_timeout
            )
        config.set_revocation_store(store)
        config.add_route("devices", "/devices")
        config.add_view(devices_view, route_name="devices", renderer="json")
        config.add_route("end", "/end")
        config.add_view(end_view, route_name="end", renderer="json")

    return build_lifetime_wsgi(register)


def client(wsgi, agent):
    return webtest.TestApp(wsgi, extra_environ={"HTTP_USER_AGENT": agent})


def log_in(client, userid):
    client.get("/login", {"userid": userid, "ns": ",".join(LOGGED_IN)})


def users(client):
    return [client.get(f"/r/{name}").json["user"] for name in LOGGED_IN]


class CountingStore(MemoryRevocationStore):
    """The memory store, counting the index's writes."""

    def __init__(self):
        super().__init__()
        self.writes = 0

    def record_device(self, device, replaced=()):
        self.writes += 1
        super().record_device(device, replaced)


@pytest.fixture
def app_store(request, tmp_path, clock):
    kind = getattr(request, "param", "memory")
    store = CountingStore() if kind == "memory" else make_store(kind, request, tmp_path)
    store.kind = kind
    return store


def test_devices_lists_one_entry_per_login_across_its_namespaces(redis_db, tmp_path, app_store):
    wsgi = devices_app(app_store, redis_db, tmp_path)
    laptop, phone = client(wsgi, "Laptop Firefox"), client(wsgi, "Phone Safari")
    log_in(laptop, "alice")
    log_in(phone, "alice")
    listed = laptop.get("/devices", {"userid": "alice"}).json
    assert [device["user_agent"] for device in listed] == ["Phone Safari", "Laptop Firefox"]
    assert [device["current"] for device in listed] == [False, True]
    assert all(device["namespaces"] == ["redis", "signed"] for device in listed)
    assert [d["current"] for d in phone.get("/devices", {"userid": "alice"}).json] == [True, False]
    assert laptop.get("/devices", {"userid": "bob"}).json == []
    # one index write per login
    assert app_store.writes == 2


def test_a_device_keeps_its_id_through_later_rotations(redis_db, tmp_path, app_store):
    wsgi = devices_app(app_store, redis_db, tmp_path)
    laptop = client(wsgi, "Laptop")
    log_in(laptop, "alice")
    (before,) = laptop.get("/devices", {"userid": "alice"}).json
    laptop.get("/rotate")
    (after,) = laptop.get("/devices", {"userid": "alice"}).json
    assert after["id"] == before["id"] and after["current"]
    assert users(laptop) == ["alice", "alice"]


def test_last_seen_moves_with_the_idle_clock_not_with_each_request(
    redis_db, tmp_path, app_store, clock
):
    wsgi = devices_app(app_store, redis_db, tmp_path, idle_timeout=600)
    laptop = client(wsgi, "Laptop")
    log_in(laptop, "alice")
    writes = app_store.writes
    (seen,) = laptop.get("/devices", {"userid": "alice"}).json
    clock.at(30)  # within a tenth of the idle window: nothing moves, nothing is written
    for _ in range(3):
        assert users(laptop) == ["alice", "alice"]
    assert app_store.writes == writes
    assert laptop.get("/devices", {"userid": "alice"}).json[0]["last_seen"] == seen["last_seen"]
    clock.at(90)  # past a tenth: the idle clock moves, and last_seen with it, once
    both = laptop.get("/many", {"ns": ",".join(LOGGED_IN)}).json
    assert both == {"signed": "alice", "redis": "alice"}
    assert app_store.writes == writes + 1
    assert users(laptop) == ["alice", "alice"]
    assert app_store.writes == writes + 1
    (moved,) = laptop.get("/devices", {"userid": "alice"}).json
    assert moved["last_seen"] == clock.now and moved["created"] == seen["created"]


def test_last_seen_moves_when_only_a_cookie_namespace_is_read(redis_db, tmp_path, app_store, clock):
    # a signed-cookie session judges itself as it is made: its moved idle clock
    # is still heard by the index, with no other namespace loaded beside it
    wsgi = devices_app(app_store, redis_db, tmp_path, idle_timeout=600)
    laptop = client(wsgi, "Laptop")
    laptop.get("/login", {"userid": "alice", "ns": "signed"})
    writes = app_store.writes
    (seen,) = laptop.get("/devices", {"userid": "alice"}).json
    clock.at(30)
    assert laptop.get("/r/signed").json["user"] == "alice"
    assert app_store.writes == writes
    clock.at(90)
    assert laptop.get("/r/signed").json["user"] == "alice"
    assert app_store.writes == writes + 1
    (moved,) = laptop.get("/devices", {"userid": "alice"}).json
    assert moved["last_seen"] == clock.now and moved["last_seen"] > seen["last_seen"]
    assert moved["namespaces"] == ["signed"]


def test_revoke_device_ends_that_device_everywhere_and_spares_the_others(
    redis_db, tmp_path, app_store
):
    wsgi = devices_app(app_store, redis_db, tmp_path)
    laptop, phone = client(wsgi, "Laptop"), client(wsgi, "Phone")
    log_in(laptop, "alice")
    log_in(phone, "alice")
    old_copies = dict(phone.cookies)
    phone_id = next(
        d["id"] for d in laptop.get("/devices", {"userid": "alice"}).json if not d["current"]
    )
    assert laptop.get("/end", {"id": phone_id}).json == {"ended": True}
    assert laptop.get("/end", {"id": phone_id}).json == {"ended": False}
    # an old copy of the phone's cookies, client-side one included, is refused too
    replay = client(wsgi, "Phone")
    for name, value in old_copies.items():
        replay.set_cookie(name, value)
    assert users(replay) == [None, None]
    assert users(phone) == [None, None]
    assert users(laptop) == ["alice", "alice"]
    (left,) = laptop.get("/devices", {"userid": "alice"}).json
    assert left["current"]
    if app_store.kind == "memory":
        assert app_store.counts()["devices"] == 1 and app_store.counts()["ended"] == 1


def test_ending_the_current_device_logs_it_out(redis_db, tmp_path, app_store):
    wsgi = devices_app(app_store, redis_db, tmp_path)
    laptop = client(wsgi, "Laptop")
    log_in(laptop, "alice")
    (mine,) = laptop.get("/devices", {"userid": "alice"}).json
    laptop.get("/end", {"id": mine["id"]})
    assert users(laptop) == [None, None]
    assert app_store.devices("alice") == []


def test_logout_revocation_and_expiry_unlist_a_device(redis_db, tmp_path, app_store, clock):
    wsgi = devices_app(app_store, redis_db, tmp_path, idle_timeout=600)
    laptop, phone, tablet = (client(wsgi, agent) for agent in ("Laptop", "Phone", "Tablet"))
    for each in (laptop, phone, tablet):
        log_in(each, "alice")
    laptop.get("/logout")
    assert [d["user_agent"] for d in phone.get("/devices", {"userid": "alice"}).json] == [
        "Tablet",
        "Phone",
    ]
    phone.get("/revoke", {"userid": "alice", "keep": "1"})  # sign out my other devices
    (kept,) = phone.get("/devices", {"userid": "alice"}).json
    assert kept["current"] and kept["user_agent"] == "Phone"
    assert users(tablet) == [None, None]
    clock.at(601)  # the phone's sessions can no longer be alive
    assert app_store.devices("alice") == []
    if app_store.kind == "memory":
        log_in(tablet, "bob")  # any write of the index drops what expired
        assert app_store.counts()["devices"] == 1


@pytest.mark.parametrize("contained", ["end-of-request", "in-place"])
def test_a_login_too_late_to_reach_the_client_unlists_the_device_it_ends(
    redis_db, tmp_path, contained
):
    # rotate() once the namespace's library saved it (a response callback
    # queued after the load) ends the session: the device it was goes too
    store = MemoryRevocationStore()
    failures = []

    def log_in_late(request):
        request.session_multi["redis"]["seen"] = True

        def log_in(request, response):
            failures.append(request.session_multi.rotate(userid="bob"))

        request.add_response_callback(log_in)
        return {}

    def register(config):
        config.register_session_factory(
            "redis",
            library_factory("redis", redis_db, tmp_path),
            idle_timeout=600,
            concurrent_writes="merge" if contained == "end-of-request" else "overwrite",
        )
        config.set_revocation_store(store)
        config.add_route("late", "/late")
        config.add_view(log_in_late, route_name="late", renderer="json")

    laptop = client(build_lifetime_wsgi(register), "Laptop")
    laptop.get("/login", {"userid": "alice", "ns": "redis"})
    assert len(store.devices("alice")) == 1
    laptop.get("/late")
    assert list(failures[0]) == ["redis"] and "redis" not in laptop.cookies
    assert redis_keys(redis_db) == []
    assert store.devices("alice") == [] and store.devices("bob") == []


@pytest.mark.parametrize("app_store", ["redis", "sqlite", "postgresql"], indirect=True)
def test_devices_on_every_shared_store(redis_db, tmp_path, app_store):
    wsgi = devices_app(app_store, redis_db, tmp_path)
    laptop, phone = client(wsgi, "Laptop"), client(wsgi, "Phone")
    log_in(laptop, "alice")
    log_in(phone, "alice")
    listed = laptop.get("/devices", {"userid": "alice"}).json
    assert len(listed) == 2
    phone_id = next(d["id"] for d in listed if not d["current"])
    laptop.get("/end", {"id": phone_id})
    assert users(phone) == [None, None]
    assert users(laptop) == ["alice", "alice"]
    laptop.get("/logout")
    assert app_store.devices("alice") == []
    assert left_in(app_store) == 1  # the phone's end, kept as long as a revocation


def command_names(packed):
    """The name of each command in ``packed`` (what a client sends at once)."""
    names, at = [], 0
    while at < len(packed):
        end = packed.index(b"\r\n", at)
        count, at = int(packed[at + 1 : end]), end + 2
        for index in range(count):
            end = packed.index(b"\r\n", at)
            length = int(packed[at + 1 : end])
            if index == 0:
                names.append(packed[end + 2 : end + 2 + length].decode())
            at = end + 2 + length + 2
    return names


def counting_store(url):
    """A Redis store on ``url`` whose client notes its round trips in the list
    it returns: the names of the commands each sent at once (one command, or
    a pipeline's)."""
    sent = []

    class Counting(redis.Connection):
        def send_packed_command(self, command, check_health=True):
            packed = b"".join(command) if isinstance(command, list) else command
            sent.append(command_names(packed))
            super().send_packed_command(command, check_health)

    pool = redis.ConnectionPool.from_url(url, connection_class=Counting)
    return RedisRevocationStore(redis.StrictRedis(connection_pool=pool)), sent


def test_index_upkeep_is_one_round_trip_per_login(redis_db, tmp_path, own_redis_server):
    store, sent = counting_store(own_redis_server.url)
    wsgi = devices_app(store, redis_db, tmp_path)
    log_in(client(wsgi, "Warm"), "warm")  # connects, and loads the write's script
    laptop, phone = client(wsgi, "Laptop"), client(wsgi, "Phone")
    del sent[:]
    # a login across two namespaces: one write, one script call
    log_in(laptop, "alice")
    assert sent == [["EVALSHA"]]
    log_in(phone, "alice")
    assert sent == [["EVALSHA"], ["EVALSHA"]]
    assert [d["current"] for d in phone.get("/devices", {"userid": "alice"}).json] == [True, False]
    # a new login on the phone replaces its device: its sessions' revocation
    # check, then one round trip deleting the old entry and writing the new
    (phones, laptops) = [d["id"] for d in laptop.get("/devices", {"userid": "alice"}).json]
    del sent[:]
    log_in(phone, "bob")
    assert sent == [["GET", "HGETALL"], ["HDEL", "DEL", "EVAL"]]
    assert [d["id"] for d in laptop.get("/devices", {"userid": "alice"}).json] == [laptops]
    assert [d["current"] for d in phone.get("/devices", {"userid": "bob"}).json] == [True]
    assert store.find_device(phones) is None
    # a logout: the revocation check of its sessions, then one round trip
    del sent[:]
    laptop.get("/logout")
    assert sent == [["GET", "HGETALL"], ["HDEL", "DEL"]]
    assert store.devices("alice") == []


# the property: whatever a sequence of requests does, devices() is the model's

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

CLIENTS = 3
USERS = ("alice", "bob")

steps = st.lists(
    st.one_of(
        st.tuples(st.just("login"), st.integers(0, CLIENTS - 1), st.sampled_from(USERS)),
        st.tuples(st.just("use"), st.integers(0, CLIENTS - 1), st.just(None)),
        st.tuples(st.just("rotate"), st.integers(0, CLIENTS - 1), st.just(None)),
        st.tuples(st.just("logout"), st.integers(0, CLIENTS - 1), st.just(None)),
        st.tuples(st.just("wait"), st.just(0), st.sampled_from((30, 90, 700))),
        st.tuples(st.just("revoke"), st.integers(0, CLIENTS - 1), st.sampled_from(USERS)),
        st.tuples(st.just("end"), st.integers(0, CLIENTS - 1), st.integers(0, CLIENTS - 1)),
    ),
    max_size=12,
)


def empty(store):
    """Forget everything ``store`` holds, between two examples."""
    if store.kind == "memory":
        store.__init__()
    elif store.kind == "redis":
        store.client.flushdb()
    else:
        import sqlalchemy as sa

        store._create_table()
        with store.engine.begin() as connection:
            for table in (store.table, store.device_table, store.ended_table):
                connection.execute(sa.delete(table))


def run_against_model(store, redis_url, directory, clock, sequence):
    wsgi = devices_app(store, redis_url, directory, idle_timeout=600)
    agents = [f"client {index}" for index in range(CLIENTS)]
    clients = [client(wsgi, agent) for agent in agents]
    model: dict[int, str | None] = dict.fromkeys(range(CLIENTS))

    def listed(userid):
        return sorted(device.user_agent for device in store.devices(userid))

    def expected(userid):
        return sorted(agents[index] for index, user in model.items() if user == userid)

    for operation, index, argument in sequence:
        browser = clients[index]
        if operation == "login":
            log_in(browser, argument)
            model[index] = argument
        elif operation == "use":
            seen = browser.get("/many", {"ns": ",".join(LOGGED_IN)}).json
            assert set(seen.values()) == {model[index]}
        elif operation == "rotate":
            browser.get("/rotate")
        elif operation == "logout":
            browser.get("/logout")
            model[index] = None
        elif operation == "wait":
            clock.at(clock.now - clock.start + argument)
            if argument > 600:
                model = dict.fromkeys(model)
        elif operation == "revoke":
            browser.get("/revoke", {"userid": argument})
            model = {each: None if user == argument else user for each, user in model.items()}
        elif operation == "end":
            userid = model[argument]
            if userid is None:
                continue
            target = next(d for d in store.devices(userid) if d.user_agent == agents[argument])
            browser.get("/end", {"id": target.id})
            model[argument] = None
        for userid in USERS:
            assert listed(userid) == expected(userid), (operation, index, argument)
    for index, browser in enumerate(clients):
        seen = browser.get("/many", {"ns": ",".join(LOGGED_IN)}).json
        assert set(seen.values()) == {model[index]}


@pytest.mark.parametrize("kind", STORES)
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sequence=steps)
def test_devices_equal_a_model_over_any_sequence(
    kind, request, redis_db, tmp_path, clock, sequence
):
    stores = request.node.__dict__.setdefault("stores", {})
    store = stores.get(kind)
    if store is None:
        store = stores[kind] = make_store(kind, request, tmp_path)
        store.kind = kind
    empty(store)
    if kind == "redis":
        store.client.flushdb()
    else:
        redis.StrictRedis.from_url(redis_db).flushdb()
    clock.at(clock.now - clock.start + 10_000)  # every example later than the one before
    run_against_model(store, redis_db, tmp_path, clock, sequence)


def test_a_device_a_revocation_unlisted_is_not_found_by_its_id(store, clock):
    t = clock.now
    store.record_device(entry("alice", t))
    store.revoke("alice", t + 1, 3600)
    assert store.find_device(device_id("alice", t)) is None
    assert store.end_device(device_id("alice", t), 3600) is None


def test_forgetting_no_logins_leaves_the_index_as_it_was(store, clock):
    t = clock.now
    store.record_device(entry("alice", t))
    store.forget_devices("alice", [])
    assert [device.login for device in store.devices("alice")] == [t]


def test_a_login_undone_by_a_logout_in_the_same_request_lists_no_device(redis_db, tmp_path):
    store = CountingStore()

    def register(config):
        config.register_session_factory(
            "signed", library_factory("signed", redis_db, tmp_path), idle_timeout=600
        )
        config.set_revocation_store(store)

        def login_then_logout(request):
            request.session_multi.rotate("signed", userid="alice")
            request.session_multi.invalidate()
            return {}

        config.add_route("changed_mind", "/changed-mind")
        config.add_view(login_then_logout, route_name="changed_mind", renderer="json")

    browser = client(build_lifetime_wsgi(register), "Laptop")
    browser.get("/changed-mind")
    assert store.devices("alice") == []
    assert store.writes == 0
    assert browser.get("/r/signed").json["user"] is None


def test_devices_without_a_device_index_says_how_to_set_one(redis_db, tmp_path):
    class RevocationsOnly:
        def revoke(self, userid, at, ttl):
            pass

        def revoked_at(self, userid):
            return None

    wsgi = devices_app(RevocationsOnly(), redis_db, tmp_path)
    browser = client(wsgi, "Laptop")
    with pytest.raises(ConfigurationError, match=r"devices\(\) needs a revocation store"):
        browser.get("/devices", {"userid": "alice"})
    with pytest.raises(ConfigurationError, match=r"revoke_device\(\) needs"):
        browser.get("/end", {"id": "x"})


def test_a_device_id_that_is_not_text_is_refused(redis_db, tmp_path, app_store):
    wsgi = devices_app(app_store, redis_db, tmp_path)
    with pytest.raises(ValueError, match="a device id is text, not ''"):
        client(wsgi, "Laptop").get("/end", {"id": ""})


def test_devices_lists_this_device_as_current_while_one_of_its_stores_is_down(
    own_redis_server, tmp_path
):
    store = CountingStore()
    wsgi = devices_app(store, own_redis_server.url, tmp_path)
    laptop = client(wsgi, "Laptop")
    log_in(laptop, "alice")
    own_redis_server.stop()
    try:
        (listed,) = laptop.get("/devices", {"userid": "alice"}).json
    finally:
        own_redis_server.start()
    assert listed["current"] is True  # known from the namespace that still loads
    assert listed["namespaces"] == ["redis", "signed"]


class ChecksDown(CountingStore):
    """The memory store, its revocation checks failing while ``down``."""

    down = False

    def revocation_of(self, userid):
        if self.down:
            raise ConnectionError("the revocation checks are down")
        return super().revocation_of(userid)


def test_a_session_that_cannot_be_judged_names_no_current_device(redis_db, tmp_path):
    store = ChecksDown()
    wsgi = devices_app(store, redis_db, tmp_path)
    laptop = client(wsgi, "Laptop")
    log_in(laptop, "alice")
    store.down = True
    (listed,) = laptop.get("/devices", {"userid": "alice"}).json
    assert listed["current"] is False  # listed, but not known to be this request's
    store.down = False
    assert [d["current"] for d in laptop.get("/devices", {"userid": "alice"}).json] == [True]


def test_a_namespace_first_written_after_login_is_not_the_devices(redis_db, tmp_path):
    # as the devices and lifetimes pages say: a namespace the client first gets in
    # a later request records no user, so the device neither lists nor ends it
    store = MemoryRevocationStore()
    wsgi = devices_app(store, redis_db, tmp_path)
    laptop, phone = client(wsgi, "Laptop"), client(wsgi, "Phone")
    laptop.get("/login", {"userid": "alice", "ns": "signed"})
    laptop.get("/w/redis", {"value": "later"})
    log_in(phone, "alice")
    listed = phone.get("/devices", {"userid": "alice"}).json
    (laptop_entry,) = [device for device in listed if not device["current"]]
    assert laptop_entry["namespaces"] == ["signed"]
    assert phone.get("/end", {"id": laptop_entry["id"]}).json == {"ended": True}
    assert laptop.get("/r/signed").json["user"] is None
    assert laptop.get("/r/redis").json == {"value": "later", "user": None}


def test_a_redis_device_id_whose_users_entry_is_gone_finds_no_device(request, clock):
    # the id: key and the user's hash expire on their own: an id left behind
    # by a hash that expired or was emptied first names no device
    store = RedisRevocationStore.from_url(request.getfixturevalue("redis_db"))
    t = clock.now
    store.record_device(entry("alice", t))
    (device,) = store.devices("alice")
    store.client.delete(store._user_key("alice"))
    assert store.client.exists(store._id_key(device.id))
    assert store.find_device(device.id) is None


class ForgetsNothing(CountingStore):
    """The memory store, its device index failing to forget."""

    def forget_devices(self, userid, logins):
        raise ConnectionError("the device index is down")


def test_a_logout_whose_device_cannot_be_forgotten_lists_it_as_not_current(
    redis_db, tmp_path, caplog
):
    # devices.rst: a logout that cannot reach the index leaves the entry to
    # expire with its sessions, logged; the logout itself goes through
    store = ForgetsNothing()

    def register(config):
        for name in LOGGED_IN:
            config.register_session_factory(
                name, library_factory(name, redis_db, tmp_path), idle_timeout=600
            )
        config.set_revocation_store(store)

        def logout_then_list(request):
            failed = request.session_multi.invalidate()
            devices = request.session_multi.devices(request.params["userid"])
            return {"failed": sorted(failed), "current": [d.current for d in devices]}

        config.add_route("logout_list", "/logout-list")
        config.add_view(logout_then_list, route_name="logout_list", renderer="json")

    laptop = client(build_lifetime_wsgi(register), "Laptop")
    log_in(laptop, "alice")
    answer = laptop.get("/logout-list", {"userid": "alice"}).json
    # still listed (the index could not forget it), but no longer this client's
    assert answer == {"failed": [], "current": [False]}
    assert "the device index could not forget the device" in caplog.text
    assert users(laptop) == [None, None]


@pytest.mark.parametrize("kind", ["redis", "beaker", "database"])
@pytest.mark.parametrize("ending", ["login", "logout"])
@pytest.mark.parametrize("store_kind", ["memory", "redis", "sqlite"])
def test_a_request_in_flight_when_its_client_logged_out_does_not_list_the_device_again(
    request, redis_db, tmp_path, clock, kind, ending, store_kind
):
    from tests.support.devices_app import held_wsgi
    from tests.support.interleave import Call, Interleaving, set_cookies

    store = make_store(store_kind, request, tmp_path)
    harness = Interleaving(held_wsgi(store, kind, redis_db, tmp_path))
    cookies = set_cookies(harness.one(Call("/login", params={"userid": "alice"})))
    assert [device.userid for device in store.devices("alice")] == ["alice"]
    clock.at(100)  # past a tenth of the idle timeout: a read moves the idle clock
    # a read loads alice's session; meanwhile the same client logs out, or in as bob
    params = {"userid": "bob"} if ending == "login" else {}
    read, _ = harness.run(
        [Call("/read", cookies), Call(f"/{ending}", cookies, params=params)], order=[1, 0]
    )
    assert read.json == {"user": "alice"}
    # the read's save found the session ended: nothing of alice's login is listed again
    assert "Set-Cookie" not in read.headers
    assert store.devices("alice") == []
    assert [device.userid for device in store.devices("bob")] == (
        ["bob"] if ending == "login" else []
    )


class LoginFailed(Exception):
    pass


def failing_login_view(request):
    request.session_multi.rotate(*LOGGED_IN, userid=request.params["userid"])
    raise LoginFailed


def test_a_login_whose_request_failed_leaves_the_device_it_would_replace_listed(
    redis_db, tmp_path, app_store
):
    # the failed request's rotation is undone (all or nothing): the client keeps
    # its sessions of the earlier login, and that login's device stays listed
    def register(config):
        for name in LOGGED_IN:
            config.register_session_factory(
                name, library_factory(name, redis_db, tmp_path), idle_timeout=600
            )
        config.set_revocation_store(app_store)
        config.add_route("devices", "/devices")
        config.add_view(devices_view, route_name="devices", renderer="json")
        config.add_route("failing_login", "/failing-login")
        config.add_view(failing_login_view, route_name="failing_login", renderer="json")
        config.add_view(lambda exc, request: {"failed": True}, context=LoginFailed, renderer="json")

    laptop = client(build_lifetime_wsgi(register), "Laptop")
    log_in(laptop, "alice")
    (before,) = laptop.get("/devices", {"userid": "alice"}).json
    assert laptop.get("/failing-login", {"userid": "bob"}).json == {"failed": True}
    assert users(laptop) == ["alice", "alice"]
    assert laptop.get("/devices", {"userid": "alice"}).json == [before]
    assert laptop.get("/devices", {"userid": "bob"}).json == []
