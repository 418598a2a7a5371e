"""The circuit breaker of a store: one failure opens it, calls then fail at
once, one probe per interval tries the store again; on real redis-servers
killed, restarted and paused (SIGSTOP) under a running app."""

import logging
import re
import signal

import pyramid_beaker
import pytest
import redis
import sqlalchemy
import webtest
from pyramid.config import Configurator
from pyramid.exceptions import ConfigurationError
from pyramid_session_redis import RedisSessionFactory

from pyramid_session_multi.config import get_manager_config
from pyramid_session_multi.revocation import SQLRevocationStore
from pyramid_session_multi.revocation.redis import RedisRevocationStore
from pyramid_session_multi.settings import SettingsError
from pyramid_session_multi.stores.breaker import (
    CLOSED,
    HALF_OPEN,
    OPEN,
    Breakers,
    CircuitBreaker,
    CircuitOpen,
)
from pyramid_session_multi.stores.redis import (
    RedisCircuitOpen,
    breaker_of,
    redis_client_callable,
    topology_from_options,
)
from pyramid_session_multi.stores.sql import PLUGIN, SQLCircuitOpen, breaker_of_url
from tests.support.apps import build_wsgi
from tests.support.redis_server import redis_keys
from tests.support.redis_topologies import redis_namespace
from tests.support.toolbar import panel_html, text_of, toolbar_app


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Store:
    """A store that answers, goes away or replies with an error, and counts calls."""

    def __init__(self) -> None:
        self.calls = 0
        self.fails_with: Exception | None = None

    def __call__(self) -> str:
        self.calls += 1
        if self.fails_with is not None:
            raise self.fails_with
        return "answer"


def breaker_and_store(interval: float = 5) -> tuple[CircuitBreaker, Store, Clock]:
    clock = Clock()
    return CircuitBreaker("the test store", interval, clock=clock), Store(), clock


def test_a_connection_error_opens_the_breaker_and_calls_fail_without_reaching_the_store():
    breaker, store, clock = breaker_and_store()
    assert breaker.call(store) == "answer" and breaker.state == CLOSED
    store.fails_with = ConnectionError("refused")
    with pytest.raises(ConnectionError):
        breaker.call(store)
    assert breaker.state == OPEN and store.calls == 2
    for _ in range(10):
        with pytest.raises(CircuitOpen) as info:
            breaker.call(store)
        assert "the test store" in str(info.value)
    assert store.calls == 2 and breaker.refused == 10
    clock.now += 4.9
    with pytest.raises(CircuitOpen):
        breaker.call(store)
    assert store.calls == 2


def test_one_probe_per_interval_goes_through_and_its_success_closes_the_breaker():
    breaker, store, clock = breaker_and_store()
    store.fails_with = TimeoutError("timed out")
    with pytest.raises(TimeoutError):
        breaker.call(store)
    clock.now += 5
    assert breaker.state == HALF_OPEN
    with pytest.raises(TimeoutError):  # the probe fails: open for another interval
        breaker.call(store)
    assert store.calls == 2 and breaker.state == OPEN and breaker.opened == 2
    with pytest.raises(CircuitOpen):
        breaker.call(store)
    clock.now += 5
    store.fails_with = None
    assert breaker.call(store) == "answer"
    assert breaker.state == CLOSED and breaker.refused == 0
    assert [breaker.call(store) for _ in range(3)] == ["answer"] * 3


def test_while_a_probe_is_out_the_other_calls_still_fail_fast():
    breaker, store, clock = breaker_and_store()
    store.fails_with = ConnectionError("refused")
    with pytest.raises(ConnectionError):
        breaker.call(store)
    clock.now += 5
    assert breaker.before() is True  # the probe, not finished yet
    with pytest.raises(CircuitOpen):
        breaker.call(store)
    breaker.succeeded(probe=True)
    assert breaker.state == CLOSED


def test_an_error_reply_is_an_answer_and_leaves_the_breaker_closed():
    breaker, store, _ = breaker_and_store()
    store.fails_with = ValueError("a reply the caller did not like")
    for _ in range(3):
        with pytest.raises(ValueError):
            breaker.call(store)
    assert breaker.state == CLOSED and store.calls == 3


