"""The contracts of pyramid_session_multi, as zope interfaces."""

from zope.interface import Attribute, Interface


class ISessionMultiManagerConfig(Interface):  # type: ignore[misc]
    """The registry utility holding every registered namespace.

    ``config.include("pyramid_session_multi")`` registers one; the
    ``register_session_factory`` directive fills it.
    """

    namespaces = Attribute("The registered namespaces, in registration order.")
    discriminators = Attribute("The namespaces that have a discriminator.")
    namespaces_to_cookienames = Attribute("A dict of namespace to cookie name.")

    def has_namespace(namespace):  # type: ignore[no-untyped-def]
        """Return ``True`` if ``namespace`` is registered."""

    def get_namespace_config(namespace):  # type: ignore[no-untyped-def]
        """Return the session factory of ``namespace``, or ``None``."""

    def get_namespace_cookiename(namespace):  # type: ignore[no-untyped-def]
        """Return the cookie name of ``namespace``, or ``None``."""

    def get_namespace_discriminator(namespace):  # type: ignore[no-untyped-def]
        """Return the discriminator of ``namespace``, or ``None``."""

    def get_namespace_validator(namespace):  # type: ignore[no-untyped-def]
        """Return the validator of ``namespace``, or ``None``."""


class ISessionMultiObserver(Interface):  # type: ignore[misc]
    """Something told about each namespace the manager loads.

    Register one per request with
    :meth:`pyramid_session_multi.SessionMultiManager.add_observer`.  The
    debug toolbar panel is the reason this exists: it watches without
    touching the manager's entries.
    """

    def namespace_loaded(namespace, session):  # type: ignore[no-untyped-def]
        """Called once, right after ``namespace`` was loaded for the request.

        ``session`` is the ISession the namespace mounts, or ``None`` when
        the discriminator turned it away.
        """

    def cookie_refused(namespace, size, limit):  # type: ignore[no-untyped-def]
        """Called when the response failed because the cookie of ``namespace``
        would be ``size`` bytes, over ``limit``.

        Optional: the manager calls it only on observers that have it.
        """

    def cookie_header_over(total, limit):  # type: ignore[no-untyped-def]
        """Called when the session cookies the client will send back total
        ``total`` bytes, over the Cookie header budget ``limit``.

        Optional, like :meth:`cookie_refused`.
        """

    def namespace_rotated(namespace):  # type: ignore[no-untyped-def]
        """Called when :meth:`~pyramid_session_multi.SessionMultiManager.rotate`
        rotated ``namespace``.  Optional."""

    def namespace_invalidated(namespace):  # type: ignore[no-untyped-def]
        """Called when :meth:`~pyramid_session_multi.SessionMultiManager.invalidate`
        invalidated ``namespace``.  Optional."""

    def namespace_rejected(namespace, reason):  # type: ignore[no-untyped-def]
        """Called when a loaded session of ``namespace`` was thrown away;
        ``reason`` is ``"validator"``, ``"binding"``, ``"revoked"``, or
        ``"idle"`` / ``"absolute"`` for one that expired.  Optional."""

    def namespace_migrated(namespace, fallback):  # type: ignore[no-untyped-def]
        """Called when ``namespace``'s session was moved from a fallback;
        ``fallback`` describes it (position, library, cookie).  Optional."""

    def namespace_retired(namespace, fallback):  # type: ignore[no-untyped-def]
        """Called when the old copy a fallback read was retired (its stored
        state deleted, its cookie deleted where it differs).  Optional."""

    def namespace_failed(namespace, error):  # type: ignore[no-untyped-def]
        """Called when ``namespace`` could not be saved at the end of the
        request (its store failed); the response goes out without it.  Optional."""

    def namespace_merged(namespace, outcome):  # type: ignore[no-untyped-def]
        """Called once ``namespace``'s save met a parallel request's (see
        :doc:`/narr/parallel`): merged with it, or dropped because the session
        ended there.  ``outcome`` is its
        :class:`~pyramid_session_multi.concurrency.outcome.SaveOutcome`; a
        save that met none is not told.  Optional."""


