"""Pyramid's side of the settings: checking them at start-up and registering every
namespace (and the revocation store) they declare, through the directives."""

from collections.abc import Mapping
from typing import Any

from pyramid.config import Configurator
from pyramid.config.actions import ActionInfo
from pyramid.settings import aslist

from ..budget import CookieBudget
from ..check_ids import CHECK_IDS, LOGOUT_PATH_SETTING, SILENCE_SETTING
from ..concurrency.modes import CONCURRENT_WRITES, concurrent_writes_problem
from ..config import (
    INTROSPECTION_CATEGORY,
    LATE_ORDER,
    get_manager_config,
    register_session_factory,
)
from ..cookies import discover_cookie
from ..events import id_hash_key
from ..exceptions import SettingsError
from ..failures import ON_SAVE_ERROR, REPORT
from ..revocation import set_revocation_store, store_from_url
from ..revocation.mirror import mirrored
from ..values import Refused, as_boolean, resolve_env
from .kinds import SECURE_OF_KIND
from .namespaces import build_factory, build_fallbacks, lifetimes_of, namespace_options
from .readers import PREFIX, convert, setting_key


def _on_save_error(namespace: str, options: Mapping[str, Any]) -> str:
    """A namespace's ``on_save_error`` option: ``report`` (the default) or ``fail``."""
    value = options.get("on_save_error", REPORT)
    word = value.strip().lower() if isinstance(value, str) else value
    if word not in ON_SAVE_ERROR:
        raise SettingsError(
            f"{setting_key(namespace, 'on_save_error')} = {value!r} is not valid: it takes "
            f"{' or '.join(ON_SAVE_ERROR)}"
        )
    return str(word)


def _concurrent_writes(namespace: str, options: Mapping[str, Any]) -> str | None:
    """A namespace's ``concurrent_writes`` option: ``merge``, ``overwrite``, or
    ``None`` (not set: the store decides)."""
    if "concurrent_writes" not in options:
        return None
    value = options["concurrent_writes"]
    word = value.strip().lower() if isinstance(value, str) else value
    if concurrent_writes_problem(word) is not None or word is None:
        raise SettingsError(
            f"{setting_key(namespace, 'concurrent_writes')} = {value!r} is not valid: it "
            f"takes {' or '.join(CONCURRENT_WRITES)}"
        )
    return str(word)


def _partitioned(namespace: str, options: Mapping[str, Any], factory: Any, libraries: Any) -> bool:
    """A namespace's ``partitioned`` option; refused where its cookie is not ``Secure``."""
    if "partitioned" not in options:
        return False
    partitioned = bool(
        convert(namespace, {"partitioned": options["partitioned"]}, {"partitioned": as_boolean})[
            "partitioned"
        ]
    )
    cookie = discover_cookie(factory, libraries) or {}
    if partitioned and "secure" in cookie and not cookie["secure"]:
        kind = str(options.get("factory", "")).strip().lower()
        secure = setting_key(namespace, SECURE_OF_KIND.get(kind, "secure"))
        raise SettingsError(
            f"{setting_key(namespace, 'partitioned')} = {options['partitioned']!r} needs a Secure "
            f"cookie (browsers refuse a Partitioned cookie without it): set {secure} = true"
        )
    return partitioned


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
            f"{setting_key(namespace, 'cookie_name')} = {told!r}, but the factory "
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
        lifetimes = lifetimes_of(namespace, options)
        factory = declared[namespace] = build_factory(namespace, options, config.maybe_dotted)
        cookie_name = _cookie_told(namespace, options, factory, libraries)
        partitioned = _partitioned(namespace, options, factory, libraries)
        # conflict reports and introspection name the settings, not this module
        config.info = _SettingsActionInfo(setting_key(namespace, "factory"), options["factory"])
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
                concurrent_writes=_concurrent_writes(namespace, options),
                on_conflict=options.get("on_conflict"),
                idle_timeout=lifetimes.get("idle_timeout"),
                absolute_timeout=lifetimes.get("absolute_timeout"),
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

#: The setting asking for each process's mirror of the revocation store.
MIRROR_KEY = PREFIX + "revocations_mirror"


def _revocations_from_settings(config: Configurator, settings: Mapping[str, Any]) -> None:
    """``session_multi.revocations``: the revocation store's URL, set through the
    directive; ``session_multi.revocations_mirror``: each process mirrors it."""
    mirror = False
    if MIRROR_KEY in settings:
        given = settings[MIRROR_KEY]
        try:
            mirror = as_boolean(resolve_env(MIRROR_KEY, given) if isinstance(given, str) else given)
        except Refused as refused:
            raise refused.naming(MIRROR_KEY, given) from None
        if mirror and REVOCATIONS_KEY not in settings:
            raise SettingsError(
                f"{MIRROR_KEY} mirrors the revocation store, but {REVOCATIONS_KEY} names "
                "none: set it to a Redis or SQLAlchemy URL, or remove the mirror"
            )
    if REVOCATIONS_KEY not in settings:
        return
    given = settings[REVOCATIONS_KEY]
    text = resolve_env(REVOCATIONS_KEY, given) if isinstance(given, str) else given
    try:
        store = store_from_url(text)
    except ValueError as exc:
        raise SettingsError(f"{REVOCATIONS_KEY} {exc}") from None
    if mirror:
        store = mirrored(store)
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
            f"namespace {namespace!r} is declared in the settings "
            f"({setting_key(namespace, 'factory')}) "
            f"and registered in code at {site}; remove one of them"
        )
