"""Cookie-name discovery against the real session libraries."""

import pyramid_beaker
import pytest
from pyramid import testing
from pyramid.exceptions import ConfigurationError
from pyramid.session import BaseCookieSessionFactory, SignedCookieSessionFactory
from pyramid_nacl_session import EncryptedCookieSessionFactory
from pyramid_session_redis import RedisSessionFactory

from pyramid_session_multi.cookies import discover_cookie, discover_cookie_name

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
