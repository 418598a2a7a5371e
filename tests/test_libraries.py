"""The session library adapters, and teaching the add-on a library it does not know."""

import weakref
from typing import ClassVar

import pyramid_beaker
import pytest
from pyramid.exceptions import ConfigurationError
from pyramid.session import SignedCookieSessionFactory
from pyramid_nacl_session import EncryptedCookieSessionFactory
from pyramid_session_redis import RedisSessionFactory

from pyramid_session_multi.libraries import (
    GENERIC,
    BeakerLibrary,
    PyramidCookieLibrary,
    RedisLibrary,
    SessionLibrary,
    library_for,
)
from pyramid_session_multi.libraries.base import SAVE_KEY
from tests.support.apps import build_app, set_cookie_names, signed_factory
from tests.support.backend_app import (
    NACL_SECRET,
    add_steps_view,
    beaker_file,
    orphans_after_steps,
)
from tests.support.toolbar import panel_html, toolbar_app

BEAKER_VALIDATE_KEY = "a-validate-key-of-at-least-32-bytes!"


def test_each_real_factory_gets_its_library(tmp_path):
    assert isinstance(library_for(signed_factory("s")), PyramidCookieLibrary)
    assert isinstance(
        library_for(EncryptedCookieSessionFactory(NACL_SECRET, cookie_name="n")),
        PyramidCookieLibrary,
    )
    redis = RedisSessionFactory(secret="s", cookie_name="r", redis_url="redis://127.0.0.1:1/0")
    assert isinstance(library_for(redis), RedisLibrary)
    assert isinstance(library_for(beaker_file(tmp_path, "b")), BeakerLibrary)
    assert library_for(lambda request: {}) is GENERIC


class NotebookSession(dict):
    """A session library the add-on has never heard of: the data in a
    server-side dict, the id in a plain cookie named by the factory."""

    store: ClassVar[dict] = {}

    def __init__(self, request, factory):
        self.factory = factory
        self.id = request.cookies.get(factory.notebook_cookie) or f"id-{len(self.store) + 1}"
        super().__init__(self.store.get(self.id, {}))
        self.new = self.id not in self.store
        request.add_response_callback(self._save)

    def _save(self, request, response):
        if dict(self):
            self.store[self.id] = dict(self)
            response.set_cookie(self.factory.notebook_cookie, self.id)

    def changed(self):
        pass

    def invalidate(self):
        self.store.pop(self.id, None)
        self.clear()


class NotebookFactory:
    def __init__(self, notebook_cookie):
        self.notebook_cookie = notebook_cookie

    def __call__(self, request):
        return NotebookSession(request, self)


class NotebookLibrary(SessionLibrary):
    name = "notebook"

    def claims(self, factory):
        return isinstance(factory, NotebookFactory)

    def cookie(self, factory):
        return {"name": factory.notebook_cookie, "httponly": True}

    def read(self, session):
        return {key: value for key, value in dict.items(session) if key != "hidden"}

    def session_id(self, session):
        return session.id

    def rotate(self, session):
        data = dict(session)
        session.invalidate()
        session.id = f"rotated-{session.id}"
        session.update(data)


@pytest.fixture
def notebook():
    NotebookSession.store = {}
    return NotebookSession.store


def notebook_app(**kwargs):
    def setup(config):
        config.add_session_library(NotebookLibrary)
        config.register_session_factory("notes", NotebookFactory("notebook_id"))

    return build_app(setup, **kwargs)


def test_an_added_library_finds_the_cookie_and_rotates(notebook):
    app = notebook_app()
    app.post("/s/notes", {"value": "v"})
    assert app.cookies["notebook_id"] == "id-1"
    response = app.get("/rotate")
    assert set_cookie_names(response) == ["notebook_id"]
    assert app.cookies["notebook_id"] == "rotated-id-1"
    assert list(notebook) == ["rotated-id-1"]
    assert app.get("/s/notes").json["value"] == "v"


