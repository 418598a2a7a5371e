"""Merge on save in Redis: the compare-and-set client
(pyramid_session_multi.concurrency.redis) on a real redis-server.

What every store does with parallel requests is in test_concurrency_stores.py.
"""

import pyramid_session_redis.util
import pytest
import redis
import webtest

from pyramid_session_multi.concurrency.redis import (
    ConcurrentSaveConflict,
    MergingClient,
    loaded_bytes,
    remembering,
)

from .support.interleave import Call
from .support.store_apps import StoreApp, redis_store


def test_a_save_without_contention_merges_nothing_and_retries_nothing(redis_db):
    app = StoreApp(redis_store(redis_db))
    cookies = app.start(a="1")
    app.harness.one(Call("/write", cookies, params={"b": "2"}))
    outcome = app.outcome("/write", b="2")
    assert (outcome.retries, outcome.kept_theirs, outcome.conflicts) == (0, [], [])
    assert app.data(cookies) == {"a": "1", "b": "2"}


def test_a_merged_save_keeps_the_library_expiry(redis_db):
    app = StoreApp(redis_store(redis_db, timeout=300))
    cookies = app.start(a="1")
    app.harness.run(
        [Call("/write", cookies, params={"b": "2"}), Call("/write", cookies, params={"c": "3"})]
    )
    assert app.outcome("/write", c="3").retries == 1
    client = redis.StrictRedis.from_url(redis_db)
    try:
        (key,) = client.keys("*")
        assert 0 < client.ttl(key) <= 300
    finally:
        client.close()


def test_a_save_that_keeps_meeting_parallel_saves_gives_up(redis_db):
    client = redis.StrictRedis.from_url(redis_db)
    try:
        client.set("k", b"v0")
        rounds = []

        def remerge(loaded, ours, theirs):
            # another writer lands before every retry
            rounds.append(theirs)
            client.set("k", b"v%d" % len(rounds))
            return ours

        merging = MergingClient(client, "k", b"loaded", remerge, lambda: None, attempts=3)
        with pytest.raises(ConcurrentSaveConflict):
            merging.set("k", b"ours")
        assert rounds == [b"v0", b"v1", b"v2"]
        assert client.get("k") == b"v3"
    finally:
        client.delete("k")
        client.close()


def test_each_retry_merges_the_requests_own_changes_with_the_latest_save(redis_db):
    client = redis.StrictRedis.from_url(redis_db)
    try:
        client.set("k", b"theirs-1")
        sides = []

        def remerge(loaded, ours, theirs):
            sides.append((loaded, ours, theirs))
            if len(sides) == 1:
                client.set("k", b"theirs-2")
            return b"merged-%d" % len(sides)

        merging = MergingClient(client, "k", b"loaded", remerge, lambda: None)
        assert merging.set("k", b"ours") is True
        assert sides == [(b"loaded", b"ours", b"theirs-1"), (b"loaded", b"ours", b"theirs-2")]
        assert client.get("k") == b"merged-2"
    finally:
        client.delete("k")
        client.close()


def test_commands_other_than_saves_go_to_the_client_unchanged(redis_db):
    client = redis.StrictRedis.from_url(redis_db)
    try:
        client.set("other", b"1")
        merging = MergingClient(client, "k", b"x", lambda *sides: b"", lambda: None)
        assert merging.get("other") == b"1"
        assert merging.expire("other", 50)
        assert 0 < merging.ttl("other") <= 50
    finally:
        client.flushdb()
        client.close()


def test_a_gone_session_is_never_written_again_and_told_once(redis_db):
    client = redis.StrictRedis.from_url(redis_db)
    try:
        dropped = []
        merging = MergingClient(client, "k", b"x", lambda *sides: b"", lambda: dropped.append(1))
        assert merging.set("k", b"v") is False
        assert merging.setex("k", 50, b"v") is False
        assert merging.set("new", b"v") is False  # nor under a new id (a rotation)
        assert client.keys("*") == []
        assert dropped == [1]
    finally:
        client.flushdb()
        client.close()


