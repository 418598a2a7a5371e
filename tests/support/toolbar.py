"""Driving pyramid_debugtoolbar from tests: apps with it, and the panel's HTML."""

import re
from collections.abc import Callable
from html import unescape
from typing import Any

import webtest
from pyramid.config import Configurator
from pyramid_session_redis import RedisSessionFactory

from tests.support.apps import build_app, signed_factory
from tests.support.backend_app import beaker_file

LOCAL = {"REMOTE_ADDR": "127.0.0.1"}


def toolbar_app(
    setup: Callable[[Configurator], None], mode: str, include: bool = True
) -> webtest.TestApp:
    """``mode``: "off" (no toolbar), "inactive" or "active" (the panel)."""
    settings = {}
    if mode != "off":
        settings = {
            "pyramid.includes": "pyramid_debugtoolbar",
            "debugtoolbar.hosts": "127.0.0.1",
            "debugtoolbar.includes": "pyramid_session_multi.debugtoolbar",
            "debugtoolbar.show_on_exc_only": "false",
            "debugtoolbar.intercept_redirects": "false",
        }
    app = build_app(setup, settings=settings, include=include)
    app.extra_environ = dict(LOCAL)
    if mode == "active":
        app.set_cookie("pdtb_active", "session_multi")
    return app


def toolbar_page(app: webtest.TestApp) -> str:
    """The toolbar's page for the last request the app handled."""
    request_id = app.app.registry.pdtb_history.last(1)[0][0]
    return str(app.get(f"/_debug_toolbar/{request_id}").text)


def panel_html(app: webtest.TestApp) -> str:
    """The SessionMulti panel's HTML for the last request the app handled."""
    page = toolbar_page(app)
    start = page.index('id="pDebugPanel-session_multi-content"')
    end = page.find('<div id="pDebugPanel-', start + 10)
    return page[start : end if end > 0 else None]


def text_of(html: str) -> str:
    """The panel's text, tags dropped, entities decoded, white space folded."""
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html))).strip()


def cookie_shape(response: Any) -> list:
    """Set-Cookie headers without their values, which carry timestamps."""
    shapes = []
    for header in response.headers.getall("Set-Cookie"):
        name, _, rest = header.strip().partition("=")
        value, _, attributes = rest.partition(";")
        attributes = re.sub(r"expires=[^;]+", "expires=*", attributes.strip(), flags=re.I)
        shapes.append((name, bool(value), attributes))
    return sorted(shapes)


class BadRepr:
    """A picklable value whose repr raises."""

    def __repr__(self):
        raise RuntimeError("no repr for you")


def namespaces(redis_url, tmp_path):
    def setup(config):
        # reissue_time=0: any read through the accessors re-issues the cookie
        config.register_session_factory("signed", signed_factory("signed", reissue_time=0))
        config.register_session_factory(
            "redis",
            RedisSessionFactory(secret="s", cookie_name="redis", redis_url=redis_url, timeout=600),
        )
        config.register_session_factory("beaker", beaker_file(tmp_path, "beaker"))
        config.register_session_factory(
            "https", signed_factory("https"), discriminator=lambda r: r.scheme == "https"
        )

        def touch(request):
            request.session_multi[request.matchdict["ns"]]
            return {"touched": True}

        def hostile(request):
            session = request.session_multi["redis"]
            session["script"] = "<script>alert('x')</script>"
            session["huge"] = "y" * 100_000
            session["bad"] = BadRepr()
            return {}

        def drop(request):
            request.session_multi["redis"].invalidate()
            return {}

        for name, view in (("touch", touch), ("hostile", hostile), ("drop", drop)):
            config.add_route(name, f"/{name}" + ("/{ns}" if name == "touch" else ""))
            config.add_view(view, route_name=name, renderer="json")

    return setup
