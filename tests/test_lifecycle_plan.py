"""What loading a namespace runs (its load plan), and when its end of request is enlisted.

Real pyramid cookie sessions and Redis sessions, driven through a real router:
a client-side namespace whose end of request is needed only now and then (a
validator, timeouts) is enlisted only when something needs it, and its
lifetime stamps ride in its cookie all the same.
"""

import pytest
import webtest
from pyramid.config import Configurator
from pyramid.exceptions import ConfigurationError
from pyramid.response import Response
from pyramid.session import SignedCookieSessionFactory
from pyramid_session_redis import RedisSessionFactory

from pyramid_session_multi import SessionMultiManagerConfig
from pyramid_session_multi.config import get_manager_config
from pyramid_session_multi.events import SessionExpired, SessionRejected
from pyramid_session_multi.lifecycle import lifetime
from pyramid_session_multi.lifecycle.ending import RequestEnd
from pyramid_session_multi.revocation import MemoryRevocationStore
from tests.test_libraries import NotebookFactory, NotebookLibrary, NotebookSession

SECRET = "a-secret-of-enough-length-for-the-plan-tests"


def signed(name="prefs", **kwargs):
    return SignedCookieSessionFactory(SECRET, cookie_name=name, **kwargs)


def build(register, settings=None, events=None):
    """An app whose views note whether the add-on's end of request was enlisted."""
    config = Configurator(settings=settings or {})
    config.include("pyramid_session_multi")
    register(config)
    seen = {}

    def enlisted(request):
        return any(isinstance(callback, RequestEnd) for callback in request.response_callbacks)

    def write(request):
        request.session_multi["prefs"]["n"] = request.params.get("n", "1")
        seen["enlisted"] = enlisted(request)
        return Response("written")

    def read(request):
        value = request.session_multi["prefs"].get("n")
        seen["enlisted"] = enlisted(request)
        return Response(str(value))

    def login(request):
        request.session_multi["prefs"]["n"] = "1"
        request.session_multi.rotate(userid="alice")
        seen["enlisted"] = enlisted(request)
        return Response("in")

    def keys(request):
        session = request.session_multi["prefs"]
        session["n"] = "2"

        def after(request, response):
            seen["keys after its cookie"] = sorted(dict.keys(session))

        request.add_response_callback(after)
        return Response("ok")

    for name, view in (("write", write), ("read", read), ("login", login), ("keys", keys)):
        config.add_route(name, f"/{name}")
        config.add_view(view, route_name=name)
    if events is not None:
        for event_class in (SessionExpired, SessionRejected):
            config.add_subscriber(events.append, event_class)
    return webtest.TestApp(config.make_wsgi_app()), seen, config


def test_a_stamped_cookie_namespace_read_or_written_needs_no_end_of_request(clock):
    events = []
    client, seen, _ = build(
        lambda config: config.register_session_factory("prefs", signed(), idle_timeout=600),
        events=events,
    )
    client.get("/write", params={"n": "7"})
    assert seen["enlisted"] is False
    assert client.get("/read").text == "7"
    assert seen["enlisted"] is False
    # the stamps rode in the cookie: the idle clock holds, and ends the session
    clock.at(601)
    assert client.get("/read").text == "None"
    assert [type(event) for event in events] == [SessionExpired]
    # the expiry is the add-on's to end: enlisted, and the cookie is deleted
    assert seen["enlisted"] is True


def test_an_expired_cookie_session_loses_its_cookie(clock):
    client, _, _ = build(
        lambda config: config.register_session_factory("prefs", signed(), absolute_timeout=60)
    )
    client.get("/write")
    assert "prefs" in client.cookies
    clock.at(61)
    response = client.get("/read")
    assert response.text == "None"
    assert any(
        header.startswith("prefs=;") and "Max-Age=0" in header
        for header in response.headers.getall("Set-Cookie")
    )
    assert "prefs" not in client.cookies


