"""Registering namespaces: the directive, dotted names, discriminator, validator."""

from pyramid.config import Configurator
from pyramid.session import SignedCookieSessionFactory


def https_only(request):
    return request.scheme == "https"


def password_unchanged(request, session):
    # a real application compares with the user's current password version
    return session.get("pw_version", 1) == 1


def configure(config: Configurator) -> None:
    config.include("pyramid_session_multi")
    # the directive...
    config.register_session_factory(
        "prefs",
        SignedCookieSessionFactory(
            "prefs-secret-of-32-bytes-or-more!", cookie_name="prefs", secure=True, httponly=True
        ),
    )
    # ...or the function, with the configurator first
    from pyramid_session_multi import register_session_factory

    register_session_factory(
        config,
        "secure",
        SignedCookieSessionFactory(
            "secure-secret-of-32-bytes-or-more", cookie_name="tls", secure=True, httponly=True
        ),
        discriminator=https_only,  # a callable, or "myapp.sessions:https_only"
        validator=password_unchanged,
    )


def main(global_config=None, **settings):
    config = Configurator(settings=settings)
    configure(config)
    config.add_route("home", "/")
    config.add_view(
        lambda request: {
            "theme": request.session_multi["prefs"].get("theme"),
            "secure": request.session_multi["secure"] is not None,
        },
        route_name="home",
        renderer="json",
    )
    return config.make_wsgi_app()
