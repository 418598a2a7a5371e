"""The cookie budget: per-cookie limit with raise or drop, and the Cookie header budget."""

import json
import logging

import pytest
from pyramid.config import Configurator
from pyramid.exceptions import ConfigurationError
from pyramid_nacl_session import EncryptedCookieSessionFactory

from pyramid_session_multi.budget import CookieTooLarge
from tests.support.apps import build_app, set_cookie_names, signed_factory
from tests.support.toolbar import panel_html, text_of, toolbar_app


def fill_view(request):
    """POST ``ns`` and ``size``: write that many bytes into that namespace."""
    for namespace in request.POST.getall("ns"):
        request.session_multi[namespace]["blob"] = "x" * int(request.POST["size"])
    return {}


def setup_with(*namespaces, nacl=False):
    def setup(config):
        for namespace in namespaces:
            config.register_session_factory(namespace, signed_factory(namespace))
        if nacl:
            config.register_session_factory(
                "nacl", EncryptedCookieSessionFactory(bytes(range(32)), cookie_name="nacl")
            )
        config.add_route("fill", "/fill")
        config.add_view(fill_view, route_name="fill", renderer="json")

    return setup


def test_raise_is_the_default_and_names_namespace_size_and_limit():
    app = build_app(setup_with("a"), settings={"session_multi.cookie_limit": "1000"})
    app.post("/fill", {"ns": "a", "size": "100"})
    with pytest.raises(CookieTooLarge) as info:
        app.post("/fill", {"ns": "a", "size": "2000"})
    error = info.value
    assert (error.namespace, error.limit) == ("a", 1000) and error.size > 2000
    assert "namespace 'a'" in str(error) and "1000-byte limit" in str(error)


@pytest.mark.parametrize("size", ["2000", "6000"])  # over our limit; over WebOb's as well
def test_drop_keeps_the_previous_cookie_and_sends_the_others(size, caplog):
    settings = {"session_multi.cookie_limit": "1000", "session_multi.oversize": "drop"}
    app = build_app(setup_with("a", "b", nacl=True), settings=settings)
    app.post("/fill", {"ns": ["a", "b", "nacl"], "size": "10"})
    before = dict(app.cookies)
    caplog.set_level(logging.ERROR, logger="pyramid_session_multi")
    response = app.post("/fill", {"ns": ["b", "a", "nacl"], "size": size})
    assert set_cookie_names(response) == []  # all three over: all dropped
    response = app.post("/fill", {"ns": ["a"], "size": size})
    assert set_cookie_names(response) == []
    assert app.cookies["a"] == before["a"]  # the client keeps its previous cookie
    response = app.post("/fill", {"ns": ["a", "b"], "size": "20"})
    assert set_cookie_names(response) == ["a", "b"]
    assert "namespace 'a': cookie 'a' dropped" in caplog.text and "1000-byte limit" in caplog.text
    assert "namespace 'nacl': cookie 'nacl' dropped" in caplog.text


def test_drop_sends_every_other_namespace_normally():
    settings = {"session_multi.cookie_limit": "1000", "session_multi.oversize": "drop"}

    def setup(config):
        setup_with("small", "big")(config)

        def mixed(request):
            request.session_multi["small"]["v"] = "kept"
            request.session_multi["big"]["blob"] = "x" * 3000
            return {}

        config.add_route("mixed", "/mixed")
        config.add_view(mixed, route_name="mixed", renderer="json")

    app = build_app(setup, settings=settings)
    assert set_cookie_names(app.get("/mixed")) == ["small"]


def test_cookie_header_budget_warns(caplog):
    settings = {"session_multi.cookie_header_limit": "5000"}
    app = build_app(setup_with("a", "b", "c"), settings=settings)
    caplog.set_level(logging.WARNING, logger="pyramid_session_multi")
    for namespace in ("a", "b"):
        app.post("/fill", {"ns": namespace, "size": "1500"})
    assert "Cookie header budget" not in caplog.text
    app.post("/fill", {"ns": "c", "size": "1500"})
    assert "over the Cookie header budget of 5000 bytes" in caplog.text


