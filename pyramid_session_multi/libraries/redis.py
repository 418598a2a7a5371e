"""pyramid_session_redis: the data in Redis under a random id, the id in a signed cookie.

``RedisSessionFactory`` returns a closure over its arguments, so the cookie
settings are read from its free variables.  A session's state is a
reified attribute that ``invalidate()`` deletes (after deleting the Redis
key); asking for it again starts a new session with a new id.
"""

import contextlib
import functools
import inspect
import types
import weakref
from typing import Any

from ..concurrency.merge import MergePolicy
from ..concurrency.outcome import SaveOutcome
from ..concurrency.redis import MergingClient, loaded_bytes, remembering
from .base import (
    COOKIE_ATTRIBUTES,
    UNKNOWN,
    SessionLibrary,
    closure_of,
    options_reads,
    signer_reads,
)

#: Where a payload pyramid_session_redis deserialized keeps the session's data.
MANAGED_KEY = "m"

#: Where a merging session keeps its :class:`_MergingSaves` (in its ``__dict__``).
MERGING = "_session_multi_merging"


class RedisLibrary(SessionLibrary):
    """pyramid_session_redis.

    :meth:`rotate` copies the data, calls the session's ``invalidate()``
    (which deletes the old key at once) and writes the data back: the
    library gives the session a new id and sets its cookie.
    """

    name = "redis"
    modules = ("pyramid_session_redis",)
    # the factory queues the cookie's response callback and the saving
    # finished callback as it makes the session, and nothing queues one later
    queues_when_made = True
    # its response callback only sets the cookie; the finished one writes Redis
    saves_when_finished = True

    def claims(self, factory: Any) -> bool:
        if not inspect.isfunction(factory):
            return False
        closure = closure_of(factory)
        return isinstance(closure.get("cookie_name"), str) and "_cookie_signer" in closure

    def queues_only_its_own(self, loader: Any) -> bool:
        """Whether ``loader`` is the factory ``RedisSessionFactory`` returns,
        itself (not a wrapper): it queues its cookie callback and its
        session's ``_deferred_callback``, one of each."""
        return (
            inspect.isfunction(loader)
            and loader.__module__ == "pyramid_session_redis"
            and loader.__qualname__ == "RedisSessionFactory.<locals>.factory"
        )

    def cookie(self, factory: Any) -> dict[str, Any] | None:
        closure = closure_of(factory)
        info: dict[str, Any] = {"name": closure["cookie_name"]}
        kwargs = closure.get("set_cookie_kwargs")
        if isinstance(kwargs, dict):
            for attribute in COOKIE_ATTRIBUTES:
                info[attribute] = kwargs.get(attribute)
        return info

    def facts(self, factory: Any) -> dict[str, Any]:
        facts = super().facts(factory)
        closure = closure_of(factory)
        facts.update(library=self.name, client_side=False, timeout=closure.get("timeout"))
        signer = closure["_cookie_signer"]
        facts["secret"] = getattr(signer, "secret", UNKNOWN)
        try:
            # the signed id of a session the factory would make
            facts["cookie_value_size"] = len(signer.dumps(closure["id_generator"]()))
        except Exception:  # an application's own signer or id generator
            pass
        return facts

    def reads(self, factory: Any) -> Any:
        closure = closure_of(factory)
        cookie = self.cookie(factory) or {}
        client = closure.get("redis_client_callable")
        # a topology of settings or redis_client_callable() compares by value
        store = getattr(client, "topology", client)
        return (
            cookie.get("name"), cookie.get("path") or "/", cookie.get("domain"),
            signer_reads(closure.get("_cookie_signer")),
            closure.get("redis_url"), options_reads(closure.get("redis_options")), store,
        )  # fmt: skip

    def read(self, session: Any) -> dict[Any, Any] | None:
        state = session.__dict__.get("_session_state")
        # no state: invalidated, and asking for one would create a new session
        return {} if state is None else dict(state.managed_dict)

    def session_id(self, session: Any) -> str | None:
        state = session.__dict__.get("_session_state")
        session_id = getattr(state, "session_id", None)
        return session_id if isinstance(session_id, str) else None

    def claim(self, session: Any) -> bool:
        # one DEL: of two requests claiming the same key, one gets 1, the other 0
        session_id = self.session_id(session)
        if session_id is None:
            return False
        deleted = session.redis.delete(session_id)
        session.__dict__.pop("_session_state", None)
        return bool(deleted)

    def set_created(self, session: Any, created: float) -> None:
        # ``created`` is a read-only property over the session's state
        state = session.__dict__.get("_session_state")
        if state is not None:
            state.created = int(created)

    def raw_storage(self, session: Any) -> dict[Any, Any] | None:
        # a new state (and id) after invalidate(), as the library's own accessors make
        managed: dict[Any, Any] = session._session_state.managed_dict
        return managed

    def is_new(self, session: Any) -> bool | None:
        # made new when its cookie named no key the store holds (or it had none)
        try:
            new = session.__dict__["_session_state"].new
        except KeyError:  # invalidated: asking for a state would make a new one
            return None
        return new if type(new) is bool else None

    def expire_within(self, session: Any, seconds: float) -> None:
        # the key's TTL, never past the add-on's timeouts: set after each write
        # (a write without the library's own timeout clears it), and after each
        # refresh of the library's own timeout where that is longer
        try:
            state = session.__dict__["_session_state"]
        except KeyError:
            return  # invalidated
        milliseconds = int(seconds * 1000) or 1
        timeout = state.timeout
        if timeout is None:
            if not state.dont_refresh:
                return  # not written in this request: the TTL set before holds
        elif timeout * 1000 <= milliseconds:
            return  # the library's own expiry comes first
        session_id = state.session_id
        if isinstance(session_id, str):  # else never stored
            session.redis.pexpire(session_id, milliseconds)

    def mark_changed(self, session: Any) -> None:
        # the library's own changed() does nothing: its writers set this flag
        session._session_state.please_persist = True

    def merges(self, factory: Any) -> bool:
        return True

    def merging_loader(self, loader: Any) -> Any:
        """``loader``, the library's factory, made again with a ``deserialize``
        that remembers the bytes each session is read from (see
        :func:`~pyramid_session_multi.concurrency.redis.remembering`); the
        factory itself where it keeps no ``deserialize``.  The same factory
        gives the same loader each time (a namespace finalized again is the
        same)."""
        if not inspect.isfunction(loader) or not loader.__closure__:
            return loader
        made = _MERGING_LOADERS.get(loader)
        if made is None:
            made = _remembering_factory(loader)
            if made is not loader:  # a value holding its key would keep it for ever
                _MERGING_LOADERS[loader] = made
        return made

    def merge_saves(self, session: Any, policy: MergePolicy, outcome: SaveOutcome) -> bool:
        """Make the loaded session's saves compare-and-set merges (see
        :class:`~pyramid_session_multi.concurrency.redis.MergingClient`).

        The load only keeps what it must keep then, the bytes the session was
        read from (the next load would take their place); the client that
        merges is put in when the session is saved (see :class:`_MergingSaves`),
        so a request that only reads sends its commands as the library does.
        A session that is new has nothing to merge with: ``False``.
        """
        attributes = session.__dict__
        # ``in`` and subscripts: this runs on every request that loads the namespace
        if "_session_state" not in attributes:
            return False
        state = attributes["_session_state"]
        if state.new:  # no id yet, or one the cookie named but the store did not hold
            return False
        loaded = loaded_bytes(MANAGED_KEY, state.managed_dict)
        if loaded is None:
            # not remembered (a factory of the library's made otherwise): what was
            # read, serialized again; a first save may then retry once (the
            # library's own expiry in it moves with the clock)
            loaded = session.to_redis()
        merging = _MergingSaves(session, state, policy, outcome, loaded)
        # an emptied session is saved empty, not ended (see _MergingSaves.invalidate)
        if "invalidate" in attributes:
            merging.invalidate_before = attributes["invalidate"]
        attributes["invalidate"] = merging.invalidate
        # the library's own save goes through here once (see _MergingSaves.do_persist)
        attributes["do_persist"] = merging.do_persist
        attributes[MERGING] = merging
        return True

    def rotate(self, session: Any) -> Any:
        """A new id with the data; the old key is deleted by the callable
        returned, once the new session is saved."""
        data = self.read(session) or {}
        state = session.__dict__.get("_session_state")
        old_id = getattr(state, "session_id", None)
        if isinstance(old_id, str) and data:
            merging = session.__dict__.get(MERGING)
            if merging is not None:
                # the new key is written, and the old one retired, merging
                merging.merge_from_now()
            # what invalidate() does, but the old key stays until the new one is saved
            del session._session_state
            retire = functools.partial(session.redis.delete, old_id)
        else:
            session.invalidate()
            retire = None
        if data:
            try:
                session.update(data)
                new_id = session.ensure_id()
                if retire is not None:
                    _expire_like(session.redis, new_id, old_id)
            except Exception:
                if retire is not None:
                    # all or nothing: a new id made before the failure goes
                    with contextlib.suppress(Exception):
                        session.invalidate()
                raise
        return retire


