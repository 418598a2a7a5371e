"""The per-request lazy mapping behind ``request.session_multi``.

It loads namespaces on demand and takes the application's ``rotate()`` and
``invalidate()``; what each namespace then ends as is
:mod:`.lifecycle.ending`'s to apply.
"""

import logging
import weakref
from collections.abc import Callable, Iterator, Mapping
from types import MethodType
from typing import Any

from pyramid.request import Request

from .config import NamespaceConfig, SessionMultiManagerConfig, get_manager_config
from .events import SessionLoaded, SessionRejected, log_decision
from .exceptions import UnregisteredSession
from .introspection import ConfigIntrospection
from .lifecycle import lifetime as _lifetime
from .lifecycle.changes import invalidate, rotate
from .lifecycle.claiming import RELEASES_SESSIONS
from .lifecycle.cookie_lifetime import begin_as_login
from .lifecycle.devices import Device
from .lifecycle.ending import REJECTED
from .lifecycle.fallbacks import may_migrate
from .lifecycle.loading import call_for_namespace, log_load_error
from .lifecycle.revoked import REVOKED, kept_as_made
from .lifecycle.revoking import current_devices, end_device, list_devices, record_unended, revoke
from .lifecycle.saving import LOADED, STEPPED, DirectSave, finish_in_place, load_in_place
from .lifecycle.work import UnitOfWork

_MISSING: Any = object()

__all__ = [
    "SessionMultiManager",
    "UnregisteredSession",
    "call_for_namespace",
    "manager_class_for",
    "new_session_multi",
]


logger = logging.getLogger(__name__)

#: A manager with no load yet; loaded, nothing to release; its release queued.
_NOT_STARTED, _STARTED, _RELEASING = 0, 1, 2


