"""Every lifecycle path, failed at each call it makes to a store or a library.

One app, three namespaces on real stores: ``cart`` on a real redis-server
(pyramid_session_redis), ``basket`` on a real SQL database (Beaker's
ext:database on SQLite), ``prefs`` a signed cookie; a revocation store, and
the application's own subscribers and validator.  Each path (load, save,
rotate, invalidate, revoke, migrate, expire, bind) is first run as is, its
calls counted by :class:`tests.support.faults.Faults`, then once per call
with that call failing.  Each run asserts what docs/narr/lifecycle.rst,
fallbacks.rst and lifetimes.rst promise for a failure at that point, and
counts what is left in every store: nothing written that does not expire,
nothing more than one copy per session, nothing of a revoked or logged-out
session served again.
"""

import logging

import pytest
import sqlalchemy
import webtest
from pyramid_session_redis import RedisSessionFactory

from pyramid_session_multi.events import SessionInvalidated, SessionLoaded, SessionRotated
from pyramid_session_multi.revocation import MemoryRevocationStore, RevocationStoreUnavailable
from tests.support.apps import build_wsgi, signed_factory
from tests.support.backend_app import beaker_sql
from tests.support.faults import Faults, InjectedFault
from tests.support.redis_server import redis_keys

SECRET = "a-secret-long-enough-for-the-signer"
OLD_SECRET = "the-secret-of-before-the-deploy-x"
NAMESPACES = ("cart", "basket", "prefs")


@pytest.fixture(autouse=True)
def library_clock(clock, monkeypatch):
    """pyramid_session_redis reads the test's clock too.

    By default (``python_expires``) it writes an expiry into every
    serialization of a session, from its own whole seconds of the wall
    clock: a session read in a later second than it was written is
    serialized differently, so the library writes it again (and the merge's
    compare-and-set, expecting that serialization, goes round once more).
    On its own clock, whether a run of a path crossed a second decided how
    many calls it made.
    """
    import pyramid_session_redis.util

    monkeypatch.setattr(pyramid_session_redis.util, "time_time", clock)


@pytest.fixture
def faults(monkeypatch):
    faults = Faults(monkeypatch)
    yield faults
    faults.close()


class Stores:
    """The stores of one test: a Redis database, a SQLite file, a revocation store."""

    def __init__(self, redis_url, tmp_path):
        import redis

        self.redis_url = redis_url
        self.redis = redis.StrictRedis.from_url(redis_url)
        self.sql_url = f"sqlite:///{tmp_path / 'sessions.sqlite'}"
        self.engine = sqlalchemy.create_engine(self.sql_url)
        self.tmp_path = tmp_path
        self.revocations = MemoryRevocationStore()

    def empty(self):
        self.redis.flushdb()
        # as a server that never ran the merge's script (a restart): its first
        # save falls back from EVALSHA to EVAL in every run, whatever ran before
        self.redis.script_flush()
        with self.engine.begin() as connection:
            for table in sqlalchemy.inspect(connection).get_table_names():
                connection.execute(sqlalchemy.text(f'delete from "{table}"'))
        self.revocations = MemoryRevocationStore()

    def redis_keys(self):
        return redis_keys(self.redis_url)

    def rows(self):
        with self.engine.connect() as connection:
            if "beaker_sessions" not in sqlalchemy.inspect(connection).get_table_names():
                return 0
            return connection.execute(
                sqlalchemy.text("select count(*) from beaker_sessions")
            ).one()[0]

    def assert_nothing_grows(self, sessions=1):
        """What is left: at most ``sessions`` copies a store, every Redis key expiring."""
        keys = self.redis_keys()
        assert len(keys) <= sessions, keys
        for key in keys:
            assert self.redis.ttl(key) > 0, f"{key!r} never expires"
        assert self.rows() <= sessions

    def close(self):
        self.redis.close()
        self.engine.dispose()


@pytest.fixture
def stores(redis_db, tmp_path):
    stores = Stores(redis_db, tmp_path)
    yield stores
    stores.close()


def redis_factory(url, secret=SECRET):
    # the library's own timeout lies beyond every move of the clock here: the
    # add-on's idle timeout (600 s) is what ends a session
    return RedisSessionFactory(secret=secret, cookie_name="cart", redis_url=url, timeout=3600)


