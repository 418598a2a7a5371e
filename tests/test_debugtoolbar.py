"""The SessionMulti panel through pyramid_debugtoolbar and WebTest."""

import logging
import re
import time

import pytest
import redis

from pyramid_session_multi.binding import BINDING_KEY
from pyramid_session_multi.debugtoolbar import capture
from tests.support.apps import signed_factory
from tests.support.backend_app import beaker_file, beaker_sql
from tests.support.lifetime_apps import library_factory
from tests.support.toolbar import (
    BadRepr,
    cookie_shape,
    namespaces,
    panel_html,
    text_of,
    toolbar_app,
    toolbar_page,
)

MODES = ["off", "inactive", "active"]


@pytest.fixture
def make(redis_db, tmp_path):
    def make(mode, include=True):
        return toolbar_app(namespaces(redis_db, tmp_path / mode), mode, include=include)

    return make


def write_counts(url):
    client = redis.StrictRedis.from_url(url)
    stats = client.info("commandstats")
    client.close()
    return {
        k: v["calls"]
        for k, v in stats.items()
        if k.split("_", 1)[1] in {"set", "setex", "expire", "del", "pexpire", "getex"}
    }


SCENARIO = [
    ("post", "/s/signed", {"value": "1"}),
    ("post", "/s/redis", {"value": "2"}),
    ("post", "/s/beaker", {"value": "3"}),
    ("sleep", 1.1, None),  # past reissue_time=0: a read re-issues
    ("get", "/touch/signed", None),  # touched, nothing read: no reissue
    ("get", "/touch/redis", None),
    ("get", "/touch/beaker", None),
    ("get", "/plain", None),  # nothing touched
    ("get", "/s/signed", None),  # read: reissued by the app itself
    ("get", "/s/https", None),
    ("get", "/drop", None),  # invalidated: cookie deleted
    ("post", "/s/redis", {"value": "again"}),
]


def run_scenario(app, redis_url):
    outcomes = []
    for method, path, params in SCENARIO:
        if method == "sleep":
            time.sleep(path)
            continue
        before = write_counts(redis_url)
        response = app.post(path, params) if method == "post" else app.get(path)
        writes = {k: v - before.get(k, 0) for k, v in write_counts(redis_url).items()}
        writes = {k: v for k, v in writes.items() if v}
        outcomes.append((path, response.status, response.body, cookie_shape(response), writes))
    return outcomes


def test_zero_side_effects_off_inactive_active(make, redis_db):
    results = {mode: run_scenario(make(mode), redis_db) for mode in MODES}
    for step, off in enumerate(results["off"]):
        for mode in ("inactive", "active"):
            assert results[mode][step] == off, (mode, off[0])
    # the scenario does exercise cookies that a careless read would add
    shapes = {path: shape for path, _, _, shape, _ in results["off"]}
    assert shapes["/touch/signed"] == []
    assert [s[0] for s in shapes["/s/signed"]] == ["signed"]


def test_untouched_namespaces_shown_only_when_active(make):
    for mode, expected in (("inactive", False), ("active", True)):
        app = make(mode)
        app.post("/s/signed", {"value": "kept"})
        app.get("/touch/redis")
        text = text_of(panel_html(app))
        assert "redis accessed by the app" in text
        assert ("signed not accessed by the app" in text) is expected
        assert ("was active" in text) is expected
        if expected:
            assert "'kept'" in text  # read from a detached request


def test_ingress_egress_and_marks(make):
    app = make("inactive")
    app.post("/s/redis", {"value": "first"})
    assert "redis accessed by the app Set-Cookie: set" in text_of(panel_html(app))
    app.post("/s/redis", {"value": "second"})
    text = text_of(panel_html(app))
    assert "'value' changed 'first' 'second'" in text
    assert "redis accessed by the app Set-Cookie: none" in text  # the id cookie stays
    app.post("/s/signed", {"value": "new"})
    assert "'value' added 'new'" in text_of(panel_html(app))


