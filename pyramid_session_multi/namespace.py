"""The frozen configuration of one namespace, and how a registration builds it.

:func:`build_namespace_config` checks and resolves one registration's
arguments into the declared part of a :class:`NamespaceConfig`; what the
add-on derives from it (the loader, whether it is stamped or contained, its
pipeline) is computed at commit by :func:`finalize`, into a new frozen object.
"""

import functools
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from pyramid.exceptions import ConfigurationError

from . import hidden
from .binding import BINDING_KEY
from .concurrency.merge import MISSING, Concealed, MergePolicy
from .concurrency.modes import MERGE, concurrent_writes_problem, mode_of
from .cookies import (
    browser_refusal,
    cookie_attribute_problem,
    cookie_name_problem,
    deletion_secure,
)
from .failures import ON_SAVE_ERROR, REPORT
from .held_request import holds_request_weakly
from .libraries import library_for
from .lifecycle.claiming import LibraryCode
from .lifecycle.cookie_lifetime import fit_loader
from .lifecycle.fallbacks import build_fallbacks
from .lifecycle.lifetime import LIFETIME_KEY, MAX_TIMEOUT
from .lifecycle.pipeline import pipeline_of

Discriminator = Callable[[Any], Any]
Validator = Callable[[Any, Any], Any]


@dataclass(frozen=True)
class NamespaceConfig:
    """One registered namespace: what was declared, and what commit derived from it.

    Frozen: the derived fields (``stamped``, ``revocable``, ``contained``,
    ``binding_depth``, ``plain``, ``loader``, ``prepare``, ``library``,
    ``library_code``, ``merge_policy``, ``pipeline``) are computed in one
    finalize step at commit, which builds a new object; nothing changes one
    after that.
    """

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
    #: what a failure to save its session does: ``"report"`` or ``"fail"``
    #: (see :mod:`pyramid_session_multi.failures`)
    on_save_error: str = REPORT
    #: called with the namespace and each session the factory returns
    #: (what a session library needs set up; see :mod:`.libraries`); its
    #: library's ``prepare`` when finalized, unless that does nothing or its
    #: ``prepared_loader`` makes them prepared
    prepare: Callable[[str, Any], None] | None = None
    #: what the manager calls to make a session: the factory, or for
    #: pyramid's cookie sessions a subclass keeping to the cookie budget and
    #: the lifetime stamps, or the library's prepared loader (derived when
    #: finalized)
    loader: Callable[[Any], Any] | None = None
    #: the :class:`~pyramid_session_multi.interfaces.ISessionLibrary` adapter
    #: of the factory (looked up from the factory when finalized if not given)
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
    #: namespace once a revocation store is set (derived)
    stamped: bool = False
    #: whether its data travels in its cookie (derived, from its library's facts)
    client_side: bool | None = None
    #: whether a revocation store is set, so that its sessions may record a
    #: user a revocation ends (derived)
    revocable: bool = False
    #: whether the end of each request that loads it is the add-on's to run
    #: (see :mod:`.lifecycle.ending`): every namespace but a client-side one
    #: with no validator, binding, partner, timeouts or partitioned cookie
    #: (derived).  When it is enlisted, at load or only once something needs
    #: it, its pipeline says (see :func:`.lifecycle.pipeline.enlists_at_load`)
    contained: bool = True
    #: whether another namespace is bound to this one (derived)
    partner: bool = False
    #: how many bindings lead from this namespace to an unbound one: partners
    #: come first when the request ends (derived)
    binding_depth: int = 0
    #: no discriminator, validator, binding, preparation or end of request
    #: to run: the manager's fast path (derived)
    plain: bool = False
    #: how its saves meet parallel requests': ``"merge"`` or ``"overwrite"``
    #: (what was declared, else whether its store merges; see :doc:`/narr/parallel`)
    concurrent_writes: str = "overwrite"
    #: settles a key parallel requests both changed (``None``: the last writer)
    on_conflict: Callable[[Any, Any, Any, Any], Any] | None = None
    #: what its merging saves are given, ``None`` where it overwrites (derived)
    merge_policy: MergePolicy | None = field(default=None, repr=False, compare=False)
    #: what loading it runs (a :class:`~pyramid_session_multi.lifecycle.pipeline.Pipeline`),
    #: derived from the configuration and the declared load steps
    pipeline: Any = field(default=None, repr=False, compare=False)
    #: which code is its library's, to tell the callbacks it queues from the
    #: application's (a :class:`~pyramid_session_multi.lifecycle.claiming.LibraryCode`,
    #: derived from its library's ``modules`` and its factory)
    library_code: Any = field(default=None, repr=False, compare=False)

    @property
    def steps(self) -> tuple[str, ...]:
        """The names of the load steps and checks of its pipeline, in order."""
        return () if self.pipeline is None else tuple(self.pipeline.names)


