"""Session lifetimes: idle and absolute timeouts, enforced alike on every library.

Real libraries (signed cookie, NaCl, Redis, Beaker on files and on SQLite)
and a real redis-server.  One real-time test per kind of timeout, with short
timeouts; the others move the add-on's clock (``lifetime.clock``) instead of
sleeping.
"""

import sqlite3
import time
from collections.abc import MutableMapping

import pytest
import redis
import webtest
from pyramid.config import Configurator
from pyramid.exceptions import ConfigurationError
from pyramid.session import SignedCookieSessionFactory

from pyramid_session_multi.config import get_manager_config
from pyramid_session_multi.describe import describe_lifetime
from pyramid_session_multi.events import SessionExpired, SessionRejected
from pyramid_session_multi.lifecycle import lifetime
from pyramid_session_multi.settings import SettingsError
from pyramid_session_multi.testing import MemoryRevocationStore
from tests.support.lifetime_apps import (
    CLIENT_SIDE,
    LIBRARIES,
    app_with_view,
    build_lifetime_app,
    build_lifetime_wsgi,
    library_factory,
    set_cookie_headers,
)
from tests.support.redis_server import redis_keys

#: each server-side namespace merging its saves (the default) or overwriting
#: (then contained where its library queued its callbacks: see lifecycle/saving.py)
WRITES = pytest.mark.parametrize("writes", [{}, {"concurrent_writes": "overwrite"}])


def every_library(redis_url, directory, events=None, **timeouts):
    def register(config):
        for name in LIBRARIES:
            config.register_session_factory(
                name, library_factory(name, redis_url, directory), **timeouts
            )
        if events is not None:
            config.add_subscriber(lambda event: events.append(event), SessionExpired)

    return register


def stored_counts(redis_url, directory):
    """What the server-side stores hold: Redis keys, Beaker files, SQLite rows."""
    client = redis.StrictRedis.from_url(redis_url)
    try:
        keys = len(client.keys("*"))
    finally:
        client.close()
    files = [path for path in (directory / "beaker").rglob("*") if path.is_file()]
    database = directory / "sessions.sqlite"
    rows = 0
    if database.exists():
        with sqlite3.connect(database) as connection:
            rows = connection.execute("select count(*) from beaker_sessions").fetchone()[0]
    return {"redis": keys, "beaker": len(files), "database": rows}


def test_an_idle_session_expires_on_every_library_in_real_time(redis_db, tmp_path):
    events = []
    app = build_lifetime_app(every_library(redis_db, tmp_path, events, idle_timeout=1))
    for name in LIBRARIES:
        app.get(f"/w/{name}", {"value": name})
    counts = stored_counts(redis_db, tmp_path)
    # the Redis key lives at most the idle second (it may be gone already on a slow machine)
    assert counts["redis"] in (0, 1) and (counts["beaker"], counts["database"]) == (1, 1)

    time.sleep(1.3)

    # Redis dropped its key by itself, when the idle window ended
    assert stored_counts(redis_db, tmp_path) == {"redis": 0, "beaker": 1, "database": 1}
    for name in LIBRARIES:
        response = app.get(f"/r/{name}")
        assert response.json["value"] is None, name
        if name != "redis":
            (header,) = set_cookie_headers(response, name)
            assert "Max-Age=0" in header, name
    assert sorted((event.namespace, event.reason) for event in events) == sorted(
        (name, "idle") for name in LIBRARIES if name != "redis"
    )
    # deleted at once, not left to expire
    assert stored_counts(redis_db, tmp_path) == {"redis": 0, "beaker": 0, "database": 0}
    # the namespace goes on with a fresh session
    for name in LIBRARIES:
        assert app.get(f"/w/{name}", {"value": "again"}).json == {"value": "again"}
        assert app.get(f"/r/{name}").json["value"] == "again"


def test_a_busy_session_lives_past_its_idle_window_and_ends_at_its_absolute_time(
    redis_db, tmp_path
):
    events = []
    app = build_lifetime_app(
        every_library(redis_db, tmp_path, events, idle_timeout=2, absolute_timeout=4)
    )
    started = time.monotonic()
    for name in LIBRARIES:
        app.get(f"/w/{name}", {"value": name})
    # in use every 0.3 s: alive past the first idle window; a read is judged
    # alive only while it starts well inside the absolute time (a loaded
    # machine may take long over a round)
    judged_late = 0.0
    while time.monotonic() - started < 2.6:
        time.sleep(0.3)
        for name in LIBRARIES:
            at = time.monotonic() - started
            value = app.get(f"/r/{name}").json["value"]
            if at < 3.5:
                assert value == name, name
                judged_late = max(judged_late, at)
    assert judged_late > 2.0  # a read was judged alive after the idle window
    if time.monotonic() - started < 3.5:
        assert events == []  # nothing ended while in use
    while time.monotonic() - started < 4.3:
        time.sleep(0.3)
        for name in LIBRARIES:
            app.get(f"/r/{name}")
    ended = sorted((event.namespace, event.reason) for event in events)
    # Redis may have dropped its key by itself first, at the same absolute end
    assert [e for e in ended if e[0] != "redis"] == sorted(
        (name, "absolute") for name in LIBRARIES if name != "redis"
    )
    assert [e for e in ended if e[0] == "redis"] in ([], [("redis", "absolute")])
    for name in LIBRARIES:
        assert app.get(f"/r/{name}").json["value"] is None
    assert stored_counts(redis_db, tmp_path)["redis"] == 0


