"""Unit-testing views that use request.session_multi."""

from pyramid import testing
from pyramid.httpexceptions import HTTPSeeOther

from pyramid_session_multi.testing import attach_session_multi


def greeting(request):
    """The view under test."""
    prefs = request.session_multi["prefs"]
    secure = request.session_multi["secure"]
    prefs["visits"] = prefs.get("visits", 0) + 1
    return {"visits": prefs["visits"], "https": secure is not None}


def logout(request):
    """A logout view: it touches no namespace before ending them all."""
    request.session_multi.invalidate()
    return HTTPSeeOther("/")


def test_greeting_counts_visits():
    request = testing.DummyRequest()
    attach_session_multi(request, {"prefs": {"visits": 2}, "secure": None})
    assert greeting(request) == {"visits": 3, "https": False}


def test_logout_empties_every_namespace():
    request = testing.DummyRequest()
    prefs, account = testing.DummySession({"theme": "dark"}), testing.DummySession({"user": 7})
    attach_session_multi(request, {"prefs": prefs, "account": account})
    logout(request)
    assert dict(prefs) == {} and dict(account) == {}


# With the pytest plugin enabled in conftest.py (see above):
def test_greeting_with_the_fixture(session_multi_request):
    request = session_multi_request(prefs={}, secure={})
    assert greeting(request) == {"visits": 1, "https": True}


def test_logout_with_the_fixture(session_multi_request):
    request = session_multi_request(prefs={"theme": "dark"}, account={"user": 7})
    logout(request)
    assert dict(request.session_multi["prefs"]) == {}
    assert dict(request.session_multi["account"]) == {}
