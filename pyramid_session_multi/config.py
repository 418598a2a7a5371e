"""Registering namespaces: the directive, its actions and its checks."""

from collections.abc import Callable
from typing import Any

from pyramid.config import Configurator
from pyramid.exceptions import ConfigurationError
from pyramid.interfaces import ICSRFStoragePolicy, ISessionFactory
from pyramid.registry import Registry
from zope.interface import implementer

from .budget import CookieBudget, budget_limit_of, budgeted_cookie_session, named_cookie_session
from .cookies import discover_cookie_name
from .csrf import NamespaceCSRFStoragePolicy
from .exceptions import NotIncludedError
from .failures import REPORT
from .interfaces import ISessionMultiManagerConfig
from .libraries import is_pyramid_cookie_factory, library_for
from .lifecycle.lifetime import MAX_TIMEOUT
from .lifecycle.pipeline import LoadStep, load_step_sorter, unknown_placement
from .namespace import (
    Discriminator,
    NamespaceConfig,
    Validator,
    binding_depth,
    build_namespace_config,
    check_arguments,
    finalize,
)

__all__ = [
    "MAX_TIMEOUT",
    "Discriminator",
    "NamespaceConfig",
    "SessionMultiManagerConfig",
    "Validator",
    "build_namespace_config",
    "finalize",
    "register_session_factory",
]

#: The introspection category of registered namespaces.
INTROSPECTION_CATEGORY = "session_multi namespaces"

#: Runs after every ordinary action, so it sees the final session factory.
LATE_ORDER = 10000


