"""The end of a request: decide what each namespace ends as, then apply it.

A session library saves its session and sets its cookie in callbacks it
adds to the request.  Left alone, those run one after another in Pyramid's
router: one that raises (its store went away after the session loaded)
takes the whole response down, and nothing knows which namespace failed.
For every namespace whose end of request is the add-on's (see
:attr:`~pyramid_session_multi.config.NamespaceConfig.contained`), one
response callback, :class:`RequestEnd`, does instead:

1. *decide*: bound sessions are settled against their partners, partners
   first, so a chain of any length shares one token, and a session whose
   partner was invalidated in this request is invalidated with it;
2. *claim*: the callbacks each session's library queued are taken out of
   Pyramid's queues, each to its namespace;
3. *apply*, namespace by namespace, each contained: a session that ended
   (invalidated or rejected) and stayed empty has its cookie deleted and
   nothing saved; any other runs its library's callbacks.  One that raises
   loses what it added to the response and is logged, named; the others
   go out.  A namespace that ended and sends no new cookie (its library
   failed, or the cookie budget dropped it) has the client's old one
   deleted: after a logout nothing from before it survives client-side;
4. *tell*: observers and event subscribers hear of what the request ended
   as, once it is final.

A library's *finished* callbacks (pyramid_session_redis saves there) stay
finished callbacks, each wrapped so that its failure is logged with the
namespace named and the cookie it would have kept pointing at unsaved
data is taken back out of the response.

The cookie budget's own errors (a cookie over the limit under the
``raise`` policy) still fail the response, as documented, once every
other namespace has been applied.

A server-side namespace that asks nothing else of the end of request
(``Pipeline.in_place``) is not enlisted as it loads: its library's
callbacks are contained where they were queued (:mod:`.saving`), and the
end of request takes them over (see :meth:`RequestEnd.enlist`) only once
something more is asked of the namespace's end.
"""

import logging
from dataclasses import dataclass, field
from typing import Any

from ..binding import data_of, settle
from ..budget import cookie_refusal
from ..cookies import sets_new_cookie
from ..events import SessionInvalidated
from ..failures import FAIL
from .claiming import RELEASES_SESSIONS, claim_callbacks, claim_queued_since, library_owner
from .concurrency import after_merge
from .saving import (
    TAKEN,
    ContainedFinish,
    delete_cookie,
    fit_new_cookies,
    leave_later_saves,
    log_failure,
    run_hooks,
    stop_earlier_saves,
)

logger = logging.getLogger(__name__)

#: A session the application (or a logout of its partner) invalidated.
INVALIDATED = "invalidated"

#: A session a load check threw away (see :mod:`.loading`).
REJECTED = "rejected"


@dataclass(eq=False, slots=True, init=False)
class NamespaceEnd:
    """What one namespace ends as in this request."""

    #: the namespace's :class:`~pyramid_session_multi.config.NamespaceConfig`
    config: Any
    #: its session, ``None`` when it could not be loaded
    session: Any
    #: :data:`INVALIDATED` or :data:`REJECTED` when what the client held ended
    ended: str | None = None
    #: delete the cookie whatever the session holds (a rotate or logout failed)
    drop_cookie: bool = False
    #: other cookies to delete whatever happens (a logout's fallbacks): each
    #: has ``cookie_name``, ``cookie_path`` and ``cookie_domain``
    delete_also: tuple[Any, ...] = ()
    #: rotated in this request: its new id needs the response to reach the client
    rotated: bool = False
    #: rotated, its old stored state kept until the new one is saved (see
    #: ``ISessionLibrary.rotate``): a new one that fails to save is dropped
    keeps_old: bool = False
    #: the add-on's records kept in the session's own storage (a
    #: :class:`~pyramid_session_multi.lifecycle.lifetime.Lifetime`): each is
    #: put in just before each of its library's callbacks runs and taken out
    #: right after, so the application's own callbacks never see them
    hidden: tuple[Any, ...] = ()
    #: called with the response once the session is saved and its new cookie
    #: went out, or once it is gone (a logout); never when saving failed
    after_save: tuple[Any, ...] = ()
    #: events of its load (a migration) to send once the load is complete
    events: tuple[Any, ...] = ()
    #: the response callbacks its library queued
    callbacks: list[Any] = field(default_factory=list)
    #: the finished callbacks its library queued
    finished: list[Any] = field(default_factory=list)
    #: whether both were taken as the session was made (see
    #: ``ISessionLibrary.queues_when_made``), so none is left in the request's queues
    claimed: bool = False
    #: what its merging saves did (a
    #: :class:`~pyramid_session_multi.concurrency.outcome.SaveOutcome`), ``None``
    #: where it does not merge (see :doc:`/narr/parallel`)
    merge: Any = None

    def __init__(self, config: Any, session: Any) -> None:
        # written out: list displays, not a call of ``list`` for each field, on every request
        self.config = config
        self.session = session
        self.ended = None
        self.drop_cookie = self.rotated = self.keeps_old = self.claimed = False
        # rarely written: the one empty tuple, a new tuple at each write
        self.delete_also = self.hidden = self.after_save = self.events = ()
        self.callbacks = []
        self.finished = []
        self.merge = None


