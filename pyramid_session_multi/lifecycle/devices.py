"""A user's devices: one login on one client, across the namespaces it holds.

``rotate(userid=...)`` stamps every namespace it rotates with the user and
one login time (see :mod:`.lifetime`); later rotations of that login keep
both.  The pair *(user, login time)* is therefore what a client's cookies of
one login share, and what no other client's hold: it is the device.  Its
``id`` is an opaque digest of the pair, the same in every process
and across later rotations.

The revocation store keeps an index of the live devices
(:class:`~pyramid_session_multi.interfaces.IDeviceIndex`), written when a
login's stamps move: at the login, at a rotation, and when the idle clock is
moved forward (at most once a tenth of the idle window, see
:data:`~.lifetime.RESTAMP_FRACTION`), so never once per request.  Each entry
expires when the last session it can describe would (``alive_until``),
and leaves at logout, at a revocation of its user, and when the device is
ended.  A store writes no entry for a login already ended or revoked: a
request of the device in flight at its end (whose idle clock moves, or which
rotates) does not list it again.

Ending a device writes a *device end*, the login of that user that is over,
kept as long as a revocation (``record_ttl``): the revocation check refuses
a session recorded for an ended login as it refuses a revoked user's,
client-side cookies and old copies included.
"""

import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from .lifetime import lifetime_of

logger = logging.getLogger(__name__)

#: The longest user agent an entry keeps (what every store holds).
MAX_USER_AGENT = 255

#: How far into the future a session without any timeout counts as alive:
#: ten years, as revocation records are bounded.
NO_TIMEOUT = 10 * 365 * 24 * 3600


def device_id(userid: Any, login: float) -> str:
    """The opaque id of the device of ``userid``'s login at ``login``.

    A digest of the two, so every process names a device alike and a later
    rotation (which keeps the login) keeps its id.
    """
    digest = hashlib.sha256(f"{userid}\x00{float(login):.3f}".encode()).hexdigest()
    return digest[:32]


