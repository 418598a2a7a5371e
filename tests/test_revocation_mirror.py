"""The revocation mirror: checks answered from memory while it is known
current, through a real redis-server (pub/sub) and SQLite (polling).

Each "process" is a store with a client of its own and a mirror of its own,
as two workers have.  Waits are hang guards, never timing assertions.
"""

import os
import threading
import time

import pytest
import redis
import sqlalchemy as sa

from pyramid_session_multi.lifecycle.devices import device_of
from pyramid_session_multi.lifecycle.lifetime import Stamps, now
from pyramid_session_multi.revocation import (
    MemoryRevocationStore,
    RedisRevocationStore,
    SQLRevocationStore,
)
from pyramid_session_multi.revocation.mirror import (
    RedisFeed,
    RevocationMirror,
    SQLPoll,
    _without_retries,
    mirrored,
)
from tests.support.redis_topologies import wait_until

#: The longest any wait of this module may take: a hang guard.
GUARD = 10


def calls(url, command):
    client = redis.StrictRedis.from_url(url)
    try:
        return client.info("commandstats").get(f"cmdstat_{command}", {}).get("calls", 0)
    finally:
        client.close()


@pytest.fixture
def mirrors():
    made = []

    def make(store, **options):
        mirror = mirrored(store, **options)
        made.append(mirror)
        return mirror

    yield make
    for mirror in made:
        mirror.close()


def current(mirror):
    mirror.revocation_of("nobody")  # starts its feed in this process
    return wait_until(lambda: mirror.current, GUARD, "the mirror to be current")


class Namespace:
    namespace, idle_timeout, absolute_timeout = "ns", 600, None


def a_device(userid, login):
    return device_of(userid, login, "agent", [(Namespace, Stamps(login, login, userid, login))])


def test_a_current_mirror_answers_a_known_user_without_asking_the_store(redis_db, mirrors):
    mirror = mirrors(RedisRevocationStore.from_url(redis_db))
    current(mirror)
    assert mirror.revocation_of("alice") == (None, frozenset())
    asked = calls(redis_db, "get")
    for _ in range(20):
        assert mirror.revocation_of("alice") == (None, frozenset())
    assert calls(redis_db, "get") == asked
    assert mirror.hits >= 20


def test_a_revocation_in_another_process_reaches_the_mirror(redis_db, mirrors):
    here = mirrors(RedisRevocationStore.from_url(redis_db))
    elsewhere = mirrors(RedisRevocationStore.from_url(redis_db))
    current(here)
    assert here.revocation_of("alice") == (None, frozenset())
    at = now()
    elsewhere.revoke("alice", at, 60)
    wait_until(lambda: here.revocation_of("alice")[0] == at, GUARD, "the revocation to arrive")


def test_a_device_ended_in_another_process_reaches_the_mirror(redis_db, mirrors):
    here = mirrors(RedisRevocationStore.from_url(redis_db))
    elsewhere = RedisRevocationStore.from_url(redis_db)
    current(here)
    login = now()
    elsewhere.record_device(a_device("alice", login))
    assert here.revocation_of("alice") == (None, frozenset())
    elsewhere.end_device(elsewhere.devices("alice")[0].id, 60)
    wait_until(
        lambda: here.revocation_of("alice") == (None, frozenset({login})),
        GUARD,
        "the device end to arrive",
    )


def test_a_write_through_the_mirror_is_seen_at_once_in_its_own_process(redis_db, mirrors):
    mirror = mirrors(RedisRevocationStore.from_url(redis_db))
    current(mirror)
    assert mirror.revocation_of("alice") == (None, frozenset())
    at = now()
    mirror.revoke("alice", at, 60)
    assert mirror.revocation_of("alice")[0] == at


def test_before_it_is_current_every_check_asks_the_store(redis_db):
    store = RedisRevocationStore.from_url(redis_db)

    class NeverSubscribed:
        def start(self, mirror):
            pass

        def stop(self):
            pass

    mirror = RevocationMirror(store, NeverSubscribed())
    asked = calls(redis_db, "get")
    for _ in range(3):
        assert mirror.revocation_of("alice") == (None, frozenset())
    assert calls(redis_db, "get") == asked + 3
    assert mirror.hits == 0


