"""The end of a request: failures contained per namespace, events after the work is done.

Real libraries and a real redis-server; the store is stopped in the middle of
a request where the issue says a store goes away.
"""

import functools
import logging
import re
import types

import pytest
import redis
import webtest
from pyramid.exceptions import ConfigurationError
from pyramid.httpexceptions import HTTPForbidden
from pyramid.response import Response
from pyramid.session import SignedCookieSessionFactory
from pyramid_session_redis import RedisSessionFactory
from webob.cookies import CookieProfile

from pyramid_session_multi.budget import CookieTooLarge
from pyramid_session_multi.events import (
    SessionInvalidated,
    SessionLoaded,
    SessionRejected,
    SessionRotated,
)
from pyramid_session_multi.libraries import SessionLibrary
from pyramid_session_multi.lifecycle.lifetime import LIFETIME_KEY
from tests.support.apps import build_wsgi, set_cookie_names, signed_factory
from tests.support.lifetime_apps import build_lifetime_app, library_factory
from tests.support.redis_server import redis_keys as keys


@pytest.fixture
def server(own_redis_server):
    return own_redis_server


def redis_factory(url, cookie_name="cart"):
    return RedisSessionFactory(
        secret="a-secret-long-enough-for-the-signer",
        cookie_name=cookie_name,
        redis_url=url,
        timeout=600,
    )


def cookie_headers(response, name):
    return [v for k, v in response.headerlist if k == "Set-Cookie" and v.startswith(name + "=")]


def two_stores_app(server, setup_more=None):
    """``cart`` on Redis, ``prefs`` a signed cookie; views that lose Redis midway."""

    def write_after_outage(request):
        cart = request.session_multi["cart"]
        cart.get("value")  # loaded while the store was up
        server.stop()
        cart["value"] = "written after the store died"
        request.session_multi["prefs"]["value"] = "prefs written too"
        return {}

    def logout_after_outage(request):
        request.session_multi["cart"].get("value")
        request.session_multi["prefs"].get("value")
        server.stop()
        failures = request.session_multi.invalidate()
        return {"failed": sorted(failures)}

    def setup(config):
        config.register_session_factory("cart", redis_factory(server.url))
        config.register_session_factory("prefs", signed_factory("prefs"))
        config.add_route("write_after_outage", "/write-after-outage")
        config.add_view(write_after_outage, route_name="write_after_outage", renderer="json")
        config.add_route("logout_after_outage", "/logout-after-outage")
        config.add_view(logout_after_outage, route_name="logout_after_outage", renderer="json")
        if setup_more is not None:
            setup_more(config)

    return webtest.TestApp(build_wsgi(setup))


def test_a_store_lost_after_loading_fails_its_namespace_alone(server, caplog):
    app = two_stores_app(server)
    app.post("/s/cart", {"value": "in the cart"})
    cart_cookie = app.cookies["cart"]
    caplog.set_level(logging.ERROR, logger="pyramid_session_multi")

    response = app.get("/write-after-outage")

    assert response.status_int == 200
    # the other namespace's cookie goes out; the failed one's is left as it was
    assert set_cookie_names(response) == ["prefs"]
    assert app.cookies["cart"] == cart_cookie
    messages = [r.getMessage() for r in caplog.records]
    assert any("namespace 'cart'" in m and "could not be saved" in m for m in messages)
    server.start()
    assert app.get("/s/cart").json["value"] == "in the cart"  # nothing was deleted
    assert app.get("/s/prefs").json["value"] == "prefs written too"


def test_a_new_session_on_a_lost_store_sends_no_cookie(server, caplog):
    def write_new(request):
        server.stop()
        request.session_multi["cart"]["value"] = "never stored"
        request.session_multi["prefs"]["value"] = "kept"
        return {}

    def setup(config):
        config.add_route("write_new", "/write-new")
        config.add_view(write_new, route_name="write_new", renderer="json")

    app = two_stores_app(server, setup)
    caplog.set_level(logging.ERROR, logger="pyramid_session_multi")
    response = app.get("/write-new")
    assert response.status_int == 200
    assert set_cookie_names(response) == ["prefs"]
    assert "namespace 'cart'" in caplog.text


