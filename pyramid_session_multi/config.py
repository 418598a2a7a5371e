"""Registering namespaces: the directive, its actions and its checks."""
from dataclasses import dataclass
from typing import Any
from typing import Callable
from typing import Dict
from typing import List
from typing import Optional

from pyramid.config import Configurator
from pyramid.exceptions import ConfigurationError
from pyramid.interfaces import ISessionFactory
from pyramid.registry import Registry
from zope.interface import implementer

from .cookies import cookie_name_problem
from .cookies import discover_cookie_name
from .interfaces import ISessionMultiManagerConfig

#: The introspection category of registered namespaces.
INTROSPECTION_CATEGORY = "session_multi namespaces"

#: Runs after every ordinary action, so it sees the final session factory.
_LATE_ORDER = 10000

Discriminator = Callable[[Any], Any]
Validator = Callable[[Any, Any], Any]


@dataclass(frozen=True)
class NamespaceConfig:
    """One registered namespace."""

    namespace: str
    factory: Callable[[Any], Any]
    cookie_name: str
    discriminator: Optional[Discriminator] = None
    validator: Optional[Validator] = None


@implementer(ISessionMultiManagerConfig)
class SessionMultiManagerConfig:
    """The registry utility that knows every namespace.

    It refuses, with a :class:`~pyramid.exceptions.ConfigurationError`, a
    namespace, a factory object or a cookie name that is already in use.
    """

    def __init__(self) -> None:
        #: namespace -> :class:`NamespaceConfig`; read it, change it with add()
        self.configs: Dict[str, NamespaceConfig] = {}
        self._cookie_owners: Dict[str, str] = {}
        self._factory_owners: Dict[int, str] = {}

    def add(self, config: NamespaceConfig) -> None:
        """Add ``config``, or raise ConfigurationError if it clashes."""
        namespace = config.namespace
        if namespace in self.configs:
            raise ConfigurationError(
                f"pyramid_session_multi: namespace {namespace!r} is already "
                "registered; give this session factory another namespace."
            )
        owner = self._factory_owners.get(id(config.factory))
        if owner is not None:
            raise ConfigurationError(
                f"pyramid_session_multi: namespace {namespace!r} uses the same "
                f"session factory object as namespace {owner!r}; create a "
                "separate factory (with its own cookie_name) for each namespace."
            )
        owner = self._cookie_owners.get(config.cookie_name)
        if owner is not None:
            raise ConfigurationError(
                f"pyramid_session_multi: namespace {namespace!r} uses cookie "
                f"{config.cookie_name!r}, which namespace {owner!r} uses "
                "already; give one of them another cookie_name."
            )
        self.configs[namespace] = config
        self._factory_owners[id(config.factory)] = namespace
        self._cookie_owners[config.cookie_name] = namespace

    def get(self, namespace: str) -> Optional[NamespaceConfig]:
        """Return the :class:`NamespaceConfig` of ``namespace``, or ``None``."""
        return self.configs.get(namespace)

    @property
    def namespaces(self) -> List[str]:
        return list(self.configs)

    @property
    def discriminators(self) -> List[str]:
        return [ns for ns, c in self.configs.items() if c.discriminator is not None]

    @property
    def namespaces_to_cookienames(self) -> Dict[str, str]:
        return {ns: c.cookie_name for ns, c in self.configs.items()}

    def has_namespace(self, namespace: str) -> bool:
        return namespace in self.configs

    def get_namespace_config(self, namespace: str) -> Optional[Callable[[Any], Any]]:
        config = self.configs.get(namespace)
        return None if config is None else config.factory

    def get_namespace_cookiename(self, namespace: str) -> Optional[str]:
        config = self.configs.get(namespace)
        return None if config is None else config.cookie_name

    def get_namespace_discriminator(self, namespace: str) -> Optional[Discriminator]:
        config = self.configs.get(namespace)
        return None if config is None else config.discriminator

    def get_namespace_validator(self, namespace: str) -> Optional[Validator]:
        config = self.configs.get(namespace)
        return None if config is None else config.validator


def get_manager_config(registry: Registry) -> Optional[SessionMultiManagerConfig]:
    """Return the utility of ``registry``, or ``None`` if not included."""
    utility: Optional[SessionMultiManagerConfig] = registry.queryUtility(
        ISessionMultiManagerConfig
    )
    return utility


def _require_manager_config(registry: Registry) -> SessionMultiManagerConfig:
    utility = get_manager_config(registry)
    if utility is None:
        raise ConfigurationError(
            "pyramid_session_multi is not set up: call "
            'config.include("pyramid_session_multi") before registering '
            "session factories."
        )
    return utility


