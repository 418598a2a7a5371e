"""``psessions CONFIG sweep``: expired sessions, their lock files and expired
revocation records leave the stores that keep them for ever; counted after
each path, on real Beaker file, dbm and SQLite stores, a real redis-server."""

import fcntl
import io
import os
import time

import pyramid_beaker
import pytest
import redis
import sqlalchemy as sa
import webtest

from pyramid_session_multi.config import get_manager_config
from pyramid_session_multi.revocation import RedisRevocationStore, SQLRevocationStore
from pyramid_session_multi.scripts.psessions import main as psessions
from pyramid_session_multi.scripts.sweep import sweep
from tests.support.apps import build_wsgi

LATER = 3600  # seconds after the sessions were written: past every timeout below


def files(directory, suffix):
    return sorted(path for path in directory.rglob(f"*{suffix}*") if path.is_file())


def beaker_app(tmp_path, kind="file", sweep_it=None, **registration):
    options = {"type": kind, "key": "cart", "lock_dir": str(tmp_path / "locks")}
    if kind == "ext:database":
        options.update(url=f"sqlite:///{tmp_path / 'sessions.sqlite'}", table_name="carts")
    else:
        options["data_dir"] = str(tmp_path / "data")
    options.update(registration.pop("beaker", {}))

    def setup(config):
        config.register_session_factory(
            "cart", pyramid_beaker.BeakerSessionFactoryConfig(**options), **registration
        )

    wsgi = build_wsgi(setup)
    return wsgi, get_manager_config(wsgi.registry)


def clients(wsgi, count, value="in the cart"):
    made = []
    for _ in range(count):
        client = webtest.TestApp(wsgi)
        client.post("/s/cart", {"value": value})
        made.append(client)
    return made


def by_what(report):
    return {swept.what: swept for swept in report}


# -- Beaker files --------------------------------------------------------------------------


def test_expired_file_sessions_and_their_lock_files_go_and_live_ones_stay(tmp_path):
    wsgi, config = beaker_app(tmp_path, idle_timeout=600)
    abandoned = clients(wsgi, 3)
    rotated = clients(wsgi, 1)[0]
    rotated.get("/rotate")  # the old id's file goes, its lock file stays
    logged_out = clients(wsgi, 1)[0]
    logged_out.get("/invalidate")
    data, locks = tmp_path / "data", tmp_path / "locks"
    assert len(files(data, ".cache")) == 4
    locks_before = len(files(locks, ".lock"))
    assert locks_before >= 6  # one per id ever used: the orphans of the rotation and logout

    # nothing expired yet: only the orphan lock files go
    report = by_what(sweep(config, grace=0))
    assert report["namespace 'cart'"].sessions == 0
    assert report["namespace 'cart'"].kept == 4
    assert report["namespace 'cart'"].lock_files == locks_before - 4
    assert len(files(locks, ".lock")) == 4
    for client in (*abandoned, rotated):
        assert client.get("/s/cart").json["value"] == "in the cart"

    swept = by_what(sweep(config, at=time.time() + LATER, grace=0))["namespace 'cart'"]
    assert (swept.sessions, swept.lock_files, swept.kept) == (4, 4, 0)
    assert files(data, ".cache") == [] and files(locks, ".lock") == []
    assert abandoned[0].get("/s/cart").json["value"] is None


def test_a_dry_run_counts_and_removes_nothing(tmp_path):
    wsgi, config = beaker_app(tmp_path, idle_timeout=600)
    clients(wsgi, 2)
    before = files(tmp_path, "")
    swept = by_what(sweep(config, at=time.time() + LATER, grace=0, dry_run=True))
    assert swept["namespace 'cart'"].sessions == 2
    assert files(tmp_path, "") == before


def test_beakers_own_timeout_expires_file_sessions(tmp_path):
    wsgi, config = beaker_app(tmp_path, beaker={"timeout": 600})
    clients(wsgi, 2)
    assert by_what(sweep(config, grace=0))["namespace 'cart'"].kept == 2
    swept = by_what(sweep(config, at=time.time() + LATER, grace=0))["namespace 'cart'"]
    assert swept.sessions == 2 and files(tmp_path / "data", ".cache") == []


def test_the_absolute_timeout_expires_a_busy_session(tmp_path):
    wsgi, config = beaker_app(tmp_path, idle_timeout=7200, absolute_timeout=1800)
    clients(wsgi, 1)
    swept = by_what(sweep(config, at=time.time() + LATER, grace=0))["namespace 'cart'"]
    assert swept.sessions == 1