def test_the_breaker_logs_once_when_it_opens_and_once_when_it_closes(caplog):
    breaker, store, clock = breaker_and_store()
    caplog.set_level(logging.INFO, logger="pyramid_session_multi")
    store.fails_with = ConnectionError("refused")
    for _ in range(20):
        with pytest.raises(ConnectionError):
            breaker.call(store)
    clock.now += 5
    store.fails_with = None
    breaker.call(store)
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 2
    assert "the test store failed (ConnectionError: refused)" in messages[0]
    assert "answers again" in messages[1] and "19 calls were refused" in messages[1]


@pytest.mark.parametrize("interval", [0, -1, float("nan")])
def test_an_interval_that_is_not_positive_is_refused(interval):
    with pytest.raises(ValueError, match="interval must be positive"):
        CircuitBreaker("store", interval)


# -- settings and code ----------------------------------------------------------------


def test_the_interval_from_settings_and_code_and_off():
    assert topology_from_options({}).breaker_interval == 5
    assert topology_from_options({"redis_breaker_interval": "0.5"}).breaker_interval == 0.5
    assert topology_from_options({"redis_breaker_interval": "off"}).breaker_interval is None
    assert redis_client_callable("redis://h:1/0", breaker_interval=2).topology.breaker_interval == 2
    client = redis_client_callable("redis://h:1/0", breaker_interval="off")()
    assert getattr(client, "session_multi_breaker", None) is None


@pytest.mark.parametrize("value", ["0", "-1", "never", "", "none", "nan"])
def test_a_wrong_interval_is_refused_naming_the_key(value):
    settings = {
        "session_multi.namespaces": "ns",
        **redis_namespace("ns", redis_breaker_interval=value),
    }
    config = Configurator(settings=settings)
    with pytest.raises((ConfigurationError, SettingsError)) as info:
        config.include("pyramid_session_multi")
        config.commit()
    assert "session_multi.ns.redis_breaker_interval" in str(info.value)
    assert "or off" in str(info.value)


def test_a_wrong_interval_in_code_names_the_argument():
    with pytest.raises(ConfigurationError, match="breaker_interval"):
        redis_client_callable("redis://h:1/0", breaker_interval=0)


# -- on a real redis-server -----------------------------------------------------------


def app_and_breaker(server, clock, **options):
    """An app with namespace ``ns`` on ``server`` and a signed ``prefs``; the
    breaker of ``ns``'s client, on ``clock``, once a first request made it."""
    settings = {
        "session_multi.namespaces": "prefs ns",
        "session_multi.prefs.factory": "signed",
        "session_multi.prefs.secret": "prefs-secret-of-at-least-32-bytes!",
        "session_multi.prefs.cookie_name": "prefs",
        **redis_namespace("ns", redis_url=server.url, **options),
    }
    wsgi = build_wsgi(settings=settings)
    app = webtest.TestApp(wsgi)
    app.post("/s/ns", {"value": "before"})
    app.post("/s/prefs", {"value": "kept"})
    factory = get_manager_config(wsgi.registry).get("ns").factory
    breaker = breaker_of(factory)
    assert breaker is not None and breaker.state == CLOSED
    breaker.clock = clock
    return app, breaker


def opened_warnings(caplog):
    return [r for r in caplog.records if r.name.endswith(".breaker") and r.levelname == "WARNING"]


