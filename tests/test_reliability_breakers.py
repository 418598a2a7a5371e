"""Circuit breakers on real stores that hang or stop under a running app:
one Redis Cluster node paused until its replica takes over (a breaker per
node), and a PostgreSQL stopped and started again (a breaker per database,
for Beaker's ext:database and the SQL revocation store).

Counts, never durations: how many times each breaker opened (each time is a
call that reached a store that did not answer), how many calls it refused
(each a call that did not reach the network), and the sessions, keys and
rows left after each path.
"""

import signal
import threading
import time
import types

import pytest
import redis
import sqlalchemy
import webtest

from pyramid_session_multi.config import get_manager_config
from pyramid_session_multi.describe import describe_breakers
from pyramid_session_multi.libraries.base import closure_of
from pyramid_session_multi.revocation import SQLRevocationStore
from pyramid_session_multi.stores.breaker import CLOSED, OPEN, CircuitOpen
from pyramid_session_multi.stores.redis import breakers_of
from pyramid_session_multi.stores.sql import SQLCircuitOpen, breaker_of_url
from tests.support import redis_server
from tests.support.apps import build_wsgi
from tests.support.redis_topologies import (
    LocalCluster,
    cluster_keys,
    key_in_slots,
    redis_namespace,
    running,
    wait_until,
)

#: Seconds a failover or a restart may take before a test gives up: a hang guard.
HANG_GUARD = 90


# -- a Redis Cluster node paused ------------------------------------------------------


@pytest.fixture
def cluster(tmp_path):
    yield from running(LocalCluster(tmp_path / "cluster"))


def cluster_app(cluster, interval):
    settings = {
        "session_multi.namespaces": "ns",
        **redis_namespace(
            "ns",
            redis_cluster_nodes=" ".join(cluster.nodes),
            redis_socket_timeout="0.5",
            redis_breaker_interval=str(interval),
        ),
    }
    wsgi = build_wsgi(settings=settings)
    return wsgi, get_manager_config(wsgi.registry).get("ns").factory


def sessions_by_master(cluster, wsgi, count):
    """``count`` clients, each with a session holding its own value, by the
    port of the master that keeps it: ``{port: [(client, value)]}``."""
    by_master: dict[int, list] = {}
    before = {key for keys in cluster_keys(cluster).values() for key in keys}
    for index in range(count):
        client = webtest.TestApp(wsgi)
        value = f"value {index}"
        client.post("/s/ns", {"value": value})
        for port, keys in cluster_keys(cluster).items():
            new = set(keys) - before
            if new:
                by_master.setdefault(port, []).append((client, value))
                before |= new
    return by_master


