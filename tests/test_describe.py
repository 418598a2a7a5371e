"""Describing namespaces for people (psessions and the panel share it)."""

from pyramid import testing
from pyramid_session_redis import RedisSessionFactory

from pyramid_session_multi import ISessionMultiManagerConfig
from pyramid_session_multi.describe import callable_name, describe_namespaces
from tests.support import dotted
from tests.support.apps import signed_factory


def custom(request):
    return {}


def test_rows_in_registration_order_with_discovered_attributes():
    config = testing.setUp()
    try:
        config.include("pyramid_session_multi")
        config.register_session_factory(
            "b", signed_factory("b_cookie", secure=True, max_age=5), discriminator=dotted.only_https
        )
        config.register_session_factory(
            "a",
            RedisSessionFactory(secret="s", cookie_name="a_cookie", cookie_path="/a"),
            validator=dotted.always_valid,
        )
        config.register_session_factory("c", custom, cookie_name="c_cookie")
        rows = describe_namespaces(config.registry.getUtility(ISessionMultiManagerConfig))
    finally:
        testing.tearDown()
    assert [row["namespace"] for row in rows] == ["b", "a", "c"]
    b, a, c = rows
    assert (b["cookie_name"], b["secure"], b["max_age"]) == ("b_cookie", True, 5)
    assert b["discriminator"] == "tests.support.dotted.only_https" and b["validator"] is None
    assert (a["path"], a["validator"]) == ("/a", "tests.support.dotted.always_valid")
    assert c["factory"] == "tests.test_describe.custom"
    assert c["secure"] is None and c["path"] is None  # nothing to discover


def test_callable_name():
    assert callable_name(None) is None
    assert callable_name(custom) == "tests.test_describe.custom"
    assert callable_name(42) == "42"


def test_each_redis_namespace_says_where_its_data_is():
    from pyramid_session_multi.stores.redis import redis_client_callable

    def redis_factory(name, **options):
        return RedisSessionFactory(secret="s", cookie_name=name, **options)

    config = testing.setUp()
    try:
        config.include("pyramid_session_multi")
        where = redis_client_callable(sentinels="s1:1 s2:1", sentinel_master="sessions")
        config.register_session_factory("watched", redis_factory("w", redis_client_callable=where))
        config.register_session_factory("own", redis_factory("o", redis_url="redis://h:1/0"))
        custom = redis_factory("c", redis_client_callable=lambda request, **options: None)
        config.register_session_factory("custom", custom)
        config.register_session_factory("cookie", signed_factory("cookie"))
        rows = describe_namespaces(config.registry.getUtility(ISessionMultiManagerConfig))
    finally:
        testing.tearDown()
    assert {row["namespace"]: row["topology"] for row in rows} == {
        "watched": "sentinel master sessions",
        "own": "single",
        "custom": None,  # the application's own connection: unknown
        "cookie": None,
    }


def test_a_partitioned_namespace_is_described_so():
    config = testing.setUp()
    try:
        config.include("pyramid_session_multi")
        config.register_session_factory(
            "embed", signed_factory("embed", secure=True, samesite="None"), partitioned=True
        )
        config.register_session_factory("plain", signed_factory("plain"))
        rows = describe_namespaces(config.registry.getUtility(ISessionMultiManagerConfig))
    finally:
        testing.tearDown()
    assert [row["partitioned"] for row in rows] == [True, False]