def test_a_paused_redis_costs_one_timeout_per_interval_and_other_namespaces_go_on(
    own_redis_server, caplog
):
    clock = Clock()
    app, breaker = app_and_breaker(own_redis_server, clock, redis_socket_timeout="0.3")
    caplog.set_level(logging.WARNING, logger="pyramid_session_multi")
    process = own_redis_server.process
    process.send_signal(signal.SIGSTOP)
    try:
        with pytest.raises(redis.exceptions.TimeoutError):
            app.get("/s/ns")  # the one request that waits
        for _ in range(20):
            with pytest.raises(RedisCircuitOpen) as info:
                app.get("/s/ns")
            assert any("namespace 'ns'" in note for note in info.value.__notes__)
            assert app.get("/s/prefs").json["value"] == "kept"
        assert breaker.state == OPEN and breaker.opened == 1 and breaker.refused == 20
        assert len(opened_warnings(caplog)) == 1
        clock.now += breaker.interval
        with pytest.raises(redis.exceptions.TimeoutError):
            app.get("/s/ns")  # the probe of the next interval, still paused
        assert breaker.opened == 2 and len(opened_warnings(caplog)) == 2
    finally:
        process.send_signal(signal.SIGCONT)
    clock.now += breaker.interval
    assert app.get("/s/ns").json["value"] == "before"
    assert breaker.state == CLOSED
    app.post("/s/ns", {"value": "after"})
    assert app.get("/s/ns").json["value"] == "after"
    assert len(redis_keys(own_redis_server.url)) == 1


def test_a_killed_redis_opens_the_breaker_and_a_restarted_one_closes_it_at_the_probe(
    own_redis_server,
):
    clock = Clock()
    app, breaker = app_and_breaker(own_redis_server, clock)
    own_redis_server.stop()
    with pytest.raises(redis.exceptions.ConnectionError) as first:
        app.get("/s/ns")
    assert not isinstance(first.value, CircuitOpen)
    for _ in range(5):
        with pytest.raises(RedisCircuitOpen):
            app.post("/s/ns", {"value": "during"})
    own_redis_server.start()
    # back, but the breaker waits for its interval before trying
    with pytest.raises(RedisCircuitOpen):
        app.get("/s/ns")
    clock.now += breaker.interval
    assert app.get("/s/ns").json["value"] == "before"
    assert breaker.state == CLOSED
    assert len(redis_keys(own_redis_server.url)) == 1


def test_without_a_breaker_every_request_reaches_the_store(own_redis_server):
    settings = {
        "session_multi.namespaces": "ns",
        **redis_namespace("ns", redis_url=own_redis_server.url, redis_breaker_interval="off"),
    }
    wsgi = build_wsgi(settings=settings)
    app = webtest.TestApp(wsgi)
    app.post("/s/ns", {"value": "before"})
    assert breaker_of(get_manager_config(wsgi.registry).get("ns").factory) is None
    own_redis_server.stop()
    for _ in range(3):
        with pytest.raises(redis.exceptions.ConnectionError) as info:
            app.get("/s/ns")
        assert not isinstance(info.value, CircuitOpen)
    own_redis_server.start()
    assert app.get("/s/ns").json["value"] == "before"


def test_the_redis_revocation_store_has_a_breaker_of_its_own(own_redis_server):
    clock = Clock()
    store = RedisRevocationStore.from_url(own_redis_server.url)
    breaker = store.client.session_multi_breaker
    breaker.clock = clock
    store.revoke("alice", 1.0, 60)
    own_redis_server.stop()
    with pytest.raises(redis.exceptions.ConnectionError):
        store.revoked_at("alice")
    with pytest.raises(RedisCircuitOpen):
        store.revoked_at("alice")
    own_redis_server.start()
    clock.now += breaker.interval
    assert store.revoked_at("alice") == 1.0


def test_the_panel_shows_the_state_of_a_namespaces_breaker(own_redis_server):
    clock = Clock()
    given = redis_client_callable(own_redis_server.url, socket_timeout=2)

    def setup(config):
        config.register_session_factory(
            "ns",
            RedisSessionFactory(
                secret="panel-secret-of-at-least-32-bytes!",
                cookie_name="ns",
                timeout=600,
                redis_client_callable=given,
            ),
        )

    app = toolbar_app(setup, "active")
    app.post("/s/ns", {"value": "before"})
    assert "circuit breaker: closed" in text_of(panel_html(app))
    given.breaker.clock = clock
    own_redis_server.stop()
    for _ in range(2):
        assert app.get("/s/ns", expect_errors=True).status_int == 500
    app.get("/plain")  # the panel of a request that does not need the store
    text = text_of(panel_html(app))
    assert "circuit breaker: open" in text
    # the active panel reads untouched namespaces too: refused at once as well
    assert re.search(r"next try in 5\.0 s; [1-9]\d* calls refused; ConnectionError", text)
    assert "password" not in text


