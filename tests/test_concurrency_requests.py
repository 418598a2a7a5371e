"""Parallel requests of one client through the add-on: merge on save is the
default on server-side namespaces, nothing ended comes back, and
``concurrent_writes`` / ``on_conflict`` choose, in code and in the settings.

Requests are held after loading and released in forced orders
(tests/support/interleave.py) on a real redis-server, a real Redis Cluster and
a Sentinel-watched master (the suite's, tests/conftest.py), Beaker files and
dbm, and Beaker ext:database on SQLite and PostgreSQL.
"""

import json

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyramid_session_multi.events import ConcurrentWriteDropped

from .support.interleave import Call, Interleaving, set_cookies
from .support.parallel_app import NS, make_wsgi
from .support.redis_topologies import SENTINEL_MASTER, cluster_keys, flush_cluster, master_client

KINDS = [
    "redis",
    "redis-cluster",
    "redis-sentinel",
    "beaker-file",
    "beaker-dbm",
    "beaker-sqlite",
    "beaker-postgresql",
]


class Parallel:
    """The app of one store kind, its harness, and what is stored."""

    def __init__(self, request, tmp_path, kind, setup=None, **registration):
        self.kind = kind
        self.tmp_path = tmp_path
        self.redis_url = request.getfixturevalue("redis_db")
        self.sql_url = None
        self.cluster = self.sentinels = None
        redis_client = None
        store = kind
        if kind == "redis-cluster":
            from pyramid_session_multi.stores.redis import redis_client_callable

            self.cluster = request.getfixturevalue("empty_cluster")
            redis_client = redis_client_callable(cluster_nodes=self.cluster.nodes, socket_timeout=5)
            request.addfinalizer(redis_client.close)
        elif kind == "redis-sentinel":
            from pyramid_session_multi.stores.redis import redis_client_callable

            self.sentinels = request.getfixturevalue("empty_sentinels")
            redis_client = redis_client_callable(
                sentinels=self.sentinels.sentinels,
                sentinel_master=SENTINEL_MASTER,
                socket_timeout=5,
            )
            request.addfinalizer(redis_client.close)
        if kind == "beaker-sqlite":
            store = "beaker-sql"
        elif kind == "beaker-postgresql":
            store = "beaker-sql"
            self.sql_url = request.getfixturevalue("postgresql_url")
        self.events = []

        def listen(config):
            config.add_subscriber(self.events.append, ConcurrentWriteDropped)
            if setup is not None:
                setup(config)

        app = make_wsgi(
            store,
            self.redis_url,
            tmp_path,
            self.sql_url,
            setup=listen,
            redis_client=redis_client,
            **registration,
        )
        self.harness = Interleaving(app)

    def flush(self):
        """Empty the Redis store(s) of the kind."""
        if self.cluster is not None:
            flush_cluster(self.cluster)
        elif self.sentinels is not None:
            with master_client(self.sentinels) as master:
                master.flushall()
        else:
            client = redis.StrictRedis.from_url(self.redis_url)
            try:
                client.flushdb()
            finally:
                client.close()

    def start(self, **data):
        response = self.harness.one(Call("/write", params=data))
        return {NS: set_cookies(response)[NS]}

    def data(self, cookies):
        return json.loads(self.harness.one(Call("/read", cookies)).text)

    def stored(self):
        """How many sessions the store holds."""
        if self.kind == "redis":
            client = redis.StrictRedis.from_url(self.redis_url)
            try:
                return len(client.keys("*"))
            finally:
                client.close()
        if self.kind == "redis-cluster":
            # every master's keys: a session's key lands on the master of its slot
            return sum(len(keys) for keys in cluster_keys(self.cluster).values())
        if self.kind == "redis-sentinel":
            with master_client(self.sentinels) as master:
                return len(master.keys("*"))
        if self.kind == "beaker-file":
            return len(list((self.tmp_path / NS).rglob("*.cache")))
        if self.kind == "beaker-dbm":
            return len(dbm_sessions(self.tmp_path / NS))
        import sqlalchemy

        url = self.sql_url or f"sqlite:///{self.tmp_path / 'parallel.sqlite'}"
        engine = sqlalchemy.create_engine(url)
        try:
            with engine.connect() as connection:
                return connection.execute(
                    sqlalchemy.text("select count(*) from parallel_sessions")
                ).scalar()
        finally:
            engine.dispose()


