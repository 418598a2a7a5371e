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
