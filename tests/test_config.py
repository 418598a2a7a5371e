"""Registration: the directive, dotted names, actions, conflicts, checks."""

import pyramid_beaker
import pytest
from pyramid import testing
from pyramid.config import Configurator
from pyramid.exceptions import ConfigurationConflictError, ConfigurationError
from pyramid.interfaces import ICSRFStoragePolicy, ISessionFactory
from pyramid_nacl_session import EncryptedCookieSessionFactory
from pyramid_session_redis import RedisSessionFactory

from pyramid_session_multi import (
    NamespaceCSRFStoragePolicy,
    SessionMultiManagerConfig,
    register_session_factory,
)
from pyramid_session_multi.config import INTROSPECTION_CATEGORY, get_manager_config
from tests.support import dotted
from tests.support.apps import build_app, set_cookie_names, signed_factory


@pytest.fixture
def autocommit():
    config = testing.setUp()
    config.include("pyramid_session_multi")
    yield config
    testing.tearDown()


@pytest.fixture
def config():
    config = Configurator()
    config.include("pyramid_session_multi")
    return config


def custom_factory(request):
    raise AssertionError("never called at configuration time")


BAD_REGISTRATIONS = {
    "empty namespace": (
        lambda c: register_session_factory(c, "", signed_factory("x")),
        "non-empty string",
    ),
    "null namespace": (
        lambda c: register_session_factory(c, None, signed_factory("x")),
        "non-empty string",
    ),
    "null factory": (lambda c: register_session_factory(c, "a", None), "needs a session factory"),
    "namespace twice": (
        lambda c: [
            register_session_factory(c, "a", signed_factory("x")),
            register_session_factory(c, "a", signed_factory("y")),
        ],
        "already registered",
    ),
    "factory object twice": (
        lambda c: [
            register_session_factory(c, "a", f := signed_factory("x")),
            register_session_factory(c, "b", f),
        ],
        "same session factory object",
    ),
    "cookie twice": (
        lambda c: [
            register_session_factory(c, "a", signed_factory("x")),
            register_session_factory(c, "b", signed_factory("x")),
        ],
        "uses cookie 'x'",
    ),
    "explicit cookie twice": (
        lambda c: [
            register_session_factory(c, "a", custom_factory, cookie_name="k"),
            register_session_factory(c, "b", signed_factory("k"), cookie_name="k"),
        ],
        "another cookie_name",
    ),
    "no cookie name": (
        lambda c: register_session_factory(c, "a", custom_factory),
        "pass cookie_name=",
    ),
    "factory not callable": (
        lambda c: register_session_factory(c, "a", 42, cookie_name="k"),
        r"namespace 'a': the session factory must be callable",
    ),
    "discriminator not callable": (
        lambda c: register_session_factory(c, "a", signed_factory("x"), discriminator=True),
        r"namespace 'a': the discriminator must be callable",
    ),
    "validator not callable": (
        lambda c: register_session_factory(c, "a", signed_factory("x"), validator=[1]),
        r"namespace 'a': the validator must be callable",
    ),
    "factory dotted name that does not resolve": (
        lambda c: register_session_factory(c, "a", "tests.support.nosuch.factory"),
        r"namespace 'a': the session factory 'tests.support.nosuch.factory' cannot be imported",
    ),
    "discriminator dotted name that does not resolve": (
        lambda c: register_session_factory(
            c, "a", signed_factory("x"), discriminator="tests.support.dotted.nosuch"
        ),
        r"namespace 'a': the discriminator 'tests.support.dotted.nosuch' cannot be imported",
    ),
    "validator dotted name that does not resolve": (
        lambda c: register_session_factory(c, "a", signed_factory("x"), validator="nosuchpkg:v"),
        r"namespace 'a': the validator 'nosuchpkg:v' cannot be imported",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_REGISTRATIONS))
def test_bad_registration_raises_at_call_time_under_autocommit(autocommit, case):
    register, message = BAD_REGISTRATIONS[case]
    with pytest.raises(ConfigurationError, match=message):
        register(autocommit)


@pytest.mark.parametrize("case", sorted(set(BAD_REGISTRATIONS) - {"namespace twice"}))
def test_bad_registration_raises_by_commit(config, case):
    register, message = BAD_REGISTRATIONS[case]
    with pytest.raises(ConfigurationError, match=message):
        register(config)
        config.commit()


def test_namespace_twice_is_a_conflict_naming_both_call_sites(config):
    config.register_session_factory("a", signed_factory("x"))  # first-site
    config.register_session_factory("a", signed_factory("y"))  # second-site
    with pytest.raises(ConfigurationConflictError) as info:
        config.commit()
    message = str(info.value)
    assert "first-site" in message and "second-site" in message