class RequestEnd:
    """The response callback that ends the request for the enlisted namespaces.

    The one writer of every :class:`NamespaceEnd`: lifecycle code asks it
    (through the request's unit of work, :mod:`.work`) to end a namespace,
    drop its cookie, delete other cookies, hide a record while saving, run
    a hook once saved or send an event once loaded.
    """

    __slots__ = (
        "applied",
        "namespaces",
        "saved_in_place",
        "scheduled",
        "searching",
        "watching",
        "work",
    )

    def __init__(self, work: Any) -> None:
        #: the request's unit of work (a :class:`~.work.RequestWork`)
        self.work = work
        self.namespaces: dict[str, NamespaceEnd] = {}
        self.scheduled = False
        #: whether :meth:`unsent` is queued
        self.watching = False
        #: whether a namespace's callbacks are to be searched for in the
        #: request's queues (one was enlisted without its library's taken at load)
        self.searching = False
        #: the namespaces' ends this callback ran (their library's callbacks
        #: with them, run or dropped with the session's end)
        self.applied: list[NamespaceEnd] | tuple[()] = ()
        #: the namespaces contained in place whose library saved them before
        #: the end of request took them over (see :meth:`_take_over`): their
        #: cookie is set, whatever their end holds
        self.saved_in_place: tuple[str, ...] = ()

    def enlist(
        self,
        request: Any,
        namespace_config: Any,
        session: Any,
        queued_since: tuple[int, int] | None = None,
    ) -> NamespaceEnd:
        """The end of ``namespace_config``'s namespace, scheduled if it was not.

        ``queued_since``: the lengths of the request's response and finished
        callback queues before the factory made ``session`` (its library
        queues its callbacks only then): what its library queued since is
        the namespace's at once.
        """
        namespace = namespace_config.namespace
        state = self.namespaces.get(namespace)
        if state is None:
            state = self.namespaces[namespace] = NamespaceEnd(namespace_config, session)
            direct = self.work.direct
            if direct and namespace in direct:
                # contained where its library queued it until now: this end's from now on
                self._take_over(request, state, direct.pop(namespace))
            elif self.applied:
                self._again(state)
        elif session is not None and session is not state.session:
            state.session = session
            state.claimed = False
        if queued_since is not None and session is not None:
            # before this callback or the watcher is queued: they are not the library's
            claim_queued_since(request, state, queued_since)
        queue = request.response_callbacks
        if not self.scheduled:
            queue.append(self)
            self.scheduled = True
        if not self.watching:
            # first of the finished callbacks: sees whether a response went out
            request.finished_callbacks.appendleft(self.unsent)
            self.watching = True
        if not state.claimed:
            self.searching = True
            owner = state.session
            if owner is not None:
                self._run_before(queue, {id(owner): state})
        return state

    def _take_over(self, request: Any, state: NamespaceEnd, save: Any) -> None:
        """Take the library's callbacks a :class:`~.saving.DirectSave` contained."""
        if save.saved(request):
            # its cookie is set: a rotation from now on is too late (not so
            # where only the application saved the session, in the view)
            self.saved_in_place = (*self.saved_in_place, state.config.namespace)
        if not save.take():
            # they ran already (the session saved itself): this is a new end,
            # whose saves keep the records all the same; what the session
            # saves through ``save`` from now on runs as it is
            save.phase = TAKEN
            state.hidden = save.hidden
            # its library's callback, still where queued, is this end's to
            # claim (also where a failed change enlisted no session): run
            # as it is, it would fail the request
            if state.session is None:
                state.session = save.session
            return
        state.callbacks = [] if save.callback is None else [save.callback]
        state.finished = [] if save.finished is None else [save.finished]
        state.hidden = save.hidden
        state.session = save.session if state.session is None else state.session
        # its callbacks left the request's queues when the session was made,
        # unless the session saved through the save itself: then they are where queued
        state.claimed = state.session is save.session and not save.itself

    def _again(self, state: NamespaceEnd) -> None:
        """A namespace this callback applied already, enlisted again (a
        rotation of a session its library had not queued the saving of): its
        saves keep the records its load hid all the same."""
        for applied in self.applied:
            if applied.config is state.config and applied.session is state.session:
                state.hidden = applied.hidden

    def _run_before(self, queue: Any, owners: dict[int, "NamespaceEnd"]) -> None:
        """Move this callback before any callback ``owners``' sessions queued already.

        A library that queued its callback when the session was made (or when
        it was first changed) would otherwise save it before the end is
        decided; callbacks queued later come after this one anyway.
        """
        position = queue.index(self)
        for index in range(position):
            if library_owner(queue[index], owners) is not None:
                del queue[position]
                queue.insert(index, self)
                return

    def saved_already(self, namespace: str) -> bool:
        """Whether ``namespace``'s library callbacks ran in this request (its
        cookie is set), or were dropped with the end of its session: what a
        rotation of it would send from now on is too late.

        A client-side namespace applied with nothing of its library's to run
        (a cookie session pyramid had not queued the saving of: only read,
        say) had no cookie set: its library queues one for a rotation, which
        reaches the client."""
        return namespace in self.saved_in_place or any(
            state.config.namespace == namespace
            and bool(state.callbacks or state.finished or not state.config.client_side)
            for state in self.applied
        )

    def end(self, state: "NamespaceEnd", how: str) -> None:
        """What the client held ended: :data:`INVALIDATED` or :data:`REJECTED`."""
        state.ended = how
        if self.applied:
            # ended in a callback after this end ran: a save of the namespace
            # it queued would store what the session holds now under an id no
            # cookie names
            for callback in self.work.request.finished_callbacks:
                if isinstance(callback, ContainedFinish) and callback.config is state.config:
                    callback.forgone = True

    def drop_cookie(self, state: "NamespaceEnd") -> None:
        """Delete the cookie whatever the session holds (a rotate or logout failed)."""
        state.drop_cookie = True

    def delete_also(self, state: "NamespaceEnd", cookie: Any) -> None:
        """Delete ``cookie`` too (a fallback's, at logout), whatever happens."""
        state.delete_also = (*state.delete_also, cookie)

    def hide(self, state: "NamespaceEnd", record: Any) -> None:
        """Keep ``record`` in the session's storage only while its library saves it."""
        state.hidden = (*state.hidden, record)

    def after_save(self, state: "NamespaceEnd", hook: Any) -> None:
        """Call ``hook`` with the response once the session is saved."""
        state.after_save = (*state.after_save, hook)

    def merging(self, state: "NamespaceEnd", outcome: Any) -> None:
        """Note that ``state``'s saves merge, ``outcome`` recording what they do."""
        state.merge = outcome

    def take_after_save(self, state: "NamespaceEnd", kind: type) -> list[Any]:
        """Take the hooks of ``kind`` out of what runs once the session is saved."""
        taken = [hook for hook in state.after_save if isinstance(hook, kind)]
        state.after_save = tuple(hook for hook in state.after_save if not isinstance(hook, kind))
        return taken

    def queue_event(self, state: "NamespaceEnd", event: Any) -> None:
        """Send ``event`` once the namespace's load is complete."""
        state.events = (*state.events, event)

    def take_events(self, state: "NamespaceEnd") -> list[Any]:
        """The events queued by the namespace's load, handed over once."""
        events, state.events = state.events, ()
        return list(events)

    def mark_rotated(self, request: Any, state: "NamespaceEnd", retire: Any = None) -> None:
        """Note that ``state``'s session got a new id in this request.

        ``retire``, where its library kept the old stored state (see
        ``ISessionLibrary.rotate``), deletes it: called once the new session
        is saved, never otherwise, so a new one that fails to save is dropped
        and the old one stays whole.
        """
        state.rotated = True
        if callable(retire):
            # the old id goes once the new session is saved, not before
            state.after_save = (*state.after_save, lambda response, retire=retire: retire())
            state.keeps_old = True

    def unsent(self, request: Any) -> None:
        """Run first among the finished callbacks of a request that formed no response.

        Nothing of the end of request ran.  A session rotated in it would be
        kept by its store under a new id that no cookie will ever carry (the
        old one is deleted already): it is invalidated and left unsaved instead.
        Any other is left to what its library saves in its finished callbacks
        (pyramid_session_redis saves there), with its lifetime stamps put back
        first: saved without them, its clocks would start again at its next load.
        """
        if not self.namespaces:
            return  # the response went out: the end of request ran
        states = list(self.namespaces.values())
        rotated = [state for state in states if state.rotated]
        # what a library saves in its finished callbacks keeps the add-on's records,
        # stored only while those callbacks run (the application's never see them)
        kept = [
            state
            for state in states
            if not state.rotated and state.session is not None and (state.hidden or state.claimed)
        ]
        if kept:
            claim_callbacks(request, kept, finished_only=True)
            for state in kept:
                for callback in state.finished:
                    request.finished_callbacks.append(
                        ContainedFinish(state.config, callback, None, None, state.hidden)
                    )
        if rotated:
            claim_callbacks(request, rotated, finished_only=True)
            _drop_rotations(self.work, rotated, "no response went out")
        self.forget()

    def forget(self) -> None:
        """Drop every reference to the sessions (the request is over)."""
        if self.namespaces:
            self.namespaces = {}
        self.applied = self.saved_in_place = ()
        self.scheduled = False
        self.watching = False
        self.searching = False

    def __call__(self, request: Any, response: Any) -> None:
        states = list(self.namespaces.values())
        if len(states) > 1:
            states.sort(key=lambda state: state.config.binding_depth)
        searching = self.searching
        # forget(), inlined: the states are this call's now
        self.namespaces = {}
        self.applied = [*self.applied, *states] if self.applied else states
        self.scheduled = self.watching = self.searching = False
        if getattr(request, "exception", None) is not None:
            # an exception view answered: a rotation (a login) is all or nothing
            failed = [state for state in states if _rotated_only(state)]
            claim_callbacks(request, failed)
            _drop_rotations(self.work, failed, "the request failed")
            states = [state for state in states if state not in failed]
        ended_now: list[NamespaceEnd] = []
        for state in states:
            if state.config.bound_to is not None and self._settle_binding(state):
                ended_now.append(state)
        if searching:
            claim_callbacks(request, states)
        fatal: BaseException | None = None
        for state in states:
            error = self._apply(request, response, state)
            fatal = fatal or error
        for state in ended_now:
            self.work.tell_observers("namespace_invalidated", state.config.namespace)
            self.work.send(SessionInvalidated, state.config.namespace, state.session)
        if fatal is not None:
            raise fatal

    def _settle_binding(self, state: NamespaceEnd) -> bool:
        """Bind or end a bound session; ``True`` when it is ended here."""
        namespace_config = state.config
        session = state.session
        if namespace_config.bound_to is None or session is None or state.drop_cookie:
            return False
        # loaded before it: a bound namespace exists only where its partner does
        partner = self.work.loaded(namespace_config.bound_to)
        try:
            if settle(namespace_config.library, session, partner):
                return False
            # its partner was invalidated in this request: a logout, not an attack
            session.invalidate()
        except Exception as exc:
            log_failure(namespace_config.namespace, exc, "could not be bound to its partner")
            state.drop_cookie = True
            return False
        state.ended = INVALIDATED
        return True

    def _apply(self, request: Any, response: Any, state: NamespaceEnd) -> BaseException | None:
        """Save ``state``'s session and set or delete its cookie; contained.

        Returns the cookie budget's error, which the caller raises once
        every namespace is applied.
        """
        namespace_config = state.config
        for cookie in state.delete_also:
            delete_cookie(response, cookie)
        # what the response held before this namespace's callbacks: a library
        # may also rewrite headers it finds there (Vary), so compare, not count
        before = list(response.headerlist)
        # the records go back around the save below, once
        stop_earlier_saves(namespace_config, state.session)
        try:
            gone = state.drop_cookie or (
                state.ended is not None and not data_of(namespace_config.library, state.session)
            )
            if gone:
                delete_cookie(response, namespace_config)
                if state.ended is not None:
                    run_hooks(namespace_config, state.after_save, response)
                return None
            # the add-on's records are in the session's storage only while its library
            # saves: not around its response callbacks if it saves once finished
            hidden = state.hidden
            if state.finished and namespace_config.pipeline.records_when_finished:
                hidden = ()
            for record in hidden:
                record.put_back(response)
            if state.merge is not None:
                state.merge.saving = True
            try:
                for callback in state.callbacks:
                    callback(request, response)
            finally:
                if state.merge is not None:
                    state.merge.saving = False
                for record in hidden:
                    record.take_out(response)
                # what the application saves of it later keeps the records too,
                # also where this save failed: the store may take the next one
                leave_later_saves(namespace_config, state.session, state.hidden)
            headers = response.headerlist
            if headers != before:  # the library set or rewrote something
                fit_new_cookies(before, headers, namespace_config)
        except Exception as exc:
            refusal = cookie_refusal(
                request, namespace_config.namespace, namespace_config.cookie_name, exc
            )
            if refusal is not None:
                return refusal
            response.headerlist[:] = before
            log_failure(
                namespace_config.namespace,
                exc,
                "could not be saved; its cookie is unchanged",
                request,
            )
            self.work.tell_observers("namespace_failed", namespace_config.namespace, exc)
            if state.ended is not None:
                delete_cookie(response, namespace_config)
            return self.save_failed(state, exc)
        after_save = state.after_save
        if state.ended is not None:
            if not sets_new_cookie(before, response.headerlist, namespace_config.cookie_name):
                delete_cookie(response, namespace_config)
        elif after_save and not sets_new_cookie(
            before, response.headerlist, namespace_config.cookie_name
        ):
            # what waits for the session to be saved waits for its cookie to go out
            # too (the cookie budget may have dropped it)
            after_save = ()
        if not state.finished and after_save:
            run_hooks(namespace_config, after_save, response)
        finished = state.finished
        last = len(finished) - 1
        for index, callback in enumerate(finished):
            finish = ContainedFinish(
                namespace_config,
                callback,
                response,
                after_save if index == last else None,
                state.hidden,
                state.ended is not None,
                self,
                state,
            )
            if namespace_config.on_save_error == FAIL or state.merge is not None:
                # saved before the response goes out, so that its failure can fail
                # it, and a save dropped by the merge can take its cookie back
                error = finish(request)
                if error is not None:
                    return error
            else:
                queue = request.finished_callbacks
                if queue and getattr(queue[-1], RELEASES_SESSIONS, False):
                    # before the manager's release, which goes last: it need not
                    # pass again to let this run first
                    queue.insert(-1, finish)
                else:
                    queue.append(finish)
        if state.merge is not None and state.merge.met_parallel:
            after_merge(self.work, state, before, response)
        return None

    def save_failed(self, state: NamespaceEnd, exc: Exception) -> Exception | None:
        """Tell subscribers that ``state``'s session could not be saved;
        ``exc`` when its namespace's ``on_save_error`` fails the response."""
        namespace = state.config.namespace
        if state.keeps_old:
            # all or nothing: the old session stays, what was written of the new goes
            try:
                state.session.invalidate()
            except Exception as drop:
                log_failure(namespace, drop, "could not drop its unsaved new session")
        self.work.save_failed(namespace, state.session, exc)
        return exc if state.config.on_save_error == FAIL else None


def _rotated_only(state: NamespaceEnd) -> bool:
    # a logout, or a rotation that failed, is applied whatever the request became
    ended = state.ended is not None or state.drop_cookie or state.session is None
    return state.rotated and not ended


def _drop_rotations(work: Any, states: list[NamespaceEnd], why: str) -> None:
    """Invalidate each rotated session unsaved: its old stored state stays whole,
    and the client keeps the logins its rotations replaced (listed devices)."""
    request = work.request
    for state in states:
        work.replaced.clear()
        namespace = state.config.namespace
        try:
            state.session.invalidate()
        except Exception as exc:
            log_failure(namespace, exc, "could not drop its unsent new session", request)
        logger.warning("namespace %r was rotated but %s; it is not saved", namespace, why)
