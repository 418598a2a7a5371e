"""Revocation checks without a round trip: a process's mirror of what the store says.

A logged-in request asks the revocation store whether its user was signed
out, or its device ended, since the session was recorded
(:meth:`~pyramid_session_multi.interfaces.IDeviceIndex.revocation_of`).  A
:class:`RevocationMirror` keeps the answers it got in this process and
answers again from memory, as long as it is *known current*: subscribed to
the store's feed of changes, which names every user revoked, or whose
device was ended, by any process (:class:`RedisFeed`: Redis pub/sub,
``PUBLISH`` in the same round trip as the write).  Each change drops what
the mirror knew of that user, so the next check asks the store again.

While the mirror is not known current (before its subscription is
confirmed, after it is lost, until it is confirmed again) it keeps nothing
and every check goes to the store, failing closed as without a mirror: a
check is never answered from memory that a change may have outdated
unseen.  An answer read from the store while a change arrived is not kept.
"""

import logging
import os
import threading
import time
from collections import OrderedDict
from typing import Any

from zope.interface import implementer

from ..interfaces import IDeviceIndex, IRevocationStore

logger = logging.getLogger(__name__)

#: How many users' answers a mirror keeps at most (the least recently used go first).
DEFAULT_CAPACITY = 100_000


@implementer(IRevocationStore, IDeviceIndex)
class RevocationMirror:
    """``store`` with its revocation checks answered from this process's memory
    while ``feed`` says it is current.

    Everything but ``revocation_of`` and ``revoked_at`` goes to
    ``store`` unchanged; writes made through the mirror drop what it knew of
    the user at once.  ``feed`` (a :class:`RedisFeed`) is started in each
    process on first use, so a server that forks its workers after loading
    the application gets one subscription per worker.
    """

    def __init__(self, store: Any, feed: Any, capacity: int = DEFAULT_CAPACITY) -> None:
        self.store = store
        self.feed = feed
        self.capacity = capacity
        self._known: OrderedDict[str, tuple[float | None, frozenset[float]]] = OrderedDict()
        # reentrant: a feed may say it is current while it is being started
        self._lock = threading.RLock()
        #: moved at every change and every loss: an answer read across one is not kept
        self._generation = 0
        self._current = False
        self._pid: int | None = None
        #: how many checks were answered from memory, and how many asked the store
        self.hits = 0
        self.misses = 0

    def __getattr__(self, name: str) -> Any:
        # everything the mirror does not answer itself is the store's
        return getattr(self.store, name)

    @property
    def current(self) -> bool:
        """Whether the mirror is known current (checks are answered from memory)."""
        return self._current

    def describe(self) -> str:
        return f"{self.store.describe()}, mirrored in each process"

    def _start(self) -> None:
        if self._pid != os.getpid():
            with self._lock:
                if self._pid != os.getpid():
                    self._pid = os.getpid()
                    self._current = False
                    self._known.clear()
                    self.feed.start(self)

    # what the feed tells

    def became_current(self) -> None:
        """The feed is subscribed: from now on every change is heard."""
        with self._lock:
            self._generation += 1
            self._known.clear()
            self._current = True
        logger.info("revocation mirror: current (%s)", self.store.describe())

    def lost(self, why: str) -> None:
        """The feed was lost: changes may go unheard, so checks ask the store."""
        with self._lock:
            was = self._current
            self._generation += 1
            self._current = False
            self._known.clear()
        if was:
            logger.warning(
                "revocation mirror: subscription lost (%s); checks ask the store until it is back",
                why,
            )

    def changed(self, userid: str) -> None:
        """A process revoked ``userid`` or ended one of its devices."""
        with self._lock:
            self._generation += 1
            self._known.pop(userid, None)

    # the checks

    def revocation_of(self, userid: str) -> tuple[float | None, frozenset[float]]:
        if self._current and self._pid == os.getpid():
            # known current in this process: an answer kept is read without the
            # lock (each dict operation is atomic); a change or a loss that
            # drops it at the same time is heard as if it came just after
            known = self._known.get(userid)
            if known is not None:
                try:
                    self._known.move_to_end(userid)
                except KeyError:  # dropped meanwhile: the answer was current when read
                    pass
                self.hits += 1
                return known
        self._start()
        with self._lock:
            if self._current:
                known = self._known.get(userid)
                if known is not None:
                    self._known.move_to_end(userid)
                    self.hits += 1
                    return known
            generation, current = self._generation, self._current
        self.misses += 1
        answer = _revocation_of(self.store, userid)
        with self._lock:
            if current and self._current and self._generation == generation:
                self._known[userid] = answer
                if len(self._known) > self.capacity:
                    self._known.popitem(last=False)
        return answer

    def revoked_at(self, userid: str) -> float | None:
        return self.revocation_of(userid)[0]

    # writes: what this process changed is dropped at once, before the feed says so

    def revoke(self, userid: str, at: float, ttl: int | None) -> None:
        try:
            self.store.revoke(userid, at, ttl)
        finally:
            self.changed(userid)

    def end_device(self, device_id: str, ttl: int) -> Any:
        device = self.store.end_device(device_id, ttl)
        if device is not None:
            self.changed(device.userid)
        return device

    def close(self) -> None:
        """Stop the feed (its thread ends) and forget everything."""
        self.feed.stop()
        self.lost("closed")