# -- breakers by key; SQL databases ----------------------------------------------------


def test_breakers_by_key_make_one_per_key_and_keep_it():
    made = []

    def make(key):
        made.append(key)
        return CircuitBreaker(f"node {key}")

    breakers = Breakers(make)
    first = breakers.of("a:1")
    assert breakers.of("a:1") is first and breakers.of("b:2") is not first
    assert made == ["a:1", "b:2"]
    assert [breaker.store for breaker in breakers.all()] == ["node a:1", "node b:2"]


def database_settings(url, **more):
    return {
        "session_multi.namespaces": "db",
        "session_multi.db.factory": "beaker",
        "session_multi.db.type": "ext:database",
        "session_multi.db.url": url,
        "session_multi.db.cookie_name": "db",
        **{f"session_multi.db.{key}": value for key, value in more.items()},
    }


def test_a_database_namespace_from_settings_is_behind_the_breaker_of_its_url(tmp_path):
    url = f"sqlite:///{tmp_path / 'sessions.sqlite'}"
    app = webtest.TestApp(build_wsgi(settings=database_settings(url)))
    app.post("/s/db", {"value": "kept"})
    breaker = breaker_of_url(url)
    assert breaker is not None and breaker.state == CLOSED and breaker.interval == 5
    assert breaker.store == f"sqlite at {tmp_path / 'sessions.sqlite'}"
    assert app.get("/s/db").json["value"] == "kept"


def test_a_database_url_sets_the_interval_or_turns_the_breaker_off(tmp_path):
    timed = f"sqlite:///{tmp_path / 'timed.sqlite'}"
    app = webtest.TestApp(build_wsgi(settings=database_settings(f"{timed}?breaker_interval=2")))
    app.post("/s/db", {"value": "kept"})
    assert breaker_of_url(timed).interval == 2
    off = f"sqlite:///{tmp_path / 'off.sqlite'}"
    app = webtest.TestApp(build_wsgi(settings=database_settings(f"{off}?breaker_interval=off")))
    app.post("/s/db", {"value": "kept"})
    assert breaker_of_url(off) is None


@pytest.mark.parametrize("value", ["0", "never", "-1"])
def test_a_wrong_database_interval_is_refused_naming_the_key(tmp_path, value):
    url = f"sqlite:///{tmp_path / 's.sqlite'}?breaker_interval={value}"
    config = Configurator(settings=database_settings(url))
    with pytest.raises((ConfigurationError, SettingsError)) as info:
        config.include("pyramid_session_multi")
        config.commit()
    assert "session_multi.db.url" in str(info.value)
    assert "or off" in str(info.value)


def test_a_database_that_cannot_be_opened_opens_the_breaker_and_a_probe_closes_it(tmp_path):
    """SQLite in a directory not there yet: a connection fails, the breaker
    opens, connections are refused without trying; once the directory is
    there, the probe of the next interval connects and closes it."""
    clock = Clock()
    path = tmp_path / "later" / "sessions.sqlite"
    engine = sqlalchemy.create_engine(f"sqlite:///{path}?plugin={PLUGIN}")
    breaker = engine.session_multi_breaker
    breaker.clock = clock
    with pytest.raises(sqlalchemy.exc.OperationalError):
        engine.connect()
    assert breaker.state == OPEN and breaker.opened == 1
    for _ in range(3):
        with pytest.raises(SQLCircuitOpen):
            engine.connect()
    assert breaker.refused == 3
    path.parent.mkdir()
    with pytest.raises(SQLCircuitOpen):
        engine.connect()
    clock.now += breaker.interval
    with engine.connect() as connection:
        assert connection.execute(sqlalchemy.text("select 1")).scalar() == 1
    assert breaker.state == CLOSED
    engine.dispose()


