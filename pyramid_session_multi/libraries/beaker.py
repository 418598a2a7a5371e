"""pyramid_beaker: a lazy proxy around a Beaker session, stored in files, SQL, memcached...

``BeakerSessionFactoryConfig`` returns a ``SessionObject`` subclass whose
``_options`` are Beaker's.  The proxy loads the Beaker session on first
use, from the store, and saves it in a response callback.  Beaker's own
``invalidate()`` only starts a new id, leaving the old data in the store;
the add-on makes it delete that data first (see :meth:`BeakerLibrary.prepare`).

With ``type = cookie`` the proxy wraps a Beaker ``CookieSession`` instead:
the data is signed (and with ``encrypt_key`` encrypted) into the cookie, and
the "id" is only a random ``_id`` kept among that data.
"""

import functools
import inspect
import logging
import uuid
import weakref
from typing import Any

try:
    from beaker.session import CookieSession
except ImportError:  # pragma: no cover - pyramid_beaker is an optional extra

    class CookieSession:  # type: ignore[no-redef]
        """Stands in while Beaker is not installed: no session is one."""


from ..concurrency.beaker import guard_saves, reverted, snapshot
from ..concurrency.merge import MergePolicy
from ..concurrency.outcome import SaveOutcome
from .base import LIFETIME_ATTRIBUTE, SAVE_KEY, SessionLibrary, options_reads

logger = logging.getLogger(__name__)

#: Keys pyramid_beaker keeps beside the application's data.
BEAKER_BOOKKEEPING = frozenset({"_accessed_time", "_creation_time", "_domain", "_path"})

#: What a ``type = cookie`` session keeps beside them: its random id.
BEAKER_COOKIE_BOOKKEEPING = BEAKER_BOOKKEEPING | {"_id"}

#: The Beaker back ends whose saves are merged (see :mod:`..concurrency.beaker`).
MERGED_BEAKER_TYPES = frozenset({"file", "dbm", "ext:database"})

#: The options holding a Beaker secret, in the order the checks report them.
BEAKER_SECRET_OPTIONS = ("secret", "validate_key", "encrypt_key")

#: The longest cookie value Beaker writes for a ``type = cookie`` session.
BEAKER_COOKIE_VALUE_LIMIT = 4064

#: A server-side session's id: 32 hex digits (a UUID), behind a 40-digit
#: signature when there is a ``secret``.
BEAKER_ID_LENGTH = 32
BEAKER_SIGNATURE_LENGTH = 40


def is_beaker_factory(factory: Any) -> bool:
    """Whether ``factory`` is a pyramid_beaker session class."""
    return inspect.isclass(factory) and any(
        cls.__module__.startswith("beaker.") for cls in factory.__mro__
    )


def beaker_options(factory: Any) -> dict[str, Any]:
    """A copy of the Beaker options a pyramid_beaker ``factory`` was made with."""
    return dict(factory._options)


def is_cookie_type(factory: Any) -> bool:
    """Whether the pyramid_beaker ``factory`` keeps its data in the cookie."""
    options = factory._options
    session_class = options.get("session_class")
    if isinstance(session_class, type):
        return issubclass(session_class, CookieSession)
    return bool(options.get("type") == "cookie")


def _without_bookkeeping(data: Any, in_cookie: bool) -> dict[Any, Any]:
    hidden = BEAKER_COOKIE_BOOKKEEPING if in_cookie else BEAKER_BOOKKEEPING
    return {k: v for k, v in dict.items(data) if k not in hidden}


def destroy_beaker_storage(session: Any) -> None:
    """Delete the stored data of a pyramid_beaker ``session`` at once."""
    inner = session._session()
    namespace = getattr(inner, "namespace", None)
    if namespace is not None and _may_be_stored(session, inner):
        namespace.remove()


def _may_be_stored(session: Any, inner: Any) -> bool:
    """Whether a store may hold ``inner``, the Beaker session of ``session``:
    loaded from it, or made new and written since.  Beaker's ``is_new``
    stays true once a new session is written; the prepared class of a
    session no store holds (see :func:`prepared_class`) is left then."""
    if not inner.is_new:
        return True
    unstored = getattr(type(session), "session_multi_unstored", None)
    return unstored is not None and type(session) is not unstored