class SessionMultiManager(ConfigIntrospection, Mapping[str, Any]):
    """The sessions of one request, one per namespace, created on demand.

    ``manager[namespace]`` calls that namespace's discriminator (if any) and
    factory the first time it is asked for, and returns the same session for
    the rest of the request, finished callbacks included; a namespace whose
    discriminator says no mounts ``None``.

    It is a read-only :class:`collections.abc.Mapping` of the namespaces
    *loaded so far*: ``in``, ``len``, iteration, ``keys()``, ``values()``,
    ``items()``, ``==`` and :meth:`copy` speak of those, while
    :attr:`namespaces` lists every registered one.  Every mutation raises
    ``ValueError``.

    ``request.session_multi`` holds its request weakly, so it never keeps it
    alive; a manager made by :func:`new_session_multi` holds it strongly, so
    that it works for as long as the caller keeps the manager.
    """

    #: the configuration used when none is given (see :func:`manager_class_for`)
    _default_config: SessionMultiManagerConfig | None = None
    # its configuration and that configuration's namespaces: class attributes
    # of the class a configuration's requests use (see manager_class_for)
    _config: SessionMultiManagerConfig
    _configs: dict[str, NamespaceConfig]
    # what a manager starts with, set on it only once it changes: class
    # attributes, so that the many requests that never change them write nothing
    _finishing = False
    _work: UnitOfWork | None = None
    _observers: list[Any] | tuple[()] = ()
    _started = _NOT_STARTED
    _release_passes = 0

    def __init__(
        self,
        request: Request,
        config: SessionMultiManagerConfig | None = None,
        *,
        weak: bool = True,
    ) -> None:
        self._request_ref: Callable[[], Any] = weakref.ref(request) if weak else (lambda: request)
        if config is None and self._default_config is None:
            config = get_manager_config(request.registry) or SessionMultiManagerConfig()
        if config is not None:  # else its class's (request.session_multi's)
            self._config = config
            self._configs = config.configs
        # the unit of work's, read directly on the hot path
        self._sessions: dict[str, Any] = {}
        # those contained in place (and _finishing: whether one queued a
        # finished callback, the release's); the unit of work is made when
        # asked for, observers a list once one is added
        self._direct: dict[str, DirectSave] = {}

    @property
    def request(self) -> Request:
        """The request of this manager (as 0.4's ``manager.request``)."""
        return self._live_request()

    @property
    def revocations(self) -> Any:
        """The revocation store of this manager's configuration, ``None`` if none is set."""
        return self._config.revocations

    def _live_request(self) -> Request:
        request = self._request_ref()
        if request is None:
            raise RuntimeError("pyramid_session_multi: the request of this manager is gone")
        return request

    # loading

    def __getitem__(self, namespace: str) -> Any:
        if namespace in self._sessions:  # ``in`` and a subscript: no call on the hot path
            return self._sessions[namespace]
        try:  # a subscript, not ``in`` and then one: no more on the hot path
            namespace_config = self._configs[namespace]
        except KeyError:
            raise UnregisteredSession(namespace) from None
        request = self._request_ref()
        if request is None:
            request = self._live_request()  # raises
        plan = namespace_config.pipeline
        started = self._started
        if started is not _RELEASING:
            # first load: a Cookie header that could pass its budget is checked once all is set
            environ, room = request.environ, self._config.header_room
            if not started and (
                room < 0 or ("HTTP_COOKIE" in environ and len(environ["HTTP_COOKIE"]) > room)
            ):
                self._config.budget.schedule_header_check(request, self)
            if plan.releases_nothing:
                # nothing of it holds the request: nothing to release yet
                self._started = _STARTED
            else:  # as _release_after, minus a call
                request.finished_callbacks.append(self._release)
                self._started = _RELEASING
        if plan.in_place:  # never plain
            # server-side, asking nothing of the end of request (see .lifecycle.saving)
            session, save, done = load_in_place(request, namespace_config, self, self._work)
            if save is not None:
                self._direct[namespace] = save
                if save.finished is not None:
                    self._finishing = True
            if done is not LOADED:
                session = self._load_in_full(namespace_config, request, session, done is STEPPED)
            else:
                if namespace_config.prepare is not None:
                    namespace_config.prepare(namespace, session)
                self._sessions[namespace] = session
                if self._observers:
                    self._tell_loaded(namespace, session)
        elif (plain := namespace_config.plain) or plan.quick:
            # a client-side session with nothing to end at the end of the
            # request (the common case, and the hot path), or one that judges
            # itself as it is made (quick, see .lifecycle.pipeline), checked
            # in full only if it ended on load or records a user
            try:
                session = namespace_config.loader(request)  # type: ignore[misc]
            except Exception as exc:
                exc.add_note(
                    "pyramid_session_multi: raised by the session factory of "
                    f"namespace {namespace!r}"
                )
                log_load_error(namespace, exc, request)
                raise
            if not plain and (work := self._work) is not None and work.login is not None:
                begin_as_login(session, work.login)  # stamped, so never plain
            if plan.fallback_cookies and may_migrate(namespace_config, request, session):
                # the client may hold a session only a fallback reads: migrate it
                session = self._load_in_full(namespace_config, request, session)
            elif plain or (
                session._session_multi_verdict is None
                and (
                    session._session_multi_user is None
                    or self._config.revocations is None
                    or kept_as_made(self._unit(), namespace_config, request, session)
                )
            ):
                self._sessions[namespace] = session
                if self._observers:
                    self._tell_loaded(namespace, session)
            else:
                session = self._load_in_full(namespace_config, request, session)
        else:
            session = self._load_in_full(namespace_config, request)
        if request.registry.has_listeners:  # one attribute when nothing subscribes
            self._unit().send(SessionLoaded, namespace, session)
        return session

    def _load_in_full(
        self,
        namespace_config: NamespaceConfig,
        request: Request,
        made: Any = _MISSING,
        stepped: bool = False,
    ) -> Any:
        """Load through the namespace's pipeline; enlist what needs an end.

        The steps and checks run are those of the namespace's
        :class:`~.lifecycle.pipeline.Pipeline`; the discriminator and the factory
        are called here, not through :func:`.call_for_namespace`, a frame less
        on every load, with the same note on failure.  ``made`` is the session
        of a quick namespace (see :mod:`.lifecycle.pipeline`), already made;
        ``stepped``, that its steps ran too (see :func:`.lifecycle.saving.load_in_place`).
        """
        namespace = namespace_config.namespace
        plan = namespace_config.pipeline
        partner = state = session = queued_since = None
        rejected: tuple[str, str | None] | None = None
        role: str | None = None
        try:
            bound_to = namespace_config.bound_to
            if bound_to is not None:
                # a bound namespace exists only where its partner does
                partner = self[bound_to]
            if made is not _MISSING:
                session = made
            elif bound_to is None or partner is not None:
                discriminator = namespace_config.discriminator
                role = "discriminator"
                if discriminator is None or discriminator(request):
                    role = "session factory"
                    if plan.claim_at_load:
                        # what the factory queues is its library's: taken right after
                        queued_since = (
                            len(request.response_callbacks),
                            len(request.finished_callbacks),
                        )
                    session = namespace_config.loader(request)  # type: ignore[misc]
                    # no unit of work yet: no login in this request either
                    work = self._work
                    if work is not None and work.login is not None:
                        begin_as_login(session, work.login)
                role = None
            if session is not None:
                if namespace_config.prepare is not None:
                    namespace_config.prepare(namespace, session)
                work = self._unit()
                # contained where its library queued it: enlisted only once asked for more
                if plan.enlist_at_load and namespace not in self._direct:
                    state = work.enlist(namespace_config, session, queued_since)
                for step in () if stepped else plan.steps:
                    step(work, namespace_config, request, session, state)
                if state is None and work.ending is not None:
                    # a step may have enlisted it (a migration)
                    state = work.ending.namespaces.get(namespace)
                # observers see what the client sent, before any check ends it
                if self._observers:
                    self._tell_loaded(namespace, session)
                for check in plan.checks:
                    reason = check(work, namespace_config, request, session, partner)
                    if reason is not None:
                        rejected = (reason, work.session_id(namespace, session))
                        # what the client holds ends: the add-on's to delete
                        session.invalidate()
                        state = work.end(namespace_config, session, REJECTED)
                        break
        except Exception as exc:
            if role is not None:
                exc.add_note(
                    f"pyramid_session_multi: raised by the {role} of namespace {namespace!r}"
                )
            log_load_error(namespace, exc, request)
            raise
        self._sessions[namespace] = session
        if session is None:
            self._tell_loaded(namespace, None)
            return None
        if state is not None and state.events:
            self._unit().deliver(self._unit().take_events(state))
        if rejected is not None:
            reason, old_id = rejected
            what = _FATES.get(reason, "rejected")
            log_decision(logger, what, namespace, reason, request.registry.settings, old_id)
            self.tell_observers("namespace_rejected", namespace, reason)
            event_class = namespace_config.pipeline.reason_events.get(reason, SessionRejected)
            self._unit().send(event_class, namespace, session, old_id, reason=reason)
        return session

    def _unit(self) -> UnitOfWork:
        """This request's unit of work, made if it was not."""
        work = self._work
        if work is None:
            work = self._work = UnitOfWork(
                self, self._request_ref, self._config, self._sessions, self._direct
            )
            self._release_after()
        return work

    def _release_after(self) -> None:
        # Sessions commonly hold their request, and so may what a unit of work or an
        # observer keeps: forget them once it is over (add_finished_callback's deque).
        request = self._request_ref()
        if request is not None and self._started is not _RELEASING:
            request.finished_callbacks.append(self._release)
            self._started = _RELEASING

    def _tell_loaded(self, namespace: str, session: Any) -> None:
        for observer in self._observers:
            observer.namespace_loaded(namespace, session)

    def loaded(self, namespace: str) -> Any:
        """The session ``namespace`` loaded in this request, ``None`` if it did not."""
        return self._sessions.get(namespace)

    def _release(self, request: Request) -> None:
        callbacks = request.finished_callbacks  # reified: no call to read it
        for callback in callbacks:  # a loop, not any(): no generator on every request
            if type(callback) is not MethodType or callback.__func__ is not _RELEASE:
                # Those queued after may still use the sessions: go last; past one that goes
                # last too, save and leave them (a namespace first loaded after queues again).
                if self._release_passes < _RELEASE_PASSES:
                    self._release_passes += 1
                    callbacks.append(self._release)
                    return
                if self._finishing:
                    finish_in_place(request, self._direct)
                self._started = _NOT_STARTED
                return
        if self._finishing:  # what a library saves once finished, contained
            finish_in_place(request, self._direct)
            self._finishing = False
        if self._work is not None:
            self._work.forget()
        else:
            self._sessions = {}  # no unit of work shares it: a new one, without a call
            if self._direct:
                self._direct = {}
        self._observers = ()
        self._started = _NOT_STARTED
        self._release_passes = 0

    def save_failed(self, namespace: str, session: Any, error: Exception) -> None:
        """Send :class:`~pyramid_session_multi.events.SessionSaveFailed`: the
        library of ``namespace`` raised ``error`` saving ``session``."""
        self._unit().save_failed(namespace, session, error)

    def tell_observers(self, method: str, *args: Any) -> None:
        """Call ``method(*args)`` on each observer that has it.

        ``namespace_loaded`` is required of an observer; the others of
        :class:`~pyramid_session_multi.interfaces.ISessionMultiObserver` are
        optional.  An observer that raises is logged, never the request's
        problem.
        """
        for observer in self._observers:
            notify = getattr(observer, method, None)
            if notify is not None:
                try:
                    notify(*args)
                except Exception:
                    logger.exception("session_multi observer %r failed in %s", observer, method)

    def add_observer(self, observer: Any) -> None:
        """Tell ``observer`` about every namespace loaded from now on.

        ``observer`` provides
        :class:`~pyramid_session_multi.interfaces.ISessionMultiObserver`.
        Observers are forgotten when the request finishes.
        """
        self._observers = [*self._observers, observer]
        self._release_after()

    def get(self, namespace: str, default: Any = None) -> Any:
        """Return the session of ``namespace``, ``default`` if unregistered."""
        try:
            return self[namespace]
        except UnregisteredSession:
            return default

    def rotate(
        self, *namespaces: str, raise_errors: bool = False, userid: Any = None
    ) -> dict[str, Exception]:
        """Give sessions new ids, keeping their data: call it at login.

        With no argument, every namespace loaded in this request or whose
        cookie (or a fallback's) the request carries is rotated, a session
        migrating from a fallback before it is (one its discriminator turns
        away is skipped); name namespaces to rotate only those.  Each gets a
        new id and sends its new cookie; for server-side stores the old key,
        file or row is deleted as soon as the new session is saved and its
        cookie went out, so the cookie the client held before brings back
        nothing, and a request that fails after ``rotate()`` leaves the old
        session whole.  Writes after ``rotate()`` are kept.  How each library
        rotates is its adapter's :meth:`~.libraries.SessionLibrary.rotate`.
        Where :class:`~pyramid_session_multi.NamespaceCSRFStoragePolicy`
        keeps its token in a namespace rotated, the token is replaced too
        (unless the policy was made with ``new_token_on_rotate=False``).

        A namespace that fails to rotate does not stop the others: the error
        gets a note naming it and is logged, the namespace's cookie is
        deleted (so the client does not keep an id that outlived the
        privilege change), and the failures are returned as a dict of
        namespace to exception.  A namespace rotated once its library set
        its cookie is ended instead (:class:`.RotatedTooLate`).

        :class:`~pyramid_session_multi.events.SessionRotated` is sent once
        every namespace is done, to each subscriber on its own: one that
        raises cannot undo a rotation, and its error is logged naming the
        namespace and the subscriber.  ``raise_errors=True`` raises the
        first failure, a namespace's before a subscriber's, after all that.

        The absolute clock of a namespace with lifetimes restarts (see
        :doc:`/narr/lifetimes`).  ``userid`` (text or an integer: the
        application's userid, as its security policy knows it) records, in
        every namespace rotated that keeps lifetime stamps, who the session
        now belongs to and since when, for :meth:`revoke`; without it, the
        user recorded before stays.
        """
        for namespace in namespaces:
            if namespace not in self._configs:
                raise UnregisteredSession(namespace)
        if userid is not None:
            userid = _lifetime.check_userid(userid)
        return rotate(self._unit(), namespaces, raise_errors, userid)

    def revoke(self, userid: Any, keep_current: bool = False) -> None:
        """Sign ``userid`` out everywhere: every session recorded for that user
        (by :meth:`rotate`) before now, in every namespace and on every device.

        The revocation is written to the application's revocation store (see
        :doc:`/narr/lifetimes`); every process then refuses such a session
        when it is next loaded, client-side cookies included, with
        :class:`~pyramid_session_multi.events.SessionRejected` (``reason =
        "revoked"``).  A session recorded after it (a new login) holds.

        In this request, the namespaces recorded for ``userid`` are logged
        out as :meth:`invalidate` would, unless ``keep_current=True`` ("sign
        out my other devices"): they are then recorded anew and survive.
        Raises :class:`~pyramid.exceptions.ConfigurationError` when no store
        is set,
        :class:`~pyramid_session_multi.revocation.RevocationStoreUnavailable`
        when it cannot be reached (nothing is revoked then), and
        ``ValueError`` for a userid no session can record (see
        :meth:`rotate`); nothing else.  Like :meth:`rotate` and
        :meth:`invalidate`, a namespace that fails (its store is down) does
        not stop the revocation: it is logged, named, and a session of it
        recorded for the user ends when it is next loaded.
        """
        revoke(self._unit(), userid, keep_current)

    def devices(self, userid: Any) -> list[Device]:
        """The live devices of ``userid``: one per login (:meth:`rotate` with
        ``userid``) on one client, across the namespaces it holds, the latest
        login first (see :doc:`/narr/devices`).

        Each is a :class:`~pyramid_session_multi.lifecycle.devices.Device`:
        ``id`` (opaque, kept by later rotations of the login), ``userid``,
        ``user_agent``, ``created``, ``last_seen`` (moved as the idle clock
        is, never once per request), ``namespaces``, and ``current``, true
        for the device making this request (the namespaces it carries are
        loaded, and judged, to tell).  Raises
        :class:`~pyramid.exceptions.ConfigurationError` without a revocation
        store keeping a device index,
        :class:`~pyramid_session_multi.revocation.RevocationStoreUnavailable`
        when the store cannot be reached, ``ValueError`` for a userid no
        session can record.
        """
        return list_devices(self._unit(), userid)

    def revoke_device(self, device_id: str) -> bool:
        """End the device ``device_id`` (an ``id`` from :meth:`devices`) in
        every namespace, at its next request in any process: its sessions are
        refused as :meth:`revoke` refuses a user's, client-side cookies and
        old copies of them included, with
        :class:`~pyramid_session_multi.events.SessionRejected` (``reason =
        "revoked"``).  The user's other devices stay logged in.

        Returns ``False`` when no live device has that id (nothing is
        recorded).  Ending the device making this request logs it out, as
        :meth:`invalidate` does.  The application decides who may end which
        device: check that the id is among ``devices(userid)`` of the user
        asking.  Raises as :meth:`devices` does.
        """
        ended = end_device(self._unit(), device_id)
        if ended is None:
            return False
        if ended.id in current_devices(self._unit()):
            self.invalidate()
        return True

    def invalidate(self, *, raise_errors: bool = False) -> dict[str, Exception]:
        """Log the client out of every namespace it holds.

        The namespaces invalidated are those loaded in this request and those
        whose cookie, or a cookie one of its fallbacks reads, the request
        carries (such a namespace migrates, then is logged out, and does not
        migrate again in this request); a namespace the client never had is
        left alone (no cookie, no backend I/O), and so is one its
        discriminator turns away.  Every one of them is loaded first, then
        each is invalidated, so a namespace bound to another is logged out
        with it, not rejected.  For pyramid_beaker the old file or row is
        deleted at once, as pyramid_session_redis deletes its key.  A
        namespace that is still empty when the response goes out has its
        cookie deleted; one written again after the logout sends its new
        cookie, or, if none can go out, has the old one deleted.

        A namespace whose ``invalidate()`` raises (its store is down, say)
        does not stop the others: the error is logged with the namespace
        named, the namespace's cookie is deleted anyway, so the client no
        longer presents it, and the failures are returned as a dict of
        namespace to exception, empty when all went well.  So is an old copy
        one of the namespace's fallbacks could read that could not be deleted
        (its store is down; see :doc:`/narr/fallbacks`).  Where a
        revocation store is set, the end of the login a namespace that could
        not be destroyed held is recorded there (see :doc:`/narr/manager`),
        so a copy of its old cookie is refused once its store is back.
        :class:`~pyramid_session_multi.events.SessionInvalidated` is sent
        once every namespace is done, as :meth:`rotate` sends its events.
        With ``raise_errors=True`` the first failure is raised after every
        namespace was tried; the cookies still go out if an exception view
        renders the response.
        """
        return invalidate(self._unit(), raise_errors, record_unended)

    # what has been loaded so far

    def __contains__(self, namespace: object) -> bool:
        return namespace in self._sessions

    def __len__(self) -> int:
        return len(self._sessions)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._sessions))

    def copy(self) -> dict[str, Any]:
        """A plain ``dict`` of the namespaces loaded so far and their sessions."""
        return dict(self._sessions)

    def __repr__(self) -> str:
        return (
            f"<SessionMultiManager loaded={list(self._sessions)!r} "
            f"namespaces={self._config.namespaces!r}>"
        )

    # the mapping is read-only

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise ValueError(
            "request.session_multi is read-only: register namespaces with "
            "register_session_factory and change the sessions themselves."
        )

    __setitem__ = __delitem__ = _refuse
    pop = popitem = clear = update = setdefault = _refuse


