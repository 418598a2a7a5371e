"""A pyramid cookie session of a namespace holds its request weakly: no cycle,
and nothing queued to release it (pyramid_session_multi.held_request)."""

import weakref

import pytest
from pyramid.response import Response
from pyramid.session import SignedCookieSessionFactory

from pyramid_session_multi.config import get_manager_config
from pyramid_session_multi.held_request import holds_request_weakly
from tests.support.apps import build_app, releases_queued, signed_factory, without_cycle_collector


def app_with(view, **options):
    def setup(config):
        config.register_session_factory("a", signed_factory("cookie_a"), **options)
        config.add_route("v", "/v")
        config.add_view(view, route_name="v")

    return build_app(setup)


@pytest.mark.parametrize("what", ["read", "written"])
@pytest.mark.parametrize(
    "options", [{}, {"idle_timeout": 600}], ids=["plain", "stamped-in-its-cookie"]
)
def test_a_cookie_namespace_queues_no_release_and_leaves_no_cycle(what, options):
    seen = {}

    def view(request):
        session = request.session_multi["a"]
        if what == "written":
            session["k"] = "v"
        else:
            session.get("k")
        seen["queued"] = len(releases_queued(request))
        # the session reaches its request while it lives
        seen["url"] = session.request.url == request.url
        seen["request"] = weakref.ref(request)
        seen["session"] = weakref.ref(session)
        return Response("ok")

    app = app_with(view, **options)
    with without_cycle_collector():
        response = app.get("/v")
        # freed as the request ends, by reference counting alone
        assert seen["request"]() is None
        assert seen["session"]() is None
    assert seen["queued"] == 0
    assert seen["url"] is True
    assert ("cookie_a=" in response.headers.get("Set-Cookie", "")) is (what == "written")


def test_finished_callbacks_still_see_the_session_the_view_wrote():
    seen = {}

    def late(request):
        session = request.session_multi["a"]
        seen["late"] = (session is seen["session"], session["k"])

    def view(request):
        session = seen["session"] = request.session_multi["a"]
        session["k"] = "written"
        request.add_finished_callback(late)
        return Response("ok")

    app = app_with(view)
    app.get("/v")
    assert seen["late"] == (True, "written")
    assert app.get("/v").status_int == 200


@pytest.mark.parametrize("then", ["rotate", "observe"])
def test_what_may_hold_the_request_queues_the_release_again(then):
    # a unit of work or an observer may hold the request: the manager lets
    # go of them once the request is over, as before
    class Observer:
        def namespace_loaded(self, namespace, session):
            pass

    seen = {}

    def view(request):
        manager = request.session_multi
        manager["a"]["k"] = 1
        if then == "rotate":
            manager.rotate("a")
        else:
            manager.add_observer(Observer())
        seen["queued"] = len(releases_queued(request))
        seen["request"] = weakref.ref(request)
        return Response("ok")

    app = app_with(view)
    with without_cycle_collector():
        app.get("/v")
        assert seen["request"]() is None
    assert seen["queued"] == 1


def test_only_the_add_ons_subclasses_hold_the_request_weakly():
    pyramid_class = SignedCookieSessionFactory("secret", cookie_name="x")
    assert not holds_request_weakly(pyramid_class)

    def setup(config):
        config.register_session_factory("a", signed_factory("cookie_a"))
        config.register_session_factory(
            "b", lambda request: pyramid_class(request), cookie_name="x"
        )
        config.register_session_factory(
            "c", signed_factory("cookie_c"), discriminator=lambda request: True
        )

    configs = get_manager_config(build_app(setup).app.registry).configs
    assert holds_request_weakly(configs["a"].loader)
    assert configs["a"].pipeline.releases_nothing
    # the application's own factory: its sessions may hold the request
    assert not configs["b"].pipeline.releases_nothing
    # a namespace that goes through its pipeline: released, as it may enlist
    assert not configs["c"].pipeline.releases_nothing


