"""A user's devices: where am I logged in, and end that one."""

import os
from html import escape

from pyramid.config import Configurator
from pyramid.httpexceptions import HTTPForbidden, HTTPSeeOther
from pyramid.response import Response
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
            samesite="Lax",
            serializer=JSONSerializer(),
            timeout=None,
            reissue_time=None,
        ),
        idle_timeout=7 * 24 * 60 * 60,
    )


def login(request):
    userid = request.POST["userid"]  # once the password was checked
    request.session_multi.rotate(userid=userid)
    request.session_multi["account"]["userid"] = userid
    return HTTPSeeOther("/devices")


def your_devices(request):
    userid = request.session_multi["account"].get("userid")
    if userid is None:
        raise HTTPForbidden()
    rows = []
    for device in request.session_multi.devices(userid):
        where = "this device" if device.current else escape(device.user_agent or "unknown")
        rows.append(
            f"<li>{where}, signed in {device.created:.0f}, last seen {device.last_seen:.0f}"
            f' <form method="post" action="/devices/end">'
            f'<input type="hidden" name="id" value="{escape(device.id)}">'
            f"<button>Sign out</button></form></li>"
        )
    return Response(f"<h1>Your devices</h1><ul>{''.join(rows)}</ul>")


def end_device(request):
    userid = request.session_multi["account"].get("userid")
    if userid is None:
        raise HTTPForbidden()
    # only one of this user's own devices: an id is not a permission
    mine = {device.id for device in request.session_multi.devices(userid)}
    if request.POST.get("id") not in mine:
        raise HTTPForbidden()
    request.session_multi.revoke_device(request.POST["id"])
    return HTTPSeeOther("/devices")


def main(global_config=None, redis_url="redis://127.0.0.1:6379/0", **settings):
    """The application. Its settings: ``redis_url``, the Redis server of
    ``account``; ``session_multi.revocations``, the revocation store every
    process shares, which keeps the device index.
    """
    config = Configurator(settings=settings)
    config.include("pyramid_session_multi")
    configure(config, redis_url)
    config.add_route("login", "/login")
    config.add_view(login, route_name="login", request_method="POST")
    config.add_route("devices", "/devices")
    config.add_view(your_devices, route_name="devices", request_method="GET")
    config.add_route("end_device", "/devices/end")
    config.add_view(end_device, route_name="end_device", request_method="POST")
    return config.make_wsgi_app()
