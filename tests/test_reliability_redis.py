"""Redis stops under a running app, then comes back on the same port and data."""

import logging

import pytest
import redis
import webtest

from tests.support.backend_app import make_wsgi

OTHERS = ("signed", "nacl", "beaker", "database")


@pytest.fixture
def server(own_redis_server):
    return own_redis_server


def test_outage_is_contained_and_nothing_is_lost(server, tmp_path, caplog):
    app = webtest.TestApp(make_wsgi(server.url, tmp_path))
    for namespace in ("redis", *OTHERS):
        app.post(f"/s/{namespace}", {"value": f"before-{namespace}"})
    cookies_before = dict(app.cookies)

    server.stop()
    caplog.set_level(logging.ERROR, logger="pyramid_session_multi")
    expected = {namespace: f"before-{namespace}" for namespace in OTHERS}
    for _ in range(3):
        for namespace in OTHERS:
            response = app.get(f"/s/{namespace}")
            assert response.json["value"] == expected[namespace]
        app.post("/s/signed", {"value": "written during the outage"})
        expected["signed"] = "written during the outage"
        with pytest.raises(redis.exceptions.ConnectionError) as info:
            app.get("/s/redis")
        assert any("namespace 'redis'" in note for note in info.value.__notes__)
    assert app.cookies["redis"] == cookies_before["redis"]
    assert all(name in app.cookies for name in OTHERS)
    logged = [r.getMessage() for r in caplog.records if r.name.startswith("pyramid_session_multi")]
    assert logged and all("namespace 'redis'" in message for message in logged)

    server.start()  # same port, same data directory
    assert app.get("/s/redis").json["value"] == "before-redis"
    assert app.get("/s/signed").json["value"] == "written during the outage"
    app.post("/s/redis", {"value": "after"})
    assert app.get("/s/redis").json["value"] == "after"
