"""Pyramid's CSRF token kept in one namespace."""

from pyramid.config import Configurator
from pyramid.csrf import get_csrf_token
from pyramid.session import SignedCookieSessionFactory

from pyramid_session_multi import NamespaceCSRFStoragePolicy


def main(global_config=None, **settings):
    config = Configurator(settings=settings)
    config.include("pyramid_session_multi")
    config.register_session_factory(
        "account",
        SignedCookieSessionFactory(
            "account-secret-of-32-bytes-or-more", cookie_name="acct", secure=True, httponly=True
        ),
    )
    config.set_csrf_storage_policy(NamespaceCSRFStoragePolicy("account"))
    config.set_default_csrf_options(require_csrf=True)
    config.add_route("form", "/form")
    config.add_view(
        lambda request: {"token": get_csrf_token(request)},
        route_name="form",
        request_method="GET",
        renderer="json",
    )
    config.add_view(
        lambda request: {"saved": True}, route_name="form", request_method="POST", renderer="json"
    )
    return config.make_wsgi_app()