def test_a_session_read_once_its_request_is_gone_reads_as_before():
    # A streaming body runs after the router let go of the request: a read
    # that re-issues the cookie (pyramid's reissue_time is 0) has no
    # response to carry it, and reads on, as when the session held the request.
    seen = {}

    def view(request):
        session = request.session_multi["a"]
        if "write" in request.params:
            session["k"] = "v"
            # its cookie issued a minute ago: the next read re-issues it
            session.accessed -= 60
            return Response("written")
        seen["request"] = weakref.ref(request)
        seen["weakly"] = holds_request_weakly(type(session))

        def body():
            seen["gone"] = seen["request"]() is None
            yield session.get("k", "missing").encode()

        return Response(app_iter=body())

    app = app_with(view)
    app.get("/v", {"write": "1"})
    response = app.get("/v")
    # the case this test is about: the request gone as the body reads
    assert seen["gone"] is seen["weakly"] is True
    assert response.body == b"v"
    assert "Set-Cookie" not in response.headers


def test_a_session_of_a_dummy_request_manager_outlives_it():
    # new_session_multi(DummyRequest()) works alone, and so does the session
    # it gave once the manager is dropped
    from pyramid import testing

    from pyramid_session_multi import new_session_multi

    config = testing.setUp()
    try:
        config.include("pyramid_session_multi")
        config.register_session_factory("a", signed_factory("cookie_a"))
        config.commit()
        session = new_session_multi(testing.DummyRequest())["a"]
        session["k"] = "v"
        session.invalidate()
        session["k"] = "w"
        assert dict(session) == {"k": "w"}
    finally:
        testing.tearDown()


def test_an_applications_own_changed_is_called_on_every_write():
    # pyramid's own changed() is skipped once it queued the cookie; a
    # subclass's of the application's may do more, and is called each time
    calls = []
    base = SignedCookieSessionFactory("secret-cookie_a", cookie_name="cookie_a")

    class Counting(base):
        def changed(self):
            calls.append(1)
            super().changed()

    def view(request):
        session = request.session_multi["a"]
        session["k"] = 1
        session["k"] = 2
        return Response("ok")

    def setup(config):
        config.register_session_factory("a", Counting)
        config.add_route("v", "/v")
        config.add_view(view, route_name="v")

    response = build_app(setup).get("/v")
    assert len(calls) == 2
    assert "cookie_a=" in response.headers["Set-Cookie"]


@pytest.mark.parametrize("options", [{}, {"idle_timeout": 600}], ids=["plain", "stamped"])
def test_session_request_is_the_request_and_costs_no_weak_reference_more(options):
    # the session's weak reference is the manager's: one per request, as the
    # manager alone makes; ``session.request`` is the request itself
    seen = {}

    def view(request):
        manager = request.session_multi
        manager["a"].get("k")  # the manager and the session exist
        session = manager["a"]
        seen["is"] = session.request is request
        seen["refs"] = weakref.getweakrefcount(request)
        session["k"] = "v"
        seen["session"] = session
        return Response("ok")

    response = app_with(view, **options).get("/v")
    assert seen["is"] is True
    assert seen["refs"] == 1
    assert "cookie_a=" in response.headers["Set-Cookie"]
    # its cookie set, it lets go of the request, as pyramid's own does
    assert seen["session"].request is None


@pytest.mark.parametrize("own_changed", [False, True], ids=["pyramids", "applications"])
def test_a_session_written_once_its_request_is_gone_writes_on(own_changed):
    base = SignedCookieSessionFactory("secret-cookie_a", cookie_name="cookie_a")

    class Own(base):
        def changed(self):
            super().changed()

    seen = {}

    def view(request):
        session = request.session_multi["a"]
        seen["request"] = weakref.ref(request)

        def body():
            seen["gone"] = seen["request"]() is None
            session["k"] = "written late"
            seen["request_then"] = session.request
            yield b"ok"

        return Response(app_iter=body())

    def setup(config):
        config.register_session_factory("a", Own if own_changed else base)
        config.add_route("v", "/v")
        config.add_view(view, route_name="v")

    with without_cycle_collector():
        response = build_app(setup).get("/v")
    assert seen["gone"] is True
    assert seen["request_then"] is None
    assert response.body == b"ok"
    assert "Set-Cookie" not in response.headers
