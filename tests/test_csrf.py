"""NamespaceCSRFStoragePolicy with check_csrf_token and require_csrf views."""

import pytest
from pyramid.csrf import check_csrf_token, get_csrf_token

from pyramid_session_multi import NamespaceCSRFStoragePolicy
from pyramid_session_multi.csrf import CSRFNamespaceUnavailable
from tests.support.apps import build_app, set_cookie_names, signed_factory


def csrf_setup(config):
    config.register_session_factory(
        "secure",
        signed_factory("secure_cookie"),
        discriminator=lambda request: request.scheme == "https",
    )
    config.set_csrf_storage_policy(NamespaceCSRFStoragePolicy("secure"))
    config.set_default_csrf_options(require_csrf=True)
    config.add_route("token", "/token")
    config.add_view(
        lambda request: {"token": get_csrf_token(request)}, route_name="token", renderer="json"
    )
    config.add_route("protected", "/protected")
    config.add_view(
        lambda request: {"ok": True}, route_name="protected", renderer="json", request_method="POST"
    )
    config.add_route("manual", "/manual")
    config.add_view(
        lambda request: {"ok": check_csrf_token(request, raises=False)},
        route_name="manual",
        renderer="json",
        require_csrf=False,
    )


HTTPS = {"wsgi.url_scheme": "https", "HTTP_HOST": "example.com"}


@pytest.fixture
def app():
    return build_app(csrf_setup)


def test_token_lives_in_the_namespace(app):
    response = app.get("/token", extra_environ=HTTPS)
    assert set_cookie_names(response) == ["secure_cookie"]
    token = response.json["token"]
    assert app.get("/token", extra_environ=HTTPS).json["token"] == token
    assert app.get("/s/secure", extra_environ=HTTPS).json["session"] == "present"


def test_require_csrf_accepts_the_token_and_refuses_others(app):
    token = app.get("/token", extra_environ=HTTPS).json["token"]
    headers = {"Referer": "https://example.com/"}
    ok = app.post("/protected", {"csrf_token": token}, extra_environ=HTTPS, headers=headers)
    assert ok.json == {"ok": True}
    app.post(
        "/protected", {"csrf_token": "wrong"}, extra_environ=HTTPS, headers=headers, status=400
    )
    app.post("/protected", {}, extra_environ=HTTPS, headers=headers, status=400)


def test_check_csrf_token(app):
    token = app.get("/token", extra_environ=HTTPS).json["token"]
    assert app.post("/manual", {"csrf_token": token}, extra_environ=HTTPS).json == {"ok": True}
    assert app.post("/manual", {"csrf_token": "x"}, extra_environ=HTTPS).json == {"ok": False}


def test_discriminated_namespace_gives_a_clear_error(app):
    with pytest.raises(CSRFNamespaceUnavailable, match="'secure'"):
        app.get("/token")
    # checking a token with nowhere to keep one fails as a bad token
    app.post("/protected", {"csrf_token": "anything"}, status=400)
    assert app.post("/manual", {"csrf_token": "x"}).json == {"ok": False}


def test_new_token_replaces_the_old_one():
    def setup(config):
        csrf_setup(config)

        def rotate(request):
            policy = NamespaceCSRFStoragePolicy("secure")
            old = policy.get_csrf_token(request)
            new = policy.new_csrf_token(request)
            return {
                "changed": old != new,
                "stored": request.session_multi["secure"]["_csrft_"] == new,
            }

        config.add_route("rotate", "/rotate")
        config.add_view(rotate, route_name="rotate", renderer="json")

    assert build_app(setup).get("/rotate", extra_environ=HTTPS).json == {
        "changed": True,
        "stored": True,
    }


def login_setup(policy, library="signed", redis_url=None):
    def setup(config):
        if library == "redis":
            from pyramid_session_redis import RedisSessionFactory

            factory = RedisSessionFactory(secret="s", cookie_name="acct", redis_url=redis_url)
        else:
            factory = signed_factory("acct")
        config.register_session_factory("account", factory)
        config.set_csrf_storage_policy(policy)
        config.add_route("token", "/token")
        config.add_view(
            lambda request: {"token": get_csrf_token(request)}, route_name="token", renderer="json"
        )

        def login(request):
            request.session_multi.rotate()
            request.session_multi["account"]["user"] = "victim"
            return {}

        config.add_route("login", "/login")
        config.add_view(login, route_name="login", renderer="json")
        config.add_route("keys", "/keys")
        config.add_view(
            lambda request: sorted(request.session_multi["account"]),
            route_name="keys",
            renderer="json",
        )

    return setup


@pytest.mark.parametrize("library", ["signed", "redis"])
def test_a_csrf_token_planted_before_login_is_worth_nothing_after(library, redis_db):
    setup = login_setup(NamespaceCSRFStoragePolicy("account"), library, redis_db)
    attacker = build_app(setup)
    planted = attacker.get("/token").json["token"]
    victim = build_app(setup)
    victim.set_cookie("acct", attacker.cookies["acct"])  # the attacker's cookie, planted
    assert victim.get("/token").json["token"] == planted
    victim.get("/login")
    after = victim.get("/token").json["token"]
    assert after != planted and len(after) == len(planted)


def test_new_token_on_rotate_false_keeps_the_token_through_login():
    setup = login_setup(NamespaceCSRFStoragePolicy("account", new_token_on_rotate=False))
    app = build_app(setup)
    token = app.get("/token").json["token"]
    app.get("/login")
    assert app.get("/token").json["token"] == token


def test_a_rotation_without_a_token_makes_none():
    app = build_app(login_setup(NamespaceCSRFStoragePolicy("account")))
    app.get("/login")
    assert app.get("/keys").json == ["user"]


def test_a_token_planted_through_a_fallback_cookie_is_replaced_at_login(tmp_path, redis_db):
    from pyramid_session_redis import RedisSessionFactory

    from tests.support.backend_app import beaker_file

    def with_token_view(config):
        config.set_csrf_storage_policy(NamespaceCSRFStoragePolicy("cart"))
        config.add_route("token", "/token")
        config.add_view(
            lambda request: {"token": get_csrf_token(request)}, route_name="token", renderer="json"
        )

    def before_the_change(config):
        config.register_session_factory("cart", beaker_file(tmp_path, "old_c"))
        with_token_view(config)

    def login(request):
        request.session_multi.rotate(userid="victim")
        request.session_multi["cart"]["userid"] = "victim"
        return {"token": get_csrf_token(request)}

    def after_the_change(config):
        new = RedisSessionFactory(secret="s" * 40, cookie_name="cart_c", redis_url=redis_db)
        config.register_session_factory("cart", new, fallbacks=[beaker_file(tmp_path, "old_c")])
        with_token_view(config)
        config.add_route("login", "/login")
        config.add_view(login, route_name="login", renderer="json")

    attacker = build_app(before_the_change)
    planted = attacker.get("/token").json["token"]
    victim = build_app(after_the_change)
    victim.set_cookie("old_c", attacker.cookies["old_c"])

    token = victim.get("/login").json["token"]

    assert token != planted
    # the session moved, and the planted copy is gone from the old store
    assert victim.get("/token").json["token"] == token
    assert victim.get("/s/cart").json["session"] == "present"
    assert [p for p in (tmp_path / "old_c").rglob("*") if p.is_file()] == []
