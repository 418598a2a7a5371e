"""Validation on load: a session that no longer validates is dropped."""

from types import SimpleNamespace

import pytest
from pyramid_session_redis import RedisSessionFactory

from pyramid_session_multi.events import SessionRejected
from pyramid_session_multi.lifecycle.loading import validator_check
from tests.support.apps import build_app, set_cookie_names, signed_factory

CURRENT_VERSION = {"value": "1"}


def version_validator(request, session):
    """Valid while the session was written under the current version."""
    stored = session.get("version")
    return stored is None or stored == CURRENT_VERSION["value"]


def versioned_view(request):
    session = request.session_multi["account"]
    if request.method == "POST":
        session["version"] = CURRENT_VERSION["value"]
        session["user"] = request.POST["user"]
    return {"user": session.get("user")}


def make_app(factory, calls):
    def validator(request, session):
        calls.append(session)
        return version_validator(request, session)

    def setup(config):
        config.register_session_factory("account", factory, validator=validator)
        config.add_route("account", "/account")
        config.add_view(versioned_view, route_name="account", renderer="json")

    return build_app(setup)


@pytest.fixture(params=["signed", "redis"])
def factory(request):
    if request.param == "signed":
        return signed_factory("account_cookie")
    redis_url = request.getfixturevalue("redis_db")
    return RedisSessionFactory(
        secret="s", cookie_name="account_cookie", redis_url=redis_url, timeout=60
    )


@pytest.fixture(autouse=True)
def reset_version():
    CURRENT_VERSION["value"] = "1"
    yield
    CURRENT_VERSION["value"] = "1"


def test_valid_session_is_served(factory):
    calls = []
    app = make_app(factory, calls)
    app.post("/account", {"user": "ann"})
    assert app.get("/account").json == {"user": "ann"}
    assert len(calls) == 2


def test_invalid_session_is_dropped_and_a_fresh_one_used(factory):
    calls = []
    app = make_app(factory, calls)
    app.post("/account", {"user": "ann"})
    CURRENT_VERSION["value"] = "2"  # e.g. the password changed
    assert app.get("/account").json == {"user": None}
    response = app.post("/account", {"user": "bob"})
    assert "account_cookie" in set_cookie_names(response)
    assert app.get("/account").json == {"user": "bob"}


def test_validator_called_once_per_request_and_not_for_untouched(factory):
    calls = []
    app = make_app(factory, calls)
    app.get("/loaded")
    assert calls == []
    app.get("/account")
    assert len(calls) == 1


@pytest.mark.parametrize("answer", [False, None, 0, "", []])
def test_any_falsy_answer_of_the_validator_rejects(answer):
    rejected = []

    def setup(config):
        config.register_session_factory(
            "account", signed_factory("account_cookie"), validator=lambda request, session: answer
        )
        config.add_route("account", "/account")
        config.add_view(versioned_view, route_name="account", renderer="json")
        config.add_subscriber(lambda event: rejected.append(event.reason), SessionRejected)

    app = build_app(setup)
    app.post("/account", {"user": "ann"})
    assert app.get("/account").json == {"user": None}
    assert rejected == ["validator", "validator"]


def test_the_validator_sees_the_request():
    def only_on_its_path(request, session):
        return request.path == "/account"

    def setup(config):
        config.register_session_factory(
            "account", signed_factory("account_cookie"), validator=only_on_its_path
        )
        config.add_route("account", "/account")
        config.add_view(versioned_view, route_name="account", renderer="json")
        config.add_route("elsewhere", "/elsewhere")
        config.add_view(versioned_view, route_name="elsewhere", renderer="json")

    app = build_app(setup)
    app.post("/account", {"user": "ann"})
    assert app.get("/account").json == {"user": "ann"}
    assert app.get("/elsewhere").json == {"user": None}


def test_a_raising_validator_fails_the_load_named(caplog):
    def broken(request, session):
        raise LookupError("the user table is gone")

    def setup(config):
        config.register_session_factory(
            "account", signed_factory("account_cookie"), validator=broken
        )
        config.add_route("account", "/account")
        config.add_view(versioned_view, route_name="account", renderer="json")

    app = build_app(setup)
    with pytest.raises(LookupError) as info:
        app.get("/account")
    assert info.value.__notes__ == [
        "pyramid_session_multi: raised by the validator of namespace 'account'"
    ]
    assert [record.getMessage() for record in caplog.records] == [
        "namespace 'account' could not be loaded: LookupError: the user table is gone"
    ]


def test_a_namespace_without_a_validator_is_not_checked_by_it():
    namespace_config = SimpleNamespace(validator=None, namespace="account")
    assert validator_check(None, namespace_config, None, {"anything": 1}, None) is None
