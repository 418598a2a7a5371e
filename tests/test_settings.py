"""Namespaces declared in settings: every factory kind, every mistake, code beside them."""

import sqlite3
import sys

import pytest
import webtest
from pyramid.config import Configurator
from pyramid.exceptions import ConfigurationError

from pyramid_session_multi import NamespaceCSRFStoragePolicy
from pyramid_session_multi.config import INTROSPECTION_CATEGORY
from pyramid_session_multi.settings import SettingsError
from tests.support.apps import build_wsgi, set_cookie_names, signed_factory

SIGNED = {
    "session_multi.namespaces": "prefs",
    "session_multi.prefs.factory": "signed",
    "session_multi.prefs.secret": "prefs-secret-of-32-bytes-or-more!",
    "session_multi.prefs.cookie_name": "prefs",
    "session_multi.prefs.max_age": "31536000",
    "session_multi.prefs.httponly": "true",
}


def app_from(settings, setup=None):
    return webtest.TestApp(build_wsgi(setup, settings=dict(settings)))


def round_trip(app, namespace, cookie):
    response = app.post(f"/s/{namespace}", {"value": f"v-{namespace}"})
    assert set_cookie_names(response) == [cookie]
    assert app.get(f"/s/{namespace}").json["value"] == f"v-{namespace}"
    return response


def test_signed_options_are_converted():
    response = round_trip(app_from(SIGNED), "prefs", "prefs")
    header = response.headers["Set-Cookie"]
    assert "Max-Age=31536000" in header and "HttpOnly" in header


def test_nacl_with_a_hex_secret_and_numbers():
    settings = {
        "session_multi.namespaces": "vault",
        "session_multi.vault.factory": "nacl",
        "session_multi.vault.secret": "ab" * 32,
        "session_multi.vault.cookie_name": "vault",
        "session_multi.vault.timeout": "600",
    }
    round_trip(app_from(settings), "vault", "vault")


def test_redis_on_the_embedded_server(redis_db):
    settings = {
        "session_multi.namespaces": "account",
        "session_multi.account.factory": "redis",
        "session_multi.account.secret": "account-secret",
        "session_multi.account.cookie_name": "account",
        "session_multi.account.redis_url": redis_db,
        "session_multi.account.timeout": "600",
        "session_multi.account.cookie_httponly": "true",
    }
    round_trip(app_from(settings), "account", "account")


def test_beaker_on_files_and_sql(tmp_path):
    settings = {
        "session_multi.namespaces": "files sql",
        "session_multi.files.factory": "beaker",
        "session_multi.files.type": "file",
        "session_multi.files.data_dir": str(tmp_path / "files"),
        "session_multi.files.lock_dir": str(tmp_path / "lock"),
        "session_multi.files.key": "files",
        "session_multi.files.httponly": "true",
        "session_multi.sql.factory": "beaker",
        "session_multi.sql.type": "ext:database",
        "session_multi.sql.url": f"sqlite:///{tmp_path / 'sessions.sqlite'}",
        "session_multi.sql.table_name": "settings_sessions",
        "session_multi.sql.lock_dir": str(tmp_path / "sql-lock"),
        "session_multi.sql.key": "sql",
    }
    app = app_from(settings)
    round_trip(app, "files", "files")
    round_trip(app, "sql", "sql")
    assert list((tmp_path / "files").rglob("*.cache"))
    with sqlite3.connect(tmp_path / "sessions.sqlite") as db:
        assert db.execute("select count(*) from settings_sessions").fetchone()[0] == 1


def test_dotted_factory_gets_the_options():
    settings = {
        "session_multi.namespaces": "custom",
        "session_multi.custom.factory": "tests.support.dotted:settings_factory",
        "session_multi.custom.secret": "s",
        "session_multi.custom.cookie": "custom_cookie",
    }
    round_trip(app_from(settings), "custom", "custom_cookie")


