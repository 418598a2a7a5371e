"""pyramid's cookie sessions keep their lifetime stamps themselves.

Real signed-cookie and NaCl sessions; the cookies are read back with the
factory's own serializer to see what they carry.
"""

import pytest
import webtest
from pyramid.session import SignedCookieSessionFactory

from pyramid_session_multi import Fallback
from pyramid_session_multi.config import get_manager_config
from pyramid_session_multi.events import SessionExpired, SessionRejected
from pyramid_session_multi.libraries.base import closure_of
from pyramid_session_multi.libraries.pyramid_cookie import USER_KEY, read_user_record
from pyramid_session_multi.lifecycle import lifetime
from pyramid_session_multi.testing import MemoryRevocationStore
from tests.support.lifetime_apps import (
    build_lifetime_app,
    build_lifetime_wsgi,
    library_factory,
    set_cookie_headers,
)

OLD_SECRET = "the-old-secret-0123456789abcdef-0123456789"
NEW_SECRET = "the-new-secret-0123456789abcdef-0123456789"


def cookie_value(factory, cookie):
    """What the cookie of ``factory`` says: ``[issued, created, data]``."""
    serializer = closure_of(factory._set_cookie)["serializer"]
    return list(serializer.loads(cookie.encode()))


def one_namespace(factory, events=None, store=None, **options):
    def register(config):
        config.register_session_factory("signed", factory, **options)
        if store is not None:
            config.set_revocation_store(store)
        if events is not None:
            for kind in (SessionExpired, SessionRejected):
                config.add_subscriber(events.append, kind)

    return register


def test_the_cookie_carries_pyramids_own_times_and_only_the_user(tmp_path, clock):
    factory = library_factory("signed", "", tmp_path)
    app = build_lifetime_app(one_namespace(factory, idle_timeout=1800, absolute_timeout=28800))
    app.get("/w/signed", {"value": "x"})
    issued, created, data = cookie_value(factory, app.cookies["signed"])
    assert data == {"value": "x"}  # no record beside the data
    assert issued == int(clock.start) and created == clock.start
    clock.at(5.25)
    app.get("/login", {"userid": "alice", "ns": "signed"})
    issued, created, data = cookie_value(factory, app.cookies["signed"])
    # logged in when the session restarted: the userid alone
    assert data == {"value": "x", "user": "alice", USER_KEY: "alice"}
    assert created == clock.start + 5.25 and issued == int(clock.start + 5)
    # the application never sees it
    assert sorted(app.get("/keys/signed").json["keys"]) == ["user", "value"]
    clock.at(400)
    app.get("/rotate", {"ns": "signed"})  # a new creation time, the same login
    issued, created, data = cookie_value(factory, app.cookies["signed"])
    assert created == clock.start + 400
    assert data[USER_KEY] == ["alice", -394.75]


def test_a_stamped_cookie_is_no_longer_than_a_plain_one_until_a_user_is_recorded(tmp_path):
    plain = library_factory("signed", "", tmp_path)
    timed = library_factory("signed", "", tmp_path)
    apps = {
        "plain": build_lifetime_app(one_namespace(plain)),
        "timed": build_lifetime_app(one_namespace(timed, idle_timeout=600)),
    }
    sizes = {}
    for name, app in apps.items():
        app.get("/w/signed", {"value": "x"})
        sizes[name] = len(app.cookies["signed"])
    assert sizes["timed"] <= sizes["plain"]
    for app in apps.values():
        app.get("/login", {"userid": "alice", "ns": "signed"})  # writes "user" too
    # only the key and the userid itself, base64'd
    added = len(f', "{USER_KEY}": "alice"') * 4 / 3 + 2
    assert len(apps["timed"].cookies["signed"]) <= len(apps["plain"].cookies["signed"]) + added


@pytest.mark.parametrize(("idle", "whole"), [(60, True), (59, False), (None, True)])
def test_the_idle_clock_is_kept_to_the_second_from_a_minute(tmp_path, clock, idle, whole):
    factory = library_factory("signed", "", tmp_path)
    timeouts = {"idle_timeout": idle} if idle else {"absolute_timeout": 600}
    app = build_lifetime_app(one_namespace(factory, **timeouts))
    clock.at(1.5)
    app.get("/w/signed", {"value": "x"})
    issued = cookie_value(factory, app.cookies["signed"])[0]
    assert issued == (int(clock.now) if whole else clock.now)


