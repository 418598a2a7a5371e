"""request.session_multi through the real router: laziness, caching, errors."""

import gc
import weakref
from collections.abc import Mapping

import pytest
from pyramid import testing

from pyramid_session_multi import (
    SessionMultiManager,
    UnregisteredSession,
    new_session_multi,
    register_session_factory,
)
from pyramid_session_multi.budget import CookieTooLarge
from tests.support.apps import (
    build_app,
    releases_queued,
    set_cookie_names,
    signed_factory,
    without_cycle_collector,
)


class CountingFactory:
    """A real SignedCookie factory that counts its calls."""

    def __init__(self, cookie_name, **kwargs):
        self.inner = signed_factory(cookie_name, **kwargs)
        self.cookie_name = cookie_name
        self.calls = 0

    def __call__(self, request):
        self.calls += 1
        return self.inner(request)


def two_namespaces(config):
    config.register_session_factory("a", signed_factory("cookie_a"))
    config.register_session_factory("b", signed_factory("cookie_b"))


def test_touching_session_multi_creates_no_session_and_no_cookie():
    factory = CountingFactory("cookie_a")
    app = build_app(lambda c: c.register_session_factory("a", factory))
    response = app.get("/loaded")
    assert response.json == {"keys": [], "len": 0, "namespaces": ["a"]}
    assert factory.calls == 0
    assert set_cookie_names(response) == []


def test_only_written_namespaces_set_a_cookie():
    app = build_app(two_namespaces)
    response = app.post("/s/a", {"value": "1"})
    assert set_cookie_names(response) == ["cookie_a"]
    response = app.get("/s/b")
    assert response.json["value"] is None
    assert set_cookie_names(response) == []
    assert app.get("/s/a").json["value"] == "1"


def test_namespaces_are_isolated_across_requests():
    app = build_app(two_namespaces)
    app.post("/s/a", {"value": "for-a"})
    app.post("/s/b", {"value": "for-b"})
    assert app.get("/s/a").json["value"] == "for-a"
    assert app.get("/s/b").json["value"] == "for-b"


def test_factory_is_called_once_per_request():
    factory = CountingFactory("cookie_a")

    def view(request):
        first = request.session_multi["a"]
        second = request.session_multi["a"]
        third = request.session_multi.get("a")
        return {"same": first is second is third}

    def setup(config):
        config.register_session_factory("a", factory)
        config.add_route("twice", "/twice")
        config.add_view(view, route_name="twice", renderer="json")

    app = build_app(setup)
    assert app.get("/twice").json == {"same": True}
    assert factory.calls == 1
    app.get("/twice")
    assert factory.calls == 2


def test_discriminator_called_once_and_falsy_mounts_none_without_cookie():
    calls = []

    def discriminator(request):
        calls.append(request)
        return request.params.get("allow")

    def view(request):
        first = request.session_multi["d"]
        second = request.session_multi["d"]
        if first is not None:
            first["x"] = 1
        return {"none": first is None, "same": first is second}

    def setup(config):
        config.register_session_factory(
            "d", signed_factory("cookie_d"), discriminator=discriminator
        )
        config.add_route("d", "/d")
        config.add_view(view, route_name="d", renderer="json")

    app = build_app(setup)
    response = app.get("/d")
    assert response.json == {"none": True, "same": True}
    assert set_cookie_names(response) == []
    assert len(calls) == 1
    assert calls[0].path == "/d"
    response = app.get("/d", {"allow": "1"})
    assert response.json == {"none": False, "same": True}
    assert set_cookie_names(response) == ["cookie_d"]
    assert len(calls) == 2


def test_unknown_namespace_raises_unregistered_session_naming_it():
    def view(request):
        with pytest.raises(UnregisteredSession) as info:
            request.session_multi["nope"]
        assert isinstance(info.value, KeyError)
        assert "nope" in str(info.value)
        return {
            "default": request.session_multi.get("nope", "dflt"),
            "none": request.session_multi.get("nope"),
        }

    def setup(config):
        two_namespaces(config)
        config.add_route("u", "/u")
        config.add_view(view, route_name="u", renderer="json")

    assert build_app(setup).get("/u").json == {"default": "dflt", "none": None}