_RELEASE = SessionMultiManager._release
#: How many times the release lets later finished callbacks run first.
_RELEASE_PASSES = 8

# the end of request queues a contained save before it, not after (see .lifecycle.ending)
setattr(_RELEASE, RELEASES_SESSIONS, True)

#: How the log names a session ended on load, by the reason it was ended for.
_FATES = {
    _lifetime.IDLE: "expired",
    _lifetime.ABSOLUTE: "expired",
    REVOKED: "revoked",
}


def new_session_multi(request: Request) -> SessionMultiManager:
    """Return a new :class:`SessionMultiManager` for ``request``.

    Call it to give a ``pyramid.testing.DummyRequest`` a manager; it looks
    the configuration up in ``request.registry``.  The manager keeps the
    request alive, so ``new_session_multi(DummyRequest())`` works alone.
    """
    return SessionMultiManager(request, weak=False)


def manager_class_for(config: SessionMultiManagerConfig) -> type[SessionMultiManager]:
    """The class ``request.session_multi`` is reified from.

    A subclass of :class:`SessionMultiManager` whose managers use ``config``
    unless given another: it spares every request the utility lookup of
    :func:`new_session_multi`, and a call.
    """
    attributes = {
        "__slots__": (),
        "_default_config": config,
        "_config": config,
        "_configs": config.configs,
        "__module__": __name__,
    }
    cls = type("SessionMultiManager", (SessionMultiManager,), attributes)
    cls.__qualname__ = SessionMultiManager.__qualname__
    return cls
