"""Cookie-name discovery against the real session libraries, and the rules of cookie names
and of what browsers refuse."""

import pyramid_beaker
import pytest
import webtest
from pyramid import testing
from pyramid.config import Configurator
from pyramid.exceptions import ConfigurationError
from pyramid.session import BaseCookieSessionFactory, SignedCookieSessionFactory
from pyramid_nacl_session import EncryptedCookieSessionFactory
from pyramid_session_redis import RedisSessionFactory

from pyramid_session_multi.cookies import (
    browser_refusal,
    cookie_attribute_problem,
    cookie_name_problem,
    deletion_header,
    deletion_secure,
    discover_cookie,
    discover_cookie_name,
    is_partitioned,
    partitioned,
    sets_new_cookie,
)
from pyramid_session_multi.libraries import PyramidCookieLibrary, SessionLibrary
from tests.support.browser_jar import BrowserJar

NACL_SECRET = b"0" * 32


def test_signed_cookie():
    factory = SignedCookieSessionFactory(
        "s",
        cookie_name="signed",
        secure=True,
        httponly=True,
        samesite="Strict",
        max_age=60,
        path="/app",
        domain="example.org",
    )
    assert discover_cookie(factory) == {
        "name": "signed",
        "secure": True,
        "httponly": True,
        "samesite": "Strict",
        "max_age": 60,
        "path": "/app",
        "domain": "example.org",
    }


def test_base_cookie_session_factory():
    from webob.cookies import SignedSerializer

    factory = BaseCookieSessionFactory(SignedSerializer("s", "salt"), cookie_name="base")
    assert discover_cookie_name(factory) == "base"


def test_nacl_encrypted_cookie():
    factory = EncryptedCookieSessionFactory(NACL_SECRET, cookie_name="nacl", secure=True)
    info = discover_cookie(factory)
    assert info["name"] == "nacl" and info["secure"] is True


def test_redis_session_factory():
    factory = RedisSessionFactory(
        secret="s",
        cookie_name="redis_sid",
        cookie_secure=True,
        cookie_samesite="Lax",
        cookie_max_age=120,
        cookie_domain="example.org",
    )
    info = discover_cookie(factory)
    assert info == {
        "name": "redis_sid",
        "secure": True,
        "httponly": True,
        "samesite": "Lax",
        "max_age": 120,
        "path": "/",
        "domain": "example.org",
    }


def test_beaker_factory_config():
    factory = pyramid_beaker.BeakerSessionFactoryConfig(
        type="memory", key="beaker_sid", secure=True, httponly=True
    )
    info = discover_cookie(factory)
    assert info["name"] == "beaker_sid"
    assert info["secure"] is True and info["httponly"] is True


def test_beaker_default_key():
    factory = pyramid_beaker.BeakerSessionFactoryConfig(type="memory")
    assert discover_cookie_name(factory) == "beaker.session.id"


def test_beaker_from_settings():
    factory = pyramid_beaker.session_factory_from_settings(
        {"session.type": "memory", "session.key": "from_ini", "session.cookie_path": "/x"}
    )
    info = discover_cookie(factory)
    assert info["name"] == "from_ini" and info["path"] == "/x"


def test_plain_attribute():
    def factory(request):
        pass

    factory.cookie_name = "plain"
    assert discover_cookie_name(factory) == "plain"


@pytest.mark.parametrize(
    "factory",
    [
        lambda request: None,
        dict,
        object(),
    ],
)
def test_unknown_factories_have_no_cookie(factory):
    assert discover_cookie(factory) is None


def test_unknown_factory_needs_cookie_name_at_registration():
    config = testing.setUp()
    try:
        config.include("pyramid_session_multi")
        with pytest.raises(ConfigurationError, match="pass cookie_name="):
            config.register_session_factory("x", lambda request: None)
        config.register_session_factory("x", lambda request: None, cookie_name="given")
    finally:
        testing.tearDown()


@pytest.mark.parametrize(
    "make",
    [
        lambda: SignedCookieSessionFactory("s", cookie_name="found"),
        lambda: EncryptedCookieSessionFactory(NACL_SECRET, cookie_name="found"),
        lambda: RedisSessionFactory(secret="s", cookie_name="found"),
        lambda: pyramid_beaker.BeakerSessionFactoryConfig(type="memory", key="found"),
    ],
)
def test_registration_discovers_each_library(make):
    config = testing.setUp()
    try:
        config.include("pyramid_session_multi")
        config.register_session_factory("ns", make())
        from pyramid_session_multi import ISessionMultiManagerConfig

        utility = config.registry.getUtility(ISessionMultiManagerConfig)
        assert utility.get_namespace_cookiename("ns") == "found"
    finally:
        testing.tearDown()


