"""Loading a namespace: what the add-on calls on its behalf fails named.

Through the real router, with pyramid's signed cookies: a fallback factory
that raises, and a fallback session whose data cannot be read, fail the
load with a note naming the fallback and the namespace, and are logged.
"""

from collections.abc import Mapping

import pytest
import webtest
from pyramid import testing

from pyramid_session_multi import Fallback, SessionMultiManager
from pyramid_session_multi.config import SessionMultiManagerConfig
from pyramid_session_multi.failures import FailureLog
from pyramid_session_multi.interfaces import IFailureLog
from tests.support.apps import build_app, build_wsgi, signed_factory


class Unreadable(Mapping):
    """A session of a library the add-on does not know whose store fails on read."""

    def __getitem__(self, key):
        raise LookupError("the old store is gone")

    def __iter__(self):
        raise LookupError("the old store is gone")

    def __len__(self):
        raise LookupError("the old store is gone")

    def invalidate(self):  # pragma: no cover - never reached
        pass


def raising_factory(request):
    raise LookupError("the old store is gone")


def unreadable_factory(request):
    return Unreadable()


@pytest.mark.parametrize("old_factory", [raising_factory, unreadable_factory])
def test_a_fallback_that_fails_is_contained_and_named(old_factory, caplog):
    def setup(config):
        config.register_session_factory(
            "prefs",
            signed_factory("prefs"),
            fallbacks=[Fallback(old_factory, cookie_name="old_prefs")],
        )

    app = build_app(setup)
    app.set_cookie("old_prefs", "a-cookie-of-before-the-deploy")
    # nothing migrates this time; the request goes on, the old cookie kept for a retry
    response = app.get("/s/prefs")
    assert response.json["value"] is None
    assert not [v for n, v in response.headerlist if n == "Set-Cookie" and "old_prefs" in v]
    assert "old_prefs" in app.cookies
    assert [record.getMessage() for record in caplog.records] == [
        "namespace 'prefs': its fallback 1 (unknown, cookie 'old_prefs') could not be read; "
        "nothing migrates in this request and the old cookie is kept: "
        "LookupError: the old store is gone"
    ]


def test_a_client_without_the_fallbacks_cookie_never_reaches_it(caplog):
    def setup(config):
        config.register_session_factory(
            "prefs",
            signed_factory("prefs"),
            fallbacks=[Fallback(raising_factory, cookie_name="old_prefs")],
        )

    app = build_app(setup)
    assert app.get("/s/prefs").json == {"ns": "prefs", "session": "present", "value": None}
    assert caplog.records == []


def test_a_manager_outside_an_application_logs_each_load_failure_plainly(caplog):
    def store_down(request):
        raise ConnectionError("the store went away")

    config = SessionMultiManagerConfig()
    config.register_session_factory("cart", store_down, cookie_name="cart")
    with testing.testConfig():  # a registry the add-on was never included in
        request = testing.DummyRequest()
        manager = SessionMultiManager(request, config, weak=False)
        for _ in range(2):
            with pytest.raises(ConnectionError, match="the store went away"):
                manager["cart"]
    # no failure log to count repeats: each failure is its own line
    assert [record.getMessage() for record in caplog.records] == [
        "namespace 'cart' could not be loaded: ConnectionError: the store went away"
    ] * 2


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_an_application_logs_a_load_failure_once_per_interval_with_a_count_and_no_traceback(
    caplog,
):
    def store_down(request):
        raise ConnectionError("the store went away")

    def setup(config):
        config.register_session_factory("cart", store_down, cookie_name="cart")

    wsgi = build_wsgi(setup)
    clock = Clock()
    wsgi.registry.registerUtility(FailureLog(30, clock), IFailureLog)
    app = webtest.TestApp(wsgi)
    for _ in range(3):
        with pytest.raises(ConnectionError, match="the store went away"):
            app.get("/s/cart")
    clock.now += 30
    with pytest.raises(ConnectionError, match="the store went away"):
        app.get("/s/cart")
    assert [record.getMessage() for record in caplog.records] == [
        "namespace 'cart' could not be loaded: ConnectionError: the store went away",
        "namespace 'cart' could not be loaded: ConnectionError: the store went away "
        "(and 2 more times since it was last logged, not logged one by one)",
    ]
    # the error goes on to the caller with its traceback: the log line carries none
    assert [record.exc_info for record in caplog.records] == [None, None]
