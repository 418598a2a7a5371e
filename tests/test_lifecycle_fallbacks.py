"""Fallback factories: a new secret or a new store without logging anyone out.

Each test first gives a client a session under the *old* configuration, then
serves it with the new one (the namespace's new factory, the old as a
fallback), on the real libraries and a real redis-server; what is left in
each store is counted.
"""

import binascii
import os
import re

import pyramid_beaker
import pytest
import webtest
from pyramid.config import Configurator
from pyramid.exceptions import ConfigurationError
from pyramid.response import Response
from pyramid.session import SignedCookieSessionFactory
from pyramid_nacl_session import EncryptedCookieSessionFactory
from pyramid_session_redis import RedisSessionFactory

from pyramid_session_multi import Fallback
from pyramid_session_multi.config import build_namespace_config, get_manager_config
from pyramid_session_multi.events import SessionExpired, SessionMigrated
from pyramid_session_multi.libraries.beaker import BEAKER_COOKIE_BOOKKEEPING
from tests.support.apps import build_wsgi, set_cookie_names, signed_factory
from tests.support.backend_app import beaker_file
from tests.support.redis_server import redis_keys
from tests.support.toolbar import panel_html, text_of, toolbar_app

OLD_SECRET = "the-old-secret-0123456789abcdef-0123456789"
NEW_SECRET = "the-new-secret-0123456789abcdef-0123456789"


def serve(namespace, factory, fallbacks=None, setup_more=None, settings=None):
    """An app with one namespace (and its fallbacks), the views of tests.support.apps."""

    def setup(config):
        config.register_session_factory(namespace, factory, fallbacks=fallbacks)
        if setup_more is not None:
            setup_more(config)

    return build_wsgi(setup, settings=settings)


def stored_files(directory):
    return sorted(p for p in directory.rglob("*") if p.is_file() and "lock" not in str(p))


def signed(secret, **kwargs):
    return SignedCookieSessionFactory(secret, cookie_name="prefs", **kwargs)


def nacl(secret):
    return EncryptedCookieSessionFactory(
        binascii.unhexlify(secret), cookie_name="prefs", secure=False
    )


def redis_factory(url, secret, cookie_name="cart"):
    return RedisSessionFactory(secret=secret, cookie_name=cookie_name, redis_url=url, timeout=600)


def beaker_signed_file(directory, secret, key="cart"):
    return pyramid_beaker.BeakerSessionFactoryConfig(
        type="file",
        data_dir=str(directory / "data"),
        lock_dir=str(directory / "lock"),
        key=key,
        secret=secret,
    )


def beaker_cookie(validate_key):
    # a cookie signed with another key is an error to Beaker unless told otherwise
    return pyramid_beaker.BeakerSessionFactoryConfig(
        type="cookie", key="crumbs", validate_key=validate_key, invalidate_corrupt=True
    )


def migrate(old_wsgi, new_wsgi, namespace, value="kept across the change"):
    """Write ``value`` under the old app; return the client moved to the new one."""
    client = webtest.TestApp(old_wsgi)
    client.post(f"/s/{namespace}", {"value": value})
    old_cookies = dict(client.cookies)
    client.app = new_wsgi
    return client, old_cookies


NACL_OLD = binascii.hexlify(os.urandom(32)).decode()
NACL_NEW = binascii.hexlify(os.urandom(32)).decode()


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (lambda: signed(OLD_SECRET), lambda: signed(NEW_SECRET)),
        (lambda: nacl(NACL_OLD), lambda: nacl(NACL_NEW)),
        (lambda: beaker_cookie(OLD_SECRET), lambda: beaker_cookie(NEW_SECRET)),
    ],
    ids=["signed", "nacl", "beaker-cookie"],
)
def test_a_new_secret_for_a_client_side_session_logs_nobody_out(old, new):
    namespace = "prefs"
    client, old_cookies = migrate(
        serve(namespace, old()), serve(namespace, new(), fallbacks=[old()]), namespace
    )
    (cookie_name,) = old_cookies
    response = client.get(f"/s/{namespace}")
    assert response.json["value"] == "kept across the change"
    # written again in this response, under the new secret, though the view only read
    assert set_cookie_names(response) == [cookie_name]
    assert client.cookies[cookie_name] != old_cookies[cookie_name]
    # the new cookie is read by the new factory alone, fallback or not
    client.app = serve(namespace, new())
    assert client.get(f"/s/{namespace}").json["value"] == "kept across the change"
    # and once the fallback is gone, the old cookie is worth nothing
    stranger = webtest.TestApp(serve(namespace, new()))
    stranger.set_cookie(cookie_name, old_cookies[cookie_name])
    assert stranger.get(f"/s/{namespace}").json["value"] is None


def test_a_new_redis_secret_moves_the_data_to_a_new_id_and_deletes_the_old_key(redis_db):
    old_app = serve("cart", redis_factory(redis_db, OLD_SECRET))
    new_app = serve(
        "cart",
        redis_factory(redis_db, NEW_SECRET),
        fallbacks=[redis_factory(redis_db, OLD_SECRET)],
    )
    client, old_cookies = migrate(old_app, new_app, "cart")
    (old_key,) = redis_keys(redis_db)
    response = client.get("/s/cart")
    assert response.json["value"] == "kept across the change"
    assert set_cookie_names(response) == ["cart"]
    keys = redis_keys(redis_db)
    assert len(keys) == 1 and keys != [old_key]  # one key left per session
    assert client.get("/s/cart").json["value"] == "kept across the change"
    replay = webtest.TestApp(new_app)
    replay.set_cookie("cart", old_cookies["cart"])
    assert replay.get("/s/cart").json["value"] is None
    assert len(redis_keys(redis_db)) == 1


def test_a_new_beaker_secret_moves_the_file(tmp_path):
    old_app = serve("cart", beaker_signed_file(tmp_path, OLD_SECRET))
    new_app = serve(
        "cart",
        beaker_signed_file(tmp_path, NEW_SECRET),
        fallbacks=[beaker_signed_file(tmp_path, OLD_SECRET)],
    )
    client, _ = migrate(old_app, new_app, "cart")
    (old_file,) = stored_files(tmp_path / "data")
    assert client.get("/s/cart").json["value"] == "kept across the change"
    files = stored_files(tmp_path / "data")
    assert len(files) == 1 and files != [old_file]
    assert client.get("/s/cart").json["value"] == "kept across the change"