def test_mapping_reports_loaded_namespaces_only():
    def view(request):
        manager = request.session_multi
        before = ("a" in manager, len(manager), list(manager), list(manager.keys()))
        manager["a"]
        after = ("a" in manager, "b" in manager, len(manager), list(manager), list(manager.keys()))
        return {
            "before": before,
            "after": after,
            "namespaces": manager.namespaces,
            "values": [v is not None for v in manager.values()],
            "items": [k for k, v in manager.items()],
        }

    def setup(config):
        two_namespaces(config)
        config.add_route("m", "/m")
        config.add_view(view, route_name="m", renderer="json")

    result = build_app(setup).get("/m").json
    assert result["before"] == [False, 0, [], []]
    assert result["after"] == [True, False, 1, ["a"], ["a"]]
    assert result["namespaces"] == ["a", "b"]
    assert result["values"] == [True]
    assert result["items"] == ["a"]


@pytest.mark.parametrize(
    "mutate",
    [
        lambda m: m.__setitem__("a", {}),
        lambda m: m.__delitem__("a"),
        lambda m: m.pop("a"),
        lambda m: m.popitem(),
        lambda m: m.clear(),
        lambda m: m.update({"a": {}}),
        lambda m: m.setdefault("a", {}),
    ],
)
def test_every_mutation_raises_value_error_and_changes_nothing(mutate):
    def view(request):
        manager = request.session_multi
        session = manager["a"]
        with pytest.raises(ValueError, match="read-only"):
            mutate(manager)
        return {"keys": list(manager.keys()), "same": manager["a"] is session}

    def setup(config):
        two_namespaces(config)
        config.add_route("m", "/m")
        config.add_view(view, route_name="m", renderer="json")

    assert build_app(setup).get("/m").json == {"keys": ["a"], "same": True}


def test_invalidate_clears_every_namespace_and_skips_discriminated():
    def setup(config):
        two_namespaces(config)
        config.register_session_factory(
            "off", signed_factory("cookie_off"), discriminator=lambda r: False
        )

    app = build_app(setup)
    app.post("/s/a", {"value": "1"})
    app.post("/s/b", {"value": "2"})
    app.get("/invalidate")
    assert app.get("/s/a").json["value"] is None
    assert app.get("/s/b").json["value"] is None
    assert app.get("/s/off").json["session"] is None


def test_invalidate_with_a_failing_namespace_logs_out_of_the_others(caplog):
    def broken(request):
        raise RuntimeError("backend down")

    broken.cookie_name = "cookie_broken"

    def invalidate(request):
        failures = request.session_multi.invalidate()
        return {"failed": sorted(failures)}

    def invalidate_strict(request):
        request.session_multi.invalidate(raise_errors=True)
        return {}

    def setup(config):
        config.register_session_factory("a", signed_factory("cookie_a"))
        config.register_session_factory("broken", broken)
        config.register_session_factory("b", signed_factory("cookie_b"))
        config.add_route("logout", "/logout")
        config.add_view(invalidate, route_name="logout", renderer="json")
        config.add_route("strict", "/strict")
        config.add_view(invalidate_strict, route_name="strict", renderer="json")

    app = build_app(setup)
    app.post("/s/a", {"value": "1"})
    app.post("/s/b", {"value": "2"})
    app.set_cookie("cookie_broken", "whatever")
    # no exception view in this app: the logout still forms a response
    response = app.get("/logout")
    assert response.json == {"failed": ["broken"]}
    assert set_cookie_names(response) == ["cookie_a", "cookie_b", "cookie_broken"]
    assert all("Max-Age=0" in v for k, v in response.headerlist if k == "Set-Cookie")
    assert "cookie_a" not in app.cookies and "cookie_b" not in app.cookies
    assert app.get("/s/a").json["value"] is None
    assert "namespace 'broken' could not be invalidated" in caplog.text
    app.set_cookie("cookie_broken", "whatever")
    with pytest.raises(RuntimeError, match="backend down") as info:
        app.get("/strict")
    assert any("'broken'" in note for note in info.value.__notes__)


