"""Merge on save in Redis: the compare-and-set client
(pyramid_session_multi.concurrency.redis) on a real redis-server.

What every store does with parallel requests is in test_concurrency_stores.py.
"""

import pytest
import redis

from pyramid_session_multi.concurrency.redis import ConcurrentSaveConflict, MergingClient

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


def test_other_keys_and_commands_go_to_the_client_unchanged(redis_db):
    client = redis.StrictRedis.from_url(redis_db)
    try:
        dropped = []
        merging = MergingClient(client, "k", b"x", lambda *sides: b"", lambda: dropped.append(1))
        merging.set("other", b"1")
        merging.setex("other2", 50, b"2")
        assert merging.get("other") == b"1"
        assert 0 < merging.ttl("other2") <= 50
        # the session's key is gone: never created again, and told once
        assert merging.set("k", b"v") is False
        assert merging.setex("k", 50, b"v") is False
        assert client.exists("k") == 0
        assert dropped == [1]
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
