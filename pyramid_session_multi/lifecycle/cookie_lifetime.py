"""Lifetime stamps that pyramid's cookie sessions keep themselves.

A pyramid cookie session (``SignedCookieSessionFactory``,
pyramid_nacl_session, anything built on ``BaseCookieSessionFactory``)
already writes two times into its cookie beside the data: when the session
was created, and when its cookie was last issued.  A stamped namespace of
such a session takes them as its clocks, so its cookie grows only by the
user a login recorded:

- the absolute clock is pyramid's ``created``, restarted at ``rotate()``
  and at a logout;
- the idle clock is the time the cookie was last issued: every cookie the
  session sets carries the time it was set, and a read moves it forward only
  once a tenth of the idle window has passed
  (:data:`~pyramid_session_multi.lifecycle.lifetime.RESTAMP_FRACTION`), by
  issuing the cookie again (to the second from an idle timeout of
  :data:`WHOLE_SECONDS_FROM` seconds, as pyramid keeps it);
- the user and login time ride in the data under
  :data:`~pyramid_session_multi.libraries.pyramid_cookie.USER_KEY`, taken
  out before the application sees the session and put in only while the
  cookie is made.

The session's class does the work (``stamped_cookie_session`` makes it when
the namespace's configuration is final): it judges the session as it is
made, with nothing to allocate and no end of request to run, which is what
keeps a stamped cookie namespace about as cheap as a plain one.  For the
rest of the add-on its ``CookieLifetime`` is the session's lifetime.

A cookie written before the namespace had timeouts is judged by the same
two times pyramid wrote into it: a session last issued longer ago than the
idle window ends at its first load, however it was used meanwhile.
"""

import math
import time
from dataclasses import replace
from typing import Any

from ..hidden import conceal, restore, reveal
from ..libraries.pyramid_cookie import (
    STAMPS_FOR,
    USER_KEY,
    is_pyramid_cookie_factory,
    read_user_record,
    user_record,
)
from . import lifetime as _lifetime
from .lifetime import ABSOLUTE, CLOCK_SKEW, IDLE, RESTAMP_FRACTION, Stamps, to_ms, wall_clock

#: The idle timeout from which the idle clock is kept to the second (as
#: pyramid keeps it): its error is then under 1% of the window.
WHOLE_SECONDS_FROM = 60


def stamps_itself(loader: Any) -> bool:
    """Whether ``loader`` makes sessions that keep their own stamps."""
    return getattr(loader, STAMPS_FOR, None) is not None


def fit_loader(namespace_config: Any) -> Any:
    """``namespace_config``, with a loader keeping its stamps where it is a
    stamped namespace of pyramid's cookie sessions (a new frozen object then).

    The loader is the namespace's: the factory's class itself (a namespace
    added to the utility directly), or the cookie budget's subclass of it
    (see :func:`~pyramid_session_multi.config.apply_cookie_budget`).
    """
    loader = namespace_config.loader
    if not namespace_config.stamped or stamps_itself(loader):
        return namespace_config
    if not is_pyramid_cookie_factory(loader):
        return namespace_config
    return replace(namespace_config, loader=stamped_cookie_session(loader, namespace_config))


def begin_as_login(session: Any, login: tuple[Any, float]) -> None:
    """A session just made in a request that logged in (``login`` is its
    ``(userid, time)``): if it is new, it begins as that user's, from that time."""
    begin = getattr(session, "_session_multi_begin_as", None)
    if begin is not None:
        begin(login)