# what makes a cookie unusable, and what browsers refuse: the rules one by one


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("session", None),
        ("my.app-session_1", None),
        ("!#%&'*+-.^_`|~", None),
        ("has space", "a cookie name is letters, digits and !#%&'*+-.^_`|~ only"),
        ("semi;colon", "a cookie name is letters, digits and !#%&'*+-.^_`|~ only"),
        ("", "a cookie name is letters, digits and !#%&'*+-.^_`|~ only"),
        (None, "a cookie name is letters, digits and !#%&'*+-.^_`|~ only"),
        (42, "a cookie name is letters, digits and !#%&'*+-.^_`|~ only"),
        ("Max-Age", "'Max-Age' is a cookie attribute name"),
        ("secure", "'secure' is a cookie attribute name"),
        ("$Version", "a cookie name is letters, digits and !#%&'*+-.^_`|~ only"),
        ("a$b", "a cookie name is letters, digits and !#%&'*+-.^_`|~ only"),
    ],
)
def test_cookie_name_problem_says_why_a_name_cannot_be_a_cookie_name(name, problem):
    assert cookie_name_problem(name) == problem


SAMESITE_NONE = "browsers refuse SameSite=None without Secure; set secure=True or SameSite=Lax"
HOST_SECURE = "browsers refuse a __Host- cookie without Secure; set secure=True"
HOST_DOMAIN = "browsers refuse a __Host- cookie with a Domain; leave the domain unset"
HOST_PATH = "browsers refuse a __Host- cookie whose Path is not /; set path='/'"
SECURE_PREFIX = "browsers refuse a __Secure- cookie without Secure; set secure=True"
PARTITIONED_INSECURE = "browsers refuse a Partitioned cookie without Secure; set secure=True"


@pytest.mark.parametrize(
    ("name", "cookie", "refusal"),
    [
        ("x", {"samesite": "None", "secure": False}, SAMESITE_NONE),
        ("x", {"samesite": "none", "secure": None}, SAMESITE_NONE),
        ("x", {"samesite": "None", "secure": True}, None),
        ("x", {"samesite": "Lax", "secure": False}, None),
        ("x", {"samesite": None, "secure": False}, None),
        ("x", {"secure": False}, None),
        # an attribute that could not be read applies no rule: Secure unknown is not insecure
        ("x", {"samesite": "None"}, None),
        ("__Host-x", {}, None),
        ("__Host-x", {"secure": False}, HOST_SECURE),
        ("__Host-x", {"secure": False, "samesite": "None"}, SAMESITE_NONE),
        ("__Host-x", {"secure": True, "domain": "example.com"}, HOST_DOMAIN),
        ("__Host-x", {"secure": True, "domain": ""}, None),
        ("__Host-x", {"secure": True, "domain": None, "path": "/app"}, HOST_PATH),
        ("__Host-x", {"secure": True, "path": "/"}, None),
        ("__Host-x", {"secure": True, "path": None}, None),
        ("__Host-x", {"secure": True}, None),
        ("__Secure-x", {}, None),
        ("__Secure-x", {"secure": False}, SECURE_PREFIX),
        ("__Secure-x", {"secure": True, "domain": "example.com", "path": "/app"}, None),
        ("x__Host-", {"secure": False}, None),
        ("x", {"partitioned": True, "secure": False}, PARTITIONED_INSECURE),
        ("x", {"partitioned": True}, PARTITIONED_INSECURE),
        ("x", {"partitioned": True, "secure": True}, None),
    ],
)
def test_browser_refusal_applies_each_rule_browsers_apply(name, cookie, refusal):
    assert browser_refusal(name, {"name": name, **cookie}) == refusal


class NamedByAttribute(SessionLibrary):
    """An application's adapter: its factories name their cookie in ``jar``."""

    def claims(self, factory):
        return hasattr(factory, "jar")

    def cookie(self, factory):
        return {"name": factory.jar, "secure": True}


