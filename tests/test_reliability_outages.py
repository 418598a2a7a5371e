"""Outages lose nothing and let nothing back in: a view that raises (with and
without an exception view), a revocation store down, a rotation whose new
session cannot be saved, a logout whose store is down; on real Redis
servers and Beaker files, counting keys and files after each path."""

import pytest
import redis
import webtest
from pyramid.response import Response

from pyramid_session_multi.revocation import (
    MemoryRevocationStore,
    RedisRevocationStore,
    RevocationStoreUnavailable,
    SQLRevocationStore,
)
from tests.support.lifetime_apps import build_lifetime_wsgi, library_factory
from tests.support.redis_server import RedisServer, redis_keys


class Boom(Exception):
    """The application's own error."""


def boom_view(request):
    """Write ``value`` into ``ns``, then fail."""
    request.session_multi[request.matchdict["ns"]]["value"] = "written before the error"
    raise Boom("the view failed")


def login_boom_view(request):
    """Rotate ``ns`` as ``userid``, then fail (a login that goes wrong)."""
    namespace = request.matchdict["ns"]
    request.session_multi.rotate(namespace, userid=request.params.get("userid"))
    raise Boom("the login failed")


def callback_boom_view(request):
    """Write ``value`` into ``ns``; a response callback of the application then fails."""
    request.session_multi[request.matchdict["ns"]]["value"] = "written before the error"

    def fail(request, response):
        raise Boom("the application's response callback failed")

    request.add_response_callback(fail)
    return {"written": True}


def logout_signed_loaded_view(request):
    """Load ``signed`` first, then log out; the namespaces that could not be destroyed."""
    request.session_multi["signed"].get("value")
    return sorted(request.session_multi.invalidate())


def app(redis_url, directory, namespaces, store=None, exception_view=False, hook=None):
    def register(config):
        for name in namespaces:
            config.register_session_factory(name, library_factory(name, redis_url, directory))
        if store is not None:
            config.set_revocation_store(store)
        config.add_route("boom", "/boom/{ns}")
        config.add_view(boom_view, route_name="boom", renderer="json")
        config.add_route("callback_boom", "/callback-boom/{ns}")
        config.add_view(callback_boom_view, route_name="callback_boom", renderer="json")
        config.add_route("login_boom", "/login-boom/{ns}")
        config.add_view(login_boom_view, route_name="login_boom", renderer="json")
        config.add_route("logout_report", "/logout-report")
        config.add_view(
            lambda request: sorted(request.session_multi.invalidate()),
            route_name="logout_report",
            renderer="json",
        )
        config.add_route("logout_report_signed_loaded", "/logout-report-signed-loaded")
        config.add_view(
            logout_signed_loaded_view, route_name="logout_report_signed_loaded", renderer="json"
        )
        if hook is not None:
            config.add_route("hooked", "/hooked/{ns}")
            config.add_view(hook, route_name="hooked", renderer="json")
        if exception_view:
            config.add_view(lambda exc, request: Response("sorry", status=500), context=Boom)

    return build_lifetime_wsgi(register)


def request(client, path, **params):
    """GET ``path``; the application's error is the test's only when there is
    no exception view."""
    try:
        return client.get(path, params, expect_errors=True)
    except Boom:
        return None


def user_of(client, namespace):
    return client.get(f"/r/{namespace}").json["user"]


@pytest.fixture
def revocation_server(tmp_path):
    server = RedisServer(tmp_path / "revocations")
    (tmp_path / "revocations").mkdir()
    server.start()
    yield server
    server.stop()


def store_on(server):
    store = RedisRevocationStore.from_url(server.url)
    clock = [0.0]
    store.client.session_multi_breaker.clock = lambda: clock[0]
    return store, clock


# -- 1. an application error never un-records a login ---------------------------------------


@pytest.mark.parametrize("exception_view", [False, True])
@pytest.mark.parametrize("namespace", ["redis", "beaker", "signed"])
def test_a_view_error_keeps_the_login_so_a_revocation_still_ends_the_session(
    redis_db, tmp_path, revocation_server, namespace, exception_view
):
    store, _ = store_on(revocation_server)
    wsgi = app(redis_db, tmp_path, [namespace], store, exception_view)
    laptop, admin = webtest.TestApp(wsgi), webtest.TestApp(wsgi)
    laptop.get("/login", {"userid": "alice", "ns": namespace})
    assert user_of(laptop, namespace) == "alice"
    request(laptop, f"/boom/{namespace}")
    admin.get("/revoke", {"userid": "alice"})
    assert user_of(laptop, namespace) is None


