"""Session lifetimes: the idle and absolute timeouts, and who a session belongs to.

A namespace registered with ``idle_timeout=`` or ``absolute_timeout=`` (or
any namespace, once a revocation store is set) is *stamped*: beside its data
the add-on keeps a small record, its :class:`Stamps`:

- ``created``: when the session began, or was last rotated (the absolute
  clock);
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
absolute timeout, is ended by the check ``lifetime_check`` with the reason
``"idle"`` or ``"absolute"``, told as
:class:`~pyramid_session_multi.events.SessionExpired`.
"""

import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ..binding import keep_through_rotation
from ..hidden import ABSENT, conceal, restore, take

#: The key the record is kept under in the library's raw storage (an
#: application key spelled the same stays the application's: see
#: ``pyramid_session_multi.hidden``).
LIFETIME_KEY = "_psm_t"

#: The attribute of a loaded session holding its :class:`Lifetime` for the request.
ATTRIBUTE = "_session_multi_lifetime"

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


def now() -> float:
    """The time, in seconds since the epoch, to the millisecond, from :data:`clock`.

    Stamps ride in cookies: a millisecond is fine enough, and three digits
    fewer than the clock's.
    """
    return round(clock(), 3)


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
        # strictly after the last: of a login and a revocation in one process,
        # the later is never stamped the same millisecond as the earlier
        issued = max(t, round(_last_issued + 0.001, 3))
        if issued > t + CLOCK_SKEW:
            issued = t
        _last_issued = issued
        return issued


@dataclass(frozen=True)
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

    def as_raw(self) -> list[Any]:
        """The record as the library stores it: a short list, since it rides in cookies.

        ``[created, active - created]``, then ``userid, login`` once a user is
        recorded; times to the millisecond.
        """
        raw: list[Any] = [self.created, round(self.active - self.created, 3)]
        if self.userid is not None:
            raw += [self.userid, self.login]
        return raw

    @classmethod
    def from_raw(cls, raw: Any) -> "Stamps | None":
        """The stamps of a stored record, ``None`` if it is not one."""
        size = len(raw) if isinstance(raw, list | tuple) else 0
        if size not in (2, 4):
            return None
        created: Any = raw[0]
        offset: Any = raw[1]
        # floats, as the add-on writes them, are told without a call
        if type(created) is not float and not _is_time(created):
            return None
        if (type(offset) is not float and not _is_time(offset)) or offset < 0:
            return None
        if size == 2:
            return cls(float(created), round(float(created) + float(offset), 3))
        userid: Any = raw[2]
        login: Any = raw[3]
        if userid is not None and not (_is_userid(userid) and _is_time(login)):
            return None
        active = round(float(created) + float(offset), 3)
        return cls(float(created), active, userid, float(login) if _is_time(login) else None)


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
    # what a record holds, then anything else a number (never a bool)
    return type(value) is float or (isinstance(value, int | float) and not isinstance(value, bool))


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