class ISessionLibrary(Interface):  # type: ignore[misc]
    """Everything the add-on knows about one session library: the complete contract.

    Built in: pyramid's cookie sessions (and pyramid_nacl_session),
    pyramid_session_redis and pyramid_beaker.  An application teaches the
    add-on another library with ``config.add_session_library(library)``,
    which verifies the adapter against this interface (every member below,
    with its signature); :class:`pyramid_session_multi.libraries.SessionLibrary`
    is the base to start from, and what a factory no library claims gets.
    The add-on calls nothing of an adapter that is not declared here.
    """

    def claims(factory):  # type: ignore[no-untyped-def]
        """Whether ``factory`` makes this library's sessions."""

    def cookie(factory):  # type: ignore[no-untyped-def]
        """A dict with the cookie's ``name`` and whichever of ``secure``,
        ``httponly``, ``samesite``, ``max_age``, ``path`` and ``domain`` can be
        read from ``factory``; ``None`` if not even the name can."""

    def facts(factory):  # type: ignore[no-untyped-def]
        """What the deploy checks need: see
        :meth:`pyramid_session_multi.libraries.SessionLibrary.facts`."""

    def prepare(namespace, session):  # type: ignore[no-untyped-def]
        """Set up a session the factory has just made for ``namespace``."""

    def prepared_loader(loader, namespace):  # type: ignore[no-untyped-def]
        """A loader whose sessions are made as :meth:`prepare` would leave
        them for ``namespace``, given ``loader``; ``None`` where there is none
        (see :meth:`pyramid_session_multi.libraries.SessionLibrary.prepared_loader`)."""

    def read(session):  # type: ignore[no-untyped-def]
        """The session's data as a dict without side effects, or ``None``."""

    def loaded_data(session):  # type: ignore[no-untyped-def]
        """The data a lazy session held when it was loaded, or ``None``."""

    def load(session):  # type: ignore[no-untyped-def]
        """Make a lazy session load from its store now; nothing for others."""

    def session_id(session):  # type: ignore[no-untyped-def]
        """The session's id if the library has one and it can be read without
        side effects, else ``None``."""

    def rotate(session):  # type: ignore[no-untyped-def]
        """Give ``session`` a new id, keep its data and send the new cookie.

        The old server-side state is destroyed at once, or, where the
        library can keep it a little longer, ``rotate`` returns a callable
        (no argument) that destroys it: the add-on calls it once the new
        session is saved and its cookie went out, never otherwise, so a
        request that fails after ``rotate()`` leaves the old session whole."""

    def cookie_sent(session):  # type: ignore[no-untyped-def]
        """Whether the library set ``session``'s cookie on the response already
        in this request (``False`` where it cannot tell): a rotation from then
        on could not reach the client, and ends the session instead."""

    def reads(factory):  # type: ignore[no-untyped-def]
        """What ``factory`` reads (cookie, secret, algorithms, store) as a
        comparable value, or ``None`` if that cannot be told: a fallback equal
        to its namespace's own factory is refused."""

    def fallback_problem(factory):  # type: ignore[no-untyped-def]
        """Why ``factory`` cannot serve as a fallback, or ``None``."""

    def shared_cookie_problem(factory):  # type: ignore[no-untyped-def]
        """Why ``factory``, a namespace's own, cannot share its cookie with a
        fallback, or ``None``."""

    # what a session holds

    def raw_storage(session):  # type: ignore[no-untyped-def]
        """The dict the library saves, read and written without its accessors
        (the add-on keeps its lifetime stamps there), or ``None``."""

    def is_new(session):  # type: ignore[no-untyped-def]
        """Whether the session was made new in this request rather than read
        from what the client's cookie names, or ``None`` if the library
        cannot tell (the request's cookies are looked at then)."""

    def lifetime_record(session):  # type: ignore[no-untyped-def]
        """The add-on's lifetime record a session keeps outside its data (when
        ``records_in_data`` is False), or ``None``."""

    def created(session):  # type: ignore[no-untyped-def]
        """When the session was first created, in seconds since the epoch, or ``None``."""

    # what the add-on does to a session

    def set_created(session, created):  # type: ignore[no-untyped-def]
        """Give a session the creation time of the one it replaces (a migration)."""

    def mark_changed(session):  # type: ignore[no-untyped-def]
        """Make the library save the session at the end of the request."""

    def claim(session):  # type: ignore[no-untyped-def]
        """Delete the session's stored state; ``False`` if it was gone already
        (of two requests migrating one old copy, only one keeps it)."""

    def merges(factory):  # type: ignore[no-untyped-def]
        """Whether :meth:`merge_saves` merges the saves of ``factory``'s sessions:
        what makes ``concurrent_writes="merge"`` the namespace's default."""

    def merging_loader(loader):  # type: ignore[no-untyped-def]
        """The loader a merging namespace's sessions are made with, given the
        one they would be made with otherwise (see
        :meth:`pyramid_session_multi.libraries.SessionLibrary.merging_loader`)."""

    def merge_saves(session, policy, outcome):  # type: ignore[no-untyped-def]
        """Make a loaded session's saves merge with what parallel requests saved
        (see :meth:`pyramid_session_multi.libraries.SessionLibrary.merge_saves`);
        ``False`` where it has nothing to merge with."""

    def expire_within(session, seconds):  # type: ignore[no-untyped-def]
        """Once ``session`` is saved: have its store drop it within ``seconds``
        if it is never used again (nothing where the store cannot)."""

    name = Attribute("A short name for the library, shown by the panel and the checks.")
    reads_store_when_loaded = Attribute(
        "True when making a session for a request that carries a cookie touches "
        "the store (the panel then leaves an untouched namespace unread)."
    )
    queues_when_made = Attribute(
        "True when every callback the library queues on the request (its save, "
        "its cookie) is appended while its factory makes the session, and never "
        "later: the add-on then takes them into the namespace's end of request "
        "right after the factory returns, instead of searching the request's "
        "queues for them when the response is made."
    )
    modules = Attribute(
        "The dotted names of the library's own modules and packages (a package "
        "stands for every module in it), a tuple: a callback queued on the request "
        "that refers to a session is the library's when its function comes from one "
        "of them; where none is declared, from the top level of a module defining the "
        "namespace's factory or one of the session's classes, or from inside that "
        "factory or class; any other is the application's, even beside (or in) its "
        "own subclass of a library's session class."
    )
    saves_when_finished = Attribute(
        "True when the library writes its store only in its finished callbacks, "
        "its response callbacks only setting the cookie: the add-on's records are "
        "then put into the session's storage only around the finished ones."
    )
    has_prepare = Attribute(
        "Whether :meth:`prepare` does anything: the add-on skips calling it when False."
    )
    records_in_data = Attribute(
        "True when the add-on's lifetime record rides in what read() returns; "
        "False when lifetime_record() gives it (the library keeps it elsewhere)."
    )
    bookkeeping = Attribute(
        "A frozenset of the keys of raw_storage() that are the library's own, not application data."
    )