def store_migration_apps(tmp_path, redis_url, setup_more=None):
    old_app = serve("cart", beaker_file(tmp_path, "old_c"))
    new_app = serve(
        "cart",
        redis_factory(redis_url, NEW_SECRET, "cart_c"),
        fallbacks=[beaker_file(tmp_path, "old_c")],
        setup_more=setup_more,
    )
    return old_app, new_app


def test_a_beaker_file_session_moves_to_redis(tmp_path, redis_db):
    migrated = []
    old_app, new_app = store_migration_apps(
        tmp_path, redis_db, lambda config: config.add_subscriber(migrated.append, SessionMigrated)
    )
    client, old_cookies = migrate(old_app, new_app, "cart")
    assert len(stored_files(tmp_path / "old_c")) == 1 and redis_keys(redis_db) == []

    response = client.get("/s/cart")

    assert response.json["value"] == "kept across the change"
    headers = {v.split("=", 1)[0].strip(): v for k, v in response.headerlist if k == "Set-Cookie"}
    assert set(headers) == {"cart_c", "old_c"} and "Max-Age=0" in headers["old_c"]
    assert "old_c" not in client.cookies and "cart_c" in client.cookies
    assert stored_files(tmp_path / "old_c") == [] and len(redis_keys(redis_db)) == 1
    (event,) = migrated
    assert (event.namespace, event.fallback) == ("cart", 1)
    assert "beaker" in event.fallback_description and "old_c" in event.fallback_description
    assert event.old_id_hash is not None
    # from now on the client carries only the current cookie
    assert client.get("/s/cart").json["value"] == "kept across the change"
    assert len(migrated) == 1
    # a replayed old cookie brings nothing back
    replay = webtest.TestApp(new_app)
    replay.set_cookie("old_c", old_cookies["old_c"])
    response = replay.get("/s/cart")
    assert response.json["value"] is None
    assert "cart_c" not in set_cookie_names(response)
    assert len(redis_keys(redis_db)) == 1


def test_a_forged_or_unknown_cookie_matches_no_fallback(tmp_path, redis_db):
    _, new_app = store_migration_apps(tmp_path, redis_db)
    client = webtest.TestApp(new_app)
    for forged in ("0123456789abcdef0123456789abcdef", "garbage!", "x" * 300):
        client.set_cookie("old_c", forged)
        response = client.get("/s/cart")
        assert response.json["value"] is None
        assert "cart_c" not in set_cookie_names(response)
    assert redis_keys(redis_db) == [] and stored_files(tmp_path / "old_c") == []


def test_a_logout_in_the_migrating_request_leaves_nothing_anywhere(tmp_path, redis_db):
    def read_then_logout(request):
        value = request.session_multi["cart"].get("value")
        request.session_multi.invalidate()
        return {"value": value}

    def setup(config):
        config.add_route("logout", "/logout")
        config.add_view(read_then_logout, route_name="logout", renderer="json")

    old_app, new_app = store_migration_apps(tmp_path, redis_db, setup)
    client, _ = migrate(old_app, new_app, "cart")
    response = client.get("/logout")
    assert response.json["value"] == "kept across the change"
    assert all("Max-Age=0" in v for k, v in response.headerlist if k == "Set-Cookie")
    assert set(set_cookie_names(response)) >= {"old_c"}
    assert client.cookies == {}
    assert redis_keys(redis_db) == [] and stored_files(tmp_path / "old_c") == []


def test_rotating_a_migrated_session_keeps_it_and_one_key(tmp_path, redis_db):
    def read_then_rotate(request):
        value = request.session_multi["cart"].get("value")
        request.session_multi.rotate()
        return {"value": value}

    def setup(config):
        config.add_route("login", "/login")
        config.add_view(read_then_rotate, route_name="login", renderer="json")

    old_app, new_app = store_migration_apps(tmp_path, redis_db, setup)
    client, _ = migrate(old_app, new_app, "cart")
    assert client.get("/login").json["value"] == "kept across the change"
    assert client.get("/s/cart").json["value"] == "kept across the change"
    assert len(redis_keys(redis_db)) == 1 and stored_files(tmp_path / "old_c") == []


def test_a_migrated_session_keeps_its_creation_time():
    seen = {}

    def created(request):
        seen[request.params["when"]] = request.session_multi["prefs"].created
        return {}

    def setup(config):
        config.add_route("created", "/created")
        config.add_view(created, route_name="created", renderer="json")

    old_app = serve("prefs", signed(OLD_SECRET), setup_more=setup)
    new_app = serve("prefs", signed(NEW_SECRET), fallbacks=[signed(OLD_SECRET)], setup_more=setup)
    client, _ = migrate(old_app, new_app, "prefs")
    client.app = old_app
    client.get("/created", {"when": "before"})
    client.app = new_app
    client.get("/created", {"when": "after"})
    assert seen["after"] == seen["before"]


def test_fallbacks_are_tried_in_order_until_one_finds_a_session():
    older = "the-oldest-secret-0123456789abcdef-01234567"
    new_app = serve("prefs", signed(NEW_SECRET), fallbacks=[signed(OLD_SECRET), signed(older)])
    for secret in (OLD_SECRET, older):
        client, _ = migrate(serve("prefs", signed(secret)), new_app, "prefs")
        assert client.get("/s/prefs").json["value"] == "kept across the change"


def test_the_panel_marks_a_session_served_from_a_fallback(tmp_path, redis_db):
    def setup(config):
        config.register_session_factory(
            "cart",
            redis_factory(redis_db, NEW_SECRET, "cart_c"),
            fallbacks=[beaker_file(tmp_path, "old_c")],
        )

    client = webtest.TestApp(serve("cart", beaker_file(tmp_path, "old_c")))
    client.post("/s/cart", {"value": "v"})
    app = toolbar_app(setup, "active")
    app.set_cookie("old_c", client.cookies["old_c"])
    app.get("/s/cart")
    text = text_of(panel_html(app))
    assert "moved from fallback 1 (beaker, cookie 'old_c')" in text
    assert "retired fallback 1 (beaker, cookie 'old_c')" in text