def dbm_sessions(directory):
    """The sessions Beaker's dbm files under ``directory`` hold: one dbm per
    session id, whatever files the dbm module makes of it.  Beaker opens (so
    makes) an empty one for any id it is asked to load, and its removal of
    one may leave a file no dbm reads (dumb dbm's ``.bak``): neither holds one."""
    import dbm

    found = []
    stems = {str(path).partition(".dbm")[0] + ".dbm" for path in directory.rglob("*.dbm*")}
    for stem in sorted(stems):
        if not dbm.whichdb(stem):
            continue
        with dbm.open(stem, "r") as store:
            if list(store.keys()):
                found.append(stem)
    return found


@pytest.fixture(params=KINDS)
def kind(request):
    return request.param


@pytest.fixture
def parallel(request, tmp_path, kind):
    return Parallel(request, tmp_path, kind)


def writes(cookies, count):
    return [Call("/write", cookies, params={f"k{index}": str(index)}) for index in range(count)]


@pytest.mark.parametrize("writers", [2, 8, 32])
def test_parallel_writers_of_distinct_keys_all_land(parallel, writers):
    cookies = parallel.start(seed="0")
    parallel.harness.run(writes(cookies, writers))
    assert parallel.data(cookies) == {
        "seed": "0",
        **{f"k{index}": str(index) for index in range(writers)},
    }
    assert parallel.stored() == 1


def test_overwrite_keeps_the_librarys_own_save_last_writer_wins(request, tmp_path, kind):
    parallel = Parallel(request, tmp_path, kind, concurrent_writes="overwrite")
    cookies = parallel.start(seed="0")
    parallel.harness.run(writes(cookies, 4))
    assert parallel.data(cookies) == {"seed": "0", "k3": "3"}


@pytest.mark.parametrize("order", [[0, 1], [1, 0]])
def test_a_parallel_delete_stays_deleted(parallel, order):
    cookies = parallel.start(keep="1", gone="1")
    parallel.harness.run(
        [Call("/delete", cookies, params={"gone": ""}), Call("/write", cookies, params={"n": "1"})],
        order,
    )
    assert parallel.data(cookies) == {"keep": "1", "n": "1"}


@pytest.mark.parametrize("order", [[0, 1], [1, 0]])
@pytest.mark.parametrize("idle_timeout", [None, 600])
def test_a_session_emptied_in_parallel_is_not_ended_and_a_parallel_write_lands(
    request, tmp_path, kind, order, idle_timeout
):
    parallel = Parallel(request, tmp_path, kind, idle_timeout=idle_timeout)
    cookies = parallel.start(gone="1")
    emptied, write = parallel.harness.run(
        [Call("/delete", cookies, params={"gone": ""}), Call("/write", cookies, params={"n": "1"})],
        order,
    )
    assert parallel.data(cookies) == {"n": "1"}
    assert parallel.events == []
    # the session's key stays, and neither response takes the client's cookie away
    assert parallel.stored() == 1
    assert set_cookies(emptied).get(NS) != ""
    assert set_cookies(write).get(NS) != ""


def test_a_write_saved_after_a_parallel_logout_is_dropped_and_told(parallel):
    cookies = parallel.start(user="alice")
    _, write = parallel.harness.run(
        [Call("/logout", cookies), Call("/write", cookies, params={"cart": "1"})]
    )
    assert parallel.stored() == 0
    assert NS not in set_cookies(write)
    assert [(event.namespace, event.reason) for event in parallel.events] == [(NS, "gone")]
    assert parallel.data(cookies) == {}