def test_an_added_library_reads_for_the_panel(notebook):
    def setup(config):
        config.add_session_library(NotebookLibrary())
        config.register_session_factory("notes", NotebookFactory("notebook_id"))

    app = toolbar_app(setup, "active")
    app.post("/s/notes", {"value": "on the page"})
    html = panel_html(app)
    assert "on the page" in html and "notebook" in html


def test_the_library_is_a_dotted_name_too(notebook):
    def setup(config):
        config.add_session_library("tests.test_libraries.NotebookLibrary")
        config.register_session_factory("notes", NotebookFactory("notebook_id"))

    build_app(setup).post("/s/notes", {"value": "v"})
    assert list(notebook) == ["id-1"]


class PreparingNotebookLibrary(NotebookLibrary):
    """Sets each session up with its namespace: as the session is made where
    ``makes_prepared``, else in ``prepare()``."""

    has_prepare = True
    makes_prepared = True
    prepare_calls: ClassVar[list] = []

    def prepare(self, namespace, session):
        self.prepare_calls.append(namespace)
        session.namespace = namespace

    def prepared_loader(self, loader, namespace):
        if not self.makes_prepared:
            return None

        def prepared(request):
            session = loader(request)
            session.namespace = namespace
            return session

        return prepared


@pytest.mark.parametrize("makes_prepared", [True, False])
def test_a_library_that_makes_its_sessions_prepared_is_not_asked_to_prepare_them(
    notebook, makes_prepared
):
    library = PreparingNotebookLibrary()
    library.makes_prepared = makes_prepared
    library.prepare_calls = []

    def setup(config):
        config.add_session_library(library)
        config.register_session_factory("notes", NotebookFactory("notebook_id"))
        config.add_route("prepared_for", "/prepared-for")
        config.add_view(
            lambda request: {"namespace": request.session_multi["notes"].namespace},
            route_name="prepared_for",
            renderer="json",
        )

    app = build_app(setup)
    for _ in range(2):
        assert app.get("/prepared-for").json == {"namespace": "notes"}
    assert library.prepare_calls == ([] if makes_prepared else ["notes", "notes"])


def test_a_logout_whose_load_fails_destroys_a_session_prepared_by_its_library(notebook, caplog):
    library = PreparingNotebookLibrary()
    library.makes_prepared = False
    library.prepare_calls = []
    user_table_gone = []

    def validator(request, session):
        if user_table_gone:
            raise LookupError("the user table is gone")
        return True

    def setup(config):
        config.add_session_library(library)
        config.register_session_factory(
            "notes", NotebookFactory("notebook_id"), validator=validator
        )

    app = build_app(setup)
    app.post("/s/notes", {"value": "v"})
    assert list(notebook) == ["id-1"]
    library.prepare_calls.clear()
    user_table_gone.append(True)

    app.get("/invalidate")

    # read again without its checks, the session destroyed is prepared as well
    assert library.prepare_calls == ["notes", "notes"] and notebook == {}
    assert "logged out without it" in caplog.text


def test_without_the_library_the_factory_needs_a_cookie_name():
    with pytest.raises(ConfigurationError, match="pass cookie_name"):
        build_app(lambda config: config.register_session_factory("notes", NotebookFactory("x")))


def test_a_library_added_after_its_namespace_is_refused_at_commit():
    def setup(config):
        config.register_session_factory(
            "notes", NotebookFactory("notebook_id"), cookie_name="notebook_id"
        )
        config.add_session_library(NotebookLibrary)

    with pytest.raises(ConfigurationError, match="before registering its namespaces"):
        build_app(setup)


def test_an_object_that_is_not_a_library_is_refused():
    class Half:
        def claims(self, factory):
            return False

    with pytest.raises(ConfigurationError, match="lacks cookie, facts, prepare"):
        build_app(lambda config: config.add_session_library(Half()))