def test_a_rotated_save_takes_in_what_a_parallel_request_saved(redis_db):
    client = redis.StrictRedis.from_url(redis_db)
    try:
        client.set("old", b"theirs")
        merging = MergingClient(
            client, "old", b"loaded", lambda loaded, ours, theirs: ours + b"+" + theirs, list
        )
        assert merging.set("new", b"ours", ex=100) is True
        assert client.get("new") == b"ours+theirs"
        assert 0 < client.ttl("new") <= 100
        assert merging.delete("old") == 1  # the old id retired: the rotation stands
        assert client.keys("*") == [b"new"]
    finally:
        client.flushdb()
        client.close()


def test_a_rotation_whose_old_id_another_request_ended_meanwhile_is_undone(redis_db):
    client = redis.StrictRedis.from_url(redis_db)
    try:
        client.set("old", b"loaded")
        dropped = []
        merging = MergingClient(client, "old", b"loaded", None, lambda: dropped.append(1))
        assert merging.set("new", b"ours") is True
        client.delete("old")  # a parallel logout, between the save and the retirement
        assert merging.delete("old") == 0
        assert client.keys("*") == []
        assert dropped == [1]
    finally:
        client.flushdb()
        client.close()


def test_a_session_this_request_logged_out_saves_its_next_one_as_the_library_does(redis_db):
    client = redis.StrictRedis.from_url(redis_db)
    try:
        client.set("old", b"loaded")
        merging = MergingClient(client, "old", b"loaded", None, list)
        assert merging.delete("old") == 1
        assert merging.set("next", b"after the logout") is True
        assert client.keys("*") == [b"next"]
    finally:
        client.flushdb()
        client.close()


def test_a_server_that_lost_the_script_gets_it_again(redis_db):
    client = redis.StrictRedis.from_url(redis_db)
    try:
        client.set("k", b"loaded")
        client.script_flush()
        merging = MergingClient(client, "k", b"loaded", lambda *sides: b"", lambda: None)
        assert merging.set("k", b"ours", ex=100) is True
        assert client.get("k") == b"ours"
        assert 0 < client.ttl("k") <= 100
    finally:
        client.delete("k")
        client.close()


def command_counting_app(redis_url, mode):
    """An app whose one Redis namespace saves in ``mode``, and its counting client."""
    from pyramid.config import Configurator
    from pyramid.response import Response
    from pyramid_session_redis import RedisSessionFactory

    from .support.counting_redis import CountingRedis

    client = CountingRedis.from_url(redis_url)
    config = Configurator()
    config.include("pyramid_session_multi")
    factory = RedisSessionFactory(
        "s" * 32, cookie_name="ns", redis_client_callable=client.client_callable
    )
    config.register_session_factory("ns", factory, concurrent_writes=mode)
    #: each request's session, in order
    sessions = []

    def write(request):
        sessions.append(request.session_multi["ns"])
        request.session_multi["ns"].update(request.GET)
        return Response("ok")

    def read(request):
        sessions.append(request.session_multi["ns"])
        return Response(",".join(sorted(request.session_multi["ns"])))

    def logout_and_write(request):
        session = request.session_multi["ns"]
        sessions.append(session)
        session.invalidate()
        session.update(request.GET)
        return Response("ok")

    config.add_route("write", "/write")
    config.add_view(write, route_name="write")
    config.add_route("read", "/read")
    config.add_view(read, route_name="read")
    config.add_route("logout_and_write", "/logout_and_write")
    config.add_view(logout_and_write, route_name="logout_and_write")
    app = webtest.TestApp(config.make_wsgi_app())
    app.sessions = sessions
    return app, client


