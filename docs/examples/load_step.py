"""A check of the application's own: an account session belongs to the host it
was made on, so a cookie carried to another of the application's hosts starts
afresh there."""

import os

from pyramid.config import Configurator
from pyramid.session import SignedCookieSessionFactory

ACCOUNT_SECRET = os.environ.get("ACCOUNT_SECRET", "an-account-secret-of-32-bytes-or-more")
PREFS_SECRET = os.environ.get("PREFS_SECRET", "a-prefs-secret-of-32-bytes-or-more-0")


def made_here(work, namespace_config, request, session, partner):
    """A check: ``None`` keeps the session, a reason ends it."""
    host = session.get("host")
    if host is not None and host != request.host:
        return "another host"
    return None


def is_the_account(namespace_config):
    return namespace_config.namespace == "account"


def factory(secret, cookie_name):
    return SignedCookieSessionFactory(
        secret, cookie_name=cookie_name, secure=True, httponly=True, samesite="Lax"
    )


def whoami(request):
    account = request.session_multi["account"]
    account.setdefault("host", request.host)
    return {"made on": account["host"]}


def main(global_config=None, **settings):
    config = Configurator(settings=settings)
    config.include("pyramid_session_multi")
    config.register_session_factory("account", factory(ACCOUNT_SECRET, "account"))
    config.register_session_factory("prefs", factory(PREFS_SECRET, "prefs"))
    config.add_session_load_step(
        "made_here", made_here, check=True, applies=is_the_account, under="validator"
    )
    config.add_route("whoami", "/")
    config.add_view(whoami, route_name="whoami", renderer="json")
    return config.make_wsgi_app()


if __name__ == "__main__":
    app = main()