def test_secrets_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("PREFS_SECRET", "from-the-environment-32-bytes-long!")
    settings = dict(SIGNED, **{"session_multi.prefs.secret": "env:PREFS_SECRET"})
    app = app_from(settings)
    round_trip(app, "prefs", "prefs")
    factory = app.app.registry.introspector.get(INTROSPECTION_CATEGORY, "prefs")["factory"]
    monkeypatch.setenv("PREFS_SECRET", "another-secret-of-32-bytes-or-more")
    other = app_from(settings)
    other.set_cookie("prefs", app.cookies["prefs"])
    assert other.get("/s/prefs").json["value"] is None  # the secret really came from there
    assert factory is not None


def test_discriminator_validator_and_pyramid_includes():
    settings = dict(
        SIGNED,
        **{
            "pyramid.includes": "pyramid_session_multi",
            "session_multi.prefs.discriminator": "tests.support.dotted.only_https",
            "session_multi.prefs.validator": "tests.support.dotted.always_valid",
        },
    )
    app = webtest.TestApp(build_wsgi(settings=settings, include=False))
    assert app.get("/s/prefs").json["session"] is None
    https = {"wsgi.url_scheme": "https", "HTTP_HOST": "localhost:443"}
    assert app.get("/s/prefs", extra_environ=https).json["session"] == "present"


def test_settings_namespaces_are_introspected_and_keep_the_csrf_policy():
    def setup(config):
        config.set_csrf_storage_policy(NamespaceCSRFStoragePolicy("prefs"))

    app = app_from(SIGNED, setup)
    intr = app.app.registry.introspector.get(INTROSPECTION_CATEGORY, "prefs")
    assert intr["cookie_name"] == "prefs"


@pytest.mark.parametrize("where", ["main", "an include"])
def test_a_settings_namespace_meeting_a_code_one_is_an_error_naming_both(where):
    def register(config):
        config.register_session_factory("prefs", signed_factory("code_prefs"))  # code-site

    config = Configurator(settings=dict(SIGNED))
    config.include("pyramid_session_multi")
    if where == "main":
        register(config)
    else:
        config.include(register)
    with pytest.raises(ConfigurationError) as info:
        config.commit()
    message = str(info.value)
    assert "session_multi.prefs" in message and "code-site" in message