@pytest.mark.parametrize(
    ("fallbacks", "message"),
    [
        (lambda own: [own], "the namespace's own factory"),
        (lambda own: [signed(NEW_SECRET)], "has the namespace's own secret"),
        (lambda own: [signed_factory("other")], "reads cookie 'other', which namespace 'other'"),
        (lambda own: [lambda request: None], "wrap it as pyramid_session_multi.Fallback"),
        (lambda own: [Fallback(signed(OLD_SECRET), cookie_name="elsewhere")], "make the two"),
        (lambda own: "pkg.module:factory", "is a list of session factories"),
        (lambda own: [42], "must be a session factory"),
        (lambda own: [signed_factory("session")], "config.set_session_factory"),
        (
            lambda own: ["tests.support.nosuch:factory"],
            r"fallback 1: 'tests.support.nosuch:factory' cannot be imported \(ModuleNotFoundError",
        ),
    ],
    ids=[
        "own",
        "same-secret",
        "clash",
        "no-cookie",
        "cookie-disagrees",
        "str",
        "int",
        "session",
        "unimportable",
    ],
)
def test_fallbacks_that_cannot_work_are_refused(fallbacks, message):
    def setup(config):
        own = signed(NEW_SECRET)
        config.set_session_factory(SignedCookieSessionFactory(NEW_SECRET, cookie_name="session"))
        config.register_session_factory("other", signed_factory("other"))
        config.register_session_factory("prefs", own, fallbacks=fallbacks(own))

    with pytest.raises(ConfigurationError, match=message):
        build_wsgi(setup)


def test_a_fallback_with_an_undiscoverable_cookie_says_it():
    def old_factory(request):
        return SignedCookieSessionFactory(OLD_SECRET, cookie_name="legacy")(request)

    def setup(config):
        config.register_session_factory(
            "prefs", signed(NEW_SECRET), fallbacks=[Fallback(old_factory, cookie_name="legacy")]
        )

    client, _ = migrate(
        serve("x", SignedCookieSessionFactory(OLD_SECRET, cookie_name="legacy")),
        build_wsgi(setup),
        "x",
    )
    response = client.get("/s/prefs")
    assert response.json["value"] == "kept across the change"
    assert "legacy" not in client.cookies


def test_the_directive_resolves_dotted_fallbacks():
    def setup(config):
        config.register_session_factory(
            "prefs",
            signed(NEW_SECRET),
            fallbacks=["tests.support.dotted:old_prefs_factory"],
        )

    client, _ = migrate(serve("prefs", signed(OLD_SECRET)), build_wsgi(setup), "prefs")
    assert client.get("/s/prefs").json["value"] == "kept across the change"


def settings_app(settings):
    return build_wsgi(None, settings={"session_multi.namespaces": "prefs", **settings})


SIGNED_SETTINGS = {
    "session_multi.prefs.factory": "signed",
    "session_multi.prefs.cookie_name": "prefs",
    "session_multi.prefs.secret": NEW_SECRET,
}


def test_secret_fallbacks_from_settings(monkeypatch):
    older = "the-oldest-secret-0123456789abcdef-01234567"
    monkeypatch.setenv("PSM_OLD1", OLD_SECRET)
    monkeypatch.setenv("PSM_OLD2", older)
    new_app = settings_app(
        {**SIGNED_SETTINGS, "session_multi.prefs.secret_fallbacks": "env:PSM_OLD1 env:PSM_OLD2"}
    )
    for secret in (OLD_SECRET, older):
        client, _ = migrate(serve("prefs", signed(secret)), new_app, "prefs")
        assert client.get("/s/prefs").json["value"] == "kept across the change"


def test_secret_fallbacks_for_redis_from_settings(redis_db):
    new_app = build_wsgi(
        None,
        settings={
            "session_multi.namespaces": "cart",
            "session_multi.cart.factory": "redis",
            "session_multi.cart.secret": NEW_SECRET,
            "session_multi.cart.secret_fallbacks": OLD_SECRET,
            "session_multi.cart.cookie_name": "cart",
            "session_multi.cart.redis_url": redis_db,
        },
    )
    client, _ = migrate(serve("cart", redis_factory(redis_db, OLD_SECRET)), new_app, "cart")
    assert client.get("/s/cart").json["value"] == "kept across the change"
    assert len(redis_keys(redis_db)) == 1