#: factory -> what :meth:`RedisLibrary.merging_loader` made of it, while the factory lives
_MERGING_LOADERS: "weakref.WeakKeyDictionary[Any, Any]" = weakref.WeakKeyDictionary()


def _remembering_factory(factory: Any) -> Any:
    """``factory`` with its ``deserialize`` :func:`remembering`; ``factory``
    itself where it has none.  Its other free variables are its own cells,
    shared; it does not refer to ``factory`` (which a weak key may then drop)."""
    code, cells = factory.__code__, factory.__closure__
    if "deserialize" not in code.co_freevars:
        return factory
    closure = tuple(
        types.CellType(remembering(cell.cell_contents)) if name == "deserialize" else cell
        for name, cell in zip(code.co_freevars, cells, strict=True)
    )
    made = types.FunctionType(
        code, factory.__globals__, factory.__name__, factory.__defaults__, closure
    )
    made.__kwdefaults__ = factory.__kwdefaults__
    made.__qualname__ = factory.__qualname__
    return made


class _MergingSaves:
    """What one loaded session's merging saves refer to: the session (weakly:
    it holds this, and goes with its request, not when the collector runs),
    the state it was loaded as, the policy, the outcome and the bytes it was
    loaded from.  One object a load, made only where the session is saved
    through a merge; nothing is decoded until a save meets a parallel one.

    The load puts in two of its methods as the session's own:
    :meth:`do_persist`, the library's one way to write the session, which puts
    in the :class:`~pyramid_session_multi.concurrency.redis.MergingClient`
    first (a request that saves nothing never makes one), and
    :meth:`invalidate`.
    """

    __slots__ = ("alive", "invalidate_before", "loaded", "outcome", "policy", "state")

    def __init__(
        self, session: Any, state: Any, policy: MergePolicy, outcome: SaveOutcome, loaded: bytes
    ) -> None:
        self.alive = weakref.ref(session)
        #: the library's state of the session as loaded (``None`` once merging)
        self.state = state
        self.policy = policy
        self.outcome = outcome
        self.loaded = loaded
        #: the session's own ``invalidate`` where it had one of its own
        self.invalidate_before: Any = None

    def merge_from_now(self) -> None:
        """Have the session's writes of its Redis key merge from now on: its
        client becomes a :class:`MergingClient`, where the session is still
        the one loaded (a session this request logged out, or whose key it
        claimed, is saved as the library saves it: it is its own)."""
        own: Any = self.alive()  # alive: only its own methods ask
        state, self.state = self.state, None
        own.__dict__.pop("do_persist", None)
        if state is None or own.__dict__.get("_session_state") is not state:
            return
        own.redis = MergingClient(
            own.redis, state.session_id, self.loaded, self.remerge, self.outcome.gone
        )

    def do_persist(self, serialized_session: Any = None) -> Any:
        """The session's ``do_persist()``: merging from now on, then the library's."""
        self.merge_from_now()
        own: Any = self.alive()
        return own.do_persist(serialized_session)

    def data_of(self, serialized: bytes) -> tuple[Any, dict[Any, Any]]:
        own: Any = self.alive()  # alive: only its own saves ask
        payload = own.deserialize(serialized)
        managed: dict[Any, Any] = own.decode_session_payload(payload)["managed_dict"]
        return payload, managed

    def remerge(self, loaded: bytes, ours: bytes, theirs: bytes) -> bytes:
        """What :class:`MergingClient` writes where the key changed since the load."""
        payload, managed = self.data_of(ours)
        merged = self.policy.merge(self.data_of(loaded)[1], managed, self.data_of(theirs)[1])
        self.outcome.merged(merged)
        # ours, with the merged data in place of its own
        managed.clear()
        managed.update(merged.data)
        own: Any = self.alive()
        written: bytes = own.serialize(payload)
        return written

    def invalidate(self, *args: Any, **kwargs: Any) -> Any:
        """The session's ``invalidate()``: an emptied session is saved empty, not ended.

        The library invalidates a session left empty as it sets its cookie
        (``invalidate_empty_session``): its key and cookie go, and a parallel
        request's save would find the key gone and be dropped as if the
        session had been logged out.  While the library's callbacks run, that
        ``invalidate()`` saves the empty session instead (a merging save, like
        any other: what a parallel request wrote lands) and keeps its cookie.
        A session that held no data when loaded is left as it is (nothing is
        written; its key expires as it would).  The application's own
        ``invalidate()`` (a logout) is untouched.
        """
        own: Any = self.alive()  # alive: called on it
        state = own.__dict__.get("_session_state")
        if self.outcome.saving and state is not None and not state.new and not state.managed_dict:
            state.please_persist = bool(set(self.data_of(self.loaded)[1]) - self.policy.own_keys)
            return None
        if self.invalidate_before is not None:
            return self.invalidate_before(*args, **kwargs)
        return type(own).invalidate(own, *args, **kwargs)


def _expire_like(client: Any, new_id: Any, old_id: Any) -> None:
    """Give the key just made for ``new_id`` the TTL the old key has.

    The library stores a new id's key as it makes the id, with its own
    timeout (none without one); the add-on's expiry is set when the session
    is saved.  A store that fails before that would keep the new key for
    ever: it expires no later than the old one would have instead.
    """
    if not isinstance(new_id, str):
        return
    left = client.pttl(old_id)
    if isinstance(left, int) and left > 0:
        client.pexpire(new_id, left)
