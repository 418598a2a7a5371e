"""What loading one namespace runs: its pipeline, worked out once, at commit.

Every load step and check is declared here, by name, in one default order
(:func:`default_load_steps`); an application adds its own by name with
``config.add_session_load_step(name, step, under=..., over=...)``.  They are
kept in a :class:`pyramid.util.TopologicalSorter` on the add-on's registry
utility, and sorted by their names' constraints, never by import order.

Each namespace's :class:`Pipeline` is computed from its own configuration
when the configuration is committed (see
:func:`pyramid_session_multi.config.finalize`): a step is in it only where
the namespace's options ask for it (a validator, a binding, timeouts, a
revocation store, fallbacks).  The migration from fallbacks, and the
adoption of the lifetime record a migrated session carried, run only on the
migration path, in a namespace that has fallbacks.  A namespace whose only
other step is the migration takes the fast path of one without fallbacks
whenever the request carries none of their cookies, or its own session has
data (see :func:`.fallbacks.may_migrate`).

A namespace whose sessions judge themselves as they are made (pyramid's
cookie sessions with lifetimes, see :mod:`.cookie_lifetime`) and that has
nothing else to run is *quick*: the manager makes its session and keeps it,
going through the steps and checks only for a session that ended on load or
records a user to look up in a revocation store.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from pyramid.util import FIRST, LAST, TopologicalSorter

from ..binding import load_binding
from ..events import SessionExpired
from ..failures import FAIL
from .concurrency import merge_on_save
from .cookie_lifetime import stamps_itself
from .fallbacks import cookie_header_names, migrate_from_fallbacks
from .lifetime import ABSOLUTE, IDLE, LifetimeRules
from .lifetime_step import lifetime_check, load_lifetime
from .loading import binding_check, validator_check
from .revoked import revocation_check

#: A step runs on the session just made, before observers see it.
STEP = "step"
#: A check may end the session: the first reason it gives ends it.
CHECK = "check"


def _always(namespace_config: Any) -> bool:
    return True


@dataclass(frozen=True)
class LoadStep:
    """One declared step or check of a namespace's load.

    ``run`` is a :data:`~.loading.Step` (kind :data:`STEP`) or a
    :data:`~.loading.Check` (kind :data:`CHECK`); ``applies`` says, from a
    namespace's configuration, whether the namespace's pipeline has it.
    """

    #: the name it is declared, ordered and shown by
    name: str
    #: what runs
    run: Callable[..., Any]
    #: :data:`STEP` or :data:`CHECK`
    kind: str = STEP
    #: whether a namespace's pipeline has it
    applies: Callable[[Any], bool] = _always
    #: a check a session keeping its own stamps settles as it is made, or
    #: tells the manager it cannot (see :mod:`.cookie_lifetime`)
    self_judged: bool = False
    #: the event each reason of a check is told with, where it is not
    #: :class:`~pyramid_session_multi.events.SessionRejected`
    events: Mapping[str, type] = field(default_factory=dict)
    #: a step with nothing to do unless the request may carry a session
    #: only a fallback reads (see :func:`.fallbacks.may_migrate`): it does
    #: not keep a namespace off the fast path
    migration: bool = False


def _lifetime_applies(namespace_config: Any) -> bool:
    # pyramid's cookie sessions take their stamps out and judge themselves as they are made
    return bool(namespace_config.stamped) and not stamps_itself(namespace_config.loader)


def default_load_steps() -> tuple[LoadStep, ...]:
    """The add-on's load steps and checks, in their default order."""
    return (
        # first: what was loaded is kept as the store held it, records and all
        LoadStep("merge", merge_on_save, STEP, lambda c: c.merge_policy is not None),
        # a bound namespace's and a partner's token leaves the data first
        LoadStep("token", load_binding, STEP, lambda c: c.bound_to is not None or bool(c.partner)),
        LoadStep("lifetime", load_lifetime, STEP, _lifetime_applies),
        # after the lifetime: a migration adopts the stamps of what it moved
        LoadStep(
            "fallbacks", migrate_from_fallbacks, STEP, lambda c: bool(c.fallbacks), migration=True
        ),
        LoadStep("validator", validator_check, CHECK, lambda c: c.validator is not None),
        LoadStep("binding", binding_check, CHECK, lambda c: c.bound_to is not None),
        LoadStep(
            "expiry",
            lifetime_check,
            CHECK,
            lambda c: bool(c.stamped),
            self_judged=True,
            events={IDLE: SessionExpired, ABSOLUTE: SessionExpired},
        ),
        # only where a revocation store is set (which stamps every namespace)
        LoadStep(
            "revocation", revocation_check, CHECK, lambda c: bool(c.revocable), self_judged=True
        ),
    )