def test_the_applications_own_adapters_are_asked_first():
    def factory(request):  # pragma: no cover - never called
        raise AssertionError

    factory.jar = "from-the-adapter"
    factory.cookie_name = "from-the-attribute"
    assert discover_cookie_name(factory) == "from-the-attribute"
    assert discover_cookie_name(factory, [NamedByAttribute()]) == "from-the-adapter"
    assert discover_cookie(factory, [NamedByAttribute()]) == {
        "name": "from-the-adapter",
        "secure": True,
    }


def test_a_cookie_that_cannot_be_found_has_no_name():
    def factory(request):  # pragma: no cover - never called
        raise AssertionError

    assert discover_cookie(factory) is None
    assert discover_cookie_name(factory) is None


def test_a_factorys_cookie_path_that_is_not_text_is_refused_at_registration():
    config = testing.setUp()
    try:
        config.include("pyramid_session_multi")
        with pytest.raises(ConfigurationError, match=r"cookie path b'/'.*text, not bytes"):
            config.register_session_factory("x", SignedCookieSessionFactory("s", path=b"/"))
    finally:
        testing.tearDown()


NOT_ASCII = "it takes ASCII characters only"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (None, None),
        ("/", None),
        ("/app/x-1_2.~", None),
        ("example.com", None),
        ("", None),
        (b"/", "it is text, not bytes"),
        (7, "it is text, not int"),
        ("/caf\u00e9", NOT_ASCII),
        ("\u0130.example", NOT_ASCII),
        (
            "/; Domain=evil.example",
            "it may not contain ';' (no ';', ',', whitespace or control characters)",
        ),
        ("/a,b", "it may not contain ',' (no ';', ',', whitespace or control characters)"),
        ("/a b", "it may not contain ' ' (no ';', ',', whitespace or control characters)"),
        ("/\r\nX: y", "it may not contain '\\r' (no ';', ',', whitespace or control characters)"),
        ("/\x7f", "it may not contain '\\x7f' (no ';', ',', whitespace or control characters)"),
    ],
)
def test_cookie_attribute_problem_says_why_a_path_or_domain_is_refused(value, problem):
    assert cookie_attribute_problem(value) == problem


@pytest.mark.parametrize(
    ("header", "carries"),
    [
        ("s=v; Path=/; Secure; Partitioned", True),
        ("s=v; Partitioned; Secure", True),
        ("s=v;Partitioned", True),
        ("s=v; Path=/;  partitioned ", True),
        ("s=v; PARTITIONED", True),
        ("s=v; Path=/; Secure", False),
        # the cookie's own name and value are no attribute
        ("Partitioned=1; Path=/", False),
        ("s=Partitioned; Path=/", False),
        ("s=v; Partitioned=no; Path=/", False),
        ("s=v; Path=/Partitioned", False),
    ],
)
def test_is_partitioned_reads_only_the_attribute(header, carries):
    assert is_partitioned(header) is carries


@pytest.mark.parametrize(
    ("header", "result"),
    [
        ("s=v; Path=/; Secure", "s=v; Path=/; Secure; Partitioned"),
        ("Partitioned=1; Secure", "Partitioned=1; Secure; Partitioned"),
        ("s=v; Secure; Partitioned", "s=v; Secure; Partitioned"),
        ("s=v;partitioned; Secure", "s=v;partitioned; Secure"),
    ],
)
def test_partitioned_adds_the_attribute_once(header, result):
    assert partitioned(header) == result


def attributes_of(header):
    pair, *parts = header.split(";")
    return pair.strip(), {
        key.strip().lower(): value.strip()
        for key, _, value in (part.partition("=") for part in parts)
    }


def test_deletion_header_carries_every_attribute_it_is_given():
    pair, attributes = attributes_of(
        deletion_header(
            "__Host-s",
            path="/app",
            domain="example.com",
            secure=True,
            samesite="None",
            partitioned_=True,
        )
    )
    assert pair == "__Host-s="
    assert attributes["max-age"] == "0"
    assert attributes["path"] == "/app"
    assert attributes["domain"] == "example.com"
    assert attributes["samesite"] == "None"
    assert "secure" in attributes and "partitioned" in attributes


def test_deletion_header_leaves_out_what_it_is_not_given():
    _, attributes = attributes_of(
        deletion_header("s", path="/", domain=None, secure=False, samesite=None, partitioned_=False)
    )
    assert set(attributes) == {"max-age", "path", "expires"}


