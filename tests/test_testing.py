"""pyramid_session_multi.testing: a session_multi for a DummyRequest."""

import datetime

import pytest
from pyramid import testing

from pyramid_session_multi import SessionMultiManager, UnregisteredSession
from pyramid_session_multi.testing import HELD, attach_session_multi
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


def test_every_namespace_given_is_invalidated_untouched():
    request = testing.DummyRequest()
    prefs, account = testing.DummySession({"theme": "dark"}), testing.DummySession({"user": 7})
    manager = attach_session_multi(request, {"prefs": prefs, "account": account, "secure": None})
    assert len(manager) == 0  # still lazy
    assert manager.invalidate() == {}
    assert dict(prefs) == {} and dict(account) == {}
    assert sorted(manager) == ["account", "prefs"]  # the client holds no "secure"


def test_every_namespace_given_is_rotated_untouched():
    from pyramid_session_multi.events import SessionRotated

    config = testing.setUp()
    try:
        rotated = []
        config.add_subscriber(lambda event: rotated.append(event.namespace), SessionRotated)
        request = testing.DummyRequest()
        request.registry = config.registry
        prefs = testing.DummySession({"theme": "dark"})
        manager = attach_session_multi(request, {"prefs": prefs, "account": {}, "secure": None})
        assert manager.rotate() == {}
        assert sorted(rotated) == ["account", "prefs"]
        assert dict(prefs) == {"theme": "dark"}  # rotating keeps the data
    finally:
        testing.tearDown()


def test_a_cookie_the_test_request_already_carries_is_kept():
    request = testing.DummyRequest(cookies={"prefs": "chosen-by-the-test"})
    attach_session_multi(request, {"prefs": {}, "account": {}, "secure": None})
    # one for each namespace held, none for a namespace mounting None
    assert request.cookies == {"prefs": "chosen-by-the-test", "account": HELD}


def test_the_fixture_holds_every_namespace_given(session_multi_request):
    request = session_multi_request(prefs={"theme": "dark"}, account={"user": 7})
    assert request.session_multi.invalidate() == {}
    assert dict(request.session_multi["prefs"]) == {}
    assert dict(request.session_multi["account"]) == {}


def _time_machine(start):
    import time_machine

    traveller = time_machine.travel(start, tick=False)
    return traveller, lambda shift, seconds: shift.shift(seconds)


def _freezegun(start):
    import freezegun

    return freezegun.freeze_time(start), lambda frozen, seconds: frozen.tick(
        datetime.timedelta(seconds=seconds)
    )


@pytest.mark.parametrize("travel", [_time_machine, _freezegun], ids=["time-machine", "freezegun"])
def test_time_machine_and_freezegun_move_the_add_ons_clocks(travel):
    # what the testing page promises: a test moves the clock, the timeouts follow
    import webtest

    from pyramid_session_multi.lifecycle import lifetime
    from tests.support.apps import build_wsgi, signed_factory

    def setup(config):
        account = signed_factory("account", timeout=None)
        config.register_session_factory("account", account, idle_timeout=600)

    app = webtest.TestApp(build_wsgi(setup))
    context, shift = travel("2030-01-01 09:00:00")
    with context as clock:
        assert abs(lifetime.now() - 1893488400.0) < 5
        app.post("/s/account", {"value": "x"})
        shift(clock, 500)
        assert app.get("/s/account").json["value"] == "x"
        shift(clock, 601)
        assert app.get("/s/account").json["value"] is None