def test_panel_shows_sizes_and_the_total_against_both_limits():
    settings = {"session_multi.cookie_header_limit": "3000", "session_multi.cookie_limit": "2500"}

    def setup(config):
        setup_with("a", "b")(config)
        config.registry.settings.update(settings)

    app = toolbar_app(setup, "inactive")
    app.post("/fill", {"ns": "a", "size": "1200"})
    app.post("/fill", {"ns": "b", "size": "1200"})
    text = text_of(panel_html(app))
    assert "of 2500 bytes" in text
    total = int(text.split("send back: ")[1].split()[0])
    assert total > 3000 and "of 3000 bytes of a Cookie header over the Cookie header budget" in text


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("session_multi.cookie_limit", "big", "session_multi.cookie_limit = 'big'"),
        ("session_multi.cookie_header_limit", "8k", "session_multi.cookie_header_limit = '8k'"),
        ("session_multi.oversize", "truncate", "session_multi.oversize = 'truncate'"),
    ],
)
def test_budget_settings_mistakes_name_the_key(key, value, message):
    config = Configurator(settings={key: value})
    with pytest.raises(ConfigurationError, match=message):
        config.include("pyramid_session_multi")
        config.register_session_factory("a", signed_factory("a"))
        config.commit()


def test_cookie_header_budget_counts_cookies_set_in_the_same_response(caplog):
    settings = {"session_multi.cookie_header_limit": "5000"}
    app = build_app(setup_with("a", "b", "c"), settings=settings)
    caplog.set_level(logging.WARNING, logger="pyramid_session_multi")
    app.post("/fill", {"ns": ["a", "b", "c"], "size": "1500"})  # a client that sent nothing
    assert "over the Cookie header budget of 5000 bytes" in caplog.text


def loader_of(app, namespace):
    from pyramid_session_multi.config import get_manager_config

    config = get_manager_config(app.app.registry).configs[namespace]
    # without the budget, the loader only names the namespace in WebOb's errors
    return "Budgeted" in {
        cls.__dict__.get("_set_cookie").__qualname__.split(".")[-2]
        for cls in config.loader.__mro__
        if "_set_cookie" in cls.__dict__
    }


def test_the_budget_is_installed_only_where_it_can_matter():
    # one cookie session: pyramid's own 4 KB check is the limit, no header risk
    assert not loader_of(build_app(setup_with("a")), "a")
    # two could pass the 8190-byte header together
    app = build_app(setup_with("a", "b"))
    assert loader_of(app, "a") and loader_of(app, "b")
    # a lower limit, or dropping, needs it even alone
    for settings in ({"session_multi.cookie_limit": "900"}, {"session_multi.oversize": "drop"}):
        assert loader_of(build_app(setup_with("a"), settings=settings), "a")


def test_without_the_budget_the_library_error_names_the_namespace(caplog):
    app = build_app(setup_with("alone"))
    with pytest.raises(ValueError, match="too long") as info:
        app.post("/fill", {"ns": "alone", "size": "6000"})
    note = " ".join(info.value.__notes__)
    assert "namespace 'alone'" in note and "4096-byte limit" in note
    assert "namespace 'alone'" in caplog.text


@pytest.mark.parametrize("key", ["session_multi.cookie_limit", "session_multi.cookie_header_limit"])
@pytest.mark.parametrize("value", ["0", "-5", "4kb", "4096 bytes", "", True, 0, 2.5])
def test_limits_are_positive_whole_numbers_naming_the_key(key, value):
    from pyramid_session_multi.budget import CookieBudget
    from pyramid_session_multi.settings import SettingsError

    with pytest.raises(SettingsError, match=rf"{key} = .* it takes a positive whole number"):
        CookieBudget.from_settings({key: value})


def test_limits_from_code_and_oversize_words_are_taken_as_meant():
    from pyramid_session_multi.budget import CookieBudget

    budget = CookieBudget.from_settings(
        {
            "session_multi.cookie_limit": 3000,
            "session_multi.cookie_header_limit": " 6000 ",
            "session_multi.oversize": " Drop ",
        }
    )
    assert (budget.cookie_limit, budget.header_limit, budget.oversize) == (3000, 6000, "drop")


def test_a_bad_limit_is_refused_at_start_up_even_without_namespaces():
    from pyramid_session_multi.settings import SettingsError

    config = Configurator(settings={"session_multi.cookie_limit": "-5"})
    with pytest.raises(SettingsError, match=r"session_multi\.cookie_limit"):
        config.include("pyramid_session_multi")