def test_a_rotation_enlists_a_stamped_cookie_namespace(clock):
    client, seen, _ = build(
        lambda config: config.register_session_factory("prefs", signed(), idle_timeout=600)
    )
    client.get("/login")
    assert seen["enlisted"] is True
    assert client.get("/read").text == "1"
    assert seen["enlisted"] is False


def test_the_application_sees_no_stamps_once_the_cookie_is_made(clock):
    client, seen, _ = build(
        lambda config: config.register_session_factory("prefs", signed(), idle_timeout=600)
    )
    client.get("/keys")
    assert seen["keys after its cookie"] == ["n"]


@pytest.mark.parametrize("oversize", ["raise", "drop"])
def test_the_stamps_ride_in_a_budgeted_cookie_too(clock, oversize):
    # a per-cookie limit below pyramid's own installs the budget's class
    settings = {"session_multi.cookie_limit": "3000", "session_multi.oversize": oversize}
    events = []
    client, seen, config = build(
        lambda config: config.register_session_factory("prefs", signed(), idle_timeout=600),
        settings=settings,
        events=events,
    )
    loader = get_manager_config(config.registry).get("prefs").loader
    assert loader.__mro__[1].__name__ == "CookieSession"  # the budget's subclass
    client.get("/write", params={"n": "3"})
    assert seen["enlisted"] is False
    clock.at(59)
    # a read re-issues the cookie (pyramid's reissue_time is 0): it carries the new stamp
    assert client.get("/read").text == "3"
    clock.at(59 + 600)
    assert client.get("/read").text == "3"
    clock.at(59 + 600 + 601)
    assert client.get("/read").text == "None"
    assert [type(event) for event in events] == [SessionExpired]


def test_a_cookie_namespace_with_a_validator_is_enlisted_only_when_it_rejects():
    def register(config):
        config.register_session_factory(
            "prefs", signed(), validator=lambda request, session: session.get("n") != "bad"
        )

    events = []
    client, seen, _ = build(register, events=events)
    client.get("/write", params={"n": "bad"})
    assert seen["enlisted"] is False
    response = client.get("/read")
    assert response.text == "None"
    assert seen["enlisted"] is True
    assert [event.reason for event in events] == ["validator"]
    assert "prefs" not in client.cookies


def test_a_namespace_registered_through_the_old_api_keeps_its_stamps_itself_too(clock):
    # registered through 0.4's API: its loader is the factory's class itself,
    # made to keep the stamps as the directive's namespaces do; a revocation
    # store stamps every namespace
    def register(config):
        manager_config = get_manager_config(config.registry)
        manager_config.register_session_factory("prefs", signed())
        config.set_revocation_store(MemoryRevocationStore())

    events = []
    client, seen, config = build(register, events=events)
    namespace_config = get_manager_config(config.registry).get("prefs")
    assert isinstance(get_manager_config(config.registry), SessionMultiManagerConfig)
    client.get("/login")
    assert namespace_config.pipeline.enlist_at_load is False
    assert namespace_config.pipeline.quick is True
    assert client.get("/read").text == "1"
    assert seen["enlisted"] is False
    # the user recorded at login rode in the cookie: a revocation ends it
    clock.at(1)
    get_manager_config(config.registry).revocations.revoke("alice", lifetime.issue_time(), None)
    assert client.get("/read").text == "None"
    assert [event.reason for event in events] == ["revoked"]


def test_a_server_side_namespace_is_enlisted_when_it_loads(redis_db):
    from pyramid_session_redis import RedisSessionFactory

    def register(config):
        config.register_session_factory(
            "prefs",
            RedisSessionFactory(secret=SECRET, cookie_name="prefs", redis_url=redis_db),
        )

    client, seen, _ = build(register)
    client.get("/read")
    assert seen["enlisted"] is True