def test_a_write_saved_before_a_parallel_logout_goes_with_it(parallel):
    cookies = parallel.start(user="alice")
    parallel.harness.run(
        [Call("/logout", cookies), Call("/write", cookies, params={"cart": "1"})], [1, 0]
    )
    assert parallel.stored() == 0
    assert parallel.events == []


def test_a_write_saved_after_a_parallel_rotation_is_dropped(parallel):
    cookies = parallel.start(user="alice")
    rotate, write = parallel.harness.run(
        [Call("/rotate", cookies), Call("/write", cookies, params={"cart": "1"})]
    )
    new = {NS: set_cookies(rotate)[NS]}
    assert new != cookies
    assert NS not in set_cookies(write)
    assert parallel.data(new) == {"user": "alice"}
    assert parallel.data(cookies) == {}
    assert parallel.stored() == 1
    assert [event.reason for event in parallel.events] == ["gone"]


def test_a_rotation_saved_after_a_parallel_write_carries_it(parallel):
    cookies = parallel.start(user="alice")
    rotate, _ = parallel.harness.run(
        [Call("/rotate", cookies), Call("/write", cookies, params={"cart": "1"})], [1, 0]
    )
    new = {NS: set_cookies(rotate)[NS]}
    assert parallel.data(new) == {"user": "alice", "cart": "1"}
    assert parallel.stored() == 1


def test_a_rotation_saved_after_a_parallel_logout_brings_nothing_back(parallel):
    cookies = parallel.start(user="alice")
    _, rotate = parallel.harness.run([Call("/logout", cookies), Call("/rotate", cookies)])
    assert NS not in set_cookies(rotate)
    assert parallel.stored() == 0
    assert [event.reason for event in parallel.events] == ["gone"]


def test_same_key_the_last_saved_wins(parallel):
    cookies = parallel.start(theme="plain")
    parallel.harness.run(
        [Call("/write", cookies, params={"theme": theme}) for theme in ("dark", "light")], [1, 0]
    )
    assert parallel.data(cookies) == {"theme": "dark"}


def union(key, loaded, ours, theirs):
    """An on_conflict keeping both sides' letters (dotted name in the settings test)."""
    return "".join(sorted(set(ours) | set(theirs)))


def test_on_conflict_in_code_settles_a_key_changed_in_parallel(request, tmp_path, kind):
    parallel = Parallel(request, tmp_path, kind, on_conflict=union)
    cookies = parallel.start(tags="")
    parallel.harness.run([Call("/write", cookies, params={"tags": tag}) for tag in ("a", "b")])
    assert parallel.data(cookies) == {"tags": "ab"}


@pytest.mark.parametrize("key", ["_psm_t", "_session_multi_binding", "_psm_u"])
def test_an_application_key_spelled_like_a_hidden_record_goes_through_on_conflict(
    request, tmp_path, kind, key
):
    from pyramid_session_multi.binding import BINDING_KEY
    from pyramid_session_multi.libraries.pyramid_cookie import USER_KEY
    from pyramid_session_multi.lifecycle.lifetime import LIFETIME_KEY

    assert key in {LIFETIME_KEY, BINDING_KEY, USER_KEY}
    parallel = Parallel(request, tmp_path, kind, on_conflict=union, idle_timeout=600)
    cookies = parallel.start(**{key: ""})
    parallel.harness.run([Call("/write", cookies, params={key: tag}) for tag in ("a", "b")])
    assert parallel.data(cookies) == {key: "ab"}


def refuse(key, loaded, ours, theirs):
    """An on_conflict that raises."""
    raise ValueError("cannot settle")


