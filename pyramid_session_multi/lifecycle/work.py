"""One request's sessions: the unit of work every lifecycle step is given.

As SQLAlchemy's ``UOWTransaction`` holds everything about one flush, a
:class:`UnitOfWork` holds everything about one request's namespaces: the
sessions loaded, the login and the revocations this request made, and the
end of request decided for each namespace (a
:class:`~.ending.NamespaceEnd`, written only through :class:`~.ending.RequestEnd`).
Lifecycle code (the load steps, :mod:`.changes`, :mod:`.fallbacks`, the
revocations) receives it typed as :class:`RequestWork` and asks it, never
the manager's internals; nothing is kept on the request.
"""

import logging
import weakref
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from pyramid.request import Request

from ..events import SessionSaveFailed, deliver, has_subscribers, hash_session_id
from .ending import INVALIDATED, NamespaceEnd, RequestEnd
from .saving import leave_later_saves

logger = logging.getLogger(__name__)

#: ``session_id`` not given: read it from the session
_MISSING: Any = object()


class RequestWork(Protocol):
    """What a load step, a check and the rest of the lifecycle may ask of one
    request's sessions: the face of the request's unit of work."""

    #: the ``(userid, time)`` of a login (``rotate(userid=...)`` of every
    #: namespace) in this request: a namespace first loaded after it, with no
    #: session yet, is that user's too
    login: tuple[Any, float] | None
    #: what this request asked of, or wrote to, the revocation store: userid
    #: -> time of the user's revocation, ``None`` for none
    revoked: dict[str, float | None]
    #: userid -> the logins of the user whose device was ended, as the store said
    ended: dict[str, frozenset[float]]
    #: the namespaces whose recorded user's stamps moved in this request (a
    #: login, a rotation, the idle clock moved): the device index hears of them
    moved: set[str]
    #: the ``(userid, login)`` of logins a login in this request replaced on
    #: this client: their entries leave the index with the write of the new one
    replaced: set[tuple[str, float]]

    @property
    def request(self) -> Request:
        """The request (``RuntimeError`` once it is gone)."""

    @property
    def configs(self) -> Mapping[str, Any]:
        """Every namespace's frozen configuration, by namespace."""

    @property
    def revocations(self) -> Any:
        """The revocation store, ``None`` if none is set."""

    def load(self, namespace: str) -> Any:
        """The session of ``namespace``, loaded if it was not."""

    def loaded(self, namespace: str) -> Any:
        """The session ``namespace`` loaded in this request, ``None`` if it did not."""

    def enlist(
        self, namespace_config: Any, session: Any, queued_since: tuple[int, int] | None = None
    ) -> NamespaceEnd:
        """The namespace's end of request, enlisted (the add-on saves it);
        ``queued_since``: the lengths of the request's response and finished
        callback queues before the factory made ``session``, whose library
        queues its callbacks only then."""

    def end(self, namespace_config: Any, session: Any, how: str) -> NamespaceEnd:
        """What the client held of the namespace ended (invalidated or rejected)."""

    def drop_cookie(self, namespace_config: Any) -> NamespaceEnd:
        """Delete the namespace's cookie at the end, whatever its session holds."""

    def saved_already(self, namespace_config: Any, session: Any) -> bool:
        """Whether the namespace's library saved ``session`` and set its cookie
        already in this request (what it would send from now on is too late)."""

    def mark_rotated(self, namespace_config: Any, session: Any, retire: Any = None) -> None:
        """The namespace's session got a new id in this request; ``retire``
        (what its library's ``rotate`` returned) deletes the old stored state
        once the new one is saved."""

    def delete_also(self, namespace_config: Any, cookie: Any) -> None:
        """Delete ``cookie`` (a fallback's) with the namespace's end."""

    def hide(self, namespace_config: Any, session: Any, record: Any) -> None:
        """Keep ``record`` in the session's storage only while its library saves it."""

    def merging(self, namespace_config: Any, session: Any, outcome: Any) -> None:
        """The namespace's saves merge (see :doc:`/narr/parallel`); ``outcome``
        records what they do."""

    def after_save(self, namespace_config: Any, session: Any, hook: Any) -> None:
        """Call ``hook`` with the response once the namespace's session is saved."""

    def queue_event(self, namespace_config: Any, session: Any, event: Any) -> None:
        """Send ``event`` once the namespace's load is complete."""

    def take_after_save(self, namespace_config: Any, kind: type) -> list[Any]:
        """Take the hooks of ``kind`` out of what runs once the namespace is saved."""

    def ended_earlier(self, namespace: str) -> bool:
        """Whether the namespace was logged out, or its cookie dropped, earlier
        in this request."""

    def session_id(self, namespace: str, session: Any) -> str | None:
        """The session's id as its library reads it, ``None`` if unknown."""

    def event(
        self,
        event_class: type,
        namespace: str,
        session: Any,
        session_id: str | None = ...,
        **extra: Any,
    ) -> Any:
        """``event_class`` for the namespace, ``None`` when nothing subscribes to it."""

    def deliver(self, events: list[Any]) -> list[Exception]:
        """Deliver each event to each subscriber on its own; their errors are returned."""

    def send(
        self,
        event_class: type,
        namespace: str,
        session: Any,
        session_id: str | None = ...,
        **extra: Any,
    ) -> list[Exception]:
        """Build and deliver ``event_class`` if anything subscribes to it."""

    def tell_observers(self, method: str, *args: Any) -> None:
        """Call ``method(*args)`` on each observer that has it (the debug toolbar panel)."""