class BeakerLibrary(SessionLibrary):
    """pyramid_beaker, with any Beaker back end (file, ext:database, ...).

    :meth:`rotate` deletes the old file or row, gives the Beaker session a
    new id (Beaker's ``regenerate_id()``) and marks it to be saved, so the
    data is written under the new id and the new cookie is sent.  A
    ``type = cookie`` session has nothing stored to delete: it gets a new
    ``_id`` and its data goes out in a new cookie value.
    """

    name = "beaker"
    modules = ("pyramid_beaker", "beaker")
    reads_store_when_loaded = True
    # pyramid_beaker's session queues its one response callback in __init__
    queues_when_made = True
    has_prepare = True
    # the proxy loads its Beaker session once, and invalidates and rotates it in place
    raw_storage_stays = True
    # its prepared class's invalidate() resets the lifetime (see _invalidate_destroying)
    resets_lifetime = True
    # its prepared class's persist() looks under SAVE_KEY each time (see _persist_contained)
    saves_again_through_key = True

    def claims(self, factory: Any) -> bool:
        return is_beaker_factory(factory) and isinstance(getattr(factory, "_options", None), dict)

    def cookie(self, factory: Any) -> dict[str, Any] | None:
        options = factory._options
        return {
            "name": options.get("key", "beaker.session.id"),
            "secure": options.get("secure", False),
            "httponly": options.get("httponly", False),
            "samesite": options.get("samesite", "Lax"),
            "max_age": options.get("cookie_expires"),
            "path": options.get("cookie_path", "/"),
            "domain": options.get("cookie_domain"),
        }

    def facts(self, factory: Any) -> dict[str, Any]:
        facts = super().facts(factory)
        options = factory._options
        in_cookie = is_cookie_type(factory)
        facts.update(library=self.name, client_side=in_cookie)
        facts["timeout"] = options.get("timeout")
        facts["serializer"] = options.get("data_serializer", "pickle")
        # a cookie session ignores ``secret``: validate_key signs its cookie
        used = BEAKER_SECRET_OPTIONS[1:] if in_cookie else BEAKER_SECRET_OPTIONS
        facts["secrets"] = {
            option: options[option] for option in used if options.get(option) is not None
        }
        facts["secret"] = options.get("validate_key" if in_cookie else "secret")
        if in_cookie:
            facts["cookie_value_size"] = BEAKER_COOKIE_VALUE_LIMIT
        else:
            signed = isinstance(options.get("secret"), str) and bool(options["secret"])
            facts["cookie_value_size"] = BEAKER_ID_LENGTH + BEAKER_SIGNATURE_LENGTH * signed
        return facts

    def prepare(self, namespace: str, session: Any) -> None:
        """Make a session just created safe and accountable (a namespace's own
        sessions are made so, see :meth:`prepared_loader`; a fallback's are
        prepared here).

        - ``session.invalidate()`` deletes the old stored data first, so that
          an application calling ``request.session_multi[ns].invalidate()``
          directly is as safe as the manager's ``invalidate()``;
        - a session that no store holds yet (new, invalidated, or rotated
          from either) and that ends the request without application data is
          not written: Beaker would otherwise store an empty session under an
          id no client keeps, one orphan file or row per logout;
        - Beaker loads lazily, on the first read: an error of its store then
          gets the same note naming the namespace, and the same log line, as
          an error of the factory.
        """
        # The session becomes one of a subclass of its own class, made once per
        # namespace, whose methods do the above: nothing made per request, and
        # nothing the cycle collector has to free.  pyramid_beaker's session
        # proxies attribute writes to the Beaker session it wraps, hence
        # ``object.__setattr__``.
        session_class: Any = type(session)
        object.__setattr__(session, "__class__", prepared_class(session_class, namespace))

    def prepared_loader(self, loader: Any, namespace: str) -> Any:
        """The subclass :meth:`prepare` would make a session of ``loader`` one
        of (see :func:`prepared_class`), where ``loader`` is a pyramid_beaker
        session class; ``None`` otherwise (its sessions are prepared as made)."""
        if not is_beaker_factory(loader):
            return None
        return prepared_class(loader, namespace)

    def contains_own_saves(self, loader: Any) -> bool:
        """Whether ``loader`` is a prepared pyramid_beaker class (see
        :func:`prepared_class`) whose ``__init__`` is pyramid_beaker's own: its
        one response callback saves through ``persist()``, which the prepared
        class runs through the add-on's containment (see
        :func:`_persist_contained`)."""
        if not inspect.isclass(loader) or "session_multi_namespace" not in vars(loader):
            return False
        init = getattr(loader, "__init__", None)
        return getattr(init, "__module__", None) == "pyramid_beaker" and getattr(
            init, "__qualname__", ""
        ).endswith(".PyramidBeakerSessionObject.__init__")

    def read(self, session: Any) -> dict[Any, Any] | None:
        loaded = session.__dict__.get("_sess")
        # not loaded yet: reading would load it from the store
        if loaded is None:
            return None
        return _without_bookkeeping(loaded, isinstance(loaded, CookieSession))

    def loaded_data(self, session: Any) -> dict[Any, Any] | None:
        """What it held when it loaded: the snapshot its merging saves keep
        (see :func:`~pyramid_session_multi.concurrency.beaker.guard_saves`),
        else Beaker's ``accessed_dict``, a shallow copy (a value changed in
        place since is shown changed there too)."""
        loaded = session.__dict__.get("_sess")
        if loaded is None:
            return None
        kept = loaded.__dict__.get("session_multi_loaded")
        data = loaded.accessed_dict if kept is None else kept()
        return _without_bookkeeping(data, isinstance(loaded, CookieSession))

    def keep_loaded(self, session: Any) -> Any:
        """What the session holds once Beaker loads it, copied then: Beaker's own
        copy (``accessed_dict``) is shallow, so a value the application changes
        in place changes there too.  The proxy's ``_session()``, which loads
        it, is replaced on the session alone, once, until it has loaded (a
        merging save keeps such a copy already); the callable returned, once
        the panel read it, puts the class's back on a session still not
        loaded and drops the copy from one that loaded."""
        attributes = session.__dict__
        if attributes.get("_sess") is not None or "_session" in attributes:
            return None
        load = type(session)._session
        # weakly: the session's own attributes hold the function
        session_ref = weakref.ref(session)
        copied: list[bool] = []

        def loading() -> Any:
            held: Any = session_ref()
            # it leaves once loaded: where the store fails, the application's
            # next try loads through it again
            inner = load(held)
            held.__dict__.pop("_session", None)
            if "session_multi_loaded" not in inner.__dict__:
                inner.session_multi_loaded = snapshot(dict(dict.items(inner)))
                copied.append(True)
            return inner

        attributes["_session"] = loading

        def stop() -> None:
            held: Any = session_ref()
            if held is None:
                return
            attributes = held.__dict__
            if attributes.get("_session") is loading:
                del attributes["_session"]
            inner = attributes.get("_sess")
            if copied and inner is not None:
                # the copy is the panel's, read already: gone with the request
                inner.__dict__.pop("session_multi_loaded", None)

        return stop

    def load(self, session: Any) -> None:
        session._session()

    def session_id(self, session: Any) -> str | None:
        loaded = session.__dict__.get("_sess")
        if isinstance(loaded, CookieSession):
            # its ``id`` property raises KeyError once the data is cleared
            session_id = dict.get(loaded, "_id")
        else:
            session_id = getattr(loaded, "id", None)
        return session_id if isinstance(session_id, str) else None

    def reads(self, factory: Any) -> Any:
        return options_reads(factory._options)

    def fallback_problem(self, factory: Any) -> str | None:
        options = factory._options
        if options.get("type") == "cookie" and not options.get("invalidate_corrupt"):
            return (
                "a Beaker cookie session raises on any cookie it cannot verify, so a forged "
                "old cookie would fail the request; give it invalidate_corrupt=True"
            )
        return None

    def shared_cookie_problem(self, factory: Any) -> str | None:
        options = factory._options
        if options.get("type") == "cookie" and not options.get("invalidate_corrupt"):
            return (
                "a Beaker cookie session raises on any cookie it cannot verify, so the old "
                "cookies its fallbacks read would fail the request before they could; give "
                "the namespace's own factory invalidate_corrupt=True"
            )
        return None

    def created(self, session: Any) -> float | None:
        created = dict.get(session._session(), "_creation_time")
        return float(created) if isinstance(created, int | float) else None

    def set_created(self, session: Any, created: float) -> None:
        dict.__setitem__(session._session(), "_creation_time", created)

    bookkeeping = BEAKER_COOKIE_BOOKKEEPING

    def raw_storage(self, session: Any) -> dict[Any, Any] | None:
        # the Beaker session once loaded (invalidated and rotated in place),
        # else loaded now, as the proxy's own accessors load it
        loaded: dict[Any, Any] | None = session.__dict__.get("_sess")
        if loaded is None:
            loaded = session._session()
        return loaded

    def is_new(self, session: Any) -> bool | None:
        # Beaker knows once loaded: a session its cookie names that the store
        # no longer holds (or that timed out) is new too, and holds nothing
        loaded = session.__dict__.get("_sess")
        if loaded is None:
            loaded = session._session()
        is_new = getattr(loaded, "is_new", None)
        return is_new if type(is_new) is bool else None

    def mark_changed(self, session: Any) -> None:
        session.save()

    def merges(self, factory: Any) -> bool:
        # the back ends whose saves concurrency.beaker merges
        options = beaker_options(factory)
        return not is_cookie_type(factory) and options.get("type") in MERGED_BEAKER_TYPES

    def merge_saves(self, session: Any, policy: MergePolicy, outcome: SaveOutcome) -> bool:
        """Make a stored session's saves merge (see
        :mod:`pyramid_session_multi.concurrency.beaker`): ``file`` and ``dbm``
        under their own lock, ``ext:database`` with a
        conditional update.  Beaker loads on first use: a session not loaded
        yet is guarded when it loads.  ``False`` for a ``type = cookie``
        session, whose data travels in its cookie.
        """
        if is_cookie_type(session):
            return False
        loaded = session.__dict__.get("_sess")
        if loaded is not None:
            return guard_saves(loaded, policy, outcome)
        session_ref = weakref.ref(session)

        def guarded_load() -> Any:
            session: Any = session_ref()
            first = session.__dict__["_sess"] is None
            # the class's own loading (the add-on's, naming the namespace):
            # this instance attribute shadows it
            inner = type(session)._session(session)
            if first:
                guard_saves(inner, policy, outcome)
            return inner

        session.__dict__["_session"] = guarded_load
        return True

    def rotate(self, session: Any) -> Any:
        """A new id with the data; the old file or row is deleted by the
        callable returned, once the new session is saved."""
        loaded = session._session()
        retire = None
        if isinstance(loaded, CookieSession):
            # ``regenerate_id()`` cannot set a cookie session's id, a property
            loaded["_id"] = uuid.uuid4().hex
        else:
            old = getattr(loaded, "namespace", None)
            if old is not None and _may_be_stored(session, loaded):
                retire = old.remove
            loaded.regenerate_id()
            if old is not None:
                # the storage of the new id, as Beaker's save() would make it:
                # an invalidate() before the save now leaves the old one alone
                loaded.namespace = loaded.namespace_class(
                    loaded.id,
                    data_dir=loaded.data_dir,
                    digest_filenames=False,
                    **loaded.namespace_args,
                )
        session.save()
        return retire


