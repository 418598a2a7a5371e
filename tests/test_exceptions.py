"""The errors an application catches: one module at the bottom of the package,
each still importable from where the API reference lists it."""

import importlib

import pytest

from pyramid_session_multi import exceptions


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("pyramid_session_multi", "NotIncludedError"),
        ("pyramid_session_multi", "UnregisteredSession"),
        ("pyramid_session_multi.manager", "UnregisteredSession"),
        ("pyramid_session_multi.config", "NotIncludedError"),
        ("pyramid_session_multi.settings", "SettingsError"),
        ("pyramid_session_multi.budget", "CookieTooLarge"),
        ("pyramid_session_multi.revocation", "RevocationStoreUnavailable"),
        ("pyramid_session_multi.csrf", "CSRFNamespaceUnavailable"),
    ],
)
def test_each_error_is_the_same_class_where_the_docs_list_it(module, name):
    assert getattr(importlib.import_module(module), name) is getattr(exceptions, name)


def test_the_errors_keep_the_classes_code_catches():
    from pyramid.exceptions import ConfigurationError

    assert issubclass(exceptions.SettingsError, ConfigurationError)
    assert issubclass(exceptions.NotIncludedError, ConfigurationError)
    assert issubclass(exceptions.NotIncludedError, AttributeError)  # as 0.4 raised
    assert issubclass(exceptions.UnregisteredSession, KeyError)
    assert issubclass(exceptions.CookieTooLarge, ValueError)


def test_a_cookie_too_large_from_the_library_keeps_its_message_and_names_the_namespace():
    library = ValueError("Cookie value is too long to store (5000 bytes)")
    error = exceptions.CookieTooLarge("prefs", "p", 5002, 4096, library_error=library)
    assert str(error) == str(library)
    assert "namespace 'prefs'" in error.__notes__[0] and "5002 bytes" in error.__notes__[0]
    assert (error.namespace, error.cookie_name, error.size, error.limit) == (
        "prefs",
        "p",
        5002,
        4096,
    )