def test_a_logout_on_a_lost_store_still_logs_out_everywhere(server):
    app = two_stores_app(server)
    app.post("/s/cart", {"value": "in the cart"})
    app.post("/s/prefs", {"value": "dark"})

    response = app.get("/logout-after-outage")

    assert response.json == {"failed": ["cart"]}
    for name in ("cart", "prefs"):
        (header,) = cookie_headers(response, name)
        assert "Max-Age=0" in header
    assert "cart" not in app.cookies and "prefs" not in app.cookies


def raising(record):
    def subscriber(event):
        record.append((type(event).__name__, event.namespace))
        raise RuntimeError(f"subscriber failed on {event.namespace}")

    return subscriber


def subscribed_app(redis_url, event_class, record, view):
    def setup(config):
        config.register_session_factory("cart", redis_factory(redis_url))
        config.register_session_factory("prefs", signed_factory("prefs"))
        config.add_subscriber(raising(record), event_class)
        config.add_route("act", "/act")
        config.add_view(view, route_name="act", renderer="json")

    return webtest.TestApp(build_wsgi(setup))


def rotate_raising(request):
    try:
        failures = request.session_multi.rotate(raise_errors=True)
    except RuntimeError as exc:
        return {"raised": str(exc), "notes": exc.__notes__}
    return {"raised": None, "failed": sorted(failures)}


def test_a_raising_rotated_subscriber_cannot_half_do_a_rotation(redis_db, caplog):
    record = []
    app = subscribed_app(redis_db, SessionRotated, record, rotate_raising)
    app.post("/s/cart", {"value": "in the cart"})
    app.post("/s/prefs", {"value": "dark"})
    before = dict(app.cookies)
    (old_key,) = keys(redis_db)
    caplog.set_level(logging.ERROR, logger="pyramid_session_multi")

    response = app.get("/act")

    # every namespace was rotated, and every subscriber heard of it
    assert sorted(record) == [("SessionRotated", "cart"), ("SessionRotated", "prefs")]
    assert set_cookie_names(response) == ["cart", "prefs"]
    assert app.cookies["cart"] != before["cart"] and app.cookies["prefs"] != before["prefs"]
    assert keys(redis_db) != [old_key] and len(keys(redis_db)) == 1
    assert app.get("/s/cart").json["value"] == "in the cart"
    assert app.get("/s/prefs").json["value"] == "dark"
    # the error surfaced after the work, naming the subscriber and the namespace
    assert response.json["raised"] == "subscriber failed on cart"
    assert any("raising.<locals>.subscriber" in note for note in response.json["notes"])
    assert any("namespace 'cart'" in note for note in response.json["notes"])
    logged = [r.getMessage() for r in caplog.records]
    assert any("namespace 'prefs'" in m and "subscriber" in m for m in logged)


def test_without_raise_errors_a_subscriber_error_is_only_logged(redis_db, caplog):
    record = []

    def rotate(request):
        return {"failed": sorted(request.session_multi.rotate())}

    app = subscribed_app(redis_db, SessionRotated, record, rotate)
    app.post("/s/cart", {"value": "in the cart"})
    caplog.set_level(logging.ERROR, logger="pyramid_session_multi")
    assert app.get("/act").json == {"failed": []}
    assert record == [("SessionRotated", "cart")]
    assert "subscriber failed on cart" in caplog.text


def test_a_raising_invalidated_subscriber_cannot_stop_a_logout(redis_db, caplog):
    record = []

    def logout(request):
        return {"failed": sorted(request.session_multi.invalidate())}

    app = subscribed_app(redis_db, SessionInvalidated, record, logout)
    app.post("/s/cart", {"value": "in the cart"})
    app.post("/s/prefs", {"value": "dark"})
    caplog.set_level(logging.ERROR, logger="pyramid_session_multi")
    response = app.get("/act")
    assert sorted(record) == [("SessionInvalidated", "cart"), ("SessionInvalidated", "prefs")]
    # the logout itself did not fail: the subscriber did, and is named for it
    assert response.json["failed"] == []
    assert "could not be invalidated" not in caplog.text
    assert "raising.<locals>.subscriber" in caplog.text
    assert keys(redis_db) == []
    assert all("Max-Age=0" in v for k, v in response.headerlist if k == "Set-Cookie")
    assert "cart" not in app.cookies and "prefs" not in app.cookies


def test_a_raising_loaded_subscriber_does_not_break_the_request(redis_db, caplog):
    record = []

    def read(request):
        return {"value": request.session_multi["cart"].get("value")}

    app = subscribed_app(redis_db, SessionLoaded, record, read)
    app.post("/s/cart", {"value": "in the cart"})
    caplog.set_level(logging.ERROR, logger="pyramid_session_multi")
    assert app.get("/act").json == {"value": "in the cart"}
    assert "subscriber failed on cart" in caplog.text


