"""Real WSGI apps with the add-on, driven through WebTest by most test modules."""

import contextlib
import gc
from collections.abc import Callable, Iterator
from typing import Any

import webtest
from pyramid.config import Configurator
from pyramid.session import SignedCookieSessionFactory


def signed_factory(cookie_name: str, **kwargs: Any) -> Any:
    """A real pyramid SignedCookie factory writing ``cookie_name``."""
    return SignedCookieSessionFactory("secret-" + cookie_name, cookie_name=cookie_name, **kwargs)


def session_view(request: Any) -> Any:
    """GET reads ``value`` (and ``after``, if set) of namespace ``ns``; POST
    ``value`` writes it."""
    ns = request.matchdict["ns"]
    session = request.session_multi[ns]
    if session is None:
        return {"ns": ns, "session": None}
    if request.method == "POST":
        session["value"] = request.POST["value"]
    read = {"ns": ns, "session": "present", "value": session.get("value")}
    if "after" in session:
        read["after"] = session["after"]
    return read


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


def rotate_view(request: Any) -> Any:
    """Rotate the namespaces named in ``ns`` (all carried ones if absent),
    then, given ``after``, write it into each of them."""
    names = [ns for ns in request.params.get("ns", "").split(",") if ns]
    failures = request.session_multi.rotate(*names)
    if "after" in request.params:
        for ns in names or list(request.session_multi):
            session = request.session_multi[ns]
            if session is not None and ns not in failures:
                session["after"] = request.params["after"]
    return {"failed": sorted(failures)}


def build_app(
    setup: Callable[[Configurator], None] | None = None,
    settings: dict | None = None,
    include: bool = True,
) -> webtest.TestApp:
    """A real WSGI app with the add-on and the views above, in WebTest."""
    return webtest.TestApp(build_wsgi(setup, settings, include))


def build_wsgi(
    setup: Callable[[Configurator], None] | None = None,
    settings: dict | None = None,
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
    config.add_route("rotate_sessions", "/rotate")
    config.add_view(rotate_view, route_name="rotate_sessions", renderer="json")
    config.add_route("plain", "/plain")
    config.add_view(lambda request: {"plain": True}, route_name="plain", renderer="json")
    return config.make_wsgi_app()


def set_cookie_names(response: Any) -> list:
    """The cookie names in the response's Set-Cookie headers, sorted."""
    return sorted(
        value.strip().split("=", 1)[0]
        for name, value in response.headerlist
        if name.lower() == "set-cookie"
    )


def late_login_app(namespace: str, factory: Any, userid: Any = None, **options: Any) -> Any:
    """An app whose ``/late`` writes ``user`` into ``namespace`` and rotates
    it (with ``userid``) in a response callback queued after the load: once
    its library saved the session and set its cookie.  Returns the
    :class:`webtest.TestApp` and the list of what each ``rotate()`` returned."""
    from pyramid.response import Response

    failures: list[Any] = []

    def login_late(request: Any) -> Any:
        request.session_multi[namespace]["user"] = "alice"

        def log_in(request: Any, response: Any) -> None:
            failures.append(request.session_multi.rotate(namespace, userid=userid))

        request.add_response_callback(log_in)
        return Response("ok")

    def setup(config: Configurator) -> None:
        config.register_session_factory(namespace, factory, **options)
        config.add_route("late", "/late")
        config.add_view(login_late, route_name="late")

    return webtest.TestApp(build_wsgi(setup)), failures


def remember_theme(request):
    """A view under test: reads one namespace, writes another."""
    theme = request.session_multi["prefs"].get("theme", "light")
    request.session_multi["account"]["last_theme"] = theme
    return {"theme": theme, "https": request.session_multi["secure"] is not None}


def releases_queued(request: Any) -> list[Any]:
    """The manager's releases among ``request``'s finished callbacks."""
    from pyramid_session_multi.manager import SessionMultiManager

    return [
        callback
        for callback in request.finished_callbacks
        if getattr(callback, "__func__", None) is SessionMultiManager._release
    ]


@contextlib.contextmanager
def without_cycle_collector() -> Iterator[None]:
    """Run the block with the cycle collector off (collected first): what the
    block makes and lets go of is freed by reference counting alone, or kept."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