MISTAKES = {
    "unknown factory kind": (
        {"session_multi.prefs.factory": "memcached"},
        r"session_multi.prefs.factory = 'memcached' is not a factory kind",
    ),
    "listed without factory": (
        {"session_multi.namespaces": "prefs other"},
        r"session_multi.other.factory is missing",
    ),
    "options of an unlisted namespace": (
        {"session_multi.ghost.secret": "x"},
        r"session_multi.ghost.secret: namespace 'ghost' is not listed",
    ),
    "an option the library lacks": (
        {"session_multi.prefs.secrte": "x"},
        r"session_multi.prefs.secrte: signed sessions have no option 'secrte'",
    ),
    "a value of the wrong type": (
        {"session_multi.prefs.max_age": "forever"},
        r"session_multi.prefs.max_age = 'forever' is not valid: it takes a whole number",
    ),
    "a number with a unit": (
        {"session_multi.prefs.max_age": "3600s"},
        r"session_multi.prefs.max_age = '3600s' is not valid: it takes a whole number of seconds",
    ),
    "a negative number": (
        {"session_multi.prefs.timeout": "-5"},
        r"session_multi.prefs.timeout = '-5' is not valid: it takes a whole number of seconds",
    ),
    "a SameSite typo": (
        {"session_multi.prefs.samesite": "Lox"},
        r"session_multi.prefs.samesite = 'Lox' is not valid: it takes Strict, Lax, None",
    ),
    "an unknown hash algorithm": (
        {"session_multi.prefs.hashalg": "sha513"},
        r"session_multi.prefs.hashalg = 'sha513' is not valid: it takes .*sha512",
    ),
    "an empty environment variable": (
        {"session_multi.prefs.secret": "env:PSM_SET_BUT_EMPTY"},
        r"session_multi.prefs.secret = env:PSM_SET_BUT_EMPTY: the environment variable "
        r"'PSM_SET_BUT_EMPTY' is empty",
    ),
    "a nacl serializer it does not know": (
        {
            "session_multi.prefs.factory": "nacl",
            "session_multi.prefs.secret": "ab" * 32,
            "session_multi.prefs.max_age": None,
            "session_multi.prefs.serializer": "yaml",
        },
        r"session_multi.prefs.serializer = 'yaml' is not valid: it takes json, pickle",
    ),
    "a nacl secret that is not 32 bytes of hex": (
        {"session_multi.prefs.factory": "nacl", "session_multi.prefs.secret": "abcd"},
        r"session_multi.prefs.secret = \.\.\. is not valid: it takes 64 hexadecimal",
    ),
    "redis without a secret": (
        {
            "session_multi.prefs.factory": "redis",
            "session_multi.prefs.max_age": None,
            "session_multi.prefs.httponly": None,
            "session_multi.prefs.secret": None,
            "session_multi.prefs.timeout": "600",
        },
        r"session_multi.prefs.secret is required for redis sessions",
    ),
    "beaker with an empty secret": (
        {
            "session_multi.prefs.factory": "beaker",
            "session_multi.prefs.max_age": None,
            "session_multi.prefs.httponly": None,
            "session_multi.prefs.type": "memory",
            "session_multi.prefs.secret": "",
        },
        r"session_multi.prefs.secret is empty",
    ),
    "beaker ext:database without url": (
        {
            "session_multi.prefs.factory": "beaker",
            "session_multi.prefs.max_age": None,
            "session_multi.prefs.httponly": None,
            "session_multi.prefs.secret": None,
            "session_multi.prefs.type": "ext:database",
        },
        r"session_multi.prefs.url is required for type = ext:database",
    ),
    "beaker cookie sessions without validate_key": (
        {
            "session_multi.prefs.factory": "beaker",
            "session_multi.prefs.max_age": None,
            "session_multi.prefs.httponly": None,
            "session_multi.prefs.secret": None,
            "session_multi.prefs.type": "cookie",
        },
        r"session_multi.prefs.validate_key is required for type = cookie",
    ),
    "a beaker type typo": (
        {
            "session_multi.prefs.factory": "beaker",
            "session_multi.prefs.max_age": None,
            "session_multi.prefs.httponly": None,
            "session_multi.prefs.secret": None,
            "session_multi.prefs.type": "flie",
        },
        r"session_multi.prefs.type = 'flie' is not valid: it takes .*cookie.*file",
    ),
    "a beaker number with a unit": (
        {
            "session_multi.prefs.factory": "beaker",
            "session_multi.prefs.max_age": None,
            "session_multi.prefs.httponly": None,
            "session_multi.prefs.secret": None,
            "session_multi.prefs.timeout": "20min",
        },
        r"session_multi.prefs.timeout = '20min' is not valid: it takes a whole number",
    ),
    "a zero cookie limit": (
        {"session_multi.cookie_limit": "0"},
        r"session_multi.cookie_limit = '0' is not valid: it takes a positive whole number",
    ),
    "a negative cookie limit": (
        {"session_multi.cookie_limit": "-5"},
        r"session_multi.cookie_limit = '-5' is not valid: it takes a positive whole number",
    ),
    "a zero header limit": (
        {"session_multi.cookie_header_limit": 0},
        r"session_multi.cookie_header_limit = 0 is not valid: it takes a positive whole number",
    ),
    "a cookie limit with a unit": (
        {"session_multi.cookie_limit": "4kb"},
        r"session_multi.cookie_limit = '4kb' is not valid: it takes a positive whole number",
    ),
    "an oversize typo": (
        {"session_multi.oversize": "dorp"},
        r"session_multi.oversize = 'dorp' is not valid: it takes raise, drop",
    ),
    "a global key typo": (
        {"session_multi.cookie_limt": "4000"},
        r"session_multi.cookie_limt is not a setting of the add-on: .*cookie_limit",
    ),
    "a secret that is the word none": (
        {"session_multi.prefs.secret": "None"},
        r"session_multi.prefs.secret is the word 'none', a placeholder",
    ),
    "a factory kind typo": (
        {"session_multi.prefs.factory": "sigend"},
        r"session_multi.prefs.factory = 'sigend' is not a factory kind",
    ),
    "an unset environment variable": (
        {"session_multi.prefs.secret": "env:PSM_NO_SUCH_VARIABLE"},
        r"session_multi.prefs.secret = env:PSM_NO_SUCH_VARIABLE: the environment variable",
    ),
    "a redis option of the wrong type": (
        {
            "session_multi.prefs.factory": "redis",
            "session_multi.prefs.max_age": None,
            "session_multi.prefs.httponly": None,
            "session_multi.prefs.secret": "s",
            "session_multi.prefs.timeout": "soon",
        },
        r"session_multi.prefs.timeout = 'soon' is not valid: it takes a whole number",
    ),
    "a beaker option the library lacks": (
        {
            "session_multi.prefs.factory": "beaker",
            "session_multi.prefs.max_age": None,
            "session_multi.prefs.httponly": None,
            "session_multi.prefs.cookie_name": None,
            "session_multi.prefs.secret": None,
            "session_multi.prefs.data_dri": "/tmp/x",
        },
        r"session_multi.prefs.data_dri: beaker sessions have no option 'data_dri'",
    ),
}


