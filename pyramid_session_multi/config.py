"""Registering namespaces: the directive, its actions and its checks."""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pyramid.config import Configurator
from pyramid.exceptions import ConfigurationError
from pyramid.interfaces import ICSRFStoragePolicy, ISessionFactory
from pyramid.registry import Registry
from zope.interface import implementer
from zope.interface.exceptions import Invalid
from zope.interface.interface import Method
from zope.interface.verify import verifyObject

from .budget import CookieBudget, budget_limit_of, budgeted_cookie_session, named_cookie_session
from .cookies import (
    browser_refusal,
    cookie_attribute_problem,
    cookie_name_problem,
    deletion_secure,
    discover_cookie_name,
)
from .csrf import NamespaceCSRFStoragePolicy
from .interfaces import ISessionLibrary, ISessionMultiManagerConfig
from .libraries import is_pyramid_cookie_factory, library_for
from .lifecycle.cookie_lifetime import fit_loader
from .lifecycle.fallbacks import build_fallbacks

#: The introspection category of registered namespaces.
INTROSPECTION_CATEGORY = "session_multi namespaces"

#: Runs after every ordinary action, so it sees the final session factory.
LATE_ORDER = 10000

Discriminator = Callable[[Any], Any]
Validator = Callable[[Any, Any], Any]