@implementer(ISessionMultiManagerConfig)
class SessionMultiManagerConfig:
    """The registry utility that knows every namespace.

    It refuses, with a :class:`~pyramid.exceptions.ConfigurationError`, a
    namespace, a factory object or a cookie name that is already in use.
    """

    def __init__(self, config: Configurator | None = None) -> None:
        # ``config`` is accepted, and unused, as 0.4's constructor took it.
        #: namespace -> :class:`NamespaceConfig`; read it, change it with add()
        self.configs: dict[str, NamespaceConfig] = {}
        #: the session library adapters the application added, newest first
        self.libraries: list[Any] = []
        #: the cookie budget, from the settings (see :mod:`.budget`)
        self.budget = CookieBudget()
        #: whether the namespaces' cookies together could pass the Cookie header
        #: budget
        self.header_may_pass = False
        #: a request whose Cookie header is longer than this may, with every
        #: namespace's cookie set, send back one over the Cookie header budget:
        #: the manager then checks its response's
        self.header_room = self.budget.header_limit
        #: where revocations are kept, ``None`` until one is set (see
        #: :mod:`pyramid_session_multi.revocation`)
        self.revocations: Any = None
        #: the namespaces whose factory is one of pyramid's cookie sessions
        #: (the cookie budget wraps them), in the order added
        self.cookie_sessions: dict[str, None] = {}
        #: the cookie budget's subclass of each cookie-session namespace's
        #: factory, where the budget gave one (see :func:`apply_cookie_budget`)
        self.budget_loaders: dict[str, Any] = {}
        #: the namespaces another is bound to
        self.partners: set[str] = set()
        #: every load step and check, sorted by name (see :mod:`.lifecycle.pipeline`)
        self.load_steps = load_step_sorter()
        self._sorted_steps: list[LoadStep] | None = None
        self._cookie_owners: dict[str, str] = {}
        self._fallback_cookie_owners: dict[str, str] = {}
        self._factory_owners: dict[int, str] = {}

    def add(self, config: NamespaceConfig, *, derive: bool = True) -> None:
        """Add ``config``, or raise ConfigurationError if it clashes.

        With ``derive=False`` it is kept as declared, for the caller to
        finalize (the cookie budget does, once its loader is known).
        """
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
        owner = self._cookie_owners.get(config.cookie_name) or self._fallback_cookie_owners.get(
            config.cookie_name
        )
        if owner is not None:
            raise ConfigurationError(
                f"pyramid_session_multi: namespace {namespace!r} uses cookie "
                f"{config.cookie_name!r}, which namespace {owner!r} uses "
                "already; give one of them another cookie_name."
            )
        for fallback in config.fallbacks:
            self._check_fallback(config, fallback)
        if config.bound_to is not None:
            self.partners.add(config.bound_to)
        self.configs[namespace] = finalize(config, self) if derive else config
        if is_pyramid_cookie_factory(config.factory):
            self.cookie_sessions[namespace] = None
        self._factory_owners[id(config.factory)] = namespace
        self._cookie_owners[config.cookie_name] = namespace
        for fallback in config.fallbacks:
            self._factory_owners[id(fallback.factory)] = namespace
            self._fallback_cookie_owners[fallback.cookie_name] = namespace

    def add_load_step(self, step: LoadStep, under: Any = None, over: Any = None) -> None:
        """Add ``step`` to every namespace's pipeline it applies to, after the
        steps named ``under`` and before those named ``over``; every
        namespace's pipeline is derived again."""
        if step.name in self.load_steps.names:
            self.load_steps.remove(step.name)
        self.load_steps.add(step.name, step, after=under, before=over)
        self._sorted_steps = None
        if unknown_placement(self.load_steps) is not None:
            # placed by a step added later in this commit: derived once it is
            # (a name still unknown at the end of the commit is refused then)
            return
        # every pipeline is derived again, with the step where it applies
        self.finalize_all()

    def sorted_steps(self) -> list[LoadStep]:
        """Every declared load step and check, in the order they run."""
        if self._sorted_steps is None:
            # the sorter ignores a name no step has where another of the step's names is
            unknown = unknown_placement(self.load_steps)
            if unknown is not None:
                raise ConfigurationError(unknown)
            self._sorted_steps = [step for _, step in self.load_steps.sorted()]
        return self._sorted_steps

    def finalize_all(self) -> None:
        """Derive every namespace's configuration again (at commit)."""
        for namespace, namespace_config in list(self.configs.items()):
            self.configs[namespace] = finalize(namespace_config, self)

    def _check_fallback(self, config: NamespaceConfig, fallback: Any) -> None:
        namespace = config.namespace
        where = f"namespace {namespace!r}, {fallback.describe()}"
        owner = self._factory_owners.get(id(fallback.factory))
        if owner is not None:
            raise ConfigurationError(
                f"pyramid_session_multi: {where} uses the same session factory object as "
                f"namespace {owner!r}; give the fallback its own factory."
            )
        cookie = fallback.cookie_name
        owner = self._cookie_owners.get(cookie) or self._fallback_cookie_owners.get(cookie)
        if owner is not None and owner != namespace:
            raise ConfigurationError(
                f"pyramid_session_multi: {where} reads cookie {cookie!r}, which namespace "
                f"{owner!r} uses already; the fallback would move another namespace's "
                "session. Give one of them another cookie name."
            )

    def register_session_factory(
        self,
        namespace: str,
        session_factory: Any,
        discriminator: Any = None,
        cookie_name: str | None = None,
    ) -> bool:
        """Add a namespace at once, bypassing Pyramid's actions (0.4's API).

        Prefer the ``config.register_session_factory`` directive, which
        detects conflicts and supports overrides; this method makes the
        same checks on its arguments, holds the namespace to the cookie
        budget as the directive does, and returns ``True``.
        """
        namespace_config = build_namespace_config(
            namespace, session_factory, discriminator, cookie_name, libraries=self.libraries
        )
        self.add(namespace_config, derive=False)
        apply_cookie_budget(self, self.budget, namespace_config)
        return True

    def get(self, namespace: str) -> NamespaceConfig | None:
        """Return the :class:`~pyramid_session_multi.namespace.NamespaceConfig`
        of ``namespace``, or ``None``."""
        return self.configs.get(namespace)

    @property
    def namespaces(self) -> list[str]:
        return list(self.configs)

    @property
    def discriminators(self) -> list[str]:
        return [ns for ns, c in self.configs.items() if c.discriminator is not None]

    @property
    def namespaces_to_cookienames(self) -> dict[str, str]:
        return {ns: c.cookie_name for ns, c in self.configs.items()}

    def has_namespace(self, namespace: str) -> bool:
        return namespace in self.configs

    def get_namespace_config(self, namespace: str) -> Callable[[Any], Any] | None:
        config = self.configs.get(namespace)
        return None if config is None else config.factory

    def get_namespace_cookiename(self, namespace: str) -> str | None:
        config = self.configs.get(namespace)
        return None if config is None else config.cookie_name

    def get_namespace_discriminator(self, namespace: str) -> Discriminator | None:
        config = self.configs.get(namespace)
        return None if config is None else config.discriminator

    def get_namespace_validator(self, namespace: str) -> Validator | None:
        config = self.configs.get(namespace)
        return None if config is None else config.validator


