"""Validation on load: a session that no longer validates is dropped."""

import pytest
from pyramid_session_redis import RedisSessionFactory

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