def test_an_on_conflict_that_raises_fails_the_save_reported_naming_namespace_and_key(
    request, tmp_path, kind
):
    from pyramid_session_multi.events import SessionSaveFailed

    failures = []
    parallel = Parallel(
        request,
        tmp_path,
        kind,
        on_conflict=refuse,
        setup=lambda config: config.add_subscriber(failures.append, SessionSaveFailed),
    )
    cookies = parallel.start(tags="")
    first, second = parallel.harness.run(
        [Call("/write", cookies, params={"tags": tag}) for tag in ("a", "b")]
    )
    assert (first.status_int, second.status_int) == (200, 200)
    # the first save landed; the second, whose conflict could not be settled, is reported
    assert parallel.data(cookies) == {"tags": "a"}
    assert [event.namespace for event in failures] == [NS]
    notes = "\n".join(getattr(failures[0].error, "__notes__", []))
    assert "on_conflict for the key 'tags'" in notes
    assert f"namespace {NS!r}" in notes


def test_an_on_conflict_that_raises_fails_the_response_under_on_save_error_fail(request, tmp_path):
    parallel = Parallel(request, tmp_path, "redis", on_conflict=refuse, on_save_error="fail")
    cookies = parallel.start(tags="")
    with pytest.raises(ValueError, match="cannot settle") as info:
        parallel.harness.run([Call("/write", cookies, params={"tags": tag}) for tag in "ab"])
    assert any("'tags'" in note for note in info.value.__notes__)
    assert parallel.data(cookies) == {"tags": "a"}


# -- a property: random interleavings of write, delete, logout and rotate ---------

operations = st.one_of(
    st.tuples(st.just("write"), st.sampled_from("abc"), st.sampled_from(["1", "2"])),
    st.tuples(st.just("delete"), st.sampled_from("abc"), st.just("")),
    st.tuples(st.just("logout"), st.just(""), st.just("")),
    st.tuples(st.just("rotate"), st.just(""), st.just("")),
)


def model(initial, ops, order):
    """What the store ends as: the original session's data (``None`` once it
    ended), the rotated session's data (``None`` if none), and which requests
    saved nothing because the session had ended."""
    data, rotated, dropped = dict(initial), None, set()
    for index in order:
        what, key, value = ops[index]
        if data is None:
            if what != "logout":
                dropped.add(index)
            continue
        if what == "write":
            data[key] = value
        elif what == "delete":
            # a key the request never saw, it cannot have deleted
            if key in initial:
                data.pop(key, None)
        elif what == "logout":
            data = None
        else:
            rotated, data = data, None
    return data, rotated, dropped


def call_of(cookies, operation):
    what, key, value = operation
    return Call("/" + what, cookies, params={key: value} if key else {})


def matches_the_model(request, tmp_path, kind, data):
    """One random interleaving on ``kind``, checked against :func:`model`."""
    ops = data.draw(st.lists(operations, min_size=2, max_size=5), label="operations")
    order = data.draw(st.permutations(range(len(ops))), label="release order")
    directory = tmp_path / f"run-{len(list(tmp_path.iterdir()))}"
    directory.mkdir()
    parallel = Parallel(request, directory, kind)
    parallel.flush()
    initial = {"a": "0", "keep": "0"}
    cookies = parallel.start(**initial)
    responses = parallel.harness.run([call_of(cookies, op) for op in ops], order)
    expected, rotated, dropped = model(initial, ops, order)
    assert parallel.stored() == (expected is not None) + (rotated is not None)
    if expected is not None:
        assert parallel.data(cookies) == expected
    new_cookies = [
        set_cookies(responses[index])[NS]
        for index, op in enumerate(ops)
        if op[0] == "rotate" and index not in dropped and set_cookies(responses[index]).get(NS)
    ]
    if rotated is not None:
        (new,) = new_cookies
        assert parallel.data({NS: new}) == rotated
    else:
        assert new_cookies == []
    for index in dropped:
        # nothing carrying the ended session, nor a session made from it
        assert NS not in set_cookies(responses[index]), ops[index]
    assert len(parallel.events) == len(dropped)