def test_a_fallback_store_from_settings(tmp_path, redis_db):
    new_app = build_wsgi(
        None,
        settings={
            "session_multi.namespaces": "cart",
            "session_multi.cart.factory": "redis",
            "session_multi.cart.secret": NEW_SECRET,
            "session_multi.cart.cookie_name": "cart_c",
            "session_multi.cart.redis_url": redis_db,
            "session_multi.cart.fallback.factory": "beaker",
            "session_multi.cart.fallback.type": "file",
            "session_multi.cart.fallback.data_dir": str(tmp_path / "old_c"),
            "session_multi.cart.fallback.lock_dir": str(tmp_path / "old_c-lock"),
            "session_multi.cart.fallback.key": "old_c",
        },
    )
    client, _ = migrate(serve("cart", beaker_file(tmp_path, "old_c")), new_app, "cart")
    assert client.get("/s/cart").json["value"] == "kept across the change"
    assert "old_c" not in client.cookies
    assert stored_files(tmp_path / "old_c") == [] and len(redis_keys(redis_db)) == 1


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"session_multi.prefs.secret_fallbacks": ""}, r"secret_fallbacks names no secret"),
        (
            {"session_multi.prefs.secret_fallbacks": "env:PSM_SURELY_UNSET"},
            r"secret_fallbacks \(secret 1\) = env:PSM_SURELY_UNSET: .* not set",
        ),
        (
            {"session_multi.prefs.secret_fallbacks": "env:PSM_BLANK"},
            r"secret_fallbacks \(secret 1\) = env:PSM_BLANK: .* is empty",
        ),
        ({"session_multi.prefs.secret_fallbacks": "none"}, r"secret_fallbacks\.secret"),
        (
            {"session_multi.prefs.secret_fallbacks": NEW_SECRET},
            r"secret_fallbacks: secret 1 is the namespace's own session_multi\.prefs\.secret",
        ),
        ({"session_multi.prefs.fallback.type": "file"}, r"prefs\.fallback\.factory is missing"),
        (
            {"session_multi.prefs.fallback.factroy": "signed"},
            r"prefs\.fallback\.factory is missing",
        ),
        (
            {
                "session_multi.prefs.fallback.factory": "signed",
                "session_multi.prefs.fallback.secret": OLD_SECRET,
                "session_multi.prefs.fallback.secure": "ture",
            },
            r"session_multi\.prefs\.fallback\.secure",
        ),
        (
            {
                "session_multi.prefs.fallback.factory": "signed",
                "session_multi.prefs.fallback.secret": OLD_SECRET,
                "session_multi.prefs.fallback.cookie_name": "other",
                "session_multi.prefs.fallback.colour": "blue",
            },
            r"session_multi\.prefs\.fallback\.colour",
        ),
        ({"session_multi.prefs.secret_fallback": OLD_SECRET}, r"prefs\.secret_fallback\b"),
        (
            {"session_multi.prefs.secret_fallbacks": f"{OLD_SECRET} env:PSM_OLD_AGAIN"},
            r"secrets 1 and 2 are the same secret",
        ),
    ],
    ids=[
        "empty",
        "unset-env",
        "blank-env",
        "none",
        "own-secret",
        "no-factory",
        "factory-typo",
        "boolean-typo",
        "unknown-option",
        "key-typo",
        "twice",
    ],
)
def test_fallback_settings_mistakes_name_the_key(monkeypatch, extra, message):
    monkeypatch.setenv("PSM_BLANK", "  ")
    monkeypatch.setenv("PSM_OLD_AGAIN", OLD_SECRET)
    monkeypatch.delenv("PSM_SURELY_UNSET", raising=False)
    with pytest.raises(ConfigurationError, match=message):
        settings_app({**SIGNED_SETTINGS, **extra})


def test_a_client_side_migration_is_told_too():
    migrated = []
    new_app = serve(
        "prefs",
        signed(NEW_SECRET),
        fallbacks=[signed(OLD_SECRET)],
        setup_more=lambda config: config.add_subscriber(migrated.append, SessionMigrated),
    )
    client, _ = migrate(serve("prefs", signed(OLD_SECRET)), new_app, "prefs")
    client.get("/s/prefs")
    assert [(event.namespace, event.fallback) for event in migrated] == [("prefs", 1)]
    client.get("/s/prefs")
    assert len(migrated) == 1


@pytest.mark.parametrize(
    ("fallbacks", "message"),
    [
        (
            lambda: [signed(OLD_SECRET, path="/app")],
            "with another path or domain",
        ),
        (lambda: [signed(OLD_SECRET), signed(OLD_SECRET)], "list each old secret once"),
        (
            lambda: [
                pyramid_beaker.BeakerSessionFactoryConfig(
                    type="cookie", key="crumbs", validate_key=OLD_SECRET
                )
            ],
            "invalidate_corrupt=True",
        ),
    ],
    ids=["other-path", "same-secret-twice", "beaker-cookie-strict"],
)
def test_more_fallbacks_that_cannot_work_are_refused(fallbacks, message):
    def setup(config):
        config.register_session_factory("prefs", signed(NEW_SECRET), fallbacks=fallbacks())

    with pytest.raises(ConfigurationError, match=message):
        build_wsgi(setup)


def test_an_old_copy_moved_by_two_requests_is_kept_by_one(redis_db):
    """Two processes, two requests carrying the same old cookie: one copy survives."""

    def new_app(setup_more=None):
        return serve(
            "cart",
            redis_factory(redis_db, NEW_SECRET),
            fallbacks=[redis_factory(redis_db, OLD_SECRET)],
            setup_more=setup_more,
        )

    other_process = new_app()

    def read_while_the_other_moves_it(request):
        value = request.session_multi["cart"].get("value")
        # meanwhile the other process, serving the same old cookie, moves it first
        other = webtest.TestApp(other_process)
        other.set_cookie("cart", request.cookies["cart"])
        assert other.get("/s/cart").json["value"] == "kept across the change"
        return {"value": value}

    def setup(config):
        config.add_route("race", "/race")
        config.add_view(read_while_the_other_moves_it, route_name="race", renderer="json")

    racer, _ = migrate(serve("cart", redis_factory(redis_db, OLD_SECRET)), new_app(setup), "cart")
    response = racer.get("/race")
    assert response.json["value"] == "kept across the change"
    # the late copy is dropped: its cookie deleted, its key gone
    (header,) = [v for k, v in response.headerlist if k == "Set-Cookie"]
    assert "Max-Age=0" in header
    assert "cart" not in racer.cookies
    assert len(redis_keys(redis_db)) == 1  # the other process's copy alone


def test_an_old_copy_whose_new_cookie_is_dropped_is_kept(tmp_path):
    settings = {"session_multi.cookie_limit": "1000", "session_multi.oversize": "drop"}
    new_app = serve(
        "prefs",
        signed(NEW_SECRET),
        fallbacks=[beaker_file(tmp_path, "old_c")],
        settings=settings,
    )
    client, _ = migrate(
        serve("prefs", beaker_file(tmp_path, "old_c")), new_app, "prefs", value="x" * 2000
    )
    response = client.get("/s/prefs")
    assert response.json["value"] == "x" * 2000
    # the new cookie could not go out: the old copy and its cookie stay
    assert set_cookie_names(response) == []
    assert "old_c" in client.cookies and len(stored_files(tmp_path / "old_c")) == 1


