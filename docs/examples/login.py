"""Logging in safely: a Pyramid 2 security policy that rotates and invalidates."""

from pyramid.config import Configurator
from pyramid.httpexceptions import HTTPSeeOther
from pyramid.security import forget, remember
from pyramid.session import SignedCookieSessionFactory
from pyramid_session_redis import RedisSessionFactory


class SessionMultiSecurityPolicy:
    """Keeps the user id in the "account" namespace.

    ``remember`` rotates every namespace the client holds before writing the
    new identity; ``forget`` invalidates them all.
    """

    def identity(self, request):
        return request.session_multi["account"].get("userid")

    def authenticated_userid(self, request):
        return self.identity(request)

    def permits(self, request, context, permission):
        return self.identity(request) is not None

    def remember(self, request, userid, **kw):
        # a new id everywhere: no id the client held before login survives it
        request.session_multi.rotate(raise_errors=True)
        request.session_multi["account"]["userid"] = userid
        return []

    def forget(self, request, **kw):
        request.session_multi.invalidate()
        return []


def login(request):
    # check the password first, of course
    headers = remember(request, request.POST["username"])
    return HTTPSeeOther("/whoami", headers=headers)


def add_to_cart(request):
    # anonymous visitors have an account session too
    request.session_multi["account"]["cart"] = request.POST["item"]
    return {"cart": request.POST["item"]}


def enter_admin_mode(request):
    request.session_multi["admin"]["since"] = "now"
    return {"admin": True}


def whoami(request):
    admin = request.session_multi["admin"]
    return {
        "userid": request.authenticated_userid,
        "cart": request.session_multi["account"].get("cart"),
        "admin": bool(admin and admin.get("since")),
    }


def logout(request):
    return HTTPSeeOther("/whoami", headers=forget(request))


def main(global_config=None, redis_url="redis://127.0.0.1:6379/0", **settings):
    """The application; its one setting is ``redis_url``, the Redis server of ``account``."""
    config = Configurator(settings=settings)
    config.include("pyramid_session_multi")
    config.register_session_factory(
        "account",
        RedisSessionFactory(
            secret="account-secret-of-32-bytes-or-more",
            cookie_name="acct",
            cookie_secure=True,
            cookie_httponly=True,
            cookie_samesite="Lax",
            redis_url=redis_url,
            redis_socket_timeout=2,
        ),
        absolute_timeout=8 * 60 * 60,  # it and "admin", bound to it, end after 8 hours
    )
    # valid only beside the "account" session it was written with
    config.register_session_factory(
        "admin",
        SignedCookieSessionFactory(
            "admin-secret-of-32-bytes-or-more!", cookie_name="adm", secure=True, httponly=True
        ),
        bound_to="account",
    )
    config.set_security_policy(SessionMultiSecurityPolicy())
    for name, view, method in (
        ("cart", add_to_cart, "POST"),
        ("login", login, "POST"),
        ("admin", enter_admin_mode, "POST"),
        ("whoami", whoami, "GET"),
        ("logout", logout, "POST"),
    ):
        config.add_route(name, f"/{name}")
        config.add_view(view, route_name=name, request_method=method, renderer="json")
    return config.make_wsgi_app()
