"""A session library's save, contained: its failure is its namespace's alone.

The end of request (:mod:`.ending`) runs each namespace's library callbacks
through what is here: a finished callback wrapped in a
:class:`ContainedFinish`, and, for a namespace asking nothing else of the
end of request, both of its library's callbacks left where the library
queued them, each contained by a :class:`DirectSave`.  A failure is logged
with the namespace named, the cookie that would point at unsaved data is
taken back out of the response, and the end of request is told (its
``save_failed``).  The cookie helpers write what a browser needs to apply a
namespace's cookie or its deletion.
"""

import logging
import weakref
from typing import Any

from ..budget import cookie_refusal, is_deletion
from ..cookies import cookie_headers, deletion_header, partitioned
from ..failures import failure_log_of
from ..libraries.base import SAVE_KEY
from .claiming import library_owner, queued_in_place
from .lifetime_step import begin_lifetime
from .loading import log_load_error

logger = logging.getLogger(__name__)


class ContainedFinish:
    """A library's finished callback whose failure is its namespace's alone."""

    __slots__ = (
        "callback",
        "config",
        "end",
        "ended",
        "forgone",
        "hidden",
        "response",
        "state",
        "then",
    )

    def __init__(
        self,
        namespace_config: Any,
        callback: Any,
        response: Any,
        then: tuple[Any, ...] | None = None,
        hidden: tuple[Any, ...] | None = None,
        ended: bool = False,
        end: Any = None,
        state: Any = None,
    ) -> None:
        self.config = namespace_config
        self.callback = callback
        self.response = response
        #: the namespace's after-save hooks, run once this callback succeeded
        self.then = then or ()
        #: the add-on's records stored only while the callback runs (see NamespaceEnd.hidden)
        self.hidden = hidden or ()
        #: what the client held ended in this request (a logout): its old cookie must go
        self.ended = ended
        #: the end of request told when saving fails (its ``save_failed``), and
        #: the namespace's end it is told of; ``None`` where none is told
        self.end = end
        self.state = state
        #: its namespace ended once it was queued (a logout, or a rotation too
        #: late, in a later response callback): no cookie names what it would save
        self.forgone = False

    def __call__(self, request: Any) -> Exception | None:
        """Run the callback; the error to fail the response with, if any."""
        if self.forgone:
            # what is after the save is after the session's end too (a rotation's
            # old id retired)
            run_hooks(self.config, self.then, self.response)
            return None
        try:
            hidden = self.hidden
            for record in hidden:
                record.put_back(self.response)
            try:
                self.callback(request)
            finally:
                for record in hidden:
                    record.take_out(self.response)
        except Exception as exc:
            log_failure(
                self.config.namespace, exc, "could not be saved; no new cookie is sent", request
            )
            if self.response is None:  # no response formed: no cookie to take back
                pass
            elif self.ended or deletes_cookie(self.response, self.config.cookie_name):
                # nothing from before a logout survives client-side (also one
                # later in the request, whose deletion is in the response now)
                delete_cookie(self.response, self.config)
            else:
                # the cookie would point at data the store does not have
                self.response.unset_cookie(self.config.cookie_name, strict=False)
            end = self.end
            return None if end is None else end.save_failed(self.state, exc)
        if self.then:
            run_hooks(self.config, self.then, self.response)
        return None


#: A :class:`DirectSave` whose library's callbacks are still to run.
WAITING = 0
#: One whose response callback ran: its finished callback is still to.
RESPONDED = 1
#: One whose callbacks do not run here: taken by the end of request, or failed.
TAKEN = 2
#: One whose session saves itself (see :meth:`DirectSave.save_itself`), a
#: save of which failed and was told: a save after it is contained, told no more.
FAILED = 3