def test_a_paused_cluster_node_opens_its_own_breaker_and_its_slots_come_back_on_failover(
    cluster,
):
    wsgi, factory = cluster_app(cluster, interval=600)  # no probe within the test
    by_master = sessions_by_master(cluster, wsgi, 24)
    assert len(by_master) == 3, "the sessions did not spread over the masters"
    cluster.wait_replicated()
    victim = max(by_master, key=lambda port: len(by_master[port]))
    on_victim = by_master[victim]
    elsewhere = [pair for port, pairs in by_master.items() if port != victim for pair in pairs]
    victim_key = key_in_slots(cluster.masters()[victim]["slots"])
    redis_client = closure_of(factory)["redis_client_callable"]()
    process = cluster.processes[victim]
    process.send_signal(signal.SIGSTOP)
    try:
        refused = 0
        for client, _value in on_victim * 3:
            with pytest.raises(redis.exceptions.ConnectionError) as info:
                client.get("/s/ns")
            refused += isinstance(info.value, CircuitOpen)
            # a request whose session is on a master that answers is served
            for other, other_value in elsewhere[:4]:
                assert other.get("/s/ns").json["value"] == other_value
        breakers = {breaker.store: breaker for breaker in breakers_of(factory)}
        victim_breaker = breakers[f"Redis Cluster node 127.0.0.1:{victim}"]
        # one call reached the paused node and waited; every other was refused
        assert victim_breaker.state == OPEN and victim_breaker.opened == 1
        assert refused == len(on_victim) * 3
        assert victim_breaker.refused >= refused
        others = [breaker for breaker in breakers.values() if breaker is not victim_breaker]
        assert others and all(b.state == CLOSED and b.opened == 0 for b in others)
        # the transaction pyramid_session_redis makes a new session id with is refused too
        with pytest.raises(CircuitOpen), redis_client.pipeline() as transaction:
            transaction.watch(victim_key)
        assert victim_breaker.opened == 1
        # what the panel shows: one breaker per node reached, the paused one open
        shown = describe_breakers(get_manager_config(wsgi.registry).get("ns"))
        assert {row["store"]: row["state"] for row in shown} == {
            breaker.store: OPEN if breaker is victim_breaker else CLOSED
            for breaker in breakers.values()
        }

        # the replica takes over: its slots are served again, the breaker still open
        wait_until(lambda: victim not in cluster.masters(), HANG_GUARD, "the failover")
        client, value = on_victim[0]
        served = wait_until(
            lambda: client.get("/s/ns", expect_errors=True).json.get("value") == value,
            HANG_GUARD,
            "the session on the promoted replica",
        )
        assert served
        for client, value in on_victim + elsewhere:
            assert client.get("/s/ns").json["value"] == value
        assert victim_breaker.state == OPEN and victim_breaker.opened == 1
        new = webtest.TestApp(wsgi)
        new.post("/s/ns", {"value": "after the failover"})
        assert new.get("/s/ns").json["value"] == "after the failover"
        # every session kept, the new one added, nothing else (on the live masters)
        assert sum(len(keys) for keys in cluster_keys(cluster).values()) == 24 + 1
    finally:
        process.send_signal(signal.SIGCONT)


# -- PostgreSQL stopped and started again ---------------------------------------------


def beaker_database_app(url, tmp_path, interval):
    settings = {
        "session_multi.namespaces": "db prefs",
        "session_multi.db.factory": "beaker",
        "session_multi.db.type": "ext:database",
        "session_multi.db.url": f"{url}?connect_timeout=2&breaker_interval={interval}",
        "session_multi.db.table_name": "breaker_sessions",
        "session_multi.db.lock_dir": str(tmp_path / "db-lock"),
        "session_multi.db.cookie_name": "db",
        "session_multi.prefs.factory": "signed",
        "session_multi.prefs.secret": "prefs-secret-of-at-least-32-bytes!",
        "session_multi.prefs.cookie_name": "prefs",
    }
    return build_wsgi(settings=settings)


def session_rows(url):
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as connection:
            query = sqlalchemy.text("select count(*) from breaker_sessions")
            return connection.execute(query).scalar_one()
    finally:
        engine.dispose()


@pytest.mark.postgresql
def test_a_stopped_postgresql_opens_the_breaker_of_beakers_database_and_a_probe_closes_it(
    own_postgresql_server, tmp_path
):
    postgresql_server = own_postgresql_server
    url = postgresql_server.url
    wsgi = beaker_database_app(url, tmp_path, interval=600)
    app = webtest.TestApp(wsgi)
    app.post("/s/db", {"value": "before"})
    app.post("/s/prefs", {"value": "kept"})
    breaker = breaker_of_url(f"{url}?connect_timeout=2")
    assert breaker is not None and breaker.state == CLOSED
    postgresql_server.stop()
    try:
        errors = []
        for _ in range(10):
            with pytest.raises(Exception) as info:
                app.get("/s/db")
            errors.append(type(info.value))
            # a request of another namespace is not slowed, nor failed
            assert app.get("/s/prefs").json["value"] == "kept"
        # the pooled connection found the server gone; every later request was refused
        assert errors == [sqlalchemy.exc.OperationalError] + [SQLCircuitOpen] * 9
        assert breaker.state == OPEN and breaker.opened == 1 and breaker.refused == 9
    finally:
        postgresql_server.start()
    with pytest.raises(SQLCircuitOpen):  # back, but not tried before the interval is over
        app.get("/s/db")
    breaker.clock = lambda: time.monotonic() + breaker.interval
    assert app.get("/s/db").json["value"] == "before"
    assert breaker.state == CLOSED and breaker.opened == 1
    assert session_rows(url) == 1


