"""Bound namespaces through the real router: signed cookies, Redis and Beaker."""

import itertools
import re
from collections.abc import MutableMapping

import pytest
import webtest
from pyramid import testing
from pyramid.exceptions import ConfigurationError
from pyramid_session_redis import RedisSessionFactory

from pyramid_session_multi.binding import ATTRIBUTE, BINDING_KEY, Binding, settle, token_of
from pyramid_session_multi.events import SessionInvalidated, SessionRejected
from pyramid_session_multi.libraries import PyramidCookieLibrary, SessionLibrary
from tests.support.apps import build_app, build_wsgi, set_cookie_names, signed_factory
from tests.support.backend_app import beaker_file
from tests.support.lifetime_apps import library_factory


def own_invalidate(request):
    request.session_multi[request.matchdict["ns"]].invalidate()
    return {}


def touch(request):
    """Load a namespace and read nothing of it."""
    request.session_multi[request.matchdict["ns"]]
    return {}


def logout_partner_then_read_admin(request):
    # the bound session is loaded, then its partner logs out
    admin = request.session_multi["admin"]
    request.session_multi["main"].invalidate()
    return {"admin": admin.get("value")}


def bound_app(
    rejected,
    main_factory=None,
    admin_factory=None,
    discriminator=None,
    invalidated=None,
    admin_first=False,
):
    def setup(config):
        def main():
            config.register_session_factory(
                "main", main_factory or signed_factory("main"), discriminator=discriminator
            )

        def admin():
            config.register_session_factory(
                "admin", admin_factory or signed_factory("admin"), bound_to="main"
            )

        for register in (admin, main) if admin_first else (main, admin):
            register()
        config.add_subscriber(rejected.append, SessionRejected)
        if invalidated is not None:
            config.add_subscriber(
                lambda event: invalidated.append(event.namespace), SessionInvalidated
            )
        config.add_route("touch", "/touch/{ns}")
        config.add_view(touch, route_name="touch", renderer="json")
        config.add_route("own", "/own-invalidate/{ns}")
        config.add_view(own_invalidate, route_name="own", renderer="json")
        config.add_route("partner_logout", "/partner-logout")
        config.add_view(
            logout_partner_then_read_admin, route_name="partner_logout", renderer="json"
        )

    return webtest.TestApp(build_wsgi(setup))


def log_in(app):
    app.post("/s/main", {"value": "alice"})
    app.post("/s/admin", {"value": "admin mode"})


@pytest.fixture
def rejected():
    return []


def test_a_bound_session_written_beside_its_partner_is_kept(rejected):
    app = bound_app(rejected)
    log_in(app)
    assert app.get("/s/admin").json["value"] == "admin mode"
    assert rejected == []


def test_another_clients_bound_cookie_is_rejected(rejected):
    app = bound_app(rejected)
    log_in(app)
    mallory = webtest.TestApp(app.app)
    mallory.post("/s/main", {"value": "mallory"})
    # alice's admin cookie next to mallory's own main session
    mallory.set_cookie("admin", app.cookies["admin"])
    assert mallory.get("/s/admin").json["value"] is None
    assert [(event.namespace, event.reason) for event in rejected] == [("admin", "binding")]
    # and alice's main cookie with nothing bound is fine for alice still
    assert app.get("/s/admin").json["value"] == "admin mode"


def test_a_bound_cookie_without_any_partner_is_rejected(rejected):
    app = bound_app(rejected)
    log_in(app)
    thief = webtest.TestApp(app.app)
    thief.set_cookie("admin", app.cookies["admin"])
    assert thief.get("/s/admin").json["value"] is None
    assert len(rejected) == 1


def test_logging_out_of_the_partner_rejects_the_bound_session(rejected):
    app = bound_app(rejected)
    log_in(app)
    admin_cookie = app.cookies["admin"]
    app.get("/own-invalidate/main")
    app.set_cookie("admin", admin_cookie)  # kept, or replayed
    assert app.get("/s/admin").json["value"] is None
    assert [event.reason for event in rejected] == ["binding"]


