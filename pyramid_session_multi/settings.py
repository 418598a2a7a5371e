"""Namespaces declared in the application's settings (its .ini file).

::

    session_multi.namespaces = prefs account
    session_multi.prefs.factory = signed
    session_multi.prefs.secret = env:PREFS_SECRET
    session_multi.prefs.max_age = 31536000
    session_multi.account.factory = redis
    session_multi.account.secret = env:ACCOUNT_SECRET
    session_multi.account.redis_url = redis://127.0.0.1:6379/0

``factory`` is one of :data:`FACTORY_KINDS` or a dotted name of a callable
that takes the namespace's options (a dict of strings) and returns a session
factory.  Every other key is the chosen library's own option, handed to that
library's own settings reader where it has one; ``discriminator``,
``validator``, ``bound_to`` and ``cookie_name`` are the add-on's.

Every value is checked at start-up, before any library sees it, and a
mistake is a :class:`SettingsError` naming the key and what it takes:

- a value ``env:NAME`` is read from the environment variable ``NAME``, which
  must be set and not empty;
- a secret (``secret``, and Beaker's ``validate_key`` and ``encrypt_key``)
  must not be empty, blank or the word ``none``; it is never shown in an error;
- a boolean takes Pyramid's :func:`~pyramid.settings.asbool` words
  (:data:`BOOLEAN_WORDS`, any case) and nothing else;
- a number of seconds is a whole number, 0 or more (``none`` where the
  library allows no limit): ``3600s`` is refused;
- ``samesite`` (redis: ``cookie_samesite``) takes ``Strict``, ``Lax`` or
  ``None``, any case; ``None`` sends the attribute ``SameSite=None`` (which
  needs ``secure = true``). An empty value sends no SameSite attribute at
  all; leaving the key out keeps the library's default (``Lax`` for signed,
  nacl and beaker, none for redis);
- ``cookie_name`` is the one name of the namespace's cookie: the add-on
  registers it and the library writes it (for Beaker it is ``key``; both
  given and different is an error).

Fallbacks (see :func:`build_fallbacks`): ``secret_fallbacks = env:OLD1
env:OLD2`` reads sessions written under old secrets, and
``fallback.OPTION = …`` (``fallback.factory``, ``fallback.type``,
``fallback.key`` …) an old store; typos under either are refused naming
the key, as everywhere.

Values handed in from code may be numbers and booleans where the option is
one.  Each namespace is registered through the
:func:`~pyramid_session_multi.register_session_factory` directive, so
conflicts, overrides and introspection treat it like one registered in code.
"""

import hashlib
import inspect
import os
import re
from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any

from pyramid.config import Configurator
from pyramid.config.actions import ActionInfo
from pyramid.exceptions import ConfigurationError
from pyramid.session import JSONSerializer
from pyramid.settings import aslist, falsey, truthy

from .budget import CookieBudget
from .checks import CHECK_IDS, LOGOUT_PATH_SETTING, SILENCE_SETTING
from .config import (
    INTROSPECTION_CATEGORY,
    LATE_ORDER,
    get_manager_config,
    register_session_factory,
)
from .cookies import cookie_attribute_problem, cookie_name_problem, discover_cookie
from .events import id_hash_key
from .failures import ON_SAVE_ERROR, REPORT
from .masking import without_password

#: The prefix of every key this module reads.
PREFIX = "session_multi."

#: Keys under the prefix that are not namespaces.
GLOBAL_KEYS = frozenset(
    {
        "namespaces",
        "check.silence",
        "check.logout_path",
        "cookie_limit",
        "oversize",
        "cookie_header_limit",
        "id_hash_key",
        "revocations",
    }
)

#: The add-on's own keys in a namespace; every other key is the library's.
#: ``cookie_name`` is both: the library is told it too (Beaker as ``key``).
ADDON_KEYS = frozenset(
    {
        "factory",
        "discriminator",
        "validator",
        "bound_to",
        "secret_fallbacks",
        "idle_timeout",
        "absolute_timeout",
        "partitioned",
        "on_save_error",
    }
)

#: Options under this prefix describe a namespace's fallback store
#: (``session_multi.NS.fallback.factory = beaker`` …); see :func:`build_fallbacks`.
FALLBACK_PREFIX = "fallback."

#: The option each factory kind's ``secret_fallbacks`` stand in for.
_SECRET_OF_KIND = {"signed": "secret", "nacl": "secret", "redis": "secret", "beaker": "secret"}

#: A value with this prefix names an environment variable.
ENV_PREFIX = "env:"

Options = dict[str, Any]
Builder = Callable[[str, Options, Callable[[Any], Any]], Any]


class SettingsError(ConfigurationError):  # type: ignore[misc]
    """A mistake in the ``session_multi.*`` settings; the message names the key."""


def _key(namespace: str, option: str) -> str:
    return f"{PREFIX}{namespace}.{option}"


def _require(kind: str, module: str, extra: str, namespace: str) -> Any:
    try:
        return import_module(module)
    except ImportError as exc:
        raise SettingsError(
            f"{_key(namespace, 'factory')} = {kind} needs {module}, which is not installed; "
            f"pip install 'pyramid_session_multi[{extra}]'"
        ) from exc