def get_manager_config(registry: Registry) -> SessionMultiManagerConfig | None:
    """Return the utility of ``registry``, or ``None`` if not included."""
    utility: SessionMultiManagerConfig | None = registry.queryUtility(ISessionMultiManagerConfig)
    return utility


def require_manager_config(
    registry: Registry, doing: str = "registering session factories"
) -> SessionMultiManagerConfig:
    """The manager config of ``registry``, or a :class:`NotIncludedError` saying what to include."""
    utility = get_manager_config(registry)
    if utility is None:
        raise NotIncludedError(
            "pyramid_session_multi is not set up: call "
            f'config.include("pyramid_session_multi") before {doing}.'
        )
    return utility


def register_session_factory(
    config: Configurator,
    namespace: str,
    session_factory: Any,
    discriminator: Any = None,
    cookie_name: str | None = None,
    validator: Any = None,
    bound_to: str | None = None,
    fallbacks: Any = None,
    idle_timeout: int | None = None,
    absolute_timeout: int | None = None,
    partitioned: bool = False,
    on_save_error: str = REPORT,
    concurrent_writes: str | None = None,
    on_conflict: Any = None,
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
    :param bound_to: optional name of another namespace (the *partner*):
        this namespace's session is then valid only beside the partner
        session it was written with, and is invalidated on load otherwise
        (see :doc:`/narr/identity`).  The partner must be registered; bindings
        may chain but not loop.
    :param fallbacks: optional list of session factories (or dotted names,
        or :class:`~pyramid_session_multi.Fallback` for one whose cookie the
        add-on cannot find), tried in order when the namespace's own factory
        finds no session: the first that finds one has its data moved into
        the namespace's session, and its old copy retired (see
        :doc:`/narr/fallbacks`).  For a new secret, the same library with the
        old secret; for a new store, the old store's factory.
    :param idle_timeout: optional positive number of seconds: a session
        unused for longer is ended when next loaded, whatever the library
        (see :doc:`/narr/lifetimes`).
    :param absolute_timeout: optional positive number of seconds: a session
        older than this since it was created, or last rotated, is ended when
        next loaded, however busy.
    :param partitioned: ``True`` adds ``Partitioned`` (CHIPS: the browser
        keeps the cookie apart for each top-level site that embeds the
        application) to the namespace's cookie and to its deletion, whatever
        the library; WebOb cannot write the attribute, so the add-on appends
        it to the ``Set-Cookie`` header.  Browsers refuse it without
        ``Secure``: a factory whose cookie is not secure is refused.
    :param on_save_error: what a failure to save the namespace's session at
        the end of a request does: ``"report"`` (the default) answers the
        request, the client keeping its old cookie; ``"fail"`` fails the
        response.  Either way it is logged and
        :class:`~pyramid_session_multi.events.SessionSaveFailed` is sent
        (see :doc:`/narr/lifecycle`).
    :param concurrent_writes: how the namespace's saves meet those of
        parallel requests of the same client (see :doc:`/narr/parallel`):
        ``"merge"`` merges them key by key and never brings back a session a
        parallel request ended; ``"overwrite"`` keeps the library's own save,
        the last writer winning for the whole session.  Default: ``"merge"``
        where the store merges (pyramid_session_redis, pyramid_beaker
        ``file``, ``dbm``, ``ext:database``), else
        ``"overwrite"``; ``"merge"`` for a store that cannot is refused.
    :param on_conflict: optional callable (or dotted name) called as
        ``on_conflict(key, loaded, ours, theirs)`` when parallel requests
        both changed ``key``; returns the value to keep (or
        :data:`~pyramid_session_multi.concurrency.merge.MISSING` to delete
        it).  Default: the request saving last wins, for that key.  Only
        for a namespace that merges: with ``"overwrite"`` (given or the
        default) it could never run, and is refused.

    Registration goes through Pyramid's actions: two registrations of one
    namespace conflict, an including configuration overrides an included
    one, and the cookie and factory checks run on the final set.
    """
    manager_config = require_manager_config(config.registry)
    resolve = config.maybe_dotted
    session_factory, discriminator, validator = check_arguments(
        namespace,
        session_factory,
        discriminator,
        validator,
        resolve,
        bound_to,
        idle_timeout,
        absolute_timeout,
        partitioned,
        on_save_error,
        concurrent_writes,
        on_conflict,
    )
    registry = config.registry
    budget = CookieBudget.from_settings(registry.settings)
    intr = config.introspectable(
        INTROSPECTION_CATEGORY,
        namespace,
        namespace,
        "session_multi namespace",
    )

    def register() -> None:
        # the libraries added before this call are known now, in their actions
        namespace_config = build_namespace_config(
            namespace,
            session_factory,
            discriminator,
            cookie_name,
            validator,
            resolve,
            bound_to,
            manager_config.libraries,
            fallbacks,
            idle_timeout,
            absolute_timeout,
            partitioned,
            on_save_error,
            concurrent_writes,
            on_conflict,
        )
        # finalized once, by the budget that knows its loader
        manager_config.add(namespace_config, derive=False)
        _check_against_session_factory(registry, namespace_config)
        # every namespace added changes what the Cookie header may reach
        apply_cookie_budget(manager_config, budget, namespace_config)
        intr["namespace"] = namespace
        intr["factory"] = namespace_config.factory
        intr["discriminator"] = namespace_config.discriminator
        intr["cookie_name"] = namespace_config.cookie_name
        intr["validator"] = namespace_config.validator
        intr["bound_to"] = bound_to
        intr["library"] = namespace_config.library.name
        intr["fallbacks"] = [fallback.describe() for fallback in namespace_config.fallbacks]
        intr["idle_timeout"] = namespace_config.idle_timeout
        intr["absolute_timeout"] = namespace_config.absolute_timeout
        intr["partitioned"] = namespace_config.partitioned
        intr["on_save_error"] = namespace_config.on_save_error
        intr["concurrent_writes"] = namespace_config.concurrent_writes
        intr["on_conflict"] = namespace_config.on_conflict

    config.action(("pyramid_session_multi", namespace), register, introspectables=(intr,))


def _check_against_session_factory(registry: Registry, namespace_config: NamespaceConfig) -> None:
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
    session_cookie = discover_cookie_name(session_factory)
    for fallback in namespace_config.fallbacks:
        if fallback.cookie_name == session_cookie:
            raise ConfigurationError(
                f"pyramid_session_multi: namespace {namespace_config.namespace!r}, "
                f"{fallback.describe()} reads {session_cookie!r}, the cookie of the factory "
                "set with config.set_session_factory: it would move request.session's "
                "session. Give one of them another cookie name."
            )
    if session_cookie == namespace_config.cookie_name:
        raise ConfigurationError(
            f"pyramid_session_multi: namespace {namespace_config.namespace!r} "
            f"uses cookie {namespace_config.cookie_name!r}, the cookie of the "
            "factory set with config.set_session_factory; request.session and "
            "the namespace would fight over it. Give one of them another "
            "cookie name."
        )


def _check_library(
    manager_config: SessionMultiManagerConfig, namespace_config: NamespaceConfig
) -> None:
    """Refuse a namespace registered before the library that claims its factory."""
    library = library_for(namespace_config.factory, manager_config.libraries)
    if library is not namespace_config.library:
        raise ConfigurationError(
            f"pyramid_session_multi: namespace {namespace_config.namespace!r} was registered "
            f"before the session library {library!r} that claims its factory was added; "
            "call config.add_session_library before registering its namespaces."
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
            _check_library(manager_config, namespace_config)
            _check_against_session_factory(registry, namespace_config)
        # a load step placed by a name no step has
        manager_config.sorted_steps()
        _check_csrf_namespace(registry, manager_config)
        check_bindings(manager_config)

    config.action(("pyramid_session_multi", "check-session-factory"), check, order=LATE_ORDER)


#: What one server-side namespace's cookie (a signed id) may add to the header.
ID_COOKIE_BOUND = 256


def apply_cookie_budget(
    manager_config: SessionMultiManagerConfig,
    budget: CookieBudget,
    added: NamespaceConfig | None = None,
) -> None:
    """Make pyramid's cookie sessions keep to ``budget``, where they need to.

    The budget costs a little on every cookie set, so it is installed only
    where it can matter: when the policy drops, when the per-cookie limit is
    below what pyramid and WebOb refuse on their own, or when the namespaces
    registered could together pass the Cookie header budget.  Otherwise a
    cookie over the size browsers keep is WebOb's error, with a note naming
    the namespace.

    ``added`` is the namespace just added: when neither the budget nor
    whether the header may pass changed, only it is fitted, so registering
    N namespaces costs O(N); otherwise every cookie-session namespace is.
    ``added`` is finalized here in either case, once.
    """
    cookie_sessions = manager_config.cookie_sessions
    others = len(manager_config.configs) - len(cookie_sessions)
    largest_header = len(cookie_sessions) * budget.cookie_limit + ID_COOKIE_BOUND * others
    header_may_pass = largest_header > budget.header_limit
    unchanged = (
        added is not None
        and budget == manager_config.budget
        and header_may_pass == manager_config.header_may_pass
    )
    if unchanged:
        assert added is not None
        targets = [added] if added.namespace in cookie_sessions else []
    else:
        targets = [manager_config.configs[namespace] for namespace in cookie_sessions]
    for namespace_config in targets:
        needed = (
            budget.oversize != "raise"
            or budget.cookie_limit < budget_limit_of(namespace_config.cookie_name)
            or header_may_pass
        )
        namespace = namespace_config.namespace
        if needed:
            loader = budgeted_cookie_session(namespace_config.factory, namespace, budget)
        else:
            loader = named_cookie_session(namespace_config.factory, namespace)
        manager_config.budget_loaders[namespace] = loader
        manager_config.configs[namespace] = finalize(namespace_config, manager_config)
    if added is not None and added.namespace not in cookie_sessions:
        # a namespace added kept as declared (see SessionMultiManagerConfig.add)
        manager_config.configs[added.namespace] = finalize(added, manager_config)
    manager_config.budget = budget
    manager_config.header_may_pass = header_may_pass
    manager_config.header_room = budget.header_limit - largest_header


def check_bindings(manager_config: SessionMultiManagerConfig) -> None:
    """Refuse a ``bound_to`` naming an unregistered namespace, itself, or a loop.

    Then derive again each namespace whose depth in its chain, or whose
    being a partner (its end of request is then the add-on's: its token is
    written there), was not known when it was added.
    """
    configs = manager_config.configs
    for namespace, namespace_config in configs.items():
        seen = [namespace]
        partner = namespace_config.bound_to
        while partner is not None:
            if partner not in configs:
                raise ConfigurationError(
                    f"pyramid_session_multi: namespace {seen[-1]!r} is bound_to "
                    f"{partner!r}, which is not registered (registered: "
                    f"{', '.join(configs)}); register it or bind to a registered namespace."
                )
            if partner in seen:
                loop = " -> ".join([*seen, partner])
                raise ConfigurationError(
                    f"pyramid_session_multi: bound_to makes a loop ({loop}); "
                    "a namespace cannot be bound to itself, even through others."
                )
            seen.append(partner)
            partner = configs[partner].bound_to
    # depths and partners are known only once every namespace is: derive again
    # what they change
    partners = manager_config.partners
    for namespace, namespace_config in configs.items():
        if namespace_config.binding_depth != binding_depth(namespace_config, configs) or (
            namespace_config.partner != (namespace in partners)
        ):
            configs[namespace] = finalize(namespace_config, manager_config)


def _check_csrf_namespace(registry: Registry, manager_config: SessionMultiManagerConfig) -> None:
    policy = registry.queryUtility(ICSRFStoragePolicy)
    if not isinstance(policy, NamespaceCSRFStoragePolicy):
        return
    namespace = policy.namespace
    if manager_config.has_namespace(namespace):
        return
    raise ConfigurationError(
        f"pyramid_session_multi: the CSRF storage policy keeps its token in namespace "
        f"{namespace!r}, which is not registered (registered: "
        f"{', '.join(manager_config.namespaces) or 'none'}); register it with "
        "config.register_session_factory or name a registered namespace."
    )


def setup_manager_config(config: Configurator) -> SessionMultiManagerConfig:
    """Register the :class:`SessionMultiManagerConfig` utility if missing."""
    registry = config.registry
    utility = get_manager_config(registry)
    if utility is None:
        utility = SessionMultiManagerConfig()
        registry.registerUtility(utility, ISessionMultiManagerConfig)
        # namespaces added through 0.4's API keep to the settings' budget too
        utility.budget = CookieBudget.from_settings(registry.settings)
        utility.header_room = utility.budget.header_limit
    return utility