def test_a_partner_logout_in_the_same_request_deletes_the_bound_cookie(rejected):
    invalidated = []
    app = bound_app(rejected, invalidated=invalidated)
    log_in(app)
    response = app.get("/partner-logout")
    assert response.json == {"admin": "admin mode"}  # read before the logout
    admin = [v for k, v in response.headerlist if k == "Set-Cookie" and v.startswith("admin=")]
    assert len(admin) == 1 and "Max-Age=0" in admin[0]
    # the logout ended it: an invalidation, not a false alarm
    assert rejected == []
    assert invalidated == ["admin"]


@pytest.mark.parametrize("registered_first", ["main", "admin"])
def test_an_ordinary_logout_is_no_rejection(rejected, registered_first):
    invalidated = []
    app = bound_app(rejected, invalidated=invalidated, admin_first=registered_first == "admin")
    log_in(app)
    response = app.get("/invalidate")
    assert rejected == []
    assert sorted(invalidated) == ["admin", "main"]
    assert set_cookie_names(response) == ["admin", "main"]
    assert all("Max-Age=0" in v for k, v in response.headerlist if k == "Set-Cookie")


CHAIN = ("account", "admin", "audit")


def chain_app(rejected, order):
    """audit bound to admin bound to account; one view writes all three in ``order``."""

    def write_all(request):
        for namespace in order:
            request.session_multi[namespace]["value"] = namespace
        return {}

    def read_all(request):
        return {ns: request.session_multi[ns].get("value") for ns in CHAIN}

    def setup(config):
        config.register_session_factory("account", signed_factory("account"))
        config.register_session_factory("admin", signed_factory("admin"), bound_to="account")
        config.register_session_factory("audit", signed_factory("audit"), bound_to="admin")
        config.add_subscriber(rejected.append, SessionRejected)
        config.add_route("write_all", "/write-all")
        config.add_view(write_all, route_name="write_all", renderer="json")
        config.add_route("read_all", "/read-all")
        config.add_view(read_all, route_name="read_all", renderer="json")

    return webtest.TestApp(build_wsgi(setup))


@pytest.mark.parametrize("order", list(itertools.permutations(CHAIN)), ids="-".join)
def test_a_chain_written_in_one_request_verifies_on_the_next(rejected, order):
    app = chain_app(rejected, order)
    app.get("/write-all")
    assert app.get("/read-all").json == {ns: ns for ns in CHAIN}
    assert rejected == []
    # and the chain still protects: another client's account breaks it
    mallory = webtest.TestApp(app.app)
    mallory.post("/s/account", {"value": "mallory"})
    mallory.set_cookie("admin", app.cookies["admin"])
    mallory.set_cookie("audit", app.cookies["audit"])
    assert mallory.get("/read-all").json == {"account": "mallory", "admin": None, "audit": None}
    assert sorted(event.namespace for event in rejected) == ["admin", "audit"]


def test_rotating_the_partner_keeps_the_binding(rejected):
    app = bound_app(rejected)
    log_in(app)
    before = app.cookies["main"]
    app.get("/rotate", {"ns": "main"})
    assert app.cookies["main"] != before
    assert app.get("/s/admin").json["value"] == "admin mode"
    app.get("/rotate")
    assert app.get("/s/admin").json["value"] == "admin mode"
    assert rejected == []


def test_reading_an_empty_bound_namespace_writes_nothing(rejected):
    app = bound_app(rejected)
    response = app.get("/s/admin")
    assert response.json["value"] is None
    assert set_cookie_names(response) == []


def test_the_first_write_binds_both_sessions(rejected):
    app = bound_app(rejected)
    response = app.post("/s/admin", {"value": "v"})
    # the partner had no token yet: it gets one, so it is written too
    assert set_cookie_names(response) == ["admin", "main"]
    assert app.get("/s/admin").json["value"] == "v"


def test_a_bound_namespace_exists_only_where_its_partner_does(rejected):
    app = bound_app(rejected, discriminator=lambda request: request.scheme == "https")
    assert app.get("/s/admin").json["session"] is None
    assert app.get("/s/admin", extra_environ={"wsgi.url_scheme": "https"}).json["session"]