def _load_naming_namespace(session: Any) -> Any:
    """The prepared session's ``_session()``, which its proxy calls on every
    access: the class's own, whose errors (of its store: Beaker loads on first
    use) are noted with the namespace; a session loaded new becomes one no
    store holds yet."""
    loaded = session.__dict__["_sess"]
    if loaded is not None:
        return loaded
    prepared = type(session)
    try:
        loaded = prepared.session_multi_session_class._session(session)
    except Exception as exc:
        namespace = prepared.session_multi_namespace
        exc.add_note(
            f"pyramid_session_multi: raised while loading the session of namespace {namespace!r}"
        )
        logger.error("namespace %r could not be loaded: %s: %s", namespace, type(exc).__name__, exc)
        raise
    if loaded.is_new:
        _becomes_unstored(session)
        if "accessed_dict" not in loaded.__dict__:
            # Beaker's new cookie session keeps no copy of what it loaded (its
            # revert() and the panel's reading of it would raise): what it
            # holds now, its random id alone
            loaded.accessed_dict = dict(dict.items(loaded))
    return loaded


def _invalidate_destroying(session: Any) -> None:
    """The prepared session's ``invalidate()``: its stored data deleted first,
    then the ``invalidate()`` of the application's session class where it
    has one of its own (Beaker's, else).  Where the application's raises,
    Beaker's ends the session all the same, and the error is raised once it
    is ended: what its request saves then is not what the client held.

    Once it returned, the session's lifetime (where its namespace keeps one)
    starts fresh stamps, of nobody, as the add-on's own ``invalidate()``
    would: ``BeakerLibrary.resets_lifetime``."""
    destroy_beaker_storage(session)
    inner = session._session()
    # looked up now: what the class has when called (an application's test may patch it)
    own = getattr(type(session).session_multi_session_class, "invalidate", None)
    failed = None
    if own is not None:
        try:
            own(session)
        except Exception as exc:
            failed = exc
            inner = session._session()
            inner.invalidate()
    else:
        inner.invalidate()
    if isinstance(inner, CookieSession):
        # A stored session loads afresh; a cookie session keeps what it
        # loaded, for its revert() and its saves of the access time alone:
        # the ended session's data would come back through them.
        inner.accessed_dict = dict(dict.items(inner))
    _becomes_unstored(session)
    # Saved as it now is: unsaved, pyramid_beaker would write back the
    # data loaded before the logout (a cookie session's whole data).
    session.save()
    if failed is not None:
        raise failed
    lifetime = session.__dict__.get(LIFETIME_ATTRIBUTE)
    if lifetime is not None:
        lifetime.reset()