@WRITES
def test_the_stamps_stay_out_of_the_applications_sight(redis_db, tmp_path, writes):
    app = build_lifetime_app(
        every_library(redis_db, tmp_path, idle_timeout=60, absolute_timeout=600, **writes)
    )
    for name in LIBRARIES:
        app.get(f"/w/{name}", {"value": name})
        seen = app.get(f"/keys/{name}").json
        for view in ("keys", "items", "iter"):
            assert lifetime.LIFETIME_KEY not in seen[view], (name, view)
            assert "value" in seen[view]
        # Beaker shows its own bookkeeping; the add-on adds nothing to it
        assert seen["len"] == len(seen["keys"])


def write_commands(redis_url):
    client = redis.StrictRedis.from_url(redis_url)
    try:
        stats = client.info("commandstats")
    finally:
        client.close()
    return sum(stats.get(f"cmdstat_{name}", {}).get("calls", 0) for name in ("set", "setex"))


def test_a_read_inside_the_window_sends_no_cookie_and_writes_nothing(redis_db, tmp_path):
    app = build_lifetime_app(
        every_library(redis_db, tmp_path, idle_timeout=60, absolute_timeout=600)
    )
    for name in LIBRARIES:
        app.get(f"/w/{name}", {"value": name})
    writes = write_commands(redis_db)
    files = {
        path: path.stat().st_mtime_ns for path in (tmp_path / "beaker").rglob("*") if path.is_file()
    }
    for name in LIBRARIES:
        response = app.get(f"/r/{name}")
        assert set_cookie_headers(response, name) == [], name
    # pyramid_session_redis compared what it loaded with what it holds: unchanged
    assert write_commands(redis_db) == writes
    # Beaker rewrites its file for its own accessed time (save_accessed_time), as without
    # the add-on; the stamps it carries are the ones it loaded
    assert set(files) == {path for path in (tmp_path / "beaker").rglob("*") if path.is_file()}


def test_use_moves_the_idle_clock_once_a_tenth_of_the_window_has_passed(redis_db, tmp_path, clock):
    app = build_lifetime_app(every_library(redis_db, tmp_path, idle_timeout=100))
    for name in LIBRARIES:
        app.get(f"/w/{name}", {"value": name})
    writes = write_commands(redis_db)
    clock.at(9)  # under a tenth of the window: nothing is written
    for name in CLIENT_SIDE:
        assert set_cookie_headers(app.get(f"/r/{name}"), name) == []
    app.get("/r/redis")
    assert write_commands(redis_db) == writes
    clock.at(11)  # past it: written once, to carry the new stamp
    for name in CLIENT_SIDE:
        assert len(set_cookie_headers(app.get(f"/r/{name}"), name)) == 1
        assert set_cookie_headers(app.get(f"/r/{name}"), name) == []
    app.get("/r/redis")
    assert write_commands(redis_db) == writes + 1
    for name in ("beaker", "database"):
        app.get(f"/r/{name}")
    clock.at(105)  # 94 s after the last stamp: still alive
    for name in LIBRARIES:
        assert app.get(f"/r/{name}").json["value"] == name, name
    clock.at(105 + 101)
    for name in LIBRARIES:
        assert app.get(f"/r/{name}").json["value"] is None, name


@WRITES
def test_rotate_restarts_the_absolute_clock(redis_db, tmp_path, clock, writes):
    events = []
    app = build_lifetime_app(
        every_library(redis_db, tmp_path, events, absolute_timeout=100, **writes)
    )
    for name in LIBRARIES:
        app.get(f"/w/{name}", {"value": name})
    clock.at(90)
    app.get("/rotate", {"ns": ",".join(LIBRARIES)})
    clock.at(150)
    for name in LIBRARIES:
        assert app.get(f"/r/{name}").json["value"] == name, name
    assert events == []
    clock.at(191)
    for name in LIBRARIES:
        assert app.get(f"/r/{name}").json["value"] is None, name
    assert {event.reason for event in events} == {"absolute"}


def written_before_the_timeouts(name, tmp_path, value="old"):
    """The cookie of a session ``name`` written by the app before it had timeouts."""
    before = build_lifetime_app(
        lambda config: config.register_session_factory(name, library_factory(name, "", tmp_path))
    )
    before.post(f"/w/{name}", {"value": value})
    return before.cookies[name]


def with_timeouts(name, tmp_path, **timeouts):
    return build_lifetime_app(
        lambda config: config.register_session_factory(
            name, library_factory(name, "", tmp_path), **timeouts
        )
    )


def test_a_session_from_before_the_timeouts_starts_its_clocks_when_first_seen(tmp_path, clock):
    # Beaker keeps no time the add-on reads as the last use: the idle clock
    # starts when the session is first seen with timeouts
    cookie = written_before_the_timeouts("beaker", tmp_path)
    clock.at(500)
    after = with_timeouts("beaker", tmp_path, idle_timeout=100)
    after.set_cookie("beaker", cookie)
    assert after.get("/r/beaker").json["value"] == "old"
    clock.at(550)
    assert after.get("/r/beaker").json["value"] == "old"
    clock.at(601 + 100)
    assert after.get("/r/beaker").json["value"] is None


def test_a_pyramid_cookie_from_before_the_timeouts_is_judged_by_its_own_times(tmp_path, clock):
    # the cookie says when pyramid last issued it: that is the idle clock
    fresh = written_before_the_timeouts("signed", tmp_path, "fresh")
    stale = written_before_the_timeouts("signed", tmp_path, "stale")
    after = with_timeouts("signed", tmp_path, idle_timeout=100, absolute_timeout=1000)
    clock.at(50)
    after.set_cookie("signed", fresh)
    response = after.get("/r/signed")
    assert response.json["value"] == "fresh"
    assert len(set_cookie_headers(response, "signed")) == 1  # half the window gone: issued again
    clock.at(50 + 99)
    assert after.get("/r/signed").json["value"] == "fresh"
    clock.at(102)  # 102 s after pyramid issued it, never used since
    after.reset()
    after.set_cookie("signed", stale)
    assert after.get("/r/signed").json["value"] is None