class DirectSave:
    """The library's callbacks of a namespace asking nothing of the end of
    request, contained where the library queued them.

    A server-side namespace with nothing to settle at the end of request
    (not bound, not a partner, not merging, reporting its failed saves: see
    ``Pipeline.in_place``) needs of it only that a failure of its library be
    its own.  Its library's one response callback is replaced, where the
    library queued it, by :meth:`respond`; its one finished callback leaves
    the request's queue, and the manager's release, last of the request's
    finished callbacks, runs it through :meth:`finish` (see
    :func:`load_in_place` and :func:`finish_in_place`): after
    the application's own finished callbacks, as the end of request would,
    so that what they write is saved too.  Both run the library's callback
    as :class:`.ending.RequestEnd` would: the add-on's records
    (:attr:`hidden`) put back around it, a failure logged with the
    namespace named, told to the manager (observers and
    :class:`~pyramid_session_multi.events.SessionSaveFailed`), and the
    cookie that would point at unsaved data taken back.  Once anything else
    is asked of the namespace's end (a rotation, a logout, a check that
    rejects it...), the end of request takes the callbacks over
    (:meth:`take`) and both do nothing.
    """

    __slots__ = (
        "__weakref__",
        "callback",
        "config",
        "finished",
        "hidden",
        "itself",
        "manager",
        "phase",
        "response",
        "session",
    )

    def __init__(
        self,
        namespace_config: Any,
        session: Any,
        manager: Any,
        callback: Any = None,
        finished: Any = None,
    ) -> None:
        self.config = namespace_config
        self.session = session
        #: a weak reference to the request's manager, told of a failure
        self.manager = manager
        #: the library's response callback, and its finished callback (``None``: none)
        self.callback = callback
        self.finished = finished
        #: the add-on's records stored only while the library saves (see NamespaceEnd.hidden)
        self.hidden: tuple[Any, ...] = ()
        self.response: Any = None
        #: :data:`WAITING`, :data:`RESPONDED`, :data:`TAKEN` or :data:`FAILED`
        self.phase = WAITING
        #: whether the session runs its library's save through :meth:`save_itself`
        #: (see :func:`load_in_place`): nothing of its library's was claimed
        self.itself = False

    def hide(self, record: Any) -> None:
        """Keep ``record`` in the session's storage only while its library saves it."""
        self.hidden = (*self.hidden, record)

    def take(self) -> bool:
        """Hand the library's callbacks to the end of request: ``False`` once
        they ran (what is asked of the namespace from then on is a new end)."""
        if self.phase != WAITING:
            return False
        self.phase = TAKEN
        return True

    def saved(self, request: Any) -> bool:
        """Whether its library's response callback ran in ``request``, which
        saved the session and set its cookie: for a session that saves
        itself, once that callback left the request's queue (the
        application may have saved it before, which sets no cookie); for
        any other, once :meth:`respond` ran."""
        if not self.itself:
            return bool(self.phase != WAITING)
        owners = {id(self.session): self}
        queue = request.response_callbacks or ()
        return all(library_owner(callback, owners) is None for callback in queue)

    def respond(self, request: Any, response: Any) -> None:
        """The library's response callback, contained."""
        if self.phase != WAITING:
            return
        self.phase = RESPONDED
        self.response = response
        config = self.config
        before = list(response.headerlist)
        hidden = self.hidden
        if hidden and self.finished is not None and config.pipeline.records_when_finished:
            hidden = ()  # a library saving once finished: its records go back only then
        try:
            for record in hidden:
                record.put_back(response)
            try:
                self.callback(request, response)
            finally:
                for record in hidden:
                    record.take_out(response)
                # also where the save failed: the store may take the next one
                # (none where it saves once finished)
                if hidden and config.pipeline.saves_again:
                    leave_later_saves(config, self.session, self.hidden)
            headers = response.headerlist
            if headers != before:  # the library set or rewrote something
                fit_new_cookies(before, headers, config)
        except Exception as exc:
            self.phase = TAKEN  # not saved: its finished callback does not run
            refusal = cookie_refusal(request, config.namespace, config.cookie_name, exc)
            if refusal is not None:
                raise
            response.headerlist[:] = before
            log_failure(
                config.namespace, exc, "could not be saved; its cookie is unchanged", request
            )
            self._tell(exc, observers=True)

    def save_itself(self, persist: Any, session: Any) -> bool | None:
        """The library's save, ``persist(session)``, run by the session itself
        and contained here as :meth:`respond` contains its response callback:
        whether it saved (``False``: its library must send no new cookie).

        Called by the save of a session whose library contains its own saves
        (see ``SessionLibrary.contains_own_saves``), each time it saves (an
        application may save before its library does).  Once the end of
        request took the namespace over, ``persist`` runs as it is,
        uncontained here, and the answer is ``None``.
        """
        phase = self.phase
        if phase == TAKEN:
            persist(session)
            return None
        if phase == WAITING:
            self.phase = RESPONDED  # a rotation or a logout from now on is a new end
        hidden = self.hidden
        try:
            if not hidden:  # no records: no call around the library's save
                persist(session)
            elif len(hidden) == 1:  # one (a lifetime's, say): in one call
                hidden[0].persist_around(persist, session)
            else:
                persist_with(hidden, persist, session)
        except Exception as exc:
            if phase == FAILED:
                return False  # told at its first failure
            self.phase = FAILED
            config = self.config
            request = self.manager().request
            log_failure(
                config.namespace, exc, "could not be saved; its cookie is unchanged", request
            )
            self._tell(exc, observers=True)
            return False
        return True

    def fit_cookie(self, value: str) -> str:
        """``value``, a ``Set-Cookie`` value of the namespace's cookie that its
        library is about to send, with the attributes it needs (as
        :func:`fit_new_cookies` gives them)."""
        return fitted_cookie(value, self.config)

    def finish(self, request: Any) -> None:
        """The library's finished callback, contained (the manager's release
        runs it, once the application's own finished callbacks ran)."""
        if self.phase == TAKEN or self.finished is None:
            return
        self.phase = TAKEN
        hidden = self.hidden
        response = self.response
        try:
            for record in hidden:
                record.put_back(response)
            try:
                self.finished(request)
            finally:
                for record in hidden:
                    record.take_out(response)
        except Exception as exc:
            config = self.config
            log_failure(config.namespace, exc, "could not be saved; no new cookie is sent", request)
            if response is not None:  # the cookie would point at data the store does not have
                response.unset_cookie(config.cookie_name, strict=False)
            self._tell(exc, observers=False)

    def _tell(self, exc: Exception, observers: bool) -> None:
        # alive: its release, queued before this save, holds it until the request is over
        manager = self.manager()
        namespace = self.config.namespace
        if observers:  # as the end of request tells a failure in its response
            manager.tell_observers("namespace_failed", namespace, exc)
        manager.save_failed(namespace, self.session, exc)