class IRevocationStore(Interface):  # type: ignore[misc]
    """Where "this user's sessions were revoked at this time" is kept.

    Shared by every process of the application; set with
    ``config.set_revocation_store(store)`` or the ``session_multi.revocations``
    setting (see :doc:`/narr/lifetimes`).  Built in:
    :class:`pyramid_session_multi.revocation.MemoryRevocationStore`,
    :class:`~pyramid_session_multi.revocation.RedisRevocationStore` and
    :class:`~pyramid_session_multi.revocation.SQLRevocationStore`.
    """

    def revoked_at(userid):  # type: ignore[no-untyped-def]
        """The time (seconds since the epoch, a float) of the latest revocation
        of ``userid`` (text) still kept, or ``None``.  One round trip at most;
        raises when the store cannot be reached."""

    def revoke(userid, at, ttl):  # type: ignore[no-untyped-def]
        """Record that the sessions of ``userid`` recorded before ``at`` are
        revoked; forget it after ``ttl`` seconds (``None``: keep it until a
        later revocation of the user replaces it).  Raises when the store
        cannot be reached."""


class IDeviceIndex(Interface):  # type: ignore[misc]
    """What a revocation store keeps of a user's devices (see :doc:`/narr/devices`).

    A device is one login (``rotate(userid=...)``) on one client; its entry
    is a :class:`~pyramid_session_multi.lifecycle.devices.Device`.  Every
    built-in revocation store provides it.  Entries expire at their
    ``expires`` (the store never lists an expired one, and deletes them as
    it writes), and a revocation of the user deletes the entries of the
    logins it ends.
    """

    def record_device(device, replaced=()):  # type: ignore[no-untyped-def]
        """Add ``device`` or update its entry (see
        :meth:`~pyramid_session_multi.lifecycle.devices.Device.merged`), and
        drop the user's expired entries; delete the entries of ``replaced``
        (``(userid, login)`` pairs: the logins a new login replaced on its
        client) as :meth:`forget_devices` would.  One round trip."""

    def devices(userid):  # type: ignore[no-untyped-def]
        """The live entries of ``userid`` (text)."""

    def find_device(device_id):  # type: ignore[no-untyped-def]
        """The live entry of ``device_id``, or ``None``."""

    def end_device(device_id, ttl):  # type: ignore[no-untyped-def]
        """Record the end of the login of ``device_id`` (kept ``ttl``
        seconds) and delete its entry; returns the entry, ``None`` (and
        nothing recorded) if no live one has that id."""

    def forget_devices(userid, logins):  # type: ignore[no-untyped-def]
        """Delete the entries of ``userid``'s ``logins`` (a logout)."""

    def revocation_of(userid):  # type: ignore[no-untyped-def]
        """``(revoked_at(userid), ended)``: ``ended`` the frozenset of the
        user's login times whose device was ended.  One round trip."""