def load_step_sorter(steps: tuple[LoadStep, ...] | None = None) -> TopologicalSorter:
    """A sorter holding ``steps`` (the defaults if not given), each after the one before."""
    sorter = TopologicalSorter(default_before=LAST, default_after=FIRST)
    previous = FIRST
    for step in default_load_steps() if steps is None else steps:
        sorter.add(step.name, step, after=previous)
        previous = step.name
    return sorter


def unknown_placement(sorter: TopologicalSorter) -> str | None:
    """What a step of ``sorter`` placed by a name no step has says, or ``None``.

    The sorter itself ignores such a name where another of the step's names is known.
    """
    known = list(sorter.names)
    for name in known:
        for argument, placed in (("under", sorter.name2after), ("over", sorter.name2before)):
            for other in placed.get(name, ()):
                if isinstance(other, str) and other not in known:
                    return (
                        f"pyramid_session_multi: load step {name!r} is placed "
                        f"{argument}={other!r}, but no load step is named {other!r}; "
                        f"the load steps are {', '.join(map(repr, known))}: name one of "
                        "them, or add the step it names too."
                    )
    return None


@dataclass(frozen=True)
class Pipeline:
    """The load steps and checks of one namespace, and when its end is enlisted."""

    #: the steps that concern the namespace, in order
    steps: tuple[Callable[..., Any], ...] = ()
    #: the checks that concern it, in order
    checks: tuple[Callable[..., Any], ...] = ()
    #: the names of both, in the order they run (what the panel and psessions show)
    names: tuple[str, ...] = ()
    #: whether its end of request is enlisted when it loads (see :func:`enlists_at_load`)
    enlist_at_load: bool = False
    #: whether, enlisted at load, its end takes the callbacks its library
    #: queued as the factory made the session right then (see
    #: ``ISessionLibrary.queues_when_made``), so the end of request need not
    #: search the request's queues for them
    claim_at_load: bool = False
    #: whether, claimed at load, its session is made by the manager itself
    #: and what its library queued stays where it was queued, contained
    #: there (see :func:`.saving.load_in_place`) while nothing else asks for
    #: the end of request: a namespace with no discriminator and no
    #: fallbacks, neither bound nor a partner, not merging its saves, and
    #: reporting a failed save rather than failing the response with it; it
    #: goes through its steps and checks only where it has some
    in_place: bool = False
    #: whether, loaded in place, what its loader queues as it makes the
    #: session, one callback of each kind, is its library's without looking
    #: (see ``SessionLibrary.queues_only_its_own``)
    queues_only_its_own: bool = False
    #: whether, loaded in place, its session runs its library's save through
    #: the add-on's containment itself (see
    #: ``SessionLibrary.contains_own_saves``): nothing its library queued is
    #: claimed, and every callback stays as queued
    self_contained: bool = False
    #: whether, as the manager loads it, nothing of the namespace holds the
    #: request for the manager to let go of once the request is over: its
    #: session runs its save itself (:attr:`self_contained`), or it is a
    #: plain or quick namespace whose session holds its request weakly (see
    #: :mod:`pyramid_session_multi.held_request`); no finished callback is
    #: queued for it then
    releases_nothing: bool = False
    #: whether, loaded in place, all it runs is its lifetime (the step and
    #: its check), which the manager then runs with no unit of work
    #: (see :func:`.saving.load_in_place`)
    lifetime_in_place: bool = False
    #: whether the add-on's records (its lifetime stamps) go into the session's
    #: storage only while its library's finished callbacks run, where it saves
    #: (see ``ISessionLibrary.saves_when_finished``), not around its response ones
    records_when_finished: bool = False
    #: whether its sessions look for what contains their save each time they
    #: save (``SessionLibrary.saves_again_through_key``): once the end of
    #: request saved one, it leaves there what puts the records back around
    #: a save the application makes later (see :func:`.saving.leave_later_saves`)
    saves_again: bool = False
    #: whether the session judges itself, with nothing else to run (a
    #: migration aside: see :attr:`fallback_cookies`)
    quick: bool = False
    #: where a migration step is in the pipeline, the names of the
    #: fallbacks' cookies as a Cookie header spells them: a request carrying
    #: none of them has nothing to migrate (see :func:`.fallbacks.may_migrate`)
    fallback_cookies: tuple[str, ...] = ()
    #: the names of the steps and checks besides a migration: none, and the
    #: namespace may take the manager's fast path
    routine: tuple[str, ...] = ()
    #: the event a reason to end a session is told with, where it is not SessionRejected
    reason_events: Mapping[str, type] = field(default_factory=dict)
    #: what its lifetime step needs on every request (a
    #: :class:`~.lifetime.LifetimeRules`), ``None`` where it keeps no stamps
    lifetime: LifetimeRules | None = None