def test_a_lost_subscription_sends_checks_to_the_store_until_it_is_back(redis_db, mirrors):
    here = mirrors(RedisRevocationStore.from_url(redis_db), ping_every=0.2, retry_every=0.2)
    elsewhere = RedisRevocationStore.from_url(redis_db)
    current(here)
    assert here.revocation_of("alice") == (None, frozenset())
    admin = redis.StrictRedis.from_url(redis_db)
    try:
        # the server drops the subscription: the mirror forgets, then subscribes again
        admin.client_kill_filter(_type="pubsub")
        wait_until(lambda: not here.current or here.misses > 1, GUARD, "the loss to be noticed")
        wait_until(lambda: here.current, GUARD, "the mirror to subscribe again")
        # what was known before the loss was forgotten, then a change is heard again
        at = now()
        elsewhere.revoke("alice", at, 60)
        wait_until(lambda: here.revocation_of("alice")[0] == at, GUARD, "the revocation")
    finally:
        admin.close()


def test_a_feed_that_cannot_open_its_subscription_keeps_checks_on_the_store(redis_db, mirrors):
    store = RedisRevocationStore.from_url(redis_db)
    opened = store.client.pubsub
    refused = threading.Event()
    allowed = threading.Event()

    def pubsub(**options):
        if not allowed.is_set():
            refused.set()
            raise redis.ConnectionError("no connection for the subscription")
        return opened(**options)

    store.client.pubsub = pubsub
    mirror = mirrors(store, retry_every=0.05)
    asked = calls(redis_db, "get")
    assert mirror.revocation_of("alice") == (None, frozenset())  # starts the feed
    wait_until(refused.is_set, GUARD, "the feed to try its subscription")
    # never current while it cannot subscribe: every check reads the store
    for _ in range(3):
        assert mirror.revocation_of("alice") == (None, frozenset())
    assert not mirror.current
    assert (mirror.hits, calls(redis_db, "get")) == (0, asked + 4)
    # it keeps trying, and is current once it can subscribe
    allowed.set()
    wait_until(lambda: mirror.current, GUARD, "the mirror to subscribe")


def test_a_mirror_whose_store_is_gone_fails_closed(own_redis_server, mirrors):
    here = mirrors(
        RedisRevocationStore.from_url(own_redis_server.url), ping_every=0.2, retry_every=0.2
    )
    current(here)
    assert here.revocation_of("alice") == (None, frozenset())
    own_redis_server.stop()
    wait_until(lambda: not here.current, GUARD, "the loss to be noticed")
    with pytest.raises(redis.ConnectionError):
        here.revocation_of("alice")
    own_redis_server.start()
    wait_until(lambda: here.current, GUARD, "the mirror to subscribe again")
    # once the client's circuit breaker lets calls through again
    wait_until(lambda: here.revocation_of("alice") == (None, frozenset()), GUARD, "the store")


def test_an_answer_read_across_a_change_is_not_kept(redis_db):
    store = RedisRevocationStore.from_url(redis_db)

    class Subscribed:
        def start(self, mirror):
            mirror.became_current()

        def stop(self):
            pass

    mirror = RevocationMirror(store, Subscribed())
    mirror.revocation_of("bob")  # current from here

    class ChangedWhileAsking:
        def revocation_of(self, userid):
            mirror.changed(userid)
            return (None, frozenset())

    mirror.store = ChangedWhileAsking()
    mirror.revocation_of("alice")
    mirror.store = store
    store.revoke("alice", 5.0, 60)
    assert mirror.revocation_of("alice")[0] == 5.0