@pytest.mark.parametrize("case", sorted(MISTAKES))
def test_mistakes_are_configuration_errors_naming_the_key(monkeypatch, case):
    monkeypatch.setenv("PSM_SET_BUT_EMPTY", "")
    changes, message = MISTAKES[case]
    settings = {k: v for k, v in {**SIGNED, **changes}.items() if v is not None}
    config = Configurator(settings=settings)
    with pytest.raises(SettingsError, match=message):
        config.include("pyramid_session_multi")
        config.commit()


def test_a_library_that_is_not_installed_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyramid_nacl_session", None)
    settings = {**SIGNED, "session_multi.prefs.factory": "nacl"}
    with pytest.raises(ConfigurationError, match=r"pyramid_session_multi\[nacl\]"):
        Configurator(settings=settings).include("pyramid_session_multi")


# -- secrets --------------------------------------------------------------------------

NACL_SECRET = "ab" * 32


def namespace_settings(kind, redis_url=None, **options):
    """Settings declaring namespace ``ns`` of ``kind`` with ``options`` (None drops one);
    ``redis_url`` is used by redis only."""
    base = {
        "signed": {"secret": "a-signed-secret-of-32-bytes-or-more", "cookie_name": "ns"},
        "nacl": {"secret": NACL_SECRET, "cookie_name": "ns"},
        "redis": {"secret": "a-redis-secret", "cookie_name": "ns"},
        "beaker": {"key": "ns"},
    }[kind]
    if kind == "redis":
        base["redis_url"] = redis_url
    settings = {"session_multi.namespaces": "ns", "session_multi.ns.factory": kind}
    for option, value in {**base, **options}.items():
        if value is not None:
            settings[f"session_multi.ns.{option}"] = value
    return settings


def start(settings):
    config = Configurator(settings=settings)
    config.include("pyramid_session_multi")
    config.commit()
    return config


def test_an_empty_signed_secret_is_refused_so_a_forged_cookie_cannot_pass():
    # what anyone can make when the secret is empty: pyramid's own cookie, signed with ""
    from pyramid.response import Response
    from pyramid.session import SignedCookieSessionFactory
    from pyramid.testing import DummyRequest

    forger = SignedCookieSessionFactory("", cookie_name="prefs")(DummyRequest())
    forger["user"] = "admin"
    response = Response()
    forger._set_cookie(response)
    forged = response.headers["Set-Cookie"].split(";")[0].split("=", 1)[1]

    def setup(config):
        config.add_route("who", "/who")
        config.add_view(
            lambda request: {"user": request.session_multi["prefs"].get("user")},
            route_name="who",
            renderer="json",
        )

    try:
        app = app_from({**SIGNED, "session_multi.prefs.secret": ""}, setup)
    except SettingsError as exc:
        assert "session_multi.prefs.secret" in str(exc)
    else:
        app.set_cookie("prefs", forged)
        pytest.fail(f"started with an empty secret; a forged cookie read as {app.get('/who').json}")