def test_a_bound_namespace_follows_its_expired_partner(redis_db, tmp_path, clock):
    rejected = []

    def register(config):
        config.register_session_factory(
            "account", library_factory("redis", redis_db, tmp_path, "account"), absolute_timeout=100
        )
        config.register_session_factory(
            "admin", library_factory("signed", redis_db, tmp_path, "admin"), bound_to="account"
        )
        config.add_subscriber(lambda event: rejected.append(event.reason), SessionRejected)

    app = build_lifetime_app(register)
    app.get("/w/account", {"value": "a"})
    app.get("/w/admin", {"value": "b"})
    assert app.get("/r/admin").json["value"] == "b"
    clock.at(101)
    assert app.get("/r/admin").json["value"] is None
    assert rejected == ["binding"]
    assert app.get("/r/account").json["value"] is None


@pytest.mark.parametrize("name", ["signed", "redis", "beaker"])
def test_an_invalidated_session_starts_fresh_stamps(tmp_path, clock, redis_db, name):
    def invalidate_and_write(request):
        session = request.session_multi[name]
        session.invalidate()  # the library's own, not the manager's
        session["value"] = "after"
        return {}

    factory = library_factory(name, redis_db, tmp_path)
    app = app_with_view(name, factory, invalidate_and_write, absolute_timeout=100)
    app.get(f"/w/{name}", {"value": "before"})
    clock.at(90)
    app.get("/again")
    clock.at(150)  # 150 s after the first session, 60 after the second began
    assert app.get(f"/r/{name}").json["value"] == "after"


def test_a_beaker_session_keeps_its_class_invalidate_which_starts_fresh_stamps(tmp_path, clock):
    # A Beaker namespace's sessions are of the add-on's prepared class, whose
    # invalidate() resets the lifetime itself: nothing is set on each session.
    seen = []

    def invalidate_and_write(request):
        session = request.session_multi["beaker"]
        seen.append("invalidate" in vars(session))
        session.invalidate()
        session["value"] = "after"
        return {}

    factory = library_factory("beaker", "", tmp_path)
    app = app_with_view("beaker", factory, invalidate_and_write, absolute_timeout=100)
    app.get("/w/beaker", {"value": "before"})
    clock.at(90)
    app.get("/again")
    assert seen == [False]
    clock.at(150)
    assert app.get("/r/beaker").json["value"] == "after"
    clock.at(191)  # the second session's own absolute timeout
    assert app.get("/r/beaker").json["value"] is None


def test_a_beaker_session_invalidated_through_its_class_forgets_its_user(tmp_path, clock):
    # type(session).invalidate(session), as a helper or a super() call may do it,
    # is a logout too: fresh stamps, of nobody (the attack of 4 December)
    after = []

    def invalidate_through_the_class(request):
        session = request.session_multi["beaker"]
        type(session).invalidate(session)
        after.append(lifetime.lifetime_of(session).stamps)
        return {}

    factory = library_factory("beaker", "", tmp_path)
    app = app_with_view("beaker", factory, invalidate_through_the_class, absolute_timeout=100)
    app.get("/login", {"userid": "alice", "ns": "beaker"})
    clock.at(50)
    app.get("/again")
    ((stamps,),) = [after]
    assert stamps.userid is None and stamps.created == clock.start + 50


def test_a_beaker_invalidate_that_raises_keeps_the_stamps(tmp_path, clock):
    # The application's own invalidate() raised: Beaker ended the session all
    # the same, but the request failed, and nothing it did is taken for a logout.
    stamps = []

    class Refused(Exception):
        pass

    def invalidate_raising(request):
        session = request.session_multi["beaker"]
        before = lifetime.lifetime_of(session).stamps
        type(session).session_multi_session_class.invalidate = _refuse
        try:
            with pytest.raises(Refused):
                session.invalidate()
        finally:
            del type(session).session_multi_session_class.invalidate
        stamps.append((before, lifetime.lifetime_of(session).stamps))
        return {}

    def _refuse(session):
        raise Refused

    factory = library_factory("beaker", "", tmp_path)
    app = app_with_view("beaker", factory, invalidate_raising, absolute_timeout=100)
    app.get("/w/beaker", {"value": "before"})
    clock.at(90)
    app.get("/again")
    ((before, after),) = stamps
    assert after.created == before.created == clock.start


@pytest.mark.parametrize("value", [0, -1, 1.5, "10", True])
@pytest.mark.parametrize("argument", ["idle_timeout", "absolute_timeout"])
def test_a_timeout_that_is_not_a_positive_whole_number_is_refused(tmp_path, argument, value):
    config = Configurator()
    config.include("pyramid_session_multi")
    with pytest.raises(ConfigurationError) as raised:
        config.register_session_factory(
            "prefs", library_factory("signed", "", tmp_path, "prefs"), **{argument: value}
        )
    message = str(raised.value)
    assert "'prefs'" in message and argument in message and "positive whole" in message