def pipeline_of(namespace_config: Any, sorted_steps: list[LoadStep], is_partner: bool) -> Pipeline:
    """The :class:`Pipeline` of ``namespace_config``, from the sorted declared steps.

    ``is_partner`` says whether another namespace is bound to this one.
    """
    chosen = [step for step in sorted_steps if step.applies(namespace_config)]
    steps = tuple(step.run for step in chosen if step.kind == STEP)
    checks = [step for step in chosen if step.kind == CHECK]
    routine = [step for step in chosen if not step.migration]
    enlist = enlists_at_load(namespace_config, is_partner)
    quick = (
        stamps_itself(namespace_config.loader)
        and not any(step.kind == STEP for step in routine)
        and all(check.self_judged for check in checks)
        and not enlist
        and namespace_config.discriminator is None
        and namespace_config.prepare is None
    )
    events: dict[str, type] = {}
    for check in checks:
        events.update(check.events)
    library = namespace_config.library
    claim_at_load = enlist and getattr(library, "queues_when_made", False) is True
    in_place = (
        claim_at_load
        and namespace_config.bound_to is None
        and not is_partner
        and namespace_config.merge_policy is None
        and namespace_config.on_save_error != FAIL
        and namespace_config.discriminator is None
        and len(routine) == len(chosen)
    )
    self_contained = in_place and asks(library, "contains_own_saves", namespace_config)
    return Pipeline(
        steps=steps,
        checks=tuple(check.run for check in checks),
        names=tuple(step.name for step in chosen if step.kind == STEP)
        + tuple(check.name for check in checks),
        enlist_at_load=enlist,
        claim_at_load=claim_at_load,
        in_place=in_place,
        queues_only_its_own=in_place and asks(library, "queues_only_its_own", namespace_config),
        self_contained=self_contained,
        releases_nothing=self_contained,
        lifetime_in_place=(
            in_place
            and steps == (load_lifetime,)
            and tuple(check.run for check in checks) == (lifetime_check,)
            and namespace_config.prepare is None
        ),
        records_when_finished=getattr(library, "saves_when_finished", False) is True,
        saves_again=getattr(library, "saves_again_through_key", False) is True,
        quick=quick,
        reason_events=MappingProxyType(events),
        fallback_cookies=(
            cookie_header_names(namespace_config.fallbacks) if len(routine) < len(chosen) else ()
        ),
        routine=tuple(step.name for step in routine),
        lifetime=LifetimeRules(namespace_config) if namespace_config.stamped else None,
    )


def asks(library: Any, question: str, namespace_config: Any) -> bool:
    """What ``library`` answers to ``question`` (``queues_only_its_own`` or
    ``contains_own_saves``) of the namespace's loader: ``True`` only if it
    says so, an adapter without the method saying no."""
    method = getattr(library, question, None)
    return method is not None and method(namespace_config.loader) is True


def enlists_at_load(namespace_config: Any, is_partner: bool) -> bool:
    """Whether a namespace whose end of request is the add-on's is enlisted when it loads.

    A server-side namespace is (its store may fail while saving), and so are a
    bound namespace and a partner (their tokens are settled at the end), and a
    stamped one whose session cannot carry its stamps into its cookie itself.
    Any other client-side namespace needs the end of request only when what
    the client holds ends or changes under the add-on's hand: a check rejects
    it, a rotation, a logout, a fallback's migration, each of which enlists it
    then.  Its lifetime stamps ride in its cookie (see
    :mod:`.cookie_lifetime`): a request that only reads or writes it needs no
    end of request of the add-on's.  A partitioned namespace is enlisted
    always: any request may re-issue its cookie, which gets ``Partitioned``
    there.
    """
    if not namespace_config.contained:
        return False
    if (
        namespace_config.bound_to is not None
        or namespace_config.partitioned
        or not namespace_config.client_side
        or is_partner
    ):
        return True
    return bool(namespace_config.stamped) and not stamps_itself(namespace_config.loader)