def app_of(stores, faults, *, bound=False, fallback=False, revocations=False, setup_more=None):
    """The app of the paths: the three namespaces, the views, wrapped hooks."""

    def write(request):
        sessions = [request.session_multi[ns] for ns in NAMESPACES]
        faults.mark("view")
        for session in sessions:
            session["value"] = request.params.get("value", "written")
        faults.mark("end")
        return {}

    def read(request):
        values = {}
        for ns in NAMESPACES:
            session = request.session_multi[ns]
            values[ns] = None if session is None else session.get("value")
        faults.mark("end")
        return values

    def rotate(request):
        for ns in NAMESPACES:
            request.session_multi[ns]
        faults.mark("view")
        failed = request.session_multi.rotate(userid=request.params.get("userid"))
        faults.mark("end")
        return {"failed": sorted(failed)}

    def logout(request):
        for ns in NAMESPACES:
            request.session_multi[ns]
        faults.mark("view")
        failed = request.session_multi.invalidate()
        faults.mark("end")
        return {"failed": sorted(failed)}

    def logout_partner(request):
        for ns in NAMESPACES:
            request.session_multi[ns]
        faults.mark("view")
        request.session_multi["prefs"].invalidate()
        faults.mark("end")
        return {}

    def logout_then_write(request):
        for ns in NAMESPACES:
            request.session_multi[ns]
        faults.mark("view")
        failed = request.session_multi.invalidate()
        for ns in NAMESPACES:
            if ns not in failed:
                request.session_multi[ns]["value"] = "after the logout"
        faults.mark("end")
        return {"failed": sorted(failed)}

    def rotate_then_raise(request):
        for ns in NAMESPACES:
            request.session_multi[ns]
        faults.mark("view")
        request.session_multi.rotate()
        faults.mark("end")
        raise RuntimeError("the view failed after the rotation")

    def revoke(request):
        faults.mark("view")
        request.session_multi.revoke("alice")
        faults.mark("end")
        return {}

    def setup(config):
        fallbacks = [redis_factory(stores.redis_url, OLD_SECRET)] if fallback else None
        config.register_session_factory(
            "cart",
            redis_factory(stores.redis_url),
            fallbacks=fallbacks,
            bound_to="prefs" if bound else None,
            idle_timeout=600,
        )
        config.register_session_factory(
            "basket", beaker_sql(stores.sql_url, stores.tmp_path, "basket")
        )
        config.register_session_factory(
            "prefs",
            signed_factory("prefs"),
            validator=faults.callable(lambda request, session: True, "validator"),
        )
        if revocations:
            config.set_revocation_store(stores.revocations)
        for event in (SessionLoaded, SessionRotated, SessionInvalidated):
            config.add_subscriber(
                faults.callable(lambda event: None, f"subscriber {event.__name__}"), event
            )
        for name, view in (
            ("write", write),
            ("read", read),
            ("rotate_all", rotate),
            ("logout", logout),
            ("revoke", revoke),
            ("logout_partner", logout_partner),
            ("logout_write", logout_then_write),
            ("rotate_raise", rotate_then_raise),
        ):
            config.add_route(name, f"/{name}")
            config.add_view(view, route_name=name, renderer="json")
        if setup_more is not None:
            setup_more(config)

    return webtest.TestApp(build_wsgi(setup))


def send(app, url, **params):
    """The response, or the exception that left the app (a load that failed)."""
    try:
        return app.get(url, params=params)
    except Exception as exc:
        return exc


def sweep(faults, prepare, act, check):
    """Run ``act`` once per call it makes, that call failing; ``check`` each outcome.

    ``prepare`` (unarmed) sets the stores and a client up afresh and returns
    what ``act`` and ``check`` take.  Returns the labels of the calls.
    """
    context = prepare()
    calls = faults.count(lambda: act(context))
    assert calls, "the path makes no call to fail"
    for n in range(1, len(calls) + 1):
        context = prepare()
        with faults.failing(n):
            outcome = act(context)
        # up to the one that failed, the same calls as when counted
        assert faults.calls[:n] == calls[:n], (
            f"the calls differ from run to run before {n}: {calls} counted, {faults.calls} now"
        )
        try:
            check(context, outcome, faults)
        except AssertionError as exc:
            exc.add_note(f"call {n} of {calls} failed: {faults.fired} in {faults.fired_in}")
            raise
    return calls


