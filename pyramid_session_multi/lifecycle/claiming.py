"""Which of the callbacks queued on a request are a session library's.

A session library saves its session and sets its cookie in callbacks it
queues on the request.  The end of request (:mod:`.ending`) takes those of
each namespace it ends out of the request's queues, to run them contained:
as the session is made, for a library that queues them only then
(``ISessionLibrary.queues_when_made``), else by searching the queues once
the response is made.  A callback is the library's when it refers to the
session (bound to it, a partial of it, or a closure over it) and its code
comes from a package of the session's class: the application's own
callbacks, holding a session or not, stay in the request's queues.

Each function takes the namespaces' ends (:class:`.ending.NamespaceEnd`)
with their ``session``, ``claimed``, ``callbacks`` and ``finished``.
"""

import functools
from types import FunctionType, MethodType
from typing import Any


def _owner(callback: Any, owners: dict[int, Any]) -> Any:
    """The namespace whose session ``callback`` is bound to, called with, or closes over."""
    while True:
        target = getattr(callback, "__self__", None)
        if target is not None:  # a bound method: its object is all it refers to
            return owners.get(id(target))
        if isinstance(callback, functools.partial):
            for referent in (*callback.args, *callback.keywords.values()):
                owner = owners.get(id(referent))
                if owner is not None:
                    return owner
            callback = callback.func
            continue
        for cell in getattr(callback, "__closure__", None) or ():
            try:
                owner = owners.get(id(cell.cell_contents))
            except ValueError:  # an empty cell
                continue
            if owner is not None:
                return owner
        return None


def _package(module: Any) -> str | None:
    return module.partition(".")[0] if isinstance(module, str) else None


def _queued_by_library(callback: Any, session_class: type) -> bool:
    """Whether ``callback`` is the session library's own (not the application's
    that holds the session): its code comes from a package of the session's class."""
    while isinstance(callback, functools.partial):
        callback = callback.func
    function = getattr(callback, "__func__", callback)
    package = _package(getattr(function, "__module__", None))
    return package is not None and package in _packages_of(session_class)


@functools.lru_cache(maxsize=256)
def _packages_of(session_class: type) -> frozenset[str | None]:
    """The top-level packages the classes of ``session_class`` are defined in."""
    return frozenset(
        _package(cls.__module__) for cls in session_class.__mro__ if cls.__module__ != "builtins"
    )


def library_owner(callback: Any, owners: dict[int, Any]) -> Any:
    """The namespace whose session's library queued ``callback``, if one did."""
    owner = _owner(callback, owners)
    if owner is None or not _queued_by_library(callback, type(owner.session)):
        return None
    return owner


def claim_queued_since(request: Any, state: Any, queued_since: tuple[int, int]) -> None:
    """Move what ``state``'s library queued since ``queued_since`` (the lengths
    of the response and finished callback queues before its factory ran) to
    the namespace; the application's own callbacks stay where they were, in
    the order they were queued."""
    session = state.session
    pairs = (
        (request.response_callbacks, queued_since[0], state.callbacks),
        (request.finished_callbacks, queued_since[1], state.finished),
    )
    for queue, since, into in pairs:
        # each callback queued since, first to last, leaves its place: the
        # library's for the namespace, the application's to the back of the queue
        for _ in range(len(queue) - since):
            callback = queue[since]
            del queue[since]
            if queued_by(callback, session):
                into.append(callback)
            else:
                queue.append(callback)
    state.claimed = True


def queued_by(callback: Any, session: Any) -> bool:
    """Whether ``session``'s library queued ``callback`` (:func:`library_owner`
    for one session): a bound method of the session, a partial of a function
    called with it, or a function closing over it, is told without walking it."""
    kind = type(callback)
    session_class: type = type(session)
    if kind is MethodType:
        if callback.__self__ is not session:
            return False
        if type(callback.__func__) is FunctionType:
            return _library_module(callback.__func__.__module__, session_class)
    elif kind is functools.partial and type(callback.func) is FunctionType:
        for referent in callback.args:
            if referent is session:
                return _library_module(callback.func.__module__, session_class)
    elif kind is FunctionType:
        for cell in callback.__closure__ or ():
            try:
                if cell.cell_contents is session:
                    return _library_module(callback.__module__, session_class)
            except ValueError:  # an empty cell
                continue
    return library_owner(callback, {id(session): _Made(session)}) is not None


class _Made:
    """What :func:`library_owner` reads of a namespace: its session."""

    __slots__ = ("session",)

    def __init__(self, session: Any) -> None:
        self.session = session


@functools.lru_cache(maxsize=256)
def _library_module(module: Any, session_class: type) -> bool:
    """Whether code of the module named ``module`` is a package of ``session_class``'s."""
    package = _package(module)
    return package is not None and package in _packages_of(session_class)


def claim_callbacks(request: Any, states: list[Any], finished_only: bool = False) -> None:
    """Move each session's queued callbacks from the request to its namespace.

    Only what its library queued is claimed: the application's own callbacks,
    holding a session or not, stay in the request's queues and always run.
    """
    owners = {
        id(state.session): state
        for state in states
        if state.session is not None and not state.claimed
    }
    if not owners:
        return
    queues = [(request.__dict__.get("finished_callbacks"), "finished")]
    if not finished_only:
        queues.insert(0, (request.__dict__.get("response_callbacks"), "callbacks"))
    for queue, into in queues:
        if not queue:
            continue
        kept = []
        while queue:
            callback = queue.popleft()
            owner = library_owner(callback, owners)
            if owner is None:
                kept.append(callback)
            else:
                getattr(owner, into).append(callback)
        queue.extend(kept)