class FailingSession(dict):
    """A session whose store is down: invalidating it fails."""

    def __init__(self, request):
        super().__init__()

    def invalidate(self):
        raise RuntimeError("store down")

    def changed(self):
        pass


FailingSession.cookie_name = "cookie_failing"


def test_rotate_changes_the_cookie_and_keeps_the_data():
    app = build_app(two_namespaces)
    app.post("/s/a", {"value": "kept"})
    before = app.cookies["cookie_a"]
    response = app.get("/rotate", {"after": "written after"})
    assert response.json == {"failed": []}
    # only the namespace the client carries: b was never used
    assert set_cookie_names(response) == ["cookie_a"]
    assert app.cookies["cookie_a"] != before
    assert app.get("/s/a").json["value"] == "kept"
    assert app.get("/s/b").json["value"] is None


def test_rotate_skips_what_the_client_never_had_and_what_is_discriminated_out():
    factory = CountingFactory("cookie_b")

    def setup(config):
        config.register_session_factory("a", signed_factory("cookie_a"))
        config.register_session_factory("b", factory)
        config.register_session_factory(
            "off", signed_factory("cookie_off"), discriminator=lambda r: False
        )

    app = build_app(setup)
    app.post("/s/a", {"value": "1"})
    app.set_cookie("cookie_off", "stale")
    response = app.get("/rotate")
    assert set_cookie_names(response) == ["cookie_a"]
    assert factory.calls == 0


def test_rotate_named_namespaces_only_and_refuse_unregistered():
    app = build_app(two_namespaces)
    app.post("/s/a", {"value": "1"})
    app.post("/s/b", {"value": "2"})
    response = app.get("/rotate", {"ns": "b"})
    assert set_cookie_names(response) == ["cookie_b"]
    with pytest.raises(UnregisteredSession, match="'nope'"):
        app.get("/rotate", {"ns": "a,nope"})


def test_rotate_with_a_failing_namespace_rotates_the_others(caplog):
    def strict(request):
        request.session_multi.rotate(raise_errors=True)
        return {}

    def setup(config):
        config.register_session_factory("a", signed_factory("cookie_a"))
        config.register_session_factory("failing", FailingSession)
        config.add_route("strict", "/strict")
        config.add_view(strict, route_name="strict", renderer="json")

    app = build_app(setup)
    app.post("/s/a", {"value": "1"})
    before = app.cookies["cookie_a"]
    app.set_cookie("cookie_failing", "old id")
    response = app.get("/rotate")
    assert response.json == {"failed": ["failing"]}
    assert app.cookies["cookie_a"] != before
    # the client does not keep an id that outlived the privilege change
    deleted = [v for k, v in response.headerlist if v.startswith("cookie_failing=")]
    assert len(deleted) == 1 and "Max-Age=0" in deleted[0]
    assert "namespace 'failing' could not be rotated" in caplog.text
    app.set_cookie("cookie_failing", "old id")
    with pytest.raises(RuntimeError, match="store down") as info:
        app.get("/strict")
    assert any("rotating namespace 'failing'" in note for note in info.value.__notes__)


def test_introspection_matches_on_manager_and_utility():
    discriminator = lambda request: True  # noqa: E731
    factory_a = signed_factory("cookie_a")

    def setup(config):
        config.register_session_factory("a", factory_a, discriminator=discriminator)
        config.register_session_factory("b", signed_factory("b_cookie"), cookie_name="b_cookie")

    app = build_app(setup)
    registry = app.app.registry
    request = testing.DummyRequest()
    request.registry = registry
    manager = new_session_multi(request)
    from pyramid_session_multi import ISessionMultiManagerConfig

    utility = registry.getUtility(ISessionMultiManagerConfig)
    for subject in (manager, utility):
        assert subject.namespaces == ["a", "b"]
        assert subject.discriminators == ["a"]
        assert subject.namespaces_to_cookienames == {"a": "cookie_a", "b": "b_cookie"}
        assert subject.has_namespace("a") and not subject.has_namespace("zz")
        assert subject.get_namespace_config("a") is factory_a
        assert subject.get_namespace_config("zz") is None
        assert subject.get_namespace_cookiename("b") == "b_cookie"
        assert subject.get_namespace_cookiename("zz") is None
        assert subject.get_namespace_discriminator("a") is discriminator
        assert subject.get_namespace_discriminator("b") is None
        assert subject.get_namespace_discriminator("zz") is None