def cookie_set(response, name):
    return [
        value
        for header, value in response.headerlist
        if header == "Set-Cookie" and value.startswith(name + "=")
    ]


def deleted(response, name):
    return any("Max-Age=0" in value for value in cookie_set(response, name))


def namespace_of(label):
    """The namespace whose store a call's label belongs to, if only one."""
    if label.startswith("redis"):
        return "cart"
    if label.startswith(("sql", "beaker")):
        return "basket"
    if label == "validator":
        return "prefs"
    return None


def load_failed(outcome, faults, caplog=None):
    """A failure while loading propagates, named: the view asked for a session
    that could not be made (lifecycle.rst, Loading, 3); Beaker loads at the
    view's first use.  Never once the view is done: saving is contained.  A
    subscriber that raises is logged only (lifecycle.rst, Events and
    subscribers)."""
    if faults.fired.startswith("subscriber"):
        assert outcome.status_int == 200
        return
    assert faults.fired_in in ("load", "view")
    assert isinstance(outcome, Exception)
    notes = " ".join(getattr(outcome, "__notes__", []))
    namespace = namespace_of(faults.fired)
    if namespace is not None:
        logged = " ".join(record.getMessage() for record in caplog.records) if caplog else ""
        assert repr(namespace) in notes + logged


def save_failed(app, before, outcome, faults, caplog):
    """A failure while saving is the namespace's alone (lifecycle.rst, When a
    store fails): the response goes out, the failing namespace's cookie is not
    changed, it is logged with the namespace named."""
    assert outcome.status_int == 200
    namespace = namespace_of(faults.fired)
    if namespace is None:  # a subscriber: logged only
        return
    assert not cookie_set(outcome, namespace) or namespace == "cart"
    if namespace == "cart":
        # pyramid_session_redis saves in a finished callback, after the
        # response is formed: the cookie it would have kept is taken out
        assert app.cookies.get("cart") == before.get("cart") or "cart" not in app.cookies
    assert any(repr(namespace) in record.getMessage() for record in caplog.records)


# -- save and load -------------------------------------------------------------


def test_a_write_failed_at_any_store_call_fails_that_namespace_alone(stores, faults, caplog, clock):
    caplog.set_level(logging.ERROR, logger="pyramid_session_multi")
    faults.redis().sql().beaker()
    app = app_of(stores, faults)

    def prepare():
        stores.empty()
        app.reset()
        app.get("/write", params={"value": "before"})
        caplog.clear()
        return dict(app.cookies)

    def act(before):
        return send(app, "/write", value="after")

    def check(before, outcome, faults):
        if faults.fired_in == "load" or isinstance(outcome, Exception):
            load_failed(outcome, faults)
        else:
            save_failed(app, before, outcome, faults, caplog)
        stores.assert_nothing_grows()
        # what the client reads next is one write or the other, never a mix of sessions
        values = app.get("/read").json
        assert set(values.values()) <= {"before", "after", None}
        assert values["prefs"] in ("before", "after")

    calls = sweep(faults, prepare, act, check)
    assert {"redis", "sql SELECT", "beaker __getitem__", "validator"} <= set(calls)


def test_a_read_failed_at_any_store_call_serves_nothing_wrong(stores, faults, caplog, clock):
    faults.redis().sql().beaker()
    app = app_of(stores, faults)

    def prepare():
        stores.empty()
        app.reset()
        app.get("/write", params={"value": "kept"})
        return dict(app.cookies)

    def act(before):
        return send(app, "/read")

    def check(before, outcome, faults):
        if isinstance(outcome, Exception):
            load_failed(outcome, faults)
        else:
            assert outcome.status_int == 200
            assert set(outcome.json.values()) <= {"kept", None}
        stores.assert_nothing_grows()
        # nothing was lost: the store is read as it was once the fault is gone
        assert app.get("/read").json == dict.fromkeys(NAMESPACES, "kept")

    sweep(faults, prepare, act, check)