def test_namespaces_of_the_04_api_keep_to_the_cookie_limit_as_the_directives_do(caplog):
    from pyramid_session_multi.config import get_manager_config

    settings = {"session_multi.cookie_limit": "1000", "session_multi.oversize": "drop"}

    def setup(config):
        setup_with()(config)
        get_manager_config(config.registry).register_session_factory("old", signed_factory("old"))

    app = build_app(setup, settings=settings)
    caplog.set_level(logging.ERROR, logger="pyramid_session_multi")
    assert set_cookie_names(app.post("/fill", {"ns": "old", "size": "10"})) == ["old"]
    assert set_cookie_names(app.post("/fill", {"ns": "old", "size": "2000"})) == []
    assert "namespace 'old': cookie 'old' dropped" in caplog.text


def test_a_cookie_without_attributes_is_measured_by_its_real_length(caplog):
    settings = {"session_multi.cookie_limit": "1000", "session_multi.oversize": "drop"}

    def setup(config):
        # in code: the settings refuse an empty path
        config.register_session_factory("bare", signed_factory("bare", path=None, samesite=None))
        setup_with()(config)

    app = build_app(setup, settings=settings)
    header = app.post("/fill", {"ns": "bare", "size": "10"}).headers["Set-Cookie"]
    assert ";" not in header  # no attribute at all
    caplog.set_level(logging.ERROR, logger="pyramid_session_multi")
    assert set_cookie_names(app.post("/fill", {"ns": "bare", "size": "2000"})) == []
    assert "namespace 'bare': cookie 'bare' dropped" in caplog.text


def test_the_cookie_header_check_counts_every_cookie_the_client_will_send_back(caplog):
    app = build_app(setup_with("a", "b"), settings={"session_multi.cookie_header_limit": "8190"})
    app.set_cookie("tracker", "t" * 5000)  # the application's, not a namespace's
    caplog.set_level(logging.WARNING, logger="pyramid_session_multi")
    app.post("/fill", {"ns": "a", "size": "1000"})
    assert "Cookie header budget" not in caplog.text
    app.post("/fill", {"ns": ["b", "a"], "size": "1800"})  # set after the check was due
    assert "over the Cookie header budget of 8190 bytes" in caplog.text


def test_the_cookie_header_check_runs_when_every_namespace_cookie_is_set(caplog):
    settings = {"session_multi.cookie_header_limit": "5000"}
    app = build_app(setup_with("a", "b", "c"), settings=settings)
    caplog.set_level(logging.WARNING, logger="pyramid_session_multi")
    app.post("/fill", {"ns": ["a", "b", "c"], "size": "1500"})
    assert "over the Cookie header budget of 5000 bytes" in caplog.text


class _RefusingSerializer:
    """JSON, but refusing one value with a message that reads like a size refusal."""

    def dumps(self, appstruct):
        if "refuse" in appstruct[2]:
            raise ValueError("Cookie value is too long to store (12 bytes)")
        return json.dumps(appstruct).encode()

    def loads(self, bstruct):
        return json.loads(bstruct)


@pytest.mark.parametrize("settings", [{}, {"session_multi.oversize": "drop"}])
def test_the_budget_measures_a_cookie_and_never_reads_an_error_message(settings, caplog):
    from pyramid.session import SignedCookieSessionFactory

    def setup(config):
        config.register_session_factory(
            "odd",
            SignedCookieSessionFactory(
                "secret" * 6, cookie_name="odd", serializer=_RefusingSerializer()
            ),
        )

        def refuse(request):
            request.session_multi["odd"]["refuse"] = True
            return {}

        config.add_route("refuse", "/refuse")
        config.add_view(refuse, route_name="refuse", renderer="json")

    app = build_app(setup, settings=settings)
    caplog.set_level(logging.ERROR, logger="pyramid_session_multi")
    # the serializer's own failure, which only reads like pyramid's size refusal
    with pytest.raises(ValueError, match=r"\(12 bytes\)") as info:
        app.get("/refuse")
    assert not isinstance(info.value, CookieTooLarge)
    assert "byte limit" not in " ".join(getattr(info.value, "__notes__", ()))
    assert "byte limit" not in caplog.text and "dropped" not in caplog.text


def test_without_the_budget_the_refusal_is_a_cookie_too_large_keeping_the_library_message():
    app = build_app(setup_with("alone"))
    with pytest.raises(CookieTooLarge, match="Cookie value is too long to store") as info:
        app.post("/fill", {"ns": "alone", "size": "6000"})
    # measured: the name, "=", and the value pyramid refused
    assert info.value.size > 6000 and info.value.namespace == "alone"