def test_new_session_multi_works_with_dummy_request():
    config = testing.setUp()
    try:
        config.include("pyramid_session_multi")
        register_session_factory(config, "a", signed_factory("cookie_a"))
        request = testing.DummyRequest()
        manager = new_session_multi(request)
        assert isinstance(manager, SessionMultiManager)
        manager["a"]["k"] = "v"
        assert manager["a"]["k"] == "v"
        assert list(manager.keys()) == ["a"]
    finally:
        testing.tearDown()


@pytest.mark.parametrize("role", ["factory", "discriminator"])
def test_errors_propagate_with_the_namespace_named(role):
    def boom(request):
        raise LookupError("kaput")

    def setup(config):
        if role == "factory":
            boom.cookie_name = "cookie_boom"
            config.register_session_factory("exploding", boom)
        else:
            config.register_session_factory(
                "exploding", signed_factory("cookie_x"), discriminator=boom
            )

    app = build_app(setup)
    with pytest.raises(LookupError, match="kaput") as info:
        app.get("/s/exploding")
    notes = " ".join(info.value.__notes__)
    assert "'exploding'" in notes and role in notes


def _request_is_collected_after(app, path, **kwargs):
    refs = []

    def capture(event):
        refs.append(weakref.ref(event.request))

    from pyramid.events import NewRequest

    app.app.registry.registerHandler(capture, (NewRequest,))
    gc.collect()
    gc.disable()
    try:
        app.get(path, **kwargs) if not kwargs.get("params") else app.post(path, kwargs["params"])
        return refs[-1]() is None
    finally:
        gc.enable()


@pytest.mark.parametrize(
    "path,params",
    [
        ("/s/a", None),  # read only: the session keeps its request
        ("/s/a", {"value": "written"}),  # written: a response callback is involved
        ("/loaded", None),
    ],
)
def test_no_reference_cycle_keeps_the_request_alive(path, params):
    app = build_app(two_namespaces)
    if params:
        assert _request_is_collected_after(app, path, params=params)
    else:
        assert _request_is_collected_after(app, path)


def test_the_cycle_check_can_fail():
    # A view that ties the request into a cycle is reported as leaking:
    # the check above is meaningful.
    def leaky(request):
        request.self_ref = request
        return {}

    def setup(config):
        config.add_route("leaky", "/leaky")
        config.add_view(leaky, route_name="leaky", renderer="json")

    assert not _request_is_collected_after(build_app(setup), "/leaky")


def test_finished_callbacks_see_the_session_the_view_used():
    factory = CountingFactory("cookie_a")
    seen = {}

    def early(request):  # registered before the first access
        seen["early"] = (
            request.session_multi["a"] is seen["session"],
            request.session_multi["a"]["k"],
        )

    def late(request):  # registered after it
        seen["late"] = (
            request.session_multi["a"] is seen["session"],
            request.session_multi["a"]["k"],
        )

    def later(request):  # registered by a finished callback
        seen["later"] = request.session_multi["a"] is seen["session"]

    def view(request):
        request.add_finished_callback(early)
        session = seen["session"] = request.session_multi["a"]
        session["k"] = "written by the view"
        request.add_finished_callback(late)
        request.add_finished_callback(lambda r: r.add_finished_callback(later))
        return {}

    def setup(config):
        config.register_session_factory("a", factory)
        config.add_route("v", "/v")
        config.add_view(view, route_name="v", renderer="json")

    build_app(setup).get("/v")
    assert seen["early"] == (True, "written by the view")
    assert seen["late"] == (True, "written by the view")
    assert seen["later"] is True
    assert factory.calls == 1  # the store was not read again