# -- rotate and invalidate -----------------------------------------------------


def test_a_rotation_failed_at_any_call_is_reported_and_leaves_no_copy(
    stores, faults, caplog, clock
):
    faults.redis().sql().beaker()
    app = app_of(stores, faults)

    def prepare():
        stores.empty()
        app.reset()
        app.get("/write", params={"value": "kept"})
        return dict(app.cookies)

    def act(before):
        return send(app, "/rotate_all")

    def check(before, outcome, faults):
        if faults.fired_in == "load" or isinstance(outcome, Exception):
            load_failed(outcome, faults)
        elif faults.fired_in == "view" and namespace_of(faults.fired) is not None:
            # identity.rst: reported in the dict rotate() returns, its cookie deleted
            namespace = namespace_of(faults.fired)
            assert outcome.json["failed"] == [namespace]
            assert deleted(outcome, namespace)
        else:
            assert outcome.status_int == 200
        # rotate() is all or nothing: the old copy goes once the new one is saved;
        # where deleting it then fails, it is left (logged), beside the new one
        stores.assert_nothing_grows(2 if retiring(faults) else 1)

    sweep(faults, prepare, act, check)


def test_a_bound_rotation_failed_at_any_call_never_serves_half_a_pair(
    stores, faults, caplog, clock
):
    faults.redis().sql().beaker()
    app = app_of(stores, faults, bound=True)

    def prepare():
        stores.empty()
        app.reset()
        app.get("/write", params={"value": "kept"})
        return dict(app.cookies)

    def act(before):
        return send(app, "/rotate_all")

    def check(before, outcome, faults):
        if faults.fired_in == "load" or isinstance(outcome, Exception):
            load_failed(outcome, faults)
        elif faults.fired_in == "view" and namespace_of(faults.fired) is not None:
            # identity.rst: reported in the dict rotate() returns, its cookie deleted
            namespace = namespace_of(faults.fired)
            assert outcome.json["failed"] == [namespace]
            assert deleted(outcome, namespace)
        else:
            assert outcome.status_int == 200
        # binding.rst: the bound session is served beside the partner it was
        # bound to, or not at all: never beside a partner rotated without it
        values = app.get("/read").json
        assert values["prefs"] in ("kept", None)
        assert values["cart"] in ("kept", None)
        if values["cart"] is not None:
            assert values["prefs"] == "kept"
        stores.assert_nothing_grows(2 if retiring(faults) else 1)

    sweep(faults, prepare, act, check)


def retiring(faults):
    """Whether the fault fired where the end of request deletes an old copy."""
    return faults.fired_in == "end" and faults.fired in ("beaker do_remove", "sql DELETE", "redis")


def test_a_logout_failed_at_any_call_still_logs_out_client_side(stores, faults, caplog, clock):
    faults.redis().sql().beaker()
    app = app_of(stores, faults)

    def prepare():
        stores.empty()
        app.reset()
        app.get("/write", params={"value": "secret"})
        return dict(app.cookies)

    def act(before):
        return send(app, "/logout")

    def check(before, outcome, faults):
        if faults.fired_in == "load" or isinstance(outcome, Exception):
            load_failed(outcome, faults)
            return
        assert outcome.status_int == 200
        failed = outcome.json["failed"]
        namespace = namespace_of(faults.fired)
        if faults.fired_in == "view" and namespace is not None:
            # lifecycle.rst: reported in the dict invalidate() returns
            assert failed == [namespace]
        else:
            assert failed == []
        # whatever failed, every cookie of before the logout is deleted
        for ns in NAMESPACES:
            assert deleted(outcome, ns), ns
        assert app.get("/read").json == dict.fromkeys(NAMESPACES)
        stores.assert_nothing_grows()

    sweep(faults, prepare, act, check)


# -- revoke and expire -----------------------------------------------------------