def test_an_sql_mirror_polls_for_changes(tmp_path, mirrors):
    url = f"sqlite:///{tmp_path / 'mirror.sqlite'}"
    here = mirrors(SQLRevocationStore(url), interval=0.05)
    elsewhere = SQLRevocationStore(url)
    current(here)
    assert here.revocation_of("alice") == (None, frozenset())
    hits = here.hits
    assert here.revocation_of("alice") == (None, frozenset())
    assert here.hits == hits + 1
    login = now()
    elsewhere.record_device(a_device("alice", login))
    elsewhere.end_device(elsewhere.devices("alice")[0].id, 60)
    wait_until(lambda: here.revocation_of("alice") == (None, frozenset({login})), GUARD, "the poll")
    at = now()
    elsewhere.revoke("alice", at, 60)
    wait_until(lambda: here.revocation_of("alice")[0] == at, GUARD, "the poll")


def test_a_memory_store_has_no_mirror():
    with pytest.raises(ValueError, match="Redis or an SQL"):
        mirrored(MemoryRevocationStore())


def test_a_mirror_holds_at_most_its_capacity(redis_db):
    store = RedisRevocationStore.from_url(redis_db)
    feed = RedisFeed(store)
    mirror = RevocationMirror(store, feed, capacity=3)
    try:
        current(mirror)
        for index in range(10):
            mirror.revocation_of(f"user{index}")
        assert len(mirror._known) <= 3
    finally:
        mirror.close()


def test_the_feeds_stop_with_the_mirror(redis_db, tmp_path):
    store = RedisRevocationStore.from_url(redis_db)
    mirror = RevocationMirror(store, RedisFeed(store))
    current(mirror)
    mirror.close()
    assert not mirror.current
    assert not mirror.feed._thread.is_alive()
    sql = SQLRevocationStore(f"sqlite:///{tmp_path / 'stop.sqlite'}")
    polled = RevocationMirror(sql, SQLPoll(sql, interval=0.05))
    current(polled)
    polled.close()
    time.sleep(0)  # the thread joined in close()
    assert not polled.feed._thread.is_alive()


# two application instances sharing one Redis store, each with its mirror

import webtest  # noqa: E402

from pyramid_session_multi.config import get_manager_config  # noqa: E402
from pyramid_session_multi.settings import SettingsError  # noqa: E402
from tests.support.lifetime_apps import build_lifetime_wsgi, library_factory  # noqa: E402


def mirrored_app(redis_url, directory, revocations):
    def register(config):
        config.register_session_factory(
            "signed", library_factory("signed", redis_url, directory), idle_timeout=600
        )

        def end(request):
            return {"ended": request.session_multi.revoke_device(request.params["id"])}

        def listed(request):
            return [d.id for d in request.session_multi.devices(request.params["userid"])]

        config.add_route("end", "/end")
        config.add_view(end, route_name="end", renderer="json")
        config.add_route("devices", "/devices")
        config.add_view(listed, route_name="devices", renderer="json")

    settings = {
        "session_multi.revocations": revocations,
        "session_multi.revocations_mirror": "true",
    }
    wsgi = build_lifetime_wsgi(register, settings)
    return wsgi, get_manager_config(wsgi.registry).revocations


@pytest.fixture
def two_instances(redis_db, tmp_path):
    made = [mirrored_app(redis_db, tmp_path, redis_db) for _ in range(2)]
    yield made
    for _wsgi, mirror in made:
        mirror.close()


def test_the_setting_mirrors_the_store_in_each_instance(two_instances, redis_db):
    (wsgi_a, mirror_a), (wsgi_b, _mirror_b) = two_instances
    laptop, phone = webtest.TestApp(wsgi_a), webtest.TestApp(wsgi_b)
    laptop.get("/login", {"userid": "alice", "ns": "signed"})
    phone.get("/login", {"userid": "alice", "ns": "signed"})
    assert "mirrored" in mirror_a.describe()
    current(mirror_a)
    assert laptop.get("/r/signed").json["user"] == "alice"
    asked = calls(redis_db, "get")
    for _ in range(5):  # logged-in reads: answered from the mirror, no round trip
        assert laptop.get("/r/signed").json["user"] == "alice"
    assert calls(redis_db, "get") == asked
    # the laptop's device, ended through the other instance, is refused here
    ids = phone.get("/devices", {"userid": "alice"}).json
    laptop_id = ids[1]  # the latest login first: the phone's, then the laptop's
    assert phone.get("/end", {"id": laptop_id}).json == {"ended": True}
    wait_until(lambda: laptop.get("/r/signed").json["user"] is None, GUARD, "the end to arrive")
    assert phone.get("/r/signed").json["user"] == "alice"