def _revert_keeping_records_out(session: Any) -> None:
    """The prepared session's ``revert()``: Beaker's puts back the data as it
    loaded, the add-on's records with it (its copy of what it loaded keeps
    them, for its saves of the access time alone); each record the session
    holds for the request (the lifetime's, the binding's) leaves the data
    again, as at load, through its ``session_multi_hide_again``."""
    loaded = session._session()
    # a cookie session's id is among its data: a rotation's new one stays
    # (where the application cleared it, the one loaded comes back)
    session_id = dict.get(loaded, "_id") if isinstance(loaded, CookieSession) else None
    own = getattr(type(session).session_multi_session_class, "revert", None)
    try:
        if own is not None:  # the application's session class has its own
            own(session)
        else:
            loaded.revert()
    finally:
        # also where the application's failed once it put the data back
        if session_id is not None:
            dict.__setitem__(loaded, "_id", session_id)
        # a merging save's next merge is from what the data came back from
        reverted(loaded)
        for value in list(session.__dict__.values()):
            hide_again = getattr(value, "session_multi_hide_again", None)
            if hide_again is not None:
                hide_again(loaded)


def _loaded_as_now(session: Any) -> None:
    """The prepared session's ``session_multi_loaded_as_now()``: what it holds
    now (a fallback's migration moved it in, as part of loading it) becomes
    Beaker's copy of what it loaded, for its ``revert()``; the application's
    own keys spelled as a record of the add-on's are kept as stored, through
    each holder's ``session_multi_as_stored``."""
    inner = session._session()
    loaded = dict(dict.items(inner))
    for value in list(session.__dict__.values()):
        as_stored = getattr(value, "session_multi_as_stored", None)
        if as_stored is not None:
            as_stored(loaded)
    inner.accessed_dict = loaded


