"""The value readers every setting goes through: each kind read once, the key
named in every error, a secret or a password never shown."""

import pytest

from pyramid_session_multi.exceptions import SettingsError
from pyramid_session_multi.values import (
    BOOLEAN_WORDS,
    Refused,
    as_boolean,
    as_optional_seconds,
    as_positive_seconds,
    as_samesite,
    as_secret,
    from_environment,
    read,
    read_options,
    resolve_env,
    whole_number,
)


@pytest.mark.parametrize("word", ["true", " Yes ", "ON", "1", 1, True])
def test_a_boolean_takes_pyramids_true_words(word):
    assert as_boolean(word) is True


@pytest.mark.parametrize("word", ["false", "No", "off", "0", 0, False])
def test_a_boolean_takes_pyramids_false_words(word):
    assert as_boolean(word) is False


@pytest.mark.parametrize("word", ["maybe", "", 2, None, 1.0])
def test_anything_else_is_not_a_boolean(word):
    with pytest.raises(SettingsError, match=rf"^k = .* is not valid: it takes {BOOLEAN_WORDS}$"):
        read("k", word, as_boolean)


@pytest.mark.parametrize("value", ["²", "١٢", "3600s", "-1", "1.5", " ", True, 2.0])
def test_a_whole_number_is_ascii_digits_or_an_int_from_code(value):
    with pytest.raises(Refused):
        whole_number(value, "a number")


def test_a_whole_number_keeps_to_its_range():
    assert whole_number(" 42 ", "n") == 42
    assert whole_number(7, "n", 1, 7) == 7
    for value in (0, 8):
        with pytest.raises(Refused):
            whole_number(value, "n", 1, 7)


def test_seconds_none_and_ten_years():
    assert as_optional_seconds(" None ") is None
    assert as_optional_seconds("0") == 0
    assert as_positive_seconds("315360000") == 315360000
    with pytest.raises(Refused):
        as_positive_seconds("315360001")
    with pytest.raises(Refused):
        as_positive_seconds("0")


@pytest.mark.parametrize(
    ("given", "expected"), [("strict", "Strict"), (" LAX ", "Lax"), ("none", "None"), ("", None)]
)
def test_samesite_takes_the_attributes_words_any_case(given, expected):
    assert as_samesite(given) == expected


def test_a_secret_is_never_shown_in_its_error():
    with pytest.raises(SettingsError) as info:
        read("ns.secret", 12345, as_secret, secret=True)
    assert str(info.value) == "ns.secret = ... is not valid: it takes text"
    with pytest.raises(SettingsError, match=r"^ns.secret is the word 'none'"):
        read("ns.secret", " None ", as_secret, secret=True)


def test_a_url_in_an_error_keeps_no_password():
    with pytest.raises(SettingsError) as info:
        read("ns.flag", "redis://:hunter2@host/0", as_boolean)
    assert "hunter2" not in str(info.value) and str(info.value).startswith("ns.flag = ")


def test_every_refusal_names_its_key():
    readers = {"a": as_boolean, "b": as_samesite}
    assert read_options({"a": "yes", "c": "kept"}, readers, lambda option: f"x.{option}") == {
        "a": True,
        "c": "kept",
    }
    with pytest.raises(SettingsError, match=r"^x\.b = 'sometimes' is not valid"):
        read_options({"a": "yes", "b": "sometimes"}, readers, lambda option: f"x.{option}")


def test_env_reads_the_variable_and_refuses_unset_or_empty(monkeypatch):
    monkeypatch.setenv("PSM_VALUES_SET", "value")
    monkeypatch.setenv("PSM_VALUES_EMPTY", "  ")
    monkeypatch.delenv("PSM_VALUES_UNSET", raising=False)
    assert resolve_env("k", "env:PSM_VALUES_SET") == "value"
    assert resolve_env("k", "literal") == "literal"
    with pytest.raises(SettingsError) as info:
        resolve_env("k", "env:PSM_VALUES_UNSET")
    assert str(info.value) == (
        "k = env:PSM_VALUES_UNSET: the environment variable 'PSM_VALUES_UNSET' is not set"
    )
    with pytest.raises(SettingsError, match=r"^k = env:PSM_VALUES_EMPTY: .* is empty$"):
        resolve_env("k", "env:PSM_VALUES_EMPTY")


def test_env_reads_from_the_mapping_it_is_given():
    assert from_environment("env:X", {"X": "y"}) == "y"
    with pytest.raises(Refused):
        from_environment("env:X", {})