class LaterSaves:
    """What puts a namespace's records back around the saves an application
    makes of its session once the end of request saved it (its own
    ``persist()`` in a finished callback, say), for a library whose
    sessions look for it under :data:`SAVE_KEY` each time they save
    (``SessionLibrary.saves_again_through_key``).

    Left there by :func:`leave_later_saves`; the session holds it (it holds
    the session only weakly, through its records).  Such a save is not
    contained: its failure is the application's, as its call is.
    """

    __slots__ = ("hidden",)

    def __init__(self, hidden: tuple[Any, ...]) -> None:
        self.hidden = hidden

    def __call__(self) -> "LaterSaves":
        # what is under SAVE_KEY is called to get the save: it is its own
        return self

    def save_itself(self, persist: Any, session: Any) -> None:
        """``persist(session)`` with the records in the session's storage;
        ``None``: nothing for the session's save to do after it."""
        persist_with(self.hidden, persist, session)


def persist_with(hidden: tuple[Any, ...], persist: Any, session: Any) -> None:
    """``persist(session)``, a session's own save, with the records ``hidden``
    put back into its storage while it runs (no response is at hand: each
    record is given ``None`` for one)."""
    if len(hidden) == 1:  # the common case, in one call
        hidden[0].persist_around(persist, session)
        return
    for record in hidden:
        record.put_back(None)
    try:
        persist(session)
    finally:
        for record in hidden:
            record.take_out(None)


def stop_earlier_saves(namespace_config: Any, session: Any) -> None:
    """The end of request is about to save ``session``, the records it hid put
    back around its library's save: a :class:`LaterSaves` left before (see
    :meth:`.work.UnitOfWork.hide`) would put them back a second time, inside
    that save; it leaves until :func:`leave_later_saves` runs again."""
    if (
        session is not None
        and namespace_config.pipeline.saves_again
        and type(session.__dict__.get(SAVE_KEY)) is LaterSaves
    ):
        del session.__dict__[SAVE_KEY]