@pytest.mark.parametrize("namespace", ["redis", "beaker", "signed"])
def test_a_response_callback_error_keeps_the_login_so_a_revocation_still_ends_the_session(
    redis_db, tmp_path, revocation_server, namespace
):
    store, _ = store_on(revocation_server)
    wsgi = app(redis_db, tmp_path, [namespace], store)
    laptop, admin = webtest.TestApp(wsgi), webtest.TestApp(wsgi)
    laptop.get("/login", {"userid": "alice", "ns": namespace})
    assert user_of(laptop, namespace) == "alice"
    with pytest.raises(Boom):
        laptop.get(f"/callback-boom/{namespace}")
    assert user_of(laptop, namespace) == "alice"
    admin.get("/revoke", {"userid": "alice"})
    assert user_of(laptop, namespace) is None


def test_a_request_the_revocation_store_failed_keeps_the_login(
    redis_db, tmp_path, revocation_server
):
    store, clock = store_on(revocation_server)
    wsgi = app(redis_db, tmp_path, ["redis"], store)
    laptop, admin = webtest.TestApp(wsgi), webtest.TestApp(wsgi)
    laptop.get("/login", {"userid": "alice", "ns": "redis"})
    revocation_server.stop()
    with pytest.raises(RevocationStoreUnavailable):
        laptop.get("/w/redis", {"value": "during the outage"})
    revocation_server.start()
    clock[0] += 60  # past the breaker's interval
    admin.get("/revoke", {"userid": "alice"})
    assert user_of(laptop, "redis") is None
    assert len(redis_keys(redis_db)) == 0  # the revoked session's key went with it


# -- 2. rotate() is all or nothing --------------------------------------------------------


@pytest.mark.parametrize("exception_view", [False, True])
@pytest.mark.parametrize("namespace", ["beaker", "redis"])
def test_a_login_that_fails_after_rotate_keeps_the_cart(
    redis_db, tmp_path, namespace, exception_view
):
    wsgi = app(redis_db, tmp_path, [namespace], exception_view=exception_view)
    shopper = webtest.TestApp(wsgi)
    shopper.get(f"/w/{namespace}", {"value": "three books"})
    request(shopper, f"/login-boom/{namespace}", userid="alice")
    assert shopper.get(f"/r/{namespace}").json["value"] == "three books"
    if namespace == "beaker":
        assert len(list((tmp_path / "beaker").rglob("*.cache"))) == 1
    else:
        assert len(redis_keys(redis_db)) == 1


def test_a_rotation_whose_new_session_cannot_be_saved_keeps_the_old_one(redis_db, tmp_path):
    data = tmp_path / "beaker"
    kept = tmp_path / "beaker-away"

    def rotate_then_store_goes(request):
        request.session_multi.rotate("beaker", userid="alice")
        data.rename(kept)
        data.write_text("the store is gone")
        return {}

    wsgi = app(redis_db, tmp_path, ["beaker"], hook=rotate_then_store_goes)
    shopper = webtest.TestApp(wsgi)
    shopper.get("/w/beaker", {"value": "three books"})
    old_cookie = shopper.cookies["beaker"]
    shopper.get("/hooked/beaker")
    data.unlink()
    kept.rename(data)  # the store is back
    assert shopper.cookies.get("beaker") == old_cookie
    assert shopper.get("/r/beaker").json["value"] == "three books"
    assert len(list(data.rglob("*.cache"))) == 1


def test_a_rotation_whose_store_dies_before_saving_leaves_no_key_that_never_expires(
    tmp_path, own_redis_server
):
    def rotate_then_store_dies(request):
        request.session_multi.rotate("redis", userid="alice")
        own_redis_server.stop()
        return {}

    def register(config):
        config.register_session_factory(
            "redis", library_factory("redis", own_redis_server.url, tmp_path), idle_timeout=600
        )
        config.add_route("hooked", "/hooked")
        config.add_view(rotate_then_store_dies, route_name="hooked", renderer="json")

    shopper = webtest.TestApp(build_lifetime_wsgi(register))
    shopper.get("/w/redis", {"value": "three books"})
    old_cookie = shopper.cookies["redis"]
    shopper.get("/hooked", expect_errors=True)
    own_redis_server.start()
    assert shopper.cookies["redis"] == old_cookie
    assert shopper.get("/r/redis").json["value"] == "three books"
    client = redis.StrictRedis.from_url(own_redis_server.url)
    try:
        # a session nobody uses again leaves Redis by itself: every key expires
        ttls = {key: client.ttl(key) for key in client.keys("*")}
    finally:
        client.close()
    assert ttls and all(0 < ttl <= 600 for ttl in ttls.values()), ttls