@pytest.mark.parametrize("value", ["", "0", "-5", "1.5", "10s", "none", "env:PSM_UNSET_TIMEOUT"])
@pytest.mark.parametrize("option", ["idle_timeout", "absolute_timeout"])
def test_a_timeout_setting_is_a_positive_whole_number(option, value, monkeypatch):
    monkeypatch.delenv("PSM_UNSET_TIMEOUT", raising=False)
    settings = {
        "session_multi.namespaces": "prefs",
        "session_multi.prefs.factory": "signed",
        "session_multi.prefs.secret": "a-secret-of-enough-length-for-the-check",
        f"session_multi.prefs.{option}": value,
    }
    config = Configurator(settings=settings)
    with pytest.raises(SettingsError) as raised:
        config.include("pyramid_session_multi")
    assert f"session_multi.prefs.{option}" in str(raised.value)


def test_timeout_settings_reach_the_namespace():
    settings = {
        "session_multi.namespaces": "prefs",
        "session_multi.prefs.factory": "signed",
        "session_multi.prefs.secret": "a-secret-of-enough-length-for-the-check",
        "session_multi.prefs.idle_timeout": " 900 ",
        "session_multi.prefs.absolute_timeout": "28800",
    }
    config = Configurator(settings=settings)
    config.include("pyramid_session_multi")
    config.commit()
    from pyramid_session_multi.config import get_manager_config

    namespace_config = get_manager_config(config.registry).get("prefs")
    assert (namespace_config.idle_timeout, namespace_config.absolute_timeout) == (900, 28800)
    assert namespace_config.stamped and namespace_config.contained and not namespace_config.plain


def namespace_part(html, namespace):
    start = html.index(f'id="session-multi-{namespace}"')
    end = html.find('<div class="session-multi-namespace"', start + 1)
    return html[start : end if end > 0 else None]


def test_the_panel_shows_time_left_the_user_and_an_expiry(tmp_path, clock):
    from tests.support.toolbar import panel_html, text_of, toolbar_app

    def setup(config):
        config.register_session_factory(
            "timed", library_factory("signed", "", tmp_path, "timed"),
            idle_timeout=100, absolute_timeout=1000,
        )  # fmt: skip

    app = toolbar_app(setup, "active")
    app.post("/s/timed", {"value": "x"})
    clock.at(5)
    app.get("/rotate", {"ns": "timed"})
    clock.at(14)  # under a tenth of the idle window since the rotation: no new stamp
    app.get("/s/timed")
    part = text_of(namespace_part(panel_html(app), "timed"))
    assert "Idle expiry in 91 s" in part and "absolute expiry in 991 s" in part
    assert "user none recorded" in part
    assert lifetime.LIFETIME_KEY not in part
    clock.at(200)
    app.get("/s/timed")
    html = panel_html(app)
    assert "expired (idle)" in text_of(namespace_part(html, "timed"))


def findings_of(register):
    from pyramid_session_multi.checks import run_checks
    from pyramid_session_multi.config import get_manager_config

    config = Configurator()
    config.include("pyramid_session_multi")
    register(config)
    config.commit()
    return {(f.id, f.namespace) for f in run_checks(get_manager_config(config.registry))}


def test_the_checks_warn_of_a_partner_without_an_absolute_timeout(tmp_path):
    def register(absolute):
        def setup(config):
            config.register_session_factory(
                "account", library_factory("signed", "", tmp_path, "account"),
                idle_timeout=600, absolute_timeout=absolute,
            )  # fmt: skip
            config.register_session_factory(
                "admin", library_factory("signed", "", tmp_path, "admin"), bound_to="account"
            )

        return setup

    assert ("psm.W013", "account") in findings_of(register(None))
    assert ("psm.W013", "account") not in findings_of(register(28800))


def test_the_checks_note_a_library_timeout_shorter_than_the_add_ons(tmp_path):
    from pyramid.session import SignedCookieSessionFactory

    def register(library_timeout, idle):
        def setup(config):
            config.register_session_factory(
                "prefs",
                SignedCookieSessionFactory("s" * 40, cookie_name="prefs", timeout=library_timeout),
                idle_timeout=idle,
            )

        return setup

    assert ("psm.I003", "prefs") in findings_of(register(1200, 1800))
    # equal: the library empties the session first, and no SessionExpired is sent
    assert ("psm.I003", "prefs") in findings_of(register(1800, 1800))
    assert ("psm.I003", "prefs") not in findings_of(register(None, 1800))
    assert ("psm.I003", "prefs") not in findings_of(register(3600, 1800))
    # the add-on's idle timeout is an idle timeout: no W006 for the library's lack of one
    assert ("psm.W006", "prefs") in findings_of(register(None, None))
    assert ("psm.W006", "prefs") not in findings_of(register(None, 1800))


def test_the_load_step_reads_without_marking_the_session_accessed(tmp_path):
    from pyramid.session import SignedCookieSessionFactory

    def register(config):
        # reissue_time=0: any read through the session's accessors re-issues its cookie
        config.register_session_factory(
            "signed",
            SignedCookieSessionFactory("s" * 40, cookie_name="signed", reissue_time=0),
            idle_timeout=600,
        )

    app = build_lifetime_app(register)
    app.get("/w/signed", {"value": "x"})
    time.sleep(1.1)  # pyramid re-issues once a whole second has passed
    assert set_cookie_headers(app.get("/t/signed"), "signed") == []
    response = app.get("/r/signed")
    assert response.json["value"] == "x"
    assert len(set_cookie_headers(response, "signed")) == 1  # the view's own read


@pytest.mark.parametrize("value", ["315360001", "²", "١٠", str(10**17)])
def test_a_timeout_past_ten_years_or_in_other_digits_is_refused(value):
    from pyramid_session_multi.settings import SettingsError
    from tests.support.apps import build_wsgi

    with pytest.raises(SettingsError, match=r"session_multi\.prefs\.idle_timeout"):
        build_wsgi(
            None,
            settings={
                "session_multi.namespaces": "prefs",
                "session_multi.prefs.factory": "signed",
                "session_multi.prefs.secret": "a-secret-of-more-than-32-bytes-0123456789",
                "session_multi.prefs.idle_timeout": value,
            },
        )