def test_deleted_cookie_and_removed_keys(make):
    app = make("inactive")
    app.post("/s/redis", {"value": "gone soon"})
    app.get("/drop")
    text = text_of(panel_html(app))
    assert "Set-Cookie: deleted" in text
    assert "'value' removed 'gone soon'" in text


def test_cookie_size_against_the_limit(make):
    app = make("inactive")
    response = app.post("/s/signed", {"value": "x" * 100})
    cookie = response.headers["Set-Cookie"].split(";")[0]
    text = text_of(panel_html(app))
    assert f"{len(cookie)} of 4096 bytes" in text


def test_discriminator_result_is_shown(make):
    app = make("inactive")
    app.get("/s/https")
    text = text_of(panel_html(app))
    assert "discriminator returned False" in text and "mounted None" in text


def test_hostile_values_are_escaped_and_contained(make):
    app = make("inactive")
    app.get("/hostile")
    html = panel_html(app)
    assert "<script>alert" not in html
    assert (
        "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
        or "&lt;script&gt;alert(\\&#39;x\\&#39;)&lt;/script&gt;" in html
    )
    assert "repr failed: RuntimeError: no repr for you" in text_of(html)
    assert "100002 characters in all" in text_of(html)
    assert len(html) < 50_000


def test_failing_factory_is_shown_and_the_response_unchanged(redis_db, tmp_path, caplog):
    def broken(request):
        raise ConnectionError("backend unreachable")

    broken.cookie_name = "broken"

    def setup(config):
        namespaces(redis_db, tmp_path)(config)
        config.register_session_factory("broken", broken)

    shapes = {}
    caplog.set_level(logging.ERROR, logger="pyramid_session_multi")
    for mode in MODES:
        app = toolbar_app(setup, mode)
        response = app.post("/s/signed", {"value": "v"})
        shapes[mode] = (response.status, response.json, cookie_shape(response))
        if mode == "active":
            text = text_of(panel_html(app))
            assert "Reading this namespace raised ConnectionError: backend unreachable" in text
            assert "'broken'" in text
    assert shapes["off"] == shapes["inactive"] == shapes["active"]
    # the application never loaded 'broken': only the panel's read failed
    assert [r for r in caplog.records if r.name.startswith("pyramid_session_multi")] == []


class OddSession(dict):
    """A session type the panel's raw reader chokes on (see the test)."""

    def invalidate(self):
        self.clear()


def odd_factory(request):
    return OddSession()


odd_factory.cookie_name = "odd"


def test_a_session_the_panel_cannot_read_never_breaks_the_response(monkeypatch):
    def setup(config):
        config.register_session_factory("odd", odd_factory)

    real_raw_items = capture.raw_items

    def choking_raw_items(library, session):
        if isinstance(session, OddSession):
            raise RuntimeError("storage exploded")
        return real_raw_items(library, session)

    monkeypatch.setattr(capture, "raw_items", choking_raw_items)
    for mode in MODES:
        app = toolbar_app(setup, mode)
        assert app.get("/s/odd").json == {"ns": "odd", "session": "present", "value": None}
        if mode != "off":
            assert "RuntimeError: storage exploded" in text_of(panel_html(app))


def test_failing_discriminator_is_contained(redis_db, tmp_path):
    calls = []

    def picky(request):
        calls.append(request)
        raise ValueError("cannot decide")

    def setup(config):
        config.register_session_factory("picky", signed_factory("picky"), discriminator=picky)

    app = toolbar_app(setup, "active")
    assert app.get("/plain").json == {"plain": True}
    assert "ValueError: cannot decide" in text_of(panel_html(app))


@pytest.mark.parametrize("include", [True, False])
def test_works_with_nothing_registered_or_not_included(include):
    for mode in ("inactive", "active"):
        app = toolbar_app(lambda config: None, mode, include=include)
        assert app.get("/plain").json == {"plain": True}
        text = text_of(panel_html(app))
        if include:
            assert "No namespaces are registered" in text
        else:
            assert 'config.include("pyramid_session_multi")' in text


