"""Save failures: ``on_save_error = report | fail`` per namespace, the
SessionSaveFailed event, and each distinct store failure logged once per
interval with a count; on a real redis-server stopped mid-request and a
Beaker file store taken away mid-request."""

import logging
import shutil

import pytest
import redis
import webtest
from pyramid.config import Configurator
from pyramid.exceptions import ConfigurationError
from pyramid_session_redis import RedisSessionFactory

from pyramid_session_multi.events import SessionSaveFailed
from pyramid_session_multi.failures import FailureLog
from pyramid_session_multi.interfaces import IFailureLog, ISessionSaveFailed
from pyramid_session_multi.settings import SettingsError
from tests.support.apps import build_wsgi
from tests.support.backend_app import beaker_file
from tests.support.redis_server import redis_keys
from tests.support.redis_topologies import redis_namespace


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


LOGGER = logging.getLogger("tests.failures")


def boom(message="Error 111 connecting to 127.0.0.1:1. Connection refused."):
    try:
        raise OSError("refused by the kernel")
    except OSError as cause:
        try:
            raise redis.exceptions.ConnectionError(message) from cause
        except redis.exceptions.ConnectionError as exc:
            return exc


# -- the log ---------------------------------------------------------------------------


def test_a_failure_seen_again_within_the_interval_is_counted_not_logged(caplog):
    clock = Clock()
    log = FailureLog(10, clock)
    caplog.set_level(logging.ERROR, logger="tests.failures")
    assert log.report(LOGGER, "ns", "could not be saved", boom()) is True
    for _ in range(99):
        assert log.report(LOGGER, "ns", "could not be saved", boom()) is False
    assert len(caplog.records) == 1
    first = caplog.records[0]
    assert first.getMessage() == (
        "namespace 'ns' could not be saved: ConnectionError: "
        "Error 111 connecting to 127.0.0.1:1. Connection refused."
    )
    assert first.exc_info is not None  # one traceback per interval
    clock.now += 10
    assert log.report(LOGGER, "ns", "could not be saved", boom()) is True
    assert len(caplog.records) == 2
    assert (
        caplog.records[1]
        .getMessage()
        .endswith("(and 99 more times since it was last logged, not logged one by one)")
    )


def test_distinct_failures_are_each_logged(caplog):
    log = FailureLog(10, Clock())
    caplog.set_level(logging.ERROR, logger="tests.failures")
    log.report(LOGGER, "ns", "could not be saved", boom())
    log.report(LOGGER, "other", "could not be saved", boom())
    log.report(LOGGER, "ns", "could not be loaded", boom())
    log.report(LOGGER, "ns", "could not be saved", boom("another message"))
    log.report(LOGGER, "ns", "could not be saved", ValueError("x"))
    assert len(caplog.records) == 5


def test_a_load_failure_is_logged_without_its_traceback(caplog):
    log = FailureLog(10, Clock())
    caplog.set_level(logging.ERROR, logger="tests.failures")
    log.report(LOGGER, "ns", "could not be loaded", boom(), traceback=False)
    assert caplog.records[0].exc_info is None


def test_the_kinds_remembered_are_bounded():
    log = FailureLog(10, Clock())
    for number in range(1000):
        log.report(LOGGER, "ns", "could not be saved", boom(f"message {number}"))
    assert len(log._seen) <= 256


def test_an_outage_is_logged_once_per_interval_with_a_count(own_redis_server, caplog):
    settings = {
        "session_multi.namespaces": "ns",
        **redis_namespace("ns", redis_url=own_redis_server.url),
    }
    wsgi = build_wsgi(settings=settings)
    clock = Clock()
    wsgi.registry.registerUtility(FailureLog(30, clock), IFailureLog)
    app = webtest.TestApp(wsgi)
    app.post("/s/ns", {"value": "before"})
    own_redis_server.stop()
    caplog.set_level(logging.WARNING, logger="pyramid_session_multi")
    for _ in range(50):
        with pytest.raises(redis.exceptions.ConnectionError):
            app.get("/s/ns")
    loaded = [r for r in caplog.records if "could not be loaded" in r.getMessage()]
    # the first failure, and the breaker's first refusal: two distinct ones
    assert len(loaded) == 2
    assert all(record.exc_info is None for record in loaded)
    clock.now += 30
    with pytest.raises(redis.exceptions.ConnectionError):
        app.get("/s/ns")
    loaded = [r for r in caplog.records if "could not be loaded" in r.getMessage()]
    assert len(loaded) == 3 and "(and 48 more times" in loaded[-1].getMessage()
    assert len(caplog.records) <= 4  # and the breaker's one line