def test_an_instance_whose_mirror_lost_its_subscription_asks_the_store(two_instances, redis_db):
    (wsgi_a, mirror_a), (wsgi_b, _mirror_b) = two_instances
    laptop, phone = webtest.TestApp(wsgi_a), webtest.TestApp(wsgi_b)
    laptop.get("/login", {"userid": "alice", "ns": "signed"})
    phone.get("/login", {"userid": "alice", "ns": "signed"})
    current(mirror_a)
    assert laptop.get("/r/signed").json["user"] == "alice"
    # the subscription goes: until it is back, nothing is answered from memory
    mirror_a.feed.stop()
    assert not mirror_a.current
    asked = calls(redis_db, "get")
    assert laptop.get("/r/signed").json["user"] == "alice"
    assert calls(redis_db, "get") == asked + 1
    laptop_id = phone.get("/devices", {"userid": "alice"}).json[1]
    phone.get("/end", {"id": laptop_id})
    assert laptop.get("/r/signed").json["user"] is None  # at once: the store was asked
    mirror_a.feed.start(mirror_a)
    wait_until(lambda: mirror_a.current, GUARD, "the mirror to subscribe again")
    assert phone.get("/r/signed").json["user"] == "alice"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"session_multi.revocations_mirror": "true"}, "session_multi.revocations names none"),
        (
            {"session_multi.revocations_mirror": "ture", "session_multi.revocations": "redis://h"},
            "session_multi.revocations_mirror",
        ),
    ],
)
def test_a_mirror_setting_that_cannot_be_followed_is_refused(settings, message):
    with pytest.raises(SettingsError, match=message):
        build_lifetime_wsgi(lambda config: None, settings)


def test_a_mirror_set_to_false_leaves_the_store_alone(redis_db):
    settings = {"session_multi.revocations": redis_db, "session_multi.revocations_mirror": "no"}
    wsgi = build_lifetime_wsgi(lambda config: None, settings)
    assert isinstance(get_manager_config(wsgi.registry).revocations, RedisRevocationStore)


class SilentFeed:
    """A feed told to start in each process, that says nothing of its own."""

    def __init__(self):
        self.started = 0

    def start(self, mirror):
        self.started += 1

    def stop(self):
        pass


def test_a_forked_process_does_not_answer_from_what_its_parent_knew(monkeypatch):
    store = MemoryRevocationStore()
    feed = SilentFeed()
    mirror = RevocationMirror(store, feed)
    mirror.revocation_of("nobody")  # started in this process
    mirror.became_current()  # as a feed says once subscribed
    assert mirror.revocation_of("alice") == (None, frozenset())
    assert mirror.revocation_of("alice") == (None, frozenset())
    assert mirror.hits == 1
    # a worker forked from here: the parent's memory, but no subscription of its own
    parent = os.getpid()
    monkeypatch.setattr(os, "getpid", lambda: parent + 1)
    store.revoke("alice", 5.0, 60)  # unheard: the worker's feed is not current yet
    assert mirror.revocation_of("alice")[0] == 5.0
    assert feed.started == 2 and not mirror.current


def test_a_mirror_that_lost_its_feed_asks_the_store():
    store = MemoryRevocationStore()
    mirror = RevocationMirror(store, SilentFeed())
    mirror.revocation_of("nobody")
    mirror.became_current()
    assert mirror.revocation_of("alice") == (None, frozenset())
    mirror.lost("test")
    store.revoke("alice", 5.0, 60)  # unheard: the feed is lost
    assert mirror.revocation_of("alice")[0] == 5.0
    assert mirror.hits == 0


def test_ending_an_unknown_device_through_the_mirror_drops_nothing_it_knew():
    store = MemoryRevocationStore()
    mirror = RevocationMirror(store, SilentFeed())
    mirror.revocation_of("nobody")
    mirror.became_current()
    assert mirror.revocation_of("alice") == (None, frozenset())
    assert mirror.end_device("no-such-device", 60) is None
    hits = mirror.hits
    assert mirror.revocation_of("alice") == (None, frozenset())
    assert mirror.hits == hits + 1