SECRET_KEYS = [
    ("signed", "secret"),
    ("nacl", "secret"),
    ("redis", "secret"),
    ("beaker", "secret"),
    ("beaker", "validate_key"),
    ("beaker", "encrypt_key"),
]


@pytest.mark.parametrize("given", ["literal", "blank", "env"])
@pytest.mark.parametrize(("kind", "option"), SECRET_KEYS)
def test_an_empty_secret_is_refused_at_start_up_naming_the_key(monkeypatch, kind, option, given):
    monkeypatch.setenv("PSM_EMPTY_SECRET", "")
    value = {"literal": "", "blank": "   ", "env": "env:PSM_EMPTY_SECRET"}[given]
    settings = namespace_settings(kind, **{option: value})
    with pytest.raises(SettingsError, match=rf"session_multi\.ns\.{option}\b.*empty"):
        start(settings)


# -- the cookie the library writes is the cookie the add-on registers ----------------


def test_beakers_key_and_cookie_name_disagreeing_is_an_error_naming_both():
    settings = namespace_settings("beaker", key="ns", cookie_name="other")
    with pytest.raises(SettingsError) as info:
        start(settings)
    message = str(info.value)
    assert "session_multi.ns.key" in message and "session_multi.ns.cookie_name" in message


def test_beakers_key_and_cookie_name_agreeing_is_fine():
    config = start(namespace_settings("beaker", key="ns", cookie_name="ns"))
    assert config.registry.introspector.get(INTROSPECTION_CATEGORY, "ns")["cookie_name"] == "ns"


def test_a_dotted_factory_writing_another_cookie_than_cookie_name_is_an_error():
    settings = {
        "session_multi.namespaces": "custom",
        "session_multi.custom.factory": "tests.support.dotted:settings_factory",
        "session_multi.custom.secret": "s",
        "session_multi.custom.cookie": "written",
        "session_multi.custom.cookie_name": "told",
    }
    with pytest.raises(
        SettingsError, match=r"session_multi\.custom\.cookie_name = 'told'.*'written'"
    ):
        start(settings)


@pytest.mark.parametrize("kind", ["signed", "nacl", "redis", "beaker"])
@pytest.mark.parametrize("option", ["cookie_name", "library's own"])
def test_every_kind_writes_the_cookie_the_add_on_registers(redis_db, tmp_path, kind, option):
    own = {"beaker": "key"}.get(kind, "cookie_name")
    named = {"cookie_name" if option == "cookie_name" else own: "jar"}
    if kind == "beaker":
        named.setdefault("key", None)
        named.update(type="file", data_dir=str(tmp_path / "data"), lock_dir=str(tmp_path / "l"))
    app = app_from(namespace_settings(kind, redis_url=redis_db, **named))
    assert app.app.registry.introspector.get(INTROSPECTION_CATEGORY, "ns")["cookie_name"] == "jar"
    round_trip(app, "ns", "jar")


# -- booleans and SameSite -----------------------------------------------------------

BOOLEANS = [
    ("signed", "secure"),
    ("signed", "httponly"),
    ("signed", "set_on_exception"),
    ("nacl", "secure"),
    ("nacl", "httponly"),
    ("nacl", "set_on_exception"),
    ("redis", "cookie_secure"),
    ("redis", "cookie_httponly"),
    ("redis", "cookie_on_exception"),
    ("redis", "set_redis_ttl"),
    ("beaker", "secure"),
    ("beaker", "httponly"),
    ("beaker", "cookie_on_exception"),
]


@pytest.mark.parametrize("word", ["ture", "yes please", "2", "none"])
@pytest.mark.parametrize(("kind", "option"), BOOLEANS)
def test_a_boolean_takes_asbool_words_only(kind, option, word):
    with pytest.raises(SettingsError, match=rf"session_multi\.ns\.{option} = '{word}'.*true, yes"):
        start(namespace_settings(kind, **{option: word}))