@dataclass(frozen=True)
class NamespaceConfig:
    """One registered namespace."""

    namespace: str
    factory: Callable[[Any], Any]
    cookie_name: str
    discriminator: Discriminator | None = None
    validator: Validator | None = None
    #: the cookie's Path and Domain, to delete it when the session is gone
    cookie_path: str = "/"
    cookie_domain: str | None = None
    #: whether its deletion carries ``Secure`` (the cookie's own, or what its
    #: name prefix or ``Partitioned`` requires) and its ``SameSite``: a
    #: browser ignores a deletion it would not accept as the cookie itself
    cookie_secure: bool = False
    cookie_samesite: str | None = None
    #: whether its cookie, and its deletion, carry ``Partitioned`` (CHIPS)
    partitioned: bool = False
    #: called with the namespace and each session the factory returns
    #: (what a session library needs set up; see :mod:`.libraries`)
    prepare: Callable[[str, Any], None] | None = None
    #: what the manager calls to make a session: the factory, or for
    #: pyramid's cookie sessions a subclass keeping to the cookie budget
    #: (set when registered, by :func:`apply_cookie_budget`)
    loader: Callable[[Any], Any] | None = None
    #: the :class:`~pyramid_session_multi.interfaces.ISessionLibrary` adapter
    #: of the factory (looked up from the factory if not given)
    library: Any = None
    #: the namespace this one is bound to, if any
    bound_to: str | None = None
    #: the :class:`~pyramid_session_multi.lifecycle.fallbacks.FallbackConfig`
    #: of each fallback, in the order they are tried
    fallbacks: tuple[Any, ...] = ()
    #: seconds of disuse after which a session ends on load, ``None`` for no limit
    idle_timeout: int | None = None
    #: seconds after its creation (or last rotation) after which a session
    #: ends on load however busy, ``None`` for no limit
    absolute_timeout: int | None = None
    #: whether the add-on keeps lifetime stamps beside the data (see
    #: :mod:`.lifecycle.lifetime`): a namespace with a timeout, and every
    #: namespace once a revocation store is set (computed; set at commit)
    stamped: bool = field(init=False, default=False)
    #: whether the end of each request that loads it is the add-on's to run
    #: (see :mod:`.lifecycle.ending`): every namespace but a client-side one
    #: with no validator and no binding either way (computed; a namespace
    #: another is bound to is made so at commit).  When it is enlisted, at
    #: load or only once something needs it, its load plan says (see
    #: :func:`.lifecycle.plan.enlists_at_load`)
    contained: bool = field(init=False, default=True)
    #: how many bindings lead from this namespace to an unbound one: partners
    #: come first when the request ends (set at commit)
    binding_depth: int = field(init=False, default=0)
    #: no discriminator, validator, binding, preparation or end of request
    #: to run: the manager's fast path (computed)
    plain: bool = field(init=False, default=False)
    #: what loading it runs (a :class:`~pyramid_session_multi.lifecycle.plan.LoadPlan`),
    #: made at its first load, once the configuration is final
    load_plan: Any = field(init=False, default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.loader is None:
            object.__setattr__(self, "loader", self.factory)
        if self.library is None:
            object.__setattr__(self, "library", library_for(self.factory))
        if self.prepare is None and getattr(self.library, "has_prepare", True):
            object.__setattr__(self, "prepare", self.library.prepare)
        try:
            client_side = self.library.facts(self.factory).get("client_side") is True
        except Exception:
            client_side = False
        # a partitioned cookie gets its attribute at the end of the request
        contained = (
            not client_side
            or self.validator is not None
            or self.bound_to is not None
            or self.partitioned
        )
        if self.idle_timeout is not None or self.absolute_timeout is not None:
            object.__setattr__(self, "stamped", True)
            contained = True
        self.set_contained(contained)

    def set_contained(self, contained: bool) -> None:
        """Say whether the end of request is the add-on's (a partner's is)."""
        object.__setattr__(self, "contained", contained)
        plain = (
            self.discriminator is None
            and self.validator is None
            and self.bound_to is None
            and self.prepare is None
            and not self.fallbacks
            and not contained
        )
        object.__setattr__(self, "plain", plain)
        object.__setattr__(self, "load_plan", None)


class NotIncludedError(ConfigurationError, AttributeError):  # type: ignore[misc]
    """A namespace was registered before ``config.include("pyramid_session_multi")``.

    Also an ``AttributeError``, which is what 0.4 raised.
    """


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
        self._cookie_owners: dict[str, str] = {}
        self._fallback_cookie_owners: dict[str, str] = {}
        self._factory_owners: dict[int, str] = {}

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
        if self.revocations is not None:
            # a store was set by an earlier commit: this namespace records users too
            stamp_for_revocations(config)
        fit_loader(config)
        self.configs[namespace] = config
        if is_pyramid_cookie_factory(config.factory):
            self.cookie_sessions[namespace] = None
        self._factory_owners[id(config.factory)] = namespace
        self._cookie_owners[config.cookie_name] = namespace
        for fallback in config.fallbacks:
            self._factory_owners[id(fallback.factory)] = namespace
            self._fallback_cookie_owners[fallback.cookie_name] = namespace

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
        self.add(namespace_config)
        apply_cookie_budget(self, self.budget, namespace_config)
        return True

    def get(self, namespace: str) -> NamespaceConfig | None:
        """Return the :class:`NamespaceConfig` of ``namespace``, or ``None``."""
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


def stamp_for_revocations(namespace_config: NamespaceConfig) -> None:
    """Make ``namespace_config``'s namespace keep lifetime stamps (a store is set)."""
    object.__setattr__(namespace_config, "stamped", True)
    namespace_config.set_contained(True)
    fit_loader(namespace_config)


def get_manager_config(registry: Registry) -> SessionMultiManagerConfig | None:
    """Return the utility of ``registry``, or ``None`` if not included."""
    utility: SessionMultiManagerConfig | None = registry.queryUtility(ISessionMultiManagerConfig)
    return utility


def _require_manager_config(registry: Registry) -> SessionMultiManagerConfig:
    utility = get_manager_config(registry)
    if utility is None:
        raise NotIncludedError(
            "pyramid_session_multi is not set up: call "
            'config.include("pyramid_session_multi") before registering '
            "session factories."
        )
    return utility


def _resolve(
    namespace: str, argument: str, value: Any, resolve: Callable[[Any], Any] | None
) -> Any:
    if isinstance(value, str):
        if resolve is None:
            raise ConfigurationError(
                f"pyramid_session_multi: namespace {namespace!r}: {argument} is the "
                f"dotted name {value!r}; pass the object itself here, or use the "
                "config.register_session_factory directive, which resolves names."
            )
        try:
            value = resolve(value)
        except Exception as exc:
            raise ConfigurationError(
                f"pyramid_session_multi: namespace {namespace!r}: the {argument} "
                f"{value!r} cannot be imported ({type(exc).__name__}: {exc}); "
                "check the dotted name (package.module:name or package.module.name)."
            ) from exc
    if value is not None and not callable(value):
        raise ConfigurationError(
            f"pyramid_session_multi: namespace {namespace!r}: the {argument} must be "
            f"callable (or a dotted name to a callable), not {value!r}."
        )
    return value


def check_arguments(
    namespace: Any,
    session_factory: Any,
    discriminator: Any,
    validator: Any,
    resolve: Callable[[Any], Any] | None,
    bound_to: Any,
    idle_timeout: Any,
    absolute_timeout: Any,
    partitioned: Any,
) -> tuple[Any, Any, Any]:
    """Check what a registration says on its own, whatever library claims its
    factory: the resolved factory, discriminator and validator.

    Run where the directive is called, so its mistakes are told there; what
    depends on the session libraries is checked when the action runs.
    """
    if not namespace or not isinstance(namespace, str):
        raise ConfigurationError(
            f"pyramid_session_multi: the namespace must be a non-empty string, not {namespace!r}."
        )
    if session_factory is None:
        raise ConfigurationError(
            f"pyramid_session_multi: namespace {namespace!r} needs a session factory, got None."
        )
    session_factory = _resolve(namespace, "session factory", session_factory, resolve)
    discriminator = _resolve(namespace, "discriminator", discriminator, resolve)
    validator = _resolve(namespace, "validator", validator, resolve)
    if bound_to is not None and (not bound_to or not isinstance(bound_to, str)):
        raise ConfigurationError(
            f"pyramid_session_multi: namespace {namespace!r}: bound_to is the namespace "
            f"it is bound to, a non-empty string, not {bound_to!r}."
        )
    if not isinstance(partitioned, bool):
        raise ConfigurationError(
            f"pyramid_session_multi: namespace {namespace!r}: partitioned is True or False, "
            f"not {partitioned!r}."
        )
    _timeout(namespace, "idle_timeout", idle_timeout)
    _timeout(namespace, "absolute_timeout", absolute_timeout)
    return session_factory, discriminator, validator


def build_namespace_config(
    namespace: Any,
    session_factory: Any,
    discriminator: Any = None,
    cookie_name: str | None = None,
    validator: Any = None,
    resolve: Callable[[Any], Any] | None = None,
    bound_to: str | None = None,
    libraries: list[Any] | None = None,
    fallbacks: Any = None,
    idle_timeout: Any = None,
    absolute_timeout: Any = None,
    partitioned: Any = False,
) -> NamespaceConfig:
    """Check and resolve one registration's arguments into a NamespaceConfig.

    Every problem is a :class:`~pyramid.exceptions.ConfigurationError` that
    names the namespace and the argument.  ``resolve`` turns dotted names
    into objects (the configurator's ``maybe_dotted``); ``libraries`` are the
    application's session library adapters, tried before the built-in ones.
    Whether ``bound_to`` names a registered namespace is checked at commit.
    """
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
    )
    library = library_for(session_factory, libraries or ())
    cookie = library.cookie(session_factory) or {}
    written = cookie.get("name")
    if cookie_name is not None and written is not None and cookie_name != written:
        raise ConfigurationError(
            f"pyramid_session_multi: namespace {namespace!r} was given cookie_name="
            f"{cookie_name!r}, but its session factory writes the cookie {written!r}; "
            "logout and rotate() would expire the wrong cookie. Leave cookie_name out "
            "(it is read from the factory) or make the two agree."
        )
    if cookie_name is None:
        cookie_name = written
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
    for attribute in ("path", "domain"):
        problem = cookie_attribute_problem(cookie.get(attribute))
        if problem is not None:
            raise ConfigurationError(
                f"pyramid_session_multi: namespace {namespace!r}, cookie {cookie_name!r}: "
                f"the factory's cookie {attribute} {cookie[attribute]!r} is refused: {problem}; "
                "a browser would read it as other attributes or a broken header."
            )
    refusal = browser_refusal(cookie_name, {**cookie, "partitioned": partitioned})
    if refusal is not None:
        raise ConfigurationError(
            f"pyramid_session_multi: namespace {namespace!r}, cookie {cookie_name!r}: {refusal}."
        )
    fallback_configs = build_fallbacks(
        namespace, fallbacks, resolve, libraries or (), session_factory, library
    )
    for fallback in fallback_configs:
        problem = cookie_name_problem(fallback.cookie_name)
        if problem is not None:
            raise ConfigurationError(
                f"pyramid_session_multi: namespace {namespace!r}, {fallback.describe()}: {problem}."
            )
        for attribute, value in (
            ("path", fallback.cookie_path),
            ("domain", fallback.cookie_domain),
        ):
            problem = cookie_attribute_problem(value)
            if problem is not None:
                raise ConfigurationError(
                    f"pyramid_session_multi: namespace {namespace!r}, {fallback.describe()}: "
                    f"the cookie {attribute} {value!r} is refused: {problem}."
                )
    return NamespaceConfig(
        namespace=namespace,
        factory=session_factory,
        fallbacks=fallback_configs,
        cookie_name=cookie_name,
        discriminator=discriminator,
        validator=validator,
        cookie_path=cookie.get("path") or "/",
        cookie_domain=cookie.get("domain"),
        cookie_secure=deletion_secure(cookie_name, cookie, partitioned),
        cookie_samesite=cookie.get("samesite"),
        partitioned=partitioned,
        library=library,
        bound_to=bound_to,
        idle_timeout=_timeout(namespace, "idle_timeout", idle_timeout),
        absolute_timeout=_timeout(namespace, "absolute_timeout", absolute_timeout),
    )