class RevocationsOnly:
    """A store of one's own that keeps revocations and no device index."""

    def __init__(self):
        self.revoked = {}

    def revoke(self, userid, at, ttl):
        self.revoked[userid] = at

    def revoked_at(self, userid):
        return self.revoked.get(userid)

    def describe(self):
        return "revocations only"


def test_a_mirror_of_a_store_without_devices_answers_no_ended_login():
    store = RevocationsOnly()
    mirror = RevocationMirror(store, SilentFeed())
    mirror.revocation_of("nobody")
    mirror.became_current()
    assert mirror.revocation_of("alice") == (None, frozenset())
    mirror.revoke("alice", 5.0, 60)
    assert mirror.revocation_of("alice") == (5.0, frozenset())
    assert mirror.revoked_at("alice") == 5.0
    assert mirror.describe() == "revocations only, mirrored in each process"


def test_closing_a_mirror_never_used_stops_nothing(redis_db, tmp_path):
    store = RedisRevocationStore.from_url(redis_db)
    mirror = mirrored(store)
    mirror.close()
    assert not mirror.current and mirror.feed._thread is None
    sql = SQLRevocationStore(f"sqlite:///{tmp_path / 'unused.sqlite'}")
    polled = mirrored(sql)
    polled.close()
    assert not polled.current and polled.feed._thread is None


def test_a_feed_stopped_before_redis_confirms_its_subscription_is_not_current(redis_db):
    store = RedisRevocationStore.from_url(redis_db)
    feed = RedisFeed(store)
    pubsub = store.client.pubsub(ignore_subscribe_messages=False)
    try:
        feed._stop.set()
        with pytest.raises(ConnectionError, match="not confirmed"):
            feed._until_confirmed(pubsub)
    finally:
        pubsub.close()


def test_a_feed_that_hears_its_subscription_made_again_starts_over(redis_db):
    store = RedisRevocationStore.from_url(redis_db)
    heard = []

    class Listener:
        def lost(self, why):
            heard.append(("lost", why))

        def became_current(self):
            heard.append(("current",))
            feed._stop.set()  # one round is enough

        def changed(self, userid):
            heard.append(("changed", userid))

    feed = RedisFeed(store)
    pubsub = store.client.pubsub(ignore_subscribe_messages=False)
    try:
        pubsub.subscribe(store.channel)
        feed._until_confirmed(pubsub)
        store.client.publish(store.channel, "alice")
        pubsub.subscribe(store.channel)  # as a client that reconnected on its own does
        guard = threading.Timer(GUARD, feed._stop.set)  # a hang guard: _listen returns
        guard.start()
        try:
            feed._listen(pubsub, Listener())
        finally:
            guard.cancel()
    finally:
        pubsub.close()
    assert heard == [
        ("changed", "alice"),
        ("lost", "the subscription was made again"),
        ("current",),
    ]


def test_an_sql_mirror_whose_poll_fails_asks_the_store_and_fails_closed(tmp_path, mirrors):
    path = tmp_path / "poll.sqlite"
    store = SQLRevocationStore(f"sqlite:///{path}")
    here = mirrors(store, interval=0.05)
    current(here)
    assert here.revocation_of("alice") == (None, frozenset())
    with store.engine.begin() as connection:
        connection.execute(sa.text(f"DROP TABLE {store.table.name}"))
    wait_until(lambda: not here.current, GUARD, "the failed poll to be noticed")
    with pytest.raises(sa.exc.OperationalError):  # no such table: not an answer from memory
        here.revocation_of("alice")


