"""Reading one setting's value: each kind of value read once, the key named in every error.

A reader takes what a setting holds (text from an .ini file, or a number or
boolean handed in from code) and returns what the add-on or a library wants,
or raises :class:`Refused` saying what the option takes.  :func:`read` (or
:func:`read_options`) calls a reader and turns a refusal into a
:class:`~pyramid_session_multi.exceptions.SettingsError` that names the key,
without showing a secret or a password.

The kinds read here are those every part of the add-on shares: booleans,
whole numbers, seconds, text, secrets, ``SameSite``, and ``env:NAME``
values; a reader of one library's own option lives beside that library.
"""

import os
import re
from collections.abc import Callable, Mapping
from typing import Any

from pyramid.settings import falsey, truthy

from .exceptions import SettingsError
from .masking import without_password

#: A value with this prefix names an environment variable.
ENV_PREFIX = "env:"

#: The words a boolean option takes: Pyramid's ``asbool`` words, any case.
BOOLEAN_WORDS = "true, yes, on, y, t, 1 or false, no, off, n, f, 0"

#: Ten years: the longest lifetime a timeout option takes.
LONGEST_SECONDS = 315360000

#: What ``samesite`` takes, normalised to the attribute's own spelling.
SAMESITE_VALUES = {"strict": "Strict", "lax": "Lax", "none": "None"}

#: A whole number as settings write it: ASCII digits only (``str.isdigit`` takes
#: superscripts and other scripts' digits).
_DIGITS = re.compile(r"[0-9]+")


class Refused(ValueError):
    """A value an option does not take: ``accepts`` says what it takes, or
    ``problem`` says all there is to say after the key."""

    def __init__(self, accepts: str = "", problem: str | None = None) -> None:
        super().__init__(accepts)
        self.accepts = accepts
        self.problem = problem

    def naming(self, key: str, value: Any, secret: bool = False) -> SettingsError:
        """The :class:`SettingsError` of this refusal of ``key = value``; a
        ``secret`` value is shown as ``...``."""
        if self.problem is not None:
            return SettingsError(f"{key} {self.problem}")
        return SettingsError(
            f"{key} = {'...' if secret else shown(value)} is not valid: it takes {self.accepts}"
        )


Reader = Callable[[Any], Any]


def shown(value: Any) -> str:
    """How an error shows a value: a URL (or a list of them) keeps no password."""
    if isinstance(value, str):
        return repr(without_password(value))
    if isinstance(value, tuple | list):
        return repr(type(value)(without_password(str(part)) for part in value))
    return repr(value)


def read(key: str, value: Any, reader: Reader, secret: bool = False) -> Any:
    """``reader(value)``; a refusal is a :class:`SettingsError` naming ``key``."""
    try:
        return reader(value)
    except Refused as refused:
        raise refused.naming(key, value, secret) from None


def read_options(
    options: Mapping[str, Any],
    readers: Mapping[str, Reader],
    key: Callable[[str], str],
    secrets: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """``options`` with each value that has a reader read by it; a refusal
    names ``key(option)`` and never shows an option of ``secrets``."""
    converted = dict(options)
    for option, value in options.items():
        reader = readers.get(option)
        if reader is not None:
            converted[option] = read(key(option), value, reader, option in secrets)
    return converted


# -- env: ---------------------------------------------------------------------------------


def from_environment(text: str, environ: Mapping[str, str]) -> str:
    """``text``, or for ``env:NAME`` the variable's value; unset or empty is refused."""
    if not text.startswith(ENV_PREFIX):
        return text
    variable = text[len(ENV_PREFIX) :]
    value = environ.get(variable)
    if value is None:
        raise Refused(problem=f"= {text}: the environment variable {variable!r} is not set")
    if not value.strip():
        raise Refused(problem=f"= {text}: the environment variable {variable!r} is empty")
    return value


def resolve_env(key: str, text: str) -> str:
    """``text``, or for ``env:NAME`` the environment variable's value; unset or
    empty is a :class:`SettingsError` naming ``key``."""
    return str(read(key, text, lambda value: from_environment(value, os.environ)))


# -- the readers --------------------------------------------------------------------------


def as_boolean(value: Any) -> bool:
    """``True`` or ``False`` from one of :data:`BOOLEAN_WORDS` (or a bool, 0 or 1)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | str):
        word = str(value).strip().lower()
        if word in truthy:
            return True
        if word in falsey:
            return False
    raise Refused(BOOLEAN_WORDS)


def whole_number(value: Any, accepts: str, minimum: int = 0, maximum: int | None = None) -> int:
    """A whole number from ``minimum`` to ``maximum``: ASCII digits, or an ``int``
    from code (not a bool); else refused saying it ``accepts``."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        number = int(value)
    else:
        raise Refused(accepts)
    if number < minimum or (maximum is not None and number > maximum):
        raise Refused(accepts)
    return number


def as_count(value: Any) -> int:
    """A whole number, 0 or more."""
    return whole_number(value, "a whole number (0 or more)")


def as_seconds(value: Any) -> int:
    """A whole number of seconds, 0 or more."""
    return whole_number(value, "a whole number of seconds (0 or more)")


def as_positive_seconds(value: Any) -> int:
    """A whole number of seconds, 1 to ten years."""
    return whole_number(
        value,
        f"a whole number of seconds, 1 to {LONGEST_SECONDS} (leave it out for no limit)",
        1,
        LONGEST_SECONDS,
    )


def as_optional_seconds(value: Any) -> int | None:
    """A whole number of seconds, or ``None`` for ``none``."""
    if value is None or (isinstance(value, str) and value.strip().lower() == "none"):
        return None
    return whole_number(value, "a whole number of seconds (0 or more), or none")


def as_samesite(value: Any) -> str | None:
    """``Strict``, ``Lax`` or ``None`` (the attribute, literally), any case;
    an empty value is ``None`` the Python value: no SameSite attribute."""
    accepts = "Strict, Lax, None (any case), or nothing for no SameSite attribute"
    if not isinstance(value, str):
        raise Refused(accepts)
    word = value.strip().lower()
    if not word:
        return None
    if word not in SAMESITE_VALUES:
        raise Refused(accepts)
    return SAMESITE_VALUES[word]


def as_text(value: Any) -> str:
    """Text, without the spaces around it."""
    if not isinstance(value, str):
        raise Refused("text")
    return value.strip()


def as_nonempty_text(value: Any) -> str:
    """Text that is not blank, without the spaces around it."""
    if not isinstance(value, str) or not value.strip():
        raise Refused("text")
    return value.strip()


def as_optional_text(value: Any) -> str | None:
    """Text, or ``None`` for ``none`` or nothing."""
    text = as_text(value)
    return None if text.lower() in ("", "none") else text


def as_secret(value: Any) -> str:
    """A secret: text that is neither empty nor the word ``none``.  Kept as given."""
    if not isinstance(value, str):
        raise Refused("text")
    if not value.strip():
        raise Refused(
            problem="is empty: anyone could forge or read this namespace's cookies; "
            "set a long random value"
        )
    if value.strip().lower() == "none":
        raise Refused(
            problem="is the word 'none', a placeholder rather than a secret; "
            "set a long random value"
        )
    return value