def test_a_session_expired_under_an_old_secret_does_not_come_back_by_migrating(clock):
    def factory(secret):
        return SignedCookieSessionFactory(
            secret, cookie_name="signed", timeout=None, reissue_time=None
        )

    before = build_lifetime_app(one_namespace(factory(OLD_SECRET), idle_timeout=100))
    before.get("/w/signed", {"value": "old"})
    cookie = before.cookies["signed"]
    events = []
    after = build_lifetime_app(
        one_namespace(
            factory(NEW_SECRET),
            events,
            idle_timeout=100,
            fallbacks=[Fallback(factory(OLD_SECRET), cookie_name="signed")],
        )
    )
    clock.at(99)
    after.set_cookie("signed", cookie)
    assert after.get("/r/signed").json["value"] == "old"  # moved, and alive
    after.reset()
    clock.at(101)
    after.set_cookie("signed", cookie)  # the same old cookie, now idle too long
    response = after.get("/r/signed")
    assert response.json["value"] is None
    assert [event.reason for event in events] == ["idle"]


def test_a_revoked_user_does_not_come_back_by_migrating(clock):
    store = MemoryRevocationStore()

    def factory(secret):
        return SignedCookieSessionFactory(secret, cookie_name="signed", timeout=None)

    before = build_lifetime_app(one_namespace(factory(OLD_SECRET), store=store))
    before.get("/login", {"userid": "alice", "ns": "signed"})
    cookie = before.cookies["signed"]
    clock.at(10)
    store.revoke("alice", lifetime.issue_time(), None)
    events = []
    after = build_lifetime_app(
        one_namespace(
            factory(NEW_SECRET),
            events,
            store=store,
            fallbacks=[Fallback(factory(OLD_SECRET), cookie_name="signed")],
        )
    )
    after.set_cookie("signed", cookie)
    assert after.get("/r/signed").json["user"] is None
    assert [event.reason for event in events] == ["revoked"]


def test_a_quick_namespace_still_asks_the_store_for_a_recorded_user(clock):
    store = MemoryRevocationStore()
    factory = SignedCookieSessionFactory("s" * 40, cookie_name="signed", timeout=None)
    wsgi = build_lifetime_wsgi(one_namespace(factory, store=store, idle_timeout=600))
    laptop, phone = (webtest.TestApp(wsgi) for _ in range(2))
    laptop.get("/login", {"userid": "alice", "ns": "signed"})
    phone.get("/login", {"userid": "alice", "ns": "signed"})
    namespace_config = get_manager_config(wsgi.registry).get("signed")
    assert namespace_config.pipeline.quick is True
    clock.at(1)
    laptop.get("/revoke", {"userid": "alice", "keep": "1"})
    assert laptop.get("/r/signed").json["user"] == "alice"
    assert phone.get("/r/signed").json["user"] is None


def test_a_failure_while_the_session_judges_itself_names_the_namespace(tmp_path, monkeypatch):
    factory = library_factory("signed", "", tmp_path)
    wsgi = build_lifetime_wsgi(one_namespace(factory, idle_timeout=600))
    app = webtest.TestApp(wsgi)
    app.get("/w/signed", {"value": "x"})
    assert get_manager_config(wsgi.registry).get("signed").pipeline.quick is True

    def broken():
        raise OSError("no clock")

    monkeypatch.setattr(lifetime, "clock", broken)
    with pytest.raises(OSError) as raised:
        app.get("/r/signed")
    assert "raised by the session factory of namespace 'signed'" in str(raised.value.__notes__)


def test_a_read_inside_the_window_of_a_quick_namespace_sends_no_cookie(tmp_path, clock):
    factory = library_factory("nacl", "", tmp_path)
    app = build_lifetime_app(
        lambda config: config.register_session_factory("nacl", factory, idle_timeout=100)
    )
    app.get("/w/nacl", {"value": "x"})
    clock.at(9)
    assert set_cookie_headers(app.get("/r/nacl"), "nacl") == []
    clock.at(10)  # a tenth of the window: issued again, once
    assert len(set_cookie_headers(app.get("/r/nacl"), "nacl")) == 1
    assert set_cookie_headers(app.get("/r/nacl"), "nacl") == []
    clock.at(111)
    assert app.get("/r/nacl").json["value"] is None


@pytest.mark.parametrize(
    "record",
    [None, True, 1.5, ["alice"], ["alice", "1"], ["alice", True], [True, 0], {"a": 1}, [["a"], 0]],
)
def test_a_user_record_that_is_not_one_records_nobody(record):
    assert read_user_record(record, 1000.0) is None


@pytest.mark.parametrize(
    ("record", "expected"),
    [("alice", ("alice", 1000.0)), (7, (7, 1000.0)), (["a", -1.5], ("a", 998.5))],
)
def test_a_user_record_gives_the_userid_and_login(record, expected):
    assert read_user_record(record, 1000.0) == expected