def test_a_feed_waits_past_other_messages_for_its_confirmation(redis_db):
    store = RedisRevocationStore.from_url(redis_db)
    feed = RedisFeed(store)
    pubsub = store.client.pubsub(ignore_subscribe_messages=False)
    try:
        pubsub.subscribe(store.channel)
        wait_until(
            lambda: pubsub.get_message(timeout=0.5) is not None, GUARD, "the first confirmation"
        )
        store.client.publish(store.channel, "alice")
        pubsub.subscribe(store.channel)
        feed._until_confirmed(pubsub)  # the message, then the confirmation: no error
        assert pubsub.get_message(timeout=0.2) is None
    finally:
        pubsub.close()


def test_a_subscription_not_yet_connected_is_left_to_its_client(redis_db):
    store = RedisRevocationStore.from_url(redis_db)
    pubsub = store.client.pubsub()
    try:
        assert pubsub.connection is None
        _without_retries(pubsub)
        assert pubsub.connection is None
    finally:
        pubsub.close()


# two application processes (waitress workers) sharing one store, each with its mirror

from tests.support.http_client import CookieClient, start_worker, stop  # noqa: E402
from tests.support.redis_server import free_port  # noqa: E402

#: The longest a wait across processes may take: a hang guard.
PROCESS_GUARD = 30


@pytest.fixture
def processes(tmp_path):
    """``start(revocations)``: two worker processes, A and B, of
    tests/support/devices_app.py on that store; their ports."""
    started = []

    def start(revocations):
        ports = [free_port(), free_port()]
        for port in ports:
            arguments = ["--revocations", revocations, "--data-dir", str(tmp_path)]
            started.append(start_worker("tests.support.devices_app", port, *arguments))
        return ports

    yield start
    for worker in started:
        stop(worker)


def user_at(port, cookies):
    """The user a request with ``cookies`` (a copy: a refusal deletes nothing
    of the caller's) is logged in as on ``port``."""
    client = CookieClient(port)
    client.cookies = dict(cookies)
    status, body, _ = client.get("/r/signed")
    assert status == 200, body
    return body["user"]


def mirror_of(port):
    status, body, _ = CookieClient(port).get("/mirror")
    assert status == 200, body
    return body


def log_in(port, userid):
    client = CookieClient(port)
    status, body, _ = client.get(f"/login?userid={userid}&ns=signed")
    assert (status, body) == (200, {"failed": []})
    return client


def listed(client, port):
    """``client``'s view of alice's devices on ``port``: ids, and the current one."""
    status, body, _ = client.get("/devices?userid=alice", port=port)
    assert status == 200, body
    (current,) = [device["id"] for device in body if device["current"]]
    return [device["id"] for device in body], current


def two_devices_one_ended_through_the_other_process(a, b):
    """Alice logs in on A from a laptop and a phone; the phone lists both on B
    and ends the laptop there.  The clients, and the laptop's id."""
    laptop, phone = log_in(a, "alice"), log_in(a, "alice")
    assert user_at(a, laptop.cookies) == user_at(a, phone.cookies) == "alice"
    ids, phones = listed(phone, b)
    also, laptops = listed(laptop, b)
    assert len(ids) == 2 and set(ids) == set(also) == {phones, laptops}
    assert ids == [phones, laptops]  # the latest login first
    # A answers alice's checks from memory before the end: A must hear it
    wait_until(lambda: mirror_of(a)["current"], PROCESS_GUARD, "A's mirror to be current")
    hits = mirror_of(a)["hits"]
    assert user_at(a, laptop.cookies) == user_at(a, laptop.cookies) == "alice"
    assert mirror_of(a)["hits"] > hits
    status, body, _ = phone.get(f"/end?id={laptops}", port=b)
    assert (status, body) == (200, {"ended": True})
    return laptop, phone, laptops


def shared_store(kind, request, tmp_path):
    """The URL of a store of ``kind`` both processes share."""
    if kind == "redis":
        return request.getfixturevalue("own_redis_server").url
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'revoked.sqlite'}"
    return request.getfixturevalue("postgresql_url")


