"""Real session libraries side by side: SignedCookie, NaCl, Redis, Beaker."""

import base64
import pickle
import sqlite3

import pytest
import webtest

from tests.support.apps import build_wsgi, set_cookie_names
from tests.support.backend_app import (
    COOKIE_NAMESPACES,
    NAMESPACES,
    add_steps_view,
    make_wsgi,
    orphans_after_steps,
    register_backends,
)
from tests.support.http_client import CookieClient, start_worker, stop
from tests.support.redis_server import free_port


@pytest.fixture
def app(redis_db, tmp_path):
    return webtest.TestApp(make_wsgi(redis_db, tmp_path))


@pytest.mark.parametrize("namespace", NAMESPACES)
def test_each_namespace_sets_only_its_own_cookie(app, namespace):
    response = app.post(f"/s/{namespace}", {"value": f"hello {namespace}"})
    assert set_cookie_names(response) == [namespace]
    assert app.get(f"/s/{namespace}").json["value"] == f"hello {namespace}"


def test_all_namespaces_round_trip_across_requests(app):
    for namespace in NAMESPACES:
        app.post(f"/s/{namespace}", {"value": f"v-{namespace}"})
    assert sorted(app.cookies) == sorted(NAMESPACES)
    for _ in range(2):
        for namespace in NAMESPACES:
            assert app.get(f"/s/{namespace}").json["value"] == f"v-{namespace}"
    fresh = webtest.TestApp(app.app)
    for namespace in NAMESPACES:
        assert fresh.get(f"/s/{namespace}").json["value"] is None


def test_redis_holds_the_data_and_the_cookie_only_an_id(app, redis_db):
    import redis

    app.post("/s/redis", {"value": "server side secret"})
    client = redis.StrictRedis.from_url(redis_db)
    keys = client.keys()
    assert len(keys) == 1
    assert b"server side secret" in client.get(keys[0])
    assert "secret" not in app.cookies["redis"]
    client.close()


def test_database_rows_really_land_in_the_table(app, tmp_path):
    app.post("/s/database", {"value": "in a row"})
    session_id = app.cookies["database"]
    rows = (
        sqlite3.connect(tmp_path / "sessions.sqlite")
        .execute("select namespace, data from beaker_sessions")
        .fetchall()
    )
    assert [row[0] for row in rows] == [session_id]
    # Beaker pickles {"session": base64(pickle(data))} into the row
    stored = pickle.loads(bytes(rows[0][1]))["session"]
    assert pickle.loads(base64.b64decode(stored))["value"] == "in a row"


def test_invalidate_reaches_every_backend(app):
    for namespace in NAMESPACES:
        app.post(f"/s/{namespace}", {"value": "x"})
    app.get("/invalidate")
    for namespace in NAMESPACES:
        assert app.get(f"/s/{namespace}").json["value"] is None


def test_two_workers_share_redis(redis_db, tmp_path):
    ports = [free_port(), free_port()]
    workers = [
        start_worker(
            "tests.support.backend_app", port, "--redis-url", redis_db, "--data-dir", str(tmp_path)
        )
        for port in ports
    ]
    try:
        client = CookieClient(ports[0])
        for namespace in ("redis", *COOKIE_NAMESPACES):
            status, _, _ = client.post(f"/s/{namespace}", {"value": f"via {ports[0]}"})
            assert status == 200
        for namespace in ("redis", *COOKIE_NAMESPACES):
            status, payload, _ = client.get(f"/s/{namespace}", port=ports[1])
            assert (status, payload["value"]) == (200, f"via {ports[0]}")
        client.post("/s/redis", {"value": "changed on the second"}, port=ports[1])
        assert client.get("/s/redis")[1]["value"] == "changed on the second"
    finally:
        for worker in workers:
            stop(worker)


def own_invalidate_view(request):
    request.session_multi[request.matchdict["ns"]].invalidate()
    return {}