def test_registering_without_include_says_to_include():
    config = Configurator()
    with pytest.raises(ConfigurationError, match=r'include\("pyramid_session_multi"\)') as info:
        register_session_factory(config, "a", signed_factory("x"))
    # what 0.4 raised, and what its users catch
    assert isinstance(info.value, AttributeError)


def test_csrf_policy_on_an_unregistered_namespace_is_refused_at_commit(config):
    config.register_session_factory("a", signed_factory("x"))
    config.set_csrf_storage_policy(NamespaceCSRFStoragePolicy("nosuch"))
    with pytest.raises(ConfigurationError, match=r"namespace 'nosuch', which is not registered"):
        config.commit()


def test_csrf_policy_on_a_registered_namespace_is_accepted(config):
    policy = NamespaceCSRFStoragePolicy("a")
    config.set_csrf_storage_policy(policy)
    config.register_session_factory("a", signed_factory("x"))
    config.commit()
    assert config.registry.queryUtility(ICSRFStoragePolicy) is policy


def test_utility_keeps_the_04_registration_method():
    registry_config = Configurator()
    utility = SessionMultiManagerConfig(registry_config)
    assert utility.register_session_factory("a", signed_factory("x")) is True
    assert utility.namespaces == ["a"]
    assert utility.get_namespace_cookiename("a") == "x"
    with pytest.raises(ConfigurationError, match="already registered"):
        utility.register_session_factory("a", signed_factory("y"))
    with pytest.raises(ConfigurationError, match="uses cookie 'x'"):
        utility.register_session_factory("b", signed_factory("x"))
    with pytest.raises(ConfigurationError, match="pass the object itself"):
        utility.register_session_factory("c", "tests.support.dotted.prefs_factory")


def test_directive_and_function_do_the_same(config):
    register_session_factory(config, "fn", signed_factory("fn_cookie"))
    config.register_session_factory("directive", signed_factory("d_cookie"))
    config.commit()
    from pyramid_session_multi import ISessionMultiManagerConfig

    utility = config.registry.getUtility(ISessionMultiManagerConfig)
    assert utility.namespaces_to_cookienames == {"fn": "fn_cookie", "directive": "d_cookie"}


def test_dotted_names_are_resolved():
    def setup(config):
        config.register_session_factory(
            "prefs",
            "tests.support.dotted.prefs_factory",
            discriminator="tests.support.dotted.only_https",
            validator="tests.support.dotted.always_valid",
        )

    app = build_app(setup)
    utility = app.app.registry.getUtility(
        __import__("pyramid_session_multi").ISessionMultiManagerConfig
    )
    assert utility.get_namespace_config("prefs") is dotted.prefs_factory
    assert utility.get_namespace_discriminator("prefs") is dotted.only_https
    assert utility.get_namespace_validator("prefs") is dotted.always_valid
    assert app.get("/s/prefs").json["session"] is None
    response = app.post("/s/prefs", {"value": "v"}, extra_environ={"wsgi.url_scheme": "https"})
    assert set_cookie_names(response) == ["dotted_prefs"]


def test_including_configuration_overrides_included_addon():
    def setup(config):
        config.include(dotted.addon_includeme)
        config.register_session_factory("shared", signed_factory("app_shared"))

    app = build_app(setup)
    utility = app.app.registry.getUtility(
        __import__("pyramid_session_multi").ISessionMultiManagerConfig
    )
    assert utility.namespaces_to_cookienames == {"shared": "app_shared"}
    response = app.post("/s/shared", {"value": "v"})
    assert set_cookie_names(response) == ["app_shared"]
    intrs = app.app.registry.introspector.get_category(INTROSPECTION_CATEGORY)
    assert [i["introspectable"]["cookie_name"] for i in intrs] == ["app_shared"]


def test_cookie_uniqueness_is_checked_on_the_final_set():
    # The add-on's 'shared' would clash with nothing; its cookie
    # 'addon_shared' is freed by the override, so reusing it is fine.
    def setup(config):
        config.include(dotted.addon_includeme)
        config.register_session_factory("shared", signed_factory("app_shared"))
        config.register_session_factory("reuse", signed_factory("addon_shared"))

    app = build_app(setup)
    assert set_cookie_names(app.post("/s/reuse", {"value": "v"})) == ["addon_shared"]


def test_cookie_clash_across_includes_fails_at_commit(config):
    config.register_session_factory("a", signed_factory("cookie_a"))
    config.include(dotted.addon_same_cookie)
    with pytest.raises(ConfigurationError, match="cookie_a"):
        config.commit()


