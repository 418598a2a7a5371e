"""Namespaces declared in settings: every factory kind, every mistake, code beside them."""

import sqlite3
import sys

import pytest
import webtest
from pyramid.config import Configurator
from pyramid.exceptions import ConfigurationError

from pyramid_session_multi import NamespaceCSRFStoragePolicy
from pyramid_session_multi.config import INTROSPECTION_CATEGORY
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
        r"session_multi.prefs.max_age = 'forever' is not a valid value",
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
        r"session_multi.prefs.timeout = 'soon' is not accepted by the redis library",
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
def test_mistakes_are_configuration_errors_naming_the_key(case):
    changes, message = MISTAKES[case]
    settings = {k: v for k, v in {**SIGNED, **changes}.items() if v is not None}
    config = Configurator(settings=settings)
    with pytest.raises(ConfigurationError, match=message):
        config.include("pyramid_session_multi")
        config.commit()


def test_a_library_that_is_not_installed_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyramid_nacl_session", None)
    settings = {**SIGNED, "session_multi.prefs.factory": "nacl"}
    with pytest.raises(ConfigurationError, match=r"pyramid_session_multi\[nacl\]"):
        Configurator(settings=settings).include("pyramid_session_multi")