def test_a_session_without_any_timeout_is_never_swept(tmp_path):
    wsgi, config = beaker_app(tmp_path)
    client = clients(wsgi, 1)[0]
    swept = by_what(sweep(config, at=time.time() + 10 * LATER, grace=0))["namespace 'cart'"]
    assert (swept.sessions, swept.kept) == (0, 1)
    assert client.get("/s/cart").json["value"] == "in the cart"


def test_an_expired_session_whose_lock_a_request_holds_is_left_for_the_next_sweep(tmp_path):
    wsgi, config = beaker_app(tmp_path, idle_timeout=600)
    clients(wsgi, 1)
    (lock,) = files(tmp_path / "locks", ".lock")
    descriptor = os.open(lock, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_SH)
        swept = by_what(sweep(config, at=time.time() + LATER, grace=0))["namespace 'cart'"]
        assert (swept.sessions, swept.kept) == (0, 1)
    finally:
        os.close(descriptor)
    swept = by_what(sweep(config, at=time.time() + LATER, grace=0))["namespace 'cart'"]
    assert swept.sessions == 1


def test_a_fresh_orphan_lock_file_is_kept_for_the_grace_period(tmp_path):
    wsgi, config = beaker_app(tmp_path, idle_timeout=600)
    clients(wsgi, 1)[0].get("/invalidate")
    orphans = len(files(tmp_path / "locks", ".lock"))
    assert orphans >= 1 and files(tmp_path / "data", ".cache") == []
    assert by_what(sweep(config))["namespace 'cart'"].lock_files == 0
    assert by_what(sweep(config, grace=0))["namespace 'cart'"].lock_files == orphans
    assert files(tmp_path / "locks", ".lock") == []


def test_an_unreadable_file_is_left_alone(tmp_path):
    wsgi, config = beaker_app(tmp_path, idle_timeout=600)
    clients(wsgi, 1)
    (path,) = files(tmp_path / "data", ".cache")
    path.write_bytes(b"not a pickle")
    swept = by_what(sweep(config, at=time.time() + LATER, grace=0))["namespace 'cart'"]
    assert (swept.sessions, swept.unreadable) == (0, 1) and path.exists()


# -- Beaker dbm and ext:database --------------------------------------------------------


def test_expired_dbm_sessions_go(tmp_path):
    wsgi, config = beaker_app(tmp_path, "dbm", idle_timeout=600)
    kept = clients(wsgi, 2)
    assert by_what(sweep(config, grace=0))["namespace 'cart'"].kept == 2
    assert kept[0].get("/s/cart").json["value"] == "in the cart"
    swept = by_what(sweep(config, at=time.time() + LATER, grace=0))["namespace 'cart'"]
    assert swept.sessions == 2
    assert files(tmp_path / "data", ".dbm") == [] and files(tmp_path / "locks", ".lock") == []


def test_expired_database_rows_go(tmp_path):
    wsgi, config = beaker_app(tmp_path, "ext:database", idle_timeout=600)
    live = clients(wsgi, 3)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'sessions.sqlite'}")

    def rows():
        with engine.connect() as connection:
            return connection.execute(sa.text("select count(*) from carts")).scalar_one()

    assert rows() == 3
    assert by_what(sweep(config, grace=0))["namespace 'cart'"].kept == 3
    assert live[0].get("/s/cart").json["value"] == "in the cart"
    swept = by_what(sweep(config, at=time.time() + LATER, grace=0))["namespace 'cart'"]
    assert swept.sessions == 3 and rows() == 0
    assert files(tmp_path / "locks", ".lock") == []
    engine.dispose()


def test_stores_that_expire_their_own_are_reported_as_needing_nothing(tmp_path, redis_db):
    from pyramid_session_redis import RedisSessionFactory

    from tests.support.apps import signed_factory

    def setup(config):
        config.register_session_factory("prefs", signed_factory("prefs"))
        config.register_session_factory(
            "account",
            RedisSessionFactory(secret="s" * 32, cookie_name="account", redis_url=redis_db),
        )

    report = by_what(sweep(get_manager_config(build_wsgi(setup).registry)))
    assert "TTL" in report["namespace 'account'"].note
    assert "cookie" in report["namespace 'prefs'"].note


# -- revocation records -----------------------------------------------------------------


def test_expired_sql_revocation_records_go_and_records_without_expiry_go_once_stale(tmp_path):
    store = SQLRevocationStore(f"sqlite:///{tmp_path / 'revocations.sqlite'}")
    now = time.time()
    store.revoke("alice", now, 60)
    store.revoke("bob", now, 7200)
    store.revoke("carol", now - 7200, None)  # written so by an earlier version
    store.revoke("dave", now, None)
    assert store.sweep(now + 120, 3600, dry_run=True) == 2
    assert len(store) == 4
    assert store.sweep(now + 120, 3600) == 2  # alice expired; carol is stale
    assert len(store) == 2
    assert store.revoked_at("bob") == now and store.revoked_at("dave") == now