def test_a_revocation_failed_at_any_call_revokes_all_or_nothing(stores, faults, caplog, clock):
    faults.redis().sql().beaker()
    current = {}

    def prepare():
        clock.at(0)
        stores.empty()
        faults.revocations(stores.revocations)
        app = current["app"] = app_of(stores, faults, revocations=True)
        app.get("/write", params={"value": "alice's"})
        app.get("/rotate_all", params={"userid": "alice"})
        clock.at(1)
        return dict(app.cookies)

    def act(before):
        return send(current["app"], "/revoke")

    def check(before, outcome, faults):
        app = current["app"]
        revoked = stores.revocations.revoked_at("alice")
        if faults.fired == "revocations revoke":
            # lifetimes.rst: revoke() raises the same error, and nothing is revoked
            assert isinstance(outcome, RevocationStoreUnavailable)
            assert revoked is None
            return
        if isinstance(outcome, Exception):
            # a store that failed before the revocation was recorded: nothing revoked
            assert faults.fired_in in ("load", "view")
            assert revoked is None
        else:
            assert outcome.status_int == 200
            assert revoked is not None
        if revoked is not None:
            # revoked: no session of alice's of before is served again
            app.reset()
            for name, value in before.items():
                app.set_cookie(name, value)
            assert app.get("/read").json == dict.fromkeys(NAMESPACES)
        stores.assert_nothing_grows()

    sweep(faults, prepare, act, check)


def test_a_lookup_failed_fails_the_load_and_deletes_nothing(stores, faults, caplog, clock):
    faults.revocations(stores.revocations)
    app = app_of(stores, faults, revocations=True)
    app.get("/write", params={"value": "alice's"})
    app.get("/rotate_all", params={"userid": "alice"})
    keys, rows = stores.redis_keys(), stores.rows()
    with faults.failing(1, error=TimeoutError):
        outcome = send(app, "/read")
    assert faults.fired == "revocations revoked_at"
    # lifetimes.rst: fails to load as if its own store were down, nothing deleted
    assert isinstance(outcome, RevocationStoreUnavailable)
    assert (stores.redis_keys(), stores.rows()) == (keys, rows)
    assert app.get("/read").json == dict.fromkeys(NAMESPACES, "alice's")


def test_an_expiry_failed_at_any_call_never_serves_the_expired_session(
    stores, faults, caplog, clock
):
    faults.redis().sql().beaker()
    app = app_of(stores, faults)

    def prepare():
        clock.at(0)
        stores.empty()
        app.reset()
        app.get("/write", params={"value": "stale"})
        clock.at(601)
        return dict(app.cookies)

    def act(before):
        return send(app, "/read")

    def check(before, outcome, faults):
        if isinstance(outcome, Exception):
            load_failed(outcome, faults, caplog)  # fails closed
        else:
            assert outcome.json["cart"] is None
        assert app.get("/read").json["cart"] is None
        stores.assert_nothing_grows()

    sweep(faults, prepare, act, check)


# -- migrate and bind ------------------------------------------------------------


def test_a_migration_failed_at_any_call_keeps_the_old_copy_for_the_next_request(
    stores, faults, caplog, clock
):
    faults.redis()
    old_app = webtest.TestApp(
        build_wsgi(lambda config: config.register_session_factory(
            "cart", redis_factory(stores.redis_url, OLD_SECRET)
        ))
    )  # fmt: skip
    app = app_of(stores, faults, fallback=True)

    def prepare():
        stores.empty()
        old_app.reset()
        app.reset()
        old_app.post("/s/cart", {"value": "from before the deploy"})
        app.set_cookie("cart", old_app.cookies["cart"])
        return dict(app.cookies)

    def act(before):
        return send(app, "/read")

    def check(before, outcome, faults):
        if isinstance(outcome, Exception):
            load_failed(outcome, faults)
        else:
            assert outcome.json["cart"] in ("from before the deploy", None)
        # fallbacks.rst: the old copy is kept until the new one went out
        assert app.get("/read").json["cart"] == "from before the deploy"
        if faults.fired_in == "end" and faults.fired == "redis":
            # the new copy went out, the old one's delete failed: it is left
            # to expire with its TTL (its cookie is the client's no more)
            stores.assert_nothing_grows(sessions=2)
        else:
            assert len(stores.redis_keys()) == 1
            stores.assert_nothing_grows()

    sweep(faults, prepare, act, check)