@pytest.mark.parametrize(
    ("word", "secure"), [("YES", True), (" on ", True), ("T", True), ("1", True), ("Off", False)]
)
@pytest.mark.parametrize("kind", ["signed", "nacl", "redis"])
def test_every_asbool_word_works_whatever_its_case(redis_db, kind, word, secure):
    option = "cookie_secure" if kind == "redis" else "secure"
    app = app_from(namespace_settings(kind, redis_url=redis_db, **{option: word}))
    header = app.post("/s/ns", {"value": "v"}).headers["Set-Cookie"]
    assert ("; secure" in header.lower()) is secure


def samesite_of(app, namespace="ns"):
    header = app.post(f"/s/{namespace}", {"value": "v"}).headers["Set-Cookie"]
    attributes = [part.strip() for part in header.split(";")[1:]]
    found = [a.split("=", 1)[1] for a in attributes if a.lower().startswith("samesite=")]
    return found[0] if found else None


@pytest.mark.parametrize("kind", ["signed", "nacl", "redis", "beaker"])
def test_samesite_none_sends_the_literal_attribute(redis_db, kind):
    option = "cookie_samesite" if kind == "redis" else "samesite"
    secure = "cookie_secure" if kind == "redis" else "secure"
    app = app_from(namespace_settings(kind, redis_url=redis_db, **{option: "None", secure: "true"}))
    assert samesite_of(app) == "None"


@pytest.mark.parametrize("kind", ["signed", "nacl", "redis", "beaker"])
def test_samesite_none_without_secure_is_refused(redis_db, kind):
    option = "cookie_samesite" if kind == "redis" else "samesite"
    with pytest.raises(ConfigurationError, match="SameSite=None without Secure"):
        start(namespace_settings(kind, redis_url=redis_db, **{option: "none"}))


@pytest.mark.parametrize(("given", "sent"), [("strict", "Strict"), (" LAX ", "Lax"), ("", None)])
@pytest.mark.parametrize("kind", ["signed", "nacl", "redis", "beaker"])
def test_samesite_is_normalised_and_empty_sends_none(redis_db, kind, given, sent):
    option = "cookie_samesite" if kind == "redis" else "samesite"
    app = app_from(namespace_settings(kind, redis_url=redis_db, **{option: given}))
    assert samesite_of(app) == sent


# -- values handed in from code ------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "options"),
    [
        ("signed", {"max_age": 3600, "timeout": 600, "secure": False, "httponly": True}),
        ("nacl", {"max_age": 3600, "timeout": 600, "reissue_time": 0, "httponly": 1}),
        ("redis", {"timeout": 600, "cookie_max_age": 3600, "cookie_httponly": True}),
        ("beaker", {"timeout": 600, "httponly": True, "cookie_expires": 3600}),
    ],
)
def test_numbers_and_booleans_from_code_settings_are_taken(redis_db, kind, options):
    app = app_from(namespace_settings(kind, redis_url=redis_db, **options))
    round_trip(app, "ns", "ns")


def test_a_number_where_text_is_wanted_names_the_key():
    with pytest.raises(SettingsError, match=r"session_multi\.ns\.cookie_name = 12345.*text"):
        start(namespace_settings("signed", cookie_name=12345))


def test_a_secret_is_never_shown_in_an_error():
    settings = namespace_settings("nacl", secret="not-hex-but-still-secret")
    with pytest.raises(SettingsError, match=r"session_multi\.ns\.secret = \.\.\.") as info:
        start(settings)
    assert "not-hex-but-still-secret" not in str(info.value)


# -- where a settings namespace came from --------------------------------------------


def test_introspection_says_which_settings_key_declared_the_namespace():
    config = start(dict(SIGNED))
    shown = str(config.registry.introspector.get(INTROSPECTION_CATEGORY, "prefs").action_info)
    assert shown.splitlines() == [
        "Key session_multi.prefs.factory of the settings:",
        "    session_multi.prefs.factory = signed",
    ]