def test_oversize_drop_after_a_logout_leaves_no_old_cookie():
    def logout_then_write_big(request):
        request.session_multi.invalidate()
        request.session_multi["prefs"]["value"] = "x" * 2000
        return {}

    def setup(config):
        config.register_session_factory("prefs", signed_factory("prefs"))
        config.add_route("big", "/big")
        config.add_view(logout_then_write_big, route_name="big", renderer="json")

    settings = {"session_multi.cookie_limit": "1000", "session_multi.oversize": "drop"}
    app = webtest.TestApp(build_wsgi(setup, settings=settings))
    app.post("/s/prefs", {"value": "before the logout"})
    response = app.get("/big")
    (header,) = cookie_headers(response, "prefs")
    assert "Max-Age=0" in header
    assert "prefs" not in app.cookies
    assert app.get("/s/prefs").json["value"] is None


def test_a_real_rejection_deletes_the_cookie_it_rejected():
    rejected = []

    def setup(config):
        config.register_session_factory(
            "prefs",
            signed_factory("prefs"),
            validator=lambda request, session: session.get("value") != "forbidden",
        )
        config.add_subscriber(rejected.append, SessionRejected)

    app = webtest.TestApp(build_wsgi(setup))
    app.post("/s/prefs", {"value": "forbidden"})
    response = app.get("/s/prefs")
    assert response.json["value"] is None
    (header,) = cookie_headers(response, "prefs")
    assert "Max-Age=0" in header  # deleted, not re-issued empty
    assert [event.reason for event in rejected] == ["validator"]


def test_the_server_side_id_cookies_count_towards_the_header_budget(redis_db, caplog):
    def setup(config):
        for name in ("one", "two", "three"):
            config.register_session_factory(name, redis_factory(redis_db, name))

    settings = {"session_multi.cookie_header_limit": "200"}
    app = webtest.TestApp(build_wsgi(setup, settings=settings))
    caplog.set_level(logging.WARNING, logger="pyramid_session_multi")
    for name in ("one", "two", "three"):
        app.post(f"/s/{name}", {"value": "v"})
    assert "over the Cookie header budget of 200 bytes" in caplog.text


def test_logging_out_and_in_again_in_one_request_keeps_every_redis_namespace(redis_db):
    # each Redis cookie callback rewrites the response's Vary header in place
    def relogin(request):
        request.session_multi.invalidate()
        for name in ("cart", "wish"):
            request.session_multi[name]["value"] = "bob"
        return {}

    def setup(config):
        config.register_session_factory("cart", redis_factory(redis_db, "cart"))
        config.register_session_factory("wish", redis_factory(redis_db, "wish"))
        config.add_route("relogin", "/relogin")
        config.add_view(relogin, route_name="relogin", renderer="json")

    app = webtest.TestApp(build_wsgi(setup))
    app.post("/s/cart", {"value": "alice"})
    app.post("/s/wish", {"value": "alice"})
    response = app.get("/relogin")
    assert not any("Max-Age=0" in v for k, v in response.headerlist if k == "Set-Cookie")
    assert app.get("/s/cart").json["value"] == "bob"
    assert app.get("/s/wish").json["value"] == "bob"
    assert len(keys(redis_db)) == 2  # the two new sessions, nothing orphaned


def test_a_rotation_whose_response_never_forms_leaves_no_orphan(redis_db):
    record = []
    app = subscribed_app(redis_db, SessionRotated, record, rotate_raising_out)
    app.post("/s/cart", {"value": "in the cart"})
    with pytest.raises(RuntimeError, match="subscriber failed"):
        app.get("/act")
    # the new id never reached the client: it is dropped, and the old key,
    # retired only once a new one is saved, still holds the cart
    assert len(keys(redis_db)) == 1
    assert app.get("/s/cart").json["value"] == "in the cart"


def rotate_raising_out(request):
    request.session_multi.rotate(raise_errors=True)
    return {}