@pytest.mark.parametrize(
    ("name", "cookie", "partitioned_", "secure"),
    [
        ("s", {"secure": True}, False, True),
        ("s", {"secure": False}, False, False),
        ("s", {}, False, False),
        ("s", {"samesite": "Lax"}, False, False),
        ("s", {"samesite": None}, False, False),
        ("s", {"secure": False}, True, True),
        ("__Host-s", {}, False, True),
        ("__Secure-s", {}, False, True),
        ("__Host-s", {"secure": False}, False, True),
        ("__host-s", {}, False, False),
        ("__secure-s", {}, False, False),
        ("s__Host-", {}, False, False),
        ("s", {"samesite": "None"}, False, True),
        ("s", {"samesite": "none"}, False, True),
        ("s", {"samesite": "NONE"}, False, True),
        ("s", {"samesite": b"None"}, False, False),
    ],
)
def test_a_deletion_is_secure_wherever_a_browser_accepts_the_cookie_only_secure(
    name, cookie, partitioned_, secure
):
    assert deletion_secure(name, cookie, partitioned_) is secure


def test_a_fallbacks_deletion_is_secure_only_as_its_cookie_is():
    # fallbacks are never partitioned: a deletion with Secure would be
    # ignored by a browser on an http site
    assert deletion_secure("s", {"secure": False}) is False


class SecureUnread(PyramidCookieLibrary):
    """pyramid's cookie sessions, as an adapter that cannot read ``secure``."""

    name = "secure-unread"

    def cookie(self, factory):
        info = super().cookie(factory)
        info.pop("secure", None)
        return info


def login_logout_app(factory):
    def login(request):
        request.session_multi["ns"]["user"] = "alice"
        return {}

    def logout(request):
        request.session_multi.invalidate()
        return {}

    config = Configurator()
    config.include("pyramid_session_multi")
    config.add_session_library(SecureUnread())
    config.register_session_factory("ns", factory)
    for route, view in (("login", login), ("logout", logout)):
        config.add_route(route, "/" + route)
        config.add_view(view, route_name=route, renderer="json")
    return webtest.TestApp(config.make_wsgi_app())


@pytest.mark.parametrize(
    ("name", "samesite"),
    [
        ("__Host-ns", "Lax"),
        ("__Secure-ns", "Strict"),
        ("ns", "None"),
        ("ns", "none"),
    ],
)
def test_a_logout_deletes_a_cookie_browsers_take_only_secure_when_secure_cannot_be_read(
    name, samesite
):
    factory = SignedCookieSessionFactory("s", cookie_name=name, secure=True, samesite=samesite)
    app = login_logout_app(factory)
    jar = BrowserJar()
    jar.receive(app.get("/login", extra_environ=jar.environ()))
    assert len(jar.named(name)) == 1, jar.ignored
    jar.receive(app.get("/logout", extra_environ=jar.environ()))
    assert jar.named(name) == [] and jar.ignored == []


def test_a_logout_deletes_a_cookie_of_a_domain_with_its_domain_and_samesite():
    factory = SignedCookieSessionFactory(
        "s", cookie_name="ns", secure=True, samesite="None", domain="example.com"
    )
    app = login_logout_app(factory)
    jar = BrowserJar(host="app.example.com")
    jar.receive(app.get("/login", extra_environ=jar.environ()))
    assert [key for key, _ in jar.named("ns")] == [("ns", "example.com", "/", False)]
    logout = app.get("/logout", extra_environ=jar.environ())
    jar.receive(logout)
    assert jar.named("ns") == [] and jar.ignored == []
    # a cross-site frame applies a deletion only with the cookie's SameSite=None
    (deletion,) = logout.headers.getall("Set-Cookie")
    assert attributes_of(deletion)[1]["samesite"] == "None"


def test_a_new_cookie_is_told_by_its_headers_not_their_count():
    before = [("Set-Cookie", "cart=old; Path=/"), ("Vary", "Cookie")]
    assert not sets_new_cookie(before, list(before), "cart")
    # another cookie, or one whose name only begins alike, is not the namespace's
    assert not sets_new_cookie(before, [*before, ("Set-Cookie", "cartx=1")], "cart")
    assert sets_new_cookie(before, [*before, ("Set-Cookie", "cart=new; Path=/")], "cart")
    # rewritten in place: as many headers, another value
    assert sets_new_cookie(before, [("set-cookie", "cart=new; Path=/"), ("Vary", "Cookie")], "cart")
