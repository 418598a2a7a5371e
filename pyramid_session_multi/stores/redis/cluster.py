"""A Redis Cluster client whose ``pipeline()`` is a transaction on one hash slot.

On a cluster, pyramid_session_redis makes each new session id unique with
``WATCH``/``MULTI``/``EXEC`` in a ``pipeline()``, which redis-py's cluster
pipeline refuses unless asked for a transaction (and, before redis-py 6.1,
refuses outright).  :class:`SessionRedisCluster` is a
:class:`~redis.cluster.RedisCluster` whose ``pipeline()`` is a transaction on
the master serving the key's hash slot (:class:`SlotTransaction`): the library
is not patched, it is given a client that does what it asks.
"""

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
            self._pipeline = self._cluster.get_redis_connection(node).pipeline(transaction=True)
            self._slot = slot
            if self._multi:
                self._pipeline.multi()
        return self._pipeline

    def _refresh(self) -> None:
        try:
            self._cluster.nodes_manager.initialize()
        except Exception:  # the cluster is unreachable: the caller's error says so
            pass

    def execute_command(self, *args: Any, **options: Any) -> Any:
        """Run (or queue) one command on the slot's master."""
        slot = self._slot_of(args)
        first = self._pipeline is None
        try:
            return self._open(slot).execute_command(*args, **options)
        except _REROUTE:
            self._refresh()
            if not first:
                raise
        self.reset()
        return self._open(slot).execute_command(*args, **options)

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
            return list(self._pipeline.execute(raise_on_error))
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


class SessionRedisCluster(RedisCluster):
    """A :class:`~redis.cluster.RedisCluster` whose default ``pipeline()`` is a
    transaction on one slot's master (:class:`SlotTransaction`), as
    ``pipeline()`` is on one server.

    ``pipeline(transaction=False)`` is redis-py's own cluster pipeline, which
    sends commands for many slots without a transaction.
    """

    def pipeline(self, transaction: bool | None = None, shard_hint: Any = None) -> Any:
        if transaction is False:
            return super().pipeline(transaction=None, shard_hint=shard_hint)  # type: ignore[no-untyped-call]
        if shard_hint:
            raise RedisClusterException("shard_hint is not used in cluster mode")
        return SlotTransaction(self)  # type: ignore[abstract]