def test_the_applications_callbacks_run_when_a_namespace_ends_empty(redis_db, tmp_path):
    from tests.support.lifetime_apps import LIBRARIES, build_lifetime_app, library_factory

    seen = []

    def register(config):
        for name in LIBRARIES:
            config.register_session_factory(name, library_factory(name, redis_db, tmp_path))

    app = build_lifetime_app(register, settings={"seen": seen})
    for name in LIBRARIES:
        app.get(f"/w/{name}", {"value": name})
        del seen[:]
        app.get(f"/logout-cb/{name}")
        assert sorted(when for when, _ in seen) == ["finished", "response"], name


def test_an_oversized_cookie_of_an_enlisted_namespace_fails_the_response_named(redis_db, caplog):
    # bound, so its end of request is the add-on's, and the only cookie session,
    # so no budget is installed: WebOb's own "too long" error still fails the
    # response, with the note the budget would give (cookies.rst)
    def setup(config):
        config.register_session_factory("main", redis_factory(redis_db, cookie_name="main"))
        config.register_session_factory("admin", signed_factory("admin"), bound_to="main")

    app = webtest.TestApp(build_wsgi(setup))
    app.post("/s/main", {"value": "alice"})
    with pytest.raises(
        ValueError, match=r"Cookie value is too long to store \((\d+) bytes\)"
    ) as info:
        app.post("/s/admin", {"value": "x" * 5000})
    size = len("admin=") + int(re.search(r"\((\d+) bytes\)", str(info.value)).group(1))
    message = (
        f"pyramid_session_multi: the cookie 'admin' of namespace 'admin' would be {size} "
        "bytes, over the 4096-byte limit of one cookie; keep less in this namespace or move "
        "it to a server-side store"
    )
    # named once, logged once
    assert info.value.__notes__ == [message]
    assert caplog.text.count(message) == 1


class JarSession(dict):
    """An application's own cookie session: its data in cookie ``jar`` through
    WebOb's ``CookieProfile``, set in a response callback it queues when made."""

    new = True
    created = 0.0

    def __init__(self, request):
        profile = CookieProfile("jar").bind(request)
        super().__init__(profile.get_value() or {})
        request.add_response_callback(
            lambda request, response: profile.set_cookies(response, dict(self))
        )

    def invalidate(self):
        self.clear()

    def changed(self):
        pass


def jar_factory(request):
    return JarSession(request)


jar_factory.cookie_name = "jar"


def test_webobs_refusal_of_an_applications_own_cookie_names_the_namespace(redis_db, caplog):
    def setup(config):
        config.register_session_factory("main", redis_factory(redis_db, cookie_name="main"))
        config.register_session_factory("jar", jar_factory, bound_to="main")

    app = webtest.TestApp(build_wsgi(setup))
    app.post("/s/main", {"value": "alice"})
    app.post("/s/jar", {"value": "small"})
    assert app.get("/s/jar").json["value"] == "small"
    with pytest.raises(
        ValueError, match=r"Cookie value is too long to store \((\d+) bytes\)"
    ) as info:
        app.post("/s/jar", {"value": "x" * 5000})
    size = len("jar=") + int(re.search(r"\((\d+) bytes\)", str(info.value)).group(1))
    message = (
        f"pyramid_session_multi: the cookie 'jar' of namespace 'jar' would be {size} "
        "bytes, over the 4096-byte limit of one cookie; keep less in this namespace or move "
        "it to a server-side store"
    )
    assert info.value.__notes__ == [message]
    assert caplog.text.count(message) == 1


def set_jar(request, response, *, session, profile):
    profile.set_cookies(response, dict(session))


class PartialJarSession(JarSession):
    """The same, its callback a ``functools.partial`` naming the session by keyword."""

    def __init__(self, request):
        profile = CookieProfile("jar").bind(request)
        dict.__init__(self, profile.get_value() or {})
        request.add_response_callback(functools.partial(set_jar, session=self, profile=profile))


def partial_jar_factory(request):
    return PartialJarSession(request)


partial_jar_factory.cookie_name = "jar"


def note(ran, what, request, response):
    ran.append(what)