def test_only_the_steps_and_checks_that_concern_a_namespace_run():
    ran = []

    def everyone(manager, namespace_config, request, session, state):
        ran.append(("everyone", namespace_config.namespace))

    def fallbacks_only(manager, namespace_config, request, session, state):
        ran.append(("fallbacks only", namespace_config.namespace))

    def register(config):
        config.add_session_load_step("everyone", everyone)
        config.add_session_load_step(
            "fallbacks only",
            fallbacks_only,
            applies=lambda namespace_config: bool(namespace_config.fallbacks),
        )
        config.register_session_factory("prefs", signed(), validator=lambda request, session: True)

    client, _, config = build(register)
    client.get("/write")
    assert ran == [("everyone", "prefs")]
    steps = get_manager_config(config.registry).get("prefs").steps
    assert steps == ("everyone", "validator")


def test_an_applications_own_check_runs_on_a_namespace_with_no_option_of_its_own():
    """A cookie namespace with nothing else to run goes through its pipeline
    once the application adds a check that concerns it."""
    events = []

    def not_two(work, namespace_config, request, session, partner):
        return "two" if session.get("n") == "2" else None

    def register(config):
        config.register_session_factory("prefs", signed())
        config.add_session_load_step("not_two", not_two, check=True)

    client, _, config = build(register, events=events)
    assert get_manager_config(config.registry).get("prefs").steps == ("not_two",)
    client.get("/write", {"n": "1"})
    assert client.get("/read").text == "1"
    client.get("/write", {"n": "2"})
    ended = client.get("/read")
    assert ended.text == "None"
    assert "Max-Age=0" in ended.headers["Set-Cookie"]  # the client's copy is deleted
    assert client.get("/read").text == "None"
    assert [(type(event), event.namespace, event.reason) for event in events] == [
        (SessionRejected, "prefs", "two")
    ]


def test_a_step_added_by_a_later_commit_runs_from_then_on():
    ran = []

    def late(manager, namespace_config, request, session, state):
        ran.append(namespace_config.namespace)

    client, _, config = build(
        lambda config: config.register_session_factory(
            "prefs", signed(), validator=lambda request, session: True
        )
    )
    client.get("/write")
    assert ran == []
    config.add_session_load_step("late", late)
    config.commit()
    client.get("/read")
    assert ran == ["prefs"]
    client.get("/read")
    assert ran == ["prefs", "prefs"]


def test_steps_are_ordered_by_name_not_by_when_they_were_added():
    order = []

    def step(name):
        return lambda manager, namespace_config, request, session, state: order.append(name)

    def register(config):
        config.add_session_load_step("second", step("second"), under="first")
        config.add_session_load_step("first", step("first"), under="fallbacks")
        config.add_session_load_step("zeroth", step("zeroth"), over="fallbacks")
        config.register_session_factory(
            "prefs", signed(), idle_timeout=60, validator=lambda r, s: True
        )

    client, _, config = build(register)
    client.get("/write")
    assert order == ["zeroth", "first", "second"]
    assert get_manager_config(config.registry).get("prefs").steps == (
        "zeroth",
        "first",
        "second",
        "validator",
        "expiry",
    )


def test_a_namespace_has_only_the_steps_its_configuration_asks_for(tmp_path):
    def register(config):
        config.register_session_factory("plain", signed("plain"))
        config.register_session_factory("timed", signed("timed"), absolute_timeout=60)
        config.register_session_factory(
            "moved", signed("moved"), fallbacks=[SignedCookieSessionFactory("old", "moved")]
        )

    _, _, config = build(register)
    manager_config = get_manager_config(config.registry)
    assert manager_config.get("plain").steps == ()
    # pyramid's cookie sessions take their stamps out themselves, as they are made
    assert manager_config.get("timed").steps == ("expiry",)
    assert manager_config.get("moved").steps == ("fallbacks",)


def test_a_failing_factory_is_named_once():
    def broken(request):
        raise RuntimeError("the store is down")

    def register(config):
        config.register_session_factory(
            "prefs", broken, cookie_name="prefs", validator=lambda request, session: True
        )

    client, _, _ = build(register)
    with pytest.raises(RuntimeError) as raised:
        client.get("/read")
    notes = getattr(raised.value, "__notes__", [])
    assert notes == ["pyramid_session_multi: raised by the session factory of namespace 'prefs'"]