def test_a_conflict_report_reads_naturally():
    def register(config):
        config.register_session_factory("prefs", signed_factory("code_prefs"))

    config = Configurator(settings=dict(SIGNED))
    config.include("pyramid_session_multi")
    config.include(register)
    with pytest.raises(ConfigurationError) as info:
        config.commit()
    assert "Line 0" not in str(info.value)
    assert "Key session_multi.prefs.factory of the settings:" in str(info.value)


@pytest.mark.parametrize("kind", ["signed", "nacl"])
@pytest.mark.parametrize("word", [" JSON ", "webob.cookies:JSONSerializer"])
def test_a_serializer_is_a_word_in_any_case_or_a_dotted_name(kind, word):
    round_trip(app_from(namespace_settings(kind, serializer=word)), "ns", "ns")


# -- cookie attributes a browser would read otherwise ---------------------------------

#: option names of each kind for a cookie's path, domain and name
COOKIE_OPTIONS = {
    "signed": ("path", "domain", "cookie_name"),
    "nacl": ("path", "domain", "cookie_name"),
    "redis": ("cookie_path", "cookie_domain", "cookie_name"),
    "beaker": ("cookie_path", "cookie_domain", "key"),
}


@pytest.mark.parametrize(
    "given",
    [
        "/; Domain=example.com",
        "/a,b",
        "/a b",
        "/a\r\nSet-Cookie: x=1",
        "/a\tb",
        "/caf\u00e9",
        "/\x7f",
    ],
)
@pytest.mark.parametrize("which", [0, 1, 2])
@pytest.mark.parametrize("kind", list(COOKIE_OPTIONS))
def test_a_cookie_path_domain_or_name_that_would_add_attributes_is_refused_naming_the_key(
    redis_db, kind, which, given
):
    option = COOKIE_OPTIONS[kind][which]
    value = given if which < 2 else "ns" + given.lstrip("/")
    with pytest.raises(SettingsError, match=rf"session_multi\.ns\.{option} = "):
        start(namespace_settings(kind, redis_url=redis_db, **{option: value}))


@pytest.mark.parametrize("kind", list(COOKIE_OPTIONS))
def test_a_plain_cookie_path_and_domain_are_kept(redis_db, kind):
    path, domain, _ = COOKIE_OPTIONS[kind]
    app = app_from(
        namespace_settings(kind, redis_url=redis_db, **{path: " /s ", domain: "app.example"})
    )
    header = app.post("/s/ns", {"value": "v"}, extra_environ={"HTTP_HOST": "app.example"})
    cookie = header.headers["Set-Cookie"]
    assert "Path=/s" in cookie and "Domain=app.example" in cookie


# -- partitioned cookies (CHIPS) -------------------------------------------------------

SECURE_OPTION = {"signed": "secure", "nacl": "secure", "redis": "cookie_secure", "beaker": "secure"}


@pytest.mark.parametrize("kind", list(SECURE_OPTION))
def test_partitioned_adds_the_attribute_to_the_cookie_of_every_kind(redis_db, kind):
    settings = namespace_settings(
        kind, redis_url=redis_db, partitioned="true", **{SECURE_OPTION[kind]: "true"}
    )
    header = app_from(settings).post("/s/ns", {"value": "v"}).headers["Set-Cookie"]
    assert header.endswith("; Partitioned") and "secure" in header.lower()


@pytest.mark.parametrize("kind", list(SECURE_OPTION))
def test_partitioned_without_secure_is_refused_naming_both_keys(redis_db, kind):
    secure = SECURE_OPTION[kind]
    with pytest.raises(
        SettingsError,
        match=rf"session_multi\.ns\.partitioned = .yes. needs a Secure.*ns\.{secure}",
    ):
        start(namespace_settings(kind, redis_url=redis_db, partitioned="yes"))