def _timeout(namespace: str, argument: str, value: Any) -> int | None:
    """A timeout argument: a positive whole number of seconds, or ``None``."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_TIMEOUT:
        return value
    raise ConfigurationError(
        f"pyramid_session_multi: namespace {namespace!r}: {argument} is a positive whole "
        f"number of seconds up to {MAX_TIMEOUT} (ten years), or None for no limit, "
        f"not {value!r}."
    )


#: The longest timeout taken, in seconds (ten years): every store can hold it.
MAX_TIMEOUT = 10 * 365 * 24 * 3600


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

    Registration goes through Pyramid's actions: two registrations of one
    namespace conflict, an including configuration overrides an included
    one, and the cookie and factory checks run on the final set.
    """
    manager_config = _require_manager_config(config.registry)
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
        )
        manager_config.add(namespace_config)
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
        if needed:
            loader = budgeted_cookie_session(
                namespace_config.factory, namespace_config.namespace, budget
            )
        else:
            loader = named_cookie_session(namespace_config.factory, namespace_config.namespace)
        object.__setattr__(namespace_config, "loader", loader)
        object.__setattr__(namespace_config, "load_plan", None)
        fit_loader(namespace_config)
    manager_config.budget = budget
    manager_config.header_may_pass = header_may_pass
    manager_config.header_room = budget.header_limit - largest_header