def leave_later_saves(namespace_config: Any, session: Any, hidden: tuple[Any, ...]) -> None:
    """Once the end of request ran the save of ``session`` with ``hidden``
    (its namespace's records) put back around it, saved or refused by its
    store (which may take the next one): where its
    library's sessions look under :data:`SAVE_KEY` every time they save, a
    save the application makes later puts them back too, so that what it
    writes keeps the lifetime and binding records the store had."""
    if hidden and namespace_config.pipeline.saves_again:
        session.__dict__[SAVE_KEY] = LaterSaves(hidden)


def finish_in_place(request: Any, saves: dict[str, DirectSave]) -> None:
    """Run the library's finished callback of each of ``saves`` (the
    manager's saves contained in place, by namespace) that neither ran nor
    was taken over: the manager's release calls it, last of the request's
    finished callbacks.  A namespace loaded while they run (by a subscriber
    of :class:`~pyramid_session_multi.events.SessionSaveFailed`) is saved too."""
    while True:
        for save in tuple(saves.values()):
            if save.finished is not None:
                save.finish(request)
        for save in saves.values():  # no call in this loop: the dict holds still
            if save.phase != TAKEN and save.finished is not None:
                break  # loaded while they ran: saved too
        else:
            return


#: what :func:`load_in_place` did: made the session only (its steps and
#: checks are to run), ran its steps too (its checks are to run), or loaded
#: it in full
MADE, STEPPED, LOADED = "made", "stepped", "loaded"


def load_in_place(
    request: Any, namespace_config: Any, manager: Any, work: Any
) -> tuple[Any, DirectSave | None, str]:
    """Make the session of a namespace whose pipeline loads it in place (see
    ``Pipeline.in_place``), and contain what its library queued, where it
    queued it, in a :class:`DirectSave` telling ``manager`` of a failure.

    What its library queued as it made the session is claimed here (as
    :func:`.claiming.claim_queued_since` would, without moving anything):
    its one response callback becomes ``save.callback``, replaced where it
    was queued by ``save.respond``, and its one finished callback
    ``save.finished``, taken out of the queue (the manager's release runs
    it).  Where the library queued more than one of either, or something it
    did not queue came in between, nothing is changed.  Where the session
    runs its library's save itself (``Pipeline.self_contained``), nothing is
    claimed: it finds its save under :data:`SAVE_KEY` and saves through
    :meth:`DirectSave.save_itself`.

    Returns the session; the save, ``None`` where it could not be claimed
    so (the namespace's end is then enlisted as usual); and how far the
    load went (:data:`MADE`, :data:`STEPPED` or :data:`LOADED`).  A
    namespace whose pipeline is its lifetime alone
    (``Pipeline.lifetime_in_place``) goes through it here, its record
    hidden in the save: with no verdict, nothing is left to run.  ``work``
    is the manager's unit of work, ``None`` where it made none yet.
    """
    plan = namespace_config.pipeline
    itself = plan.self_contained
    if not itself:
        response_queue, finished_queue = request.response_callbacks, request.finished_callbacks
        responses, finishes = len(response_queue), len(finished_queue)
    try:
        session = namespace_config.loader(request)
    except Exception as exc:
        exc.add_note(
            "pyramid_session_multi: raised by the session factory of "
            f"namespace {namespace_config.namespace!r}"
        )
        log_load_error(namespace_config.namespace, exc, request)
        raise
    if itself:
        # its session runs its library's save through the save: nothing to claim
        save = DirectSave(namespace_config, session, weakref.ref(manager))
        save.itself = True
        session.__dict__[SAVE_KEY] = weakref.ref(save)
    else:
        responses = len(response_queue) - responses
        finishes = len(finished_queue) - finishes
        if responses > 1 or finishes > 1:
            return session, None, MADE
        callback = response_queue[-1] if responses == 1 else None
        finished = finished_queue[-1] if finishes == 1 else None
        if not plan.queues_only_its_own and (
            (
                callback is not None
                and not queued_in_place(callback, session, namespace_config.library_code)
            )
            or (
                finished is not None
                and not queued_in_place(finished, session, namespace_config.library_code)
            )
        ):
            return session, None, MADE
        save = DirectSave(namespace_config, session, weakref.ref(manager), callback, finished)
        if callback is not None:
            response_queue[-1] = save.respond
        if finished is not None:
            finished_queue.pop()
    if plan.lifetime_in_place:
        lifetime = begin_lifetime(namespace_config, request, session, work)
        save.hidden = (lifetime,)
        return session, save, LOADED if lifetime.verdict is None else STEPPED
    return session, save, MADE if plan.steps or plan.checks else LOADED