def test_an_sql_error_that_is_not_a_disconnect_leaves_the_breaker_closed(tmp_path):
    store = SQLRevocationStore(f"sqlite:///{tmp_path / 'revocations.sqlite'}")
    with pytest.raises(sqlalchemy.exc.OperationalError), store.engine.connect() as connection:
        connection.execute(sqlalchemy.text("select * from no_such_table"))
    assert store.breaker.state == CLOSED and store.breaker.opened == 0
    assert (
        SQLRevocationStore(f"sqlite:///{tmp_path / 'r.sqlite'}", breaker_interval=None).breaker
        is None
    )


@pytest.mark.postgresql
def test_the_panel_shows_the_breakers_of_a_database_namespace_and_of_the_revocation_store(
    own_postgresql_server, tmp_path
):
    url = f"{own_postgresql_server.url}?connect_timeout=2"
    store = SQLRevocationStore(url)

    def setup(config):
        config.register_session_factory(
            "db",
            pyramid_beaker.BeakerSessionFactoryConfig(
                type="ext:database",
                url=f"{url}&plugin={PLUGIN}",
                table_name="panel_sessions",
                lock_dir=str(tmp_path / "lock"),
                key="db",
            ),
        )
        config.set_revocation_store(store)

    app = toolbar_app(setup, "active")
    app.post("/s/db", {"value": "before"})
    store.revoked_at("nobody")
    text = text_of(panel_html(app))
    assert "circuit breaker: closed" in text
    assert re.search(r"Revocation store circuit breaker: closed postgresql at 127\.0\.0\.1", text)
    own_postgresql_server.stop()
    assert "OperationalError" in app.get("/s/db", status=500).text
    # the same database: the revocation store shares the breaker Beaker's engine opened
    with pytest.raises(SQLCircuitOpen):
        store.revoked_at("nobody")
    app.get("/plain")
    text = text_of(panel_html(app))
    assert re.search(r"circuit breaker: open next try in \d+\.\d s; \d+ calls refused", text)
    assert re.search(r"Revocation store circuit breaker: open postgresql at 127\.0\.0\.1", text)


def test_the_revocations_url_sets_the_sql_breakers_interval_or_turns_it_off(tmp_path):
    def store(query, name="r.sqlite"):
        config = Configurator(
            settings={"session_multi.revocations": f"sqlite:///{tmp_path / name}{query}"}
        )
        config.include("pyramid_session_multi")
        config.commit()
        return get_manager_config(config.registry).revocations

    assert store("?breaker_interval=2").breaker.interval == 2
    # one breaker per database: the same URL shares the first one's
    assert store("").breaker is store("?breaker_interval=2").breaker
    assert store("", "other.sqlite").breaker.interval == 5
    assert store("?breaker_interval=off", "off.sqlite").breaker is None
    with pytest.raises((ConfigurationError, SettingsError)) as info:
        store("?breaker_interval=soon")
    assert "session_multi.revocations" in str(info.value) and "or off" in str(info.value)


@pytest.mark.parametrize("value", ["0", "never", "-1", "inf"])
def test_a_wrong_statement_timeout_is_refused_naming_the_key(tmp_path, value):
    url = f"sqlite:///{tmp_path / 's.sqlite'}?statement_timeout_client={value}"
    config = Configurator(settings=database_settings(url))
    with pytest.raises((ConfigurationError, SettingsError)) as info:
        config.include("pyramid_session_multi")
        config.commit()
    assert "session_multi.db.url" in str(info.value)
    assert "statement_timeout_client" in str(info.value) and "or off" in str(info.value)


def test_the_revocations_url_refuses_a_wrong_statement_timeout(tmp_path):
    url = f"sqlite:///{tmp_path / 'r.sqlite'}?statement_timeout_client=soon"
    with pytest.raises(ValueError, match=r"statement_timeout_client='soon'.*or off"):
        SQLRevocationStore(url)


def test_a_database_url_without_a_socket_works_under_the_statement_timeout(tmp_path):
    """SQLite has no socket to cut: its statements go on as before."""
    store = SQLRevocationStore(f"sqlite:///{tmp_path / 'r.sqlite'}?statement_timeout_client=1")
    store.revoke("alice", 1.0, 60)
    assert store.revoked_at("alice") == 1.0
    assert store.breaker is not None and store.breaker.opened == 0
