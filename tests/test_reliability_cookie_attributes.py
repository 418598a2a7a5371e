"""What a browser keeps of each namespace's cookie: prefixed, SameSite=None and
partitioned cookies, on every library, after login, rotation, logout and a
rotation that fails.

A browser ignores a cookie -- and so a deletion -- that lacks an attribute
its name or its other attributes require (``Secure`` above all), and it
keeps a partitioned cookie apart from an unpartitioned one of the same name:
a logout whose deletion it ignores leaves the user logged in.
:class:`~tests.support.browser_jar.BrowserJar` applies those rules.
"""

import pyramid_beaker
import pytest
import webtest
from pyramid.config import Configurator
from pyramid.session import SignedCookieSessionFactory
from pyramid_nacl_session import EncryptedCookieSessionFactory
from pyramid_session_redis import RedisSessionFactory

from pyramid_session_multi.libraries import (
    BeakerLibrary,
    PyramidCookieLibrary,
    RedisLibrary,
)
from tests.support.browser_jar import BrowserJar

LIBRARIES = ("signed", "nacl", "redis", "beaker-cookie", "beaker-file")

#: cookie name, SameSite, partitioned
COOKIES = {
    "host-prefix": ("__Host-ns", "Lax", False),
    "secure-prefix": ("__Secure-ns", "Strict", False),
    "samesite-none": ("ns", "None", False),
    "partitioned": ("__Host-ns", "None", True),
}


def make_factory(library, name, samesite, redis_url, tmp_path):
    if library == "signed":
        return SignedCookieSessionFactory(
            "signed-secret", cookie_name=name, secure=True, samesite=samesite
        )
    if library == "nacl":
        return EncryptedCookieSessionFactory(
            bytes(range(32)), cookie_name=name, secure=True, samesite=samesite
        )
    if library == "redis":
        return RedisSessionFactory(
            secret="redis-secret",
            cookie_name=name,
            redis_url=redis_url,
            cookie_secure=True,
            cookie_samesite=samesite,
        )
    options = {"key": name, "secure": True, "samesite": samesite}
    if library == "beaker-cookie":
        options.update(type="cookie", validate_key="beaker-validate", invalidate_corrupt=True)
    else:
        options.update(type="file", data_dir=str(tmp_path / "data"), lock_dir=str(tmp_path / "l"))
    return pyramid_beaker.BeakerSessionFactoryConfig(**options)


def login(request):
    request.session_multi.rotate("ns")
    request.session_multi["ns"]["user"] = request.params.get("user", "alice")
    return {}


def logout(request):
    request.session_multi.invalidate()
    return {}


def whoami(request):
    return {"user": request.session_multi["ns"].get("user")}


class FailingRotation:
    """Each built-in library, with a rotation that fails (its store went away)."""

    def __init__(self, base):
        self.base = base
        self.name = base.name

    def __getattr__(self, name):
        return getattr(self.base, name)

    def rotate(self, session):
        raise ConnectionError("the store went away")


def build(library, cookie, redis_url, tmp_path, failing_rotation=False):
    name, samesite, partitioned = COOKIES[cookie]
    config = Configurator()
    config.include("pyramid_session_multi")
    if failing_rotation:
        for base in (PyramidCookieLibrary(), RedisLibrary(), BeakerLibrary()):
            config.add_session_library(FailingRotation(base))
    config.register_session_factory(
        "ns",
        make_factory(library, name, samesite, redis_url, tmp_path),
        partitioned=partitioned,
    )
    for route, view in (("login", login), ("logout", logout), ("whoami", whoami)):
        config.add_route(route, "/" + route)
        config.add_view(view, route_name=route, renderer="json")
    return webtest.TestApp(config.make_wsgi_app())


def visit(app, jar, path, **params):
    response = app.get(path, params, extra_environ=jar.environ())
    jar.receive(response)
    return response


@pytest.fixture(params=LIBRARIES)
def library(request):
    return request.param


@pytest.fixture(params=list(COOKIES))
def cookie(request):
    return request.param


def test_a_browser_keeps_one_cookie_through_login_and_rotation_and_drops_it_on_logout(
    library, cookie, redis_db, tmp_path
):
    name, _, partitioned = COOKIES[cookie]
    app = build(library, cookie, redis_db, tmp_path)
    jar = BrowserJar()
    visit(app, jar, "/login", user="alice")
    assert [key for key, _ in jar.named(name)] == [(name, jar.host, "/", partitioned)]
    first = jar.named(name)[0][1]
    visit(app, jar, "/login", user="bob")  # a second login rotates
    assert len(jar.named(name)) == 1 and jar.named(name)[0][1] != first
    assert visit(app, jar, "/whoami").json == {"user": "bob"}
    visit(app, jar, "/logout")
    assert jar.named(name) == [], jar.ignored
    assert visit(app, jar, "/whoami").json == {"user": None}
    assert jar.ignored == []


def test_a_failed_rotation_deletes_the_cookie_the_browser_holds(
    library, cookie, redis_db, tmp_path
):
    name, _, _ = COOKIES[cookie]
    jar = BrowserJar()
    visit(build(library, cookie, redis_db, tmp_path), jar, "/login", user="alice")
    assert len(jar.named(name)) == 1
    failing = build(library, cookie, redis_db, tmp_path, failing_rotation=True)
    visit(failing, jar, "/login", user="mallory")
    assert jar.named(name) == [] and jar.ignored == []


@pytest.mark.parametrize("cookie", list(COOKIES))
def test_a_logout_whose_store_is_down_still_deletes_the_cookie_the_browser_holds(
    cookie, own_redis_server, tmp_path, caplog
):
    name, _, _ = COOKIES[cookie]
    app = build("redis", cookie, own_redis_server.url, tmp_path)
    jar = BrowserJar()
    visit(app, jar, "/login", user="alice")
    assert len(jar.named(name)) == 1
    own_redis_server.stop()  # invalidate() cannot delete the key: the logout fails
    visit(app, jar, "/logout")
    assert "namespace 'ns' could not be invalidated" in caplog.text
    assert jar.named(name) == [] and jar.ignored == []