class UnitOfWork:
    """The :class:`RequestWork` of one request, made by its manager."""

    __slots__ = (
        "_end",
        "_manager_config",
        "_manager_ref",
        "_request_ref",
        "configs",
        "direct",
        "ended",
        "login",
        "moved",
        "replaced",
        "revoked",
        "sessions",
    )

    def __init__(
        self,
        manager: Any,
        request_ref: Callable[[], Any],
        manager_config: Any,
        sessions: dict[str, Any] | None = None,
        direct: dict[str, Any] | None = None,
    ) -> None:
        # weakly: the manager holds this, and no cycle is left for the collector
        self._manager_ref = weakref.ref(manager)
        self._request_ref = request_ref
        self._manager_config = manager_config
        #: every namespace's configuration, by namespace
        self.configs: Mapping[str, Any] = manager_config.configs
        #: the sessions loaded so far, by namespace (``None``: turned away)
        self.sessions: dict[str, Any] = {} if sessions is None else sessions
        #: the namespaces whose library's callbacks a
        #: :class:`~.saving.DirectSave` contains where they were queued, by
        #: namespace: the end of request takes them over when anything more
        #: is asked of their end
        self.direct: dict[str, Any] = {} if direct is None else direct
        self.login: tuple[Any, float] | None = None
        self.revoked: dict[str, float | None] = {}
        self.ended: dict[str, frozenset[float]] = {}
        self.moved: set[str] = set()
        self.replaced: set[tuple[str, float]] = set()
        # the end of the request, made when a namespace first needs one
        self._end: RequestEnd | None = None

    @property
    def request(self) -> Request:
        """The request, while it lives."""
        request = self._request_ref()
        if request is None:
            raise RuntimeError("pyramid_session_multi: the request of this manager is gone")
        return request

    @property
    def revocations(self) -> Any:
        """The revocation store, ``None`` if none is set."""
        return self._manager_config.revocations

    def load(self, namespace: str) -> Any:
        """The session of ``namespace``, loaded if it was not (``session_multi[namespace]``)."""
        return self._manager()[namespace]

    def loaded(self, namespace: str) -> Any:
        """The session ``namespace`` loaded in this request, ``None`` if it did not."""
        return self.sessions.get(namespace)

    # the end of the request: every write to a NamespaceEnd goes through RequestEnd

    @property
    def ending(self) -> RequestEnd | None:
        """The end of the request, ``None`` while no namespace needs one."""
        return self._end

    def _ending(self) -> RequestEnd:
        ending = self._end
        if ending is None:
            ending = self._end = RequestEnd(self)
        return ending

    def enlist(
        self, namespace_config: Any, session: Any, queued_since: tuple[int, int] | None = None
    ) -> NamespaceEnd:
        """The end of ``namespace_config``'s namespace in this request, enlisted;
        with ``queued_since`` (see :meth:`RequestWork.enlist`) the callbacks
        its library queued since are taken at once."""
        ending = self._end
        if ending is None:
            ending = self._end = RequestEnd(self)
        # the request property, inlined but for its error: every load comes here
        request = self._request_ref() or self.request
        return ending.enlist(request, namespace_config, session, queued_since)

    def end(self, namespace_config: Any, session: Any, how: str) -> NamespaceEnd:
        """What the client held of the namespace ended: ``how`` is
        :data:`~.ending.INVALIDATED` or :data:`~.ending.REJECTED`."""
        ending = self._ending()
        state = ending.enlist(self.request, namespace_config, session)
        ending.end(state, how)
        return state

    def drop_cookie(self, namespace_config: Any) -> NamespaceEnd:
        """Delete the namespace's cookie whatever its session holds (a change failed)."""
        ending = self._ending()
        state = ending.enlist(self.request, namespace_config, None)
        ending.drop_cookie(state)
        return state

    def saved_already(self, namespace_config: Any, session: Any) -> bool:
        """Whether the namespace's library saved ``session`` and set its cookie
        already in this request: contained in place, its library's response
        callback ran (see :meth:`~.saving.DirectSave.saved`); the end of
        request applied it; or its library says so
        (``ISessionLibrary.cookie_sent``: a library whose callbacks run as
        they were queued)."""
        namespace = namespace_config.namespace
        save = self.direct.get(namespace)
        if save is not None:
            return bool(save.saved(self.request))
        ending = self._end
        if ending is not None and ending.saved_already(namespace):
            return True
        return bool(namespace_config.library.cookie_sent(session))

    def mark_rotated(self, namespace_config: Any, session: Any, retire: Any = None) -> None:
        """Note that the namespace's session got a new id in this request;
        ``retire``, where its library kept the old stored state, deletes it
        once the new session is saved."""
        ending = self._ending()
        state = ending.enlist(self.request, namespace_config, session)
        ending.mark_rotated(self.request, state, retire)

    def delete_also(self, namespace_config: Any, cookie: Any) -> None:
        """Delete ``cookie`` (a fallback's) with the namespace's end, whatever happens."""
        ending = self._ending()
        state = ending.enlist(self.request, namespace_config, None)
        ending.delete_also(state, cookie)

    def hide(self, namespace_config: Any, session: Any, record: Any) -> None:
        """Keep ``record`` in the session's storage only while its library saves it."""
        save = self.direct.get(namespace_config.namespace)
        if save is not None and save.session is session:
            save.hide(record)  # contained where its library queued it
            return
        ending = self._end or self._ending()
        state = ending.namespaces.get(namespace_config.namespace)
        if state is None or state.session is not session:
            # not enlisted as it loaded (a namespace whose end is not the add-on's)
            state = ending.enlist(self.request, namespace_config, session)
        ending.hide(state, record)
        # what the application saves of it before its end of request (its own
        # persist() in its view) keeps the records too: stored without them,
        # its own value for a record's key would be read as the record
        leave_later_saves(namespace_config, session, state.hidden)

    def merging(self, namespace_config: Any, session: Any, outcome: Any) -> None:
        """The namespace's saves merge; ``outcome`` records what they do."""
        ending = self._ending()
        state = ending.enlist(self.request, namespace_config, session)
        ending.merging(state, outcome)

    def after_save(self, namespace_config: Any, session: Any, hook: Any) -> None:
        """Call ``hook`` with the response once the namespace's session is saved."""
        ending = self._ending()
        state = ending.enlist(self.request, namespace_config, session)
        ending.after_save(state, hook)

    def queue_event(self, namespace_config: Any, session: Any, event: Any) -> None:
        """Send ``event`` once the namespace's load is complete."""
        ending = self._ending()
        state = ending.enlist(self.request, namespace_config, session)
        ending.queue_event(state, event)

    def take_after_save(self, namespace_config: Any, kind: type) -> list[Any]:
        """Take the hooks of ``kind`` out of what runs once the namespace is saved."""
        ending = self._ending()
        state = ending.enlist(self.request, namespace_config, None)
        return ending.take_after_save(state, kind)

    def ended_earlier(self, namespace: str) -> bool:
        """Whether the namespace was logged out, or its cookie dropped, earlier
        in this request."""
        state = None if self._end is None else self._end.namespaces.get(namespace)
        return state is not None and (state.ended == INVALIDATED or state.drop_cookie)

    def take_events(self, state: NamespaceEnd) -> list[Any]:
        """The events a namespace's load queued, handed over once."""
        return [] if self._end is None else self._end.take_events(state)

    def forget(self) -> None:
        """The request is over: drop every session and end."""
        self.sessions.clear()
        if self.direct:
            self.direct.clear()
        self.login = None
        # new ones only where this request wrote to them
        if self.revoked:
            self.revoked = {}
        if self.ended:
            self.ended = {}
        if self.moved:
            self.moved = set()
        if self.replaced:
            self.replaced = set()
        ending = self._end
        if ending is not None:
            ending.forget()
            self._end = None

    # telling

    def session_id(self, namespace: str, session: Any) -> str | None:
        """The id of ``session`` as its library reads it, ``None`` if unknown."""
        try:
            session_id = self.configs[namespace].library.session_id(session)
        except Exception:  # an event must not break the request
            return None
        return session_id if isinstance(session_id, str) else None

    def event(
        self,
        event_class: type,
        namespace: str,
        session: Any,
        session_id: str | None = _MISSING,
        **extra: Any,
    ) -> Any:
        """``event_class`` for ``namespace``, or ``None`` when nothing subscribes to it."""
        request = self.request
        registry = request.registry
        if not has_subscribers(registry, event_class):
            return None
        if session_id is _MISSING:
            session_id = None if session is None else self.session_id(namespace, session)
        settings = registry.settings
        if "old_id" in extra:
            extra["old_id_hash"] = hash_session_id(settings, extra.pop("old_id"))
        return event_class(
            request, namespace, session, hash_session_id(settings, session_id), **extra
        )

    def deliver(self, events: list[Any]) -> list[Exception]:
        """Deliver each event to each subscriber on its own; their errors are
        logged and returned, never raised here."""
        failures: list[Exception] = []
        registry = None
        for event in events:
            if event is None:
                continue
            if registry is None:
                registry = self.request.registry
            failures.extend(deliver(registry, event))
        return failures

    def send(
        self,
        event_class: type,
        namespace: str,
        session: Any,
        session_id: str | None = _MISSING,
        **extra: Any,
    ) -> list[Exception]:
        """Build and deliver ``event_class`` if anything subscribes to it."""
        return self.deliver([self.event(event_class, namespace, session, session_id, **extra)])

    def save_failed(self, namespace: str, session: Any, error: Exception) -> None:
        """Send :class:`~pyramid_session_multi.events.SessionSaveFailed`: the
        library of ``namespace`` raised ``error`` saving ``session``."""
        self.send(
            SessionSaveFailed,
            namespace,
            session,
            reason=f"{type(error).__name__}: {error}",
            error=error,
        )

    def tell_observers(self, method: str, *args: Any) -> None:
        """Call ``method(*args)`` on each observer of the manager that has it."""
        self._manager().tell_observers(method, *args)

    def _manager(self) -> Any:
        manager = self._manager_ref()
        if manager is None:
            raise RuntimeError("pyramid_session_multi: the manager of this request is gone")
        return manager