def test_a_failing_discriminator_is_named():
    def discriminator(request):
        raise LookupError("no tenant")

    def register(config):
        config.register_session_factory(
            "prefs", signed(), discriminator=discriminator, idle_timeout=60
        )

    client, _, _ = build(register)
    with pytest.raises(LookupError) as raised:
        client.get("/read")
    assert raised.value.__notes__ == [
        "pyramid_session_multi: raised by the discriminator of namespace 'prefs'"
    ]


class SecretiveLibrary(NotebookLibrary):
    """An application's adapter that cannot tell what its sessions are."""

    def facts(self, factory):
        raise RuntimeError("unknown")


def test_a_namespace_whose_library_cannot_tell_its_facts_is_enlisted_as_server_side(
    monkeypatch,
):
    # nothing known of where its data lives: its end of request is the
    # add-on's from its load, as a server-side store's is
    monkeypatch.setattr(NotebookSession, "store", {})

    def register(config):
        config.add_session_library(SecretiveLibrary)
        config.register_session_factory("prefs", NotebookFactory("prefs"))

    client, seen, _ = build(register)
    client.get("/write", params={"n": "4"})
    assert seen["enlisted"] is True
    assert client.get("/read").text == "4"


def test_a_namespaces_plan_is_made_once_and_kept_while_current():
    config = Configurator()
    config.include("pyramid_session_multi")
    config.register_session_factory("prefs", signed(), validator=lambda request, session: True)
    config.add_route("read", "/read")
    config.add_view(
        lambda request: Response(str(request.session_multi["prefs"])), route_name="read"
    )
    app = webtest.TestApp(config.make_wsgi_app())
    manager_config = get_manager_config(config.registry)
    namespace_config = manager_config.get("prefs")
    plan = namespace_config.pipeline
    app.get("/read")
    app.get("/read")
    assert manager_config.get("prefs") is namespace_config
    assert namespace_config.pipeline is plan
    assert [check.__name__ for check in plan.checks] == ["validator_check"]


def test_a_bound_namespace_and_its_partner_take_the_binding_token_out_first():
    def register(config):
        config.register_session_factory("account", signed("account"))
        config.register_session_factory("admin", signed("admin"), bound_to="account")
        config.register_session_factory("plain", signed("plain"))

    _, _, config = build(register)
    manager_config = get_manager_config(config.registry)
    assert manager_config.get("account").steps == ("token",)
    assert manager_config.get("admin").steps == ("token", "binding")
    assert manager_config.get("plain").steps == ()


def library_callbacks(queue, package):
    """The callbacks in ``queue`` whose code comes from ``package``."""
    found = []
    for callback in queue:
        while hasattr(callback, "func"):  # functools.partial
            callback = callback.func
        function = getattr(callback, "__func__", callback)
        if getattr(function, "__module__", "").partition(".")[0] == package:
            found.append(callback)
    return found


@pytest.mark.parametrize("library", ["redis", "beaker"])
def test_a_server_side_namespace_takes_its_librarys_callbacks_as_it_loads(
    library, redis_db, tmp_path
):
    from pyramid_session_redis import RedisSessionFactory

    from tests.support.backend_app import beaker_file

    factories = {
        "redis": lambda: RedisSessionFactory(
            secret=SECRET, cookie_name="prefs", redis_url=redis_db
        ),
        "beaker": lambda: beaker_file(tmp_path, "prefs"),
    }
    package = {"redis": "pyramid_session_redis", "beaker": "pyramid_beaker"}[library]
    left = {}

    def register(config):
        config.register_session_factory("prefs", factories[library]())

        def queued(request):
            request.session_multi["prefs"]["n"] = "1"
            left["response"] = library_callbacks(request.response_callbacks, package)
            left["finished"] = library_callbacks(request.finished_callbacks, package)
            return Response("ok")

        config.add_route("queued", "/queued")
        config.add_view(queued, route_name="queued")

    client, _, config = build(register)
    assert get_manager_config(config.registry).get("prefs").pipeline.claim_at_load is True
    client.get("/queued")
    client.get("/queued")
    # nothing of the library's waits in the request's queues for the end to find
    assert left == {"response": [], "finished": []}
    assert client.get("/read").text == "1"


