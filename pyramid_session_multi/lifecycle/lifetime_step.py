"""The load step and the check of a namespace whose lifetime the add-on keeps.

The step (``lifetime`` in a namespace's pipeline) takes the stamps (see
:mod:`.lifetime`) out of the session's raw storage before the application
sees it, judges the session by them and hands them to the end of the
request, which puts them back while the library saves.  The check
(``expiry``) ends a session the step found idle or old beyond its
namespace's timeouts, with the reason ``"idle"`` or ``"absolute"``, told as
:class:`~pyramid_session_multi.events.SessionExpired`.

A migration from a fallback adopts the stamps the old session kept
(:func:`adopt_migrated`).  The step and the check run on every request that
loads such a namespace: what they need of its configuration is its
pipeline's :class:`~.lifetime.LifetimeRules`, worked out at commit.
"""

import time
from typing import Any

from ..hidden import reveal
from . import lifetime as _lifetime
from .lifetime import (
    ABSOLUTE,
    ATTRIBUTE,
    CLOCK_SKEW,
    FAR,
    IDLE,
    LIFETIME_KEY,
    Lifetime,
    LifetimeRules,
    Stamps,
    ahead,
    lifetime_of,
    no_raw_storage,
    now,
    to_ms,
    wall_clock,
)


def _carried_with_fallbacks(rules: LifetimeRules, request: Any) -> bool:
    """Whether the request carries the namespace's cookie or a fallback's."""
    cookies = request.cookies
    if rules.cookie_name in cookies:
        return True
    return any(fallback.cookie_name in cookies for fallback in rules.fallbacks)


def load_lifetime(work: Any, namespace_config: Any, request: Any, session: Any, state: Any) -> None:
    """The load step: take the stamps out of the data and judge the session by them.

    Its namespace's end of request puts them back.  (pyramid's cookie
    sessions judge themselves: see
    :mod:`~pyramid_session_multi.lifecycle.cookie_lifetime`.)
    """
    work.hide(namespace_config, session, begin_lifetime(namespace_config, request, session, work))


def begin_lifetime(namespace_config: Any, request: Any, session: Any, work: Any) -> Lifetime:
    """What :func:`load_lifetime` does but hiding the record: the session's
    :class:`~.lifetime.Lifetime`, its stamps taken out of the data and its
    ``verdict`` set where its timeouts end it.  ``work`` is the request's
    unit of work, ``None`` where it has none yet (nobody logged in then)."""
    rules: LifetimeRules = namespace_config.pipeline.lifetime
    try:
        attributes = session.__dict__
    except AttributeError:
        raise TypeError(
            f"pyramid_session_multi: namespace {namespace_config.namespace!r} has timeouts or "
            f"records its user, but its sessions ({type(session).__name__}) take no attributes"
        ) from None
    # compared unrounded: only stamps written are to the millisecond
    clock = _lifetime.clock  # read at each load: a test may replace it
    t = time.time() if clock is wall_clock else clock()
    fallbacks = rules.fallbacks
    settled = False
    if not fallbacks:
        # The common request, told in one pass: a stored session with the
        # record the add-on writes with nobody recorded, ``[created, offset]``,
        # neither ended nor due a new stamp (with no data, nothing would judge
        # it anyway), read inline (a pattern match or a call costs more than
        # the rest of the step); its stamps are made only if asked for.
        # Anything else takes the full way below, the record put back where
        # it was found.
        storage = rules.raw_storage(session)
        try:
            loaded = dict.pop(storage, LIFETIME_KEY, None)
        except TypeError:  # no dict: the full way refuses it
            loaded = None
        if type(loaded) is list and len(loaded) == 2:
            created, offset = loaded
            settled = (
                type(created) is float
                and type(offset) is float
                and -FAR < created < FAR  # False for a NaN too
                and 0.0 <= offset < FAR
                and t - created <= rules.absolute_or_never
                # not idle either: a new stamp is due well before
                and t - (active := created + offset) < rules.restamp_after
                and active <= t + CLOCK_SKEW
            )
        if settled:
            kept = storage if rules.storage_stays else None
            lifetime = attributes[ATTRIBUTE] = Lifetime(
                namespace_config, rules, session, None, loaded, kept
            )
        elif loaded is not None:
            dict.__setitem__(storage, LIFETIME_KEY, loaded)
    if not settled:
        lifetime = _begin_in_full(namespace_config, request, session, work, attributes, t)
    # it becomes the session's invalidate(): every one (the application's own
    # too) starts fresh stamps, since what follows a logout is a new session,
    # of nobody; a class whose own invalidate() does so is left as it is
    if "invalidate" in attributes:
        lifetime.invalidate_before = attributes["invalidate"]
        attributes["invalidate"] = lifetime.invalidate
    elif not rules.invalidate_resets and hasattr(type(session), "invalidate"):
        attributes["invalidate"] = lifetime.invalidate
    return lifetime