def _unknown_options(
    namespace: str, kind: str, options: Mapping[str, Any], known: set[str]
) -> None:
    unknown = sorted(set(options) - known)
    if unknown:
        raise SettingsError(
            f"{_key(namespace, unknown[0])}: {kind} sessions have no option {unknown[0]!r} "
            f"(known: {', '.join(sorted(known))})"
        )


def _parameters(func: Any) -> set[str]:
    return {
        name
        for name, parameter in inspect.signature(func).parameters.items()
        if parameter.kind not in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL)
    }


# -- reading one value ---------------------------------------------------------------
#
# Each reader takes what the settings hold (text from an .ini file, or a
# number or boolean handed in from code) and returns what the library wants,
# or raises _Refused saying what it takes; _convert names the key.

#: The words a boolean option takes: Pyramid's ``asbool`` words, any case.
BOOLEAN_WORDS = "true, yes, on, y, t, 1 or false, no, off, n, f, 0"

#: What ``samesite`` takes, normalised to the attribute's own spelling.
_SAMESITE_VALUES = {"strict": "Strict", "lax": "Lax", "none": "None"}

#: The options that hold a secret: never shown in an error, never empty.
_SECRET_OPTIONS = frozenset({"secret", "validate_key", "encrypt_key"})


class _Refused(ValueError):
    """A value an option does not take: ``accepts`` says what it takes, or
    ``problem`` says all there is to say after the key."""

    def __init__(self, accepts: str = "", problem: str | None = None) -> None:
        super().__init__(accepts)
        self.accepts = accepts
        self.problem = problem


Reader = Callable[[Any], Any]


def _as_boolean(value: Any) -> bool:
    """``True`` or ``False`` from one of :data:`BOOLEAN_WORDS` (or a bool, 0 or 1)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | str):
        word = str(value).strip().lower()
        if word in truthy:
            return True
        if word in falsey:
            return False
    raise _Refused(BOOLEAN_WORDS)


#: A whole number as settings write it: ASCII digits only (``str.isdigit`` takes
#: superscripts and other scripts' digits).
_DIGITS = re.compile(r"[0-9]+")


def _whole(value: Any, accepts: str, minimum: int = 0) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        number = int(value)
    else:
        raise _Refused(accepts)
    if number < minimum:
        raise _Refused(accepts)
    return number


def _as_seconds(value: Any) -> int:
    """A whole number of seconds, 0 or more."""
    return _whole(value, "a whole number of seconds (0 or more)")


def _as_positive_seconds(value: Any) -> int:
    """A whole number of seconds, 1 to ten years."""
    accepts = "a whole number of seconds, 1 to 315360000 (leave it out for no limit)"
    number = _whole(value, accepts, 1)
    if number > 315360000:
        raise _Refused(accepts)
    return number


def _on_save_error(namespace: str, options: Mapping[str, Any]) -> str:
    """A namespace's ``on_save_error`` option: ``report`` (the default) or ``fail``."""
    value = options.get("on_save_error", REPORT)
    word = value.strip().lower() if isinstance(value, str) else value
    if word not in ON_SAVE_ERROR:
        raise SettingsError(
            f"{_key(namespace, 'on_save_error')} = {value!r} is not valid: it takes "
            f"{' or '.join(ON_SAVE_ERROR)}"
        )
    return str(word)


def _partitioned(namespace: str, options: Mapping[str, Any], factory: Any, libraries: Any) -> bool:
    """A namespace's ``partitioned`` option; refused where its cookie is not ``Secure``."""
    if "partitioned" not in options:
        return False
    partitioned = bool(
        _convert(namespace, {"partitioned": options["partitioned"]}, {"partitioned": _as_boolean})[
            "partitioned"
        ]
    )
    cookie = discover_cookie(factory, libraries) or {}
    if partitioned and "secure" in cookie and not cookie["secure"]:
        kind = str(options.get("factory", "")).strip().lower()
        secure = _key(namespace, _SECURE_OF_KIND.get(kind, "secure"))
        raise SettingsError(
            f"{_key(namespace, 'partitioned')} = {options['partitioned']!r} needs a Secure "
            f"cookie (browsers refuse a Partitioned cookie without it): set {secure} = true"
        )
    return partitioned


#: The option that makes each factory kind's cookie ``Secure``.
_SECURE_OF_KIND = {
    "signed": "secure",
    "nacl": "secure",
    "redis": "cookie_secure",
    "beaker": "secure",
}


#: The add-on's lifetime options of a namespace (see :doc:`/narr/lifetimes`).
_LIFETIME_READERS: dict[str, Reader] = {
    "idle_timeout": _as_positive_seconds,
    "absolute_timeout": _as_positive_seconds,
}


def _lifetimes(namespace: str, options: Mapping[str, Any]) -> dict[str, int]:
    """A namespace's ``idle_timeout`` and ``absolute_timeout``, those it sets."""
    given = {option: options[option] for option in _LIFETIME_READERS if option in options}
    return _convert(namespace, given, _LIFETIME_READERS)


def _as_optional_seconds(value: Any) -> int | None:
    """A whole number of seconds, or ``None`` for ``none``."""
    if value is None or (isinstance(value, str) and value.strip().lower() == "none"):
        return None
    return _whole(value, "a whole number of seconds (0 or more), or none")


def _as_count(value: Any) -> int:
    """A whole number, 0 or more."""
    return _whole(value, "a whole number (0 or more)")


