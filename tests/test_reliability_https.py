"""An https-only namespace never exists, and never sends a cookie, over http."""

import webtest

from tests.support.apps import build_app, set_cookie_names, signed_factory

HTTPS = {"wsgi.url_scheme": "https", "HTTP_HOST": "localhost:443"}


class CountingSecureFactory:
    cookie_name = "tls_only"

    def __init__(self):
        self.inner = signed_factory("tls_only", secure=True, httponly=True)
        self.requests = []

    def __call__(self, request):
        self.requests.append(request.scheme)
        return self.inner(request)


def make():
    factory = CountingSecureFactory()

    def setup(config):
        config.register_session_factory(
            "secure", factory, discriminator=lambda request: request.scheme == "https"
        )
        config.register_session_factory("plain", signed_factory("plain"))

    return build_app(setup), factory


def test_never_created_over_http():
    app, factory = make()
    for path in ("/s/secure", "/loaded", "/invalidate", "/s/plain"):
        response = app.get(path)
        assert "tls_only" not in set_cookie_names(response)
    response = app.post("/s/secure", {"value": "x"})
    assert response.json == {"ns": "secure", "session": None}
    assert factory.requests == []


def test_works_over_https_with_a_secure_cookie():
    app, factory = make()
    response = app.post("/s/secure", {"value": "tls only"}, extra_environ=HTTPS)
    header = [h for h in response.headers.getall("Set-Cookie") if h.startswith("tls_only=")]
    assert len(header) == 1 and "; secure" in header[0].lower()
    assert app.get("/s/secure", extra_environ=HTTPS).json["value"] == "tls only"
    assert set(factory.requests) == {"https"}


def test_a_replayed_valid_cookie_is_ignored_over_http():
    app, factory = make()
    response = app.post("/s/secure", {"value": "secret"}, extra_environ=HTTPS)
    cookie = response.headers["Set-Cookie"].split(";", 1)[0]
    calls = len(factory.requests)
    replay = webtest.TestApp(app.app)
    for path in ("/s/secure", "/invalidate", "/loaded"):
        response = replay.get(path, headers={"Cookie": cookie})
        assert "tls_only" not in set_cookie_names(response)
        assert "secret" not in response.text
    response = replay.post("/s/secure", {"value": "overwrite"}, headers={"Cookie": cookie})
    assert response.json["session"] is None and set_cookie_names(response) == []
    assert len(factory.requests) == calls
    # the https session is intact
    assert app.get("/s/secure", extra_environ=HTTPS).json["value"] == "secret"