def test_a_namespace_whose_library_may_queue_later_is_searched_at_the_end():
    def register(config):
        config.register_session_factory("prefs", signed(), validator=lambda r, s: True)
        config.add_session_library(NotebookLibrary())
        config.register_session_factory("notes", NotebookFactory("notes"))

    _, _, config = build(register)
    manager_config = get_manager_config(config.registry)
    # pyramid's cookie session queues its cookie when it is first changed
    assert manager_config.get("prefs").pipeline.claim_at_load is False
    # an application's library that does not say it queues only as it makes one
    notes = manager_config.get("notes").pipeline
    assert notes.enlist_at_load is True
    assert notes.claim_at_load is False


def test_an_applications_callbacks_queued_while_a_redis_factory_runs_stay_its_own(redis_db):
    import redis
    from pyramid_session_redis import RedisSessionFactory

    ran = []

    def client_callable(request, **options):
        # the application's own code, run inside the library's factory
        request.add_response_callback(lambda request, response: ran.append("response"))
        request.add_finished_callback(lambda request: ran.append("finished"))
        return redis.StrictRedis.from_url(redis_db)

    def register(config):
        config.register_session_factory(
            "prefs",
            RedisSessionFactory(
                secret=SECRET, cookie_name="prefs", redis_client_callable=client_callable
            ),
        )

    client, _, _ = build(register)
    client.get("/write", params={"n": "7"})
    assert ran == ["response", "finished"]
    assert client.get("/read").text == "7"


def test_a_redis_session_written_in_a_request_that_forms_no_response_is_still_saved(redis_db):
    import redis
    from pyramid_session_redis import RedisSessionFactory

    def register(config):
        config.register_session_factory(
            "prefs", RedisSessionFactory(secret=SECRET, cookie_name="prefs", redis_url=redis_db)
        )

        def failing(request):
            request.session_multi["prefs"]["n"] = "written before the failure"
            raise RuntimeError("the view fails after writing")

        config.add_route("failing", "/failing")
        config.add_view(failing, route_name="failing")

    client, _, _ = build(register)
    client.get("/write", params={"n": "1"})
    with pytest.raises(RuntimeError, match="the view fails after writing"):
        client.get("/failing")
    # as pyramid_session_redis saves it alone: in its finished callback
    store = redis.StrictRedis.from_url(redis_db)
    (key,) = store.keys()
    assert b"written before the failure" in store.get(key)
    store.close()


def test_an_applications_callback_queued_while_a_redis_factory_runs_fails_as_its_own(redis_db):
    import redis
    from pyramid_session_redis import RedisSessionFactory

    def refuse(request, response):
        raise LookupError("the application's own callback fails")

    def client_callable(request, **options):
        request.add_response_callback(refuse)
        return redis.StrictRedis.from_url(redis_db)

    def register(config):
        config.register_session_factory(
            "prefs",
            RedisSessionFactory(
                secret=SECRET, cookie_name="prefs", redis_client_callable=client_callable
            ),
        )

    client, _, _ = build(register)
    # not taken for the namespace's: its failure is not contained as a save's
    with pytest.raises(LookupError, match="the application's own callback fails"):
        client.get("/write")