def _as_samesite(value: Any) -> str | None:
    """``Strict``, ``Lax`` or ``None`` (the attribute, literally), any case;
    an empty value is ``None`` the Python value: no SameSite attribute."""
    accepts = "Strict, Lax, None (any case), or nothing for no SameSite attribute"
    if not isinstance(value, str):
        raise _Refused(accepts)
    word = value.strip().lower()
    if not word:
        return None
    if word not in _SAMESITE_VALUES:
        raise _Refused(accepts)
    return _SAMESITE_VALUES[word]


def _as_text(value: Any) -> str:
    """Text, without the spaces around it."""
    if not isinstance(value, str):
        raise _Refused("text")
    return value.strip()


def _as_optional_text(value: Any) -> str | None:
    """Text, or ``None`` for ``none`` or nothing."""
    text = _as_text(value)
    return None if text.lower() in ("", "none") else text


def _as_cookie_name(value: Any) -> str:
    """A cookie name: an RFC 6265 token that WebOb can set."""
    text = _as_text(value)
    problem = cookie_name_problem(text)
    if problem is not None:
        raise _Refused(problem=f"= {value!r} is not a cookie name: {problem}")
    return text


def _as_cookie_attribute(value: Any) -> str:
    """A cookie attribute's value: ASCII with no ``;``, ``,``, whitespace or
    control characters."""
    if not isinstance(value, str):
        raise _Refused("text")
    # the spaces around it are the .ini file's; any inside are refused
    text = value.strip()
    problem = cookie_attribute_problem(text)
    if problem is not None:
        raise _Refused(problem=f"= {value!r} is refused: {problem}")
    return text


def _as_cookie_path(value: Any) -> str:
    """A cookie's Path: an absolute URL path (``/`` first), read as any attribute.

    A browser replaces a Path that does not begin with ``/`` (or an empty
    one) with a default that depends on the URL that set the cookie, so a
    deletion sent from elsewhere would miss it.
    """
    text = _as_cookie_attribute(value)
    if not text.startswith("/"):
        raise _Refused(
            problem=f"= {value!r} is refused: a cookie path begins with / "
            "(a browser puts a relative or empty one under the URL that set it); "
            "write / or an absolute path such as /app"
        )
    return text


def _as_cookie_domain(value: Any) -> str | None:
    """A cookie's Domain, read as any attribute; ``None`` for ``none`` or nothing."""
    text = _as_cookie_attribute(value)
    return None if text.lower() in ("", "none") else text


def _as_secret(value: Any) -> str:
    """A secret: text that is neither empty nor the word ``none``.  Kept as given."""
    if not isinstance(value, str):
        raise _Refused("text")
    if not value.strip():
        raise _Refused(
            problem="is empty: anyone could forge or read this namespace's cookies; "
            "set a long random value"
        )
    if value.strip().lower() == "none":
        raise _Refused(
            problem="is the word 'none', a placeholder rather than a secret; "
            "set a long random value"
        )
    return value


def _as_nacl_secret(value: Any) -> str | bytes:
    """pyramid_nacl_session's key: 64 hexadecimal characters (or, from code, 32 bytes)."""
    accepts = (
        "64 hexadecimal characters (32 bytes; make one with pyramid_nacl_session's gen-secret)"
    )
    if isinstance(value, bytes) and len(value) == 32:
        return value
    text = _as_secret(value).strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise _Refused(accepts) from None
    if len(key) != 32:
        raise _Refused(accepts)
    return text


def _as_hash_algorithm(value: Any) -> str:
    """The name of a :mod:`hashlib` algorithm."""
    accepts = f"a hashlib algorithm, such as {', '.join(sorted(hashlib.algorithms_guaranteed))}"
    name = _as_text(value) if isinstance(value, str) else ""
    try:
        hashlib.new(name)
    except (ValueError, TypeError):
        raise _Refused(accepts) from None
    return name


def _pickle_serializer() -> Any:
    # looked up when asked for: pyramid warns on every lookup of this name
    return import_module("pyramid.session").PickleSerializer()


def _serializer_reader(resolve: Callable[[Any], Any], words: Mapping[str, Reader]) -> Reader:
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
                raise _Refused(f"{accepts}; importing it failed: {exc}") from exc
        else:
            raise _Refused(accepts)
        try:
            serializer = found() if inspect.isclass(found) else found
        except Exception as exc:
            raise _Refused(f"{accepts}; making it failed: {exc}") from exc
        if not (hasattr(serializer, "loads") and hasattr(serializer, "dumps")):
            raise _Refused(accepts)
        return serializer

    return read


def _shown(option: str, value: Any) -> str:
    if option in _SECRET_OPTIONS:
        return "..."
    return repr(without_password(value) if isinstance(value, str) else value)


def _convert(namespace: str, options: Options, readers: Mapping[str, Reader]) -> Options:
    """``options`` with each value read by its reader; a refusal names the key."""
    converted = dict(options)
    for option, value in options.items():
        reader = readers.get(option)
        if reader is None:
            continue
        try:
            converted[option] = reader(value)
        except _Refused as refused:
            key = _key(namespace, option)
            if refused.problem is not None:
                raise SettingsError(f"{key} {refused.problem}") from None
            raise SettingsError(
                f"{key} = {_shown(option, value)} is not valid: it takes {refused.accepts}"
            ) from None
    return converted