def test_a_bound_write_failed_at_any_call_leaves_the_binding_whole(stores, faults, caplog, clock):
    caplog.set_level(logging.ERROR, logger="pyramid_session_multi")
    faults.redis().sql().beaker()
    app = app_of(stores, faults, bound=True)

    def prepare():
        stores.empty()
        app.reset()
        app.get("/write", params={"value": "before"})
        caplog.clear()
        return dict(app.cookies)

    def act(before):
        return send(app, "/write", value="after")

    def check(before, outcome, faults):
        if faults.fired_in == "load" or isinstance(outcome, Exception):
            load_failed(outcome, faults)
        else:
            save_failed(app, before, outcome, faults, caplog)
        # the bound session is read beside its partner, never rejected by a half-save
        values = app.get("/read").json
        assert values["cart"] in ("before", "after")
        stores.assert_nothing_grows()

    sweep(faults, prepare, act, check)


def test_revoke_logs_out_the_other_namespaces_when_one_store_fails(
    stores, faults, monkeypatch, caplog, clock
):
    # manager.revoke: "logged out as invalidate() would": one store failing to
    # delete its copy neither fails the request nor keeps the others logged in
    import redis.client

    app = app_of(stores, faults, revocations=True)
    app.get("/write", params={"value": "alice's"})
    app.get("/rotate_all", params={"userid": "alice"})
    before = dict(app.cookies)
    clock.at(1)
    original = redis.client.Redis.execute_command

    def execute_command(self, *args, **kwargs):
        if args and args[0] == "DEL":
            raise ConnectionError("the cart's store went away")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(redis.client.Redis, "execute_command", execute_command)
    response = app.get("/revoke")
    monkeypatch.setattr(redis.client.Redis, "execute_command", original)

    assert response.status_int == 200
    assert stores.revocations.revoked_at("alice") is not None
    for ns in NAMESPACES:
        assert deleted(response, ns), ns
    assert any("'cart' could not be invalidated" in r.getMessage() for r in caplog.records)
    # revoked: none of alice's cookies of before brings anything back
    app.reset()
    for name, value in before.items():
        app.set_cookie(name, value)
    assert app.get("/read").json == dict.fromkeys(NAMESPACES)


def test_a_view_that_raises_keeps_a_stored_sessions_user_and_clocks(stores, faults, clock):
    # pyramid_session_redis saves in a finished callback, response or not:
    # what it saves of a request whose view raised keeps the lifetime stamps
    # (the user recorded at login among them), so a revocation still ends it
    def write_then_raise(request):
        request.session_multi["cart"]["value"] = "written, then the view raised"
        raise RuntimeError("the view failed")

    def setup(config):
        config.add_route("raise", "/raise")
        config.add_view(write_then_raise, route_name="raise")

    app = app_of(stores, faults, revocations=True, setup_more=setup)
    app.get("/write", params={"value": "alice's"})
    app.get("/rotate_all", params={"userid": "alice"})
    clock.at(1)
    with pytest.raises(RuntimeError):
        app.get("/raise")
    clock.at(2)
    webtest.TestApp(app.app).get("/revoke")  # from another device
    assert app.get("/read").json == dict.fromkeys(NAMESPACES)
    stores.assert_nothing_grows()


def test_an_expired_session_whose_delete_fails_is_not_served_again(stores, faults, clock):
    faults.redis()
    app = app_of(stores, faults)
    app.get("/write", params={"value": "stale"})
    clock.at(601)
    calls = faults.count(lambda: app.get("/read"))
    assert calls[:2] == ["redis", "redis"]  # GET, then the expiry's DEL
    app.get("/write", params={"value": "stale"})  # written afresh at 601
    clock.at(601 + 601)
    with faults.failing(2):
        outcome = send(app, "/read")
    assert isinstance(outcome, InjectedFault)  # fails closed
    assert app.get("/read").json["cart"] is None
    stores.assert_nothing_grows()


