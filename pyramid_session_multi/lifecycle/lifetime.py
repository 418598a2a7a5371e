"""Session lifetimes: the idle and absolute timeouts, and who a session belongs to.

A namespace registered with ``idle_timeout=`` or ``absolute_timeout=`` (or
any namespace, once a revocation store is set) is *stamped*: beside its data
the add-on keeps a small record, its :class:`Stamps`:

- ``created``: when the session began, or was last rotated (the absolute clock);
- ``active``: when it was last seen in use, to the nearest tenth of the idle
  window (the idle clock);
- ``userid`` and ``login``: who ``rotate(userid=...)`` recorded, and when
  (what a revocation compares against).

The record travels with the data, in the library's own storage under
:data:`LIFETIME_KEY`, so it needs no store of its own and a fallback's
migration carries it.  It stays out of the application's way: the load step
takes it out of the raw storage before the application sees the session,
without marking anything changed, and the end of the request puts it back,
raw, just before the library saves.  Put back where it was (first), and as
the same object when unchanged, it leaves what a library compares to detect
changes (pyramid_session_redis's ``detect_changes``) as it was loaded.
pyramid's cookie sessions keep their stamps themselves, in their cookie's
own fields (see :mod:`~pyramid_session_multi.lifecycle.cookie_lifetime`).

Activity costs no write per request: the idle clock is moved forward only
once a tenth (:data:`RESTAMP_FRACTION`) of the idle window has passed since
it was last moved, as pyramid's ``reissue_time`` and pyramid_session_redis's
``timeout_trigger`` do; a session is then written to carry the new stamp.

On load, a session unused for longer than its idle timeout, or older than its
absolute timeout, is ended with the reason ``"idle"`` or ``"absolute"``, told
as :class:`~pyramid_session_multi.events.SessionExpired` (the load step and
the check are in ``pyramid_session_multi.lifecycle.lifetime_step``).
"""

import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ..binding import keep_through_rotation
from ..hidden import ABSENT, conceal, restore, take
from ..libraries.base import LIFETIME_ATTRIBUTE, SessionLibrary

#: The key the record is kept under in the library's raw storage (an
#: application key spelled the same stays the application's: see
#: ``pyramid_session_multi.hidden``).
LIFETIME_KEY = "_psm_t"

#: The attribute of a loaded session holding its :class:`Lifetime` for the request.
ATTRIBUTE = LIFETIME_ATTRIBUTE

#: The part of the idle window after which use moves the idle clock forward.
RESTAMP_FRACTION = 0.1

#: How far ahead of this machine's clock a stamp may be, in seconds: the skew
#: tolerated between the clocks of the machines that share a store.  A
#: session stamped further ahead (a clock that ran fast, then was corrected)
#: is ended on load, its stamps untrusted: trusted, they would keep it alive
#: past both timeouts by as much as the clock was ahead.
CLOCK_SKEW = 60

#: The longest timeout taken, in seconds (ten years): every store can hold it.
MAX_TIMEOUT = 10 * 365 * 24 * 3600

#: Past this magnitude a number in a record is no time the add-on wrote (nor
#: is a NaN or an infinity): the record is no record.
FAR = float(2**53)

#: The reasons :func:`lifetime_check` gives.
IDLE = "idle"
ABSOLUTE = "absolute"


def wall_clock() -> float:
    """:func:`time.time`, looked up at each call: a test tool that replaces
    ``time.time`` (freezegun) moves the add-on's clocks whatever it found
    bound in this module when it started."""
    return time.time()


#: The wall clock every stamp is read from; a test may replace it.
clock: Callable[[], float] = wall_clock

_issued_lock = threading.Lock()
_last_issued = 0.0


def to_ms(seconds: float) -> float:
    """``seconds`` to the ms, as ``round(seconds, 3)`` (but for a float's error of half a ms)
    at a third of its cost, with no decimal text; NaN, or a time past ms (forged), is itself."""
    try:
        return round(seconds * 1000) / 1000
    except (OverflowError, ValueError):
        return seconds


def now() -> float:
    """The time, in seconds since the epoch, to the millisecond, from :data:`clock`."""
    return to_ms(clock())


def issue_time() -> float:
    """:func:`now`, but always later than any time this process issued before.

    Logins and revocations are stamped with it, so that in one process a
    login after a revocation is never stamped before it, even within one
    tick of the clock or across a step back of the wall clock of up to
    :data:`CLOCK_SKEW`.  Across a longer step back the clock is followed:
    a time further ahead would end the session it stamps at its next load.
    """
    global _last_issued
    with _issued_lock:
        t = now()
        # strictly after the last: of a login and a revocation in one process, never the same ms
        issued = max(t, to_ms(_last_issued + 0.001))
        if issued > t + CLOCK_SKEW:
            issued = t
        _last_issued = issued
        return issued