def _begin_in_full(
    namespace_config: Any, request: Any, session: Any, work: Any, attributes: Any, t: float
) -> Lifetime:
    """What :func:`begin_lifetime` does (its ``invalidate()`` aside) for
    any request but the common one: the session's lifetime, set in its
    ``attributes``, the clock read at ``t``."""
    rules: LifetimeRules = namespace_config.pipeline.lifetime
    loaded = stamps = kept = None  # kept: the storage, to the save where it stays the same
    has_data = False
    fallbacks = rules.fallbacks
    # A cookie carried (a fallback's too) may name a stored session.  Without
    # fallbacks the storage is looked at first: a session the cookie named
    # holds a record the step takes out either way, and a session without one
    # tells whether it is new (nothing to parse in the header).
    carried = _carried_with_fallbacks(rules, request) if fallbacks else True
    if carried:
        storage = rules.raw_storage(session)
        try:
            loaded = dict.pop(storage, LIFETIME_KEY, None)
        except TypeError:  # no dict: refused below, where a session was read
            storage = None
        if loaded is None and not fallbacks:
            # no record: made new (its cookie named nothing the store holds, or
            # there was none), or written before the namespace had timeouts
            is_new = rules.is_new(session)
            carried = rules.cookie_name in request.cookies if is_new is None else not is_new
        if carried:
            if storage is None:
                raise no_raw_storage(namespace_config)
            if rules.storage_stays:
                kept = storage
            if loaded is not None:
                if type(loaded) is dict:  # the application's own value rides inside
                    loaded = reveal(storage, LIFETIME_KEY, loaded)
                stamps = Stamps.from_raw(loaded)
                if stamps is None:
                    loaded = None  # no record: its clocks start below
                else:
                    created = stamps.created
                    active = stamps.active
            if dict.__len__(storage):
                bookkeeping = rules.bookkeeping
                has_data = bookkeeping is None or not dict.keys(storage) <= bookkeeping
    if loaded is None:
        # new, or written before the namespace had timeouts: its clocks start now
        # (the absolute one at the library's own creation time, where it keeps one)
        t = to_ms(t)
        begun = namespace_config.library.created(session) if has_data else None
        stamps = Stamps(min(begun, t) if begun is not None else t, t)
        login = None if has_data or work is None else work.login
        if login is not None:
            # new in a request that logged in: it begins as the user's
            stamps = Stamps(t, t, login[0], login[1])
        created = stamps.created
        active = t
    lifetime = Lifetime(namespace_config, rules, session, stamps, loaded, kept)
    attributes[ATTRIBUTE] = lifetime
    if not has_data:
        return lifetime
    if (
        t - created > rules.absolute_or_never
        or t - active > rules.idle_or_never
        or active > t + CLOCK_SKEW
    ):
        # too old, unused too long, or stamped ahead of the clock (its last use
        # is never before its creation: a session stamped ahead of the clock is
        # one used ahead of it)
        if t - created > rules.absolute_or_never:
            verdict: str | None = ABSOLUTE
        elif t - active > rules.idle_or_never:
            verdict = IDLE
        else:
            verdict = ahead(Stamps(created, active), t)
        lifetime.verdict = verdict
        lifetime.expired = lifetime.stamps
    elif loaded is None or t - active >= rules.restamp_after:
        # in use again, or never stamped: written once, to carry the new stamps
        stamps = lifetime.stamps
        lifetime.stamps = Stamps(created, to_ms(t), stamps.userid, stamps.login)
        namespace_config.library.mark_changed(session)
    return lifetime


def lifetime_check(
    work: Any, namespace_config: Any, request: Any, session: Any, partner: Any
) -> str | None:
    """End a session idle or old beyond its namespace's timeouts."""
    # the load step's record, read without a call: the step ran first, on a
    # session that takes attributes (a session that stamps itself has them too)
    lifetime = session.__dict__.get(ATTRIBUTE)
    if type(lifetime) is Lifetime:
        return lifetime.verdict
    own = lifetime_of(session)  # a session that judged itself
    return None if own is None else own.verdict


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