def test_configuration_table(make):
    app = make("inactive")
    app.get("/plain")
    text = text_of(panel_html(app))
    assert "signed signed pyramid.session.BaseCookieSessionFactory.<locals>.CookieSession" in text
    assert "redis redis pyramid_session_redis.RedisSessionFactory" in text


def test_panel_tab_title(make):
    app = make("inactive")
    app.get("/touch/signed")
    page = toolbar_page(app)
    assert 'id="pDebugPanel-session_multi"' in page
    assert "SessionMulti" in page


class TestCaptureHelpers:
    def test_safe_repr(self):
        assert capture.safe_repr(BadRepr()).startswith("<repr failed: RuntimeError")
        assert capture.safe_repr("a") == "'a'"

    def test_compare_marks(self):
        marks = dict(
            capture.compare({"a": "1", "b": "2", "c": "3"}, {"a": "1", "b": "9", "d": "4"})
        )
        assert marks == {"a": "", "b": "changed", "c": "removed", "d": "added"}

    def test_compare_without_egress_is_unchanged(self):
        assert capture.compare({"a": "1"}, None) == [("a", "")]


def test_introspection_panel_lists_the_namespaces(make):
    app = make("inactive")
    app.get("/plain")
    page = toolbar_page(app)
    text = text_of(page[page.index('id="pDebugPanel-introspection-content"') :])
    assert "Session_multi namespaces" in text  # the panel capitalizes categories
    for namespace in ("signed", "redis", "beaker", "https"):
        assert f"session_multi namespace {namespace}" in text


def test_beaker_bookkeeping_is_hidden_and_a_read_shows_no_change(make):
    app = make("inactive")
    app.post("/s/beaker", {"value": "kept"})
    app.get("/s/beaker")
    text = text_of(panel_html(app))
    assert "'value' 'kept' 'kept'" in text
    for hidden in ("_accessed_time", "_creation_time", "_domain", "_path"):
        assert hidden not in text
    assert "removed" not in text and "changed" not in text and "added" not in text


def test_a_new_beaker_cookie_session_is_shown_as_it_came_in(tmp_path):
    # Beaker's cookie session made without a cookie keeps no copy of what it
    # loaded: reading what came in raised
    import pyramid_beaker

    def setup(config):
        config.register_session_factory(
            "crumbs",
            pyramid_beaker.BeakerSessionFactoryConfig(
                type="cookie", key="crumbs", validate_key="validate-" * 4, invalidate_corrupt=True
            ),
        )

    app = toolbar_app(setup, "inactive")
    app.post("/s/crumbs", {"value": "new"})
    text = text_of(panel_html(app))
    assert "raised" not in text
    assert "'value' added 'new'" in text


def beaker_stores(tmp_path):
    def setup(config):
        config.register_session_factory("file", beaker_file(tmp_path, "file"))
        config.register_session_factory(
            "sql", beaker_sql(f"sqlite:///{tmp_path / 'sessions.sqlite'}", tmp_path, "sql")
        )

    return setup


def test_active_panel_touches_no_beaker_store_for_a_forged_cookie(tmp_path):
    app = toolbar_app(beaker_stores(tmp_path), "active")
    app.set_cookie("file", "f" * 32)
    app.set_cookie("sql", "a" * 32)
    app.get("/plain")
    assert list(tmp_path.iterdir()) == []  # no directory, lock file or database
    text = text_of(panel_html(app))
    assert "file not accessed by the app" in text
    assert "reading it here would touch its store" in text