def test_server_side_partner_and_bound_session(rejected, redis_db, tmp_path):
    main = RedisSessionFactory(secret="s", cookie_name="main", redis_url=redis_db, timeout=600)
    app = bound_app(rejected, main_factory=main, admin_factory=beaker_file(tmp_path, "admin"))
    log_in(app)
    assert app.get("/s/admin").json["value"] == "admin mode"
    stolen_admin = app.cookies["admin"]
    mallory = webtest.TestApp(app.app)
    mallory.post("/s/main", {"value": "mallory"})
    mallory.set_cookie("admin", stolen_admin)
    assert mallory.get("/s/admin").json["value"] is None
    assert [event.reason for event in rejected] == ["binding"]
    # the rejection destroyed the stored bound session: alice is out of admin too
    assert app.get("/s/admin").json["value"] is None


def test_a_partner_rotated_too_late_ends_its_bound_sessions_with_it(redis_db):
    # rotate() of the partner once its library saved it ends it, as a logout
    # of it would: the namespaces bound to it (a chain too) end with it
    from pyramid.response import Response

    from pyramid_session_multi import RotatedTooLate
    from tests.support.redis_server import redis_keys

    failures, invalidated = [], []

    def write_all(request):
        for namespace in ("main", "admin", "audit"):
            request.session_multi[namespace]["value"] = namespace
        return Response("ok")

    def log_in_late(request):
        write_all(request)

        def log_in(request, response):
            failures.append(request.session_multi.rotate("main"))

        request.add_response_callback(log_in)
        return Response("ok")

    def setup(config):
        for namespace, partner in (("main", None), ("admin", "main"), ("audit", "admin")):
            factory = RedisSessionFactory(
                secret="s", cookie_name=namespace, redis_url=redis_db, timeout=600
            )
            config.register_session_factory(namespace, factory, bound_to=partner)
        config.add_subscriber(invalidated.append, SessionInvalidated)
        for name, view in (("write", write_all), ("late", log_in_late)):
            config.add_route(name, f"/{name}")
            config.add_view(view, route_name=name)

    app = build_app(setup)
    app.get("/write")
    held = dict(app.cookies)
    response = app.get("/late")
    assert list(failures[0]) == ["main"] and isinstance(failures[0]["main"], RotatedTooLate)
    assert sorted(event.namespace for event in invalidated) == ["admin", "audit", "main"]
    assert set_cookie_names(response) == ["admin", "audit", "main"] and not app.cookies
    assert redis_keys(redis_db) == []
    for name, value in held.items():
        app.set_cookie(name, value)
    assert [app.get(f"/s/{ns}").json["value"] for ns in ("main", "admin", "audit")] == [None] * 3


def test_the_token_is_what_the_docs_say(rejected):
    captured = {}

    def peek(request):
        captured.update(
            main=token_of(request.session_multi["main"]),
            admin=token_of(request.session_multi["admin"]),
            seen=sorted(request.session_multi["admin"]),
        )
        return {}

    def setup(config):
        config.register_session_factory("main", signed_factory("main"))
        config.register_session_factory("admin", signed_factory("admin"), bound_to="main")
        config.add_route("peek", "/peek")
        config.add_view(peek, route_name="peek", renderer="json")

    app = build_app(setup)
    app.post("/s/admin", {"value": "v"})
    app.get("/peek")
    assert captured["main"] == captured["admin"]
    # 16 random bytes, as URL-safe text
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", captured["main"])
    # out of the application's sight
    assert captured["seen"] == ["value"]


@pytest.mark.parametrize(
    ("bindings", "message"),
    [
        ({"admin": "nobody"}, "bound_to 'nobody', which is not registered"),
        ({"admin": "admin"}, "loop \\(admin -> admin\\)"),
        ({"admin": "audit", "audit": "admin"}, "loop \\(admin -> audit -> admin\\)"),
    ],
)
def test_bindings_that_cannot_work_are_refused_at_commit(bindings, message):
    def setup(config):
        config.register_session_factory("main", signed_factory("main"))
        for namespace, partner in bindings.items():
            config.register_session_factory(namespace, signed_factory(namespace), bound_to=partner)

    with pytest.raises(ConfigurationError, match=message):
        build_app(setup)


def test_bound_to_must_be_a_namespace_name():
    with pytest.raises(ConfigurationError, match="bound_to is the namespace"):
        build_app(
            lambda config: config.register_session_factory(
                "admin", signed_factory("admin"), bound_to=["main"]
            )
        )


