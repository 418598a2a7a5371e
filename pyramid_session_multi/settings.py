"""Namespaces declared in the application's settings (its .ini file).

::

    session_multi.namespaces = prefs account
    session_multi.prefs.factory = signed
    session_multi.prefs.secret = env:PREFS_SECRET
    session_multi.prefs.max_age = 31536000
    session_multi.account.factory = redis
    session_multi.account.secret = env:ACCOUNT_SECRET
    session_multi.account.url = redis://127.0.0.1:6379/0

``factory`` is one of :data:`FACTORY_KINDS` or a dotted name of a callable
that takes the namespace's options (a dict of strings) and returns a session
factory.  Every other key is the chosen library's own option, converted from
text by that library's own settings reader where it has one; ``discriminator``,
``validator``, ``bound_to`` and ``cookie_name`` are the add-on's.  A value ``env:NAME`` is
read from the environment variable ``NAME``.  Each namespace is registered
through the :func:`~pyramid_session_multi.register_session_factory` directive,
so conflicts, overrides and introspection treat it like one registered in code.
"""

import inspect
import os
from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any

from pyramid.config import Configurator
from pyramid.config.actions import ActionInfo
from pyramid.exceptions import ConfigurationError
from pyramid.settings import asbool, aslist

from .config import (
    INTROSPECTION_CATEGORY,
    LATE_ORDER,
    get_manager_config,
    register_session_factory,
)

#: The prefix of every key this module reads.
PREFIX = "session_multi."

#: Keys under the prefix that are not namespaces.
GLOBAL_KEYS = frozenset(
    {
        "namespaces",
        "check.silence",
        "cookie_limit",
        "oversize",
        "cookie_header_limit",
        "id_hash_key",
    }
)

#: The add-on's own keys in a namespace; every other key is the library's.
#: ``cookie_name`` is both: the library is told it too (Beaker as ``key``).
ADDON_KEYS = frozenset({"factory", "discriminator", "validator", "bound_to"})

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


def _optional_int(text: str) -> int | None:
    return None if text.strip().lower() == "none" else int(text)


def _optional_str(text: str) -> str | None:
    return None if text.strip().lower() == "none" else text


_SIGNED_CONVERTERS: dict[str, Callable[[str], Any]] = {
    "max_age": _optional_int,
    "timeout": _optional_int,
    "reissue_time": _optional_int,
    "secure": asbool,
    "httponly": asbool,
    "set_on_exception": asbool,
    "domain": _optional_str,
    "samesite": _optional_str,
}


def _signed(namespace: str, options: Options, resolve: Callable[[Any], Any]) -> Any:
    from pyramid.session import SignedCookieSessionFactory

    _unknown_options(namespace, "signed", options, _parameters(SignedCookieSessionFactory))
    kwargs: Options = {}
    for option, text in options.items():
        converter = _SIGNED_CONVERTERS.get(option)
        try:
            if option == "serializer":
                kwargs[option] = resolve(text)() if isinstance(text, str) else text
            elif converter is not None:
                kwargs[option] = converter(text)
            else:
                kwargs[option] = text
        except (ValueError, TypeError, ImportError) as exc:
            raise SettingsError(
                f"{_key(namespace, option)} = {text!r} is not a valid value: {exc}"
            ) from exc
    if "secret" not in kwargs:
        raise SettingsError(f"{_key(namespace, 'secret')} is required for signed sessions")
    return SignedCookieSessionFactory(**kwargs)


def _with_library_reader(
    namespace: str,
    kind: str,
    options: Options,
    prefix: str,
    read: Callable[[dict[str, Any]], Any],
) -> Any:
    """Call a library's own settings reader; a failure names the key to blame."""

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
                    f"{_key(namespace, option)} = {value!r} is not accepted by the {kind} "
                    f"library's settings reader: {type(option_exc).__name__}: {option_exc}"
                ) from exc
        raise SettingsError(
            f"{PREFIX}{namespace}: the {kind} library's settings reader refused these "
            f"options: {type(exc).__name__}: {exc}"
        ) from exc


def _nacl(namespace: str, options: Options, resolve: Callable[[Any], Any]) -> Any:
    nacl = _require("nacl", "pyramid_nacl_session", "nacl", namespace)
    _unknown_options(namespace, "nacl", options, _parameters(nacl.EncryptedCookieSessionFactory))
    # Its reader converts booleans, the serializer and the hex secret but
    # leaves numbers as text, which fails on the first request: convert them.
    options = dict(options)
    for option in ("max_age", "timeout", "reissue_time"):
        if option in options:
            try:
                options[option] = _optional_int(options[option])
            except ValueError as exc:
                raise SettingsError(
                    f"{_key(namespace, option)} = {options[option]!r} is not a whole number"
                ) from exc
    return _with_library_reader(
        namespace, "nacl", options, "session.", nacl.session_factory_from_settings
    )


def _redis(namespace: str, options: Options, resolve: Callable[[Any], Any]) -> Any:
    redis_sessions = _require("redis", "pyramid_session_redis", "redis", namespace)
    util = import_module("pyramid_session_redis.util")
    _unknown_options(namespace, "redis", options, _parameters(redis_sessions.RedisSessionFactory))
    options = dict(options)
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