class Lifetime:
    """One stamped namespace's bookkeeping in one request.

    Kept on the session object (never in its data) for the request, it is
    also the session's ``invalidate()`` and its namespace's before- and
    after-save hooks.  It holds its session weakly: the two make no cycle.
    """

    __slots__ = (
        "__weakref__",
        "_invalidate",
        "_session",
        "config",
        "expired",
        "loaded",
        "loaded_stamps",
        "own",
        "stamps",
        "verdict",
    )

    def __init__(self, namespace_config: Any, session: Any, stamps: Stamps, loaded: Any) -> None:
        self.config = namespace_config
        self._session = weakref.ref(session)
        #: the stamps the session goes out with
        self.stamps = stamps
        #: the record as it was loaded, and its stamps (the same record goes back
        #: while the stamps are these)
        self.loaded = loaded
        self.loaded_stamps = stamps if loaded is not None else None
        #: the reason the session ends on load, if it does
        self.verdict: str | None = None
        #: the stamps the session was ended with (for the panel)
        self.expired: Stamps | None = None
        self._invalidate: Any = None
        #: the application's own value for :data:`LIFETIME_KEY` while the record is stored
        self.own: Any = ABSENT

    @property
    def moved(self) -> bool:
        """Whether the stamps differ from those loaded (new, restamped, rotated)."""
        return self.loaded_stamps is None or self.stamps is not self.loaded_stamps

    def end(self, verdict: str, stamps: Stamps) -> None:
        """End the session on load, for ``verdict``, as it was with ``stamps``."""
        self.verdict = verdict
        self.expired = stamps

    def reset(self) -> None:
        """A new session begins (the old one was invalidated): fresh clocks, nobody."""
        t = now()
        self.stamps = Stamps(t, t)
        self.loaded = self.loaded_stamps = None

    def record(self) -> Any:
        """What goes into the raw storage: the loaded record itself when unchanged."""
        if self.stamps is self.loaded_stamps:
            return self.loaded
        return self.stamps.as_raw()

    def wrap_invalidate(self, session: Any) -> None:
        """Become the session's ``invalidate()``: every one (the application's own
        too) starts fresh stamps, since what follows a logout is a new session, of
        nobody."""
        attributes = session.__dict__
        self._invalidate = attributes.get("invalidate")
        if self._invalidate is None and getattr(type(session), "invalidate", None) is None:
            return
        attributes["invalidate"] = self.invalidate

    def invalidate(self, *args: Any, **kwargs: Any) -> Any:
        # a session whose invalidate() raised (its store is down) was not
        # logged out: it keeps the stamps it has, to be judged by them again
        if self._invalidate is not None:
            result = self._invalidate(*args, **kwargs)
        else:
            session: Any = self._session()
            result = type(session).invalidate(session, *args, **kwargs)
        self.reset()
        return result

    def put_back(self, response: Any) -> None:
        """Just before the library saves: the record goes back into a session with data.

        Last, where it was loaded from (it is written last), so that an
        unchanged session serializes as it was loaded.
        """
        session = self._session()
        storage = _storage(self.config, session)
        # nothing with no data: the stamps of an empty session are not written
        record = self.record() if _has_data(self.config, storage) else None
        self.own = conceal(storage, LIFETIME_KEY, record)

    def take_out(self, response: Any) -> None:
        """Once the library saved: the record leaves the data again (the
        application's callbacks see only its own)."""
        session = self._session()
        library = self.config.library
        storage = library.raw_storage(session)
        if isinstance(storage, dict):
            restore(storage, LIFETIME_KEY, self.own)
        self.own = ABSENT
        left = self.seconds_left()
        if left is not None:
            # an abandoned session leaves its store by itself, no later than
            # the timeouts would end it
            library.expire_within(session, left)

    def seconds_left(self) -> float | None:
        """Seconds until the timeouts end the session if it is not used again."""
        idle: int | None = self.config.idle_timeout
        absolute: int | None = self.config.absolute_timeout
        stamps = self.stamps
        if absolute is None:
            if idle is None:
                return None
            end = stamps.active + idle
        elif idle is None:
            end = stamps.created + absolute
        else:
            end = min(stamps.active + idle, stamps.created + absolute)
        # the clock itself: a store's expiry needs no rounding to the millisecond
        return max(0.0, end - clock())


def remember_login(work: Any, userid: Any, at: float | None = None) -> None:
    """A login (``rotate(userid=...)`` of every namespace) in this request: a
    namespace first loaded after it, with no session yet, is the user's too.

    ``at`` is the login's time (the one every namespace it rotated records),
    a new :func:`issue_time` if not given.
    """
    work.login = (userid, issue_time() if at is None else at)


def remembered_login(work: Any) -> tuple[Any, float] | None:
    """The ``(userid, time)`` :func:`remember_login` kept for the request, if any."""
    login: tuple[Any, float] | None = work.login
    return login


class SessionLifetime(Protocol):
    """What the add-on reads and writes of a loaded session's lifetime: a
    :class:`Lifetime`, or a
    :class:`~pyramid_session_multi.lifecycle.cookie_lifetime.CookieLifetime`."""

    @property
    def config(self) -> Any: ...

    stamps: Stamps

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
    own = getattr(session, "_session_multi_lifetime", None)
    return None if own is None else own()


def _carried(namespace_config: Any, request: Any, session: Any) -> bool:
    """Whether the request carries a cookie the session may have been read from."""
    header = request.environ.get("HTTP_COOKIE")
    fallbacks = getattr(namespace_config, "fallbacks", ())
    if header is not None and not fallbacks and namespace_config.cookie_name not in header:
        return False  # no cookie of that name in the header: nothing to parse
    if header and not fallbacks:
        # the loaded session may know, without parsing the header again
        is_new = namespace_config.library.is_new(session)
        if is_new is not None:
            return not is_new
    cookies = request.cookies
    if namespace_config.cookie_name in cookies:
        return True
    return any(f.cookie_name in cookies for f in fallbacks)


def _storage(namespace_config: Any, session: Any) -> dict[Any, Any]:
    storage = namespace_config.library.raw_storage(session)
    if not isinstance(storage, dict):
        raise TypeError(
            f"pyramid_session_multi: namespace {namespace_config.namespace!r} has timeouts or "
            f"records its user, but its session library ({namespace_config.library.name}) "
            "gives no raw storage to keep the stamps in; see SessionLibrary.raw_storage"
        )
    return storage


def _has_data(namespace_config: Any, storage: dict[Any, Any]) -> bool:
    """Whether the raw storage holds application data (a library's own bookkeeping aside).

    Read through ``dict``'s own methods: a session's (pyramid's) would mark it
    accessed, and re-issue its cookie.
    """
    if not dict.__len__(storage):
        return False
    bookkeeping = namespace_config.library.bookkeeping
    if not bookkeeping:
        return True
    if isinstance(bookkeeping, frozenset | set):
        # one comparison of sets, not a loop over the keys
        return not dict.keys(storage) <= bookkeeping
    return any(key not in bookkeeping for key in dict.keys(storage))