def test_callbacks_are_claimed_by_the_session_they_refer_to(redis_db):
    # the end of request takes each library's queued callbacks to its
    # namespace, by what they refer to (a partial's arguments, a closure's
    # cells), and leaves the application's own where they were
    ran = []

    def view(request):
        request.session_multi["jar"]["value"] = "kept"

        def not_yet_bound(request):
            try:
                return assigned_later
            except NameError:
                ran.append("empty cell")

        request.add_finished_callback(not_yet_bound)
        request.add_finished_callback(lambda request: ran.append("finished"))
        request.add_response_callback(lambda request, response: ran.append("response"))
        request.add_response_callback(functools.partial(note, ran, "partial"))
        if ran is None:  # never: the closure's cell stays empty
            assigned_later = 1
        return {}

    def setup(config):
        config.register_session_factory("main", redis_factory(redis_db, cookie_name="main"))
        config.register_session_factory("jar", partial_jar_factory, bound_to="main")
        config.add_route("jar", "/jar")
        config.add_view(view, route_name="jar", renderer="json")

    app = webtest.TestApp(build_wsgi(setup))
    app.post("/s/main", {"value": "alice"})
    response = app.get("/jar")
    assert "jar" in set_cookie_names(response)
    assert app.get("/s/jar").json["value"] == "kept"
    assert ran == ["response", "partial", "empty cell", "finished"]


def test_a_cookie_over_the_budget_in_a_bound_namespace_fails_the_response_named():
    # two cookie sessions could pass the header budget: the budget's own
    # refusal, raised once every namespace is applied (cookies.rst)
    def setup(config):
        config.register_session_factory("main", signed_factory("main"))
        config.register_session_factory("admin", signed_factory("admin"), bound_to="main")

    app = webtest.TestApp(build_wsgi(setup))
    app.post("/s/main", {"value": "alice"})
    with pytest.raises(CookieTooLarge, match="the cookie 'admin' of namespace 'admin' would be"):
        app.post("/s/admin", {"value": "x" * 5000})


def test_a_logout_whose_only_namespace_cannot_load_still_deletes_its_cookie(server):
    app = webtest.TestApp(
        build_wsgi(
            lambda config: config.register_session_factory("cart", redis_factory(server.url))
        )
    )
    app.post("/s/cart", {"value": "in the cart"})
    server.stop()
    response = app.get("/invalidate")
    assert any("Max-Age=0" in header for header in cookie_headers(response, "cart"))
    assert "cart" not in app.cookies


def redis_keys_holding(url, text):
    client = redis.StrictRedis.from_url(url)
    try:
        return sum(text in (client.get(key) or b"") for key in client.keys("*"))
    finally:
        client.close()


def write_then_fail(request):
    request.session_multi["redis"]["value"] = request.params["value"]
    raise RuntimeError("the view failed after writing")


def test_a_session_its_library_saves_after_a_failed_request_keeps_its_lifetime_stamps(
    redis_db, tmp_path, clock
):
    def register(config):
        config.register_session_factory(
            "redis", library_factory("redis", redis_db, tmp_path), idle_timeout=600
        )
        config.add_route("fail", "/fail")
        config.add_view(write_then_fail, route_name="fail")

    app = build_lifetime_app(register)
    clock.at(0)
    app.get("/w/redis", {"value": "first"})
    clock.at(300)
    with pytest.raises(RuntimeError, match="the view failed"):
        app.get("/fail", {"value": "saved by the library"})
    assert redis_keys_holding(redis_db, b"saved by the library") == 1
    # saved with its stamps: its idle clock runs from that use, not from its next load
    clock.at(300 + 601)
    assert app.get("/r/redis").json["value"] is None


class LoginRefused(Exception):
    """The application's own error, answered by its own exception view."""


def failing_login(error):
    def login(request):
        request.session_multi.rotate(userid="alice")
        request.session_multi["acct"]["user"] = "alice"
        raise error()

    return login


@pytest.mark.parametrize("library", ["redis", "beaker"])
@pytest.mark.parametrize("error", [LoginRefused, HTTPForbidden], ids=["own-view", "pyramids-view"])
def test_a_login_failed_into_an_exception_view_keeps_the_old_cookie_and_session(
    redis_db, tmp_path, library, error
):
    def register(config):
        config.register_session_factory(
            "acct", library_factory(library, redis_db, tmp_path, "acct")
        )
        config.add_route("failed_login", "/failed-login")
        config.add_view(failing_login(error), route_name="failed_login", renderer="json")
        config.add_view(lambda exc, request: Response("sorry", status=401), context=LoginRefused)

    app = build_lifetime_app(register)
    app.get("/w/acct", {"value": "three books"})
    old_cookie = app.cookies["acct"]
    stored = sorted(keys(redis_db)) if library == "redis" else beaker_files(tmp_path)
    response = app.get("/failed-login", status=(401, 403))
    assert cookie_headers(response, "acct") == []
    assert app.cookies["acct"] == old_cookie
    # the old session is whole, and nothing of the failed login is stored
    assert (sorted(keys(redis_db)) if library == "redis" else beaker_files(tmp_path)) == stored
    data = app.get("/d/acct").json
    assert data.get("value") == "three books"
    assert "user" not in data