def test_a_timeout_past_ten_years_is_refused_in_code():
    from pyramid.exceptions import ConfigurationError

    from tests.support.apps import build_wsgi, signed_factory

    with pytest.raises(ConfigurationError, match="ten years"):
        build_wsgi(
            lambda config: config.register_session_factory(
                "prefs", signed_factory("prefs"), absolute_timeout=10**17
            )
        )


def test_an_application_key_spelled_like_a_hidden_key_is_application_data(
    redis_db, tmp_path, clock
):
    from pyramid_session_multi.libraries.pyramid_cookie import USER_KEY

    # what a client would send to move the clocks ahead and record another user
    ahead = clock.start + 10**6
    forged = {lifetime.LIFETIME_KEY: [ahead, 0, "admin", ahead], USER_KEY: ["admin", 10**6]}

    def register(config):
        every_library(redis_db, tmp_path, absolute_timeout=100)(config)
        # a cookie namespace with a fallback: a new secret
        config.register_session_factory(
            "moved",
            library_factory("signed", redis_db, tmp_path, "moved"),
            absolute_timeout=100,
            fallbacks=[SignedCookieSessionFactory("an-older-secret", cookie_name="moved")],
        )

    app = build_lifetime_app(register)
    names = (*LIBRARIES, "moved")
    for name in names:
        sent = {"value": name, **forged}
        assert app.post_json(f"/u/{name}", sent).json == sent, name
        # kept as the application wrote it, and never taken as the add-on's record
        assert app.get(f"/d/{name}").json == sent, name
    clock.at(50)
    for name in names:
        assert app.get(f"/d/{name}").json == {"value": name, **forged}, name
    clock.at(101)
    for name in names:
        assert app.get(f"/d/{name}").json == {}, name


@WRITES
def test_the_applications_callbacks_see_only_its_data(redis_db, tmp_path, clock, writes):
    seen = []
    app = build_lifetime_app(
        every_library(redis_db, tmp_path, idle_timeout=60, absolute_timeout=600, **writes),
        settings={"seen": seen},
    )
    for name in LIBRARIES:
        for _ in range(2):  # new, then loaded from its store
            del seen[:]
            app.get(f"/cb/{name}", {"value": name})
            assert sorted(seen) == [("finished", ["value"]), ("response", ["value"])], name
        assert app.get(f"/d/{name}").json == {"value": name}


@pytest.mark.parametrize("library_timeout", [None, 3600])
def test_a_redis_session_leaves_the_store_within_the_add_ons_timeouts(
    redis_db, tmp_path, clock, library_timeout
):
    from pyramid_session_redis import RedisSessionFactory

    def register(config):
        config.register_session_factory(
            "redis",
            RedisSessionFactory(
                secret="redis-secret", cookie_name="redis", redis_url=redis_db,
                timeout=library_timeout,
            ),
            idle_timeout=60, absolute_timeout=200,
        )  # fmt: skip

    def ttls():
        client = redis.StrictRedis.from_url(redis_db)
        try:
            return [client.pttl(key) for key in client.keys("*")]
        finally:
            client.close()

    app = build_lifetime_app(register)
    app.get("/w/redis", {"value": "x"})
    (ttl,) = ttls()
    assert 55_000 < ttl <= 60_000  # abandoned now, it is gone once idle
    for at in range(50, 200, 50):
        clock.at(at)
        assert app.get("/r/redis").json["value"] == "x"
        (ttl,) = ttls()
        # never past the idle window, nor past the absolute end
        assert 0 < ttl <= min(60, 200 - at) * 1000
    clock.at(201)
    assert app.get("/r/redis").json["value"] is None
    assert ttls() == []


@pytest.mark.parametrize("view", ["/r/redis", "/w/redis"])
def test_timeouts_add_no_redis_command_while_the_idle_clock_stays(
    redis_db, clock, view, monkeypatch
):
    # the library's own expiry (20 minutes) comes before the timeouts' end: a
    # read sends GET and EXPIRE, a write GET and SETEX, with timeouts or without
    import pyramid_session_redis.session
    import pyramid_session_redis.util
    from pyramid_session_redis import RedisSessionFactory

    # pyramid_session_redis writes its expiry, to the second, into what it
    # stores: a read in a later second than the last save rewrites it (SETEX)
    for module in (pyramid_session_redis.util, pyramid_session_redis.session):
        monkeypatch.setattr(module, "int_time", lambda: int(clock.start))

    def commands(**timeouts):
        def register(config):
            config.register_session_factory(
                "redis",
                RedisSessionFactory(secret="s" * 32, cookie_name="redis", redis_url=redis_db),
                concurrent_writes="overwrite",
                **timeouts,
            )

        app = build_lifetime_app(register)
        app.get("/w/redis", {"value": "x"})
        client = redis.StrictRedis.from_url(redis_db)
        try:
            client.config_resetstat()
            for _ in range(3):
                app.get(view, {"value": "y"})
            stats = client.info("commandstats")
        finally:
            client.close()
        return {name: stat["calls"] for name, stat in stats.items() if "config" not in name}

    plain = commands()
    expected = "cmdstat_expire" if view == "/r/redis" else "cmdstat_setex"
    assert plain == {"cmdstat_get": 3, expected: 3}
    assert commands(idle_timeout=1800, absolute_timeout=28800) == plain