@pytest.mark.parametrize("store", ["redis", "sqlite", "postgresql"])
def test_a_device_ended_in_one_process_is_refused_by_the_other(request, tmp_path, processes, store):
    a, b = processes(shared_store(store, request, tmp_path))
    laptop, phone, laptops = two_devices_one_ended_through_the_other_process(a, b)
    wait_until(lambda: user_at(a, laptop.cookies) is None, PROCESS_GUARD, "A to refuse it")
    assert user_at(b, laptop.cookies) is None
    # the phone stays logged in in both processes, and is now alice's only device
    assert user_at(a, phone.cookies) == user_at(b, phone.cookies) == "alice"
    assert listed(phone, a)[0] == listed(phone, b)[0] == [listed(phone, b)[1]]
    assert laptops not in listed(phone, a)[0]


def test_a_process_whose_subscription_is_lost_asks_the_store_then_recovers(
    own_redis_server, processes
):
    a, b = processes(own_redis_server.url)
    laptop, phone, _laptops = two_devices_one_ended_through_the_other_process(a, b)
    wait_until(lambda: user_at(a, laptop.cookies) is None, PROCESS_GUARD, "A to refuse it")
    tablet = log_in(a, "alice")
    assert user_at(a, tablet.cookies) == "alice"
    admin = redis.StrictRedis.from_url(own_redis_server.url)
    try:
        # the server drops every subscription, and refuses new ones for now
        admin.execute_command("ACL", "SETUSER", "default", "-subscribe")
        admin.client_kill_filter(_type="pubsub")
        wait_until(lambda: not mirror_of(a)["current"], PROCESS_GUARD, "A to notice the loss")
        # every check asks the store: what was ended stays refused, and an end
        # A cannot hear is refused there at once
        before = mirror_of(a)
        assert user_at(a, laptop.cookies) is None
        assert user_at(a, phone.cookies) == "alice"
        tablets = listed(tablet, b)[1]
        assert phone.get(f"/end?id={tablets}", port=b)[1] == {"ended": True}
        assert user_at(a, tablet.cookies) is None
        assert user_at(a, phone.cookies) == "alice"
        after = mirror_of(a)
        assert after["hits"] == before["hits"] and after["misses"] >= before["misses"] + 4
        assert not after["current"]
        # subscriptions allowed again: A's mirror is current again and answers from memory
        admin.execute_command("ACL", "SETUSER", "default", "+subscribe")
        wait_until(lambda: mirror_of(a)["current"], PROCESS_GUARD, "A to subscribe again")
        assert user_at(a, phone.cookies) == "alice"
        hits = mirror_of(a)["hits"]
        assert user_at(a, phone.cookies) == "alice"
        assert user_at(a, laptop.cookies) is None and user_at(a, tablet.cookies) is None
        assert mirror_of(a)["hits"] >= hits + 3
    finally:
        admin.execute_command("ACL", "SETUSER", "default", "+subscribe")
        admin.close()


def answer_at(port, cookies):
    """``(status, user)`` of a read with a copy of ``cookies`` on ``port``."""
    client = CookieClient(port)
    client.cookies = dict(cookies)
    status, body, _ = client.get("/r/signed")
    return status, body["user"] if status == 200 else None


def test_a_process_whose_sql_polls_fail_fails_closed_then_recovers(
    own_postgresql_server, processes
):
    a, b = processes(own_postgresql_server.url)
    laptop, phone, _laptops = two_devices_one_ended_through_the_other_process(a, b)
    wait_until(lambda: user_at(a, laptop.cookies) is None, PROCESS_GUARD, "A to refuse it")
    own_postgresql_server.stop()
    try:
        wait_until(lambda: not mirror_of(a)["current"], PROCESS_GUARD, "A to notice the loss")
        # nothing is answered from memory: a logged-in request fails, none passes
        assert answer_at(a, phone.cookies)[0] == 500
        assert answer_at(a, laptop.cookies)[0] == 500
    finally:
        own_postgresql_server.start()
    wait_until(lambda: mirror_of(a)["current"], PROCESS_GUARD, "A to poll again")
    wait_until(lambda: user_at(a, phone.cookies) == "alice", PROCESS_GUARD, "the store")
    assert user_at(a, laptop.cookies) is None
    hits = mirror_of(a)["hits"]
    assert user_at(a, phone.cookies) == "alice"
    assert mirror_of(a)["hits"] > hits