def test_redis_revocation_records_without_a_ttl_get_one(redis_db):
    store = RedisRevocationStore.from_url(redis_db, prefix="revoked:")
    now = time.time()
    store.revoke("alice", now, 600)
    store.revoke("bob", now - 7200, None)
    store.revoke("carol", now, None)
    assert store.sweep(now, 3600) == 2
    client = redis.StrictRedis.from_url(redis_db)
    try:
        assert client.exists("revoked:bob") == 0
        assert 3500 < client.ttl("revoked:carol") <= 3600
        assert 0 < client.ttl("revoked:alice") <= 600
    finally:
        client.close()


def test_the_sweep_counts_the_revocation_store(tmp_path):
    store = SQLRevocationStore(f"sqlite:///{tmp_path / 'revocations.sqlite'}")

    def setup(config):
        config.register_session_factory(
            "cart",
            pyramid_beaker.BeakerSessionFactoryConfig(
                type="file", data_dir=str(tmp_path / "data"), key="cart"
            ),
            absolute_timeout=600,
        )
        config.set_revocation_store(store)

    config = get_manager_config(build_wsgi(setup).registry)
    store.revoke("alice", time.time(), 60)
    report = by_what(sweep(config, at=time.time() + 120))
    assert report["revocation store"].records == 1 and len(store) == 0


# -- psessions CONFIG sweep ---------------------------------------------------------------


def cart_settings(tmp_path, revocations=None):
    settings = {
        "session_multi.namespaces": "cart",
        "session_multi.cart.factory": "beaker",
        "session_multi.cart.type": "file",
        "session_multi.cart.data_dir": str(tmp_path / "data"),
        "session_multi.cart.lock_dir": str(tmp_path / "locks"),
        "session_multi.cart.key": "cart",
        "session_multi.cart.secret": "cart-secret-of-at-least-32-bytes!!",
        "session_multi.cart.idle_timeout": "1",
    }
    if revocations:
        settings["session_multi.revocations"] = revocations
    return settings


def ini(tmp_path, revocations=None):
    path = tmp_path / "app.ini"
    lines = ["[app:main]", "use = call:tests.support.psessions_apps:included_only"]
    lines += [f"{key} = {value}" for key, value in cart_settings(tmp_path, revocations).items()]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def run(argv):
    out, err = io.StringIO(), io.StringIO()
    return psessions(argv, out, err), out.getvalue(), err.getvalue()


def test_psessions_sweep_from_cron(tmp_path, monkeypatch):
    config_uri = ini(tmp_path)
    clients(build_wsgi(settings=cart_settings(tmp_path)), 2)
    status, out, err = run([config_uri, "sweep", "--grace", "0"])
    assert status == 0 and err == ""
    assert "namespace 'cart' (Beaker file store at" in out
    assert "removed 0 sessions, 0 lock files, 0 revocation records; kept 2 sessions" in out
    later = time.time() + 5
    monkeypatch.setattr(time, "time", lambda: later)
    status, out, _ = run([config_uri, "--sweep", "--dry-run"])
    assert status == 0 and "would remove 2 sessions, 2 lock files" in out
    status, out, _ = run([config_uri, "--sweep"])
    assert status == 0 and "removed 2 sessions, 2 lock files" in out
    assert files(tmp_path / "data", ".cache") == [] and files(tmp_path / "locks", ".lock") == []


@pytest.mark.parametrize(
    "extra",
    [["--check"], ["--format", "json"], ["--revoke", "bob"], ["--columns", "namespace"]],
)
def test_psessions_sweep_takes_no_other_action_or_listing_option(tmp_path, extra):
    status, _, err = run([ini(tmp_path), "sweep", *extra])
    assert status == 2 and "sweep changes state and takes no other action" in err


def test_psessions_sweep_options_need_sweep(tmp_path):
    status, _, err = run([ini(tmp_path), "--dry-run"])
    assert status == 2 and "--dry-run and --grace are options of sweep" in err
    status, _, err = run([ini(tmp_path), "sweep", "--grace", "-1"])
    assert status == 2 and "--grace -1.0" in err


def test_psessions_sweep_fails_when_a_store_cannot_be_reached(tmp_path):
    dead = "redis://127.0.0.1:1/0?socket_timeout=1"
    status, out, err = run([ini(tmp_path, dead), "sweep"])
    assert status == 1
    assert "revocation store" in err and "not swept" in err
    assert "namespace 'cart'" in out