def test_stamps_go_into_a_redis_session_only_around_its_save(redis_db, tmp_path):
    from pyramid_session_redis import RedisSessionFactory

    from tests.support.backend_app import beaker_file

    def register(config):
        config.register_session_factory(
            "prefs",
            RedisSessionFactory(secret=SECRET, cookie_name="prefs", redis_url=redis_db),
            idle_timeout=600,
        )
        config.register_session_factory("files", beaker_file(tmp_path, "files"), idle_timeout=600)

    client, _, config = build(register)
    manager_config = get_manager_config(config.registry)
    # pyramid_session_redis writes Redis in its finished callback, not its cookie's
    assert manager_config.get("prefs").pipeline.records_when_finished is True
    # pyramid_beaker saves in its response callback
    assert manager_config.get("files").pipeline.records_when_finished is False
    client.get("/write", params={"n": "5"})
    assert client.get("/read").text == "5"


def test_a_redis_save_failing_in_a_request_that_forms_no_response_stays_the_namespaces(
    redis_db, caplog
):
    import redis
    from pyramid_session_redis import RedisSessionFactory

    class Refusing(redis.StrictRedis):
        """A Redis that went away just as the session is written."""

        def execute_command(self, *args, **options):
            if args[0] in ("SET", "SETEX"):
                raise redis.ConnectionError("the store went away")
            return super().execute_command(*args, **options)

    ran = []

    def register(config):
        config.register_session_factory(
            "prefs",
            RedisSessionFactory(
                secret=SECRET,
                cookie_name="prefs",
                redis_client_callable=lambda request, **options: Refusing.from_url(redis_db),
            ),
        )

        def failing(request):
            request.session_multi["prefs"]["n"] = "never stored"
            request.add_finished_callback(lambda request: ran.append("the application's"))
            raise RuntimeError("the view fails after writing")

        config.add_route("failing", "/failing")
        config.add_view(failing, route_name="failing")

    client, _, _ = build(register)
    # the view's error, not the store's: the application's finished callback ran too
    with pytest.raises(RuntimeError, match="the view fails after writing"):
        client.get("/failing")
    assert ran == ["the application's"]
    assert "'prefs' could not be saved" in caplog.text


@pytest.mark.parametrize(
    "name", ["token", "lifetime", "fallbacks", "validator", "binding", "expiry", "revocation"]
)
@pytest.mark.parametrize("check", [False, True])
def test_the_addons_own_steps_cannot_be_replaced_by_name(name, check):
    config = Configurator()
    config.include("pyramid_session_multi")
    config.set_revocation_store(MemoryRevocationStore())
    config.register_session_factory("prefs", signed(), idle_timeout=60)
    with pytest.raises(ConfigurationError) as raised:
        config.add_session_load_step(name, lambda *args: None, check=check)
    message = str(raised.value)
    assert repr(name) in message
    assert "pick another name" in message
    config.commit()
    assert get_manager_config(config.registry).get("prefs").steps == ("expiry", "revocation")


def step_app(register_step):
    config = Configurator()
    config.include("pyramid_session_multi")
    config.register_session_factory("prefs", signed(), idle_timeout=60)
    register_step(config)
    return config


@pytest.mark.parametrize("argument", ["step", "applies"])
def test_a_load_step_whose_dotted_name_does_not_import_is_named(argument):
    arguments = {"step": lambda *args: None, argument: "no_such_package.module:thing"}
    config = step_app(lambda config: None)
    with pytest.raises(ConfigurationError) as raised:
        config.add_session_load_step("mine", **arguments)
    message = str(raised.value)
    assert "load step 'mine'" in message
    assert f"{argument} = 'no_such_package.module:thing' cannot be imported" in message


def test_a_load_step_placed_by_an_unknown_name_names_it_and_the_known_ones():
    config = step_app(
        lambda config: config.add_session_load_step("mine", lambda *args: None, under="valdator")
    )
    with pytest.raises(ConfigurationError) as raised:
        config.commit()
    message = str(raised.value)
    assert "load step 'mine' is placed under='valdator'" in message
    assert "no load step is named 'valdator'" in message
    assert "'validator'" in message and "'expiry'" in message


