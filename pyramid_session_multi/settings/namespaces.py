"""Which namespaces the settings declare, and the factories and fallbacks of each."""

from collections.abc import Callable, Mapping
from typing import Any

from pyramid.settings import aslist

from ..exceptions import SettingsError
from ..values import Reader, Refused, as_boolean, as_positive_seconds, resolve_env
from .kinds import FACTORY_KINDS, SECRET_OF_KIND
from .readers import PREFIX, convert, setting_key

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
        "revocations_mirror",
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
        "concurrent_writes",
        "on_conflict",
    }
)

#: Options under this prefix describe a namespace's fallback store
#: (``session_multi.NS.fallback.factory = beaker`` …); see :func:`build_fallbacks`.
FALLBACK_PREFIX = "fallback."


#: The add-on's lifetime options of a namespace (see :doc:`/narr/lifetimes`).
_LIFETIME_READERS: dict[str, Reader] = {
    "idle_timeout": as_positive_seconds,
    "absolute_timeout": as_positive_seconds,
}


def lifetimes_of(namespace: str, options: Mapping[str, Any]) -> dict[str, int]:
    """A namespace's ``idle_timeout`` and ``absolute_timeout``, those it sets."""
    given = {option: options[option] for option in _LIFETIME_READERS if option in options}
    return convert(namespace, given, _LIFETIME_READERS)


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
            found[namespace][option] = resolve_env(key, text)
    for namespace, options in found.items():
        if "factory" not in options:
            raise SettingsError(
                f"{setting_key(namespace, 'factory')} is missing: say which session library "
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
            f"{setting_key(namespace, 'factory')} = {given!r} is not a factory kind "
            f"({', '.join(FACTORY_KINDS)}) nor a dotted name"
        )
    try:
        make = resolve(kind)
    except Exception as exc:
        raise SettingsError(
            f"{setting_key(namespace, 'factory')} = {kind!r} cannot be imported: {exc}"
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
        key = setting_key(namespace, "secret_fallbacks")
        given = options["secret_fallbacks"]
        words = aslist(given) if isinstance(given, str) else list(given or ())
        if not words:
            raise SettingsError(f"{key} names no secret: give the old secrets, or remove it")
        kind = str(own.get("factory", "")).strip().lower()
        option = SECRET_OF_KIND.get(kind)
        if option is None:
            raise SettingsError(
                f"{key}: secret fallbacks are built for the kinds "
                f"{', '.join(SECRET_OF_KIND)}, not {own.get('factory')!r}; describe the "
                f"old factory with {setting_key(namespace, 'fallback.factory')} instead"
            )
        if kind == "beaker" and str(own.get("type", "")).strip().lower() == "cookie":
            option = "validate_key"
            try:
                corrupt = as_boolean(own.get("invalidate_corrupt", False))
            except Refused:
                corrupt = True  # not a boolean: its own reader says so, naming the key
            if not corrupt:
                raise SettingsError(
                    f"{key}: a Beaker cookie session raises on a cookie signed with an old "
                    f"key, so set {setting_key(namespace, 'invalidate_corrupt')} = true for its "
                    "fallbacks to read the old cookies"
                )
        if option not in own:
            raise SettingsError(
                f"{key}: the namespace has no {setting_key(namespace, option)} for the old "
                "secrets to stand in for"
            )
        seen: dict[Any, int] = {}
        for position, word in enumerate(words, 1):
            secret = (
                resolve_env(f"{key} (secret {position})", word) if isinstance(word, str) else word
            )
            if secret in seen:
                raise SettingsError(
                    f"{key}: secrets {seen[secret]} and {position} are the same secret; "
                    "list each old secret once"
                )
            seen[secret] = position
            current = own[option]
            if isinstance(current, str):
                current = resolve_env(setting_key(namespace, option), current)
            if secret == current:
                raise SettingsError(
                    f"{key}: secret {position} is the namespace's own "
                    f"{setting_key(namespace, option)}, which it reads already; give the old "
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
                f"{setting_key(namespace, FALLBACK_PREFIX + misplaced[0])}: "
                "a fallback is a factory "
                "that old sessions are read with, and takes that factory's options only; "
                f"{misplaced[0]!r} is the namespace's own: set "
                f"{setting_key(namespace, misplaced[0])} instead, or remove it"
            )
        if "factory" not in store:
            raise SettingsError(
                f"{setting_key(namespace, 'fallback.factory')} is missing: "
                "say which session library "
                f"the fallback of namespace {namespace!r} reads ({', '.join(FACTORY_KINDS)} "
                "or a dotted name)"
            )
        fallbacks.append(build_factory(f"{namespace}.fallback", store, resolve))
    return fallbacks