class ISessionEvent(Interface):  # type: ignore[misc]
    """Something happened to one namespace's session in a request."""

    request = Attribute("The request.")
    namespace = Attribute("The namespace.")
    session = Attribute("The namespace's session, or ``None`` where there is none.")
    session_id_hash = Attribute(
        "A salted hash of the session id, for logs, or ``None`` where the "
        "library has no id or it could not be read without side effects."
    )


class ISessionLoaded(ISessionEvent):
    """A namespace was loaded for the first time in the request."""


class ISessionRotated(ISessionEvent):
    """A namespace's session got a new id; ``old_id_hash`` is the old one's hash."""


class ISessionInvalidated(ISessionEvent):
    """``request.session_multi.invalidate()`` invalidated a namespace."""


class ISessionRejected(ISessionEvent):
    """A loaded session was thrown away: ``reason`` is ``"validator"``, ``"binding"``
    or ``"revoked"``."""


class ISessionExpired(ISessionEvent):
    """A loaded session was ended for its age: ``reason`` is ``"idle"`` or ``"absolute"``."""


class ISessionMigrated(ISessionEvent):
    """A namespace's session was read by one of its fallbacks and moved into a
    session of the namespace's own factory; ``fallback`` says which."""


class IFailureLog(Interface):  # type: ignore[misc]
    """The registry utility that logs each distinct store failure once per
    interval (:class:`~pyramid_session_multi.failures.FailureLog`)."""


class ISessionSaveFailed(ISessionEvent):
    """A namespace's session could not be saved: ``reason`` says why."""


class IConcurrentWriteDropped(ISessionEvent):
    """A namespace's save was dropped: the session it loaded ended in a parallel
    request (``reason`` says why); nothing ended is written again."""
