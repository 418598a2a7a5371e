"""Unit-testing a view that uses request.session_multi."""

from pyramid import testing

from pyramid_session_multi.testing import attach_session_multi


def greeting(request):
    """The view under test."""
    prefs = request.session_multi["prefs"]
    secure = request.session_multi["secure"]
    prefs["visits"] = prefs.get("visits", 0) + 1
    return {"visits": prefs["visits"], "https": secure is not None}


def test_greeting_counts_visits():
    request = testing.DummyRequest()
    attach_session_multi(request, {"prefs": {"visits": 2}, "secure": None})
    assert greeting(request) == {"visits": 3, "https": False}


# With the pytest plugin enabled in conftest.py (see above):
def test_greeting_with_the_fixture(session_multi_request):
    request = session_multi_request(prefs={}, secure={})
    assert greeting(request) == {"visits": 1, "https": True}