def beaker_files(directory):
    return sorted(str(path) for path in directory.rglob("*.cache"))


def test_a_merging_namespace_set_to_fail_fails_the_response_when_its_store_is_lost(server):
    def write_after_outage(request):
        cart = request.session_multi["cart"]
        cart.get("value")  # loaded while the store was up: its save merges
        server.stop()
        cart["value"] = "written after the store died"
        return {}

    def setup(config):
        config.register_session_factory(
            "cart", redis_factory(server.url), concurrent_writes="merge", on_save_error="fail"
        )
        config.add_route("write_after_outage", "/write-after-outage")
        config.add_view(write_after_outage, route_name="write_after_outage", renderer="json")

    app = webtest.TestApp(build_wsgi(setup))
    app.post("/s/cart", {"value": "in the cart"})
    with pytest.raises(redis.exceptions.ConnectionError) as info:
        app.get("/write-after-outage")
    assert any("namespace 'cart' could not be saved" in note for note in info.value.__notes__)
    server.start()
    assert app.get("/s/cart").json["value"] == "in the cart"


class LibrarySession(dict):
    """A session of a library whose package is this test's (``tests``)."""

    def save(self, request):
        pass


def library_saves(session, request, response):
    pass


def application_saves(session, request, response):
    pass


application_saves.__module__ = "myapp.views"


def library_closure(session):
    def save(request, response):
        return session

    return save


def application_closure(session):
    def save(request, response):
        return session

    save.__module__ = "myapp.views"
    return save


def with_an_empty_cell(session):
    def save(request, response):
        return later, session

    return save
    later = None  # never reached: the cell stays empty


class LibrarySaver:
    """The library's callable (this test's package), bound to a session."""

    def __call__(self, session, request, response):
        pass


class CallableSaver:
    """The application's callable, holding a session."""

    __module__ = "myapp.savers"

    def __init__(self, session):
        self.session = session

    def __call__(self, request, response):
        pass


def test_one_sessions_callbacks_are_told_as_the_walk_over_every_namespace_tells_them():
    # the claim at load asks of one session what library_owner asks of all:
    # a bound method, a partial and a closure are told without the walk
    from pyramid_session_multi.lifecycle.claiming import LibraryCode, library_owner, queued_by

    session, other = LibrarySession(), LibrarySession()
    expected = [
        (session.save, True),
        (other.save, False),
        (functools.partial(library_saves, session), True),
        (functools.partial(library_saves, other), False),
        (functools.partial(library_saves, other, session=session), True),
        (functools.partial(application_saves, session), False),
        (functools.partial(functools.partial(library_saves, session)), True),
        (library_closure(session), True),
        (library_closure(other), False),
        (application_closure(session), False),
        (with_an_empty_cell(session), True),
        (lambda request, response: None, False),
        (CallableSaver(session), False),
        (functools.partial(CallableSaver(other), session), False),
        # a bound method of something callable, not of a function: walked
        (types.MethodType(LibrarySaver(), session), True),
        (types.MethodType(CallableSaver(other), session), False),
    ]

    class Namespace:
        pass

    # the library declares this test's module its own
    state = Namespace()
    state.session = session
    state.config = Namespace()
    state.config.library_code = LibraryCode((LibrarySession.__module__,), dict)
    for callback, library_queued in expected:
        assert queued_by(callback, state) is library_queued, callback
        walked = library_owner(callback, {id(session): state}) is not None
        assert walked is library_queued, callback


@pytest.mark.parametrize("library", ["redis", "beaker"])
def test_a_server_side_namespaces_callbacks_are_taken_at_load_without_walking_them(
    library, redis_db, tmp_path, monkeypatch
):
    # what the factory of a Redis or Beaker session queues is told as its own at
    # once (a bound method, a partial, a closure of the session), on every request
    from pyramid_session_multi.lifecycle import claiming

    walked = []
    walk = claiming.library_owner

    def counting_walk(callback, owners):
        walked.append(callback)
        return walk(callback, owners)

    monkeypatch.setattr(claiming, "library_owner", counting_walk)

    def register(config):
        config.register_session_factory(
            "ns", library_factory(library, redis_db, tmp_path, "ns"), concurrent_writes="overwrite"
        )

    app = build_lifetime_app(register)
    app.get("/w/ns", params={"value": "kept"})
    assert app.get("/r/ns").json["value"] == "kept"
    assert walked == []