# -- on_save_error -----------------------------------------------------------------------


def saving_app(factory, on_save_error=None, take_away=None):
    """Namespace ``ns`` on ``factory``; ``/broken`` loads it, calls ``take_away()``
    (the store goes away), then writes to it.  Returns the app and the events."""
    events = []

    def broken_view(request):
        session = request.session_multi["ns"]
        take_away()
        session["value"] = "written while the store went away"
        return {}

    def setup(config):
        options = {} if on_save_error is None else {"on_save_error": on_save_error}
        config.register_session_factory("ns", factory, **options)
        config.add_subscriber(events.append, ISessionSaveFailed)
        config.add_route("broken", "/broken")
        config.add_view(broken_view, route_name="broken", renderer="json")

    return webtest.TestApp(build_wsgi(setup)), events


def redis_factory(server):
    return RedisSessionFactory(
        secret="failures-secret-of-at-least-32-bytes!",
        cookie_name="ns",
        redis_url=server.url,
        timeout=600,
        redis_socket_timeout=2,
    )


def test_a_redis_save_that_fails_answers_and_reports_by_default(own_redis_server):
    app, events = saving_app(redis_factory(own_redis_server), take_away=own_redis_server.stop)
    response = app.get("/broken")
    assert response.status_int == 200
    assert "ns=" not in response.headers.get("Set-Cookie", "")
    assert [type(event) for event in events] == [SessionSaveFailed]
    assert events[0].namespace == "ns"
    assert events[0].reason.startswith("ConnectionError: ")
    assert isinstance(events[0].error, redis.exceptions.ConnectionError)
    own_redis_server.start()
    assert redis_keys(own_redis_server.url) == []


def test_a_redis_save_that_fails_fails_the_response_under_fail(own_redis_server):
    app, events = saving_app(
        redis_factory(own_redis_server), "fail", take_away=own_redis_server.stop
    )
    with pytest.raises(redis.exceptions.ConnectionError) as info:
        app.get("/broken")
    assert any("namespace 'ns' could not be saved" in note for note in info.value.__notes__)
    assert [event.namespace for event in events] == ["ns"]
    own_redis_server.start()
    assert redis_keys(own_redis_server.url) == []
    # the store is back: the namespace saves as before, before the response goes out
    app.post("/s/ns", {"value": "after"})
    assert app.get("/s/ns").json["value"] == "after"
    assert len(redis_keys(own_redis_server.url)) == 1


def take_beaker_away(directory):
    def take_away():
        shutil.rmtree(directory)
        directory.write_text("no longer a directory")

    return take_away


@pytest.mark.parametrize("on_save_error", [None, "report", "fail"])
def test_a_beaker_store_removed_mid_request(tmp_path, on_save_error):
    store = tmp_path / "store"
    store.mkdir()
    app, events = saving_app(beaker_file(store, "ns"), on_save_error, take_beaker_away(store))
    if on_save_error == "fail":
        with pytest.raises(OSError):
            app.get("/broken")
    else:
        response = app.get("/broken")
        assert response.status_int == 200 and "Set-Cookie" not in response.headers
    assert [event.namespace for event in events] == ["ns"]
    assert events[0].reason


def test_on_save_error_from_settings_and_its_mistakes(own_redis_server):
    def settings(value):
        return {
            "session_multi.namespaces": "ns",
            **redis_namespace("ns", redis_url=own_redis_server.url, on_save_error=value),
        }

    config = Configurator(settings=settings(" Fail "))
    config.include("pyramid_session_multi")
    config.commit()
    from pyramid_session_multi.config import get_manager_config

    assert get_manager_config(config.registry).get("ns").on_save_error == "fail"
    for wrong in ("", "raise", "true"):
        config = Configurator(settings=settings(wrong))
        with pytest.raises(SettingsError) as info:
            config.include("pyramid_session_multi")
        assert "session_multi.ns.on_save_error" in str(info.value)
        assert "report or fail" in str(info.value)


def test_on_save_error_in_code_is_refused_naming_the_argument(own_redis_server):
    config = Configurator()
    config.include("pyramid_session_multi")
    with pytest.raises(ConfigurationError, match="on_save_error is 'report' or 'fail'"):
        config.register_session_factory(
            "ns", redis_factory(own_redis_server), on_save_error="raise"
        )