def test_a_logout_retires_every_copy_a_fallback_could_still_read(tmp_path, redis_db):
    legacy = SignedCookieSessionFactory(OLD_SECRET, cookie_name="legacy", path="/old")
    old_app = serve("cart", beaker_file(tmp_path, "old_c"))
    new_app = serve(
        "cart",
        redis_factory(redis_db, NEW_SECRET, "cart_c"),
        fallbacks=[beaker_file(tmp_path, "old_c"), legacy],
    )
    before_the_change = webtest.TestApp(old_app)
    before_the_change.post("/s/cart", {"value": "from before the change"})
    client = webtest.TestApp(new_app)
    client.post("/s/cart", {"value": "current"})
    # the client still holds a copy the namespace's own session did not need
    client.set_cookie("old_c", before_the_change.cookies["old_c"])
    copied = dict(client.cookies)
    assert len(stored_files(tmp_path / "old_c")) == 1 and len(redis_keys(redis_db)) == 1

    response = client.get("/invalidate")

    deleted = {
        value.split("=", 1)[0].strip(): value
        for name, value in response.headerlist
        if name == "Set-Cookie" and "Max-Age=0" in value
    }
    assert set(deleted) == {"cart_c", "old_c", "legacy"}
    # a cookie the browser keeps for another path is deleted on that path
    assert "Path=/old" in deleted["legacy"]
    assert "cart_c" not in client.cookies
    assert stored_files(tmp_path / "old_c") == [] and redis_keys(redis_db) == []
    # nothing from before the logout comes back, whatever copy is replayed
    replay = webtest.TestApp(new_app)
    for name, value in copied.items():
        replay.set_cookie(name, value)
    response = replay.get("/s/cart")
    assert response.json["value"] is None
    assert "cart_c" not in set_cookie_names(response)
    assert stored_files(tmp_path / "old_c") == [] and redis_keys(redis_db) == []


@pytest.mark.parametrize(
    "fallback",
    [
        lambda: signed(NEW_SECRET, hashalg="sha256"),
        lambda: SignedCookieSessionFactory(NEW_SECRET, cookie_name="old_prefs"),
        lambda: signed(NEW_SECRET, salt="an.old.salt."),
    ],
    ids=["hash-algorithm", "cookie-name", "salt"],
)
def test_a_fallback_with_the_own_secret_that_reads_something_else_is_accepted(fallback):
    old_app = serve("prefs", fallback())
    new_app = serve("prefs", signed(NEW_SECRET), fallbacks=[fallback()])
    client, _ = migrate(old_app, new_app, "prefs")
    assert client.get("/s/prefs").json["value"] == "kept across the change"


def test_a_new_redis_server_with_the_same_secret_moves_the_sessions(redis_db, own_redis_server):
    import redis as redis_py

    old_server = own_redis_server.url
    client_of_old = redis_py.StrictRedis.from_url(old_server)

    def on_old_server():
        # a client of its own: pyramid_session_redis shares one per registry otherwise
        return RedisSessionFactory(
            secret=NEW_SECRET, cookie_name="cart", timeout=600,
            redis_client_callable=lambda request, **options: client_of_old,
        )  # fmt: skip

    old_app = serve("cart", on_old_server())
    new_app = serve("cart", redis_factory(redis_db, NEW_SECRET), fallbacks=[on_old_server()])
    client, _ = migrate(old_app, new_app, "cart")
    assert len(redis_keys(old_server)) == 1 and redis_keys(redis_db) == []
    assert client.get("/s/cart").json["value"] == "kept across the change"
    assert redis_keys(old_server) == [] and len(redis_keys(redis_db)) == 1
    client_of_old.close()


def test_a_truly_identical_fallback_is_refused(redis_db):
    for own, again in (
        (signed(NEW_SECRET), signed(NEW_SECRET)),
        (redis_factory(redis_db, NEW_SECRET), redis_factory(redis_db, NEW_SECRET)),
    ):
        with pytest.raises(ConfigurationError, match="the namespace's own secret"):
            serve("ns", own, fallbacks=[again])


@pytest.mark.parametrize(
    "option",
    [
        "idle_timeout",
        "absolute_timeout",
        "validator",
        "discriminator",
        "bound_to",
        "secret_fallbacks",
        "fallback.factory",
        "fallback.secret",
    ],
)
def test_every_fallback_setting_is_honoured_or_refused_naming_the_key(option):
    old_store = {
        "session_multi.prefs.fallback.factory": "signed",
        "session_multi.prefs.fallback.secret": OLD_SECRET,
        "session_multi.prefs.fallback.cookie_name": "old_prefs",
    }
    key = f"session_multi.prefs.fallback.{option}"
    with pytest.raises(ConfigurationError, match=re.escape(key)):
        settings_app({**SIGNED_SETTINGS, **old_store, key: "600"})


def test_a_beaker_cookie_namespace_with_a_new_key_answers_old_cookies():
    own_raising = pyramid_beaker.BeakerSessionFactoryConfig(
        type="cookie", key="crumbs", validate_key=NEW_SECRET
    )
    # its own factory would raise on the old cookie: refused, naming the option
    with pytest.raises(ConfigurationError, match="invalidate_corrupt=True"):
        serve("crumbs", own_raising, fallbacks=[beaker_cookie(OLD_SECRET)])
    settings = {
        "session_multi.namespaces": "crumbs",
        "session_multi.crumbs.factory": "beaker",
        "session_multi.crumbs.type": "cookie",
        "session_multi.crumbs.cookie_name": "crumbs",
        "session_multi.crumbs.validate_key": NEW_SECRET,
        "session_multi.crumbs.secret_fallbacks": OLD_SECRET,
    }
    with pytest.raises(ConfigurationError, match=r"session_multi\.crumbs\.invalidate_corrupt"):
        build_wsgi(None, settings=settings)
    # as it asks: old cookies are answered, and move to the new key
    fixed = build_wsgi(
        None, settings={**settings, "session_multi.crumbs.invalidate_corrupt": "true"}
    )
    client, _ = migrate(serve("crumbs", beaker_cookie(OLD_SECRET)), fixed, "crumbs")
    assert client.get("/s/crumbs").json["value"] == "kept across the change"