def run_hooks(namespace_config: Any, hooks: tuple[Any, ...], response: Any) -> None:
    """Call each hook with ``response``; one that raises is logged, named."""
    for hook in hooks:
        try:
            hook(response)
        except Exception as exc:
            log_failure(namespace_config.namespace, exc, "could not finish its end of request")


def deletion_of(namespace_config: Any) -> str:
    """The ``Set-Cookie`` value deleting the cookie of ``namespace_config``
    (a namespace's or a fallback's), with every attribute the browser needs
    to apply it to that cookie."""
    return deletion_header(
        namespace_config.cookie_name,
        path=namespace_config.cookie_path,
        domain=namespace_config.cookie_domain,
        secure=namespace_config.cookie_secure,
        samesite=namespace_config.cookie_samesite,
        partitioned_=namespace_config.partitioned,
    )


def deletes_cookie(response: Any, cookie_name: str) -> bool:
    """Whether ``response`` tells the client to delete its cookie ``cookie_name``."""
    return any(map(is_deletion, cookie_headers(response.headerlist, cookie_name)))


def delete_cookie(response: Any, namespace_config: Any) -> None:
    """Take the namespace's cookie out of ``response`` and tell the client to delete it."""
    response.unset_cookie(namespace_config.cookie_name, strict=False)
    response.headerlist.append(("Set-Cookie", deletion_of(namespace_config)))


def fit_new_cookies(
    before: list[tuple[str, str]], headers: list[tuple[str, str]], namespace_config: Any
) -> None:
    """Give what the library just set of the namespace's cookie the attributes it needs.

    A deletion the library wrote is replaced by :func:`deletion_of` (some
    libraries delete without ``Secure`` or ``SameSite``, which a browser then
    ignores); a cookie of a partitioned namespace gets ``Partitioned``.
    ``headers`` is the response's header list, changed in place; those that
    were in it before (``before``) are left alone.
    """
    prefix = namespace_config.cookie_name + "="
    kept = len(before)
    if len(headers) >= kept and headers[:kept] == before:
        # the library only added headers (the common case): only those are new
        seen: list[str] = []
    else:
        seen = [value for name, value in before if name.lower() == "set-cookie"]
        kept = 0
    for index in range(kept, len(headers)):
        name, value = headers[index]
        if name.lower() != "set-cookie" or not value.lstrip().startswith(prefix):
            continue
        if value in seen:
            seen.remove(value)
            continue
        headers[index] = (name, fitted_cookie(value, namespace_config))


def fitted_cookie(value: str, namespace_config: Any) -> str:
    """The ``Set-Cookie`` value ``value`` of the namespace's cookie as it is to
    be sent: a deletion as :func:`deletion_of` writes it, a cookie of a
    partitioned namespace with ``Partitioned``, any other as it is."""
    if is_deletion(value):
        return deletion_of(namespace_config)
    if namespace_config.partitioned:
        return partitioned(value)
    return value


def log_failure(namespace: str, exc: Exception, what: str, request: Any = None) -> None:
    exc.add_note(f"pyramid_session_multi: namespace {namespace!r} {what}")
    log = None if request is None else failure_log_of(request.registry)
    if log is not None:  # once per interval for each distinct failure, with a count
        log.report(logger, namespace, what, exc)
        return
    logger.error("namespace %r %s: %s: %s", namespace, what, type(exc).__name__, exc, exc_info=exc)
