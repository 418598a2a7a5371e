"""What operators read: one INFO line per session decided, from each module's own logger.

Login rotation, logout, expiry, rejection, revocation and migration each log
one line naming the namespace and the reason, with the session id as the
keyed hash events carry, never the id itself.
"""

import logging
import re

import pytest
import webtest
from pyramid.session import SignedCookieSessionFactory

from pyramid_session_multi.events import hash_session_id
from pyramid_session_multi.revocation import MemoryRevocationStore
from tests.support.lifetime_apps import build_lifetime_app, library_factory

SETTINGS = {"session_multi.id_hash_key": "a-key-for-hashing-session-ids-in-logs"}

LINE = re.compile(r"^session (\w+): namespace='(\w+)' reason=(.+) id_hash=([0-9a-f]{16}|-)$")


def decisions(caplog):
    """``(logger, what, namespace, reason, id_hash)`` of each INFO decision line."""
    found = []
    for record in caplog.records:
        match = LINE.match(record.getMessage())
        if match and record.levelno == logging.INFO:
            found.append((record.name, *match.groups()))
    return found


@pytest.fixture
def app(redis_db, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="pyramid_session_multi")

    def register(config):
        factory = library_factory("redis", redis_db, tmp_path, cookie_name="acct")
        config.register_session_factory("account", factory, idle_timeout=600)
        config.set_revocation_store(MemoryRevocationStore())

    return build_lifetime_app(register, SETTINGS)


def test_a_login_rotation_and_a_logout_each_log_a_line_with_the_hashed_id(app, caplog, redis_db):
    import redis

    store = redis.StrictRedis.from_url(redis_db)
    app.get("/w/account", {"value": "x"})
    (anonymous,) = [key.decode() for key in store.keys("*")]
    caplog.clear()
    app.get("/login", {"userid": "alice"})
    (logged_in,) = [key.decode() for key in store.keys("*")]
    app.get("/logout")
    assert decisions(caplog) == [
        (
            "pyramid_session_multi.lifecycle.changes",
            "rotated",
            "account",
            "login",
            hash_session_id(SETTINGS, anonymous),
        ),
        (
            "pyramid_session_multi.lifecycle.changes",
            "invalidated",
            "account",
            "logout",
            hash_session_id(SETTINGS, logged_in),
        ),
    ]
    text = caplog.text
    assert anonymous not in text and logged_in not in text and "alice" not in text


def test_an_expiry_logs_a_line(app, caplog, clock):
    clock.at(0)
    app.get("/w/account", {"value": "x"})
    caplog.clear()
    clock.at(601)
    assert app.get("/r/account").json["value"] is None
    ((logger, what, namespace, reason, id_hash),) = decisions(caplog)
    assert (logger, what, namespace, reason) == (
        "pyramid_session_multi.manager",
        "expired",
        "account",
        "idle",
    )
    assert id_hash != "-"


def test_a_revocation_logs_the_user_hashed_and_each_session_it_ends(app, caplog):
    app.get("/login", {"userid": "alice", "ns": "account"})
    other = webtest.TestApp(app.app)
    other.get("/login", {"userid": "alice", "ns": "account"})
    caplog.clear()
    app.get("/revoke", {"userid": "alice"})
    assert [line[1:4] for line in decisions(caplog)] == [("revoked", "account", "revoke")]
    users = [r.getMessage() for r in caplog.records if r.getMessage().startswith("user revoked")]
    assert users == [
        f"user revoked: user_hash={hash_session_id(SETTINGS, 'alice')} reason=everywhere"
    ]
    caplog.clear()
    assert other.get("/r/account").json["user"] is None  # refused on its next load
    assert [line[1:4] for line in decisions(caplog)] == [("revoked", "account", "revoked")]
    assert "alice" not in caplog.text


def test_a_rejection_by_the_validator_logs_a_line(caplog):
    caplog.set_level(logging.INFO, logger="pyramid_session_multi")
    verdict = {"valid": True}

    def register(config):
        factory = SignedCookieSessionFactory("a-secret-of-at-least-32-bytes-long", cookie_name="p")
        config.register_session_factory(
            "prefs", factory, validator=lambda request, session: verdict["valid"]
        )

    app = build_lifetime_app(register, SETTINGS)
    app.get("/w/prefs", {"value": "x"})
    verdict["valid"] = False
    caplog.clear()
    app.get("/r/prefs")
    assert [line[:4] for line in decisions(caplog)] == [
        ("pyramid_session_multi.manager", "rejected", "prefs", "validator")
    ]


def test_a_migration_logs_a_line(caplog):
    caplog.set_level(logging.INFO, logger="pyramid_session_multi")
    old = SignedCookieSessionFactory("the-old-secret-of-at-least-32-bytes", cookie_name="p")
    new = SignedCookieSessionFactory("the-new-secret-of-at-least-32-bytes", cookie_name="p")
    before = build_lifetime_app(lambda config: config.register_session_factory("prefs", old))
    before.get("/w/prefs", {"value": "x"})
    after = build_lifetime_app(
        lambda config: config.register_session_factory("prefs", new, fallbacks=[old]), SETTINGS
    )
    after.set_cookie("p", before.cookies["p"])
    caplog.clear()
    assert after.get("/r/prefs").json["value"] == "x"
    assert [line[:4] for line in decisions(caplog)] == [
        (
            "pyramid_session_multi.lifecycle.fallbacks",
            "migrated",
            "prefs",
            "from fallback 1 (pyramid cookie, cookie 'p')",
        )
    ]


def test_every_module_logs_under_its_own_name():
    import importlib
    import pkgutil

    import pyramid_session_multi

    for module_info in pkgutil.walk_packages(
        pyramid_session_multi.__path__, "pyramid_session_multi."
    ):
        if module_info.name.endswith(("debugtoolbar.panel", "pytest_plugin")):
            continue
        module = importlib.import_module(module_info.name)
        logger = vars(module).get("logger")
        if isinstance(logger, logging.Logger):
            assert logger.name == module_info.name, module_info.name