def test_sessions_are_released_after_the_last_finished_callback():
    # a session that holds its request (made by a factory of the
    # application's, not by the add-on's subclass of pyramid's class: see
    # tests/test_held_request.py) is let go of once the request is over
    released = {}

    def view(request):
        manager = request.session_multi
        manager["a"]["k"] = 1
        request.add_finished_callback(lambda r: released.setdefault("during", len(manager)))
        released["manager"] = manager
        return {}

    def setup(config):
        config.register_session_factory("a", CountingFactory("cookie_a"))
        config.register_session_factory("b", CountingFactory("cookie_b"))
        config.add_route("v", "/v")
        config.add_view(view, route_name="v", renderer="json")

    build_app(setup).get("/v")
    assert released["during"] == 1
    assert len(released["manager"]) == 0


class Observer:
    def namespace_loaded(self, namespace, session):
        pass


@pytest.mark.parametrize("then", ["nothing", "rotate", "observe"])
def test_a_session_containing_its_own_save_is_released_only_once_more_is_asked(tmp_path, then):
    # pyramid_beaker's session holds nothing of the request: no release is
    # queued for it, until a unit of work or an observer, which may, is made;
    # either way, what the request made is freed without the cycle collector
    from tests.support.backend_app import beaker_file

    seen = {}

    def view(request):
        manager = request.session_multi
        manager["files"]["k"] = 1
        seen["loaded"] = len(releases_queued(request))
        if then == "rotate":
            manager.rotate("files")
        elif then == "observe":
            manager.add_observer(Observer())
        seen["then"] = len(releases_queued(request))
        seen["session"] = weakref.ref(manager["files"])
        return {}

    def setup(config):
        config.register_session_factory(
            "files", beaker_file(tmp_path, "files"), concurrent_writes="overwrite"
        )
        config.add_route("v", "/v")
        config.add_view(view, route_name="v", renderer="json")

    app = build_app(setup)
    with without_cycle_collector():
        app.get("/v")
        assert seen["session"]() is None
    assert seen["loaded"] == 0
    assert seen["then"] == (0 if then == "nothing" else 1)


def test_a_finished_callback_of_the_applications_that_goes_last_too_still_runs():
    passes = []
    ran = []

    def last(request):
        # goes last while anything else is queued, as the manager's release does
        # (a native app does this safely); gives up after 50 passes, not to hang
        if request.finished_callbacks and len(passes) < 50:
            passes.append(1)
            request.finished_callbacks.append(last)
            return
        ran.append(request.session_multi["a"]["k"])

    def view(request):
        request.session_multi["a"]["k"] = "written"
        request.add_finished_callback(last)
        return {}

    def setup(config):
        two_namespaces(config)
        config.add_route("v", "/v")
        config.add_view(view, route_name="v", renderer="json")

    build_app(setup).get("/v")
    assert ran == ["written"]
    assert len(passes) < 50


def test_finished_callbacks_that_queue_others_still_see_the_sessions():
    ran = []

    def chain(left):
        def callback(request):
            if left:
                request.add_finished_callback(chain(left - 1))
                return
            ran.append(request.session_multi["a"]["k"])

        return callback

    def view(request):
        request.session_multi["a"]["k"] = "written"
        request.add_finished_callback(chain(3))
        return {}

    def setup(config):
        two_namespaces(config)
        config.add_route("v", "/v")
        config.add_view(view, route_name="v", renderer="json")

    build_app(setup).get("/v")
    # the release let each run first: the last saw the session the view wrote
    assert ran == ["written"]


def test_invalidate_leaves_namespaces_the_client_never_had_alone():
    factory_a = CountingFactory("cookie_a")
    factory_b = CountingFactory("cookie_b")

    def setup(config):
        config.register_session_factory("a", factory_a)
        config.register_session_factory("b", factory_b)

    app = build_app(setup)
    response = app.get("/invalidate")
    assert set_cookie_names(response) == []
    assert (factory_a.calls, factory_b.calls) == (0, 0)
    app.post("/s/a", {"value": "1"})
    factory_a.calls = 0
    response = app.get("/invalidate")
    assert (factory_a.calls, factory_b.calls) == (1, 0)
    assert set_cookie_names(response) == ["cookie_a"]
    assert "Max-Age=0" in response.headers["Set-Cookie"]
    assert "cookie_a" not in app.cookies


