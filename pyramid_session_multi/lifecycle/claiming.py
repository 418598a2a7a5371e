"""Which of the callbacks queued on a request are a session library's.

A session library saves its session and sets its cookie in callbacks it
queues on the request.  The end of request (:mod:`.ending`) takes those of
each namespace it ends out of the request's queues, to run them contained:
as the session is made, for a library that queues them only then
(``ISessionLibrary.queues_when_made``), else by searching the queues once
the response is made.  A callback is the library's when it refers to the
session (bound to it, a partial of it, or a closure over it) and its code
is the library's (:class:`LibraryCode`): the application's own callbacks,
holding a session or not, stay in the request's queues, even where the
application defines the session's class.

Each function takes the namespaces' ends (:class:`.ending.NamespaceEnd`)
with their ``session``, ``claimed``, ``callbacks`` and ``finished``, and
their ``config``'s ``library_code``.
"""

import functools
from types import FunctionType, MethodType
from typing import Any

#: The attribute saying that a finished callback releases a request's
#: sessions, and so stays last of the request's finished callbacks (the
#: manager's release has it): a contained save is queued before it.
RELEASES_SESSIONS = "releases_sessions"


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


class LibraryCode:
    """Which code is a namespace's session library's own: made once at commit
    (:attr:`~pyramid_session_multi.namespace.NamespaceConfig.library_code`).

    A function is the library's when its module is one of those its adapter
    declares (``ISessionLibrary.modules``; a package stands for every module
    in it).  Only where the adapter declares none, it is also when it comes
    from a module defining the namespace's factory or one of the session's
    own classes and is either at that module's top level or defined inside
    the factory or the class (their methods and what those define): a
    factory or class may be the application's own subclass of a library's.
    Nothing else counts: a view's callback, even in the package or the
    module of the application's own session class, is the application's.
    """

    __slots__ = ("known", "modules", "scopes")

    def __init__(self, modules: Any, factory: Any) -> None:
        #: the dotted names the adapter declared
        self.modules = tuple(modules)
        #: ``(module, qualified name prefix)`` of the factory's own code
        self.scopes = _scopes((_defining(factory),))
        #: function -> whether it is the library's, for the functions a
        #: session's callbacks were bound to or a partial of (see
        #: :func:`queued_in_place`); only where the adapter declares its
        #: modules (a verdict then depends on the function alone), only
        #: functions without a closure, and at most :data:`KNOWN_AT_MOST`
        self.known: dict[Any, bool] = {}

    def owns(self, function: Any, session_class: type) -> bool:
        """Whether ``function`` is the library's code, for a session of ``session_class``."""
        return _owns(
            self,
            getattr(function, "__module__", None),
            getattr(function, "__qualname__", None),
            session_class,
        )


def _defining(factory: Any) -> Any:
    """What defines the code of ``factory``: itself (a function or a class),
    what a partial calls, or the class of a callable object."""
    while isinstance(factory, functools.partial):
        factory = factory.func
    return factory if isinstance(factory, type | FunctionType) else type(factory)


def _scopes(definers: Any) -> tuple[tuple[str, str], ...]:
    return tuple(
        (definer.__module__, f"{definer.__qualname__}.")
        for definer in definers
        if definer.__module__ != "builtins"
    )


@functools.lru_cache(maxsize=1024)
def _owns(code: LibraryCode, module: Any, qualname: Any, session_class: type) -> bool:
    """:meth:`LibraryCode.owns`, for a function's module and qualified name."""
    if not isinstance(module, str):
        return False
    for declared in code.modules:
        if module == declared or module.startswith(f"{declared}."):
            return True
    if code.modules or not isinstance(qualname, str):  # declared: nothing else is its own
        return False
    top_level = "." not in qualname
    return any(
        module == defined_in and (top_level or qualname.startswith(prefix))
        for defined_in, prefix in (*code.scopes, *_scopes(session_class.__mro__))
    )


def _queued_by_library(callback: Any, session: Any, code: LibraryCode) -> bool:
    """Whether ``callback``, which refers to ``session``, is its library's code."""
    while isinstance(callback, functools.partial):
        callback = callback.func
    return code.owns(getattr(callback, "__func__", callback), type(session))


def library_owner(callback: Any, owners: dict[int, Any]) -> Any:
    """The namespace whose session's library queued ``callback``, if one did."""
    owner = _owner(callback, owners)
    if owner is None or not _queued_by_library(callback, owner.session, owner.config.library_code):
        return None
    return owner


def claim_queued_since(request: Any, state: Any, queued_since: tuple[int, int]) -> None:
    """Move what ``state``'s library queued since ``queued_since`` (the lengths
    of the response and finished callback queues before its factory ran) to
    the namespace; the application's own callbacks stay where they were, in
    the order they were queued."""
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
            if queued_by(callback, state):
                into.append(callback)
            else:
                queue.append(callback)
    state.claimed = True


#: How many functions a :class:`LibraryCode` remembers the verdict of.
KNOWN_AT_MOST = 64


def queued_in_place(callback: Any, session: Any, code: LibraryCode) -> bool:
    """Whether the library of ``session`` queued ``callback`` (as
    :func:`queued_by` tells it), the verdict on a method of ``session`` or a
    partial called with it first remembered by function (see
    :attr:`LibraryCode.known`): a session library queues the same few on
    every request."""
    kind = type(callback)
    if kind is MethodType:
        function = callback.__func__ if callback.__self__ is session else None
    elif kind is functools.partial:
        arguments = callback.args
        function = callback.func if arguments and arguments[0] is session else None
    else:
        return _queued_by_session(callback, session, code)
    if type(function) is not FunctionType:
        # another's, or a callable object (maybe unhashable): never remembered
        return _queued_by_session(callback, session, code)
    known = code.known
    verdict = known.get(function)
    if verdict is None:
        verdict = _queued_by_session(callback, session, code)
        if code.modules and function.__closure__ is None and len(known) < KNOWN_AT_MOST:
            known[function] = verdict
    return verdict


def queued_by(callback: Any, state: Any) -> bool:
    """Whether the library of ``state``'s session queued ``callback``, as
    :func:`library_owner` tells it."""
    return _queued_by_session(callback, state.session, state.config.library_code)


def _queued_by_session(callback: Any, session: Any, code: LibraryCode) -> bool:
    """Whether the library of ``session`` (whose code ``code`` tells) queued
    ``callback``: a bound method of the session, a partial of a function
    called with it, or a function closing over it, is told without walking
    it (each a function: :func:`_owns` asked at once)."""
    session_class: type = type(session)
    kind = type(callback)
    if kind is MethodType:
        if callback.__self__ is not session:
            return False
        if type(callback.__func__) is FunctionType:
            function = callback.__func__
            return _owns(code, function.__module__, function.__qualname__, session_class)
    elif kind is functools.partial and type(callback.func) is FunctionType:
        for referent in callback.args:
            if referent is session:
                function = callback.func
                return _owns(code, function.__module__, function.__qualname__, session_class)
    elif kind is FunctionType:
        for cell in callback.__closure__ or ():
            try:
                if cell.cell_contents is session:
                    return _owns(code, callback.__module__, callback.__qualname__, session_class)
            except ValueError:  # an empty cell
                continue
    owner = _owner(callback, {id(session): session})
    return owner is not None and _queued_by_library(callback, session, code)


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