@dataclass(frozen=True)
class Device:
    """One live login of a user on one client, as ``devices()`` lists it."""

    #: opaque, stable across later rotations of the login
    id: str
    #: the user, as text
    userid: str
    #: when the user logged in (seconds since the epoch): what the sessions record
    login: float
    #: the ``User-Agent`` of the request that logged in (cut to 255 characters)
    user_agent: str
    #: when the device was first seen (its login)
    created: float
    #: when it was last seen in use, to the window that moves the idle clock
    last_seen: float
    #: the namespaces its login holds
    namespaces: tuple[str, ...]
    #: when its last session can no longer be alive: the entry is gone then
    expires: float
    #: whether it is the device making the request (``devices()`` sets it)
    current: bool = False

    def merged(self, newer: "Device") -> "Device":
        """This entry updated by ``newer`` of the same login: the earliest
        creation, the latest use and expiry, every namespace of both."""
        return replace(
            self,
            user_agent=self.user_agent or newer.user_agent,
            created=min(self.created, newer.created),
            last_seen=max(self.last_seen, newer.last_seen),
            namespaces=tuple(sorted({*self.namespaces, *newer.namespaces})),
            expires=max(self.expires, newer.expires),
        )

    def as_json(self) -> str:
        """The entry as a store keeps it (``current`` is the request's, never stored)."""
        return json.dumps(
            [
                self.id,
                self.userid,
                self.login,
                self.user_agent,
                self.created,
                self.last_seen,
                list(self.namespaces),
                self.expires,
            ],
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> "Device":
        """An entry :meth:`as_json` wrote."""
        id_, userid, login, agent, created, last_seen, namespaces, expires = json.loads(text)
        return cls(
            str(id_),
            str(userid),
            float(login),
            str(agent),
            float(created),
            float(last_seen),
            tuple(str(namespace) for namespace in namespaces),
            float(expires),
        )


def user_agent_of(request: Any) -> str:
    """The request's ``User-Agent``, as an entry keeps it."""
    agent = request.headers.get("User-Agent") or ""
    return "".join(ch for ch in str(agent) if ch.isprintable())[:MAX_USER_AGENT]


def alive_until(namespace_config: Any, stamps: Any) -> float:
    """The latest time a session of ``namespace_config`` with ``stamps`` may be loaded."""
    ends = [NO_TIMEOUT + stamps.active]
    if namespace_config.idle_timeout is not None:
        ends.append(stamps.active + namespace_config.idle_timeout)
    if namespace_config.absolute_timeout is not None:
        ends.append(stamps.created + namespace_config.absolute_timeout)
    return float(min(ends))


def device_of(
    userid: Any, login: float, user_agent: str, seen: Iterable[tuple[Any, Any]]
) -> Device:
    """The entry for one login, from the ``(namespace_config, stamps)`` of
    its sessions this request holds."""
    seen = list(seen)
    return Device(
        id=device_id(userid, login),
        userid=str(userid),
        login=float(login),
        user_agent=user_agent,
        created=float(login),
        last_seen=max(stamps.active for _config, stamps in seen),
        namespaces=tuple(sorted({config.namespace for config, _stamps in seen})),
        expires=round(max(alive_until(config, stamps) for config, stamps in seen), 3),
    )


def live(devices: Iterable[Device], at: float) -> list[Device]:
    """The entries of ``devices`` still alive at ``at``, the latest login first."""
    return sorted(
        (device for device in devices if device.expires > at),
        key=lambda device: (-device.login, device.id),
    )


def is_ended(login: float, ended: frozenset[float]) -> bool:
    """Whether ``login`` is among the ``ended`` logins (to the millisecond, as stamped)."""
    return bool(ended) and round(float(login), 3) in {round(each, 3) for each in ended}


def keeps_devices(store: Any) -> bool:
    """Whether ``store`` keeps a device index."""
    return store is not None and callable(getattr(store, "record_device", None))


def _upkeep_once(work: Any) -> None:
    """The index's upkeep runs once the response is made (asked for once)."""
    if not (work.moved or work.replaced):
        work.request.add_response_callback(lambda request, response: upkeep(work))


def note_moved(work: Any, namespace: str) -> None:
    """The stamps of ``namespace``'s session, which record a user, moved in this
    request: its device's entry is written once the response is made."""
    if not keeps_devices(work.revocations):
        return
    _upkeep_once(work)
    work.moved.add(namespace)


def note_replaced(work: Any, logins: Iterable[tuple[Any, Any]]) -> None:
    """A login in this request replaced ``logins`` (``(userid, login)``) on this
    client: their entries leave the index with the write of the new login's,
    in its round trip."""
    if not keeps_devices(work.revocations):
        return
    given = {
        (userid, login) for userid, user_logins in by_user(logins).items() for login in user_logins
    }
    if given:
        _upkeep_once(work)
        work.replaced.update(given)


def by_user(logins: Iterable[tuple[Any, Any]]) -> dict[str, list[float]]:
    """``logins`` (``(userid, login)``, either ``None`` where unknown) as each
    known user's login times."""
    users: dict[str, list[float]] = {}
    for userid, login in logins:
        if userid is not None and login is not None:
            users.setdefault(str(userid), []).append(float(login))
    return users


def upkeep(work: Any) -> None:
    """Write the entry of each device whose stamps moved in this request: one
    write per login, from the sessions still alive that hold it; the entries
    of the logins it replaced on this client go in the same write."""
    store = work.revocations
    groups: dict[tuple[str, float], list[tuple[Any, Any]]] = {}
    for namespace in sorted(work.moved):
        session = work.loaded(namespace)
        if session is None or work.ended_earlier(namespace):
            continue
        lifetime = lifetime_of(session)
        if lifetime is None:
            continue
        # a session ended on load was invalidated: its stamps record nobody, unless
        # a login in this request recorded the user anew
        stamps = lifetime.stamps
        if stamps.userid is None or stamps.login is None:
            continue
        key = (str(stamps.userid), float(stamps.login))
        groups.setdefault(key, []).append((work.configs[namespace], stamps))
    replaced = sorted(work.replaced - set(groups))
    if not groups:
        # nothing to write (the new login's sessions are gone): only the deletes
        forget_logins(work, replaced)
        return
    agent = user_agent_of(work.request)
    for (userid, login), seen in groups.items():
        try:
            store.record_device(device_of(userid, login, agent, seen), replaced=replaced)
        except Exception as exc:
            # the sessions stand; the entry is written at the device's next move
            logger.error(
                "the device index could not record a device (%s: %s); it is listed "
                "again once its idle clock next moves",
                type(exc).__name__,
                exc,
            )
        replaced = []


def forget_logins(work: Any, logins: Iterable[tuple[Any, Any]]) -> None:
    """A logout: the entries of ``logins`` (``(userid, login)``) leave the index."""
    store = work.revocations
    if not keeps_devices(store):
        return
    for userid, user_logins in by_user(logins).items():
        try:
            store.forget_devices(userid, user_logins)
        except Exception as exc:
            # the entry expires with the sessions it described
            logger.error(
                "logout: the device index could not forget the device (%s: %s); "
                "its entry expires on its own",
                type(exc).__name__,
                exc,
            )