def test_added_libraries_are_introspectable():
    from pyramid.config import Configurator

    config = Configurator()
    config.include("pyramid_session_multi")
    config.add_session_library(NotebookLibrary)
    config.commit()
    entries = config.registry.introspector.get_category("session_multi libraries")
    assert [entry["introspectable"].title for entry in entries] == ["notebook"]


class PlainSession(dict):
    """An ISession the add-on knows nothing of, whose invalidate starts afresh."""

    def __init__(self, request):
        super().__init__()
        self.invalidated = 0

    def invalidate(self):
        self.invalidated += 1
        self.clear()

    def changed(self):
        self.changed_called = True


def test_the_generic_fallback_rotates_by_copy_invalidate_write_back():
    session = PlainSession(None)
    session["user"] = "alice"
    GENERIC.rotate(session)
    assert (dict(session), session.invalidated) == ({"user": "alice"}, 1)
    assert GENERIC.read(session) == {"user": "alice"}
    assert GENERIC.session_id(session) is None
    assert GENERIC.read(object()) is None


def test_signed_cookie_rotation_changes_the_value_without_a_write():
    factory = SignedCookieSessionFactory("secret", cookie_name="signed")

    def setup(config):
        config.register_session_factory("signed", factory)

    app = build_app(setup)
    app.post("/s/signed", {"value": "v"})
    before = app.cookies["signed"]
    app.get("/rotate")  # at once, in the same second
    assert app.cookies["signed"] != before
    assert app.get("/s/signed").json["value"] == "v"


def own_invalidate_view(request):
    request.session_multi[request.matchdict["ns"]].invalidate()
    return {}


def beaker_cookie_app(**options):
    """pyramid_beaker with ``type = cookie``: the data signed into the cookie."""
    options = {"validate_key": BEAKER_VALIDATE_KEY, "timeout": 600, **options}

    def setup(config):
        factory = pyramid_beaker.BeakerSessionFactoryConfig(type="cookie", key="crumbs", **options)
        config.register_session_factory("crumbs", factory)
        config.add_route("own", "/own-invalidate/{ns}")
        config.add_view(own_invalidate_view, route_name="own", renderer="json")
        add_steps_view(config)

    return build_app(setup)


@pytest.mark.parametrize("rotations", ["crumbs", "crumbs,crumbs"])
def test_beaker_cookie_sessions_rotate_keeping_the_data(rotations):
    app = beaker_cookie_app()
    app.post("/s/crumbs", {"value": "before login"})
    before = app.cookies["crumbs"]
    response = app.get("/rotate", {"ns": rotations, "after": "logged in"})
    assert response.json == {"failed": []}
    assert set_cookie_names(response) == ["crumbs"]
    assert app.cookies["crumbs"] != before
    read = app.get("/s/crumbs").json
    assert (read["value"], read["after"]) == ("before login", "logged in")


@pytest.mark.parametrize("how", ["/invalidate", "/own-invalidate/crumbs"])
def test_a_beaker_cookie_session_logout_ends_the_data(how):
    app = beaker_cookie_app()
    app.post("/s/crumbs", {"value": "logged in"})
    app.get(how)
    assert app.get("/s/crumbs").json["value"] is None


def test_any_sequence_in_one_request_leaves_a_beaker_cookie_session_as_expected():
    assert orphans_after_steps(beaker_cookie_app().app, "crumbs", None) == []


@pytest.mark.filterwarnings("ignore:Invalidating corrupt session")
def test_a_garbage_beaker_cookie_is_a_new_session_and_rotates():
    app = beaker_cookie_app(invalidate_corrupt=True)
    app.set_cookie("crumbs", "0" * 40 + "not-signed-by-us")
    assert app.get("/s/crumbs").json["value"] is None
    assert app.get("/rotate", {"ns": "crumbs", "after": "x"}).json == {"failed": []}
    assert app.get("/s/crumbs").json["after"] == "x"


