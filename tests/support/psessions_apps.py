"""Applications that the psessions tests load from an ini."""

from pyramid.config import Configurator
from pyramid.session import SignedCookieSessionFactory
from pyramid_session_redis import RedisSessionFactory


def with_namespaces(global_config, **settings):
    config = Configurator(settings=settings)
    config.include("pyramid_session_multi")
    config.register_session_factory(
        "prefs",
        SignedCookieSessionFactory(
            "s", cookie_name="prefs", httponly=True, samesite="Lax", max_age=3600
        ),
    )
    config.register_session_factory(
        "account",
        RedisSessionFactory(
            secret="s", cookie_name="account", cookie_secure=True, redis_url="redis://127.0.0.1:1/0"
        ),
        discriminator="tests.support.dotted.only_https",
        validator="tests.support.dotted.always_valid",
    )
    return config.make_wsgi_app()


def included_only(global_config, **settings):
    config = Configurator(settings=settings)
    config.include("pyramid_session_multi")
    return config.make_wsgi_app()


def not_included(global_config, **settings):
    return Configurator(settings=settings).make_wsgi_app()


def badly_configured(global_config, **settings):
    """One namespace with every cookie-attribute problem, one Beaker without a secret."""
    import pyramid_beaker

    config = Configurator(settings=settings)
    config.include("pyramid_session_multi")
    config.register_session_factory(
        "loose", SignedCookieSessionFactory("short", cookie_name="loose", httponly=False)
    )
    config.register_session_factory(
        "fixable",
        pyramid_beaker.BeakerSessionFactoryConfig(type="file", data_dir="/nonexistent", key="fx"),
    )
    return config.make_wsgi_app()


def needs_a_setting(global_config, **settings):
    """An application that cannot start: its ini lacks a setting it reads."""
    config = Configurator(settings=settings)
    config.include("pyramid_session_multi")
    config.register_session_factory(
        "account", RedisSessionFactory(secret="s", redis_url=settings["redis_url"])
    )
    return config.make_wsgi_app()


def with_a_fallback(global_config, **settings):
    config = Configurator(settings=settings)
    config.include("pyramid_session_multi")
    config.register_session_factory(
        "prefs",
        SignedCookieSessionFactory("new-secret", cookie_name="prefs"),
        fallbacks=[SignedCookieSessionFactory("old-secret", cookie_name="old_prefs")],
    )
    return config.make_wsgi_app()


def _validator(request, session):
    return True


_validator.__qualname__ = "checks\x1b[31mred\n2nd\u202e"


def with_control_characters(global_config, **settings):
    """Names and values that would break a terminal's lines if printed raw."""
    config = Configurator(settings=settings)
    config.include("pyramid_session_multi")
    config.register_session_factory(
        "odd\x1b[31mred\r",
        SignedCookieSessionFactory("a-secret-of-at-least-32-bytes-long!", cookie_name="odd"),
        validator=_validator,
    )
    return config.make_wsgi_app()


def with_a_memory_revocation_store(global_config, **settings):
    """Revocations kept in each process: fine in a unit test, not deployed."""
    from pyramid_session_multi.revocation import MemoryRevocationStore

    config = Configurator(settings=settings)
    config.include("pyramid_session_multi")
    config.register_session_factory(
        "account",
        SignedCookieSessionFactory(
            "account-secret-of-at-least-32-bytes",
            cookie_name="account",
            secure=True,
            httponly=True,
            samesite="Lax",
        ),
        idle_timeout=600,
    )
    config.set_revocation_store(MemoryRevocationStore())
    return config.make_wsgi_app()