def test_oversized_cookie_is_flagged_in_the_panel(tmp_path):
    def setup(config):
        config.register_session_factory("small", signed_factory("small"))
        config.register_session_factory("big", signed_factory("big"))

        def fill(request):
            request.session_multi["small"]["v"] = 1
            request.session_multi["big"]["blob"] = "x" * 6000
            return {}

        config.add_route("fill", "/fill")
        config.add_view(fill, route_name="fill", renderer="json")

    app = toolbar_app(setup, "inactive")
    with pytest.raises(ValueError, match="over the 4096-byte limit"):
        app.get("/fill")
    text = text_of(panel_html(app))
    assert "big accessed by the app Set-Cookie: refused, over the size limit" in text
    assert "over the 4096-byte limit" in text
    assert "small accessed by the app Set-Cookie: refused" not in text


def test_deploy_findings_at_the_top_and_beside_each_namespace(make):
    app = make("inactive")
    app.get("/s/redis")
    html = panel_html(app)
    top = html[html.index('id="session-multi-findings"') : html.index("Configuration")]
    assert "psm.W001" in top and "psm.I001" in top  # signed is neither Secure nor server-side
    text = text_of(html)
    assert "redis accessed by the app Set-Cookie: none psm.W001" in text


def test_no_findings_says_so(tmp_path):
    def setup(config):
        config.register_session_factory(
            "good",
            signed_factory("good", secure=True, httponly=True, samesite="Lax", timeout=60),
        )

    settings_app = toolbar_app(setup, "inactive")
    settings_app.app.registry.settings["session_multi.check.silence"] = "psm.I001 psm.W007"
    settings_app.get("/s/good")
    assert 'id="session-multi-no-findings"' in panel_html(settings_app)


def identity_marks(html, namespace):
    start = html.index(f'id="session-multi-{namespace}"')
    header = html[start : html.index("</h5>", start)]
    marks = header.split('session-multi-identity">')[1:]
    return [text_of(mark.split("</span>")[0]) for mark in marks]


def test_rotated_invalidated_and_rejected_are_shown_per_namespace(make):
    app = make("active")
    app.post("/s/redis", {"value": "1"})
    app.post("/s/beaker", {"value": "2"})
    app.get("/rotate", {"ns": "redis"})
    html = panel_html(app)
    assert identity_marks(html, "redis") == ["rotated"]
    assert identity_marks(html, "beaker") == []
    app.get("/invalidate")
    html = panel_html(app)
    assert identity_marks(html, "redis") == ["invalidated"]
    assert identity_marks(html, "beaker") == ["invalidated"]


def test_a_rejected_namespace_is_flagged(redis_db):
    def setup(config):
        config.register_session_factory(
            "picky", signed_factory("picky"), validator=lambda request, session: False
        )

    app = toolbar_app(setup, "active")
    app.get("/s/picky")
    assert identity_marks(panel_html(app), "picky") == ["rejected (validator)"]


def test_the_configuration_names_the_library_and_the_binding(redis_db):
    def setup(config):
        config.register_session_factory("main", signed_factory("main"))
        config.register_session_factory("admin", signed_factory("admin"), bound_to="main")

    app = toolbar_app(setup, "inactive")
    app.get("/plain")
    text = text_of(panel_html(app))
    assert "admin bound to main admin" in text
    assert "pyramid cookie" in text


def test_a_rejected_namespace_shows_what_came_in_and_that_it_was_deleted():
    def setup(config):
        config.register_session_factory(
            "picky",
            signed_factory("picky"),
            validator=lambda request, session: session.get("value") != "forged",
        )

    app = toolbar_app(setup, "active")
    app.post("/s/picky", {"value": "forged"})
    response = app.get("/s/picky")
    assert response.json["value"] is None
    html = panel_html(app)
    assert identity_marks(html, "picky") == ["rejected (validator)"]
    section = text_of(html[html.index('id="session-multi-picky"') :])
    assert "'forged'" in section  # the ingress: what the client sent
    assert "Empty session." not in section.split("SessionMulti")[0]
    assert "deleted" in section


