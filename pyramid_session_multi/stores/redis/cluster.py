"""A Redis Cluster client whose ``pipeline()`` is a transaction on one hash slot.

On a cluster, pyramid_session_redis makes each new session id unique with
``WATCH``/``MULTI``/``EXEC`` in a ``pipeline()``, which redis-py's cluster
pipeline refuses unless asked for a transaction (and, before redis-py 6.1,
refuses outright).  :class:`SessionRedisCluster` is a
:class:`~redis.cluster.RedisCluster` whose ``pipeline()`` is a transaction on
the master serving the key's hash slot (:class:`SlotTransaction`): the library
is not patched, it is given a client that does what it asks.

Its :attr:`~SessionRedisCluster.session_multi_breakers` keep a circuit
breaker per node: a node that timed out or refused a connection is skipped
at once for an interval, while every other node, and the replica promoted in
its place, are used as before.
"""

import inspect
import threading
import time
from typing import Any

from redis.cluster import RedisCluster
from redis.commands.core import CoreCommands
from redis.exceptions import (
    AskError,
    ClusterDownError,
    MovedError,
    RedisClusterException,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..breaker import Breakers, CircuitBreaker
from .guarded import RedisCircuitOpen

#: Seconds between two refreshes of the map of slots a refused call asks for.
REFRESH_EVERY = 1.0

_REROUTE = (
    RedisConnectionError,
    RedisTimeoutError,
    MovedError,
    AskError,
    ClusterDownError,
    TryAgainError,
    SlotNotCoveredError,
)


class SlotTransaction(CoreCommands):
    """``pipeline()`` of :class:`SessionRedisCluster`: a ``MULTI``/``EXEC``
    transaction, with ``WATCH``, on the master serving one hash slot.

    Redis runs a transaction on one server; in a cluster that is the master
    of the slot of the keys involved, so every command given must name keys
    of one slot (each of pyramid_session_redis's names one key).  The
    commands run on a plain redis-py pipeline of that master, with its usual
    meaning: after ``watch()`` commands run at once, after ``multi()`` they
    are queued until ``execute()``.

    A failover or a slot moving to another master shows up as a connection
    error or a ``MOVED`` reply: the cluster's map of slots is then refreshed,
    and the transaction's first command is tried once more on the master the
    map now names.  Any later error is raised (with the map refreshed for the
    next transaction): pyramid_session_redis then fails the request, as a
    store outage does.
    """

    def __init__(self, cluster: RedisCluster) -> None:
        self._cluster: Any = cluster
        self._pipeline: Any = None
        self._slot: int | None = None
        self._multi = False
        self._breaker: CircuitBreaker | None = None
        self._node: str | None = None

    def __enter__(self) -> "SlotTransaction":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.reset()

    def _slot_of(self, args: tuple[Any, ...]) -> int:
        if str(args[0]).upper() == "WATCH":
            slots = {self._cluster.keyslot(name) for name in args[1:]}
        else:
            slot = self._cluster.determine_slot(*args)
            slots = {slot} if slot is not None else set()
        if len(slots) != 1 or (self._slot is not None and slots != {self._slot}):
            raise RedisClusterException(
                f"a transaction on a Redis Cluster runs on one hash slot: {args[0]} names "
                "keys of another, or of several"
            )
        return int(slots.pop())

    def _open(self, slot: int) -> Any:
        if self._pipeline is None:
            node = self._cluster.nodes_manager.get_node_from_slot(slot)
            self._node = node.name
            self._breaker = self._cluster.session_multi_breaker_of(node.name)
            self._pipeline = self._cluster.get_redis_connection(node).pipeline(transaction=True)
            self._slot = slot
            if self._multi:
                self._pipeline.multi()
        return self._pipeline

    def _refresh(self) -> None:
        self._cluster.session_multi_refresh(self._node)

    def _run(self, *args: Any, **options: Any) -> Any:
        """One command on the open pipeline, through the node's breaker when
        it reaches the server (a command queued after ``multi()`` does not)."""
        pipeline = self._pipeline
        if self._breaker is None or pipeline.explicit_transaction:
            return pipeline.execute_command(*args, **options)
        return self._breaker.call(pipeline.execute_command, *args, **options)

    def execute_command(self, *args: Any, **options: Any) -> Any:
        """Run (or queue) one command on the slot's master."""
        slot = self._slot_of(args)
        first = self._pipeline is None
        try:
            self._open(slot)
            return self._run(*args, **options)
        except _REROUTE:
            self._refresh()
            if not first:
                raise
        self.reset()
        self._open(slot)
        return self._run(*args, **options)

    def watch(self, *names: Any) -> Any:
        """Watch ``names`` (of one slot); the commands that follow run at once."""
        return self.execute_command("WATCH", *names)

    def unwatch(self) -> Any:
        return True if self._pipeline is None else self._pipeline.unwatch()

    def multi(self) -> None:
        """Queue the commands that follow, to run together on :meth:`execute`."""
        if self._pipeline is None:
            self._multi = True
        else:
            self._pipeline.multi()

    def execute(self, raise_on_error: bool = True) -> list[Any]:
        """Run the queued commands as one transaction (``WatchError`` if a
        watched key changed)."""
        if self._pipeline is None:
            self._multi = False
            return []
        try:
            if self._breaker is None:
                return list(self._pipeline.execute(raise_on_error))
            return list(self._breaker.call(self._pipeline.execute, raise_on_error))
        except _REROUTE:
            self._refresh()
            raise
        finally:
            self._drop()

    def reset(self) -> None:  # type: ignore[override]  # a pipeline's, not the RESET command
        """Forget the queued commands and watched keys; free the connection."""
        if self._pipeline is not None:
            try:
                self._pipeline.reset()
            except Exception:  # a dead connection: redis-py has let it go
                pass
        self._drop()

    def _drop(self) -> None:
        self._pipeline = None
        self._slot = None
        self._multi = False
        self._breaker = None
        self._node = None


class SessionRedisCluster(RedisCluster):
    """A :class:`~redis.cluster.RedisCluster` whose default ``pipeline()`` is a
    transaction on one slot's master (:class:`SlotTransaction`), as
    ``pipeline()`` is on one server.

    ``pipeline(transaction=False)`` is redis-py's own cluster pipeline, which
    sends commands for many slots without a transaction.

    With :attr:`session_multi_breakers`, each command sent to a node goes
    through that node's circuit breaker.  A command for a node whose breaker
    is open is refused at once (:class:`.RedisCircuitOpen`), unless the map of
    slots, refreshed from the other nodes (at most once per
    :data:`REFRESH_EVERY` seconds), now names another master for its slot:
    a failover then reaches the promoted replica at once, while the dead
    node's breaker stays open.
    """

    #: the circuit breakers of the nodes, by ``host:port`` (``None``: none)
    session_multi_breakers: Breakers | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._session_multi_refreshed_at = float("-inf")
        self._session_multi_refresh_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def session_multi_breaker_of(self, node: str) -> CircuitBreaker | None:
        """The circuit breaker of ``node`` (``host:port``), ``None`` without breakers."""
        breakers = self.session_multi_breakers
        return None if breakers is None else breakers.of(node)

    def session_multi_refresh(self, failed: str | None = None) -> bool:
        """Refresh the map of slots from the nodes, asking ``failed`` (the node
        that just failed, ``host:port``) last; at most once per
        :data:`REFRESH_EVERY` seconds.  Returns whether it refreshed."""
        with self._session_multi_refresh_lock:
            if time.monotonic() - self._session_multi_refreshed_at < REFRESH_EVERY:
                return False
            self._session_multi_refreshed_at = time.monotonic()
        initialize = self.nodes_manager.initialize
        try:
            if "last_failed_node_name" in inspect.signature(initialize).parameters:
                initialize(last_failed_node_name=failed)
            else:  # redis-py before 6 asks the nodes in their order
                initialize()
        except Exception:  # no node answers: the caller's error says so
            return False
        return True

    def _execute_command(self, target_node: Any, *args: Any, **kwargs: Any) -> Any:
        breaker = self.session_multi_breaker_of(target_node.name)
        if breaker is None:
            return super()._execute_command(target_node, *args, **kwargs)  # type: ignore[no-untyped-call]
        try:
            probe = breaker.before()
        except RedisCircuitOpen:
            rerouted = self._session_multi_reroute(target_node, args)
            if rerouted is None:
                raise
            return self._execute_command(rerouted, *args, **kwargs)
        try:
            result = super()._execute_command(target_node, *args, **kwargs)  # type: ignore[no-untyped-call]
        except BaseException as exc:
            breaker.failed(exc, probe)
            raise
        breaker.succeeded(probe)
        return result

    def _session_multi_reroute(self, refused: Any, args: tuple[Any, ...]) -> Any:
        """The master now serving the slot of a command refused on ``refused``
        (the map refreshed first if its time has come), or ``None``."""
        try:
            slot = self.determine_slot(*args)
        except Exception:  # a command of no slot: nowhere else to send it
            return None
        if slot is None:
            return None
        for refresh in (False, True):
            if refresh and not self.session_multi_refresh(refused.name):
                return None
            node = self.nodes_manager.get_node_from_slot(slot)
            if node is not None and node.name != refused.name:
                return node
        return None

    def pipeline(self, transaction: bool | None = None, shard_hint: Any = None) -> Any:
        if transaction is False:
            return super().pipeline(transaction=None, shard_hint=shard_hint)  # type: ignore[no-untyped-call]
        if shard_hint:
            raise RedisClusterException("shard_hint is not used in cluster mode")
        return SlotTransaction(self)  # type: ignore[abstract]