@pytest.mark.parametrize("placed", [{"under": ["validator", 5]}, {"over": 3}])
def test_a_load_step_placed_by_what_is_not_a_name_is_refused(placed):
    config = step_app(lambda config: None)
    with pytest.raises(ConfigurationError, match=r"load step 'mine': (under|over) takes"):
        config.add_session_load_step("mine", lambda *args: None, **placed)


def test_steps_placed_by_each_others_names_after_the_namespaces_are_registered():
    def register(config):
        config.add_session_load_step("second", lambda *args: None, under="first")
        config.add_session_load_step("first", lambda *args: None)

    config = step_app(register)
    config.commit()
    assert get_manager_config(config.registry).get("prefs").steps == ("first", "second", "expiry")


@pytest.mark.parametrize("check", [False, True])
def test_a_raising_load_step_is_named_with_its_namespace(check):
    def failing(*args):
        raise LookupError("the step failed")

    def register(config):
        config.add_session_load_step("mine", failing, check=check)

    client, _, _ = build(
        lambda config: (config.register_session_factory("prefs", signed()), register(config))
    )
    with pytest.raises(LookupError) as raised:
        client.get("/read")
    assert raised.value.__notes__ == [
        "pyramid_session_multi: raised by the load step 'mine' of namespace 'prefs'"
    ]


@pytest.mark.parametrize("over", ["token", "lifetime"])
def test_a_load_step_cannot_run_over_the_steps_that_hide_the_addons_records(over):
    config = step_app(lambda config: None)
    with pytest.raises(ConfigurationError) as raised:
        config.add_session_load_step("mine", lambda *args: None, over=over)
    assert "cannot run over" in str(raised.value)


def test_a_check_placed_over_a_step_still_runs_after_it():
    seen = []

    def look(work, namespace_config, request, session, partner):
        seen.append(sorted(session.keys()))

    def register(config):
        config.register_session_factory("prefs", signed(), idle_timeout=60)
        config.add_session_load_step("look", look, check=True, over="lifetime")

    client, _, _ = build(register)
    client.get("/write")
    client.get("/read")
    assert seen[-1] == ["n"]


def test_an_application_step_never_sees_the_addons_records(redis_db):
    seen = []

    def look(work, namespace_config, request, session, state):
        seen.append((namespace_config.namespace, sorted(session.keys())))

    def register(config):
        config.register_session_factory(
            "account",
            RedisSessionFactory(
                "redis-secret", cookie_name="account", redis_url=redis_db, timeout=None
            ),
            idle_timeout=600,
        )
        config.register_session_factory("prefs", signed(), bound_to="account")
        # declared with no place, and placed as early as it may be
        config.add_session_load_step("look", look)
        config.add_session_load_step("early", look, over="fallbacks")

    client, _, _ = build(register)
    client.get("/write")
    seen.clear()
    client.get("/read")
    assert seen
    for namespace, keys in seen:
        assert keys in ([], ["n"]), (namespace, keys)


def test_a_step_hiding_a_record_in_a_namespace_not_enlisted_as_it_loaded_enlists_it():
    # a cookie namespace with no option of its own is not enlisted as it loads:
    # a step's record hidden in it is in its storage only while its library
    # sets the cookie, never where the application's own callbacks look
    ran = []

    class Record:
        def __init__(self, session):
            self.session = session

        def put_back(self, response):
            dict.__setitem__(self.session, "_record", "kept")
            ran.append("put back")

        def take_out(self, response):
            dict.pop(self.session, "_record")
            ran.append("taken out")

    def hiding(work, namespace_config, request, session, state):
        ran.append(("enlisted", state is not None))
        work.hide(namespace_config, session, Record(session))

    def register(config):
        config.add_session_load_step("hiding", hiding)
        config.register_session_factory("prefs", signed())

    client, seen, _ = build(register)
    client.get("/keys")
    assert ran == [("enlisted", False), "put back", "taken out"]
    assert seen["keys after its cookie"] == ["n"]
