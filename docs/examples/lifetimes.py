"""Session lifetimes, a login that records its user, and signing out everywhere."""

import os

from pyramid.config import Configurator
from pyramid.httpexceptions import HTTPSeeOther
from pyramid.session import JSONSerializer, SignedCookieSessionFactory
from pyramid_session_redis import RedisSessionFactory


def configure(config, redis_url):
    config.register_session_factory(
        "account",
        RedisSessionFactory(
            secret=os.environ.get("ACCOUNT_SECRET", "account-secret-of-32-bytes-or-more"),
            cookie_name="account",
            cookie_secure=True,
            cookie_httponly=True,
            cookie_samesite="Lax",
            redis_url=redis_url,
            redis_socket_timeout=2,
            timeout=None,  # the add-on's timeouts decide
        ),
        idle_timeout=30 * 60,
        absolute_timeout=8 * 60 * 60,
    )
    config.register_session_factory(
        "prefs",
        SignedCookieSessionFactory(
            os.environ.get("PREFS_SECRET", "prefs-secret-of-32-bytes-or-more!!"),
            cookie_name="prefs",
            secure=True,
            httponly=True,
            serializer=JSONSerializer(),
            timeout=None,
            reissue_time=None,
        ),
        idle_timeout=7 * 24 * 60 * 60,  # unused for a week: forgotten
        absolute_timeout=30 * 24 * 60 * 60,
    )


def login(request):
    userid = request.POST["userid"]  # once the password was checked
    request.session_multi.rotate(userid=userid)
    request.session_multi["account"]["userid"] = userid
    return HTTPSeeOther("/")


def sign_out_other_devices(request):
    userid = request.session_multi["account"].get("userid")
    if userid is not None:
        request.session_multi.revoke(userid, keep_current=True)
    return HTTPSeeOther("/")


def whoami(request):
    return {"userid": request.session_multi["account"].get("userid")}


def main(global_config=None, redis_url="redis://127.0.0.1:6379/0", **settings):
    """The application. Its settings: ``redis_url``, the Redis server of
    ``account``; ``session_multi.revocations``, the revocation store every
    process shares (``redis://...``), without which ``revoke()`` is refused.
    """
    config = Configurator(settings=settings)
    config.include("pyramid_session_multi")
    configure(config, redis_url)
    config.add_route("login", "/login")
    config.add_view(login, route_name="login", request_method="POST")
    config.add_route("others", "/sign-out-other-devices")
    config.add_view(sign_out_other_devices, route_name="others", request_method="POST")
    config.add_route("whoami", "/whoami")
    config.add_view(whoami, route_name="whoami", renderer="json")
    return config.make_wsgi_app()