@pytest.mark.postgresql
def test_the_sql_revocation_store_fails_fast_while_postgresql_is_stopped(own_postgresql_server):
    postgresql_server = own_postgresql_server
    url = postgresql_server.url
    store = SQLRevocationStore(f"{url}?connect_timeout=2", breaker_interval=600)
    store.revoke("alice", 1.0, 60)
    assert store.revoked_at("alice") == 1.0
    postgresql_server.stop()
    try:
        with pytest.raises(sqlalchemy.exc.OperationalError):
            store.revoked_at("alice")
        for _ in range(10):
            with pytest.raises(SQLCircuitOpen):
                store.revoked_at("alice")
        assert store.breaker.opened == 1 and store.breaker.refused == 10
    finally:
        postgresql_server.start()
    store.breaker.clock = lambda: time.monotonic() + store.breaker.interval
    assert store.revoked_at("alice") == 1.0
    assert store.breaker.state == CLOSED
    assert len(store) == 1


def test_a_port_handed_out_to_one_server_is_never_handed_out_to_another(monkeypatch):
    """The kernel gives a port again once its server stopped: a later test's
    server on it would share the SQL breaker (and Beaker's engine) of the URL
    with an earlier test's, whose breaker opened already."""
    first = redis_server.free_port()
    unused = max(redis_server._HANDED_OUT) + 1
    answers = iter([first, unused])

    class Kernel:
        def __enter__(self):
            return self

        def __exit__(self, *exc_info):
            pass

        def bind(self, address):
            self.port = next(answers)

        def getsockname(self):
            return ("127.0.0.1", self.port)

    monkeypatch.setattr(redis_server, "socket", types.SimpleNamespace(socket=Kernel))
    assert redis_server.free_port() == unused


# -- PostgreSQL hung (SIGSTOP) and resumed --------------------------------------------


class paused:
    """The server paused for the block; resumed at its end, or after the hang
    guard by a timer (a call that waited for it then ends, and the test
    fails on what it returned rather than hanging)."""

    def __init__(self, server):
        self.server = server
        self.timer = threading.Timer(HANG_GUARD, self.resume)
        self.resumed = False
        self.lock = threading.Lock()

    def resume(self):
        with self.lock:
            if not self.resumed:
                self.resumed = True
                self.server.resume()

    def __enter__(self):
        self.server.pause()
        self.timer.start()
        return self

    def __exit__(self, *exc_info):
        self.timer.cancel()
        self.resume()


@pytest.mark.postgresql
def test_a_hung_postgresql_costs_beakers_database_one_timeout_per_interval(
    own_postgresql_server, tmp_path
):
    postgresql_server = own_postgresql_server
    url = postgresql_server.url
    guarded = f"{url}?connect_timeout=2&breaker_interval=600&statement_timeout_client=1"
    wsgi = build_wsgi(
        settings={
            "session_multi.namespaces": "db prefs",
            "session_multi.db.factory": "beaker",
            "session_multi.db.type": "ext:database",
            "session_multi.db.url": guarded,
            "session_multi.db.table_name": "breaker_sessions",
            "session_multi.db.lock_dir": str(tmp_path / "db-lock"),
            "session_multi.db.cookie_name": "db",
            "session_multi.prefs.factory": "signed",
            "session_multi.prefs.secret": "prefs-secret-of-at-least-32-bytes!",
            "session_multi.prefs.cookie_name": "prefs",
        }
    )
    app = webtest.TestApp(wsgi)
    app.post("/s/db", {"value": "before"})
    app.post("/s/prefs", {"value": "kept"})
    breaker = breaker_of_url(guarded)
    assert breaker is not None and breaker.state == CLOSED
    with paused(postgresql_server) as pause:
        errors = []
        for _ in range(10):
            with pytest.raises(Exception) as info:
                app.get("/s/db")
            errors.append(type(info.value))
            # a request of another namespace is not slowed, nor failed
            assert app.get("/s/prefs").json["value"] == "kept"
        assert not pause.resumed  # the first request was cut, not let through by the guard
        # the pooled connection's statement was cut; every later request was refused
        assert errors == [sqlalchemy.exc.OperationalError] + [SQLCircuitOpen] * 9
        assert breaker.state == OPEN and breaker.opened == 1 and breaker.refused == 9
    with pytest.raises(SQLCircuitOpen):  # back, but not tried before the interval is over
        app.get("/s/db")
    breaker.clock = lambda: time.monotonic() + breaker.interval
    assert app.get("/s/db").json["value"] == "before"
    assert breaker.state == CLOSED and breaker.opened == 1
    app.post("/s/db", {"value": "after"})
    assert webtest.TestApp(wsgi).get("/s/db").json["value"] is None
    assert app.get("/s/db").json["value"] == "after"
    assert session_rows(url) == 1


