"""pyramid_session_multi.testing: a session_multi for a DummyRequest."""

import pytest
from pyramid import testing

from pyramid_session_multi import SessionMultiManager, UnregisteredSession
from pyramid_session_multi.testing import attach_session_multi
from tests.support.apps import remember_theme


def test_a_view_runs_against_chosen_namespaces():
    request = testing.DummyRequest()
    account = testing.DummySession()
    manager = attach_session_multi(
        request, {"prefs": {"theme": "dark"}, "account": account, "secure": None}
    )
    assert isinstance(manager, SessionMultiManager)
    assert request.session_multi is manager
    assert remember_theme(request) == {"theme": "dark", "https": False}
    assert account["last_theme"] == "dark"
    assert sorted(manager) == ["account", "prefs", "secure"]


def test_the_manager_behaves_as_in_the_application():
    request = testing.DummyRequest()
    manager = attach_session_multi(request, {"prefs": {"theme": "dark"}})
    assert len(manager) == 0  # nothing is loaded before it is asked for
    with pytest.raises(UnregisteredSession):
        manager["nosuch"]
    with pytest.raises(ValueError, match="read-only"):
        manager["prefs"] = {}
    manager["prefs"]["x"] = 1
    assert manager.invalidate() == {}
    assert dict(manager["prefs"]) == {}


def test_the_session_is_the_same_object_across_requests():
    session = testing.DummySession({"n": 1})
    first, second = testing.DummyRequest(), testing.DummyRequest()
    attach_session_multi(first, {"a": session})
    attach_session_multi(second, {"a": session})
    assert first.session_multi["a"] is second.session_multi["a"] is session