@dataclass(frozen=True, init=False)
class Stamps:
    """What the add-on keeps about a session beside its data."""

    #: when the session began or was last rotated
    created: float
    #: when it was last seen in use (moved forward at most once a tenth of the idle window)
    active: float
    #: the user ``rotate(userid=...)`` recorded, if any
    userid: str | int | None = None
    #: when that user was recorded
    login: float | None = None

    def __init__(
        self,
        created: float,
        active: float,
        userid: str | int | None = None,
        login: float | None = None,
    ) -> None:
        # written out, into its own dict: a frozen dataclass's __init__ sets each
        # field through object.__setattr__, five times slower, on every stamped load
        fields = self.__dict__
        fields["created"] = created
        fields["active"] = active
        fields["userid"] = userid
        fields["login"] = login

    def as_raw(self) -> list[Any]:
        """The record as the library stores it: a short list, since it rides in cookies.

        ``[created, active - created]``, then ``userid, login`` once a user is
        recorded; times to the millisecond.
        """
        raw: list[Any] = [self.created, to_ms(self.active - self.created)]
        if self.userid is not None:
            raw += [self.userid, self.login]
        return raw

    @classmethod
    def from_raw(cls, raw: Any) -> "Stamps | None":
        """The stamps of a stored record, ``None`` if it is not one."""
        match raw:
            # what the add-on writes (floats, a text userid), told without a call
            case [created, offset] if (
                type(created) is float
                and type(offset) is float
                and -FAR < created < FAR
                and 0 <= offset < FAR
            ):
                return cls(created, created + offset)
            case [created, offset, userid, login] if (
                type(created) is float
                and type(offset) is float
                and type(userid) is str
                and type(login) is float
                and -FAR < created < FAR
                and 0 <= offset < FAR
                and -FAR < login <= created + CLOCK_SKEW
                and 0 < len(userid) <= MAX_USERID_LENGTH
            ):
                return cls(created, created + offset, userid, login)
        return cls._from_other(raw)

    @classmethod
    def _from_other(cls, raw: Any) -> "Stamps | None":
        # what another writer (whole numbers kept as integers, an integer userid) stored, or none
        size = len(raw) if isinstance(raw, list | tuple) else 0
        if size not in (2, 4):
            return None
        created: Any = raw[0]
        offset: Any = raw[1]
        if not _is_time(created) or not _is_time(offset) or offset < 0:
            return None
        # the idle clock as the sum, unrounded: written again, its offset rounds back
        active = float(created) + float(offset)
        if size == 2:
            return cls(float(created), active)
        userid: Any = raw[2]
        login: Any = raw[3]
        if userid is None:
            return cls(float(created), active)
        if not (_is_userid(userid) and _is_time(login)) or login > created + CLOCK_SKEW:
            return None  # a login is stamped no later than the creation it restarts
        try:
            userid = check_userid(userid)
        except ValueError:
            return None
        return cls(float(created), active, userid, float(login))


def ahead(stamps: Stamps, t: float) -> str | None:
    """The reason to end a session whose ``stamps`` are further ahead of ``t``
    than :data:`CLOCK_SKEW` (``None`` if none is): :data:`ABSOLUTE` for its
    creation, :data:`IDLE` for its last use."""
    limit = t + CLOCK_SKEW
    # a login is stamped no later than the creation it restarts
    if stamps.created > limit:
        return ABSOLUTE
    if stamps.active > limit:
        return IDLE
    return None


def _is_time(value: Any) -> bool:
    # what a record holds, then anything else a number (never a bool); finite,
    # and within what a float holds exactly (no NaN, no infinity, no overflow)
    return (
        type(value) is float or (isinstance(value, int | float) and not isinstance(value, bool))
    ) and -FAR < value < FAR


def _is_userid(value: Any) -> bool:
    return type(value) is str or (isinstance(value, str | int) and not isinstance(value, bool))


