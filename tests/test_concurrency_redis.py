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
