"""Beaker's ext:database on a real PostgreSQL: round trip, concurrency, outage,
logout, and two processes sharing PostgreSQL and Redis."""

import logging
import threading
import time

import pytest
import sqlalchemy
import webtest

from tests.support.apps import set_cookie_names
from tests.support.backend_app import make_wsgi, orphans_after_steps
from tests.support.http_client import CookieClient, start_worker, stop
from tests.support.redis_server import free_port

pytestmark = pytest.mark.postgresql

CLIENTS = 16
TIME_LIMIT = 120  # seconds: a hang guard, never a speed check


def rows(url, table="beaker_sessions"):
    """The table's rows; none before Beaker created it (its first use in the process)."""
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as connection:
            if not sqlalchemy.inspect(connection).has_table(table):
                return []
            return connection.execute(sqlalchemy.text(f"select namespace from {table}")).fetchall()
    finally:
        engine.dispose()


@pytest.fixture
def app(redis_db, tmp_path, postgresql_url):
    return webtest.TestApp(make_wsgi(redis_db, tmp_path, postgresql_url))


def test_round_trip_lands_in_a_postgresql_row(app, postgresql_url):
    response = app.post("/s/database", {"value": "in postgres"})
    assert set_cookie_names(response) == ["database"]
    assert app.get("/s/database").json["value"] == "in postgres"
    assert [row[0] for row in rows(postgresql_url)] == [app.cookies["database"]]


def test_logout_leaves_no_row_and_a_replay_is_empty(app, postgresql_url):
    app.post("/s/database", {"value": "logged in"})
    stolen = app.cookies["database"]
    app.get("/invalidate")
    assert rows(postgresql_url) == []
    replay = webtest.TestApp(app.app)
    replay.set_cookie("database", stolen)
    assert replay.get("/s/database").json["value"] is None


def test_no_sequence_in_one_request_leaves_a_row(app, postgresql_url):
    """Write, rotate and invalidate in any order, repeated, in one request: no
    row is left that no cookie reaches with data (issue 20, item 9)."""
    orphans = orphans_after_steps(app.app, "database", lambda: len(rows(postgresql_url)))
    assert orphans == [], "\n".join(map(str, orphans))


def test_sixteen_concurrent_clients_see_only_their_own(redis_db, tmp_path, postgresql_url):
    port = free_port()
    worker = start_worker(
        "tests.support.backend_app", port, "--redis-url", redis_db, "--data-dir",
        str(tmp_path), "--threads", "8", "--database-url", postgresql_url,
    )  # fmt: skip
    errors, crosstalk = [], []
    deadline = time.monotonic() + TIME_LIMIT

    def client(index):
        http = CookieClient(port, timeout=30)
        for step in range(25):
            if time.monotonic() > deadline:
                errors.append((index, "time limit"))
                return
            identity = f"client-{index}-step-{step}"
            try:
                status, _, _ = http.post("/multi?ns=database,signed", {"value": identity})
                read_status, values, _ = http.get("/multi?ns=database,signed")
            except Exception as exc:
                errors.append((index, repr(exc)))
                continue
            if (status, read_status) != (200, 200):
                errors.append((index, status, read_status))
            elif set(values.values()) != {identity}:
                crosstalk.append((identity, values))

    try:
        threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(TIME_LIMIT + 30)
    finally:
        stop(worker)
    assert errors == [] and crosstalk == []
    assert len(rows(postgresql_url)) == CLIENTS


def test_outage_fails_only_the_sql_namespace_and_loses_nothing(
    redis_db, tmp_path, own_postgresql_server, caplog
):
    postgresql_server = own_postgresql_server
    app = webtest.TestApp(make_wsgi(redis_db, tmp_path, postgresql_server.url))
    for namespace in ("database", "signed", "redis"):
        app.post(f"/s/{namespace}", {"value": f"before-{namespace}"})
    postgresql_server.stop()
    try:
        caplog.set_level(logging.ERROR, logger="pyramid_session_multi")
        for namespace in ("signed", "redis"):
            assert app.get(f"/s/{namespace}").json["value"] == f"before-{namespace}"
        app.post("/s/signed", {"value": "during the outage"})
        with pytest.raises(sqlalchemy.exc.OperationalError) as info:
            app.get("/s/database")
        assert any("namespace 'database'" in note for note in info.value.__notes__)
        assert "namespace 'database'" in caplog.text
    finally:
        postgresql_server.start()
    assert app.get("/s/database").json["value"] == "before-database"
    assert app.get("/s/signed").json["value"] == "during the outage"


def test_two_processes_share_postgresql_and_redis(redis_db, tmp_path, postgresql_url):
    ports = [free_port(), free_port()]
    workers = [
        start_worker(
            "tests.support.backend_app",
            port,
            "--redis-url",
            redis_db,
            "--data-dir",
            str(tmp_path / str(port)),
            "--database-url",
            postgresql_url,
        )
        for port in ports
    ]
    try:
        client = CookieClient(ports[0])
        for namespace in ("database", "redis"):
            assert client.post(f"/s/{namespace}", {"value": "via the first"})[0] == 200
            status, payload, _ = client.get(f"/s/{namespace}", port=ports[1])
            assert (status, payload["value"]) == (200, "via the first")
        client.post("/s/database", {"value": "changed on the second"}, port=ports[1])
        assert client.get("/s/database")[1]["value"] == "changed on the second"
        assert client.get("/invalidate", port=ports[1])[0] == 200
        for namespace in ("database", "redis"):
            assert client.get(f"/s/{namespace}")[1]["value"] is None
        assert rows(postgresql_url) == []
    finally:
        for worker in workers:
            stop(worker)