def _require_option(namespace: str, options: Options, option: str, why: str) -> None:
    if option not in options:
        raise SettingsError(f"{_key(namespace, option)} is required {why}")


# -- the factory kinds -------------------------------------------------------------------

#: The cookie options pyramid's cookie sessions share (signed and nacl).
_COOKIE_SESSION_READERS: dict[str, Reader] = {
    "cookie_name": _as_cookie_name,
    "max_age": _as_optional_seconds,
    "timeout": _as_optional_seconds,
    "reissue_time": _as_optional_seconds,
    "path": _as_cookie_path,
    "domain": _as_cookie_domain,
    "secure": _as_boolean,
    "httponly": _as_boolean,
    "set_on_exception": _as_boolean,
    "samesite": _as_samesite,
}


def _signed(namespace: str, options: Options, resolve: Callable[[Any], Any]) -> Any:
    from pyramid.session import SignedCookieSessionFactory

    _unknown_options(namespace, "signed", options, _parameters(SignedCookieSessionFactory))
    _require_option(namespace, options, "secret", "for signed sessions")
    readers = {
        **_COOKIE_SESSION_READERS,
        "secret": _as_secret,
        "salt": _as_text,
        "hashalg": _as_hash_algorithm,
        "serializer": _serializer_reader(
            resolve,
            {"json": lambda word: JSONSerializer(), "pickle": lambda word: _pickle_serializer()},
        ),
    }
    return SignedCookieSessionFactory(**_convert(namespace, options, readers))


def _with_library_reader(
    namespace: str,
    kind: str,
    options: Options,
    prefix: str,
    read: Callable[[dict[str, Any]], Any],
) -> Any:
    """Call a library's own settings reader; a failure names the key to blame.

    The add-on has read every value it knows first, so a refusal here is one
    the library alone knows of.
    """

    def attempt(subset: Options) -> Any:
        return read({prefix + option: value for option, value in subset.items()})

    try:
        return attempt(options)
    except Exception as exc:
        # find the one option the reader refuses, to name its key
        required = {k: v for k, v in options.items() if k in ("secret", "cookie_signer")}
        for option, value in options.items():
            if option in required:
                continue
            try:
                attempt({**required, option: value})
            except Exception as option_exc:
                raise SettingsError(
                    f"{_key(namespace, option)} = {_shown(option, value)} is not accepted "
                    f"by the {kind} library's settings reader: "
                    f"{type(option_exc).__name__}: {option_exc}"
                ) from exc
        raise SettingsError(
            f"{PREFIX}{namespace}: the {kind} library's settings reader refused these "
            f"options ({', '.join(sorted(options))}): {type(exc).__name__}: {exc}"
        ) from exc


def _nacl(namespace: str, options: Options, resolve: Callable[[Any], Any]) -> Any:
    nacl = _require("nacl", "pyramid_nacl_session", "nacl", namespace)
    _unknown_options(namespace, "nacl", options, _parameters(nacl.EncryptedCookieSessionFactory))
    _require_option(namespace, options, "secret", "for nacl sessions")
    # Its reader converts with a lenient asbool, passes an unknown serializer
    # through and leaves numbers as text: every value is read here first.
    readers = {
        **_COOKIE_SESSION_READERS,
        "secret": _as_nacl_secret,
        # its reader knows these words
        "serializer": _serializer_reader(resolve, {"json": str, "pickle": str}),
    }
    return _with_library_reader(
        namespace,
        "nacl",
        _convert(namespace, options, readers),
        "session.",
        nacl.session_factory_from_settings,
    )


def _none_for_redis(read: Reader) -> Reader:
    # pyramid_session_redis's reader takes the text "None" for no limit
    def reader(value: Any) -> Any:
        number = read(value)
        return "None" if number is None else number

    return reader


def _redis_connection(namespace: str, options: Options, library_options: set[str]) -> Options:
    """``options`` with those saying where Redis is read into a topology and
    replaced by a client callable of it (see :mod:`.stores.redis`); unchanged,
    but for the add-on's own such options, which are refused, where the
    application gives its own ``redis_client_callable``."""
    from .stores.redis import TOPOLOGY_OPTIONS, RedisClientCallable, topology_from_options

    if "redis_client_callable" in options:
        addon_only = sorted((TOPOLOGY_OPTIONS - library_options) & set(options))
        if addon_only:
            raise SettingsError(
                f"{_key(namespace, addon_only[0])} and {_key(namespace, 'redis_client_callable')}"
                " are both given: the application's client callable makes its own "
                "connection; give one of them"
            )
        return options
    topology = topology_from_options(options, key=lambda option: _key(namespace, option))
    connected = {k: v for k, v in options.items() if k not in TOPOLOGY_OPTIONS}
    connected["redis_client_callable"] = RedisClientCallable(topology)
    return connected