HYPOTHESIS = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
}


@pytest.mark.parametrize("kind", ["redis", "beaker-file"])
@settings(max_examples=25, **HYPOTHESIS)
@given(data=st.data())
def test_random_interleavings_match_the_model(request, tmp_path, kind, data):
    matches_the_model(request, tmp_path, kind, data)


# a cluster's round trips cost more: fewer examples, on the cluster kind only
@pytest.mark.parametrize("kind", ["redis-cluster"])
@settings(max_examples=8, **HYPOTHESIS)
@given(data=st.data())
def test_random_interleavings_match_the_model_on_a_cluster(request, tmp_path, kind, data):
    matches_the_model(request, tmp_path, kind, data)


# -- concurrent_writes and on_conflict, in the settings and in code ----------------


def settings_of(redis_url, **options):
    from .support.redis_topologies import redis_namespace

    return {
        "session_multi.namespaces": "ns",
        **redis_namespace("ns", redis_url=redis_url, **options),
    }


def committed(settings):
    from pyramid.config import Configurator

    from pyramid_session_multi.config import get_manager_config

    config = Configurator(settings=settings)
    config.include("pyramid_session_multi")
    config.commit()
    return get_manager_config(config.registry).get("ns")


def test_merge_is_the_default_of_a_server_side_namespace_and_overwrite_of_a_cookie_one():
    from pyramid.config import Configurator
    from pyramid.session import SignedCookieSessionFactory

    from pyramid_session_multi.config import get_manager_config

    config = Configurator()
    config.include("pyramid_session_multi")
    config.register_session_factory(
        "cookie", SignedCookieSessionFactory("s" * 32, cookie_name="cookie")
    )
    config.register_session_factory("redis", make_redis_factory())
    config.commit()
    manager_config = get_manager_config(config.registry)
    assert manager_config.get("cookie").concurrent_writes == "overwrite"
    assert manager_config.get("cookie").merge_policy is None
    assert manager_config.get("redis").concurrent_writes == "merge"
    assert "merge" in manager_config.get("redis").steps


def make_redis_factory():
    from pyramid_session_redis import RedisSessionFactory

    return RedisSessionFactory("s" * 32, cookie_name="redis", redis_url="redis://127.0.0.1:1/0")


def test_concurrent_writes_and_on_conflict_from_the_settings(redis_db):
    namespace_config = committed(settings_of(redis_db, concurrent_writes=" Overwrite "))
    assert namespace_config.concurrent_writes == "overwrite"
    assert namespace_config.merge_policy is None
    merging = committed(settings_of(redis_db, on_conflict="tests.test_concurrency_requests.union"))
    assert merging.merge_policy.on_conflict is union


@pytest.mark.parametrize(
    ("where", "why"),
    [
        ("overwrite", "concurrent_writes is 'overwrite'"),
        ("signed cookie", "its store does not merge"),
        ("beaker memory", "its store does not merge"),
        ("beaker cookie", "its store does not merge"),
    ],
)
def test_on_conflict_where_it_could_never_run_is_refused_saying_what_to_change(where, why):
    from pyramid.config import Configurator
    from pyramid.exceptions import ConfigurationError
    from pyramid.session import SignedCookieSessionFactory
    from pyramid_beaker import session_factory_from_settings

    registration = {}
    if where == "overwrite":
        factory = make_redis_factory()
        registration["concurrent_writes"] = "overwrite"
    elif where == "signed cookie":
        factory = SignedCookieSessionFactory("s" * 32, cookie_name="ns")
    else:
        beaker = {"session.type": where.split()[1], "session.key": "ns"}
        beaker.update({"session.validate_key": "v" * 40, "session.secret": "s" * 40})
        factory = session_factory_from_settings(beaker)
    config = Configurator()
    config.include("pyramid_session_multi")
    with pytest.raises(ConfigurationError) as info:
        config.register_session_factory("ns", factory, on_conflict=union, **registration)
        config.commit()
    message = str(info.value)
    assert "namespace 'ns': on_conflict would never run" in message
    assert why in message
    assert "Remove on_conflict" in message


