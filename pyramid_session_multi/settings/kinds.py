"""The factory kinds (``factory = signed``, ``nacl``, ``redis``, ``beaker``): one
builder each, reading that library's options and calling its own settings reader
where it has one."""

import inspect
from collections.abc import Callable
from importlib import import_module
from typing import Any

from pyramid.session import JSONSerializer

from ..exceptions import SettingsError
from ..values import (
    BOOLEAN_WORDS,
    Reader,
    Refused,
    as_boolean,
    as_count,
    as_optional_seconds,
    as_samesite,
    as_seconds,
    as_secret,
    as_text,
)
from .readers import (
    PREFIX,
    Options,
    as_cookie_domain,
    as_cookie_name,
    as_cookie_path,
    as_hash_algorithm,
    as_nacl_secret,
    convert,
    parameters_of,
    pickle_serializer,
    refuse_unknown_options,
    require_library,
    require_option,
    serializer_reader,
    setting_key,
    shown_option,
)

Builder = Callable[[str, Options, Callable[[Any], Any]], Any]

#: The option each factory kind's ``secret_fallbacks`` stand in for.
SECRET_OF_KIND = {"signed": "secret", "nacl": "secret", "redis": "secret", "beaker": "secret"}

#: The option that makes each factory kind's cookie ``Secure``.
SECURE_OF_KIND = {
    "signed": "secure",
    "nacl": "secure",
    "redis": "cookie_secure",
    "beaker": "secure",
}


# -- the factory kinds -------------------------------------------------------------------

#: The cookie options pyramid's cookie sessions share (signed and nacl).
_COOKIE_SESSION_READERS: dict[str, Reader] = {
    "cookie_name": as_cookie_name,
    "max_age": as_optional_seconds,
    "timeout": as_optional_seconds,
    "reissue_time": as_optional_seconds,
    "path": as_cookie_path,
    "domain": as_cookie_domain,
    "secure": as_boolean,
    "httponly": as_boolean,
    "set_on_exception": as_boolean,
    "samesite": as_samesite,
}


def _signed(namespace: str, options: Options, resolve: Callable[[Any], Any]) -> Any:
    from pyramid.session import SignedCookieSessionFactory

    refuse_unknown_options(namespace, "signed", options, parameters_of(SignedCookieSessionFactory))
    require_option(namespace, options, "secret", "for signed sessions")
    readers = {
        **_COOKIE_SESSION_READERS,
        "secret": as_secret,
        "salt": as_text,
        "hashalg": as_hash_algorithm,
        "serializer": serializer_reader(
            resolve,
            {"json": lambda word: JSONSerializer(), "pickle": lambda word: pickle_serializer()},
        ),
    }
    return SignedCookieSessionFactory(**convert(namespace, options, readers))


def with_library_reader(
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
                    f"{setting_key(namespace, option)} = {shown_option(option, value)} "
                    "is not accepted "
                    f"by the {kind} library's settings reader: "
                    f"{type(option_exc).__name__}: {option_exc}"
                ) from exc
        raise SettingsError(
            f"{PREFIX}{namespace}: the {kind} library's settings reader refused these "
            f"options ({', '.join(sorted(options))}): {type(exc).__name__}: {exc}"
        ) from exc