@pytest.mark.postgresql
def test_a_hung_postgresql_costs_the_sql_revocation_store_one_timeout_per_interval(
    own_postgresql_server,
):
    postgresql_server = own_postgresql_server
    url = postgresql_server.url
    store = SQLRevocationStore(f"{url}?connect_timeout=2&statement_timeout_client=1", 600)
    store.revoke("alice", 1.0, 60)
    assert store.revoked_at("alice") == 1.0
    with paused(postgresql_server) as pause:
        # the checkout ping of the pooled connection was cut: the database is
        # hung, the breaker opens and refuses the new connection at once
        with pytest.raises((sqlalchemy.exc.OperationalError, SQLCircuitOpen)):
            store.revoked_at("alice")
        assert not pause.resumed
        assert store.breaker.opened == 1
        refused = store.breaker.refused
        for _ in range(10):
            with pytest.raises(SQLCircuitOpen):
                store.revoked_at("alice")
        assert store.breaker.refused == refused + 10
    store.breaker.clock = lambda: time.monotonic() + store.breaker.interval
    assert store.revoked_at("alice") == 1.0
    assert store.breaker.state == CLOSED and store.breaker.opened == 1
    assert len(store) == 1


@pytest.mark.postgresql
def test_a_statement_longer_than_the_client_timeout_is_cut_and_opens_the_breaker(
    own_postgresql_server,
):
    url = f"{own_postgresql_server.url}?statement_timeout_client=0.5"
    store = SQLRevocationStore(url, 600)
    store.revoke("alice", 1.0, 60)
    with (
        pytest.raises(sqlalchemy.exc.OperationalError) as info,
        store.engine.connect() as connection,
    ):
        connection.execute(sqlalchemy.text("select pg_sleep(30)"))
    assert info.value.connection_invalidated
    assert store.breaker.state == OPEN and store.breaker.opened == 1
    store.breaker.clock = lambda: time.monotonic() + store.breaker.interval
    assert store.revoked_at("alice") == 1.0
    assert store.breaker.state == CLOSED


@pytest.mark.postgresql
def test_a_statement_within_the_client_timeout_is_answered(own_postgresql_server):
    store = SQLRevocationStore(f"{own_postgresql_server.url}?statement_timeout_client=5", 600)
    with store.engine.connect() as connection:
        assert connection.execute(sqlalchemy.text("select pg_sleep(0.2), 1")).all()[0][1] == 1
    assert store.breaker.state == CLOSED and store.breaker.opened == 0


@pytest.mark.postgresql
def test_a_probe_of_a_still_hung_postgresql_costs_one_connect_timeout(own_postgresql_server):
    """A URL without ``connect_timeout``: the client timeout is its connect
    timeout too, so the probe of a database still hung fails and the breaker
    opens again, rather than the probe waiting for the server's return."""
    postgresql_server = own_postgresql_server
    store = SQLRevocationStore(f"{postgresql_server.url}?statement_timeout_client=1", 600)
    store.revoke("alice", 1.0, 60)
    with paused(postgresql_server) as pause:
        with pytest.raises((sqlalchemy.exc.OperationalError, SQLCircuitOpen)):
            store.revoked_at("alice")
        assert store.breaker.opened == 1
        store.breaker.clock = lambda: time.monotonic() + store.breaker.interval
        with pytest.raises(sqlalchemy.exc.OperationalError):
            store.revoked_at("alice")  # the probe
        assert not pause.resumed
        assert store.breaker.state == OPEN and store.breaker.opened == 2
    store.breaker.clock = lambda: time.monotonic() + 2 * store.breaker.interval
    assert store.revoked_at("alice") == 1.0
    assert store.breaker.state == CLOSED and len(store) == 1