def register_session_factory(
    config: Configurator,
    namespace: str,
    session_factory: Any,
    discriminator: Any = None,
    cookie_name: Optional[str] = None,
    validator: Any = None,
) -> None:
    """Mount ``session_factory`` at ``request.session_multi[namespace]``.

    Available as ``config.register_session_factory(...)`` once the add-on
    is included, or called as a function with the configurator first.

    :param namespace: the non-empty string that names the session.
    :param session_factory: an :class:`~pyramid.interfaces.ISessionFactory`
        or a dotted name to one.  Each namespace needs its own factory
        object.
    :param discriminator: optional callable (or dotted name) taking the
        request; when it returns a falsy value the namespace mounts ``None``
        for that request and never sets a cookie.
    :param cookie_name: the cookie the factory writes.  Found on the factory
        for pyramid's cookie sessions, pyramid_nacl_session,
        pyramid_session_redis and pyramid_beaker; required for anything else.
    :param validator: optional callable (or dotted name) taking the request
        and the freshly loaded session; a falsy result invalidates that
        session, and the namespace goes on with a new, empty one.

    Registration goes through Pyramid's actions: two registrations of one
    namespace conflict, an including configuration overrides an included
    one, and the cookie and factory checks run on the final set.
    """
    if not namespace or not isinstance(namespace, str):
        raise ConfigurationError(
            "pyramid_session_multi: the namespace must be a non-empty string, "
            f"not {namespace!r}."
        )
    if session_factory is None:
        raise ConfigurationError(
            f"pyramid_session_multi: namespace {namespace!r} needs a session "
            "factory, got None."
        )
    registry = config.registry
    manager_config = _require_manager_config(registry)
    session_factory = config.maybe_dotted(session_factory)
    discriminator = config.maybe_dotted(discriminator)
    validator = config.maybe_dotted(validator)
    if cookie_name is None:
        cookie_name = discover_cookie_name(session_factory)
        if cookie_name is None:
            raise ConfigurationError(
                f"pyramid_session_multi: cannot tell which cookie the factory "
                f"of namespace {namespace!r} writes; pass cookie_name=... "
                "to register_session_factory."
            )
    problem = cookie_name_problem(cookie_name)
    if problem is not None:
        raise ConfigurationError(
            f"pyramid_session_multi: namespace {namespace!r} cannot use cookie "
            f"{cookie_name!r}: {problem}, and setting it would fail at run "
            "time; choose another cookie_name (and the factory's own)."
        )
    namespace_config = NamespaceConfig(
        namespace=namespace,
        factory=session_factory,
        cookie_name=cookie_name,
        discriminator=discriminator,
        validator=validator,
    )

    def register() -> None:
        manager_config.add(namespace_config)
        _check_against_session_factory(registry, namespace_config)

    intr = config.introspectable(
        INTROSPECTION_CATEGORY,
        namespace,
        namespace,
        "session_multi namespace",
    )
    intr["namespace"] = namespace
    intr["factory"] = session_factory
    intr["discriminator"] = discriminator
    intr["cookie_name"] = cookie_name
    intr["validator"] = validator
    config.action(
        ("pyramid_session_multi", namespace), register, introspectables=(intr,)
    )


def _check_against_session_factory(
    registry: Registry, namespace_config: NamespaceConfig
) -> None:
    session_factory = registry.queryUtility(ISessionFactory)
    if session_factory is None:
        return
    if session_factory is namespace_config.factory:
        raise ConfigurationError(
            f"pyramid_session_multi: namespace {namespace_config.namespace!r} "
            "uses the factory set with config.set_session_factory; "
            "request.session and the namespace would share one cookie. "
            "Create a separate factory for the namespace."
        )
    if discover_cookie_name(session_factory) == namespace_config.cookie_name:
        raise ConfigurationError(
            f"pyramid_session_multi: namespace {namespace_config.namespace!r} "
            f"uses cookie {namespace_config.cookie_name!r}, the cookie of the "
            "factory set with config.set_session_factory; request.session and "
            "the namespace would fight over it. Give one of them another "
            "cookie name."
        )


def check_all_against_session_factory(config: Configurator) -> None:
    """Add the commit-time check of every namespace against request.session.

    ``set_session_factory`` may come after the namespaces; this late action
    sees the factory it finally registered.
    """
    registry = config.registry

    def check() -> None:
        manager_config = get_manager_config(registry)
        if manager_config is None:
            return
        for namespace in manager_config.namespaces:
            namespace_config = manager_config.get(namespace)
            assert namespace_config is not None
            _check_against_session_factory(registry, namespace_config)

    config.action(("pyramid_session_multi", "check-session-factory"), check,
                  order=_LATE_ORDER)


def setup_manager_config(config: Configurator) -> SessionMultiManagerConfig:
    """Register the :class:`SessionMultiManagerConfig` utility if missing."""
    registry = config.registry
    utility = get_manager_config(registry)
    if utility is None:
        utility = SessionMultiManagerConfig()
        registry.registerUtility(utility, ISessionMultiManagerConfig)
    return utility
