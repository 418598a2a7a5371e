"""Apps with session lifetimes and revocations, on every real session library.

One namespace per library, each with the timeouts a test asks for; views to
read, write, log in (``rotate(userid=...)``), log out and revoke.  The
libraries' own timeouts are off, so that only the add-on's apply.
"""

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import webtest
from pyramid.config import Configurator
from pyramid.session import JSONSerializer, SignedCookieSessionFactory
from pyramid_nacl_session import EncryptedCookieSessionFactory
from pyramid_session_redis import RedisSessionFactory

from tests.support.backend_app import NACL_SECRET, beaker_file, beaker_sql

#: Every library a lifetime is tested on, by namespace.
LIBRARIES = ("signed", "nacl", "redis", "beaker", "database")

#: The client-side ones: the data (and the stamps) travel in the cookie.
CLIENT_SIDE = ("signed", "nacl")


def library_factory(name: str, redis_url: str, directory: Path, cookie_name: str = "") -> Any:
    """A real factory of library ``name``, with no timeout of its own."""
    cookie_name = cookie_name or name
    if name == "signed":
        return SignedCookieSessionFactory(
            "signed-secret-" + cookie_name,
            cookie_name=cookie_name,
            timeout=None,
            reissue_time=None,
            serializer=JSONSerializer(),
        )
    if name == "nacl":
        return EncryptedCookieSessionFactory(
            NACL_SECRET, cookie_name=cookie_name, timeout=None, reissue_time=None
        )
    if name == "redis":
        return RedisSessionFactory(
            secret="redis-secret-" + cookie_name,
            cookie_name=cookie_name,
            redis_url=redis_url,
            timeout=None,
        )
    if name == "beaker":
        return beaker_file(directory, cookie_name)
    if name == "database":
        url = f"sqlite:///{directory / 'sessions.sqlite'}"
        return beaker_sql(url, directory, cookie_name)
    raise ValueError(name)


def read_view(request: Any) -> Any:
    """``value`` of namespace ``ns``, without writing."""
    session = request.session_multi[request.matchdict["ns"]]
    return {"value": session.get("value"), "user": session.get("user")}


def read_many_view(request: Any) -> Any:
    """``user`` of each namespace in ``ns`` (comma-separated), in one request."""
    names = request.params["ns"].split(",")
    return {name: request.session_multi[name].get("user") for name in names}


def touch_view(request: Any) -> Any:
    """Load namespace ``ns`` and read nothing from it."""
    request.session_multi[request.matchdict["ns"]]
    return {}


def write_view(request: Any) -> Any:
    """Write ``value`` into namespace ``ns``."""
    session = request.session_multi[request.matchdict["ns"]]
    session["value"] = request.params["value"]
    return {"value": session["value"]}


def keys_view(request: Any) -> Any:
    """What the application sees of namespace ``ns``: keys, items, len, iteration."""
    session = request.session_multi[request.matchdict["ns"]]
    return {
        "keys": sorted(session.keys()),
        "items": sorted(key for key, _ in session.items()),
        "iter": sorted(session),
        # pyramid_session_redis's sessions have no len()
        "len": len(session) if hasattr(type(session), "__len__") else len(session.keys()),
    }


def application_data(session: Any) -> dict[str, Any]:
    """Everything the application sees in ``session`` (Beaker's own keys aside)."""
    from pyramid_session_multi.libraries.beaker import BEAKER_COOKIE_BOOKKEEPING

    return {key: value for key, value in session.items() if key not in BEAKER_COOKIE_BOOKKEEPING}


def update_view(request: Any) -> Any:
    """``session.update()`` namespace ``ns`` with the JSON body, as an application
    storing a client's form does; what the application then sees."""
    session = request.session_multi[request.matchdict["ns"]]
    session.update(request.json_body)
    return application_data(session)


def data_view(request: Any) -> Any:
    """What the application sees of namespace ``ns``."""
    return application_data(request.session_multi[request.matchdict["ns"]])


def callbacks_view(request: Any) -> Any:
    """Write ``value`` into ``ns``; the application's own response and finished
    callbacks note what they see of the session in ``settings["seen"]``."""
    namespace = request.matchdict["ns"]
    request.session_multi[namespace]["value"] = request.params.get("value", "x")
    seen = request.registry.settings["seen"]

    def look(when: str, request: Any) -> None:
        session = request.session_multi[namespace]
        seen.append((when, sorted(application_data(session))))

    def on_response(request: Any, response: Any) -> None:
        look("response", request)

    def on_finished(request: Any) -> None:
        look("finished", request)

    request.add_response_callback(on_response)
    request.add_finished_callback(on_finished)
    return {}


