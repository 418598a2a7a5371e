"""Teaching the add-on something new: a session library, a load step.

Each is a directive in Pyramid's four beats: check and resolve the
arguments, a ``register()`` closure that changes the add-on's registry
utility, an introspectable, and ``config.action`` with a discriminator (so
two of one name conflict, naming both call sites).
"""

import functools
from typing import Any

from pyramid.config import Configurator
from pyramid.exceptions import ConfigurationError
from zope.interface.exceptions import Invalid
from zope.interface.interface import Method
from zope.interface.verify import verifyObject

from .config import LATE_ORDER, require_manager_config
from .interfaces import ISessionLibrary
from .lifecycle.pipeline import CHECK, STEP, LoadStep, default_load_steps


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
    manager_config = require_manager_config(config.registry)
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


def add_session_load_step(
    config: Configurator,
    name: str,
    step: Any,
    *,
    check: bool = False,
    applies: Any = None,
    under: Any = None,
    over: Any = None,
) -> None:
    """Add a step to the load of every namespace it applies to:
    ``config.add_session_load_step(name, step, ...)``.

    As Pyramid's ``add_view_deriver``: the add-on's own steps are declared
    once, in their default order (``token``, ``lifetime``, ``fallbacks``, then the checks
    ``validator``, ``binding``, ``expiry``, ``revocation``: see
    ``pyramid_session_multi.lifecycle.pipeline``); another is placed by
    name, and every namespace's pipeline is computed again at commit.

    :param name: the step's name, shown by the debug toolbar panel and
        ``psessions`` (the ``steps`` column); one name per step.  The
        add-on's own names are refused with a
        :class:`~pyramid.exceptions.ConfigurationError`: its steps are not
        replaceable.
    :param step: a callable (or a dotted name to one).  A step is called with
        the request's unit of work (a
        :class:`~pyramid_session_multi.lifecycle.work.RequestWork`), the namespace's
        :class:`~pyramid_session_multi.namespace.NamespaceConfig`, the request,
        the session just made and the namespace's end of request (``None``
        where it is not the add-on's).  With ``check=True`` it is a check,
        called with the unit of work, the namespace's configuration, the
        request, the session and its partner's session, which returns ``None`` to keep the session
        or a reason (text) to end it, told as
        :class:`~pyramid_session_multi.events.SessionRejected`.
    :param applies: an optional callable taking a namespace's configuration:
        the step is in the pipeline of the namespaces it says yes to (every
        one without it).
    :param under: the name(s) of the steps it runs after.
    :param over: the name(s) of the steps it runs before.

    Steps run before observers see the session, checks after; adding a step
    of one name twice at one include level is a conflict.
    """
    manager_config = require_manager_config(config.registry)
    if not isinstance(name, str) or not name:
        raise ConfigurationError(
            f"pyramid_session_multi: a load step's name is a non-empty string, not {name!r}."
        )
    step = _resolved(config, name, "step", step)
    applies = _resolved(config, name, "applies", applies)
    for argument, placed in (("under", under), ("over", over)):
        if placed is None:
            continue
        names = [placed] if isinstance(placed, str) else placed
        if not isinstance(names, (list, tuple)) or not all(
            isinstance(other, str) and other for other in names
        ):
            raise ConfigurationError(
                f"pyramid_session_multi: load step {name!r}: {argument} takes a step's name "
                f"or a list of names, not {placed!r}."
            )
    own = [declared.name for declared in default_load_steps()]
    if name in own:
        raise ConfigurationError(
            f"pyramid_session_multi: load step {name!r} is one of the add-on's own steps "
            f"({', '.join(own)}), which cannot be replaced; pick another name for the "
            "application's step (and place it with under= or over=)."
        )
    for argument, value in (("step", step), ("applies", applies)):
        if value is not None and not callable(value):
            raise ConfigurationError(
                f"pyramid_session_multi: load step {name!r}: {argument} must be callable, "
                f"not {value!r}."
            )
    # a check runs after every step whatever its place: only a step is kept after these
    if not check and any(other in HIDING_STEPS for other in _names(over)):
        raise ConfigurationError(
            f"pyramid_session_multi: load step {name!r} cannot run over={over!r}: the "
            f"add-on's steps {', '.join(map(repr, HIDING_STEPS))} take its own records out "
            "of the session, out of an application step's sight; place it after them "
            "(over='fallbacks', under='lifetime' or later)."
        )
    # after the steps that take the add-on's records out of the session
    if not check:
        under = [*_names(under), *(name for name in HIDING_STEPS if name not in _names(under))]
    declared = LoadStep(name, _noted(name, step), CHECK if check else STEP, applies or _always)

    def register() -> None:
        manager_config.add_load_step(declared, under=under, over=over)

    intr = config.introspectable("session_multi load steps", name, name, "session_multi load step")
    intr["step"] = step
    intr["under"] = under
    intr["over"] = over
    # after the namespaces, so that steps placed by each other's names are all
    # added before the pipelines are derived
    config.action(
        ("pyramid_session_multi", "load step", name),
        register,
        introspectables=(intr,),
        order=LOAD_STEP_ORDER,
    )


#: When load steps are added at commit: after the namespaces, before the late checks.
LOAD_STEP_ORDER = LATE_ORDER - 1


def _resolved(config: Configurator, name: str, argument: str, value: Any) -> Any:
    """``value``, imported where it is a dotted name; an error naming the step if it
    cannot be."""
    try:
        return config.maybe_dotted(value)
    except ImportError as exc:
        raise ConfigurationError(
            f"pyramid_session_multi: load step {name!r}: {argument} = {value!r} cannot be "
            f"imported ({type(exc).__name__}: {exc}); give the callable itself, or a dotted "
            "name to it (package.module:name) that imports."
        ) from exc


#: The add-on's steps that take its records (binding token, lifetime stamps)
#: out of a session: every application step runs after them.
HIDING_STEPS = ("token", "lifetime")


def _names(placed: Any) -> list[str]:
    """``under=`` or ``over=`` as a list of names."""
    if placed is None:
        return []
    return [placed] if isinstance(placed, str) else list(placed)


def _noted(name: str, run: Any) -> Any:
    """``run``, whose exceptions get a note naming the step and the namespace."""

    @functools.wraps(run)
    def run_noted(work: Any, namespace_config: Any, request: Any, session: Any, other: Any) -> Any:
        try:
            return run(work, namespace_config, request, session, other)
        except Exception as exc:
            exc.add_note(
                f"pyramid_session_multi: raised by the load step {name!r} of namespace "
                f"{namespace_config.namespace!r}"
            )
            raise

    return run_noted


def _always(namespace_config: Any) -> bool:
    return True


def library_problem(library: Any) -> str | None:
    """What ``library`` lacks of :class:`~.interfaces.ISessionLibrary`, said for an error."""
    try:
        verifyObject(ISessionLibrary, library, tentative=True)
    except Invalid:
        pass
    else:
        modules = library.modules
        if not isinstance(modules, tuple | list | frozenset) or not all(
            isinstance(module, str) and module for module in modules
        ):
            return f"declares modules {modules!r}, not a tuple of dotted names"
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
