"""Merge on save in Redis (pyramid_session_redis), through the library adapter,
on a real redis-server, with requests interleaved by tests/support/interleave.py.

These drive a plain Pyramid app with pyramid_session_redis as its session
factory, merging through :meth:`RedisLibrary.merge_saves`: the store side
on its own.  What the add-on's namespaces do is tested in
tests/test_concurrency_requests.py.
"""

import pickle

import pytest
import redis
from pyramid.config import Configurator
from pyramid_session_redis import RedisSessionFactory

from pyramid_session_multi.concurrency.merge import MISSING, MergePolicy
from pyramid_session_multi.concurrency.outcome import GONE, SaveOutcome
from pyramid_session_multi.concurrency.redis import ConcurrentSaveConflict, MergingClient
from pyramid_session_multi.libraries.redis import RedisLibrary

from .support.interleave import Call, Interleaving, hold, install, set_cookies

COOKIE = "rs"


def build(redis_url, merging=True, on_conflict=None, **factory_options):
    """A plain app whose request.session is pyramid_session_redis, merging or not."""
    config = Configurator()
    install(config)
    options = {"timeout": 600, **factory_options}
    config.set_session_factory(
        RedisSessionFactory("secret-" * 4, redis_url=redis_url, cookie_name=COOKIE, **options)
    )
    # by request: what each one's merging saves did
    outcomes = {}

    def loaded(request):
        session = request.session
        if merging:
            outcome = SaveOutcome()
            if RedisLibrary().merge_saves(session, MergePolicy(on_conflict), outcome):
                outcomes[(request.path, tuple(request.params.items()))] = outcome
        hold(request)
        return session

    def write(request):
        loaded(request).update(request.params)
        return request.response

    def delete(request):
        session = loaded(request)
        for key in request.params:
            session.pop(key, None)
        return request.response

    def logout(request):
        loaded(request).invalidate()
        return request.response

    for name, view in (("write", write), ("delete", delete), ("logout", logout)):
        config.add_route(name, "/" + name)
        config.add_view(view, route_name=name)
    app = config.make_wsgi_app()
    return Interleaving(app), outcomes


def started(harness, **data):
    """A stored session holding ``data``; the cookies that carry it."""
    response = harness.one(Call("/write", params=data))
    return {COOKIE: set_cookies(response)[COOKIE]}


def stored(redis_url, cookies):
    """The data stored for the session ``cookies`` carry, ``None`` if gone."""
    client = redis.StrictRedis.from_url(redis_url)
    try:
        keys = client.keys("*")
        assert len(keys) <= 1, keys
        if not keys:
            return None
        return pickle.loads(client.get(keys[0]))["m"]
    finally:
        client.close()


@pytest.mark.parametrize("writers", [2, 8, 32])
def test_parallel_writers_of_distinct_keys_all_land(redis_db, writers):
    harness, outcomes = build(redis_db)
    cookies = started(harness, seed="0")
    calls = [Call("/write", cookies, params={f"k{index}": str(index)}) for index in range(writers)]
    harness.run(calls)
    expected = {"seed": "0", **{f"k{index}": str(index) for index in range(writers)}}
    assert stored(redis_db, cookies) == expected
    assert [outcome.dropped for outcome in outcomes.values()] == [None] * writers


@pytest.mark.parametrize("writers", [2, 8])
def test_without_merging_parallel_writers_lose_all_but_the_last(redis_db, writers):
    # what the library does on its own: the measured baseline the merge answers
    harness, _ = build(redis_db, merging=False)
    cookies = started(harness, seed="0")
    calls = [Call("/write", cookies, params={f"k{index}": str(index)}) for index in range(writers)]
    harness.run(calls)
    last = writers - 1
    assert stored(redis_db, cookies) == {"seed": "0", f"k{last}": str(last)}