def test_an_application_key_spelled_like_a_hidden_key_migrates_as_application_data(
    redis_db, tmp_path, clock
):
    from pyramid_session_multi.libraries.pyramid_cookie import USER_KEY

    ahead = clock.start + 10**6
    sent = {"value": "x", lifetime.LIFETIME_KEY: [ahead, 0, "admin", ahead], USER_KEY: "admin"}

    def old(config):
        config.register_session_factory(
            "cart", library_factory("redis", redis_db, tmp_path, "old_cart"), absolute_timeout=100
        )

    def new(config):
        config.register_session_factory(
            "cart",
            library_factory("redis", redis_db, tmp_path, "cart"),
            absolute_timeout=100,
            fallbacks=[library_factory("redis", redis_db, tmp_path, "old_cart")],
        )

    client = build_lifetime_app(old)
    client.post_json("/u/cart", sent)
    client.app = build_lifetime_app(new).app
    assert client.get("/d/cart").json == sent  # moved, as the application wrote it
    assert "cart" in client.cookies and len(redis_keys(redis_db)) == 1
    clock.at(101)  # the clocks moved with it, not the client's
    assert client.get("/d/cart").json == {}


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "1700000000.0,0",
        [1700000000.0],
        [1700000000.0, 0.0, "alice"],
        [1700000000.0, 0.0, "alice", 1700000000.0, "more"],
        ["1700000000.0", 0.0],
        [1700000000.0, "0"],
        [True, 0.0],
        [1700000000.0, -1.0],
        [1700000000.0, 0.0, 1.5, 1700000000.0],
        [1700000000.0, 0.0, True, 1700000000.0],
        [1700000000.0, 0.0, "alice", None],
        [1700000000.0, 0.0, "alice", "1700000000.0"],
    ],
)
def test_a_malformed_lifetime_record_is_no_record(raw):
    # a record that is not one the add-on writes (tampered with, or another
    # version's) is not trusted: the session's clocks start again from now
    assert lifetime.Stamps.from_raw(raw) is None


@pytest.mark.parametrize(
    ("raw", "stamps"),
    [
        ([1700000000.0, 12.5], (1700000000.0, 1700000012.5, None, None)),
        ((1700000000, 0), (1700000000.0, 1700000000.0, None, None)),
        (
            [1700000000.0, 1.0, "alice", 1699999999.0],
            (1700000000.0, 1700000001.0, "alice", 1699999999.0),
        ),
        ([1700000000.0, 1.0, 42, 1700000000], (1700000000.0, 1700000001.0, 42, 1700000000.0)),
        ([1700000000, 1.0, None, None], (1700000000.0, 1700000001.0, None, None)),
    ],
)
def test_a_lifetime_record_reads_back_as_written(raw, stamps):
    read = lifetime.Stamps.from_raw(raw)
    assert (read.created, read.active, read.userid, read.login) == stamps
    assert lifetime.Stamps.from_raw(read.as_raw()) == read


class Slotted(dict):
    """A session that takes no attributes (no ``__dict__``)."""

    __slots__ = ()

    def invalidate(self):
        self.clear()

    def changed(self):
        pass


class Wrapped(MutableMapping):
    """A session that is no dict: the add-on has no raw storage for its stamps."""

    def __init__(self):
        self.data = {"value": "v"}

    def __getitem__(self, key):
        return self.data[key]

    def __setitem__(self, key, value):
        self.data[key] = value

    def __delitem__(self, key):
        del self.data[key]

    def __iter__(self):
        return iter(self.data)

    def __len__(self):
        return len(self.data)

    def invalidate(self):
        self.data.clear()


@pytest.mark.parametrize(
    ("session_class", "message"),
    [
        (Slotted, "its sessions \\(Slotted\\) take no attributes"),
        (Wrapped, "its session library \\(unknown\\) gives no raw storage"),
    ],
)
def test_timeouts_on_a_session_that_cannot_keep_stamps_fail_its_load_named(session_class, message):
    def register(config):
        config.register_session_factory(
            "own", lambda request: session_class(), cookie_name="own", idle_timeout=60
        )

    client = webtest.TestApp(build_lifetime_wsgi(register))
    client.set_cookie("own", "an-id")
    with pytest.raises(TypeError, match=f"namespace 'own' has timeouts .* but {message}"):
        client.get("/r/own")


def test_timeouts_on_a_new_session_that_cannot_keep_stamps_fail_its_save_named(caplog):
    # no cookie: nothing to read at load, but the stamps of a session with data
    # have nowhere to go as it is saved; the response goes out, the failure named
    def register(config):
        config.register_session_factory(
            "own", lambda request: Wrapped(), cookie_name="own", idle_timeout=60
        )

    client = webtest.TestApp(build_lifetime_wsgi(register))
    with caplog.at_level("ERROR", logger="pyramid_session_multi"):
        assert client.get("/w/own", {"value": "v"}).json == {"value": "v"}
    (record,) = [r for r in caplog.records if r.levelname == "ERROR"]
    assert "namespace 'own' could not be saved" in record.getMessage()
    assert "gives no raw storage to keep the stamps in" in str(record.exc_info[1])


class NoInvalidate(dict):
    """A session with no ``invalidate()`` of its own or of its class's."""


def test_timeouts_on_a_session_without_invalidate_still_load():
    def register(config):
        config.register_session_factory(
            "own", lambda request: NoInvalidate(), cookie_name="own", idle_timeout=60
        )

    client = webtest.TestApp(build_lifetime_wsgi(register))
    client.set_cookie("own", "an-id")
    assert client.get("/r/own").json == {"value": None, "user": None}