def _becomes_unstored(session: Any) -> None:
    unstored = type(session).session_multi_unstored
    if unstored is not None:
        # pyramid_beaker's proxy passes attribute writes on to the Beaker session
        object.__setattr__(session, "__class__", unstored)


def _persist_contained(session: Any) -> None:
    """The prepared session's ``persist()``, which pyramid_beaker's response
    callback calls before it sends the cookie: where the session was made
    contained in place (see ``BeakerLibrary.contains_own_saves``), the save
    runs through its ``DirectSave``, which its ``__dict__`` refers to (see
    ``SAVE_KEY``).  A save that failed sends no new cookie; a cookie about to
    be sent gets the attributes the namespace needs.  Once the end of request
    saved the session, what it left there puts the add-on's records back
    around a save the application makes later."""
    persist = type(session).session_multi_persist
    ref = session.__dict__.get(SAVE_KEY)
    save = None if ref is None else ref()
    if save is None:
        persist(session)
        return
    saved = save.save_itself(persist, session)
    if saved is None:  # not contained here (the end of request took it over)
        return
    headers = session.__dict__["_headers"]
    if not saved:
        headers["set_cookie"] = False  # the cookie would point at unsaved data
    else:
        out = headers.get("cookie_out")
        if out and headers.get("set_cookie"):
            headers["cookie_out"] = save.fit_cookie(out)