def test_a_fallback_whose_store_is_down_migrates_nothing_and_keeps_its_cookie(
    redis_db, own_redis_server, caplog
):
    import redis as redis_py

    client_of_old = redis_py.StrictRedis.from_url(own_redis_server.url)

    def on_old_server():
        return RedisSessionFactory(
            secret=OLD_SECRET, cookie_name="old_cart", timeout=600,
            redis_client_callable=lambda request, **options: client_of_old,
        )  # fmt: skip

    old_app = serve("cart", on_old_server())
    new_app = serve("cart", redis_factory(redis_db, NEW_SECRET), fallbacks=[on_old_server()])
    client, old_cookies = migrate(old_app, new_app, "cart")
    own_redis_server.stop()

    response = client.get("/s/cart")

    # the request goes on; nothing moved this time, and the old cookie stays for a retry
    assert response.json["value"] is None
    assert "old_cart" not in set_cookie_names(response)
    assert client.cookies["old_cart"] == old_cookies["old_cart"]
    assert "fallback 1" in caplog.text and "namespace 'cart'" in caplog.text
    assert redis_keys(redis_db) == []
    own_redis_server.start()
    assert client.get("/s/cart").json["value"] == "kept across the change"
    assert redis_keys(own_redis_server.url) == [] and len(redis_keys(redis_db)) == 1
    client_of_old.close()


def test_an_old_secret_equal_to_the_current_one_is_refused_naming_the_key(monkeypatch):
    monkeypatch.setenv("PSM_CURRENT_AGAIN", NEW_SECRET)
    for given in (NEW_SECRET, f"{OLD_SECRET} env:PSM_CURRENT_AGAIN"):
        with pytest.raises(ConfigurationError) as raised:
            settings_app({**SIGNED_SETTINGS, "session_multi.prefs.secret_fallbacks": given})
        message = str(raised.value)
        assert "session_multi.prefs.secret_fallbacks" in message, message
        assert "session_multi.prefs.secret" in message and NEW_SECRET not in message


def test_two_fallbacks_with_one_secret_on_two_stores_are_accepted(tmp_path):
    first = beaker_signed_file(tmp_path / "first", OLD_SECRET, key="old_c")
    second = beaker_signed_file(tmp_path / "second", OLD_SECRET, key="old_c")
    serve("cart", beaker_signed_file(tmp_path / "new", NEW_SECRET), fallbacks=[first, second])
    again = beaker_signed_file(tmp_path / "first", OLD_SECRET, key="old_c")
    with pytest.raises(ConfigurationError, match="list each old secret once"):
        serve("cart", beaker_signed_file(tmp_path / "new", NEW_SECRET), fallbacks=[first, again])


class UnknownLibrarySession(dict):
    """A session of a library the add-on knows nothing of: no creation time."""

    def invalidate(self):
        self.clear()


def unknown_library_factory(request):
    session = UnknownLibrarySession()
    if "old_prefs" in request.cookies:
        session["value"] = "kept across the change"
    return session


def test_a_session_moves_from_a_fallback_of_an_unknown_library():
    app = webtest.TestApp(
        serve(
            "prefs",
            signed(NEW_SECRET),
            fallbacks=[Fallback(unknown_library_factory, cookie_name="old_prefs")],
        )
    )
    app.set_cookie("old_prefs", "a-cookie-of-before")
    response = app.get("/s/prefs")
    assert response.json["value"] == "kept across the change"
    assert any(
        header.startswith("old_prefs=;") and "Max-Age=0" in header
        for header in response.headers.getall("Set-Cookie")
    )
    assert app.get("/s/prefs").json["value"] == "kept across the change"


@pytest.fixture
def old_server(own_redis_server):
    """A Redis factory on a server of its own (the store before the change).

    Its own client: pyramid_session_redis keeps one default client per
    registry, which a second factory with another ``redis_url`` would share.
    """
    import redis as redis_py

    client = redis_py.StrictRedis.from_url(own_redis_server.url, socket_timeout=1)
    yield RedisSessionFactory(
        secret=OLD_SECRET, cookie_name="old_cart", timeout=600,
        redis_client_callable=lambda request, **options: client,
    )  # fmt: skip
    client.close()


def only_a_fallback_reads(kind, tmp_path, own_redis_server, old_server):
    """(old factory, its cookie, a count of what its store holds) for ``kind``."""
    if kind == "redis-server":
        return old_server, "old_cart", lambda: len(redis_keys(own_redis_server.url))
    if kind == "beaker-file":
        return (
            beaker_file(tmp_path, "old_c"),
            "old_c",
            lambda: len(stored_files(tmp_path / "old_c")),
        )
    return signed(OLD_SECRET), "prefs", lambda: 0


@pytest.mark.parametrize("kind", ["redis-server", "beaker-file", "signed"])
def test_a_logout_that_touches_no_namespace_retires_a_copy_only_a_fallback_reads(
    kind, tmp_path, redis_db, own_redis_server, old_server, caplog
):
    old_factory, old_cookie, stored = only_a_fallback_reads(
        kind, tmp_path, own_redis_server, old_server
    )
    new_factory = redis_factory(redis_db, NEW_SECRET, "cart_c")

    def logout(request):
        return {"failed": sorted(request.session_multi.invalidate())}

    def setup(config):
        config.add_route("logout", "/logout")
        config.add_view(logout, route_name="logout", renderer="json")

    new_app = serve("cart", new_factory, fallbacks=[old_factory], setup_more=setup)
    client, old_cookies = migrate(serve("cart", old_factory), new_app, "cart")
    assert set(client.cookies) == {old_cookie}
    assert stored() == (0 if kind == "signed" else 1)

    response = client.get("/logout")

    assert response.json == {"failed": []}
    set_cookies = [v for k, v in response.headerlist if k == "Set-Cookie"]
    assert all("Max-Age=0" in v for v in set_cookies)
    assert old_cookie in {v.split("=", 1)[0] for v in set_cookies}
    assert client.cookies == {}
    assert stored() == 0 and redis_keys(redis_db) == []
    # a normal logout is no race with another request
    assert "claimed by another request" not in caplog.text
    if kind != "signed":  # a signed cookie replayed is the revocation store's to refuse
        replay = webtest.TestApp(new_app)
        replay.set_cookie(old_cookie, old_cookies[old_cookie])
        response = replay.get("/s/cart")
        assert response.json["value"] is None
        assert set_cookie_names(response) == []
        assert stored() == 0 and redis_keys(redis_db) == []