def test_a_cookie_dropped_over_the_limit_stays_marked_refused_and_the_response_is_not_failed():
    def setup(config):
        config.registry.settings.update(
            {"session_multi.cookie_limit": "1000", "session_multi.oversize": "drop"}
        )
        config.register_session_factory("small", signed_factory("small"))
        config.register_session_factory("big", signed_factory("big"))

        def fill(request):
            request.session_multi["small"]["v"] = 1
            request.session_multi["big"]["blob"] = "x" * 2800
            return {}

        config.add_route("fill", "/fill")
        config.add_view(fill, route_name="fill", renderer="json")

    app = toolbar_app(setup, "inactive")
    assert app.get("/fill").status_int == 200
    text = text_of(panel_html(app))
    assert "big accessed by the app Set-Cookie: refused, over the size limit" in text
    assert "not sent, the client keeps its previous cookie (oversize = drop)" in text
    assert "the response failed" not in text
    assert "small accessed by the app Set-Cookie: set" in text


def test_the_configuration_table_shows_each_namespace_s_load_steps():
    def setup(config):
        config.register_session_factory("plain", signed_factory("plain"))
        config.register_session_factory(
            "guarded",
            signed_factory("guarded"),
            validator=lambda request, session: True,
            fallbacks=[signed_factory("old_guarded")],
        )

    app = toolbar_app(setup, "inactive")
    app.get("/plain")
    html = panel_html(app)
    cells = re.findall(r'<td class="session-multi-steps">(.*?)</td>', html, re.S)
    assert [text_of(cell) for cell in cells] == ["", "fallbacks validator"]


def own_psm_keys_app(redis_db, tmp_path, name):
    """One stamped namespace ``ns`` of library ``name``; /mine writes the
    application's own keys spelled like the add-on's records."""

    def setup(config):
        factory = library_factory(name, redis_db, tmp_path, cookie_name="ns")
        config.register_session_factory("ns", factory, idle_timeout=600, absolute_timeout=3600)
        config.register_session_factory("other", signed_factory("other"))

        def mine(request):
            request.session_multi["ns"].update(
                {"_psm_t": "mine-t", "_psm_u": "mine-u", "_psm_x": "mine-x"}
            )
            return {}

        def login(request):
            request.session_multi.rotate(userid="alice")
            request.session_multi["ns"]["value"] = "v"
            return {}

        for route, view in (("mine", mine), ("login", login)):
            config.add_route(route, f"/{route}")
            config.add_view(view, route_name=route, renderer="json")

    return toolbar_app(setup, "active")


@pytest.mark.parametrize("name", ["signed", "nacl", "redis", "beaker"])
def test_the_panel_shows_the_applications_keys_spelled_like_the_add_ons_records(
    redis_db, tmp_path, name
):
    app = own_psm_keys_app(redis_db, tmp_path, name)
    app.get("/login")
    app.get("/mine")
    text = text_of(panel_html(app))
    for value in ("mine-t", "mine-u", "mine-x"):
        assert value in text
    # read again: what came in (and, untouched, what the panel reads by itself)
    app.get("/s/ns")
    text = text_of(panel_html(app))
    assert text.count("mine-t") >= 2  # ingress and egress
    # the add-on's own record is shown apart (the lifetime), never as a key of the data
    assert "'a':" not in text and "alice" in text
    if name == "beaker":
        return  # untouched, the panel leaves beaker's store alone
    # untouched: the panel reads it by itself, as its library stores it
    app.get("/plain")
    text = text_of(panel_html(app))
    assert "mine-t" in text and "mine-u" in text
    assert "'a':" not in text


@pytest.mark.parametrize("name", ["signed", "nacl", "redis"])
def test_the_panel_shows_the_applications_key_spelled_like_the_binding_key(
    redis_db, tmp_path, name
):
    def setup(config):
        config.register_session_factory(
            "account", library_factory(name, redis_db, tmp_path, cookie_name="account")
        )
        config.register_session_factory("admin", signed_factory("admin"), bound_to="account")

        def mine(request):
            for ns in ("account", "admin"):
                request.session_multi[ns].update({BINDING_KEY: f"mine-{ns}"})
            return {}

        config.add_route("mine", "/mine")
        config.add_view(mine, route_name="mine", renderer="json")

    app = toolbar_app(setup, "active")
    app.get("/mine")
    for path in ("/s/admin", "/plain"):  # loaded by the add-on, and read by the panel itself
        app.get(path)
        text = text_of(panel_html(app))
        assert "mine-account" in text and "mine-admin" in text
        assert "'a':" not in text and "'r':" not in text