def test_a_migration_in_a_request_that_raises_leaves_no_new_copy(stores, faults, clock):
    old_app = webtest.TestApp(
        build_wsgi(lambda config: config.register_session_factory(
            "cart", redis_factory(stores.redis_url, OLD_SECRET)
        ))
    )  # fmt: skip

    def read_then_raise(request):
        request.session_multi["cart"].get("value")
        raise RuntimeError("the view failed")

    def setup(config):
        config.add_route("raise", "/raise")
        config.add_view(read_then_raise, route_name="raise")

    app = app_of(stores, faults, fallback=True, setup_more=setup)
    old_app.post("/s/cart", {"value": "from before the deploy"})
    app.set_cookie("cart", old_app.cookies["cart"])
    with pytest.raises(RuntimeError):
        app.get("/raise")
    # the old copy only: the new one would have had no cookie ever pointing at it
    assert len(stores.redis_keys()) == 1
    assert app.get("/read").json["cart"] == "from before the deploy"
    assert len(stores.redis_keys()) == 1


def test_a_partner_logout_failed_at_any_call_still_ends_the_bound_session(
    stores, faults, caplog, clock
):
    faults.redis().sql().beaker()
    app = app_of(stores, faults, bound=True)

    def prepare():
        stores.empty()
        app.reset()
        app.get("/write", params={"value": "bound"})
        return dict(app.cookies)

    def act(before):
        return send(app, "/logout_partner")

    def check(before, outcome, faults):
        if isinstance(outcome, Exception):
            load_failed(outcome, faults, caplog)
            return
        assert outcome.status_int == 200
        # lifecycle.rst, Decide: the bound session ends with its partner; one
        # whose store failed to delete it has its cookie deleted all the same
        assert app.cookies.get("prefs") != before["prefs"]
        assert deleted(outcome, "cart")
        values = app.get("/read").json
        assert (values["cart"], values["prefs"]) == (None, None)
        stores.assert_nothing_grows()

    sweep(faults, prepare, act, check)


def test_a_save_after_a_logout_failed_at_any_call_leaves_no_cookie_of_before(
    stores, faults, caplog, clock
):
    faults.redis().sql().beaker()
    app = app_of(stores, faults)

    def prepare():
        stores.empty()
        app.reset()
        app.get("/write", params={"value": "before the logout"})
        return dict(app.cookies)

    def act(before):
        return send(app, "/logout_write")

    def check(before, outcome, faults):
        if isinstance(outcome, Exception):
            load_failed(outcome, faults, caplog)
            return
        assert outcome.status_int == 200
        # lifecycle.rst, Apply: invalidated and no new cookie (its library
        # failed): the client's old cookie is deleted
        for ns in NAMESPACES:
            assert app.cookies.get(ns) != before[ns], ns
        assert set(app.get("/read").json.values()) <= {"after the logout", None}
        stores.assert_nothing_grows()

    sweep(faults, prepare, act, check)


def test_a_rotation_whose_request_fails_at_any_call_leaves_no_orphan(stores, faults, caplog, clock):
    faults.redis().sql().beaker()
    app = app_of(stores, faults)

    def prepare():
        stores.empty()
        app.reset()
        app.get("/write", params={"value": "rotated"})
        return dict(app.cookies)

    def act(before):
        return send(app, "/rotate_raise")

    def check(before, outcome, faults):
        assert isinstance(outcome, Exception)
        # no response: a new id no cookie carries is not kept, and the old copy
        # stays for the cookie the client still holds (rotate() is all or
        # nothing); where dropping the new one fails, it is left to expire
        stores.assert_nothing_grows(2 if retiring(faults) else 1)
        if not isinstance(outcome, RuntimeError):
            load_failed(outcome, faults, caplog)

    sweep(faults, prepare, act, check)


def test_a_logout_whose_next_session_fails_to_save_late_leaves_no_old_cookie(
    stores, faults, caplog, clock
):
    # pyramid_session_redis saves in a finished callback, once the response
    # is formed: a failure there after a logout deletes the client's old
    # cookie rather than leaving it in place (lifecycle.rst, Apply)
    faults.redis()
    app = app_of(stores, faults)

    def logged_in():
        stores.empty()
        app.reset()
        app.get("/write", params={"value": "before the logout"})

    logged_in()
    calls = faults.count(lambda: app.get("/logout_write"))
    assert calls[-1].startswith("redis")
    logged_in()
    with faults.failing(len(calls)):
        response = app.get("/logout_write")
    assert faults.fired_in == "end"
    assert deleted(response, "cart")
    assert "cart" not in app.cookies
    assert "namespace 'cart' could not be saved" in caplog.text