def _resolve(
    namespace: str, argument: str, value: Any, resolve: Callable[[Any], Any] | None
) -> Any:
    dotted = None
    if isinstance(value, str):
        if not value.strip():
            raise ConfigurationError(
                f"pyramid_session_multi: namespace {namespace!r}: the {argument} is empty; "
                "give a dotted name to a callable (package.module:name), or leave it out."
            )
        if resolve is None:
            raise ConfigurationError(
                f"pyramid_session_multi: namespace {namespace!r}: {argument} is the "
                f"dotted name {value!r}; pass the object itself here, or use the "
                "config.register_session_factory directive, which resolves names."
            )
        dotted = value
        try:
            value = resolve(value)
        except Exception as exc:
            raise ConfigurationError(
                f"pyramid_session_multi: namespace {namespace!r}: the {argument} "
                f"{value!r} cannot be imported ({type(exc).__name__}: {exc}); "
                "check the dotted name (package.module:name or package.module.name)."
            ) from exc
    if value is not None and not callable(value):
        # the type only: the object itself may hold secrets (os.environ, a URL)
        given = f"{dotted!r} names" if dotted is not None else "it was given"
        raise ConfigurationError(
            f"pyramid_session_multi: namespace {namespace!r}: the {argument} must be "
            f"callable (or a dotted name to a callable); {given} a "
            f"{type(value).__name__} object, not a callable."
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
    on_save_error: Any = REPORT,
    concurrent_writes: Any = None,
    on_conflict: Any = None,
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
    if on_save_error not in ON_SAVE_ERROR:
        raise ConfigurationError(
            f"pyramid_session_multi: namespace {namespace!r}: on_save_error is "
            f"{' or '.join(repr(value) for value in ON_SAVE_ERROR)}, not {on_save_error!r}."
        )
    problem = concurrent_writes_problem(concurrent_writes)
    if problem is not None:
        raise ConfigurationError(
            f"pyramid_session_multi: namespace {namespace!r}: concurrent_writes {problem}."
        )
    _resolve(namespace, "on_conflict", on_conflict, resolve)
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
    on_save_error: Any = REPORT,
    concurrent_writes: Any = None,
    on_conflict: Any = None,
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
        on_save_error,
        concurrent_writes,
        on_conflict,
    )
    library = library_for(session_factory, libraries or ())
    declared_mode = concurrent_writes
    try:
        concurrent_writes = mode_of(concurrent_writes, library.merges(session_factory))
    except ValueError as exc:
        raise ConfigurationError(
            f"pyramid_session_multi: namespace {namespace!r}: concurrent_writes='merge' "
            f"is refused: {exc}."
        ) from exc
    if on_conflict is not None and concurrent_writes != MERGE:
        why = (
            "concurrent_writes is 'overwrite'"
            if declared_mode is not None
            else "its store does not merge parallel saves (a client-side session, or a "
            "store the add-on does not merge: see the 'Parallel requests' page)"
        )
        raise ConfigurationError(
            f"pyramid_session_multi: namespace {namespace!r}: on_conflict would never "
            f"run: {why}, so the last writer takes the whole session. Remove "
            "on_conflict, or merge: leave concurrent_writes out (or set it to 'merge') "
            "on a store that merges."
        )
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
        on_save_error=on_save_error,
        concurrent_writes=concurrent_writes,
        on_conflict=_resolve(namespace, "on_conflict", on_conflict, resolve),
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