def stamped_cookie_session(session_class: Any, namespace_config: Any) -> Any:
    """A subclass of the pyramid cookie-session class ``session_class`` that keeps
    ``namespace_config``'s lifetime stamps in its own cookie.

    It looks the same as ``session_class`` from outside (same name and module).
    """
    idle = namespace_config.idle_timeout
    # no limit is an infinite one: one comparison each, whatever is set
    idle_limit = math.inf if idle is None else idle
    absolute_limit = (
        math.inf
        if namespace_config.absolute_timeout is None
        else (namespace_config.absolute_timeout)
    )
    restamp_after = idle_limit * RESTAMP_FRACTION
    # the idle clock to the second, as pyramid keeps it, where that is a
    # small part of the idle window; to the millisecond under a minute
    whole_seconds = idle is None or idle >= WHOLE_SECONDS_FROM
    base_init = session_class.__init__
    base_set_cookie = session_class._set_cookie
    base_invalidate = session_class.invalidate
    # dict's own methods: the session's would mark it accessed or changed
    dict_pop = dict.pop
    dict_len = dict.__len__
    dict_contains = dict.__contains__
    # lifetime.clock is read at each use (a test may replace it); the wall
    # clock, its default, is read inline: a call less
    lifetime = _lifetime

    class Stamped(session_class):  # type: ignore[misc]
        #: the namespace this class keeps stamps for
        _session_multi_stamps_for = namespace_config
        #: who ``rotate(userid=...)`` recorded, and when: the record its
        #: cookie carries under USER_KEY (``None``: nobody), read only when needed
        _session_multi_user: Any = None
        #: why the session ended on load (``"idle"``, ``"absolute"``), and the
        #: stamps it ended with
        _session_multi_verdict: str | None = None
        _session_multi_expired: Stamps | None = None
        #: whether its stamps moved as it was made (the idle clock, a login)
        _session_multi_moved = False

        def __init__(self, request: Any) -> None:
            base_init(self, request)
            record: Any = dict_pop(self, USER_KEY, None)
            if type(record) is dict:
                # the application's own key of that name rode inside the record
                record = reveal(self, USER_KEY, record)
            if record is not None:
                # only a session with data carries a user
                self._session_multi_user = record
            elif not dict_len(self):
                # new, emptied or expired by pyramid: fresh clocks (of the
                # request's login, if it made one: see begin_as_login)
                t = time.time() if (clock := lifetime.clock) is wall_clock else clock()
                self.created = self.renewed = to_ms(t)
                return
            t = time.time() if (clock := lifetime.clock) is wall_clock else clock()
            idle_for = t - self.renewed
            if t - self.created > absolute_limit or self.created > t + CLOCK_SKEW:
                verdict = ABSOLUTE
            elif idle_for > idle_limit or self.renewed > t + CLOCK_SKEW:
                # stamped further ahead than the skew allows: its clocks are not trusted
                verdict = IDLE
            else:
                if idle_for >= restamp_after:
                    # in use again: issued once more, to carry the time
                    self.renewed = t
                    self._session_multi_moved = True
                    self.changed()
                return
            self._session_multi_verdict = verdict
            self._session_multi_expired = self._session_multi_stamps()

        def _session_multi_begin_as(self, login: tuple[Any, float]) -> None:
            if self._session_multi_user is None and not dict_len(self):
                self._session_multi_user = login[0]
                self.created = self.renewed = login[1]
                self._session_multi_moved = True

        def _session_multi_stamps(self) -> Stamps:
            created = self.created
            user = read_user_record(self._session_multi_user, created)
            if user is None:
                return Stamps(created, self.renewed)
            return Stamps(created, self.renewed, *user)

        def _session_multi_login(self) -> tuple[Any, float] | None:
            # the (userid, login) its cookie records, without building its stamps
            return read_user_record(self._session_multi_user, self.created)

        def _session_multi_set_stamps(self, stamps: Stamps) -> None:
            self.created = created = to_ms(stamps.created)
            self.renewed = stamps.active
            userid, login = stamps.userid, stamps.login
            self._session_multi_user = (
                None
                if userid is None
                else user_record(userid, created if login is None else login, created)
            )

        def _session_multi_lifetime(self) -> "CookieLifetime":
            return CookieLifetime(self)

        def invalidate(self) -> Any:
            # every logout (the application's own too) begins a session of nobody
            try:
                return base_invalidate(self)
            finally:
                self.created = self.renewed = lifetime.now()
                self._session_multi_user = None

        def _set_cookie(self, response: Any) -> Any:
            if not dict_len(self):
                return base_set_cookie(self, response)
            # a cookie set is a use: it carries the time it was set
            t = time.time() if (clock := lifetime.clock) is wall_clock else clock()
            self.accessed = self.renewed = int(t) if whole_seconds else to_ms(t)
            record = self._session_multi_user
            if record is None and not dict_contains(self, USER_KEY):
                return base_set_cookie(self, response)
            own = conceal(self, USER_KEY, record)
            try:
                return base_set_cookie(self, response)
            finally:
                restore(self, USER_KEY, own)

    Stamped.__name__ = session_class.__name__
    Stamped.__qualname__ = session_class.__qualname__
    Stamped.__module__ = session_class.__module__
    return Stamped


class CookieLifetime:
    """The lifetime of a session that keeps its own stamps, as
    ``lifetime_of`` gives it: its stamps read from, and
    written to, the session's own fields."""

    __slots__ = ("_session",)

    def __init__(self, session: Any) -> None:
        self._session = session

    @property
    def config(self) -> Any:
        """The configuration of the namespace the session belongs to."""
        return getattr(type(self._session), STAMPS_FOR)

    @property
    def stamps(self) -> Stamps:
        """The stamps the session goes out with."""
        stamps: Stamps = self._session._session_multi_stamps()
        return stamps

    @stamps.setter
    def stamps(self, stamps: Stamps) -> None:
        self._session._session_multi_set_stamps(stamps)

    @property
    def verdict(self) -> str | None:
        """The reason the session ended on load, if it did."""
        verdict: str | None = self._session._session_multi_verdict
        return verdict

    @property
    def expired(self) -> Stamps | None:
        """The stamps the session was ended with."""
        expired: Stamps | None = self._session._session_multi_expired
        return expired

    @property
    def moved(self) -> bool:
        """Whether the stamps moved as the session was made (the idle clock, a login)."""
        return bool(self._session._session_multi_moved)

    def end(self, verdict: str, stamps: Stamps) -> None:
        """End the session on load, for ``verdict``, as it was with ``stamps``."""
        self._session._session_multi_verdict = verdict
        self._session._session_multi_expired = stamps