def test_a_session_that_takes_no_attributes_rotates_without_stamps():
    def register(config):
        config.register_session_factory("own", lambda request: Slotted(), cookie_name="own")

    client = webtest.TestApp(build_lifetime_wsgi(register))
    client.set_cookie("own", "an-id")
    assert client.get("/rotate", {"ns": "own"}).json == {"failed": []}


def test_a_session_stamped_by_a_clock_running_ahead_ends_once_the_clock_is_corrected(
    redis_db, tmp_path, clock
):
    events = []
    register = every_library(
        redis_db, tmp_path, events=events, idle_timeout=600, absolute_timeout=3600
    )
    app = build_lifetime_app(register)
    clock.at(86400)  # this machine's clock a day ahead
    for name in LIBRARIES:
        app.get(f"/w/{name}", {"value": name})
    clock.at(700)  # corrected: the stamps are a day in the future
    for name in LIBRARIES:
        assert app.get(f"/r/{name}").json["value"] is None, name
    assert sorted(event.namespace for event in events) == sorted(LIBRARIES)
    # ended, not revived: the clock passing the stamps brings nothing back
    clock.at(86400 + 10)
    for name in LIBRARIES:
        assert app.get(f"/r/{name}").json["value"] is None, name


def test_a_stamp_ahead_by_less_than_the_clock_skew_allowance_is_trusted(redis_db, tmp_path, clock):
    app = build_lifetime_app(
        every_library(redis_db, tmp_path, idle_timeout=600, absolute_timeout=3600)
    )
    clock.at(lifetime.CLOCK_SKEW - 5)  # ahead, inside the allowance
    for name in LIBRARIES:
        app.get(f"/w/{name}", {"value": name})
    clock.at(0)
    for name in LIBRARIES:
        assert app.get(f"/r/{name}").json["value"] == name, name
    # its clocks still run from the stamps: idle from the last use
    clock.at(lifetime.CLOCK_SKEW + 700)
    for name in LIBRARIES:
        assert app.get(f"/r/{name}").json["value"] is None, name


def test_a_login_after_the_clock_stepped_back_past_the_allowance_is_stamped_by_the_clock(
    redis_db, tmp_path, clock
):
    app = build_lifetime_app(every_library(redis_db, tmp_path, idle_timeout=600))
    names = ",".join(LIBRARIES)
    clock.at(86400)
    app.get("/login", {"userid": "alice", "ns": names})
    clock.at(0)  # the process's clock corrected: logins follow it
    app.reset()
    app.get("/login", {"userid": "bob", "ns": names})
    for name in LIBRARIES:
        assert app.get(f"/r/{name}").json["user"] == "bob", name


def test_a_session_last_used_by_a_clock_running_ahead_ends_as_idle_once_it_is_corrected(
    redis_db, tmp_path, clock
):
    events = []
    app = build_lifetime_app(every_library(redis_db, tmp_path, events=events, idle_timeout=600))
    clock.at(0)
    for name in LIBRARIES:
        app.get(f"/w/{name}", {"value": name})
    # used under a clock that ran ahead: its last use is stamped in the future,
    # its creation is not
    clock.at(300)
    for name in LIBRARIES:
        assert app.get(f"/r/{name}").json["value"] == name, name
    clock.at(300 - lifetime.CLOCK_SKEW - 60)  # corrected, past the allowance
    for name in LIBRARIES:
        assert app.get(f"/r/{name}").json["value"] is None, name
    assert sorted(event.namespace for event in events) == sorted(LIBRARIES)
    assert {event.reason for event in events} == {"idle"}


def test_describe_says_nothing_of_a_session_that_keeps_no_stamps():
    seen = {}

    def view(request):
        seen["session"] = request.session_multi["plain"]
        return {}

    config = Configurator()
    config.include("pyramid_session_multi")
    config.register_session_factory("plain", SignedCookieSessionFactory("s", cookie_name="plain"))
    config.add_route("home", "/")
    config.add_view(view, route_name="home", renderer="json")
    app = webtest.TestApp(config.make_wsgi_app())
    app.get("/")
    namespace_config = get_manager_config(app.app.registry).get("plain")
    assert not namespace_config.stamped
    assert describe_lifetime(namespace_config, seen["session"]) is None


class StoredSession(dict):
    """A server-side session as its store gave it, the add-on's record inside."""

    def invalidate(self):
        self.clear()

    def changed(self):
        pass


NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize(
    "record",
    [
        lambda t: [NAN, 0.0],
        lambda t: [t, NAN],
        lambda t: [-INF, INF],
        lambda t: [t, 0.0, "alice", NAN],
        lambda t: [10**400, 0],
        lambda t: [-1e300, 0.0],
        lambda t: [int(t), 10**400],
        lambda t: [t, -5.0],
        lambda t: [str(t), "0"],
        lambda t: [t, 0.0, "alice", 10**400],
        lambda t: [t, 0.0, 10**5000, t],
        lambda t: [t, 0.0, "alice", t + 10**9],
    ],
    ids=[
        "nan-created",
        "nan-offset",
        "inf-minus-inf",
        "nan-login",
        "huge-created",
        "far-past-created",
        "huge-offset",
        "negative-offset",
        "text",
        "huge-login",
        "huge-userid",
        "login-far-after-creation",
    ],
)
@pytest.mark.parametrize("stamped_for", ["timeouts", "revocations"])
def test_a_garbage_lifetime_record_in_the_store_gives_fresh_clocks_and_nobody(
    clock, record, stamped_for
):
    # a record the add-on never writes (not finite, past any float, a login
    # after its own session began) is no record: the session loads, its
    # clocks start now and it records nobody, so no timeout or revocation is
    # escaped and nothing crashes; also where no timeout would end it (a
    # namespace stamped for the revocation store alone)
    seen = []
    timeouts = {"idle_timeout": 600, "absolute_timeout": 3600}

    def register(config):
        if stamped_for == "revocations":
            config.set_revocation_store(MemoryRevocationStore())
        config.register_session_factory(
            "own",
            lambda request: StoredSession(value="v", _psm_t=record(clock())),
            cookie_name="own",
            **(timeouts if stamped_for == "timeouts" else {}),
        )
        config.add_route("stamps", "/stamps")

        def stamps_view(request):
            session = request.session_multi["own"]
            stamps = lifetime.lifetime_of(session).stamps
            seen.append((stamps.created, stamps.active, stamps.userid, stamps.login))
            return {"value": session.get("value")}

        config.add_view(stamps_view, route_name="stamps", renderer="json")

    clock.at(0)
    client = webtest.TestApp(build_lifetime_wsgi(register))
    client.set_cookie("own", "an-id")
    assert client.get("/stamps").json == {"value": "v"}
    t = round(clock(), 3)
    assert seen == [(t, t, None, None)]