def logout_with_callbacks_view(request: Any) -> Any:
    """Log out; callbacks of the application's that hold the session of ``ns``
    note that they ran in ``settings["seen"]``."""
    session = request.session_multi[request.matchdict["ns"]]
    seen = request.registry.settings["seen"]
    request.add_response_callback(lambda request, response: seen.append(("response", session)))
    request.add_finished_callback(lambda request: seen.append(("finished", session)))
    request.session_multi.invalidate()
    return {}


def login_view(request: Any) -> Any:
    """Rotate every namespace in ``ns`` (comma-separated) at login, as ``userid``,
    and write ``user`` into each."""
    names = [ns for ns in request.params.get("ns", "").split(",") if ns]
    userid = request.params.get("userid")
    failures = request.session_multi.rotate(*names, userid=userid)
    for ns in names or list(request.session_multi):
        session = request.session_multi[ns]
        if session is not None:
            session["user"] = userid
    return {"failed": sorted(failures)}


def rotate_view(request: Any) -> Any:
    """Rotate the namespaces in ``ns`` with no userid."""
    names = [ns for ns in request.params.get("ns", "").split(",") if ns]
    return {"failed": sorted(request.session_multi.rotate(*names))}


def revoke_view(request: Any) -> Any:
    """Revoke ``userid``; ``keep=1`` keeps this request's sessions."""
    request.session_multi.revoke(
        request.params["userid"], keep_current=bool(request.params.get("keep"))
    )
    return {"revoked": request.params["userid"]}


def logout_view(request: Any) -> Any:
    request.session_multi.invalidate()
    return {}


def build_lifetime_wsgi(
    register: Callable[[Configurator], None], settings: dict[str, Any] | None = None
) -> Any:
    """A WSGI app with the add-on, ``register``'s namespaces and the views above."""
    config = Configurator(settings=settings or {})
    config.include("pyramid_session_multi")
    register(config)
    for name, path, view in (
        ("read", "/r/{ns}", read_view),
        ("read_many", "/many", read_many_view),
        ("touch", "/t/{ns}", touch_view),
        ("write", "/w/{ns}", write_view),
        ("keys", "/keys/{ns}", keys_view),
        ("update", "/u/{ns}", update_view),
        ("data", "/d/{ns}", data_view),
        ("callbacks", "/cb/{ns}", callbacks_view),
        ("logout_callbacks", "/logout-cb/{ns}", logout_with_callbacks_view),
        ("login", "/login", login_view),
        ("rotate", "/rotate", rotate_view),
        ("revoke", "/revoke", revoke_view),
        ("logout", "/logout", logout_view),
    ):
        config.add_route(name, path)
        config.add_view(view, route_name=name, renderer="json")
    return config.make_wsgi_app()


def build_lifetime_app(
    register: Callable[[Configurator], None], settings: dict[str, Any] | None = None
) -> webtest.TestApp:
    return webtest.TestApp(build_lifetime_wsgi(register, settings))


def app_with_view(name: str, factory: Any, view: Any, **options: Any) -> webtest.TestApp:
    """:func:`build_lifetime_app` with namespace ``name`` of ``factory``
    (``options`` its registration's) and ``view`` at ``/again``."""

    def register(config: Configurator) -> None:
        config.register_session_factory(name, factory, **options)
        config.add_route("again", "/again")
        config.add_view(view, route_name="again", renderer="json")

    return build_lifetime_app(register)


def set_cookie_headers(response: Any, name: str) -> list[str]:
    """The Set-Cookie headers of ``response`` for cookie ``name``."""
    return [
        value
        for header, value in response.headerlist
        if header.lower() == "set-cookie" and value.lstrip().startswith(name + "=")
    ]


def from_settings(global_config: Any, **settings: Any) -> Any:
    """The app of an ini file: namespaces and revocation store from its settings."""
    return build_lifetime_wsgi(lambda config: None, settings)


class Clock:
    """The add-on's clock, moved by the test: ``clock.at(seconds)`` from a fixed start."""

    def __init__(self) -> None:
        # a whole second: pyramid's cookies keep the idle clock to the second
        self.start = float(int(time.time()))
        self.now = self.start

    def __call__(self) -> float:
        return self.now

    def at(self, offset: float) -> None:
        self.now = self.start + offset