def check_userid(userid: Any) -> str | int:
    """``userid`` as a plain ``str`` or ``int`` if a session can record it (text or
    an integer, of any subclass but ``bool``), else ``ValueError``."""
    if not _is_userid(userid) or (isinstance(userid, str) and not userid.strip()):
        raise ValueError(
            f"pyramid_session_multi: a userid is non-empty text or an integer, not {userid!r}"
        )
    text = str(userid)
    if len(text) > MAX_USERID_LENGTH or not text.isprintable():
        raise ValueError(
            f"pyramid_session_multi: a userid is at most {MAX_USERID_LENGTH} printable "
            f"characters (every revocation store must hold it), not {text[:40]!r}…"
        )
    # a plain str or int: what every serializer writes and reads back alike
    return str.__str__(userid) if isinstance(userid, str) else int(userid)


#: The longest userid a session records: what every revocation store holds.
MAX_USERID_LENGTH = 255


#: What the timeouts add to a clock that has none: never the earlier end.
_NEVER = float("inf")


class LifetimeRules:
    """What a stamped namespace's lifetime needs on every request, worked out
    once from its configuration when it is committed (its pipeline's
    :attr:`~pyramid_session_multi.lifecycle.pipeline.Pipeline.lifetime`).

    Its library's methods that the load and the end of a request call, bound
    once; its timeouts, and how long after the idle clock was last moved use
    moves it again; whether its store is told when to drop a session.
    """

    __slots__ = (
        "absolute_or_never",
        "bookkeeping",
        "cookie_name",
        "expire_within",
        "fallbacks",
        "idle_or_never",
        "invalidate_resets",
        "is_new",
        "raw_storage",
        "restamp_after",
        "storage_stays",
    )

    def __init__(self, namespace_config: Any) -> None:
        library = namespace_config.library
        idle: int | None = namespace_config.idle_timeout
        absolute: int | None = namespace_config.absolute_timeout
        #: each timeout, or an infinity: the earlier end is told without a branch
        self.idle_or_never = _NEVER if idle is None else float(idle)
        self.absolute_or_never = _NEVER if absolute is None else float(absolute)
        #: seconds after which use moves the idle clock forward
        self.restamp_after = _NEVER if idle is None else idle * RESTAMP_FRACTION
        self.cookie_name: str = namespace_config.cookie_name
        self.fallbacks: tuple[Any, ...] = tuple(namespace_config.fallbacks)
        self.raw_storage = library.raw_storage
        self.is_new = library.is_new
        #: the library's own keys of its raw storage (``None``: it keeps none there)
        self.bookkeeping: frozenset[Any] | None = frozenset(library.bookkeeping) or None
        #: whether the raw storage found at load is the one saved, kept to it
        #: (``SessionLibrary.raw_storage_stays``)
        self.storage_stays = bool(getattr(library, "raw_storage_stays", False))
        #: whether the sessions' own ``invalidate()`` resets the lifetime (see
        #: ``SessionLibrary.resets_lifetime``): their class is the library's prepared one
        resets = namespace_config.prepare is None and library.has_prepare
        self.invalidate_resets = resets and getattr(library, "resets_lifetime", False) is True
        expire_within = library.expire_within
        #: ``None`` where there is nothing to tell: no timeout, or a store
        #: that drops nothing by itself (the library's is the base's no-op)
        self.expire_within = (
            None
            if (idle is None and absolute is None)
            or getattr(expire_within, "__func__", None) is SessionLibrary.expire_within
            else expire_within
        )