def test_a_userid_of_a_subclass_is_recorded_as_plain_text_and_revoked(tmp_path, clock):
    # pyramid_nacl_session pickles: a str subclass would come back as itself
    class UserId(str):
        pass

    store = MemoryRevocationStore()

    def login_as_a_subclass(request):
        request.session_multi.rotate(userid=UserId("alice"))
        request.session_multi["nacl"]["value"] = "x"
        return {}

    def register(config):
        config.register_session_factory("nacl", library_factory("nacl", "", tmp_path))
        config.set_revocation_store(store)
        config.add_route("subclass", "/subclass")
        config.add_view(login_as_a_subclass, route_name="subclass", renderer="json")

    wsgi = build_lifetime_wsgi(register)
    laptop, phone = webtest.TestApp(wsgi), webtest.TestApp(wsgi)
    laptop.get("/subclass")
    phone.get("/subclass")
    clock.at(1)
    laptop.get("/revoke", {"userid": "alice"})
    assert phone.get("/r/nacl").json["value"] is None


@pytest.mark.parametrize("then", ["read", "rotate", "young"])
def test_a_session_too_old_does_not_come_back_from_a_redis_fallback(redis_db, clock, then):
    # Redis keeps no record of the add-on's: its own creation time judges it
    from pyramid_session_redis import RedisSessionFactory

    def redis_factory():
        return RedisSessionFactory(secret="redis-secret", cookie_name="old", redis_url=redis_db)

    before = build_lifetime_app(
        lambda config: config.register_session_factory("old", redis_factory())
    )
    before.get("/w/old", {"value": "old"})
    cookie = before.cookies["old"]
    events = []
    after = build_lifetime_app(
        one_namespace(
            SignedCookieSessionFactory("s" * 40, cookie_name="signed", timeout=None),
            events,
            absolute_timeout=3600,
            fallbacks=[redis_factory()],
        )
    )
    if then == "young":  # moved, and kept, with its clocks
        clock.at(100)
        after.set_cookie("old", cookie)
        assert after.get("/r/signed").json["value"] == "old"
        clock.at(3500)
        assert after.get("/r/signed").json["value"] == "old"
        assert events == []
    clock.at(4000)
    after.set_cookie("old", cookie)
    if then == "read":
        assert after.get("/r/signed").json["value"] is None
    else:
        after.get("/rotate", {"ns": "signed"})
    assert [event.reason for event in events] == ["absolute"]
    clock.at(4001)
    assert after.get("/r/signed").json["value"] is None


def test_a_stamped_cookie_session_cleared_by_the_application_is_sent_empty(clock):
    from tests.support.apps import build_wsgi

    def clear(request):
        request.session_multi["prefs"].clear()
        return {"cleared": True}

    def setup(config):
        config.register_session_factory(
            "prefs",
            SignedCookieSessionFactory("a-secret-of-the-prefs", cookie_name="prefs"),
            idle_timeout=600,
        )
        config.add_route("clear", "/clear")
        config.add_view(clear, route_name="clear", renderer="json")

    app = webtest.TestApp(build_wsgi(setup))
    app.post("/s/prefs", {"value": "dark"})
    written = app.cookies["prefs"]
    response = app.get("/clear")
    # the library's own cookie of an empty session: no stamps, no data
    (header,) = [v for n, v in response.headerlist if n == "Set-Cookie" and v.startswith("prefs=")]
    assert "Max-Age=0" not in header
    assert app.cookies["prefs"] != written
    assert app.get("/s/prefs").json["value"] is None


@pytest.mark.parametrize("record", [["alice", "soon"], True, ["alice", 1, 2], 1.5])
def test_a_user_record_that_cannot_be_read_records_no_user_and_asks_no_store(clock, record):
    # a cookie signed with the namespace's secret whose user record is not one
    # the add-on writes: the session reads with no user, nothing is revoked
    # or ended, and the revocation store is never asked about it
    asked = []

    class CountingStore(MemoryRevocationStore):
        def revocation_of(self, userid):
            asked.append(userid)
            return super().revocation_of(userid)

        def revoked_at(self, userid):
            asked.append(userid)
            return super().revoked_at(userid)

    events = []
    factory = SignedCookieSessionFactory("s" * 40, cookie_name="signed", timeout=None)
    app = build_lifetime_app(
        one_namespace(factory, events, store=CountingStore(), idle_timeout=600)
    )
    serializer = closure_of(factory._set_cookie)["serializer"]
    now = lifetime.issue_time()
    value = serializer.dumps([int(now), now, {"value": "x", USER_KEY: record}]).decode()
    app.set_cookie("signed", value)
    assert app.get("/r/signed").json == {"value": "x", "user": None}
    assert events == [] and asked == []