def finalize(namespace_config: NamespaceConfig, manager_config: Any) -> NamespaceConfig:
    """``namespace_config`` with every derived value computed: a new frozen object.

    The one place where what a namespace needs is worked out from what was
    declared and what the application set up (the cookie budget, a
    revocation store, bindings, the declared load steps): its library and
    preparation, whether it keeps lifetime stamps, the loader the manager
    calls, whether its end of request is the add-on's, how deep it sits in
    a chain of bindings, whether it takes the fast path, and its pipeline.
    Finalizing a finalized configuration again gives the same result for
    the same setup.
    """
    namespace = namespace_config.namespace
    library = namespace_config.library
    if library is None:
        library = library_for(namespace_config.factory)
    loader = manager_config.budget_loaders.get(namespace, namespace_config.factory)
    prepare = namespace_config.prepare
    if prepare is None and library.has_prepare:
        # sessions made prepared where the library can: nothing to call per request
        prepared = library.prepared_loader(loader, namespace)
        if prepared is None:
            prepare = library.prepare
        else:
            loader = prepared
    stamped = (
        namespace_config.idle_timeout is not None
        or namespace_config.absolute_timeout is not None
        or manager_config.revocations is not None
    )
    client_side = namespace_config.client_side
    if client_side is None:
        # what the factory is does not change: read once
        try:
            client_side = library.facts(namespace_config.factory).get("client_side") is True
        except Exception:
            client_side = False
    is_partner = namespace in manager_config.partners
    contained = (
        not client_side
        or namespace_config.validator is not None
        or namespace_config.bound_to is not None
        or namespace_config.partitioned
        or stamped
        or is_partner
    )
    merge_policy = None
    if namespace_config.concurrent_writes == MERGE and contained:
        # the library's bookkeeping and the add-on's records are not the application's
        # the records this namespace keeps (an application's key spelled like
        # one it does not keep is the application's, plain)
        records = frozenset(
            ([LIFETIME_KEY] if stamped else [])
            + ([BINDING_KEY] if namespace_config.bound_to is not None or is_partner else [])
        )
        own_keys = frozenset(library.bookkeeping) | records
        concealed = Concealed(
            records,
            functools.partial(hidden.split, missing=MISSING),
            lambda own, record: hidden.join(own, record, MISSING),
        )
        merge_policy = MergePolicy(namespace_config.on_conflict, own_keys, concealed, namespace)
        loader = library.merging_loader(loader)
    derived = replace(
        namespace_config,
        merge_policy=merge_policy,
        library=library,
        library_code=LibraryCode(library.modules, namespace_config.factory),
        prepare=prepare,
        client_side=client_side,
        stamped=stamped,
        revocable=manager_config.revocations is not None,
        loader=loader,
        contained=contained,
        partner=is_partner,
        binding_depth=binding_depth(namespace_config, manager_config.configs),
    )
    # pyramid's cookie sessions keep their stamps themselves, in a subclass
    derived = fit_loader(derived)
    pipeline = pipeline_of(derived, manager_config.sorted_steps(), is_partner)
    plain = (
        namespace_config.discriminator is None
        and namespace_config.validator is None
        and namespace_config.bound_to is None
        and prepare is None
        and not contained
        # an application's own step or check makes it go through its pipeline;
        # a migration from fallbacks only where a request may need one
        and not pipeline.routine
    )
    if (plain or pipeline.quick) and holds_request_weakly(derived.loader):
        # its session holds the request weakly, and nothing else of it holds it
        pipeline = replace(pipeline, releases_nothing=True)
    final: NamespaceConfig = replace(derived, pipeline=pipeline, plain=plain)
    return final


def binding_depth(namespace_config: NamespaceConfig, configs: dict[str, Any]) -> int:
    """How many bindings lead from the namespace to an unbound one, as far as known."""
    seen = {namespace_config.namespace}
    partner = namespace_config.bound_to
    while partner is not None and partner in configs and partner not in seen:
        seen.add(partner)
        partner = configs[partner].bound_to
    return len(seen) - 1