def test_the_binding_check_reads_the_bound_session_without_side_effects(rejected, clock):
    # read through pyramid's accessors, the session would count as used and
    # re-issue its cookie (its reissue_time is 0): the check reads it raw
    app = bound_app(rejected)
    log_in(app)
    clock.at(5)
    response = app.get("/touch/admin")
    assert "admin" not in set_cookie_names(response)
    assert app.get("/s/admin").json["value"] == "admin mode"
    assert rejected == []


class NotADict(MutableMapping):
    """A session of a library the add-on does not know, and not a dict: read
    through its accessors only."""

    def __init__(self, request):
        self.data = {}

    def __getitem__(self, key):
        return self.data[key]

    def __setitem__(self, key, value):
        self.data[key] = value

    def __delitem__(self, key):
        del self.data[key]

    def __iter__(self):
        return iter(self.data)

    def __len__(self):
        return len(self.data)

    def invalidate(self):
        self.data.clear()

    def changed(self):
        pass


def test_a_bound_namespace_of_a_library_with_no_raw_storage_is_refused_naming_it():
    def setup(config):
        config.register_session_factory("main", signed_factory("main"))
        config.register_session_factory("admin", NotADict, bound_to="main", cookie_name="admin")

    app = build_app(setup)
    app.set_cookie("admin", "anything")
    with pytest.raises(TypeError) as raised:
        app.get("/s/admin")
    assert str(raised.value) == (
        "pyramid_session_multi: namespace 'admin' is bound or a partner, but its session "
        "library (unknown) gives no raw storage to keep the binding token in; see "
        "SessionLibrary.raw_storage"
    )


KINDS = ["signed", "nacl", "redis", "beaker"]


def forgery_app(redis_db, tmp_path, partner_kind, bound_kind, rejected):
    """``admin`` (of ``bound_kind``) bound to ``account`` (of ``partner_kind``);
    /form/{ns} stores a client's form with ``session.update()``, /peek tells
    the tokens (what a client reads in a client-side cookie)."""

    def setup(config):
        config.register_session_factory(
            "account", library_factory(partner_kind, redis_db, tmp_path / "p", "account")
        )
        config.register_session_factory(
            "admin",
            library_factory(bound_kind, redis_db, tmp_path / "b", "admin"),
            bound_to="account",
        )
        config.add_subscriber(rejected.append, SessionRejected)

        def form(request):
            session = request.session_multi[request.matchdict["ns"]]
            session.update(request.POST)
            return {key: session[key] for key in request.POST}

        def peek(request):
            return {ns: token_of(request.session_multi[ns]) for ns in ("account", "admin")}

        def read(request):
            session = request.session_multi[request.matchdict["ns"]]
            # beaker's own bookkeeping aside
            return {
                "data": {
                    key: value
                    for key, value in session.items()
                    if not key.startswith("_") or key == BINDING_KEY
                }
            }

        for name, path, view in (
            ("form", "/form/{ns}", form),
            ("peek", "/peek", peek),
            ("read", "/read/{ns}", read),
        ):
            config.add_route(name, path)
            config.add_view(view, route_name=name, renderer="json")

    return webtest.TestApp(build_wsgi(setup))


def cookie_of(app, name):
    return app.cookies[name]


@pytest.mark.parametrize(("partner_kind", "bound_kind"), list(itertools.product(KINDS, KINDS)))
def test_a_token_written_as_application_data_never_binds(
    redis_db, tmp_path, rejected, partner_kind, bound_kind
):
    app = forgery_app(redis_db, tmp_path, partner_kind, bound_kind, rejected)
    # the victim: an account, and an admin session bound to it
    app.post("/form/account", {"user": "victim"})
    app.post("/form/admin", {"secret": "victim's admin data"})
    token = app.get("/peek").json["admin"]
    assert token is not None
    stolen_admin = cookie_of(app, "admin")
    app.get("/invalidate")  # the victim logs out
    # the attacker: his own account, the victim's token posted into it as a form
    attacker = webtest.TestApp(app.app)
    attacker.post("/form/account", {"user": "attacker", BINDING_KEY: token})
    assert attacker.get("/read/account").json["data"][BINDING_KEY] == token
    attacker.set_cookie("admin", stolen_admin)
    rejected.clear()
    assert attacker.get("/read/admin").json["data"] == {}
    if bound_kind in ("signed", "nacl"):
        # a client-side copy outlives the logout: the binding is what ends it
        assert [(event.namespace, event.reason) for event in rejected] == [("admin", "binding")]