def test_on_conflict_in_the_settings_of_an_overwriting_namespace_is_refused(redis_db):
    from pyramid.exceptions import ConfigurationError

    with pytest.raises(ConfigurationError, match="on_conflict would never run"):
        committed(
            settings_of(
                redis_db,
                concurrent_writes="overwrite",
                on_conflict="tests.test_concurrency_requests:union",
            )
        )


def test_on_conflict_as_a_dotted_name_settles_parallel_writes(request, tmp_path):
    parallel = Parallel(
        request, tmp_path, "redis", on_conflict="tests.test_concurrency_requests:union"
    )
    cookies = parallel.start(tags="")
    parallel.harness.run([Call("/write", cookies, params={"tags": tag}) for tag in "xy"])
    assert parallel.data(cookies) == {"tags": "xy"}


@pytest.mark.parametrize("wrong", ["", "merged", "true", "last-writer"])
def test_a_wrong_concurrent_writes_setting_is_refused_naming_the_key(redis_db, wrong):
    from pyramid.config import Configurator

    from pyramid_session_multi.exceptions import SettingsError

    config = Configurator(settings=settings_of(redis_db, concurrent_writes=wrong))
    with pytest.raises(SettingsError) as info:
        config.include("pyramid_session_multi")
    assert "session_multi.ns.concurrent_writes" in str(info.value)
    assert "merge or overwrite" in str(info.value)


def test_an_on_conflict_that_cannot_be_imported_is_refused_naming_it(redis_db):
    from pyramid.config import Configurator
    from pyramid.exceptions import ConfigurationError

    config = Configurator(settings=settings_of(redis_db, on_conflict="tests.nowhere:nothing"))
    with pytest.raises(ConfigurationError) as info:
        config.include("pyramid_session_multi")
        config.commit()
    assert "'ns'" in str(info.value) and "on_conflict" in str(info.value)


def test_merge_asked_of_a_cookie_namespace_is_refused_saying_what_to_change():
    from pyramid.config import Configurator
    from pyramid.exceptions import ConfigurationError
    from pyramid.session import SignedCookieSessionFactory

    config = Configurator()
    config.include("pyramid_session_multi")
    config.register_session_factory(
        "prefs",
        SignedCookieSessionFactory("s" * 32, cookie_name="prefs"),
        concurrent_writes="merge",
    )
    with pytest.raises(ConfigurationError) as info:
        config.commit()
    message = str(info.value)
    assert "'prefs'" in message and "concurrent_writes" in message
    assert "set it to 'overwrite'" in message


@pytest.mark.parametrize("wrong", ["Merge", "yes", 1, True])
def test_a_wrong_concurrent_writes_in_code_is_refused_naming_the_argument(wrong):
    from pyramid.config import Configurator
    from pyramid.exceptions import ConfigurationError

    config = Configurator()
    config.include("pyramid_session_multi")
    with pytest.raises(ConfigurationError, match="concurrent_writes takes 'merge' or"):
        config.register_session_factory("ns", make_redis_factory(), concurrent_writes=wrong)


def test_an_on_conflict_that_is_not_callable_is_refused():
    from pyramid.config import Configurator
    from pyramid.exceptions import ConfigurationError

    config = Configurator()
    config.include("pyramid_session_multi")
    with pytest.raises(ConfigurationError, match="on_conflict must be callable"):
        config.register_session_factory("ns", make_redis_factory(), on_conflict=42)


# -- two waitress processes sharing one store ------------------------------------


