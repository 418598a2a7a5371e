"""The opt-in pytest plugin: the session_multi_request fixture."""

from pyramid.threadlocal import get_current_registry

from tests.support.apps import remember_theme


def test_fixture_builds_requests_with_namespaces(session_multi_request):
    request = session_multi_request(prefs={"theme": "dark"}, account={}, secure=None)
    assert remember_theme(request) == {"theme": "dark", "https": False}
    assert request.session_multi["account"]["last_theme"] == "dark"


def test_fixture_passes_request_arguments_and_sets_up_threadlocals(session_multi_request):
    request = session_multi_request({"params": {"q": "1"}}, prefs={})
    assert request.params["q"] == "1"
    assert request.registry is get_current_registry()
