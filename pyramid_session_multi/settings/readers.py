"""Reading the values of a namespace's settings that cookies and session libraries share.

Each reader takes what the settings hold and returns what the library wants,
or raises :class:`~pyramid_session_multi.values.Refused` saying what it
takes; :func:`convert` names the key.  The kinds every part of the add-on
reads (booleans, seconds, text, secrets, ``SameSite``) are in
:mod:`pyramid_session_multi.values`.
"""

import hashlib
import inspect
from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any

from ..cookies import cookie_attribute_problem, cookie_name_problem
from ..exceptions import SettingsError
from ..values import Reader, Refused, as_secret, as_text, read_options, shown

#: The prefix of every key the settings are read from.
PREFIX = "session_multi."

Options = dict[str, Any]

#: The options that hold a secret: never shown in an error, never empty.
SECRET_OPTIONS = frozenset({"secret", "validate_key", "encrypt_key"})


def setting_key(namespace: str, option: str) -> str:
    return f"{PREFIX}{namespace}.{option}"


def require_library(kind: str, module: str, extra: str, namespace: str) -> Any:
    try:
        return import_module(module)
    except ImportError as exc:
        raise SettingsError(
            f"{setting_key(namespace, 'factory')} = {kind} needs {module}, which is not installed; "
            f"pip install 'pyramid_session_multi[{extra}]'"
        ) from exc


def refuse_unknown_options(
    namespace: str, kind: str, options: Mapping[str, Any], known: set[str]
) -> None:
    unknown = sorted(set(options) - known)
    if unknown:
        raise SettingsError(
            f"{setting_key(namespace, unknown[0])}: {kind} sessions have no option {unknown[0]!r} "
            f"(known: {', '.join(sorted(known))})"
        )


def parameters_of(func: Any) -> set[str]:
    return {
        name
        for name, parameter in inspect.signature(func).parameters.items()
        if parameter.kind not in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL)
    }


def as_cookie_name(value: Any) -> str:
    """A cookie name: an RFC 6265 token that WebOb can set."""
    text = as_text(value)
    problem = cookie_name_problem(text)
    if problem is not None:
        raise Refused(problem=f"= {value!r} is not a cookie name: {problem}")
    return text


def as_cookie_attribute(value: Any) -> str:
    """A cookie attribute's value: ASCII with no ``;``, ``,``, whitespace or
    control characters."""
    if not isinstance(value, str):
        raise Refused("text")
    # the spaces around it are the .ini file's; any inside are refused
    text = value.strip()
    problem = cookie_attribute_problem(text)
    if problem is not None:
        raise Refused(problem=f"= {value!r} is refused: {problem}")
    return text


def as_cookie_path(value: Any) -> str:
    """A cookie's Path: an absolute URL path (``/`` first), read as any attribute.

    A browser replaces a Path that does not begin with ``/`` (or an empty
    one) with a default that depends on the URL that set the cookie, so a
    deletion sent from elsewhere would miss it.
    """
    text = as_cookie_attribute(value)
    if not text.startswith("/"):
        raise Refused(
            problem=f"= {value!r} is refused: a cookie path begins with / "
            "(a browser puts a relative or empty one under the URL that set it); "
            "write / or an absolute path such as /app"
        )
    return text


def as_cookie_domain(value: Any) -> str | None:
    """A cookie's Domain, read as any attribute; ``None`` for ``none`` or nothing."""
    text = as_cookie_attribute(value)
    return None if text.lower() in ("", "none") else text


def as_nacl_secret(value: Any) -> str | bytes:
    """pyramid_nacl_session's key: 64 hexadecimal characters (or, from code, 32 bytes)."""
    accepts = (
        "64 hexadecimal characters (32 bytes; make one with pyramid_nacl_session's gen-secret)"
    )
    if isinstance(value, bytes) and len(value) == 32:
        return value
    text = as_secret(value).strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise Refused(accepts) from None
    if len(key) != 32:
        raise Refused(accepts)
    return text


def as_hash_algorithm(value: Any) -> str:
    """The name of a :mod:`hashlib` algorithm."""
    accepts = f"a hashlib algorithm, such as {', '.join(sorted(hashlib.algorithms_guaranteed))}"
    name = as_text(value) if isinstance(value, str) else ""
    try:
        hashlib.new(name)
    except (ValueError, TypeError):
        raise Refused(accepts) from None
    return name


def pickle_serializer() -> Any:
    # looked up when asked for: pyramid warns on every lookup of this name
    return import_module("pyramid.session").PickleSerializer()


def serializer_reader(resolve: Callable[[Any], Any], words: Mapping[str, Reader]) -> Reader:
    """A reader of ``serializer``: one of ``words`` (any case; each maps the
    word to what the library takes), or a dotted name of a serializer."""
    accepts = (
        f"{', '.join(words)}, or the dotted name of a serializer (a class, or an object "
        "with loads and dumps)"
    )

    def read(value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() in words:
            word = value.strip().lower()
            return words[word](word)
        if not isinstance(value, str):
            found = value
        elif "." in value or ":" in value:
            try:
                found = resolve(value.strip())
            except Exception as exc:
                raise Refused(f"{accepts}; importing it failed: {exc}") from exc
        else:
            raise Refused(accepts)
        try:
            serializer = found() if inspect.isclass(found) else found
        except Exception as exc:
            raise Refused(f"{accepts}; making it failed: {exc}") from exc
        if not (hasattr(serializer, "loads") and hasattr(serializer, "dumps")):
            raise Refused(accepts)
        return serializer

    return read


def shown_option(option: str, value: Any) -> str:
    """How an error shows ``option``'s value: a secret as ``...``, a URL without its password."""
    return "..." if option in SECRET_OPTIONS else shown(value)


def convert(namespace: str, options: Options, readers: Mapping[str, Reader]) -> Options:
    """``options`` with each value read by its reader; a refusal names the key."""
    return read_options(
        options, readers, lambda option: setting_key(namespace, option), SECRET_OPTIONS
    )


def require_option(namespace: str, options: Options, option: str, why: str) -> None:
    if option not in options:
        raise SettingsError(f"{setting_key(namespace, option)} is required {why}")