def load_lifetime(work: Any, namespace_config: Any, request: Any, session: Any, state: Any) -> None:
    """The load step: take the stamps out of the data and judge the session by them.

    Its namespace's end of request puts them back.  (pyramid's cookie
    sessions judge themselves: see
    :mod:`~pyramid_session_multi.lifecycle.cookie_lifetime`.)
    """
    attributes = getattr(session, "__dict__", None)
    if attributes is None:
        raise TypeError(
            f"pyramid_session_multi: namespace {namespace_config.namespace!r} has timeouts or "
            f"records its user, but its sessions ({type(session).__name__}) take no attributes"
        )
    t = now()
    loaded = stamps = None
    has_data = False
    if _carried(namespace_config, request, session):
        storage = _storage(namespace_config, session)
        loaded = take(storage, LIFETIME_KEY)
        if loaded is not None:
            stamps = Stamps.from_raw(loaded)
        has_data = _has_data(namespace_config, storage)
    if stamps is None:
        # new, or written before the namespace had timeouts: its clocks start now
        # (the absolute one at the library's own creation time, where it keeps one)
        created = namespace_config.library.created(session) if has_data else None
        stamps = Stamps(min(created, t) if created is not None else t, t)
        loaded = None
        login = None if has_data else work.login
        if login is not None:
            # new in a request that logged in: it begins as the user's
            stamps = Stamps(t, t, login[0], login[1])
    lifetime = Lifetime(namespace_config, session, stamps, loaded)
    attributes[ATTRIBUTE] = lifetime
    lifetime.wrap_invalidate(session)
    work.hide(namespace_config, session, lifetime)
    if not has_data:
        return
    idle, absolute = namespace_config.idle_timeout, namespace_config.absolute_timeout
    if absolute is not None and t - stamps.created > absolute:
        lifetime.verdict = ABSOLUTE
    elif idle is not None and t - stamps.active > idle:
        lifetime.verdict = IDLE
    elif stamps.active > t + CLOCK_SKEW:
        # its last use is never before its creation: a session stamped ahead
        # of the clock is one used ahead of it
        lifetime.verdict = ahead(stamps, t)
    if lifetime.verdict is not None:
        lifetime.expired = stamps
        return
    if loaded is None or (idle is not None and t - stamps.active >= idle * RESTAMP_FRACTION):
        # in use again, or never stamped: written once, to carry the new stamps
        lifetime.stamps = Stamps(stamps.created, t, stamps.userid, stamps.login)
        namespace_config.library.mark_changed(session)


def lifetime_check(
    work: Any, namespace_config: Any, request: Any, session: Any, partner: Any
) -> str | None:
    """End a session idle or old beyond its namespace's timeouts."""
    # the load step's record, read without a call: the step ran first, on a
    # session that takes attributes (a session that stamps itself has them too)
    lifetime = session.__dict__.get(ATTRIBUTE)
    if not isinstance(lifetime, Lifetime):
        lifetime = lifetime_of(session)  # a session that judged itself
    return None if lifetime is None else lifetime.verdict


def adopt_migrated(namespace_config: Any, session: Any, record: Any) -> None:
    """A fallback's migration moved an old session into ``session``: the stamps
    the old one kept (``record``, ``None`` where its library keeps none) become
    this one's, and judge it, so that no expired session comes back by migrating.

    Called on the migration path only: nothing in the application's data is
    ever taken for a record.
    """
    lifetime = lifetime_of(session)
    if lifetime is None:
        return  # the namespace keeps no stamps
    t = now()
    stamps = None if record is None else Stamps.from_raw(record)
    if stamps is None:
        # from a library that keeps no record the add-on reads: its creation
        # time (the migration kept it, where the library had one) still
        # judges it, and its idle clock starts now
        created = namespace_config.library.created(session)
        stamps = Stamps(t if created is None else min(created, t), t)
    lifetime.stamps = Stamps(stamps.created, t, stamps.userid, stamps.login)
    idle, absolute = namespace_config.idle_timeout, namespace_config.absolute_timeout
    if absolute is not None and t - stamps.created > absolute:
        lifetime.end(ABSOLUTE, stamps)
    elif idle is not None and t - stamps.active > idle:
        lifetime.end(IDLE, stamps)
    elif (verdict := ahead(stamps, t)) is not None:
        lifetime.end(verdict, stamps)


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


def _nothing() -> None:
    pass


def describe(namespace_config: Any, session: Any, at: float | None = None) -> dict[str, Any] | None:
    """What the panel shows of a stamped session: seconds left before each
    expiry (``None`` without that timeout), the recorded user and login
    time, and the reason it was ended on load, if it was."""
    lifetime = lifetime_of(session)
    if lifetime is None:
        return None
    t = now() if at is None else at
    stamps = lifetime.stamps
    idle, absolute = namespace_config.idle_timeout, namespace_config.absolute_timeout
    return {
        "idle_left": None if idle is None else max(0.0, stamps.active + idle - t),
        "absolute_left": None if absolute is None else max(0.0, stamps.created + absolute - t),
        "userid": stamps.userid,
        "login": stamps.login,
        "ended": lifetime.verdict,
    }
