"""Lifecycle events through Pyramid's event system, on real backends."""

import importlib

import pytest
import webtest

from pyramid_session_multi import events
from pyramid_session_multi.events import (
    SessionInvalidated,
    SessionLoaded,
    SessionRejected,
    SessionRotated,
    hash_session_id,
)
from pyramid_session_multi.interfaces import ISessionEvent
from tests.support.apps import build_app, build_wsgi, signed_factory
from tests.support.backend_app import register_backends


class Recorder:
    def __init__(self):
        self.events = []

    def __call__(self, event):
        self.events.append(event)

    def of(self, event_class):
        return [(e.namespace, e) for e in self.events if isinstance(e, event_class)]


@pytest.fixture
def recorder():
    return Recorder()


@pytest.fixture
def app(recorder, redis_db, tmp_path):
    def setup(config):
        register_backends(config, redis_db, tmp_path)
        config.add_subscriber(recorder, ISessionEvent)

    return webtest.TestApp(build_wsgi(setup, {events.ID_HASH_SETTING: "log-key"}))


def test_loaded_once_per_namespace_per_request(app, recorder):
    app.post("/s/redis", {"value": "v"})
    loaded = recorder.of(SessionLoaded)
    assert [namespace for namespace, _ in loaded] == ["redis"]
    event = loaded[0][1]
    assert event.session is not None and event.request is not None
    assert event.session_id_hash is None  # a new session: no id yet


def test_rotated_carries_hashes_of_both_ids_never_the_ids(app, recorder, redis_db):
    app.post("/s/redis", {"value": "v"})
    app.get("/s/redis")
    old_id = recorder.of(SessionLoaded)[-1][1].session.session_id
    app.get("/rotate", {"ns": "redis"})
    [(namespace, event)] = recorder.of(SessionRotated)
    new_id = event.session.session_id
    assert namespace == "redis" and new_id != old_id
    assert event.old_id_hash == hash_session_id({events.ID_HASH_SETTING: "log-key"}, old_id)
    assert event.session_id_hash == hash_session_id({events.ID_HASH_SETTING: "log-key"}, new_id)
    assert old_id not in (event.old_id_hash, event.session_id_hash)
    assert len(event.session_id_hash) == 16


def test_rotated_for_a_client_side_session_has_no_id(app, recorder):
    app.post("/s/signed", {"value": "v"})
    app.get("/rotate")
    [(_, event)] = recorder.of(SessionRotated)
    assert (event.old_id_hash, event.session_id_hash) == (None, None)


def test_invalidated_for_each_namespace_the_client_had(app, recorder):
    app.post("/s/beaker", {"value": "v"})
    app.post("/s/signed", {"value": "v"})
    app.get("/invalidate")
    invalidated = recorder.of(SessionInvalidated)
    assert sorted(namespace for namespace, _ in invalidated) == ["beaker", "signed"]
    beaker = dict(invalidated)["beaker"]
    assert beaker.session_id_hash is not None


def test_rejected_when_the_validator_says_no(recorder):
    def setup(config):
        config.register_session_factory(
            "a", signed_factory("cookie_a"), validator=lambda request, session: False
        )
        config.add_subscriber(recorder, SessionRejected)

    app = build_app(setup)
    app.get("/s/a")
    [(namespace, event)] = recorder.of(SessionRejected)
    assert (namespace, event.reason) == ("a", "validator")


def test_nothing_is_built_when_nobody_listens(monkeypatch):
    built = []
    for event_class in (SessionLoaded, SessionRotated, SessionInvalidated, SessionRejected):

        class Counting(event_class):
            def __init__(self, *args, counted=event_class, **kwargs):
                built.append(counted)
                super().__init__(*args, **kwargs)

        for module in (
            "pyramid_session_multi.manager",
            "pyramid_session_multi.lifecycle.changes",
            "pyramid_session_multi.lifecycle.ending",
        ):
            if hasattr(importlib.import_module(module), event_class.__name__):
                monkeypatch.setattr(f"{module}.{event_class.__name__}", Counting)

    def quiet(config):
        config.register_session_factory("a", signed_factory("cookie_a"))
        config.add_subscriber(lambda event: None, "pyramid.events.NewRequest")

    app = build_app(quiet)
    app.post("/s/a", {"value": "v"})
    app.get("/rotate")
    app.get("/invalidate")
    assert built == []
    heard = Recorder()

    def listening(config):
        quiet(config)
        config.add_subscriber(heard, SessionLoaded)

    build_app(listening).get("/s/a")
    assert built == [SessionLoaded]


def test_without_a_key_hashes_agree_within_the_process_only():
    assert hash_session_id({}, "abc") == hash_session_id(None, "abc")
    assert hash_session_id({}, "abc") != hash_session_id({events.ID_HASH_SETTING: "k"}, "abc")
    assert hash_session_id({}, None) is None


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("env:PSM_NO_SUCH_HASH_KEY", "is not set"),
        ("env:PSM_EMPTY_HASH_KEY", "is empty"),
        ("", "is empty"),
        ("  ", "is empty"),
    ],
)
def test_an_unusable_id_hash_key_is_an_error_at_start_up(monkeypatch, value, problem):
    from pyramid.config import Configurator

    from pyramid_session_multi.settings import SettingsError

    monkeypatch.delenv("PSM_NO_SUCH_HASH_KEY", raising=False)
    monkeypatch.setenv("PSM_EMPTY_HASH_KEY", "")
    config = Configurator(settings={events.ID_HASH_SETTING: value})
    with pytest.raises(SettingsError, match=rf"session_multi\.id_hash_key\b.*{problem}"):
        config.include("pyramid_session_multi")


def test_an_id_hash_key_from_the_environment_keys_the_hashes(monkeypatch):
    monkeypatch.setenv("PSM_HASH_KEY", "from-the-environment")
    settings = {events.ID_HASH_SETTING: "env:PSM_HASH_KEY"}
    build_app(settings=settings)  # accepted at start-up
    assert hash_session_id(settings, "abc") == hash_session_id(
        {events.ID_HASH_SETTING: "from-the-environment"}, "abc"
    )
    monkeypatch.delenv("PSM_HASH_KEY")
    with pytest.raises(ValueError, match="PSM_HASH_KEY"):  # never a silent random key
        hash_session_id(settings, "abc")