def test_the_panel_shows_the_current_device(redis_db, tmp_path):
    from pyramid_session_multi.revocation import MemoryRevocationStore
    from tests.support.lifetime_apps import library_factory, login_view
    from tests.support.toolbar import panel_html, text_of, toolbar_app

    store = MemoryRevocationStore()

    def setup(config):
        config.register_session_factory(
            "redis", library_factory("redis", redis_db, tmp_path), absolute_timeout=600
        )
        config.set_revocation_store(store)
        config.add_route("login", "/login")
        config.add_view(login_view, route_name="login", renderer="json")

    app = toolbar_app(setup, "active")
    app.get("/login", {"userid": "alice", "ns": "redis"})
    app.get("/s/redis")
    (device,) = store.devices("alice")
    assert f"this device {device.id}" in text_of(panel_html(app))


def test_the_panel_shows_what_a_save_merged_its_conflicts_and_a_dropped_save(redis_db, tmp_path):
    import webtest

    from tests.support.interleave import Call, Interleaving, set_cookies
    from tests.support.parallel_app import NS, make_wsgi

    settings = {
        "pyramid.includes": "pyramid_debugtoolbar",
        "debugtoolbar.hosts": "127.0.0.1",
        "debugtoolbar.includes": "pyramid_session_multi.debugtoolbar",
        "debugtoolbar.show_on_exc_only": "false",
    }
    wsgi = make_wsgi("redis", redis_db, tmp_path, settings=settings)
    harness = Interleaving(wsgi)
    viewer = webtest.TestApp(wsgi, extra_environ={"REMOTE_ADDR": "127.0.0.1"})

    def marks_of_the_last_request():
        return identity_marks(panel_html(viewer), NS)

    cookies = {NS: set_cookies(harness.one(Call("/write", params={"theme": "plain"})))[NS]}
    harness.run(
        [Call("/write", cookies, params={"k0": "0"}), Call("/write", cookies, params={"k1": "1"})]
    )
    assert marks_of_the_last_request() == ["merged: kept 'k0' of a parallel save"]
    harness.run([Call("/write", cookies, params={"theme": theme}) for theme in ("dark", "light")])
    assert marks_of_the_last_request() == ["conflict: 'theme' changed in parallel too"]
    harness.run([Call("/logout", cookies), Call("/write", cookies, params={"late": "1"})])
    assert marks_of_the_last_request() == ["not saved: it ended in a parallel request"]


def test_an_inactive_panel_formats_nothing_until_it_is_looked_at(monkeypatch):
    def setup(config):
        config.register_session_factory("signed", signed_factory("signed"))

    formatted = []
    real_safe_repr = capture.safe_repr

    def counting_safe_repr(value):
        formatted.append(value)
        return real_safe_repr(value)

    monkeypatch.setattr(capture, "safe_repr", counting_safe_repr)
    app = toolbar_app(setup, "inactive")
    app.post("/s/signed", {"value": "first"})
    app.post("/s/signed", {"value": "second"})
    assert formatted == []  # two requests, data in and out: nothing shown yet
    text = text_of(panel_html(app))
    assert "'value' changed 'first' 'second'" in text
    assert formatted


def test_a_value_changed_in_place_shows_what_came_in():
    def setup(config):
        config.register_session_factory("signed", signed_factory("signed"))

        def append(request):
            session = request.session_multi["signed"]
            items = session.setdefault("items", [])
            items.append(len(items))
            session.changed()
            return {"items": items}

        config.add_route("append", "/append")
        config.add_view(append, route_name="append", renderer="json")

    app = toolbar_app(setup, "inactive")
    app.get("/append")
    assert app.get("/append").json == {"items": [0, 1]}
    assert "'items' changed [0] [0, 1]" in text_of(panel_html(app))