def _redis(namespace: str, options: Options, resolve: Callable[[Any], Any]) -> Any:
    redis_sessions = _require("redis", "pyramid_session_redis", "redis", namespace)
    util = import_module("pyramid_session_redis.util")
    from .stores.redis import TOPOLOGY_OPTIONS

    library_options = _parameters(redis_sessions.RedisSessionFactory)
    _unknown_options(namespace, "redis", options, library_options | TOPOLOGY_OPTIONS)
    if "secret" in options and "cookie_signer" in options:
        raise SettingsError(
            f"{_key(namespace, 'secret')} and {_key(namespace, 'cookie_signer')}: "
            "redis sessions take one of them, not both"
        )
    if "cookie_signer" not in options:
        _require_option(namespace, options, "secret", "for redis sessions (or cookie_signer)")
    options = _redis_connection(namespace, options, library_options)
    # the library's own lists of what its reader converts, read with the add-on's readers
    readers: dict[str, Reader] = {option: _as_text for option in getattr(util, "configs_str", ())}
    readers.update({option: _as_boolean for option in getattr(util, "configs_bool", ())})
    readers.update({option: _as_count for option in getattr(util, "configs_int", ())})
    readers.update(
        {
            option: _none_for_redis(_as_optional_seconds)
            for option in getattr(util, "configs_int_none", ())
        }
    )
    readers.update(
        secret=_as_secret,
        cookie_samesite=_as_samesite,
        cookie_name=_as_cookie_name,
        cookie_path=_as_cookie_path,
        cookie_domain=_as_cookie_domain,
    )
    options = _convert(namespace, options, readers)
    for option in util.configs_dotable:  # as the library's own includeme does
        if option in options:
            options[option] = resolve(options[option])
    return _with_library_reader(
        namespace,
        "redis",
        options,
        "redis.sessions.",
        redis_sessions.session_factory_from_settings,
    )


_BEAKER_OWN_OPTIONS = {"cookie_on_exception", "constant_csrf_token", "auto", "session_class"}


def _beaker_cookie_expires(value: Any) -> bool | int:
    try:
        return _as_boolean(value)
    except _Refused:
        pass
    try:
        return _as_seconds(value)
    except _Refused:
        raise _Refused(f"{BOOLEAN_WORDS}, or a whole number of seconds") from None


_BEAKER_READERS: dict[str, Reader] = {
    "secret": _as_secret,
    "validate_key": _as_secret,
    "encrypt_key": _as_secret,
    "key": _as_cookie_name,
    "timeout": _as_optional_seconds,
    "cookie_expires": _beaker_cookie_expires,
    "cookie_domain": _as_cookie_domain,
    "cookie_path": _as_cookie_path,
    "secure": _as_boolean,
    "httponly": _as_boolean,
    "samesite": _as_samesite,
    "save_accessed_time": _as_boolean,
    "auto": _as_boolean,
    "invalidate_corrupt": _as_boolean,
    "use_cookies": _as_boolean,
    "cookie_on_exception": _as_boolean,
    "encrypt_nonce_bits": _as_count,
    "data_dir": _as_text,
    "lock_dir": _as_text,
    "url": _as_text,
    "table_name": _as_text,
}

#: What a Beaker type needs beside the options its storage class requires:
#: each entry is one option, or options of which one will do.
_BEAKER_NEEDS: dict[str, tuple[tuple[str, ...], ...]] = {
    "cookie": (("validate_key",),),
    "file": (("data_dir", "file_dir"),),
    "dbm": (("data_dir", "dbm_dir"),),
    "ext:database": (("url",),),
    "database": (("url",),),
}


def _beaker_type(namespace: str, options: Options) -> tuple[str, Any]:
    """The Beaker session type the options name, and its storage class
    (``None`` for ``cookie``, which keeps the data in the cookie)."""
    from beaker.cache import clsmap

    given = options.get("type")
    if given is None:
        implied = "file" if options.get("data_dir") else "memory"
        return implied, clsmap[implied]
    text = given.strip() if isinstance(given, str) else ""
    for kind in (text, text.lower()):
        if kind == "cookie":
            return kind, None
        try:
            return kind, clsmap[kind]
        except Exception:
            continue
    # a failed lookup has loaded every installed back end into the map
    known = sorted({"cookie", *getattr(clsmap, "_clsmap", ())})
    raise SettingsError(
        f"{_key(namespace, 'type')} = {given!r} is not valid: it takes one of "
        f"{', '.join(known)} (the Beaker session types installed)"
    )


def _beaker(namespace: str, options: Options, resolve: Callable[[Any], Any]) -> Any:
    pyramid_beaker = _require("beaker", "pyramid_beaker", "beaker", namespace)
    from beaker.session import CookieSession, Session

    options = dict(options)
    if "cookie_name" in options:
        _convert(
            namespace, {"cookie_name": options["cookie_name"]}, {"cookie_name": _as_cookie_name}
        )
        cookie_name = options.pop("cookie_name")
        if "key" in options and options["key"] != cookie_name:
            raise SettingsError(
                f"{_key(namespace, 'cookie_name')} = {cookie_name!r} and "
                f"{_key(namespace, 'key')} = {options['key']!r} name two cookies; Beaker "
                "writes its key: give one of them, or the same name to both"
            )
        options["key"] = cookie_name
    kind, namespace_class = _beaker_type(namespace, options)
    if "type" in options:
        options["type"] = kind
    known = _parameters(Session.__init__) - {"self", "request"} | _BEAKER_OWN_OPTIONS
    needs = list(_BEAKER_NEEDS.get(kind, ()))
    if namespace_class is None:
        known |= _parameters(CookieSession.__init__) - {"self", "request"}
    else:
        init = inspect.signature(namespace_class.__init__).parameters
        known |= _parameters(namespace_class.__init__) - {"self", "namespace"}
        needs += [
            (name,)
            for name, parameter in init.items()
            if name not in ("self", "namespace")
            and parameter.default is parameter.empty
            and parameter.kind not in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL)
        ]
    _unknown_options(namespace, "beaker", options, known)
    for choices in needs:
        if not any(option in options for option in choices):
            keys = " or ".join(_key(namespace, option) for option in choices)
            raise SettingsError(f"{keys} is required for type = {kind} (Beaker)")
    readers = dict(_BEAKER_READERS)
    readers["data_serializer"] = _beaker_serializer
    return _with_library_reader(
        namespace,
        "beaker",
        _convert(namespace, options, readers),
        "session.",
        pyramid_beaker.session_factory_from_settings,
    )