class Lifetime:
    """One stamped namespace's bookkeeping in one request.

    Kept on the session object (never in its data) for the request, it is the
    session's ``invalidate()`` (where its class's does not reset it) and its
    namespace's before- and after-save hooks.  It holds its session weakly.
    """

    # What most requests leave as they were are class attributes: an instance
    # sets only what its load found (one object per loaded namespace per request).
    #: the reason the session ends on load, if it does
    verdict: str | None = None
    #: the stamps the session was ended with (for the panel)
    expired: Stamps | None = None
    #: the session's own ``invalidate`` where it had one of its own
    invalidate_before: Any = None
    #: the application's own value for :data:`LIFETIME_KEY` while the record is stored
    own: Any = ABSENT
    #: the raw storage the record is in while the library saves
    storage: Any = None
    #: the raw storage found at load, where its library keeps it the same
    #: (``LifetimeRules.storage_stays``): the one put back into
    kept: Any = None
    #: the stamps of the record loaded (the same record goes back while the
    #: stamps are these); ``None`` with no record loaded
    loaded_stamps: Stamps | None = None
    #: the stamps the session goes out with; ``None`` while they are those of
    #: the record loaded in the form the add-on writes (``[created, offset]``),
    #: made from it only when asked for (most requests never ask)
    _stamps: Stamps | None = None

    def __init__(
        self,
        namespace_config: Any,
        rules: LifetimeRules,
        session: Any,
        stamps: Stamps | None,
        loaded: Any,
        kept: Any = None,
    ) -> None:
        self.config = namespace_config
        #: its namespace's :class:`LifetimeRules`
        self.rules = rules
        self._session = weakref.ref(session)
        #: the record as it was loaded
        self.loaded = loaded
        if stamps is not None:  # else those of its class (most requests)
            self._stamps = stamps
            if loaded is not None:
                self.loaded_stamps = stamps
        if kept is not None:
            self.kept = kept

    @property
    def stamps(self) -> Stamps:
        """The stamps the session goes out with."""
        stamps = self._stamps
        if stamps is None:
            # those of the record loaded, unchanged: made once asked for
            created, offset = self.loaded
            stamps = self._stamps = self.loaded_stamps = Stamps(created, created + offset)
        return stamps

    @stamps.setter
    def stamps(self, stamps: Stamps) -> None:
        self._stamps = stamps

    @property
    def moved(self) -> bool:
        """Whether the stamps differ from those loaded (new, restamped, rotated)."""
        # those loaded, not yet asked for, are both ``None``; new ones have no loaded stamps
        return self._stamps is not self.loaded_stamps

    def end(self, verdict: str, stamps: Stamps) -> None:
        """End the session on load, for ``verdict``, as it was with ``stamps``."""
        self.verdict = verdict
        self.expired = stamps

    def reset(self) -> None:
        """A new session begins (the old one was invalidated): fresh clocks, nobody."""
        t = now()
        self.stamps = Stamps(t, t)
        self.loaded = self.loaded_stamps = None

    def invalidate(self, *args: Any, **kwargs: Any) -> Any:
        # a session whose invalidate() raised (its store is down) was not logged
        # out: it keeps its stamps, to be judged by them again
        if self.invalidate_before is not None:
            result = self.invalidate_before(*args, **kwargs)
        else:
            session: Any = self._session()
            result = type(session).invalidate(session, *args, **kwargs)
        self.reset()
        return result

    def put_back(self, response: Any) -> None:
        """Just before the library saves: the record goes back into a session
        with data, last, where it was loaded from (it is written last), so that
        an unchanged session serializes as it was loaded: the loaded record
        itself while the stamps are those loaded."""
        storage = self.kept
        if storage is None:
            storage = self.rules.raw_storage(self._session())
            if type(storage) is not dict and not isinstance(storage, dict):
                raise no_raw_storage(self.config)
        self.storage = storage
        # nothing with no data (the library's own keys are none): the stamps of an empty
        # session are not written.  A dict's own methods: a subclass's may mark it accessed.
        if dict.__len__(storage) and (
            (bookkeeping := self.rules.bookkeeping) is None or not dict.keys(storage) <= bookkeeping
        ):
            # the record loaded while the stamps are those loaded (both ``None``
            # while they were never asked for)
            stamps = self._stamps
            record = (
                self.loaded if stamps is self.loaded_stamps or stamps is None else stamps.as_raw()
            )
            # set where the key is free, in the one call that finds out
            if dict.setdefault(storage, LIFETIME_KEY, record) is not record:
                # the application's own key of that name: the record rides inside
                self.own = conceal(storage, LIFETIME_KEY, record)
        elif dict.__contains__(storage, LIFETIME_KEY):
            self.own = conceal(storage, LIFETIME_KEY, None)

    def session_multi_hide_again(self, storage: Any) -> None:
        """The library put the record loaded back into ``storage`` by itself
        (pyramid_beaker's ``revert()``): it leaves the data again, as at load,
        the application's own value for its key kept (the stamps stay those
        of the request)."""
        take(storage, LIFETIME_KEY)

    def session_multi_as_stored(self, data: dict[Any, Any]) -> None:
        """``data``, a copy of what the session holds, as loaded: the application's
        own value for the record's key as stored (:meth:`session_multi_hide_again`)."""
        conceal(data, LIFETIME_KEY, None)

    def take_out(self, response: Any) -> None:
        """Once the library saved: the record leaves the data again (the
        application's callbacks see only its own), and the store is told to
        drop an abandoned session no later than the timeouts would end it."""
        storage, self.storage = self.storage, None
        own = self.own
        if own is ABSENT:
            dict.pop(storage, LIFETIME_KEY, None)
        else:
            restore(storage, LIFETIME_KEY, own)
            self.own = ABSENT
        rules = self.rules
        expire_within = rules.expire_within
        if expire_within is None:
            return
        stamps = self._stamps
        if stamps is None:  # the record loaded, read without making its stamps
            created, offset = self.loaded
            active = created + offset
        else:
            created = stamps.created
            active = stamps.active
        end = active + rules.idle_or_never
        by_age = created + rules.absolute_or_never
        if by_age < end:
            end = by_age
        # the clock itself: a store's expiry needs no rounding to the millisecond
        left = end - (time.time() if clock is wall_clock else clock())
        expire_within(self._session(), left if left > 0.0 else 0.0)

    def persist_around(self, persist: Any, session: Any) -> None:
        """``persist(session)`` between :meth:`put_back` and :meth:`take_out`,
        in one call where it can (a stamped pyramid_beaker namespace's save)."""
        storage = self.kept
        rules = self.rules
        if (
            storage is not None
            and rules.expire_within is None
            and (  # data (no count first: an empty storage's keys are all bookkeeping)
                dict.__len__(storage)
                if (bookkeeping := rules.bookkeeping) is None
                else not dict.keys(storage) <= bookkeeping
            )
        ):
            stamps = self._stamps
            record = (
                self.loaded if stamps is None or stamps is self.loaded_stamps else stamps.as_raw()
            )
            if dict.setdefault(storage, LIFETIME_KEY, record) is record:  # the key was free
                try:
                    persist(session)
                finally:
                    dict.pop(storage, LIFETIME_KEY, None)
                return
        # no data, a store to tell, or the application's own key of that name
        self.put_back(None)
        try:
            persist(session)
        finally:
            self.take_out(None)