def _nacl(namespace: str, options: Options, resolve: Callable[[Any], Any]) -> Any:
    nacl = require_library("nacl", "pyramid_nacl_session", "nacl", namespace)
    refuse_unknown_options(
        namespace, "nacl", options, parameters_of(nacl.EncryptedCookieSessionFactory)
    )
    require_option(namespace, options, "secret", "for nacl sessions")
    # Its reader converts with a lenient asbool, passes an unknown serializer
    # through and leaves numbers as text: every value is read here first.
    readers = {
        **_COOKIE_SESSION_READERS,
        "secret": as_nacl_secret,
        # its reader knows these words
        "serializer": serializer_reader(resolve, {"json": str, "pickle": str}),
    }
    return with_library_reader(
        namespace,
        "nacl",
        convert(namespace, options, readers),
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
    from ..stores.redis import TOPOLOGY_OPTIONS, RedisClientCallable, topology_from_options

    if "redis_client_callable" in options:
        addon_only = sorted((TOPOLOGY_OPTIONS - library_options) & set(options))
        if addon_only:
            raise SettingsError(
                f"{setting_key(namespace, addon_only[0])} and "
                f"{setting_key(namespace, 'redis_client_callable')}"
                " are both given: the application's client callable makes its own "
                "connection; give one of them"
            )
        return options
    topology = topology_from_options(options, key=lambda option: setting_key(namespace, option))
    connected = {k: v for k, v in options.items() if k not in TOPOLOGY_OPTIONS}
    connected["redis_client_callable"] = RedisClientCallable(topology)
    return connected


def _redis(namespace: str, options: Options, resolve: Callable[[Any], Any]) -> Any:
    redis_sessions = require_library("redis", "pyramid_session_redis", "redis", namespace)
    util = import_module("pyramid_session_redis.util")
    from ..stores.redis import TOPOLOGY_OPTIONS

    library_options = parameters_of(redis_sessions.RedisSessionFactory)
    refuse_unknown_options(namespace, "redis", options, library_options | TOPOLOGY_OPTIONS)
    if "secret" in options and "cookie_signer" in options:
        raise SettingsError(
            f"{setting_key(namespace, 'secret')} and {setting_key(namespace, 'cookie_signer')}: "
            "redis sessions take one of them, not both"
        )
    if "cookie_signer" not in options:
        require_option(namespace, options, "secret", "for redis sessions (or cookie_signer)")
    options = _redis_connection(namespace, options, library_options)
    # the library's own lists of what its reader converts, read with the add-on's readers
    readers: dict[str, Reader] = {option: as_text for option in getattr(util, "configs_str", ())}
    readers.update({option: as_boolean for option in getattr(util, "configs_bool", ())})
    readers.update({option: as_count for option in getattr(util, "configs_int", ())})
    readers.update(
        {
            option: _none_for_redis(as_optional_seconds)
            for option in getattr(util, "configs_int_none", ())
        }
    )
    readers.update(
        secret=as_secret,
        cookie_samesite=as_samesite,
        cookie_name=as_cookie_name,
        cookie_path=as_cookie_path,
        cookie_domain=as_cookie_domain,
    )
    options = convert(namespace, options, readers)
    for option in util.configs_dotable:  # as the library's own includeme does
        if option in options:
            options[option] = resolve(options[option])
    return with_library_reader(
        namespace,
        "redis",
        options,
        "redis.sessions.",
        redis_sessions.session_factory_from_settings,
    )


#: Beaker's options that its session class does not take but pyramid_beaker reads.
BEAKER_OWN_OPTIONS = {"cookie_on_exception", "constant_csrf_token", "auto", "session_class"}


def _beaker_cookie_expires(value: Any) -> bool | int:
    try:
        return as_boolean(value)
    except Refused:
        pass
    try:
        return as_seconds(value)
    except Refused:
        raise Refused(f"{BOOLEAN_WORDS}, or a whole number of seconds") from None


_BEAKER_READERS: dict[str, Reader] = {
    "secret": as_secret,
    "validate_key": as_secret,
    "encrypt_key": as_secret,
    "key": as_cookie_name,
    "timeout": as_optional_seconds,
    "cookie_expires": _beaker_cookie_expires,
    "cookie_domain": as_cookie_domain,
    "cookie_path": as_cookie_path,
    "secure": as_boolean,
    "httponly": as_boolean,
    "samesite": as_samesite,
    "save_accessed_time": as_boolean,
    "auto": as_boolean,
    "invalidate_corrupt": as_boolean,
    "use_cookies": as_boolean,
    "cookie_on_exception": as_boolean,
    "encrypt_nonce_bits": as_count,
    "data_dir": as_text,
    "lock_dir": as_text,
    "url": as_text,
    "table_name": as_text,
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
        f"{setting_key(namespace, 'type')} = {given!r} is not valid: it takes one of "
        f"{', '.join(known)} (the Beaker session types installed)"
    )


def _beaker(namespace: str, options: Options, resolve: Callable[[Any], Any]) -> Any:
    pyramid_beaker = require_library("beaker", "pyramid_beaker", "beaker", namespace)
    from beaker.session import CookieSession, Session

    options = dict(options)
    if "cookie_name" in options:
        convert(namespace, {"cookie_name": options["cookie_name"]}, {"cookie_name": as_cookie_name})
        cookie_name = options.pop("cookie_name")
        if "key" in options and options["key"] != cookie_name:
            raise SettingsError(
                f"{setting_key(namespace, 'cookie_name')} = {cookie_name!r} and "
                f"{setting_key(namespace, 'key')} = {options['key']!r} name two cookies; Beaker "
                "writes its key: give one of them, or the same name to both"
            )
        options["key"] = cookie_name
    kind, namespace_class = _beaker_type(namespace, options)
    if "type" in options:
        options["type"] = kind
    if kind == "ext:database" and isinstance(options.get("url"), str):
        options["url"] = _guarded_database_url(namespace, options["url"])
    known = parameters_of(Session.__init__) - {"self", "request"} | BEAKER_OWN_OPTIONS
    needs = list(_BEAKER_NEEDS.get(kind, ()))
    if namespace_class is None:
        known |= parameters_of(CookieSession.__init__) - {"self", "request"}
    else:
        init = inspect.signature(namespace_class.__init__).parameters
        known |= parameters_of(namespace_class.__init__) - {"self", "namespace"}
        needs += [
            (name,)
            for name, parameter in init.items()
            if name not in ("self", "namespace")
            and parameter.default is parameter.empty
            and parameter.kind not in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL)
        ]
    refuse_unknown_options(namespace, "beaker", options, known)
    for choices in needs:
        if not any(option in options for option in choices):
            keys = " or ".join(setting_key(namespace, option) for option in choices)
            raise SettingsError(f"{keys} is required for type = {kind} (Beaker)")
    readers = dict(_BEAKER_READERS)
    readers["data_serializer"] = _beaker_serializer
    return with_library_reader(
        namespace,
        "beaker",
        convert(namespace, options, readers),
        "session.",
        pyramid_beaker.session_factory_from_settings,
    )