@pytest.mark.parametrize("path", ["/read", "/write?c=3"])
def test_a_request_in_merge_mode_sends_the_redis_commands_of_overwrite(redis_db, monkeypatch, path):
    # pyramid_session_redis stores an expiry moved to the second of each
    # request (its python_expires): a request in a later second than the last
    # save saves again, even one that only reads
    now = [1_900_000_000.0]
    monkeypatch.setattr(pyramid_session_redis.util, "time_time", lambda: now[0])
    sent = {}
    for mode in ("merge", "overwrite"):
        app, client = command_counting_app(redis_db, mode)
        try:
            app.get("/write?a=1")
            app.get("/write?b=2")  # merge: the server has the script from here on
            client.commands.clear()
            app.get("/read")
            same_second = list(client.commands)
            now[0] += 5
            client.commands.clear()
            app.get(path)
            sent[mode] = same_second, list(client.commands)
        finally:
            client.close()
    # a read in the second of the last save saves nothing: the same commands
    assert sent["merge"][0] == sent["overwrite"][0] == ["GET", "EXPIRE"]
    # a later one saves: the compare-and-set script in place of the SETEX,
    # met at once, since what it expects is what the library read
    assert sent["overwrite"][1] == ["GET", "SETEX"]
    assert sent["merge"][1] == ["GET", "EVALSHA"]


def test_only_the_bytes_the_session_was_just_read_from_are_taken_as_loaded():
    remember = remembering(lambda serialized: {"m": {"read from": serialized}})
    payload = remember(b"first")
    assert loaded_bytes("m", payload["m"]) == b"first"
    assert loaded_bytes("m", payload["m"]) is None  # taken once
    remember(b"another session's")
    assert loaded_bytes("m", {"read from": b"another session's"}) is None  # a copy: not it
    remember(b"a payload of another shape")
    assert loaded_bytes("m", payload["m"]) is None
    assert loaded_bytes("absent", payload["m"]) is None


def test_a_merging_namespace_loads_through_its_factory_made_again_once():
    from pyramid.config import Configurator
    from pyramid_session_redis import RedisSessionFactory

    from pyramid_session_multi.config import get_manager_config
    from pyramid_session_multi.libraries.redis import RedisLibrary

    def factory_of(name):
        return RedisSessionFactory("s" * 32, cookie_name=name, redis_url="redis://127.0.0.1:1/0")

    factory, plain = factory_of("ns"), factory_of("plain")
    config = Configurator()
    config.include("pyramid_session_multi")
    config.register_session_factory("ns", factory)
    config.register_session_factory("plain", plain, concurrent_writes="overwrite")
    config.commit()
    manager_config = get_manager_config(config.registry)
    loader = manager_config.get("ns").loader
    assert loader is not factory
    assert loader.__code__ is factory.__code__  # the library's own factory, made again
    assert manager_config.get("plain").loader is plain
    manager_config.finalize_all()  # finalized again: the same loader
    assert manager_config.get("ns").loader is loader
    assert RedisLibrary().merging_loader(factory) is loader


def test_only_a_save_puts_in_the_merging_client(redis_db, monkeypatch):
    # the same second throughout: a read saves nothing (see above)
    monkeypatch.setattr(pyramid_session_redis.util, "time_time", lambda: 1_900_000_000.0)
    app, client = command_counting_app(redis_db, "merge")
    try:
        app.get("/write?a=1")
        app.get("/read")
        app.get("/write?b=2")
        assert app.get("/read").text == "a,b"
        _, read, write, _ = app.sessions
        # a read refreshes the key's TTL through the library's own client
        assert read.redis is client
        assert isinstance(write.redis, MergingClient)
    finally:
        client.close()


def test_a_session_logged_out_and_written_in_one_request_is_saved_as_the_library_does(
    redis_db, monkeypatch
):
    monkeypatch.setattr(pyramid_session_redis.util, "time_time", lambda: 1_900_000_000.0)
    app, client = command_counting_app(redis_db, "merge")
    try:
        app.get("/write?a=1")
        (old_key,) = client.keys("*")
        client.commands.clear()
        app.get("/logout_and_write?b=2")
        assert "EVALSHA" not in client.commands and "EVAL" not in client.commands
        assert client.get(old_key) is None
        assert app.get("/read").text == "b"
        assert app.sessions[1].redis is client  # nothing of the logged out session merges
    finally:
        client.flushdb()
        client.close()