@pytest.mark.parametrize("order", [[0, 1], [1, 0]])
def test_a_parallel_delete_stays_deleted(redis_db, order):
    harness, _ = build(redis_db)
    cookies = started(harness, keep="1", gone="1")
    harness.run(
        [
            Call("/delete", cookies, params={"gone": ""}),
            Call("/write", cookies, params={"new": "1"}),
        ],
        order,
    )
    assert stored(redis_db, cookies) == {"keep": "1", "new": "1"}


@pytest.mark.parametrize("order", [[0, 1], [1, 0]])
def test_a_logout_is_never_undone_by_a_parallel_write(redis_db, order):
    harness, outcomes = build(redis_db)
    cookies = started(harness, user="alice")
    _, write = harness.run(
        [Call("/logout", cookies), Call("/write", cookies, params={"cart": "1"})], order
    )
    assert stored(redis_db, cookies) is None
    assert COOKIE not in set_cookies(write)
    if order == [0, 1]:  # the write saved after the logout: dropped, and told
        assert outcomes[("/write", (("cart", "1"),))].dropped == GONE


def test_same_key_changed_in_parallel_the_last_saved_wins(redis_db):
    harness, outcomes = build(redis_db)
    cookies = started(harness, theme="plain")
    calls = [Call("/write", cookies, params={"theme": theme}) for theme in ("dark", "light")]
    harness.run(calls, [1, 0])
    assert stored(redis_db, cookies) == {"theme": "dark"}
    assert outcomes[("/write", (("theme", "dark"),))].conflicts == ["theme"]
    assert outcomes[("/write", (("theme", "light"),))].conflicts == []


def test_on_conflict_settles_a_key_changed_in_parallel(redis_db):
    seen = []

    def on_conflict(key, loaded, ours, theirs):
        seen.append((key, loaded, ours, theirs))
        return "".join(sorted({ours, theirs}))

    harness, _ = build(redis_db, on_conflict=on_conflict)
    cookies = started(harness, tags="")
    harness.run([Call("/write", cookies, params={"tags": tag}) for tag in ("a", "b")])
    assert seen == [("tags", "", "b", "a")]
    assert stored(redis_db, cookies) == {"tags": "ab"}


def test_a_key_new_on_one_side_and_deleted_on_the_other_is_missing_to_on_conflict(redis_db):
    seen = []

    def on_conflict(key, loaded, ours, theirs):
        seen.append((loaded, ours, theirs))
        return ours

    harness, _ = build(redis_db, on_conflict=on_conflict)
    cookies = started(harness, k="1", other="kept")
    harness.run(
        [Call("/delete", cookies, params={"k": ""}), Call("/write", cookies, params={"k": "2"})]
    )
    assert seen == [("1", "2", MISSING)]


def test_a_save_without_contention_is_one_round_trip(redis_db):
    harness, outcomes = build(redis_db)
    cookies = started(harness, a="1")
    harness.one(Call("/write", cookies, params={"b": "2"}))
    assert outcomes[("/write", (("b", "2"),))].retries == 0
    assert stored(redis_db, cookies) == {"a": "1", "b": "2"}


def test_the_key_keeps_the_library_expiry(redis_db):
    harness, _ = build(redis_db, timeout=300)
    cookies = started(harness, a="1")
    harness.run(
        [Call("/write", cookies, params={"b": "2"}), Call("/write", cookies, params={"c": "3"})]
    )
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
        assert len(rounds) == 3
        assert client.get("k") == b"v3"
    finally:
        client.delete("k")
        client.close()


def test_other_keys_and_commands_go_to_the_client_unchanged(redis_db):
    client = redis.StrictRedis.from_url(redis_db)
    try:
        merging = MergingClient(client, "k", b"x", lambda *sides: b"", lambda: None)
        merging.set("other", b"1")
        merging.setex("other2", 50, b"2")
        assert merging.get("other") == b"1"
        assert 0 < merging.ttl("other2") <= 50
        assert merging.set("k", b"v") is False  # the session's key is gone: not re-created
        assert client.exists("k") == 0
    finally:
        client.flushdb()
        client.close()