def beaker_append_setup(tmp_path, concurrent_writes, read_first=False):
    """A Beaker namespace ``beaker`` and ``/append``, appending to its list
    ``items`` in place; with ``read_first``, a first read whose
    ``ConnectionError`` (its store down) the view catches."""

    def setup(config):
        config.register_session_factory(
            "beaker", beaker_file(tmp_path, "beaker"), concurrent_writes=concurrent_writes
        )

        def append(request):
            session = request.session_multi["beaker"]
            if read_first:
                try:
                    session.get("items")
                except ConnectionError:
                    pass
            items = session.setdefault("items", [])
            items.append(len(items))
            session.save()
            return {"items": items}

        config.add_route("append", "/append")
        config.add_view(append, route_name="append", renderer="json")

    return setup


@pytest.mark.parametrize("concurrent_writes", ["merge", "overwrite"])
@pytest.mark.parametrize("mode", ["inactive", "active"])
def test_a_beaker_value_changed_in_place_shows_what_came_in(tmp_path, mode, concurrent_writes):
    app = toolbar_app(beaker_append_setup(tmp_path, concurrent_writes), mode)
    app.get("/append")
    assert app.get("/append").json == {"items": [0, 1]}
    assert "'items' changed [0] [0, 1]" in text_of(panel_html(app))


@pytest.mark.parametrize("concurrent_writes", ["merge", "overwrite"])
@pytest.mark.parametrize("mode", ["inactive", "active"])
def test_a_beaker_value_changed_in_place_after_a_failed_load_shows_what_came_in(
    tmp_path, monkeypatch, mode, concurrent_writes
):
    # The store fails at the first load; the application catches it and reads
    # again, which loads: what came in is still the copy taken when it loaded
    from beaker.container import FileNamespaceManager

    failures = []
    real_getitem = FileNamespaceManager.__getitem__

    def failing_once(self, key):
        if failures:
            failures.pop()
            raise ConnectionError("the store is down")
        return real_getitem(self, key)

    monkeypatch.setattr(FileNamespaceManager, "__getitem__", failing_once)
    app = toolbar_app(beaker_append_setup(tmp_path, concurrent_writes, read_first=True), mode)
    app.get("/append")
    failures.append(True)
    assert app.get("/append").json == {"items": [0, 1]}
    assert not failures  # the first load failed
    assert "'items' changed [0] [0, 1]" in text_of(panel_html(app))


@pytest.mark.parametrize("concurrent_writes", ["merge", "overwrite"])
def test_a_beaker_session_the_application_never_read_keeps_nothing_of_the_panel_after_the_request(
    tmp_path, concurrent_writes
):
    # the session object after the request (one a finished callback reads, or
    # the application keeps) is the same with the toolbar off and the panel on
    seen = {}

    def setup(config):
        config.register_session_factory(
            "beaker", beaker_file(tmp_path, "beaker"), concurrent_writes=concurrent_writes
        )

        def write(request):
            request.session_multi["beaker"]["items"] = [0]
            return {}

        def touch(request):
            session = request.session_multi["beaker"]

            def read_later(request):
                seen["attributes"] = sorted(session.__dict__)
                seen["items"] = session.get("items")
                seen["loaded"] = sorted(
                    name for name in session._session().__dict__ if name.startswith("session_")
                )

            request.add_finished_callback(read_later)
            return {}

        for name, view in (("write", write), ("touch", touch)):
            config.add_route(name, f"/{name}")
            config.add_view(view, route_name=name, renderer="json")

    results = {}
    for mode in MODES:
        app = toolbar_app(setup, mode)
        app.get("/write")
        seen.clear()
        app.get("/touch")
        results[mode] = dict(seen)
    assert results["off"]["items"] == [0]
    assert results["inactive"] == results["off"]
    assert results["active"] == results["off"]