@pytest.mark.parametrize("store", ["redis", "beaker-file"])
def test_two_waitress_processes_sharing_a_store_lose_nothing_and_resurrect_nothing(
    redis_db, tmp_path, store
):
    from .support.http_client import start_worker, stop
    from .support.interleave import HttpInterleaving
    from .support.redis_server import free_port

    holds = tmp_path / "holds"
    holds.mkdir()
    ports = [free_port(), free_port()]
    arguments = ["--kind", store, "--redis-url", redis_db, "--data-dir", str(tmp_path)]
    workers = [
        start_worker("tests.support.parallel_app", port, *arguments, "--hold-dir", str(holds))
        for port in ports
    ]
    try:
        harness = HttpInterleaving(ports, str(holds))
        cookies = {NS: set_cookies(harness.one(Call("/write", params={"seed": "0"})))[NS]}
        # 8 writers, every other one served by the other process
        harness.run(writes(cookies, 8), [5, 2, 7, 0, 3, 6, 1, 4])
        read = json.loads(harness.one(Call("/read", cookies)).text)
        assert read == {"seed": "0", **{f"k{index}": str(index) for index in range(8)}}
        # a logout in one process, a write held beside it in the other
        _, write = harness.run(
            [Call("/logout", cookies), Call("/write", cookies, params={"late": "1"})]
        )
        assert NS not in set_cookies(write)
        assert json.loads(harness.one(Call("/read", cookies)).text) == {}
    finally:
        for worker in workers:
            stop(worker)


@pytest.mark.parametrize("rotate", [False, True])
@pytest.mark.parametrize("store", ["file", "dbm", "ext:database"])
def test_what_the_view_saved_itself_and_changed_after_is_saved_as_changed_last(
    tmp_path, store, rotate
):
    # the application's own persist() in its view, then more changes: the
    # end of request's merge is with what the store holds now, which this
    # request wrote itself; no parallel request ran, so what it holds at the
    # end is stored as it is: a key it deleted after its own save stays
    # deleted, a value it changed again is not a conflict; also where it
    # rotated the session first (its saves merge with its old id's state)
    from pyramid_session_multi.lifecycle.lifetime import lifetime_of

    users = []

    def start(request, session, parallel):
        session["value"] = "loaded"

    def save_then_change(request, session, parallel):
        if rotate:
            request.session_multi.rotate(userid="alice")
        session["added"] = "then deleted"
        session["value"] = "saved in the view"
        session.persist()
        del session["added"]
        session["value"] = "changed after"

    def read(request, session, parallel):
        users.append(lifetime_of(session).stamps.userid)

    steps = {"start": start, "save-then-change": save_then_change, "read": read}
    app, conflicts = _app_with_a_parallel_request_in_its_view(tmp_path, store, steps)
    app.get("/act", {"step": "start"})
    app.get("/act", {"step": "save-then-change"})
    assert app.get("/act", {"step": "read"}).json == {"value": "changed after"}
    assert users == ["alice" if rotate else None]
    assert conflicts == []


def _app_with_a_parallel_request_in_its_view(tmp_path, store, steps):
    """A WebTest app of a merging pyramid_beaker namespace ``files`` whose
    view runs ``steps[step](request, session, parallel)``; ``parallel(step)``
    runs a request of the same client now, as a parallel one would (its
    cookie, its own save), while the view's request is held after loading."""
    import pyramid_beaker
    import webtest
    from pyramid.response import Response

    from .support.apps import build_wsgi

    conflicts = []
    apps = []

    def on_conflict(key, loaded, ours, theirs):
        conflicts.append(key)
        return theirs

    def parallel(step):
        app = apps[0]
        other = webtest.TestApp(app.app, cookiejar=type(app.cookiejar)())
        for cookie in app.cookiejar:
            other.cookiejar.set_cookie(cookie)
        other.get("/act", {"step": step})

    def act(request):
        session = request.session_multi["files"]
        step = steps.get(request.params["step"])
        if step is not None:
            step(request, session, parallel)
        data = {k: v for k, v in session.items() if not k.startswith("_")}
        return Response(json=data)

    options = {"type": store, "data_dir": str(tmp_path / "d"), "lock_dir": str(tmp_path / "l")}
    if store == "ext:database":
        options["url"] = f"sqlite:///{tmp_path / 'sessions.sqlite'}"

    def setup(config):
        files = pyramid_beaker.BeakerSessionFactoryConfig(key="files", **options)
        config.register_session_factory(
            "files", files, on_conflict=on_conflict, absolute_timeout=1000
        )
        config.add_route("act", "/act")
        config.add_view(act, route_name="act")

    apps.append(webtest.TestApp(build_wsgi(setup)))
    return apps[0], conflicts