@pytest.fixture
def beaker_app(redis_db, tmp_path):
    def setup(config):
        register_backends(config, redis_db, tmp_path)
        config.add_route("own", "/own-invalidate/{ns}")
        config.add_view(own_invalidate_view, route_name="own", renderer="json")
        add_steps_view(config)

    return webtest.TestApp(build_wsgi(setup))


def stored_beaker_sessions(namespace, data_dir):
    if namespace == "beaker":
        return len(list((data_dir / "beaker").rglob("*.cache")))
    with sqlite3.connect(data_dir / "sessions.sqlite") as db:
        if not db.execute("select 1 from sqlite_master where name = 'beaker_sessions'").fetchall():
            return 0  # Beaker makes the table when it first opens the store
        return db.execute("select count(*) from beaker_sessions").fetchone()[0]


@pytest.mark.parametrize("how", ["/invalidate", "/own-invalidate/{ns}"])
@pytest.mark.parametrize("namespace", ["beaker", "database"])
def test_beaker_logout_destroys_the_stored_session(beaker_app, tmp_path, namespace, how):
    beaker_app.post(f"/s/{namespace}", {"value": "logged in"})
    stolen = beaker_app.cookies[namespace]
    assert stored_beaker_sessions(namespace, tmp_path) == 1
    beaker_app.get(how.format(ns=namespace))
    assert stored_beaker_sessions(namespace, tmp_path) == 0
    replay = webtest.TestApp(beaker_app.app)
    replay.set_cookie(namespace, stolen)
    assert replay.get(f"/s/{namespace}").json["value"] is None


def test_redis_logout_replay_yields_an_empty_session(beaker_app, redis_db):
    import redis

    beaker_app.post("/s/redis", {"value": "logged in"})
    stolen = beaker_app.cookies["redis"]
    beaker_app.get("/invalidate")
    client = redis.StrictRedis.from_url(redis_db)
    assert client.keys() == []
    client.close()
    replay = webtest.TestApp(beaker_app.app)
    replay.set_cookie("redis", stolen)
    assert replay.get("/s/redis").json["value"] is None


def stored_sessions(namespace, redis_db, data_dir):
    """How many sessions the server-side store of ``namespace`` holds."""
    if namespace == "redis":
        import redis

        client = redis.StrictRedis.from_url(redis_db)
        try:
            return len(client.keys())
        finally:
            client.close()
    return stored_beaker_sessions(namespace, data_dir)


@pytest.mark.parametrize("namespace", NAMESPACES)
def test_rotate_gives_a_new_cookie_keeps_the_data_and_destroys_the_old_id(
    beaker_app, redis_db, tmp_path, namespace
):
    beaker_app.post(f"/s/{namespace}", {"value": "before login"})
    old = beaker_app.cookies[namespace]
    response = beaker_app.get("/rotate", {"after": "logged in"})
    assert response.json == {"failed": []}
    assert set_cookie_names(response) == [namespace]
    assert beaker_app.cookies[namespace] != old
    read = beaker_app.get(f"/s/{namespace}").json
    assert (read["value"], read["after"]) == ("before login", "logged in")
    replay = webtest.TestApp(beaker_app.app)
    replay.set_cookie(namespace, old)
    if namespace in COOKIE_NAMESPACES:
        # a client-side session cannot be revoked: the old value stays valid
        # (without the writes made after the rotation) until it times out
        assert replay.get(f"/s/{namespace}").json["value"] == "before login"
        return
    assert stored_sessions(namespace, redis_db, tmp_path) == 1, "the old id was left behind"
    assert replay.get(f"/s/{namespace}").json["value"] is None


@pytest.mark.parametrize("namespace", ["redis", "beaker", "database"])
def test_no_sequence_in_one_request_leaves_an_orphan(beaker_app, redis_db, tmp_path, namespace):
    """Write, rotate and invalidate in any order, repeated, in one request: the
    store ends holding only the session the client's cookie reaches with data
    (issue 20, item 9)."""
    orphans = orphans_after_steps(
        beaker_app.app, namespace, lambda: stored_sessions(namespace, redis_db, tmp_path)
    )
    assert orphans == [], "\n".join(map(str, orphans))