def test_a_namespace_read_after_its_logout_does_not_migrate_again(tmp_path, redis_db):
    def logout_then_read(request):
        request.session_multi.invalidate()
        return {"after": dict(request.session_multi["cart"])}

    def setup(config):
        config.add_route("logout", "/logout")
        config.add_view(logout_then_read, route_name="logout", renderer="json")

    old_app, new_app = store_migration_apps(tmp_path, redis_db, setup)
    client, old_cookies = migrate(old_app, new_app, "cart")

    response = client.get("/logout")

    assert response.json == {"after": {}}
    assert all("Max-Age=0" in v for k, v in response.headerlist if k == "Set-Cookie")
    assert client.cookies == {}
    assert redis_keys(redis_db) == [] and stored_files(tmp_path / "old_c") == []
    replay = webtest.TestApp(new_app)
    replay.set_cookie("old_c", old_cookies["old_c"])
    assert replay.get("/s/cart").json["value"] is None
    assert redis_keys(redis_db) == [] and stored_files(tmp_path / "old_c") == []


def test_a_logout_whose_fallback_store_is_down_reports_it_and_deletes_every_cookie(
    redis_db, own_redis_server, old_server, caplog
):
    def logout(request):
        failures = request.session_multi.invalidate()
        return {"failed": {name: type(exc).__name__ for name, exc in failures.items()}}

    def setup(config):
        config.add_route("logout", "/logout")
        config.add_view(logout, route_name="logout", renderer="json")

    old_factory = old_server
    new_app = serve("cart", redis_factory(redis_db, NEW_SECRET), [old_factory], setup)
    before_the_change = webtest.TestApp(serve("cart", old_factory))
    before_the_change.post("/s/cart", {"value": "from before the change"})
    client = webtest.TestApp(new_app)
    client.post("/s/cart", {"value": "current"})
    client.set_cookie("old_cart", before_the_change.cookies["old_cart"])
    assert len(redis_keys(redis_db)) == 1 and len(redis_keys(own_redis_server.url)) == 1
    own_redis_server.stop()

    response = client.get("/logout")

    # the namespace's own session is gone; the old copy could not be: said, not hidden
    assert list(response.json["failed"]) == ["cart"]
    assert "could not be deleted at logout" in caplog.text
    deleted = {v.split("=", 1)[0] for k, v in response.headerlist if "Max-Age=0" in v}
    assert deleted == {"cart", "old_cart"}
    assert "cart" not in client.cookies and redis_keys(redis_db) == []
    own_redis_server.start()
    # the old store kept its copy: that is what the failure reported
    assert len(redis_keys(own_redis_server.url)) == 1


def test_a_logout_in_the_migrating_request_reports_no_race(
    redis_db, own_redis_server, old_server, caplog
):
    def read_then_logout(request):
        value = request.session_multi["cart"].get("value")
        return {"value": value, "failed": sorted(request.session_multi.invalidate())}

    def setup(config):
        config.add_route("logout", "/logout")
        config.add_view(read_then_logout, route_name="logout", renderer="json")

    new_app = serve("cart", redis_factory(redis_db, NEW_SECRET), [old_server], setup)
    client, _ = migrate(serve("cart", old_server), new_app, "cart")

    response = client.get("/logout")

    assert response.json == {"value": "kept across the change", "failed": []}
    assert redis_keys(redis_db) == [] and redis_keys(own_redis_server.url) == []
    # the logout retired the old copy itself: that is no copy another request took
    assert "claimed by another request" not in caplog.text
    assert "could not be deleted" not in caplog.text


def test_a_namespace_logged_out_unloaded_does_not_migrate_when_read_again():
    calls = []

    def flaky_validator(request, session):
        # down at the logout's load, back when the view reads the namespace
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError("the validator's store is down")
        return True

    def logout_then_read(request):
        failures = request.session_multi.invalidate()
        return {"failed": sorted(failures), "after": dict(request.session_multi["prefs"])}

    def setup(config):
        config.register_session_factory(
            "prefs",
            SignedCookieSessionFactory(NEW_SECRET, cookie_name="prefs_new"),
            fallbacks=[signed(OLD_SECRET)],
            validator=flaky_validator,
        )
        config.add_route("logout", "/logout")
        config.add_view(logout_then_read, route_name="logout", renderer="json")

    client, _ = migrate(serve("prefs", signed(OLD_SECRET)), build_wsgi(setup), "prefs")

    response = client.get("/logout")

    assert len(calls) == 2
    assert response.json == {"failed": [], "after": {}}
    assert all("Max-Age=0" in v for k, v in response.headerlist if k == "Set-Cookie")
    assert client.cookies == {}


def test_a_session_stamped_ahead_of_the_clock_ends_when_it_migrates(clock):
    expired = []

    def timed(factory, fallbacks=None):
        def setup(config):
            config.register_session_factory(
                "prefs", factory, fallbacks=fallbacks, idle_timeout=600, absolute_timeout=3600
            )
            config.add_subscriber(expired.append, SessionExpired)

        return build_wsgi(setup)

    old_app = timed(signed(OLD_SECRET))
    new_app = timed(signed(NEW_SECRET), fallbacks=[signed(OLD_SECRET)])
    clock.at(86400)  # written under a clock a day ahead
    client, _ = migrate(old_app, new_app, "prefs")
    clock.at(700)  # corrected: the old session's stamps are a day in the future
    assert client.get("/s/prefs").json["value"] is None
    assert [(event.namespace, event.reason) for event in expired] == [("prefs", "absolute")]


def test_a_logout_deletes_the_stored_copies_of_every_fallback_the_client_still_carries(
    tmp_path, redis_db
):
    new_app = serve(
        "cart",
        redis_factory(redis_db, NEW_SECRET, "cart_c"),
        fallbacks=[beaker_file(tmp_path, "old_c"), beaker_file(tmp_path, "older_c")],
    )
    client = webtest.TestApp(new_app)
    client.post("/s/cart", {"value": "current"})
    # copies from two changes ago, neither of which the namespace's own session needed
    for key in ("old_c", "older_c"):
        before = webtest.TestApp(serve("cart", beaker_file(tmp_path, key)))
        before.post("/s/cart", {"value": f"from {key}"})
        client.set_cookie(key, before.cookies[key])
        assert len(stored_files(tmp_path / key)) == 1
    response = client.get("/invalidate")
    deleted = {
        value.split("=", 1)[0].strip()
        for name, value in response.headerlist
        if name == "Set-Cookie" and "Max-Age=0" in value
    }
    assert deleted == {"cart_c", "old_c", "older_c"}
    assert stored_files(tmp_path / "old_c") == []
    assert stored_files(tmp_path / "older_c") == []
    assert redis_keys(redis_db) == []