def check_bindings(manager_config: SessionMultiManagerConfig) -> None:
    """Refuse a ``bound_to`` naming an unregistered namespace, itself, or a loop.

    Then note, on each namespace, how deep it sits in its chain, and make
    every partner's end of request the add-on's: its token is written there.
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
        object.__setattr__(namespace_config, "binding_depth", len(seen) - 1)
    partners = {c.bound_to for c in configs.values() if c.bound_to is not None}
    for partner in partners:
        configs[partner].set_contained(True)


def add_session_library(config: Configurator, library: Any) -> None:
    """Teach the add-on a session library: ``config.add_session_library(library)``.

    ``library`` (an object, a class to instantiate, or a dotted name to
    either) provides
    :class:`~pyramid_session_multi.interfaces.ISessionLibrary`, every member
    of it: it is verified against the interface here, and refused naming
    what it lacks; subclass :class:`pyramid_session_multi.libraries.SessionLibrary`.
    It is tried before the built-in libraries, the last one added first, for
    every namespace registered *after* this call; registering a namespace it
    claims before adding it is a ConfigurationError at commit.  Adding two
    libraries of one :attr:`~pyramid_session_multi.interfaces.ISessionLibrary.name`
    at one include level is a conflict naming both call sites.
    """
    manager_config = _require_manager_config(config.registry)
    library = config.maybe_dotted(library)
    if isinstance(library, type):
        library = library()
    problem = library_problem(library)
    if problem is not None:
        raise ConfigurationError(
            f"pyramid_session_multi: the session library {library!r} {problem}; "
            "subclass pyramid_session_multi.libraries.SessionLibrary."
        )
    name = getattr(library, "name", repr(library))

    def register() -> None:
        manager_config.libraries.insert(0, library)

    intr = config.introspectable("session_multi libraries", name, name, "session_multi library")
    intr["library"] = library
    config.action(
        ("pyramid_session_multi", "session library", name), register, introspectables=(intr,)
    )


def library_problem(library: Any) -> str | None:
    """What ``library`` lacks of :class:`~.interfaces.ISessionLibrary`, said for an error."""
    try:
        verifyObject(ISessionLibrary, library, tentative=True)
    except Invalid:
        pass
    else:
        return None
    # the members in the order the interface declares them: methods, then attributes
    contract: Any = ISessionLibrary
    members = [(name, contract.get(name)) for name in contract.names(all=True)]
    members.sort(key=lambda member: not isinstance(member[1], Method))
    missing = [name for name, _ in members if not hasattr(library, name)]
    if missing:
        return f"lacks {', '.join(missing)}"
    uncallable = [
        name
        for name, description in members
        if isinstance(description, Method) and not callable(getattr(library, name))
    ]
    if uncallable:
        return f"lacks {', '.join(uncallable)} (not callable)"
    try:
        verifyObject(ISessionLibrary, library, tentative=True)
    except Invalid as exc:
        return f"does not implement ISessionLibrary: {exc}"
    return None


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
