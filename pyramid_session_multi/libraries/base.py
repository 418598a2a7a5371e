"""The generic session library: what the add-on does with a factory it does not know."""

from typing import Any

from zope.interface import implementer

from ..interfaces import ISessionLibrary

#: The cookie attributes :meth:`SessionLibrary.cookie` may report, in order.
COOKIE_ATTRIBUTES = ("secure", "httponly", "samesite", "max_age", "path", "domain")

#: What :meth:`SessionLibrary.facts` could not read.
UNKNOWN: Any = object()

#: Where a session whose library contains its own saves (see
#: :meth:`SessionLibrary.contains_own_saves`) finds, in its ``__dict__``, a
#: callable returning what contains its save: a weak reference to a
#: ``DirectSave`` (see ``pyramid_session_multi.lifecycle.saving``) while the
#: request runs, and once the end of request ran its save (saved, or refused
#: by its store), the add-on's
#: ``LaterSaves``, which returns itself (where
#: :attr:`SessionLibrary.saves_again_through_key`).  Absent, or dead, its
#: save runs as it is.
SAVE_KEY = "_session_multi_save"

#: The attribute of a loaded session holding its lifetime for the request
#: (``pyramid_session_multi.lifecycle.lifetime.Lifetime``), where its
#: namespace has timeouts or records its user.  The ``invalidate()`` of a
#: class prepared by a library whose :attr:`SessionLibrary.resets_lifetime`
#: is true calls its ``reset()`` once it ended the session.
LIFETIME_ATTRIBUTE = "_session_multi_lifetime"


def signer_reads(signer: Any) -> tuple[Any, ...]:
    """What a signer (webob's ``SignedSerializer``, pyramid_nacl_session's box)
    verifies with: its secret, salt and hash algorithm, or its key."""
    box = getattr(signer, "box", None)
    inner = getattr(signer, "serializer", None)
    return (
        type(signer).__qualname__,
        getattr(signer, "secret", None),
        getattr(signer, "salt", None),
        getattr(signer, "hashalg", None),
        None if box is None else bytes(box),
        None if inner is None else type(inner).__qualname__,
    )


def options_reads(options: Any) -> tuple[Any, ...]:
    """A mapping of options as a comparable value."""
    if not isinstance(options, dict):
        return (repr(options),)
    return tuple(sorted((str(key), repr(value)) for key, value in options.items()))


def closure_of(func: Any) -> dict[str, Any]:
    """The free variables of ``func`` and their values (empty cells left out)."""
    code = getattr(func, "__code__", None)
    cells = getattr(func, "__closure__", None)
    if code is None or cells is None:
        return {}
    values = {}
    for name, cell in zip(code.co_freevars, cells, strict=True):
        try:
            values[name] = cell.cell_contents
        except ValueError:  # an empty cell
            continue
    return values