def test_a_library_lacking_a_member_the_add_on_calls_is_refused_naming_it():
    class NoExpiry(NotebookLibrary):
        expire_within = None

    class Partial:
        def __init__(self):
            self.base = NotebookLibrary()

        def __getattr__(self, name):
            if name in ("claim", "records_in_data"):
                raise AttributeError(name)
            return getattr(self.base, name)

    with pytest.raises(ConfigurationError, match=r"lacks expire_within \(not callable\)"):
        build_app(lambda config: config.add_session_library(NoExpiry()))
    with pytest.raises(ConfigurationError, match="lacks claim, records_in_data"):
        build_app(lambda config: config.add_session_library(Partial()))


def test_a_library_whose_methods_take_the_wrong_arguments_is_refused():
    class WrongSignature(NotebookLibrary):
        def rotate(self):
            return None

    with pytest.raises(ConfigurationError, match="rotate"):
        build_app(lambda config: config.add_session_library(WrongSignature()))


def test_two_libraries_of_one_name_conflict_naming_both_call_sites():
    from pyramid.config import Configurator
    from pyramid.exceptions import ConfigurationConflictError

    config = Configurator()
    config.include("pyramid_session_multi")
    config.add_session_library(NotebookLibrary)  # first-library-site
    config.add_session_library(NotebookLibrary)  # second-library-site
    with pytest.raises(ConfigurationConflictError) as info:
        config.commit()
    message = str(info.value)
    assert "first-library-site" in message and "second-library-site" in message


def test_a_library_is_added_by_its_action_at_commit():
    from pyramid.config import Configurator

    from pyramid_session_multi.config import get_manager_config

    config = Configurator()
    config.include("pyramid_session_multi")
    config.add_session_library(NotebookLibrary)
    libraries = get_manager_config(config.registry).libraries
    assert libraries == []
    config.commit()
    assert [library.name for library in libraries] == ["notebook"]


@pytest.mark.parametrize("how", ["written", "read", "logged out"])
def test_a_prepared_beaker_session_is_freed_without_the_cycle_collector(tmp_path, how):
    import gc
    import weakref

    import webtest
    from pyramid.config import Configurator
    from pyramid.response import Response

    from tests.support.backend_app import beaker_file

    config = Configurator()
    config.include("pyramid_session_multi")
    config.register_session_factory("files", beaker_file(tmp_path, "files"))
    sessions = []

    def view(request):
        session = request.session_multi["files"]
        sessions.append(weakref.ref(session))
        if how == "written":
            session["n"] = 1
        elif how == "read":
            session.get("n")
        else:
            session.invalidate()
        return Response("ok")

    config.add_route("view", "/")
    config.add_view(view, route_name="view")
    app = webtest.TestApp(config.make_wsgi_app())
    app.get("/")  # a first session, and its cookie
    gc.collect()
    gc.disable()
    try:
        app.get("/")
        # its invalidate(), its persist() and its loading wrapped by the add-on:
        # none of them keeps it in a cycle only the collector breaks
        assert sessions[-1]() is None
    finally:
        gc.enable()


def test_what_the_add_on_adds_to_a_beaker_session_is_made_once_per_namespace(tmp_path):
    import webtest
    from pyramid.config import Configurator
    from pyramid.response import Response

    factory = beaker_file(tmp_path, "files")
    config = Configurator()
    config.include("pyramid_session_multi")
    config.register_session_factory("files", factory, concurrent_writes="overwrite")
    seen = []

    def view(request):
        session = request.session_multi["files"]
        session["n"] = session.get("n", 0) + 1
        seen.append((type(session), set(vars(session))))
        # the one reference to the add-on's save is weak: nothing for the collector
        assert type(vars(session)[SAVE_KEY]) is weakref.ref
        return Response("ok")

    config.add_route("view", "/")
    config.add_view(view, route_name="view")
    app = webtest.TestApp(config.make_wsgi_app())
    for _ in range(3):
        app.get("/")
    (new, new_attributes), (stored, attributes), (again, _) = seen
    # the session a store holds is one of a class made at its first request,
    # which looks like the factory; the new one, of a subclass of that class
    assert again is stored and issubclass(new, stored) and issubclass(stored, factory)
    assert (stored.__module__, stored.__qualname__) == (factory.__module__, factory.__qualname__)
    # and nothing of the add-on is made per request among its own attributes
    for own in (new_attributes, attributes):
        assert own <= {"_params", "_environ", "_sess", "_headers", "_dirty", SAVE_KEY}