def remember_login(work: Any, userid: Any, at: float | None = None) -> None:
    """A login (``rotate(userid=...)`` of every namespace) in this request: a
    namespace first loaded after it, with no session yet, is the user's too;
    ``at`` is its time (the one every namespace it rotated records), a new
    :func:`issue_time` if not given."""
    work.login = (userid, issue_time() if at is None else at)


def remembered_login(work: Any) -> tuple[Any, float] | None:
    """The ``(userid, time)`` :func:`remember_login` kept for the request, if any."""
    login: tuple[Any, float] | None = work.login
    return login


class SessionLifetime(Protocol):
    """What the add-on reads and writes of a loaded session's lifetime: a
    :class:`Lifetime`, or a
    :class:`~pyramid_session_multi.lifecycle.cookie_lifetime.CookieLifetime`."""

    stamps: Stamps

    @property
    def config(self) -> Any: ...
    @property
    def verdict(self) -> str | None: ...
    @property
    def expired(self) -> Stamps | None: ...
    @property
    def moved(self) -> bool: ...
    def end(self, verdict: str, stamps: Stamps) -> None: ...


def lifetime_of(session: Any) -> SessionLifetime | None:
    """The lifetime of a loaded session of a stamped namespace, else ``None``."""
    attributes = getattr(session, "__dict__", None)
    if attributes is None:
        return None
    lifetime = attributes.get(ATTRIBUTE)
    if isinstance(lifetime, Lifetime):
        return lifetime
    own = getattr(session, ATTRIBUTE, None)
    return None if own is None else own()


def no_raw_storage(namespace_config: Any) -> TypeError:
    """The error of a stamped namespace whose library gives no raw storage."""
    return TypeError(
        f"pyramid_session_multi: namespace {namespace_config.namespace!r} has timeouts or "
        f"records its user, but its session library ({namespace_config.library.name}) "
        "gives no raw storage to keep the stamps in; see SessionLibrary.raw_storage"
    )


def rotation(session: Any, userid: Any = None, at: float | None = None) -> Callable[[], None]:
    """Before a library rotates ``session``: what to call once it has.

    The absolute clock restarts (a login is a new privilege level); the user
    is the one given, else the one recorded before.  ``at`` is the time of
    the login (or rotation) the session is rotated by: one ``rotate()``
    records one time in every namespace it rotates, so that the end of that
    login a logout records (see :mod:`.revoking`) covers each of them.  A new
    :func:`issue_time` if not given.
    """
    # a bound or partner session keeps its binding token too
    kept = keep_through_rotation(session)
    lifetime = lifetime_of(session)
    if lifetime is None:
        return kept
    before = lifetime.stamps

    def rotated() -> None:
        t = issue_time() if at is None else at
        if userid is not None:
            # the clocks restart at the login itself (the one time every namespace of
            # that login shares: it names the device)
            lifetime.stamps = Stamps(t, t, userid, t)
        else:
            lifetime.stamps = Stamps(t, t, before.userid, before.login)
        kept()

    return rotated