@pytest.mark.parametrize("kind", KINDS)
def test_an_application_key_spelled_like_the_binding_key_is_application_data(
    redis_db, tmp_path, rejected, kind
):
    app = forgery_app(redis_db, tmp_path, kind, kind, rejected)
    app.post("/form/account", {"user": "alice", BINDING_KEY: "mine"})
    app.post("/form/admin", {"secret": "s", BINDING_KEY: "also mine"})
    admin = {"secret": "s", BINDING_KEY: "also mine"}
    for more in ("m1", "m2"):  # loaded, then saved again: still the application's
        assert app.get("/read/account").json["data"] == {"user": "alice", BINDING_KEY: "mine"}
        assert app.get("/read/admin").json["data"] == admin
        app.post("/form/admin", {"more": more})
        admin["more"] = more
    peek = app.get("/peek").json
    assert peek["account"] == peek["admin"] and peek["admin"] not in ("mine", "also mine")
    assert rejected == []


def fallback_app(rejected, admin_cookie, fallback_cookie=None):
    """``admin`` bound to ``account``; ``admin`` written to ``admin_cookie``, read
    from ``fallback_cookie`` as its fallback where given (a deploy renaming it)."""

    def setup(config):
        config.register_session_factory("account", signed_factory("account"))
        fallbacks = None if fallback_cookie is None else [signed_factory(fallback_cookie)]
        config.register_session_factory(
            "admin", signed_factory(admin_cookie), bound_to="account", fallbacks=fallbacks
        )
        config.add_subscriber(rejected.append, SessionRejected)

    return webtest.TestApp(build_wsgi(setup))


def test_a_bound_session_migrating_from_a_fallback_keeps_its_binding(rejected):
    before = fallback_app(rejected, "old_admin")
    before.post("/s/account", {"value": "victim"})
    before.post("/s/admin", {"value": "victim's admin"})
    stolen = before.cookies["old_admin"]
    after = fallback_app(rejected, "admin", fallback_cookie="old_admin")
    # beside the account it was written with: it migrates, still bound
    after.set_cookie("account", before.cookies["account"])
    after.set_cookie("old_admin", stolen)
    assert after.get("/s/admin").json["value"] == "victim's admin"
    assert after.get("/s/admin").json["value"] == "victim's admin"
    assert rejected == []
    # beside another client's account: it never binds to it
    attacker = webtest.TestApp(after.app)
    attacker.post("/s/account", {"value": "attacker"})
    attacker.set_cookie("old_admin", stolen)
    assert attacker.get("/s/admin").json["value"] is None
    assert attacker.get("/s/admin").json["value"] is None


class RotatesThroughInvalidate(PyramidCookieLibrary):
    """pyramid's cookie sessions, rotated as an application's library is by
    default: copy the data, ``invalidate()`` (which drops the token), write it back."""

    name = "rotates-through-invalidate"
    rotate = SessionLibrary.rotate


@pytest.mark.parametrize("rotated", ["main", "admin", "main,admin"])
def test_rotating_through_invalidate_keeps_the_binding(rejected, rotated):
    def setup(config):
        config.add_session_library(RotatesThroughInvalidate())
        config.register_session_factory("main", signed_factory("main"))
        config.register_session_factory("admin", signed_factory("admin"), bound_to="main")
        config.add_subscriber(rejected.append, SessionRejected)

    app = webtest.TestApp(build_wsgi(setup))
    log_in(app)
    response = app.get("/rotate", {"ns": rotated})
    assert response.json == {"failed": []}
    assert set(rotated.split(",")) <= set(set_cookie_names(response))
    assert app.get("/s/admin").json["value"] == "admin mode"
    assert app.get("/s/admin").json["value"] == "admin mode"
    assert rejected == []