def test_the_applications_callbacks_run_at_logout_beside_its_own_session_class(redis_db):
    # the application's own session class (JarSession, this package's) and a view
    # of the same package holding that session: the view's callbacks are its own,
    # and run at logout like any other application callback
    seen = []

    def logout(request):
        session = request.session_multi["jar"]
        request.add_response_callback(lambda request, response: seen.append(("response", session)))
        request.add_finished_callback(lambda request: seen.append(("finished", session)))
        request.session_multi.invalidate()
        return {}

    def setup(config):
        config.register_session_factory("main", redis_factory(redis_db, cookie_name="main"))
        config.register_session_factory("jar", jar_factory, bound_to="main")
        config.add_route("logout", "/logout")
        config.add_view(logout, route_name="logout", renderer="json")

    app = webtest.TestApp(build_wsgi(setup))
    app.post("/s/main", {"value": "alice"})
    app.post("/s/jar", {"value": "small"})
    app.get("/logout")
    assert sorted(when for when, _ in seen) == ["finished", "response"]


def test_the_applications_callbacks_see_only_its_data_beside_its_own_session_class():
    # the view's callback, of the same package as the application's own session
    # class, is the application's: it never sees the add-on's lifetime record
    seen = []

    def write(request):
        session = request.session_multi["jar"]
        session["value"] = "small"
        request.add_response_callback(lambda request, response: seen.append(dict(session)))
        return {}

    def setup(config):
        config.register_session_factory("jar", jar_factory, idle_timeout=600)
        config.add_route("write", "/write")
        config.add_view(write, route_name="write", renderer="json")

    app = webtest.TestApp(build_wsgi(setup))
    app.get("/write")
    assert seen == [{"value": "small"}]


def test_a_contained_save_is_queued_before_the_release_of_the_sessions(redis_db):
    # the release goes last of the finished callbacks: the contained save is
    # queued before it, not after (where the release would have to pass again)
    seen = []

    def look(request):
        seen.extend(
            "release"
            if getattr(callback, "__name__", "") == "_release"
            else type(getattr(callback, "__self__", callback)).__name__
            for callback in request.finished_callbacks
        )

    def view(request):
        request.add_finished_callback(look)
        request.session_multi["cart"]["value"] = "saved"
        return {}

    def setup(config):
        config.register_session_factory(
            "cart", redis_factory(redis_db), concurrent_writes="overwrite"
        )
        config.add_route("act", "/act")
        config.add_view(view, route_name="act", renderer="json")

    app = webtest.TestApp(build_wsgi(setup))
    app.get("/act")
    # a namespace asking nothing more: its library's save is the release's to run, contained
    assert seen == ["release"]
    assert app.get("/s/cart").json["value"] == "saved"


class ShortbreadSession(SignedCookieSessionFactory("s" * 32, cookie_name="shortbread")):
    """The application's subclass of pyramid's cookie-session class."""


def test_the_applications_callbacks_run_at_logout_beside_its_subclass_of_a_librarys():
    # the library's code is pyramid's (what its adapter declares): the view's
    # callbacks, in the module of the application's subclass, are the
    # application's, and run at logout like any other
    seen = []

    def logout(request):
        session = request.session_multi["shortbread"]
        request.add_response_callback(lambda request, response: seen.append(("response", session)))
        request.add_finished_callback(lambda request: seen.append(("finished", session)))
        request.session_multi.invalidate()
        return {}

    def setup(config):
        config.register_session_factory("shortbread", ShortbreadSession, idle_timeout=600)
        config.add_route("logout", "/logout")
        config.add_view(logout, route_name="logout", renderer="json")

    app = webtest.TestApp(build_wsgi(setup))
    app.post("/s/shortbread", {"value": "small"})
    assert app.get("/s/shortbread").json["value"] == "small"
    app.get("/logout")
    assert sorted(when for when, _ in seen) == ["finished", "response"]
    assert app.get("/s/shortbread").json["value"] is None


class BiscuitSession(SignedCookieSessionFactory("b" * 32, cookie_name="biscuit")):
    """The application's subclass of pyramid's cookie-session class, with a callback of its own."""

    def notes_the_response(self, request, response):
        self.request.environ["test.noted"].append("method")