def _parallel_steps(**steps):
    def start(request, session, parallel):
        session["a"] = "loaded"
        session["d"] = "loaded"

    def write_c(request, session, parallel):
        session["c"] = "parallel"

    def delete_c(request, session, parallel):
        del session["c"]

    return {"start": start, "write_c": write_c, "delete_c": delete_c, **steps}


@pytest.mark.parametrize("store", ["file", "dbm", "ext:database"])
def test_a_parallel_write_merged_by_the_views_save_of_the_access_time_alone_is_kept(
    tmp_path, store
):
    # the view's own persist() before it changed anything saves the access
    # time alone, merged with a parallel request's write; the view then
    # changes the session: the end of request's save keeps the parallel write
    def view(request, session, parallel):
        session.get("a")
        parallel("write_c")
        session.persist()
        session["b"] = "mine"

    app, conflicts = _app_with_a_parallel_request_in_its_view(
        tmp_path, store, _parallel_steps(view=view)
    )
    app.get("/act", {"step": "start"})
    app.get("/act", {"step": "view"})
    assert app.get("/act", {"step": "read"}).json == {
        "a": "loaded",
        "b": "mine",
        "c": "parallel",
        "d": "loaded",
    }
    assert conflicts == []


@pytest.mark.parametrize("rotated", [False, True])
@pytest.mark.parametrize("store", ["file", "dbm", "ext:database"])
def test_a_key_a_parallel_request_deletes_after_the_views_own_save_stays_deleted(
    tmp_path, store, rotated
):
    # the view's own persist() merges a parallel request's write in, then
    # the parallel request deletes that key: the end of request's save merges
    # from what the first wrote, so the delete is the parallel request's, not
    # a conflict, and the key stays deleted.  Unrotated, both saves are of
    # the access time alone; rotated, both are under the new id, merged
    # with the old id's state.
    def view(request, session, parallel):
        if rotated:
            request.session_multi.rotate()
        else:
            session.get("a")
        parallel("write_c")
        session.persist()
        parallel("delete_c")

    app, conflicts = _app_with_a_parallel_request_in_its_view(
        tmp_path, store, _parallel_steps(view=view)
    )
    app.get("/act", {"step": "start"})
    app.get("/act", {"step": "view"})
    assert app.get("/act", {"step": "read"}).json == {"a": "loaded", "d": "loaded"}
    assert conflicts == []


@pytest.mark.parametrize("store", ["file", "dbm", "ext:database"])
def test_a_session_reverted_after_the_views_own_save_keeps_a_parallel_write(tmp_path, store):
    # revert() after the view's own persist() puts back what the request
    # loaded: what a parallel request wrote, merged in by that save, stays
    def view(request, session, parallel):
        parallel("write_c")
        session["b"] = "mine"
        session.persist()
        session.revert()

    app, conflicts = _app_with_a_parallel_request_in_its_view(
        tmp_path, store, _parallel_steps(view=view)
    )
    app.get("/act", {"step": "start"})
    assert app.get("/act", {"step": "view"}).json == {"a": "loaded", "d": "loaded"}
    stored = app.get("/act", {"step": "read"}).json
    assert stored["c"] == "parallel"
    assert {k: stored[k] for k in ("a", "d")} == {"a": "loaded", "d": "loaded"}
    assert conflicts == []