def test_a_dotted_fallback_where_nothing_resolves_names_says_to_pass_the_factory():
    with pytest.raises(
        ConfigurationError,
        match=r"namespace 'prefs': fallback 1 is the dotted name 'tests\.x:old'; pass the "
        r"factory itself, or use the config\.register_session_factory directive",
    ):
        build_namespace_config("prefs", signed(NEW_SECRET), fallbacks=["tests.x:old"])


def test_a_cookie_namespace_whose_only_step_is_its_fallbacks_takes_the_fast_path():
    config = Configurator()
    config.include("pyramid_session_multi")
    old = SignedCookieSessionFactory(OLD_SECRET, cookie_name="old")
    config.register_session_factory(
        "prefs", signed(NEW_SECRET), fallbacks=[signed(OLD_SECRET), old]
    )
    config.register_session_factory(
        "timed",
        SignedCookieSessionFactory(NEW_SECRET, cookie_name="timed"),
        fallbacks=[SignedCookieSessionFactory(OLD_SECRET, cookie_name="old_timed")],
        idle_timeout=600,
    )
    config.commit()
    manager_config = get_manager_config(config.registry)
    prefs, timed = manager_config.get("prefs"), manager_config.get("timed")
    # the migration runs only for a request that may carry a fallback's cookie
    assert prefs.steps == ("fallbacks",) and prefs.plain
    assert prefs.pipeline.fallback_cookies == ("prefs", "old")
    assert "fallbacks" in timed.steps and timed.pipeline.quick
    assert timed.pipeline.fallback_cookies == ("old_timed",)


def test_a_cookie_whose_name_only_contains_a_fallback_s_is_not_read_by_it():
    old = SignedCookieSessionFactory(OLD_SECRET, cookie_name="old")
    new_app = serve("prefs", signed(NEW_SECRET), fallbacks=[old])
    _, old_cookies = migrate(serve("old", old), new_app, "old")
    for name, value in (("bold", None), ("old", "kept across the change")):
        stranger = webtest.TestApp(new_app)
        stranger.set_cookie(name, old_cookies["old"])
        assert stranger.get("/s/prefs").json["value"] == value, name


@pytest.mark.parametrize("bound", [False, True], ids=["alone", "bound"])
@pytest.mark.parametrize("kind", ["cookie", "file"])
def test_a_beaker_session_moved_from_a_fallback_reverts_to_what_moved_in(tmp_path, kind, bound):
    # what moved in is what the session loaded: reverted, the application sees
    # it (a Beaker cookie session wrote the emptied session over the client's
    # old cookie, which carried the only copy), its own keys spelled as the
    # add-on's records with it
    if kind == "cookie":
        old, new = beaker_cookie(OLD_SECRET), beaker_cookie(NEW_SECRET)
    else:
        old, new = beaker_file(tmp_path, "old_c"), beaker_file(tmp_path, "new_c")
    own = {"value": "kept", "_psm_t": "mine"}
    if bound:
        own["_session_multi_binding"] = "also mine"
    seen = []

    def write(request):
        request.session_multi["main"]["seen"] = True
        request.session_multi["crumbs"].update(own)
        return Response("ok")

    def act(request):
        session = request.session_multi["crumbs"]
        session["value"] = "dropped"
        session.revert()
        seen.append(dict(session.items()))
        return Response("ok")

    def app_of(factory, **options):
        def setup(config):
            config.register_session_factory("main", signed_factory("main"))
            config.register_session_factory(
                "crumbs",
                factory,
                idle_timeout=600,
                **options,
                **({"bound_to": "main"} if bound else {}),
            )
            for name, view in (("write", write), ("act", act)):
                config.add_route(name, f"/{name}")
                config.add_view(view, route_name=name)

        return build_wsgi(setup)

    client = webtest.TestApp(app_of(old))
    client.get("/write")
    client.app = app_of(new, fallbacks=[old])
    client.get("/act")
    client.get("/act")
    hidden = BEAKER_COOKIE_BOOKKEEPING
    assert [{k: v for k, v in data.items() if k not in hidden} for data in seen] == [own, own]
    assert client.get("/s/crumbs").json["value"] == "kept"
    # the old file went once the new one was written
    assert len(list(tmp_path.rglob("*.cache"))) == (kind == "file")


def _far_past_old_app(created):
    # a cookie written with the fallback's secret (the one being rotated out)
    def view(request):
        request.session["k"] = "v"
        request.session.created = created
        return Response("ok")

    config = Configurator()
    config.set_session_factory(SignedCookieSessionFactory("old", cookie_name="ca_old"))
    config.add_route("v", "/v")
    config.add_view(view, route_name="v")
    return webtest.TestApp(config.make_wsgi_app())


def _far_past_new_app(options):
    def view(request):
        return Response(repr(dict(request.session_multi["a"])))

    config = Configurator()
    config.include("pyramid_session_multi")
    config.register_session_factory(
        "a",
        SignedCookieSessionFactory("new", cookie_name="ca"),
        fallbacks=[SignedCookieSessionFactory("old", cookie_name="ca_old")],
        **options,
    )
    config.add_route("v", "/v")
    config.add_view(view, route_name="v")
    return webtest.TestApp(config.make_wsgi_app())


@pytest.mark.parametrize(
    "options, kept",
    [({"idle_timeout": 600}, True), ({"idle_timeout": 600, "absolute_timeout": 3600}, False)],
    ids=["idle", "absolute"],
)
def test_a_fallback_cookie_created_in_the_far_past_migrates_or_ends_without_failing(options, kept):
    old = _far_past_old_app(-1e306)
    old.get("/v")
    new = _far_past_new_app(options)
    new.cookiejar = old.cookiejar
    # a forged creation time (with the old secret): ended or kept, never a failed request
    response = new.get("/v")
    assert response.status_int == 200
    assert (response.text == "{'k': 'v'}") is kept
    names = {h.split("=")[0] for h in response.headers.getall("Set-Cookie")}
    assert names == {"ca", "ca_old"}