def notes_the_logout(session, request, response):
    """The application's callback, at the top level of its session class's module."""
    request.environ["test.noted"].append("top level")


def test_the_applications_code_beside_its_session_class_runs_at_logout():
    # pyramid's adapter declares pyramid's modules as its code: a method of
    # the application's subclass, and a function of the module defining it,
    # are the application's, never taken for the library's and dropped
    noted = []

    def logout(request):
        request.environ["test.noted"] = noted
        session = request.session_multi["biscuit"]
        request.add_response_callback(functools.partial(notes_the_logout, session))
        request.add_response_callback(session.notes_the_response)
        request.session_multi.invalidate()
        return {}

    def setup(config):
        config.register_session_factory("biscuit", BiscuitSession, idle_timeout=600)
        config.add_route("logout", "/logout")
        config.add_view(logout, route_name="logout", renderer="json")

    app = webtest.TestApp(build_wsgi(setup))
    app.post("/s/biscuit", {"value": "small"})
    app.get("/logout")
    assert sorted(noted) == ["method", "top level"]
    assert app.get("/s/biscuit").json["value"] is None


def saves_the_ledger(session, request, response):
    """A library's save, in a module of its own (neither its factory's nor its class's)."""
    session.saved.append(dict(session))


saves_the_ledger.__module__ = "ledgerlib.saving"


class LedgerSession(dict):
    """A session of the library ``ledgerlib``, queuing its save as it is made."""

    created = 0.0

    def __init__(self, request):
        super().__init__()
        self.saved = []
        request.add_response_callback(functools.partial(saves_the_ledger, self))

    def invalidate(self):
        self.clear()

    def changed(self):
        pass


def ledger_factory(request):
    return LedgerSession(request)


ledger_factory.cookie_name = "ledger"


class LedgerLibrary(SessionLibrary):
    name = "ledger"
    modules = ("ledgerlib",)

    def claims(self, factory):
        return factory is ledger_factory


@pytest.mark.parametrize("declared", [True, False])
def test_an_added_library_declares_which_code_is_its_own(declared):
    # its save, from a module it declares, is its own: it runs in the end of
    # request, with the add-on's record around it; undeclared, it is the
    # application's, and never sees that record
    sessions = []

    def write(request):
        session = request.session_multi["ledger"]
        session["value"] = "small"
        sessions.append(session)
        return {}

    def setup(config):
        if declared:
            config.add_session_library(LedgerLibrary)
        config.register_session_factory("ledger", ledger_factory, idle_timeout=600)
        config.add_route("write", "/write")
        config.add_view(write, route_name="write", renderer="json")

    app = webtest.TestApp(build_wsgi(setup))
    app.get("/write")
    (saved,) = sessions[0].saved
    assert saved["value"] == "small"
    assert (LIFETIME_KEY in saved) is declared


def test_a_library_declaring_its_modules_as_one_string_is_refused():
    class Spelled(LedgerLibrary):
        modules = "ledgerlib"

    with pytest.raises(ConfigurationError, match="modules"):
        build_wsgi(lambda config: config.add_session_library(Spelled))


def test_which_code_is_a_librarys():
    from pyramid_session_multi.lifecycle.claiming import LibraryCode

    def view(request):
        return lambda request, response: None

    code = LibraryCode(("ledgerlib",), functools.partial(jar_factory))
    # a declared module, and nothing else: the factory's and the classes'
    # modules may be the application's own (its subclass of a library's)
    assert code.owns(saves_the_ledger, dict)
    assert not code.owns(note, dict)
    assert not code.owns(JarSession.invalidate, JarSession)
    code = LibraryCode((), functools.partial(jar_factory))
    # none declared: the top level of the factory's or the class's module,
    # what the session's classes define
    assert code.owns(note, dict)
    assert code.owns(JarSession.invalidate, JarSession)
    assert code.owns(LibrarySession.save, LibrarySession)
    # a view's code, another module's, a builtin's, an object's
    assert not code.owns(view(None), JarSession)
    assert not code.owns(application_saves, JarSession)
    assert not code.owns(JarSession.invalidate, LibrarySession)
    assert not code.owns({}.clear, dict)
    assert not code.owns(LibrarySaver(), LibrarySession)
    # a callable object's factory: its class's code
    code = LibraryCode((), LibrarySaver())
    assert code.owns(LibrarySaver.__call__, dict)
    assert not code.owns(view, dict)
