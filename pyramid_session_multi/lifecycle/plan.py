"""What loading one namespace runs, worked out once for the namespace.

:data:`.loading.AFTER_MAKE` and :data:`.loading.CHECKS` hold every load step
and check, and most concern only some namespaces: those with fallbacks, with
a validator, bound, stamped (:data:`.loading.APPLIES` says which).  A
namespace's :class:`LoadPlan` keeps those that concern it, in their order,
and whether its end of request is enlisted as soon as it loads.  It is made at
the namespace's first load, when the configuration is final, and made again
should a step or a check be added later.

A namespace whose sessions judge themselves as they are made (pyramid's
cookie sessions with lifetimes, see :mod:`.cookie_lifetime`) and that has
nothing else to run is *quick*: the manager makes its session and keeps it,
going through the steps and checks only for a session that ended on load or
records a user to look up in a revocation store.
"""

from typing import Any

from .cookie_lifetime import stamps_itself
from .loading import AFTER_MAKE, APPLIES, CHECKS, SELF_JUDGED


class LoadPlan:
    """The load steps and checks of one namespace, and when its end is enlisted."""

    __slots__ = ("checks", "checks_seen", "enlist_at_load", "quick", "steps", "steps_seen")

    def __init__(
        self,
        steps: tuple[Any, ...],
        checks: tuple[Any, ...],
        enlist_at_load: bool,
        quick: bool = False,
    ):
        #: the steps of :data:`.loading.AFTER_MAKE` that concern the namespace
        self.steps = steps
        #: the checks of :data:`.loading.CHECKS` that concern it
        self.checks = checks
        #: whether its end of request is enlisted when it loads (see :func:`enlists_at_load`)
        self.enlist_at_load = enlist_at_load
        #: whether the session judges itself, with nothing else to run
        self.quick = quick
        #: how many steps and checks there were when the plan was made
        self.steps_seen = len(AFTER_MAKE)
        self.checks_seen = len(CHECKS)


def plan_of(namespace_config: Any, configs: dict[str, Any]) -> LoadPlan:
    """The :class:`LoadPlan` of ``namespace_config``, made if it has none or an old one.

    ``configs`` are every namespace's configurations, by namespace.
    """
    plan: LoadPlan | None = namespace_config.load_plan
    if plan is None or plan.steps_seen != len(AFTER_MAKE) or plan.checks_seen != len(CHECKS):
        steps = tuple(step for step in AFTER_MAKE if _concerns(step, namespace_config))
        checks = tuple(check for check in CHECKS if _concerns(check, namespace_config))
        enlist = enlists_at_load(namespace_config, configs)
        quick = (
            stamps_itself(namespace_config.loader)
            and not steps
            and all(check in SELF_JUDGED for check in checks)
            and not enlist
            and namespace_config.discriminator is None
            and namespace_config.prepare is None
        )
        plan = LoadPlan(steps, checks, enlist, quick)
        object.__setattr__(namespace_config, "load_plan", plan)
    return plan


def _concerns(step: Any, namespace_config: Any) -> bool:
    applies = APPLIES.get(step)
    return applies is None or bool(applies(namespace_config))


def enlists_at_load(namespace_config: Any, configs: dict[str, Any]) -> bool:
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
        or not _client_side(namespace_config)
    ):
        return True
    namespace = namespace_config.namespace
    if any(other.bound_to == namespace for other in configs.values()):
        return True
    return namespace_config.stamped and not stamps_itself(namespace_config.loader)


def _client_side(namespace_config: Any) -> bool:
    try:
        facts = namespace_config.library.facts(namespace_config.factory)
    except Exception:
        return False
    return facts.get("client_side") is True