# -- 3. a logout whose store is down ------------------------------------------------------


def test_a_logout_during_an_outage_is_recorded_so_an_old_cookie_is_refused(
    tmp_path, revocation_server, own_redis_server
):
    store, _ = store_on(revocation_server)
    sessions = own_redis_server
    wsgi = app(sessions.url, tmp_path, ["redis", "signed"], store)
    laptop = webtest.TestApp(wsgi)
    laptop.get("/login", {"userid": "alice", "ns": "redis,signed"})
    copy = dict(laptop.cookies)
    sessions.stop()
    failed = laptop.get("/logout-report").json
    assert failed == ["redis"]
    assert "redis" not in laptop.cookies and "signed" not in laptop.cookies
    sessions.start()
    thief = webtest.TestApp(wsgi)
    for name, value in copy.items():
        thief.set_cookie(name, value)
    assert user_of(thief, "redis") is None
    assert user_of(thief, "signed") is None
    assert redis_keys(sessions.url) == []


def revocation_store_of(kind, revocation_server, directory):
    if kind == "redis":
        return store_on(revocation_server)[0]
    if kind == "sql":
        return SQLRevocationStore(f"sqlite:///{directory / 'revocations.sqlite'}")
    return MemoryRevocationStore()


@pytest.mark.parametrize("store_kind", ["redis", "sql", "memory"])
@pytest.mark.parametrize("logout", ["/logout-report", "/logout-report-signed-loaded"])
def test_a_logout_during_an_outage_refuses_every_namespace_one_login_rotated(
    tmp_path, revocation_server, own_redis_server, store_kind, logout
):
    # every namespace rotated by one rotate(userid=...), in registration order:
    # whichever namespace's login the logout finds, its record ends all of them
    store = revocation_store_of(store_kind, revocation_server, tmp_path)
    sessions = own_redis_server
    wsgi = app(sessions.url, tmp_path, ["signed", "redis"], store)
    laptop = webtest.TestApp(wsgi)
    laptop.get("/w/signed", {"value": "prefs"})
    laptop.get("/w/redis", {"value": "cart"})
    laptop.get("/login", {"userid": "alice"})
    copy = dict(laptop.cookies)
    sessions.stop()
    assert laptop.get(logout).json == ["redis"]
    sessions.start()
    thief = webtest.TestApp(wsgi)
    for name, value in copy.items():
        thief.set_cookie(name, value)
    assert user_of(thief, "redis") is None
    assert user_of(thief, "signed") is None
    # the refused session's key went with it
    assert redis_keys(sessions.url) == []


def test_a_logout_during_an_outage_without_a_revocation_store_reports_the_namespace(
    tmp_path, own_redis_server
):
    wsgi = app(own_redis_server.url, tmp_path, ["redis", "signed"])
    laptop = webtest.TestApp(wsgi)
    laptop.get("/w/redis", {"value": "x"})
    laptop.get("/w/signed", {"value": "y"})
    own_redis_server.stop()
    assert laptop.get("/logout-report").json == ["redis"]
    assert "redis" not in laptop.cookies and "signed" not in laptop.cookies


def test_a_logouts_recorded_end_leaves_a_later_login_elsewhere(
    tmp_path, revocation_server, own_redis_server
):
    store, _ = store_on(revocation_server)
    wsgi = app(own_redis_server.url, tmp_path, ["redis", "signed"], store)
    laptop, phone = webtest.TestApp(wsgi), webtest.TestApp(wsgi)
    laptop.get("/login", {"userid": "alice", "ns": "redis,signed"})
    phone.get("/login", {"userid": "alice", "ns": "redis,signed"})
    own_redis_server.stop()
    assert laptop.get("/logout-report").json == ["redis"]
    own_redis_server.start()
    assert user_of(phone, "redis") == "alice" and user_of(phone, "signed") == "alice"


def test_a_logout_whose_revocation_store_is_down_too_reports_it(
    tmp_path, revocation_server, own_redis_server, caplog
):
    store, _ = store_on(revocation_server)
    wsgi = app(own_redis_server.url, tmp_path, ["redis", "signed"], store)
    laptop = webtest.TestApp(wsgi)
    laptop.get("/login", {"userid": "alice", "ns": "redis,signed"})
    own_redis_server.stop()
    revocation_server.stop()
    assert laptop.get("/logout-report").json == ["redis"]
    # the revocation store down, no session of the user could be read: nothing recorded
    assert "could not be destroyed" in caplog.text
    assert "redis" not in laptop.cookies and "signed" not in laptop.cookies