def _persist_unless_empty_and_new(session: Any) -> None:
    """The ``persist()`` of a prepared session no store holds yet: nothing is
    written while it holds no application data (an orphan under an id no
    client keeps, one per logout, else).  Also where the application's own
    ``invalidate()`` kept the id (Beaker's ``delete()``, whose cookie is
    deleted): the add-on deleted what its store held."""
    loaded = session.__dict__["_sess"]
    if loaded is not None and not _without_bookkeeping(loaded, False):
        return
    unstored = type(session)
    unstored.session_multi_session_class.persist(session)
    if loaded is not None and session.dirty():
        # written: a store holds it now (what it saves next is written, empty
        # or not, and a logout or a rotation deletes it)
        object.__setattr__(session, "__class__", unstored.session_multi_stored)


@functools.lru_cache(maxsize=1024)
def prepared_class(session_class: Any, namespace: str) -> Any:
    """The subclass of the pyramid_beaker session class ``session_class``
    whose sessions are what :meth:`BeakerLibrary.prepare` makes of those of
    ``namespace``; ``session_class`` itself where it is one already.

    Its ``persist()`` saves through the add-on's containment where the
    session was made contained in place (see :func:`_persist_contained`).
    Its ``session_multi_unstored`` is the subclass of it that a session
    becomes once no store holds it (new, or invalidated): its save leaves it
    unwritten while empty, and once it wrote it, the session is of the
    prepared class again.  ``None`` where the data travels in the
    cookie.  Both look the same as ``session_class`` from outside (same name
    and module).
    """
    if "session_multi_namespace" in vars(session_class):
        return session_class
    looks = {
        "__module__": session_class.__module__,
        "__qualname__": session_class.__qualname__,
        # the methods defined here call the class's own through it
        "session_multi_session_class": session_class,
        "session_multi_namespace": namespace,
        "session_multi_unstored": None,
    }
    prepared: Any = type(
        session_class.__name__,
        (session_class,),
        {
            **looks,
            "_session": _load_naming_namespace,
            "invalidate": _invalidate_destroying,
            "revert": _revert_keeping_records_out,
            "session_multi_loaded_as_now": _loaded_as_now,
            "persist": _persist_contained,
            # the save _persist_contained runs
            "session_multi_persist": session_class.persist,
        },
    )
    if not is_cookie_type(session_class):
        prepared.session_multi_unstored = type(
            session_class.__name__,
            (prepared,),
            {**looks, "session_multi_persist": _persist_unless_empty_and_new},
        )
        prepared.session_multi_unstored.session_multi_unstored = prepared.session_multi_unstored
        # what it becomes again once written
        prepared.session_multi_unstored.session_multi_stored = prepared
    return prepared
