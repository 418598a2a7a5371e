"""Merge on save on every server-side store, the store side alone: parallel
requests of one client, held after loading and released in forced orders
(tests/support/interleave.py), on a real redis-server, Beaker files and dbm, and
Beaker ext:database on SQLite and PostgreSQL."""

import pytest

from pyramid_session_multi.concurrency.beaker import snapshot
from pyramid_session_multi.concurrency.merge import MISSING
from pyramid_session_multi.concurrency.outcome import GONE

from .support.interleave import Call, set_cookies
from .support.store_apps import (
    COOKIE,
    StoreApp,
    beaker_file_store,
    beaker_sql_store,
    redis_store,
)

STORES = ["redis", "beaker-file", "beaker-dbm", "beaker-sqlite", "beaker-postgresql"]


@pytest.fixture(params=STORES)
def store(request, tmp_path):
    """A fresh store of each kind, as (factory, library)."""
    if request.param == "redis":
        return redis_store(request.getfixturevalue("redis_db"))
    if request.param == "beaker-file":
        return beaker_file_store(tmp_path)
    if request.param == "beaker-dbm":
        return beaker_file_store(tmp_path, "dbm")
    if request.param == "beaker-sqlite":
        return beaker_sql_store(f"sqlite:///{tmp_path / 'sessions.sqlite'}", tmp_path)
    return beaker_sql_store(request.getfixturevalue("postgresql_url"), tmp_path)


def writes(cookies, count):
    return [Call("/write", cookies, params={f"k{index}": str(index)}) for index in range(count)]


@pytest.mark.parametrize("writers", [2, 8, 32])
def test_parallel_writers_of_distinct_keys_all_land(store, writers):
    app = StoreApp(store)
    cookies = app.start(seed="0")
    app.harness.run(writes(cookies, writers))
    expected = {"seed": "0", **{f"k{index}": str(index) for index in range(writers)}}
    assert app.data(cookies) == expected
    assert all(outcome.dropped is None for outcome in app.outcomes.values())


def test_parallel_writers_land_in_any_release_order(store):
    app = StoreApp(store)
    cookies = app.start(seed="0")
    app.harness.run(writes(cookies, 4), [2, 0, 3, 1])
    assert app.data(cookies) == {"seed": "0", "k0": "0", "k1": "1", "k2": "2", "k3": "3"}


def test_without_merging_parallel_writers_lose_all_but_the_last(store):
    # the libraries' own saves: the loss the merge answers
    app = StoreApp(store, merging=False)
    cookies = app.start(seed="0")
    app.harness.run(writes(cookies, 4))
    assert app.data(cookies) == {"seed": "0", "k3": "3"}


@pytest.mark.parametrize("order", [[0, 1], [1, 0]])
def test_a_parallel_delete_stays_deleted(store, order):
    app = StoreApp(store)
    cookies = app.start(keep="1", gone="1")
    calls = [
        Call("/delete", cookies, params={"gone": ""}),
        Call("/write", cookies, params={"new": "1"}),
    ]
    app.harness.run(calls, order)
    assert app.data(cookies) == {"keep": "1", "new": "1"}


def test_a_read_only_request_undoes_nothing(store):
    app = StoreApp(store)
    cookies = app.start(a="1")
    app.harness.run([Call("/read", cookies), Call("/write", cookies, params={"b": "2"})], [1, 0])
    assert app.data(cookies) == {"a": "1", "b": "2"}


@pytest.mark.parametrize("order", [[0, 1], [1, 0]])
def test_a_logout_is_never_undone_by_a_parallel_write(store, order):
    app = StoreApp(store)
    cookies = app.start(user="alice")
    _, write = app.harness.run(
        [Call("/logout", cookies), Call("/write", cookies, params={"cart": "1"})], order
    )
    assert app.data(cookies) == {}
    if order == [0, 1]:  # the write saved after the logout: dropped, and recorded
        assert app.outcome("/write", cart="1").dropped == GONE
        # and no cookie carrying the ended session goes out with it
        assert COOKIE not in set_cookies(write)


def test_same_key_changed_in_parallel_the_last_saved_wins(store):
    app = StoreApp(store)
    cookies = app.start(theme="plain")
    calls = [Call("/write", cookies, params={"theme": theme}) for theme in ("dark", "light")]
    app.harness.run(calls, [1, 0])
    assert app.data(cookies) == {"theme": "dark"}
    assert app.outcome("/write", theme="dark").conflicts == ["theme"]


def test_on_conflict_settles_a_key_changed_in_parallel(store):
    seen = []

    def on_conflict(key, loaded, ours, theirs):
        seen.append((key, loaded, ours, theirs))
        return "".join(sorted({ours, theirs}))

    app = StoreApp(store, on_conflict=on_conflict)
    cookies = app.start(tags="-")
    app.harness.run([Call("/write", cookies, params={"tags": tag}) for tag in ("a", "b")])
    assert seen == [("tags", "-", "b", "a")]
    assert app.data(cookies) == {"tags": "ab"}


def test_on_conflict_sees_missing_for_a_side_that_deleted(store):
    seen = []

    def on_conflict(key, loaded, ours, theirs):
        seen.append((loaded, ours, theirs))
        return ours

    app = StoreApp(store, on_conflict=on_conflict)
    cookies = app.start(k="1", other="kept")
    app.harness.run(
        [Call("/delete", cookies, params={"k": ""}), Call("/write", cookies, params={"k": "2"})]
    )
    assert seen == [("1", "2", MISSING)]
    assert app.data(cookies) == {"k": "2", "other": "kept"}


#: one entry each time a :class:`Unpickled` is unpickled
UNPICKLED: list[int] = []


class Unpickled:
    """A value that says when it is unpickled."""

    def __init__(self):
        self.state = "loaded"

    def __setstate__(self, state):
        UNPICKLED.append(1)


def test_what_a_beaker_session_loaded_is_unpickled_only_when_a_save_asks_and_once():
    UNPICKLED.clear()
    data = {"cart": [1], "marker": Unpickled()}
    loaded = snapshot(data)
    data["cart"].append(2)  # changed in place after loading
    assert UNPICKLED == []  # a request that saves nothing pays no unpickling
    first = loaded()
    assert first["cart"] == [1]
    assert loaded() is first
    assert UNPICKLED == [1]