def test_a_bound_session_logged_out_and_written_again_in_one_request_stays_bound(rejected):
    def setup(config):
        config.register_session_factory("main", signed_factory("main"))
        config.register_session_factory("admin", signed_factory("admin"), bound_to="main")
        config.add_subscriber(rejected.append, SessionRejected)

        def relogin(request):
            admin = request.session_multi["admin"]
            admin.invalidate()
            admin["value"] = "admin again"
            return {}

        config.add_route("relogin", "/relogin")
        config.add_view(relogin, route_name="relogin", renderer="json")

    app = webtest.TestApp(build_wsgi(setup))
    log_in(app)
    app.get("/relogin")
    assert app.get("/s/admin").json["value"] == "admin again"
    # still bound: beside another client's partner it is rejected
    mallory = webtest.TestApp(app.app)
    mallory.post("/s/main", {"value": "mallory"})
    mallory.set_cookie("admin", app.cookies["admin"])
    assert mallory.get("/s/admin").json["value"] is None
    assert [(event.namespace, event.reason) for event in rejected] == [("admin", "binding")]


def test_a_bound_sessions_invalidate_passes_on_what_it_is_given(rejected):
    calls = []
    base = signed_factory("admin")

    class Recording(base):
        """A library whose invalidate() takes arguments of its own."""

        def invalidate(self, *args, **kwargs):
            calls.append((args, kwargs))
            super().invalidate()

    def setup(config):
        config.register_session_factory("main", signed_factory("main"))
        config.register_session_factory("admin", Recording, bound_to="main")

        def logout(request):
            request.session_multi["admin"].invalidate("logout", by="alice")
            return {}

        config.add_route("logout_admin", "/logout-admin")
        config.add_view(logout, route_name="logout_admin", renderer="json")

    app = webtest.TestApp(build_wsgi(setup))
    log_in(app)
    app.get("/logout-admin")
    assert calls == [(("logout",), {"by": "alice"})]
    assert app.get("/s/admin").json["value"] is None


class Slotted(MutableMapping):
    """A session of a library the add-on does not know, with no ``__dict__``."""

    __slots__ = ("data",)

    def __init__(self, request):
        self.data = {}

    def __getitem__(self, key):
        return self.data[key]

    def __setitem__(self, key, value):
        self.data[key] = value

    def __delitem__(self, key):
        del self.data[key]

    def __iter__(self):
        return iter(self.data)

    def __len__(self):
        return len(self.data)

    def invalidate(self):
        self.data.clear()

    def changed(self):
        pass


def test_rotating_a_session_with_no_attributes_of_its_own_keeps_its_data():
    def setup(config):
        config.register_session_factory("cart", Slotted, cookie_name="cart")

        def fill_then_rotate(request):
            session = request.session_multi["cart"]
            session["item"] = "book"
            failed = request.session_multi.rotate("cart")
            return {"failed": sorted(failed), "data": dict(session)}

        config.add_route("fill", "/fill")
        config.add_view(fill_then_rotate, route_name="fill", renderer="json")

    app = build_app(setup)
    assert app.get("/fill").json == {"failed": [], "data": {"item": "book"}}


class ReadsNothingRaw(PyramidCookieLibrary):
    """pyramid's cookie sessions, as an adapter that cannot read data without side effects."""

    name = "reads-nothing-raw"

    def read(self, session):
        return None


def test_a_bound_session_its_library_cannot_read_raw_is_judged_by_its_data(rejected):
    def setup(config):
        config.add_session_library(ReadsNothingRaw())
        config.register_session_factory("main", signed_factory("main"))
        config.register_session_factory("admin", signed_factory("admin"), bound_to="main")
        config.add_subscriber(rejected.append, SessionRejected)

    app = webtest.TestApp(build_wsgi(setup))
    log_in(app)
    assert app.get("/s/admin").json["value"] == "admin mode"
    mallory = webtest.TestApp(app.app)
    mallory.post("/s/main", {"value": "mallory"})
    mallory.set_cookie("admin", app.cookies["admin"])
    assert mallory.get("/s/admin").json["value"] is None
    assert [(event.namespace, event.reason) for event in rejected] == [("admin", "binding")]


def test_a_session_of_a_namespace_neither_bound_nor_partner_carries_no_token():
    def setup(config):
        config.register_session_factory("plain", signed_factory("plain"))
        config.add_route("token", "/token")
        config.add_view(
            lambda request: {"token": token_of(request.session_multi["plain"])},
            route_name="token",
            renderer="json",
        )

    app = build_app(setup)
    app.post("/s/plain", {"value": "v"})
    assert app.get("/token").json == {"token": None}