def _revocation_of(store: Any, userid: str) -> tuple[float | None, frozenset[float]]:
    ask = getattr(store, "revocation_of", None)
    if callable(ask):
        answer: tuple[float | None, frozenset[float]] = ask(userid)
        return answer
    return store.revoked_at(userid), frozenset()


class RedisFeed:
    """The changes of a :class:`~pyramid_session_multi.revocation.RedisRevocationStore`,
    heard through Redis pub/sub on its ``channel``, in a daemon thread.

    The subscription is confirmed by Redis before the mirror is told it is
    current; the connection is pinged every ``ping_every`` seconds, so a
    silent loss is noticed within about that, and a lost one is retried
    every ``retry_every`` seconds.
    """

    def __init__(self, store: Any, ping_every: float = 1.0, retry_every: float = 0.5) -> None:
        self.store = store
        self.ping_every = ping_every
        self.retry_every = retry_every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pubsub: Any = None

    def start(self, mirror: RevocationMirror) -> None:
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._follow, args=(mirror,), name="session_multi revocation mirror", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(10)

    def _follow(self, mirror: RevocationMirror) -> None:
        channel = self.store.channel
        while not self._stop.is_set():
            pubsub = None
            try:
                pubsub = self.store.client.pubsub(ignore_subscribe_messages=False)
                self._pubsub = pubsub
                pubsub.subscribe(channel)
                _without_retries(pubsub)
                self._until_confirmed(pubsub)
                mirror.became_current()
                self._listen(pubsub, mirror)
            except Exception as exc:
                mirror.lost(f"{type(exc).__name__}: {self.store.hide_password(str(exc))}")
                self._stop.wait(self.retry_every)
            finally:
                self._pubsub = None
                if pubsub is not None:
                    try:
                        pubsub.close()
                    except Exception:
                        pass
        mirror.lost("stopped")

    def _until_confirmed(self, pubsub: Any) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not self._stop.is_set():
            message = pubsub.get_message(timeout=0.5)
            if message is not None and message.get("type") == "subscribe":
                return
        raise ConnectionError("the subscription was not confirmed")

    def _listen(self, pubsub: Any, mirror: RevocationMirror) -> None:
        pinged = time.monotonic()
        while not self._stop.is_set():
            message = pubsub.get_message(timeout=0.2)
            kind = None if message is None else message.get("type")
            if kind == "message":
                data = message.get("data")
                mirror.changed(data.decode() if isinstance(data, bytes) else str(data))
            elif kind == "subscribe":
                # the client reconnected on its own: what was said meanwhile is unheard
                mirror.lost("the subscription was made again")
                mirror.became_current()
            if time.monotonic() - pinged >= self.ping_every:
                # a connection lost without a word fails here, or the next read does
                pubsub.ping()
                pinged = time.monotonic()


def _without_retries(pubsub: Any) -> None:
    """A lost connection raises at once: redis-py would otherwise reconnect
    behind the mirror's back, after a wait, and the mirror must know."""
    connection = getattr(pubsub, "connection", None)
    if connection is None or not hasattr(connection, "retry"):
        return
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    connection.retry = Retry(NoBackoff(), 0)


class SQLPoll:
    """The changes of a :class:`~pyramid_session_multi.revocation.SQLRevocationStore`,
    polled every ``interval`` seconds in a daemon thread.

    Each poll asks for the users revoked, or whose device was ended, since
    the previous successful poll began, less ``overlap`` seconds (the clocks
    of the processes writing may disagree by that much).  The mirror is
    current only while polls succeed; a change made elsewhere is heard
    within one ``interval``.
    """

    def __init__(self, store: Any, interval: float = 1.0, overlap: float = 60.0) -> None:
        self.store = store
        self.interval = interval
        self.overlap = overlap
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, mirror: RevocationMirror) -> None:
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._follow, args=(mirror,), name="session_multi revocation mirror", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(10)

    def _follow(self, mirror: RevocationMirror) -> None:
        from ..lifecycle.lifetime import now

        since: float | None = None
        while not self._stop.is_set():
            began = now()
            try:
                if since is None:
                    # nothing kept yet: the first poll only proves the store answers
                    self.store.changed_since(began)
                    mirror.became_current()
                else:
                    for userid in self.store.changed_since(since):
                        mirror.changed(userid)
                since = began - self.overlap
            except Exception as exc:
                since = None
                mirror.lost(f"{type(exc).__name__}: {self.store.hide_password(str(exc))}")
            self._stop.wait(self.interval)
        mirror.lost("stopped")


def mirrored(store: Any, **options: Any) -> RevocationMirror:
    """``store`` behind a :class:`RevocationMirror` fed as its kind allows:
    Redis pub/sub for a Redis store, polling for an SQL store (``options``
    are the feed's).  ``ValueError`` for a store with neither."""
    if callable(getattr(store, "changed_since", None)):
        return RevocationMirror(store, SQLPoll(store, **options))
    if getattr(store, "channel", None) is not None and hasattr(store, "client"):
        return RevocationMirror(store, RedisFeed(store, **options))
    raise ValueError(
        f"a mirror follows a Redis or an SQL revocation store, not {type(store).__name__}"
    )