@implementer(ISessionLibrary)
class SessionLibrary:
    """The fallback for any :class:`~pyramid.interfaces.ISession`, and the base
    class of every library the add-on knows.

    What the fallback can do is what ``ISession`` promises, no more:

    - the cookie: only its name, from a ``cookie_name`` attribute or closure
      variable of the factory (else
      ``register_session_factory`` needs ``cookie_name=...``);
    - reading without side effects: only a session that is a ``dict``
      subclass; the panel reads any other through its accessors, on a
      detached copy of the request;
    - the session id: unknown, so events carry no id hash;
    - its callbacks: only those whose code is at the top level of a module
      defining the factory or the session's classes, or inside the factory or
      those classes, are told as the library's (:attr:`modules` names none);
    - :meth:`rotate`: copy the data, ``invalidate()``, write the data back.
      Whether that gives a new id, and whether the old server-side state is
      destroyed, is up to the library's own ``invalidate()``.

    To teach the add-on a library, subclass this, override what the library
    allows, and add an instance with ``config.add_session_library()``.
    """

    name = "unknown"
    reads_store_when_loaded = False
    #: Whether every callback the library queues is appended while its factory
    #: makes the session (see ``ISessionLibrary.queues_when_made``): not known here.
    queues_when_made = False
    #: The library's own modules and packages, by dotted name (see
    #: ``ISessionLibrary.modules``): none known here, so only the code of
    #: the modules defining a namespace's factory or its session's classes
    #: (their top level, and what the factory and the classes define) is the library's.
    modules: tuple[str, ...] = ()
    #: Whether the library writes its store only in its finished callbacks (see
    #: ``ISessionLibrary.saves_when_finished``): not known here.
    saves_when_finished = False
    #: Whether a session's own save looks under :data:`SAVE_KEY` for what
    #: contains it every time it runs, including a save the application makes
    #: once the end of request saved the session (its ``persist()`` in a
    #: finished callback): the end of request then leaves there what puts the
    #: add-on's records back around such a save.  Not known here.
    saves_again_through_key = False
    #: Whether :meth:`raw_storage`, once it returned a dict for a session,
    #: returns that same dict for the rest of the session's life (the
    #: library clears and refills it in place, never replaces it): the
    #: add-on then keeps it from the load to the save instead of asking
    #: again.  Not known here.
    raw_storage_stays = False
    #: Whether the sessions of a class this library prepared (see
    #: :meth:`prepared_loader`) reset the lifetime kept under
    #: :data:`LIFETIME_ATTRIBUTE` themselves, in their class's
    #: ``invalidate()``, once it returned: the add-on then sets no
    #: ``invalidate`` of its own on each such session it loads.  Not known here.
    resets_lifetime = False

    def claims(self, factory: Any) -> bool:
        """Whether ``factory`` makes this library's sessions (never, here)."""
        return False

    def cookie(self, factory: Any) -> dict[str, Any] | None:
        """The cookie ``factory`` writes: ``{"name": ...}`` and what else is known.

        Here: a ``cookie_name`` attribute of the factory, or a ``cookie_name``
        variable a factory function closes over.
        """
        name = getattr(factory, "cookie_name", None)
        if not isinstance(name, str):
            name = closure_of(factory).get("cookie_name")
        if isinstance(name, str):
            return {"name": name}
        return None

    def facts(self, factory: Any) -> dict[str, Any]:
        """What the deploy checks need to know of ``factory``.

        Keys: ``library`` (this library's :attr:`name`, ``None`` when
        unknown), ``client_side`` (the data travels in the cookie),
        ``serializer`` (the class name of what turns the data into bytes),
        ``timeout`` (the idle timeout in seconds, ``None`` for none),
        ``secret`` (the signing or encryption secret), ``secrets`` (every
        secret the factory uses, by the name of its option, where there is
        more than one) and ``cookie_value_size`` (the most bytes the
        cookie's value can take: an id's size, or the library's own limit
        for data in the cookie). A value that cannot be read is
        :data:`UNKNOWN`.
        """
        return {
            "library": None,
            "client_side": UNKNOWN,
            "serializer": UNKNOWN,
            "timeout": UNKNOWN,
            "secret": UNKNOWN,
            "secrets": UNKNOWN,
            "cookie_value_size": UNKNOWN,
        }

    def prepare(self, namespace: str, session: Any) -> None:
        """Set up a session just made for ``namespace`` (nothing, here)."""

    #: Whether :meth:`prepare` does anything; the manager skips it if not.
    has_prepare = False

    def prepared_loader(self, loader: Any, namespace: str) -> Any:
        """A loader whose sessions are made as :meth:`prepare` would leave
        them for ``namespace``, given ``loader``, the one they would be made
        with otherwise (its factory); ``None`` where there is none.

        Worked out when the namespace is committed: where there is one, the
        manager makes its sessions with it and calls no :meth:`prepare` on
        them (a request then pays nothing for it).  :meth:`prepare` is still
        called on the sessions of a fallback's factory.  Here: ``None``.
        """
        return None

    def queues_only_its_own(self, loader: Any) -> bool:
        """Whether every callback ``loader`` queues as it makes a session is
        its library's (never known, here).

        Asked when the namespace is committed, of a namespace whose library
        queues its callbacks when the session is made (:attr:`queues_when_made`).
        Where ``True`` (``loader`` is the library's own factory), a namespace
        contained in place takes the one response callback and the one
        finished callback it queued as its library's without looking at
        them: where it queued more than one of either, it is still looked
        at as any other (an application's hook the factory calls may queue one).
        """
        return False

    def contains_own_saves(self, loader: Any) -> bool:
        """Whether the sessions ``loader`` makes run their library's save through
        the add-on's containment themselves (never, here).

        Asked when the namespace is committed, of a namespace its end of
        request would contain in place.  Where ``True``, what the library
        queues is left where it was queued, unclaimed, and every session the
        manager makes finds under :data:`SAVE_KEY`, in its ``__dict__``, a
        weak reference to its save: its library's save is to call the save's
        ``save_itself(persist, session)`` (``persist(session)`` being the
        library's own save), send no new cookie where that returns ``False``,
        and pass a cookie it is about to send through ``fit_cookie(value)``
        where it returns ``True``.  Such a namespace costs no search of the
        request's callbacks and no wrapper around them; and since its
        sessions must hold nothing that refers to the request (pyramid_beaker's
        keeps only the WSGI environ), the manager queues no release of the
        request's sessions for it (it does once a unit of work or an
        observer is made).
        """
        return False

    def read(self, session: Any) -> dict[Any, Any] | None:
        """The session's data without side effects, or ``None`` if that is impossible.

        Here: a session that is a ``dict`` subclass is read as a dict;
        anything else is ``None``.
        """
        if isinstance(session, dict):
            return dict(dict.items(session))
        return None

    def loaded_data(self, session: Any) -> dict[Any, Any] | None:
        """The data the session held when it was loaded, if the library keeps it."""
        return None

    def keep_loaded(self, session: Any) -> Any:
        """Have ``session``, lazy and not loaded yet, keep what it holds once it
        loads, for :meth:`loaded_data` to return whatever the application then
        changes in place.  The toolbar's panel asks it of a namespace whose
        library reads its store only once the session is used
        (:attr:`reads_store_when_loaded`); nothing else does, so the copy
        costs nothing without the panel.  Returns ``None``, or a callable the
        panel calls once it read :meth:`loaded_data` at the end of the
        request, to leave nothing of this on the session.  Optional: not part of
        :class:`~pyramid_session_multi.interfaces.ISessionLibrary`, so a library
        written without this base class needs none (the panel then shows
        what its :meth:`loaded_data` gives).  Here: nothing.
        """
        return None

    def load(self, session: Any) -> None:
        """Make a lazy session load from its store now (nothing, here).

        The manager calls it before rotating or invalidating, which load the
        session anyway, so that the old id is known for the events.
        """

    def session_id(self, session: Any) -> str | None:
        """The session's id, if it has one that can be read without side effects."""
        return None

    def claim(self, session: Any) -> bool:
        """Delete the session's stored state; ``False`` if it was gone already.

        A fallback's old copy is claimed when the session it moved to is saved:
        of two requests that moved the same old session, only the one whose
        claim deletes it keeps its copy.  Here: ``invalidate()``, and ``True``
        (a library with no atomic delete cannot tell).
        """
        session.invalidate()
        return True

    def reads(self, factory: Any) -> Any:
        """What ``factory`` reads, as a comparable value: its cookie, secret,
        algorithms and store.  Two factories of this library with equal values
        read the same sessions (a fallback equal to its namespace's factory is
        refused); ``None`` where that cannot be told (here: always).
        """
        return None

    def fallback_problem(self, factory: Any) -> str | None:
        """Why ``factory`` cannot serve as a fallback, or ``None`` (nothing, here)."""
        return None

    def shared_cookie_problem(self, factory: Any) -> str | None:
        """Why ``factory``, a namespace's own, cannot share its cookie with a
        fallback (which would hand it cookies it cannot read), or ``None``
        (nothing, here)."""
        return None

    def created(self, session: Any) -> float | None:
        """When the session was first created (seconds since the epoch), if known.

        Here: a numeric ``created`` attribute, as pyramid's cookie sessions have.
        """
        created = getattr(session, "created", None)
        return float(created) if isinstance(created, int | float) else None

    def set_created(self, session: Any, created: float) -> None:
        """Give a session the creation time of the one it replaces (a migration).

        Here: set a ``created`` attribute where the session has a writable one.
        """
        try:
            session.created = created
        except (AttributeError, TypeError):
            pass

    #: Whether the add-on's lifetime record rides in what :meth:`read` returns
    #: (under :data:`~pyramid_session_multi.lifecycle.lifetime.LIFETIME_KEY`),
    #: rather than coming from :meth:`lifetime_record`.
    records_in_data = True

    def lifetime_record(self, session: Any) -> list[Any] | None:
        """The lifetime stamps a session keeps outside its data, as a raw record.

        A fallback's migration carries them into the session the data moves
        to (see :class:`~pyramid_session_multi.lifecycle.lifetime.Stamps`).
        Here: ``None``, the stamps ride in the data itself.
        """
        return None

    def is_new(self, session: Any) -> bool | None:
        """Whether ``session`` was made new in this request, rather than read
        from the store (or cookie) the client's cookie names.  Asked at the
        load of a stamped namespace without fallbacks whose data holds no
        lifetime record, whether or not the request carries a cookie (a
        session made without one is new), so that the add-on need not parse
        the Cookie header.  ``None`` where the library cannot tell (the
        request's cookies are looked at then).

        Here: ``None``.
        """
        return None

    #: Keys of :meth:`raw_storage` that are the library's own, not data.
    bookkeeping: frozenset[str] = frozenset()

    def raw_storage(self, session: Any) -> dict[Any, Any] | None:
        """The dict the library saves, to be read and written without its
        accessors (which would mark the session accessed or changed); loads a
        lazy session.  ``None`` where there is none.

        The add-on keeps its lifetime stamps there, out of the application's
        sight (see :mod:`~pyramid_session_multi.lifecycle.lifetime`).  Here: a
        session that is a ``dict`` subclass is its own storage.
        """
        return session if isinstance(session, dict) else None

    def expire_within(self, session: Any, seconds: float) -> None:
        """Once the library saved ``session``: have its store drop it within
        ``seconds`` (when the add-on's timeouts end it) if it is never used again.

        Here: nothing (a store without expiry keeps what it holds until the
        session is next loaded and found expired).
        """

    def mark_changed(self, session: Any) -> None:
        """Make the library save the session at the end of the request.

        Here: ``session.changed()``, which ``ISession`` promises.
        """
        session.changed()

    def merges(self, factory: Any) -> bool:
        """Whether :meth:`merge_saves` merges the saves of ``factory``'s sessions
        (never, here)."""
        return False

    def merging_loader(self, loader: Any) -> Any:
        """The loader a merging namespace's sessions are made with, given
        ``loader``, the one they would be made with otherwise (its factory).

        One that keeps, at no cost, what :meth:`merge_saves` compares and
        merges with (what the store returned as the session loaded), so that
        a request that saves nothing costs what it costs with the library's
        own save.  Here: ``loader`` itself.
        """
        return loader

    def merge_saves(self, session: Any, policy: Any, outcome: Any) -> bool:
        """Make a loaded session's save a merge with what parallel requests saved.

        The save writes only if the store still holds what the session was
        loaded from; otherwise it merges, key by key, what the request loaded,
        what it holds now and what the store holds now (see
        :class:`~pyramid_session_multi.concurrency.merge.MergePolicy`: ``policy``)
        and tries again.  A session whose stored
        state is gone is not saved: ``outcome``, a
        :class:`~pyramid_session_multi.concurrency.outcome.SaveOutcome`, is
        told, and records what each merge did.  ``False`` where the session
        has nothing to merge with (it is new).  Here: never anything.
        """
        return False

    def cookie_sent(self, session: Any) -> bool:
        """Whether the library set ``session``'s cookie on the response already
        in this request; here ``False`` (it cannot tell).

        A rotation once it did is too late: its new cookie would not reach
        the client, and the session is ended instead (see
        :class:`~pyramid_session_multi.RotatedTooLate`).  Server-side
        libraries whose callbacks the add-on runs need not tell: the add-on
        knows when it ran them."""
        return False

    def rotate(self, session: Any) -> Any:
        """Copy the data, invalidate the session, write the data back.

        Returns ``None``: the old state went at once (see
        :meth:`~pyramid_session_multi.interfaces.ISessionLibrary.rotate`)."""
        data = dict(session.items())
        session.invalidate()
        session.update(data)
        session.changed()