def _guarded_database_url(namespace: str, url: str) -> str:
    """An ``ext:database`` URL naming the circuit breaker's SQLAlchemy plugin
    (see :mod:`..stores.sql`), its ``breaker_interval`` and
    ``statement_timeout_client`` checked now."""
    try:
        from sqlalchemy import make_url
        from sqlalchemy.exc import ArgumentError
    except ImportError:  # Beaker says SQLAlchemy is missing when it first needs it
        return url

    from ..masking import without_password
    from ..stores.sql import (
        INTERVAL_PARAMETER,
        TIMEOUT_PARAMETER,
        as_interval,
        as_timeout,
        query_value,
        with_breaker_plugin,
    )

    try:
        parsed = make_url(url)
    except ArgumentError:  # Beaker's own error says what is wrong with it
        return url
    for name, check in ((INTERVAL_PARAMETER, as_interval), (TIMEOUT_PARAMETER, as_timeout)):
        if name in parsed.query:
            try:
                check(query_value(parsed, name, None))
            except ValueError as exc:
                raise SettingsError(
                    f"{setting_key(namespace, 'url')} = {without_password(url)!r}: {exc}"
                ) from None
    return with_breaker_plugin(url)


def _beaker_serializer(value: Any) -> str:
    word = as_text(value).lower() if isinstance(value, str) else None
    if word not in ("pickle", "json"):
        raise Refused("pickle or json")
    return word


#: ``factory = KIND`` values and what each builds.
FACTORY_KINDS: dict[str, Builder] = {
    "signed": _signed,
    "nacl": _nacl,
    "redis": _redis,
    "beaker": _beaker,
}
