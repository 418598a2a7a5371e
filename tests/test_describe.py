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
