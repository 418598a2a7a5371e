"""A new secret for the "prefs" namespace, with nobody logged out.

The namespace signs with the new secret; a fallback with the old one reads
what clients still carry, and the namespace writes it again under the new.
"""

import os

from pyramid.config import Configurator
from pyramid.session import SignedCookieSessionFactory

NEW_SECRET = os.environ.get("PREFS_SECRET", "a-new-secret-of-32-bytes-or-more-0123")
OLD_SECRET = os.environ.get("PREFS_OLD_SECRET", "the-old-secret-of-32-bytes-or-more-01")


def prefs_factory(secret):
    return SignedCookieSessionFactory(
        secret, cookie_name="prefs", secure=True, httponly=True, samesite="Lax"
    )


def theme(request):
    return {"theme": request.session_multi["prefs"].get("theme")}


def main(global_config=None, **settings):
    config = Configurator(settings=settings)
    config.include("pyramid_session_multi")
    config.register_session_factory(
        "prefs", prefs_factory(NEW_SECRET), fallbacks=[prefs_factory(OLD_SECRET)]
    )
    config.add_route("theme", "/")
    config.add_view(theme, route_name="theme", renderer="json")
    return config.make_wsgi_app()


if __name__ == "__main__":
    app = main()