def test_invalidate_then_write_keeps_the_new_session():
    def view(request):
        request.session_multi.invalidate()
        request.session_multi["a"]["value"] = "after logout"
        return {}

    def setup(config):
        two_namespaces(config)
        config.add_route("v", "/v")
        config.add_view(view, route_name="v", renderer="json")

    app = build_app(setup)
    app.post("/s/a", {"value": "before"})
    response = app.get("/v")
    assert "Max-Age=0" not in response.headers["Set-Cookie"]
    assert app.get("/s/a").json["value"] == "after logout"


def test_invalidate_with_an_exception_view_still_logs_out_the_others():
    def broken(request):
        raise RuntimeError("backend down")

    broken.cookie_name = "cookie_broken"

    def setup(config):
        config.register_session_factory("a", signed_factory("cookie_a"))
        config.register_session_factory("broken", broken)
        config.add_route("strict", "/strict")
        config.add_view(
            lambda r: r.session_multi.invalidate(raise_errors=True), route_name="strict"
        )
        config.add_view(
            lambda exc, request: {"error": str(exc)}, context=RuntimeError, renderer="json"
        )

    app = build_app(setup)
    app.post("/s/a", {"value": "1"})
    app.set_cookie("cookie_broken", "x")
    response = app.get("/strict")
    assert response.json == {"error": "backend down"}
    assert set_cookie_names(response) == ["cookie_a", "cookie_broken"]
    assert app.get("/s/a").json["value"] is None


def test_oversized_cookie_names_the_namespace_size_and_limit(caplog):
    def view(request):
        request.session_multi["big"]["blob"] = "x" * 6000
        return {}

    def setup(config):
        two_namespaces(config)
        config.register_session_factory("big", signed_factory("cookie_big"))
        config.add_route("v", "/v")
        config.add_view(view, route_name="v", renderer="json")

    app = build_app(setup)
    with pytest.raises(ValueError, match="over the 4096-byte limit") as info:
        app.get("/v")
    assert isinstance(info.value, CookieTooLarge)
    assert (info.value.namespace, info.value.cookie_name) == ("big", "cookie_big")
    assert info.value.size > 6000 and info.value.limit == 4096
    assert "namespace 'big'" in str(info.value) and "namespace 'big'" in caplog.text


def test_manager_is_a_read_only_mapping_of_loaded_sessions():
    def view(request):
        manager = request.session_multi
        first = manager["a"]
        copy = manager.copy()
        return {
            "mapping": isinstance(manager, Mapping),
            "dict": isinstance(manager, dict),
            "copy": type(copy) is dict and copy == {"a": first},
            "equal": manager == {"a": first} and manager != {},
            "request": manager.request is request,
        }

    def setup(config):
        two_namespaces(config)
        config.add_route("v", "/v")
        config.add_view(view, route_name="v", renderer="json")

    assert build_app(setup).get("/v").json == {
        "mapping": True,
        "dict": False,
        "copy": True,
        "equal": True,
        "request": True,
    }


def test_new_session_multi_works_without_a_reference_to_the_request():
    config = testing.setUp()
    try:
        config.include("pyramid_session_multi")
        register_session_factory(config, "a", signed_factory("cookie_a"))
        manager = new_session_multi(testing.DummyRequest())
        gc.collect()
        manager["a"]["k"] = "v"
        assert manager["a"]["k"] == "v"
        assert isinstance(manager.request, testing.DummyRequest)
    finally:
        testing.tearDown()


def test_a_manager_kept_past_its_request_says_its_request_is_gone():
    kept = []

    def keep(request):
        kept.append(request.session_multi)
        return {}

    def setup(config):
        register_session_factory(config, "a", signed_factory("cookie_a"))
        config.add_route("keep", "/keep")
        config.add_view(keep, route_name="keep", renderer="json")

    build_app(setup).get("/keep")
    gc.collect()
    (manager,) = kept
    for use in (lambda: manager["a"], lambda: manager.rotate("a"), manager.invalidate):
        with pytest.raises(RuntimeError, match="the request of this manager is gone"):
            use()