def test_a_beaker_session_tells_whether_it_was_made_new(tmp_path):
    # what the lifetime step asks instead of parsing the Cookie header again
    import shutil

    import webtest
    from pyramid.config import Configurator
    from pyramid.response import Response

    from tests.support.backend_app import beaker_file

    config = Configurator()
    config.include("pyramid_session_multi")
    config.register_session_factory("files", beaker_file(tmp_path, "files"))
    seen = []

    def view(request):
        session = request.session_multi["files"]
        library = BeakerLibrary()
        seen.append(library.is_new(session))
        session["n"] = 1
        return Response("ok")

    config.add_route("view", "/")
    config.add_view(view, route_name="view")
    app = webtest.TestApp(config.make_wsgi_app())
    app.get("/")  # no cookie: new
    app.get("/")  # its cookie names the stored session
    shutil.rmtree(tmp_path / "files")
    app.get("/")  # its cookie names a session the store no longer holds
    assert seen == [True, False, True]
    assert SessionLibrary().is_new(object()) is None


@pytest.mark.parametrize("kind", ["file", "cookie"])
def test_a_beaker_session_keeps_its_raw_storage_through_logout_and_rotation(tmp_path, kind):
    # what raw_storage_stays promises: the lifetime step keeps the dict it
    # found at load and puts its record back into that one at the save
    import webtest
    from pyramid.config import Configurator
    from pyramid.response import Response

    from tests.support.backend_app import beaker_file

    config = Configurator()
    config.include("pyramid_session_multi")
    if kind == "cookie":
        factory = pyramid_beaker.BeakerSessionFactoryConfig(
            type="cookie", key="files", validate_key=BEAKER_VALIDATE_KEY
        )
    else:
        factory = beaker_file(tmp_path, "files")
    config.register_session_factory("files", factory, idle_timeout=600)
    library = BeakerLibrary()
    held = []

    def view(request):
        session = request.session_multi["files"]
        storage = library.raw_storage(session)
        session["n"] = 1
        request.session_multi.rotate("files")
        same_after_rotation = library.raw_storage(session) is storage
        session.invalidate()
        session["m"] = 2
        held.append((same_after_rotation, library.raw_storage(session) is storage))
        return Response("ok")

    config.add_route("view", "/")
    config.add_view(view, route_name="view")
    app = webtest.TestApp(config.make_wsgi_app())
    app.get("/")
    app.get("/")
    assert library.raw_storage_stays is True
    assert RedisLibrary.raw_storage_stays is False  # invalidate() makes it a new state
    assert held == [(True, True), (True, True)]


def test_a_redis_session_tells_whether_it_was_made_new(redis_db):
    # what the lifetime step asks instead of the request's cookies
    import webtest
    from pyramid.config import Configurator
    from pyramid.response import Response

    config = Configurator()
    config.include("pyramid_session_multi")
    config.register_session_factory(
        "cart", RedisSessionFactory(secret="s" * 32, cookie_name="cart", redis_url=redis_db)
    )
    seen = []

    def view(request):
        session = request.session_multi["cart"]
        seen.append(RedisLibrary().is_new(session))
        session["n"] = 1
        return Response("ok")

    config.add_route("view", "/")
    config.add_view(view, route_name="view")
    app = webtest.TestApp(config.make_wsgi_app())
    app.get("/")  # no cookie: new
    app.get("/")  # its cookie names the stored session
    app.set_cookie("cart", "a-cookie-naming-nothing")
    app.get("/")
    assert seen == [True, False, True]