@pytest.mark.parametrize("loaded", ["session", "partner", "neither"])
def test_settle_refuses_a_session_with_data_the_add_on_did_not_load_beside_its_partner(loaded):
    request = testing.DummyRequest()
    session = signed_factory("admin")(request)
    partner = signed_factory("main")(request)
    session["value"] = "admin mode"
    for name, made in (("session", session), ("partner", partner)):
        if loaded == name:
            made.__dict__[ATTRIBUTE] = Binding(None, made, "a-token")
    assert settle(PyramidCookieLibrary(), session, partner) is False


def test_a_stored_binding_value_that_is_not_text_is_no_token(rejected):
    # before the namespace was bound, the application stored a number under
    # the binding key (nothing concealed it then)
    def unbound(config):
        config.register_session_factory("admin", signed_factory("admin"))

        def store(request):
            request.session_multi["admin"][BINDING_KEY] = 5
            return {}

        config.add_route("store", "/store")
        config.add_view(store, route_name="store", renderer="json")

    before = build_app(unbound)
    before.get("/store")
    app = webtest.TestApp(bound_app(rejected).app, cookiejar=before.cookiejar)
    app.post("/s/main", {"value": "alice"})
    # no data but that: the session belongs; its first write binds it to the partner
    app.post("/s/admin", {"value": "admin mode"})
    assert app.get("/s/admin").json["value"] == "admin mode"
    assert rejected == []


def test_old_data_migrating_into_a_bound_session_keeps_that_sessions_token(rejected):
    def setup(config):
        config.register_session_factory("account", signed_factory("account"))
        config.register_session_factory(
            "admin",
            signed_factory("admin"),
            bound_to="account",
            fallbacks=[signed_factory("old_admin")],
        )
        config.add_subscriber(rejected.append, SessionRejected)

        def clear(request):
            request.session_multi[request.matchdict["ns"]].clear()
            return {}

        config.add_route("clear", "/clear/{ns}")
        config.add_view(clear, route_name="clear", renderer="json")
        config.add_route("own", "/own-invalidate/{ns}")
        config.add_view(own_invalidate, route_name="own", renderer="json")

    app = webtest.TestApp(build_wsgi(setup))
    app.post("/s/account", {"value": "alice"})
    app.post("/s/admin", {"value": "admin mode"})
    app.get("/clear/admin")  # its cookie keeps the token only
    # a cookie of before the deploy that bound admin (nothing in it is a token)
    old = webtest.TestApp(
        build_wsgi(
            lambda config: config.register_session_factory("admin", signed_factory("old_admin"))
        ),
        cookiejar=app.cookiejar,
    )
    old.post("/s/admin", {"value": "from before the deploy"})
    # it migrates into the empty session, which is still bound to this partner
    assert app.get("/s/admin").json["value"] == "from before the deploy"
    assert app.get("/s/admin").json["value"] == "from before the deploy"
    assert rejected == []
    # the same beside a partner that logged out and in again: rejected
    app.get("/clear/admin")
    app.get("/own-invalidate/account")
    app.post("/s/account", {"value": "alice again"})
    old.post("/s/admin", {"value": "from before the deploy"})
    assert app.get("/s/admin").json["value"] is None
    assert [(event.namespace, event.reason) for event in rejected] == [("admin", "binding")]


def test_the_applications_callbacks_never_see_the_binding_token():
    # the token rides in the data only while a library saves: the
    # application's own response and finished callbacks, which run after the
    # add-on's, see its keys alone (no token, no stray key, no None value)
    seen = []

    def write_then_watch(request):
        for name in ("main", "admin"):
            request.session_multi[name]["value"] = name

        def watch(when):
            def callback(request, *response):
                for name in ("main", "admin"):
                    session = request.session_multi[name]
                    seen.append((when, name, dict(session)))

            return callback

        request.add_response_callback(watch("response"))
        request.add_finished_callback(watch("finished"))
        return {}

    def setup(config):
        config.register_session_factory("main", signed_factory("main"))
        config.register_session_factory("admin", signed_factory("admin"), bound_to="main")
        config.add_route("watch", "/watch")
        config.add_view(write_then_watch, route_name="watch", renderer="json")

    app = webtest.TestApp(build_wsgi(setup))
    for _ in range(2):  # new, then loaded from its cookie
        del seen[:]
        app.get("/watch")
        assert sorted(seen) == sorted(
            (when, name, {"value": name})
            for when in ("response", "finished")
            for name in ("main", "admin")
        )