def test_partitioned_takes_boolean_words_only():
    with pytest.raises(SettingsError, match=r"session_multi\.ns\.partitioned = 'ture'"):
        start(namespace_settings("signed", partitioned="ture", secure="true"))


@pytest.mark.parametrize("option", ["partitioned", "idle_timeout", "validator", "bound_to"])
def test_an_option_of_the_add_on_under_fallback_is_refused_naming_the_key(option):
    settings = namespace_settings(
        "signed",
        **{
            "fallback.factory": "signed",
            "fallback.secret": "an-old-signed-secret-of-32-bytes-or-more",
            "fallback.cookie_name": "old",
            f"fallback.{option}": "true",
        },
    )
    with pytest.raises(SettingsError, match=rf"session_multi\.ns\.fallback\.{option}: "):
        start(settings)


@pytest.mark.parametrize(
    "option", ["idle_timeout", "absolute_timeout", "bound_to", "validator", "fallback.factory"]
)
def test_a_fallback_refuses_the_namespaces_own_keys_naming_the_key(option):
    settings = {
        **SIGNED,
        "session_multi.prefs.fallback.factory": "signed",
        "session_multi.prefs.fallback.secret": "the-old-secret-of-at-least-32-bytes",
        "session_multi.prefs.fallback.cookie_name": "old_prefs",
        f"session_multi.prefs.fallback.{option}": "60",
    }
    with pytest.raises(SettingsError, match=rf"^session_multi\.prefs\.fallback\.{option}: "):
        app_from(settings)


# -- cookie paths and the audit's settings --------------------------------------------

PATH_OPTION = {"signed": "path", "nacl": "path", "redis": "cookie_path", "beaker": "cookie_path"}


@pytest.mark.parametrize("path", ["a", "app/x", "", "  "])
@pytest.mark.parametrize("kind", ["signed", "nacl", "redis", "beaker"])
def test_a_cookie_path_not_beginning_with_a_slash_is_refused_naming_the_key(redis_db, kind, path):
    option = PATH_OPTION[kind]
    with pytest.raises(SettingsError, match=rf"session_multi\.ns\.{option}.*begins with /"):
        start(namespace_settings(kind, redis_url=redis_db, **{option: path}))


@pytest.mark.parametrize("kind", ["signed", "nacl", "redis", "beaker"])
def test_an_absolute_cookie_path_is_sent_as_given(redis_db, kind):
    app = app_from(namespace_settings(kind, redis_url=redis_db, **{PATH_OPTION[kind]: " /s "}))
    header = app.post("/s/ns", {"value": "v"}).headers["Set-Cookie"]
    assert "Path=/s;" in header or header.endswith("Path=/s")


def test_a_namespace_listed_twice_is_refused_naming_the_key():
    settings = {**namespace_settings("signed"), "session_multi.namespaces": "ns other ns"}
    settings["session_multi.other.factory"] = "signed"
    settings["session_multi.other.secret"] = "another-signed-secret-of-32-bytes-or-more"
    with pytest.raises(
        SettingsError, match=r"session_multi\.namespaces: namespace 'ns' is listed twice"
    ):
        start(settings)


@pytest.mark.parametrize("logout", ["logout", "", "  "])
def test_a_logout_path_of_the_audit_not_beginning_with_a_slash_is_refused(logout):
    settings = {**namespace_settings("signed"), "session_multi.check.logout_path": logout}
    with pytest.raises(SettingsError, match=r"session_multi\.check\.logout_path = .*begins with /"):
        start(settings)


def test_silencing_an_id_no_check_has_is_refused_naming_it():
    settings = {
        **namespace_settings("signed"),
        "session_multi.check.silence": "psm.W001 psm.W999",
    }
    with pytest.raises(SettingsError, match=r"session_multi\.check\.silence: psm\.W999 is no"):
        start(settings)


def test_the_audits_own_settings_written_right_are_taken():
    settings = {
        **namespace_settings("signed"),
        "session_multi.check.silence": "psm.W001 psm.E002 psm.I003",
        "session_multi.check.logout_path": "/logout",
    }
    start(settings)