@pytest.mark.parametrize("order", ["before", "after"])
def test_cookie_shared_with_request_session_factory_is_refused(config, order):
    if order == "before":
        config.set_session_factory(signed_factory("session"))
    config.register_session_factory("ns", signed_factory("session"))
    if order == "after":
        config.set_session_factory(signed_factory("session"))
    with pytest.raises(ConfigurationError, match="set_session_factory"):
        config.commit()


def test_request_session_with_another_cookie_is_fine(config):
    request_session = signed_factory("session")
    config.set_session_factory(request_session)
    config.register_session_factory("ns", signed_factory("ns_cookie"))
    config.commit()
    assert config.registry.queryUtility(ISessionFactory) is request_session
    assert get_manager_config(config.registry).namespaces_to_cookienames == {"ns": "ns_cookie"}


def test_same_factory_as_request_session_is_refused(autocommit):
    factory = signed_factory("one")
    autocommit.set_session_factory(factory)
    with pytest.raises(ConfigurationError, match="set_session_factory"):
        autocommit.register_session_factory("ns", factory)


def test_one_introspectable_per_namespace(config):
    discriminator = dotted.only_https
    factory = signed_factory("c1")
    config.register_session_factory("one", factory, discriminator=discriminator)
    config.register_session_factory("two", signed_factory("c2"))
    config.commit()
    intrs = config.registry.introspector.get_category(INTROSPECTION_CATEGORY)
    by_ns = {i["introspectable"]["namespace"]: i["introspectable"] for i in intrs}
    assert sorted(by_ns) == ["one", "two"]
    one = by_ns["one"]
    assert one["factory"] is factory
    assert one["discriminator"] is discriminator
    assert one["cookie_name"] == "c1"
    assert one["validator"] is None
    assert one.category_name == INTROSPECTION_CATEGORY


def test_include_twice_keeps_registrations(config):
    config.register_session_factory("a", signed_factory("cookie_a"))
    config.include("pyramid_session_multi")
    config.commit()
    from pyramid_session_multi import ISessionMultiManagerConfig

    assert config.registry.getUtility(ISessionMultiManagerConfig).namespaces == ["a"]


@pytest.mark.parametrize(
    "name", ["secure", "Path", "max-age", "has space", "semi;colon", "$dollar", ""]
)
def test_cookie_names_webob_cannot_set_are_refused(autocommit, name):
    with pytest.raises(ConfigurationError, match=r"cannot use cookie|pass cookie_name"):
        autocommit.register_session_factory("ns", custom_factory, cookie_name=name or None)


def test_ordinary_cookie_names_are_accepted(autocommit):
    autocommit.register_session_factory("ns", custom_factory, cookie_name="my.app-session_1")
    manager_config = get_manager_config(autocommit.registry)
    assert manager_config.get_namespace_cookiename("ns") == "my.app-session_1"


BROWSER_REFUSALS = {
    "SameSite=None without Secure": (
        lambda: signed_factory("x", samesite="None"),
        "x",
        "SameSite=None without Secure",
    ),
    "__Host- without Secure": (
        lambda: signed_factory("__Host-x"),
        "__Host-x",
        "__Host- cookie without Secure",
    ),
    "__Host- with a Domain": (
        lambda: signed_factory("__Host-x", secure=True, domain="example.com"),
        "__Host-x",
        "__Host- cookie with a Domain",
    ),
    "__Host- with another Path": (
        lambda: signed_factory("__Host-x", secure=True, path="/app"),
        "__Host-x",
        "__Host- cookie whose Path is not /",
    ),
    "__Secure- without Secure": (
        lambda: signed_factory("__Secure-x"),
        "__Secure-x",
        "__Secure- cookie without Secure",
    ),
    "redis: SameSite=None without Secure": (
        lambda: RedisSessionFactory(
            secret="s", cookie_name="r", redis_url="redis://127.0.0.1:1/0", cookie_samesite="None"
        ),
        "r",
        "SameSite=None without Secure",
    ),
    "beaker: __Host- with a Domain": (
        lambda: pyramid_beaker.BeakerSessionFactoryConfig(
            type="file",
            data_dir="/nonexistent",
            key="__Host-b",
            secure=True,
            cookie_domain="example.com",
        ),
        "__Host-b",
        "__Host- cookie with a Domain",
    ),
    "nacl: __Secure- without Secure": (
        lambda: EncryptedCookieSessionFactory(bytes(32), cookie_name="__Secure-n"),
        "__Secure-n",
        "__Secure- cookie without Secure",
    ),
}


@pytest.mark.parametrize("case", sorted(BROWSER_REFUSALS))
def test_cookies_a_browser_would_refuse_are_refused(autocommit, case):
    make, cookie, rule = BROWSER_REFUSALS[case]
    with pytest.raises(ConfigurationError, match=rf"namespace 'ns', cookie '{cookie}': .*{rule}"):
        autocommit.register_session_factory("ns", make())


