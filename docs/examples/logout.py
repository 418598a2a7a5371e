"""Logging out of every namespace, even when one store is down."""

import logging

from pyramid.config import Configurator
from pyramid.httpexceptions import HTTPSeeOther
from pyramid.session import SignedCookieSessionFactory

log = logging.getLogger(__name__)


def logout(request):
    failures = request.session_multi.invalidate()
    if failures:
        # Already logged by pyramid_session_multi; the client's cookies for
        # these namespaces are deleted all the same.
        log.warning("logout incomplete for %s", ", ".join(sorted(failures)))
    return HTTPSeeOther("/")


def main(global_config=None, **settings):
    config = Configurator(settings=settings)
    config.include("pyramid_session_multi")
    config.register_session_factory(
        "prefs",
        SignedCookieSessionFactory(
            "prefs-secret-of-32-bytes-or-more!", cookie_name="p", secure=True, httponly=True
        ),
    )
    config.add_route("logout", "/logout")
    config.add_view(logout, route_name="logout", request_method="POST")
    return config.make_wsgi_app()