@pytest.mark.parametrize(
    ("age", "reason"), [(100, None), (700, "idle"), (4000, "absolute")], ids=str
)
def test_a_session_read_without_its_cookie_has_its_record_taken_out_and_is_judged(
    clock, age, reason
):
    # a library that finds its session by something other than the namespace's
    # cookie (a header, here): the record is the add-on's all the same, out of
    # the application's data, and its clocks end the session where they say so
    store = {}
    expired = []

    def load(request):
        data = store.get(request.headers.get("X-Session"))
        return StoredSession(data or {})

    def register(config):
        config.register_session_factory(
            "own", load, cookie_name="own", idle_timeout=600, absolute_timeout=3600
        )
        config.add_subscriber(lambda event: expired.append(event.reason), SessionExpired)

    clock.at(0)
    begun = round(clock(), 3)
    store["s1"] = {"value": "v", "_psm_t": [begun, 0.0]}
    client = webtest.TestApp(build_lifetime_wsgi(register))
    clock.at(age)
    seen = client.get("/keys/own", headers={"X-Session": "s1"}).json
    assert seen["keys"] == seen["iter"] == ([] if reason else ["value"])
    assert expired == ([reason] if reason else [])


@pytest.mark.parametrize(
    ("created", "offset", "verdict", "restamped"),
    [
        (-3600.0, 3599.0, None, False),  # as old as the absolute timeout: alive
        (-3600.5, 3599.0, "absolute", False),  # just past it
        (-59.5, 0.0, None, False),  # inside the tenth of the idle window
        (-60.0, 0.0, None, True),  # a tenth of the window since last use: stamped anew
        (-600.0, 0.0, None, True),  # as idle as the timeout: alive, stamped anew
        (-600.5, 0.0, "idle", False),  # just past it
        (60.0, 0.0, None, False),  # ahead by the allowance: trusted
        (0.0, 60.5, "idle", False),  # last used ahead past it
        (60.5, 0.0, "absolute", False),  # created ahead past it
    ],
    ids=str,
)
def test_a_stored_record_is_judged_at_the_edges_of_its_timeouts(
    clock, created, offset, verdict, restamped
):
    # the record the add-on writes, ``[created, offset]``, at each edge of the
    # timeouts, the restamp and the clock-skew allowance: the same judgement
    # whichever way the load step reads it
    clock.at(0)
    t = clock()
    sessions = []
    expired = []

    def load(request):
        session = StoredSession(value="v", _psm_t=[t + created, offset])
        sessions.append(session)
        return session

    def register(config):
        config.register_session_factory(
            "own", load, cookie_name="own", idle_timeout=600, absolute_timeout=3600
        )
        config.add_subscriber(lambda event: expired.append(event.reason), SessionExpired)

    client = webtest.TestApp(build_lifetime_wsgi(register))
    client.set_cookie("own", "an-id")
    seen = client.get("/keys/own").json
    assert seen["keys"] == ([] if verdict else ["value"])
    assert expired == ([verdict] if verdict else [])
    if verdict is None:
        stamps = lifetime.lifetime_of(sessions[0]).stamps
        assert stamps.created == t + created
        assert stamps.active == (t if restamped else t + created + offset)
        assert "_psm_t" not in sessions[0]


def test_to_ms_rounds_to_the_millisecond_as_round_does_as_a_float():
    import random

    from pyramid_session_multi.lifecycle.lifetime import to_ms

    draw = random.Random(7)
    values = [draw.uniform(0, 4e9) for _ in range(20_000)] + [
        draw.uniform(-1e5, 1e5) for _ in range(5_000)
    ]
    for value in [*values, 0.0, 1.0, 1_700_000_000.123, 1_700_000_000.9996, -2.5004]:
        fast, exact = to_ms(value), round(value, 3)
        if fast != exact:
            # only a time within a float's error of half a millisecond: both neighbours round it
            assert abs((value * 1000) % 1 - 0.5) < 1e-3
            assert abs(fast - exact) <= 0.0011
    # a whole number (a test's clock) comes back a float, as stamps are written
    assert to_ms(1_700_000_000) == 1_700_000_000.0 and type(to_ms(5)) is float


@pytest.mark.parametrize("seconds", [1e306, -1e306, 1.7e308, -1.7e308])
def test_a_time_too_far_out_for_milliseconds_is_itself(seconds):
    from pyramid_session_multi.lifecycle.lifetime import to_ms

    assert to_ms(seconds) == round(seconds, 3)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_a_time_that_is_not_a_number_is_itself(value):
    from pyramid_session_multi.lifecycle.lifetime import to_ms

    assert repr(to_ms(value)) == repr(round(value, 3))