def test_cookies_browsers_keep_are_accepted(autocommit):
    autocommit.register_session_factory("a", signed_factory("__Host-a", secure=True))
    autocommit.register_session_factory("b", signed_factory("__Secure-b", secure=True))
    autocommit.register_session_factory("c", signed_factory("c", secure=True, samesite="None"))

    assert get_manager_config(autocommit.registry).namespaces_to_cookienames == {
        "a": "__Host-a",
        "b": "__Secure-b",
        "c": "c",
    }


def test_a_thousand_namespaces_commit_with_work_linear_in_their_number(monkeypatch):
    import pyramid_session_multi.config as config_module
    import pyramid_session_multi.namespace as namespace_module

    fitted = []
    fit_loader = namespace_module.fit_loader
    monkeypatch.setattr(
        namespace_module, "fit_loader", lambda c: (fitted.append(c.namespace), fit_loader(c))[1]
    )
    config = Configurator()
    config.include("pyramid_session_multi")
    for index in range(1000):
        config.register_session_factory(f"ns{index}", signed_factory(f"c{index}"))
    with hang_guard(seconds=60):
        config.commit()
    manager_config = config.registry.getUtility(config_module.ISessionMultiManagerConfig)
    assert len(manager_config.namespaces) == 1000
    # each namespace fitted when added and by the budget, and all once more when
    # the header could first pass its budget: a quadratic start-up fits ~500,000
    assert len(fitted) <= 3 * 1000
    assert all(c.loader is not c.factory for c in manager_config.configs.values())


class hang_guard:
    """Fail, rather than hang the suite, when the block runs past ``seconds``."""

    def __init__(self, seconds):
        self.seconds = seconds

    def __enter__(self):
        import signal

        def expired(signum, frame):
            raise AssertionError(f"still running after {self.seconds} s")

        self.previous = signal.signal(signal.SIGALRM, expired)
        signal.alarm(self.seconds)

    def __exit__(self, *exc):
        import signal

        signal.alarm(0)
        signal.signal(signal.SIGALRM, self.previous)


@pytest.mark.parametrize("attribute", ["path", "domain"])
@pytest.mark.parametrize("given", ["/; Domain=evil.example", "/a,b", "/a b", "/a\r\nX: y", "/é"])
def test_a_factory_cookie_path_or_domain_that_would_add_attributes_is_refused(
    autocommit, attribute, given
):
    factory = signed_factory("a", **{attribute: given})
    with pytest.raises(ConfigurationError, match=rf"namespace 'a'.*cookie {attribute} .*refused"):
        autocommit.register_session_factory("a", factory)


def test_partitioned_needs_a_secure_cookie(autocommit):
    with pytest.raises(ConfigurationError, match="Partitioned cookie without Secure"):
        autocommit.register_session_factory("a", signed_factory("a"), partitioned=True)
    autocommit.register_session_factory("b", signed_factory("b", secure=True), partitioned=True)


def test_partitioned_is_true_or_false(autocommit):
    with pytest.raises(ConfigurationError, match="partitioned is True or False, not 'yes'"):
        autocommit.register_session_factory(
            "a", signed_factory("a", secure=True), partitioned="yes"
        )


def test_a_fallback_cookie_path_that_would_add_attributes_is_refused(autocommit):
    old = signed_factory("old", path="/\r\nSet-Cookie: x=1")
    with pytest.raises(ConfigurationError, match=r"namespace 'a', fallback 1 .*cookie path"):
        autocommit.register_session_factory("a", signed_factory("a"), fallbacks=[old])


SECRET_SETTING = "postgresql://app:hunter2@db/app"


@pytest.mark.parametrize("dotted_name", ["os:environ", "tests.test_config:SECRET_SETTING"])
def test_a_dotted_name_to_something_not_callable_is_refused_naming_its_type_not_its_value(
    autocommit, monkeypatch, dotted_name
):
    monkeypatch.setenv("PSM_TEST_PASSWORD", "hunter2")
    with pytest.raises(ConfigurationError) as info:
        autocommit.register_session_factory("a", signed_factory("x"), on_conflict=dotted_name)
    message = str(info.value)
    assert "hunter2" not in message
    assert "namespace 'a': the on_conflict must be callable" in message
    assert repr(dotted_name) in message
    assert type(Configurator().maybe_dotted(dotted_name)).__name__ in message


@pytest.mark.parametrize("empty", ["", "  "])
def test_an_empty_on_conflict_is_refused_naming_the_argument(autocommit, empty):
    with pytest.raises(ConfigurationError, match="namespace 'a': the on_conflict is empty"):
        autocommit.register_session_factory("a", signed_factory("x"), on_conflict=empty)