def _beaker_serializer(value: Any) -> str:
    word = _as_text(value).lower() if isinstance(value, str) else None
    if word not in ("pickle", "json"):
        raise _Refused("pickle or json")
    return word


#: ``factory = KIND`` values and what each builds.
FACTORY_KINDS: dict[str, Builder] = {
    "signed": _signed,
    "nacl": _nacl,
    "redis": _redis,
    "beaker": _beaker,
}


def _value(key: str, text: str) -> str:
    """``text``, or for ``env:NAME`` the variable's value: unset or empty is an error."""
    if not text.startswith(ENV_PREFIX):
        return text
    variable = text[len(ENV_PREFIX) :]
    value = os.environ.get(variable)
    if value is None:
        raise SettingsError(f"{key} = {text}: the environment variable {variable!r} is not set")
    if not value.strip():
        raise SettingsError(f"{key} = {text}: the environment variable {variable!r} is empty")
    return value


def namespace_options(settings: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The ``session_multi.*`` settings, per namespace, checked and resolved.

    Returns ``{namespace: {option: value}}`` in the order of
    ``session_multi.namespaces``; raises :class:`SettingsError` for a
    namespace listed without ``factory``, options of an unlisted namespace,
    a key that is neither one of :data:`GLOBAL_KEYS` nor a namespace's, or an
    ``env:`` variable that is not set or is empty.
    """
    listed = aslist(settings.get(PREFIX + "namespaces", ""))
    found: dict[str, dict[str, Any]] = {namespace: {} for namespace in listed}
    for key, text in settings.items():
        if not key.startswith(PREFIX) or key[len(PREFIX) :] in GLOBAL_KEYS:
            continue
        namespace, dot, option = key[len(PREFIX) :].partition(".")
        if not dot or not option:
            raise SettingsError(
                f"{key} is not a setting of the add-on: expected {PREFIX}NAMESPACE.OPTION "
                f"or one of {', '.join(PREFIX + name for name in sorted(GLOBAL_KEYS))}"
            )
        if namespace not in found:
            raise SettingsError(
                f"{key}: namespace {namespace!r} is not listed in {PREFIX}namespaces "
                f"({' '.join(listed) or 'empty'}); add it there or remove its options"
            )
        if option == "secret_fallbacks" or not isinstance(text, str):
            found[namespace][option] = text  # each word may be env:, read by build_fallbacks
        else:
            found[namespace][option] = _value(key, text)
    for namespace, options in found.items():
        if "factory" not in options:
            raise SettingsError(
                f"{_key(namespace, 'factory')} is missing: say which session library "
                f"namespace {namespace!r} uses ({', '.join(FACTORY_KINDS)} or a dotted name)"
            )
    return found


def build_factory(namespace: str, options: Mapping[str, Any], resolve: Callable[[Any], Any]) -> Any:
    """The session factory that ``options`` (one namespace's settings) describe."""
    given = options["factory"]
    kind = given.strip() if isinstance(given, str) else given
    library_options = {
        k: v
        for k, v in options.items()
        if k not in ADDON_KEYS and not k.startswith(FALLBACK_PREFIX)
    }
    if isinstance(kind, str) and kind.lower() in FACTORY_KINDS:
        return FACTORY_KINDS[kind.lower()](namespace, library_options, resolve)
    if not isinstance(kind, str) or (":" not in kind and "." not in kind):
        raise SettingsError(
            f"{_key(namespace, 'factory')} = {given!r} is not a factory kind "
            f"({', '.join(FACTORY_KINDS)}) nor a dotted name"
        )
    try:
        make = resolve(kind)
    except Exception as exc:
        raise SettingsError(
            f"{_key(namespace, 'factory')} = {kind!r} cannot be imported: {exc}"
        ) from exc
    return make(library_options)


def build_fallbacks(
    namespace: str, options: Mapping[str, Any], resolve: Callable[[Any], Any]
) -> list[Any]:
    """The fallback factories one namespace's settings describe, in the order tried.

    ``secret_fallbacks = env:OLD1 env:OLD2`` (space-separated, each word
    ``env:`` or literal) builds one fallback per old secret: the namespace's
    own kind and options with that secret (Beaker's ``validate_key`` for
    ``type = cookie``, its ``secret`` otherwise).  ``fallback.OPTION = …``
    describes one more fallback, a store of its own, with the options a
    namespace takes (``fallback.factory = beaker``, ``fallback.type = file``,
    ``fallback.key = old_c`` …); it is tried after the secret fallbacks.
    Every mistake is a :class:`SettingsError` naming the key.
    """
    fallbacks: list[Any] = []
    own = {
        k: v
        for k, v in options.items()
        if k != "secret_fallbacks" and not k.startswith(FALLBACK_PREFIX)
    }
    if "secret_fallbacks" in options:
        key = _key(namespace, "secret_fallbacks")
        given = options["secret_fallbacks"]
        words = aslist(given) if isinstance(given, str) else list(given or ())
        if not words:
            raise SettingsError(f"{key} names no secret: give the old secrets, or remove it")
        kind = str(own.get("factory", "")).strip().lower()
        option = _SECRET_OF_KIND.get(kind)
        if option is None:
            raise SettingsError(
                f"{key}: secret fallbacks are built for the kinds "
                f"{', '.join(_SECRET_OF_KIND)}, not {own.get('factory')!r}; describe the "
                f"old factory with {_key(namespace, 'fallback.factory')} instead"
            )
        if kind == "beaker" and str(own.get("type", "")).strip().lower() == "cookie":
            option = "validate_key"
            try:
                corrupt = _as_boolean(own.get("invalidate_corrupt", False))
            except _Refused:
                corrupt = True  # not a boolean: its own reader says so, naming the key
            if not corrupt:
                raise SettingsError(
                    f"{key}: a Beaker cookie session raises on a cookie signed with an old "
                    f"key, so set {_key(namespace, 'invalidate_corrupt')} = true for its "
                    "fallbacks to read the old cookies"
                )
        if option not in own:
            raise SettingsError(
                f"{key}: the namespace has no {_key(namespace, option)} for the old "
                "secrets to stand in for"
            )
        seen: dict[Any, int] = {}
        for position, word in enumerate(words, 1):
            secret = _value(f"{key} (secret {position})", word) if isinstance(word, str) else word
            if secret in seen:
                raise SettingsError(
                    f"{key}: secrets {seen[secret]} and {position} are the same secret; "
                    "list each old secret once"
                )
            seen[secret] = position
            current = own[option]
            if isinstance(current, str):
                current = _value(_key(namespace, option), current)
            if secret == current:
                raise SettingsError(
                    f"{key}: secret {position} is the namespace's own "
                    f"{_key(namespace, option)}, which it reads already; give the old "
                    "secrets only"
                )
            fallbacks.append(
                build_factory(f"{namespace}.secret_fallbacks", {**own, option: secret}, resolve)
            )
    store = {
        k[len(FALLBACK_PREFIX) :]: v for k, v in options.items() if k.startswith(FALLBACK_PREFIX)
    }
    if store:
        misplaced = sorted(
            option
            for option in store
            if (option in ADDON_KEYS and option != "factory") or option.startswith(FALLBACK_PREFIX)
        )
        if misplaced:
            raise SettingsError(
                f"{_key(namespace, FALLBACK_PREFIX + misplaced[0])}: a fallback is a factory "
                "that old sessions are read with, and takes that factory's options only; "
                f"{misplaced[0]!r} is the namespace's own: set "
                f"{_key(namespace, misplaced[0])} instead, or remove it"
            )
        if "factory" not in store:
            raise SettingsError(
                f"{_key(namespace, 'fallback.factory')} is missing: say which session library "
                f"the fallback of namespace {namespace!r} reads ({', '.join(FACTORY_KINDS)} "
                "or a dotted name)"
            )
        fallbacks.append(build_factory(f"{namespace}.fallback", store, resolve))
    return fallbacks


class _SettingsActionInfo(ActionInfo):  # type: ignore[misc]
    """Where a namespace declared in the settings comes from, as Pyramid's
    conflict reports and the debug toolbar's introspection panel show it::

        Key session_multi.prefs.factory of the settings:
            session_multi.prefs.factory = signed

    ``file`` is ``"the settings"`` and ``line`` 0, for tools that read them.
    """

    def __init__(self, key: str, value: str) -> None:
        super().__init__("the settings", 0, "", f"{key} = {value}")
        #: the settings key that declared the namespace
        self.key = key

    def __str__(self) -> str:
        return f"Key {self.key} of the settings:\n    {self.src}"


def _check_global_settings(settings: Mapping[str, Any]) -> None:
    """Check the add-on's settings that are not a namespace's, at start-up.

    The cookie budget's (see :class:`~pyramid_session_multi.budget.CookieBudget`)
    and ``session_multi.id_hash_key`` (see :mod:`~pyramid_session_multi.events`);
    a mistake is a :class:`SettingsError` naming the key.
    """
    CookieBudget.from_settings(settings)
    try:
        id_hash_key(settings)
    except ValueError as exc:
        raise SettingsError(str(exc)) from None
    _check_listed_once(settings)
    _check_audit_settings(settings)


def _check_listed_once(settings: Mapping[str, Any]) -> None:
    """``session_multi.namespaces`` names each namespace once."""
    key = PREFIX + "namespaces"
    seen: set[str] = set()
    for namespace in aslist(settings.get(key, "")):
        if namespace in seen:
            raise SettingsError(
                f"{key}: namespace {namespace!r} is listed twice; list each namespace once"
            )
        seen.add(namespace)


def _check_audit_settings(settings: Mapping[str, Any]) -> None:
    """The deploy audit's settings (see :mod:`~pyramid_session_multi.checks`):
    ``check.logout_path`` is an absolute URL path, ``check.silence`` names
    only ids the audit has."""
    logout = settings.get(LOGOUT_PATH_SETTING)
    if logout is not None and (not isinstance(logout, str) or not logout.strip().startswith("/")):
        raise SettingsError(
            f"{LOGOUT_PATH_SETTING} = {logout!r}: the logout URL's path begins with / "
            "(as the browser sends it, such as /logout)"
        )
    unknown = [
        check_id
        for check_id in aslist(settings.get(SILENCE_SETTING, ""))
        if check_id not in CHECK_IDS
    ]
    if unknown:
        raise SettingsError(
            f"{SILENCE_SETTING}: {' '.join(unknown)} is no check's id; the ids are listed "
            "on the documentation's Cookie hygiene page (psm.E001, psm.W001, ...)"
        )


def _cookie_told(
    namespace: str, options: Mapping[str, Any], factory: Any, libraries: Any
) -> str | None:
    """The ``cookie_name`` to register: ``None`` where the factory's own is found,
    which must then be the one the settings name."""
    told = options.get("cookie_name")
    cookie = discover_cookie(factory, libraries)
    if cookie is None:
        return told
    if told is not None and (not isinstance(told, str) or told.strip() != cookie["name"]):
        raise SettingsError(
            f"{_key(namespace, 'cookie_name')} = {told!r}, but the factory "
            f"{options['factory']!r} writes the cookie {cookie['name']!r}: the add-on "
            "would end a cookie the library never writes; name the same cookie in both"
        )
    return None


def register_from_settings(config: Configurator) -> None:
    """Check the add-on's settings and register every namespace they declare,
    through the directive.

    Every mistake is a :class:`SettingsError` at start-up naming the key.  A
    namespace declared in the settings and also registered in code is a
    :class:`~pyramid.exceptions.ConfigurationError` at commit that names the
    settings key and the code's call site, wherever that code sits: an
    operator's settings are never silently overridden.
    """
    settings = config.registry.settings or {}
    _check_global_settings(settings)
    manager_config = get_manager_config(config.registry)
    libraries = manager_config.libraries if manager_config is not None else ()
    declared: dict[str, Any] = {}
    info = config.info
    for namespace, options in namespace_options(settings).items():
        lifetimes = _lifetimes(namespace, options)
        factory = declared[namespace] = build_factory(namespace, options, config.maybe_dotted)
        cookie_name = _cookie_told(namespace, options, factory, libraries)
        partitioned = _partitioned(namespace, options, factory, libraries)
        # conflict reports and introspection name the settings, not this module
        config.info = _SettingsActionInfo(_key(namespace, "factory"), options["factory"])
        try:
            register_session_factory(
                config,
                namespace,
                factory,
                discriminator=options.get("discriminator"),
                cookie_name=cookie_name,
                validator=options.get("validator"),
                bound_to=options.get("bound_to"),
                fallbacks=build_fallbacks(namespace, options, config.maybe_dotted) or None,
                partitioned=partitioned,
                on_save_error=_on_save_error(namespace, options),
                **lifetimes,
            )
        finally:
            config.info = info
    _revocations_from_settings(config, settings)
    if declared:
        registry = config.registry

        def check() -> None:
            _check_settings_kept(registry, declared)

        config.action((PREFIX, "settings kept"), check, order=LATE_ORDER)


#: The setting naming the revocation store.
REVOCATIONS_KEY = PREFIX + "revocations"


def _revocations_from_settings(config: Configurator, settings: Mapping[str, Any]) -> None:
    """``session_multi.revocations``: the revocation store's URL, set through the directive."""
    if REVOCATIONS_KEY not in settings:
        return
    from .revocation import set_revocation_store, store_from_url

    given = settings[REVOCATIONS_KEY]
    text = _value(REVOCATIONS_KEY, given) if isinstance(given, str) else given
    try:
        store = store_from_url(text)
    except ValueError as exc:
        raise SettingsError(f"{REVOCATIONS_KEY} {exc}") from None
    info = config.info
    config.info = _SettingsActionInfo(REVOCATIONS_KEY, store.describe())
    try:
        set_revocation_store(config, store)
    finally:
        config.info = info
    registry = config.registry

    def check() -> None:
        # a store set in code too overrides the include: refused, as for namespaces
        manager_config = get_manager_config(registry)
        if manager_config is not None and manager_config.revocations is not store:
            raise SettingsError(
                f"{REVOCATIONS_KEY} names a revocation store and the code sets another "
                "with config.set_revocation_store; remove one of them"
            )

    config.action((PREFIX, "revocations kept"), check, order=LATE_ORDER)


def _check_settings_kept(registry: Any, declared: Mapping[str, Any]) -> None:
    manager_config = get_manager_config(registry)
    assert manager_config is not None
    for namespace, factory in declared.items():
        namespace_config = manager_config.get(namespace)
        if namespace_config is not None and namespace_config.factory is factory:
            continue
        intr = registry.introspector.get(INTROSPECTION_CATEGORY, namespace)
        site = intr.action_info if intr is not None else "code"
        raise SettingsError(
            f"namespace {namespace!r} is declared in the settings ({_key(namespace, 'factory')}) "
            f"and registered in code at {site}; remove one of them"
        )
