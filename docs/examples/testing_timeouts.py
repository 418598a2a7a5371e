"""Testing an idle timeout: move the clock with time-machine, drive the app with WebTest."""

import time_machine
import webtest
from pyramid.config import Configurator
from pyramid.session import JSONSerializer, SignedCookieSessionFactory


def remember(request):
    request.session_multi["account"]["user"] = "alice"
    return {}


def whoami(request):
    return {"user": request.session_multi["account"].get("user")}


def main(global_config=None, **settings):
    config = Configurator(settings=settings)
    config.include("pyramid_session_multi")
    config.register_session_factory(
        "account",
        SignedCookieSessionFactory(
            "account-secret-of-32-bytes-or-more",
            cookie_name="account",
            secure=True,
            httponly=True,
            serializer=JSONSerializer(),
            timeout=None,  # the add-on's timeouts decide
        ),
        idle_timeout=15 * 60,
        absolute_timeout=8 * 60 * 60,
    )
    config.add_route("remember", "/remember")
    config.add_view(remember, route_name="remember", renderer="json")
    config.add_route("whoami", "/whoami")
    config.add_view(whoami, route_name="whoami", renderer="json")
    return config.make_wsgi_app()


def test_a_session_idle_for_longer_than_its_timeout_is_over():
    # over https, as the Secure cookie is sent back only there
    app = webtest.TestApp(main(), extra_environ={"wsgi.url_scheme": "https"})
    with time_machine.travel("2030-01-01 09:00:00Z", tick=False) as clock:
        app.get("/remember")
        clock.shift(14 * 60)
        assert app.get("/whoami").json == {"user": "alice"}  # in use: still there
        clock.shift(16 * 60)
        assert app.get("/whoami").json == {"user": None}  # idle for 16 minutes: over
