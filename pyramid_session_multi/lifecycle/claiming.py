"""Which of a request's callbacks a namespace's session library queued.

The end of request (see :mod:`.ending`) takes a library's response and
finished callbacks out of Pyramid's queues to run them itself, namespace by
namespace; the application's own callbacks, holding a session or not, stay
where they are and always run.  Each namespace's end is given here as an
object with ``session``, ``callbacks`` and ``finished``.
"""

import functools
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


def _queued_by_library(callback: Any, session: Any) -> bool:
    """Whether ``callback`` is the session library's own (not the application's
    that holds the session): its code comes from a package of the session's class."""
    while isinstance(callback, functools.partial):
        callback = callback.func
    function = getattr(callback, "__func__", callback)
    package = _package(getattr(function, "__module__", None))
    if package is None:
        return False
    return any(
        _package(cls.__module__) == package
        for cls in type(session).__mro__
        if cls.__module__ != "builtins"
    )


def library_owner(callback: Any, owners: dict[int, Any]) -> Any:
    """The namespace whose session's library queued ``callback``, if one did."""
    owner = _owner(callback, owners)
    if owner is None or not _queued_by_library(callback, owner.session):
        return None
    return owner


def claim_callbacks(request: Any, states: list[Any], finished_only: bool = False) -> None:
    """Move each session's queued callbacks from the request to its namespace.

    Only what its library queued is claimed: the application's own callbacks,
    holding a session or not, stay in the request's queues and always run.
    """
    owners = {id(state.session): state for state in states if state.session is not None}
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