def _beaker(namespace: str, options: Options, resolve: Callable[[Any], Any]) -> Any:
    pyramid_beaker = _require("beaker", "pyramid_beaker", "beaker", namespace)
    from beaker.cache import clsmap
    from beaker.session import Session

    options = dict(options)
    if "cookie_name" in options:
        options.setdefault("key", options.pop("cookie_name"))
    known = _parameters(Session.__init__) - {"self", "request"} | _BEAKER_OWN_OPTIONS
    kind = options.get("type") or ("file" if options.get("data_dir") else "memory")
    try:
        namespace_class = clsmap[kind]
    except Exception as exc:
        raise SettingsError(
            f"{_key(namespace, 'type')} = {kind!r} is not a Beaker session type: {exc}"
        ) from exc
    init = namespace_class.__init__
    known |= _parameters(init) - {"self", "namespace"}
    _unknown_options(namespace, "beaker", options, known)
    return _with_library_reader(
        namespace, "beaker", options, "session.", pyramid_beaker.session_factory_from_settings
    )


#: ``factory = KIND`` values and what each builds.
FACTORY_KINDS: dict[str, Builder] = {
    "signed": _signed,
    "nacl": _nacl,
    "redis": _redis,
    "beaker": _beaker,
}


def _value(key: str, text: str) -> str:
    if not text.startswith(ENV_PREFIX):
        return text
    variable = text[len(ENV_PREFIX) :]
    try:
        return os.environ[variable]
    except KeyError:
        raise SettingsError(
            f"{key} = {text}: the environment variable {variable!r} is not set"
        ) from None


def namespace_options(settings: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The ``session_multi.*`` settings, per namespace, checked and resolved.

    Returns ``{namespace: {option: value}}`` in the order of
    ``session_multi.namespaces``; raises :class:`SettingsError` for a
    namespace listed without ``factory``, options of an unlisted namespace,
    or an ``env:`` variable that is not set.
    """
    listed = aslist(settings.get(PREFIX + "namespaces", ""))
    found: dict[str, dict[str, Any]] = {namespace: {} for namespace in listed}
    for key, text in settings.items():
        if not key.startswith(PREFIX) or key[len(PREFIX) :] in GLOBAL_KEYS:
            continue
        namespace, dot, option = key[len(PREFIX) :].partition(".")
        if not dot or not option:
            raise SettingsError(f"{key}: expected {PREFIX}NAMESPACE.OPTION")
        if namespace not in found:
            raise SettingsError(
                f"{key}: namespace {namespace!r} is not listed in {PREFIX}namespaces "
                f"({' '.join(listed) or 'empty'}); add it there or remove its options"
            )
        found[namespace][option] = _value(key, text) if isinstance(text, str) else text
    for namespace, options in found.items():
        if "factory" not in options:
            raise SettingsError(
                f"{_key(namespace, 'factory')} is missing: say which session library "
                f"namespace {namespace!r} uses ({', '.join(FACTORY_KINDS)} or a dotted name)"
            )
    return found


def build_factory(namespace: str, options: Mapping[str, Any], resolve: Callable[[Any], Any]) -> Any:
    """The session factory that ``options`` (one namespace's settings) describe."""
    kind = options["factory"]
    library_options = {k: v for k, v in options.items() if k not in ADDON_KEYS}
    builder = FACTORY_KINDS.get(kind)
    if builder is not None:
        return builder(namespace, library_options, resolve)
    if ":" not in kind and "." not in kind:
        raise SettingsError(
            f"{_key(namespace, 'factory')} = {kind!r} is not a factory kind "
            f"({', '.join(FACTORY_KINDS)}) nor a dotted name"
        )
    try:
        make = resolve(kind)
    except Exception as exc:
        raise SettingsError(
            f"{_key(namespace, 'factory')} = {kind!r} cannot be imported: {exc}"
        ) from exc
    return make(library_options)


def register_from_settings(config: Configurator) -> None:
    """Register every namespace the settings declare, through the directive.

    A namespace declared in the settings and also registered in code is a
    :class:`~pyramid.exceptions.ConfigurationError` at commit that names the
    settings key and the code's call site, wherever that code sits: an
    operator's settings are never silently overridden.
    """
    settings = config.registry.settings or {}
    declared: dict[str, Any] = {}
    info = config.info
    for namespace, options in namespace_options(settings).items():
        factory = declared[namespace] = build_factory(namespace, options, config.maybe_dotted)
        # conflict reports name the settings, not this module
        config.info = ActionInfo(
            "the settings", 0, "", f"{_key(namespace, 'factory')} = {options['factory']}"
        )
        try:
            register_session_factory(
                config,
                namespace,
                factory,
                discriminator=options.get("discriminator"),
                cookie_name=options.get("cookie_name"),
                validator=options.get("validator"),
                bound_to=options.get("bound_to"),
            )
        finally:
            config.info = info
    if declared:
        registry = config.registry

        def check() -> None:
            _check_settings_kept(registry, declared)

        config.action((PREFIX, "settings kept"), check, order=LATE_ORDER)


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
