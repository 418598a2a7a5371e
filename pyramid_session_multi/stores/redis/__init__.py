"""Connecting to Redis: one server, a Sentinel-watched master, or a Redis Cluster.

Everything the add-on (and an application) needs to reach Redis is read here,
once: a :class:`RedisTopology` says where the data lives and how to
connect; :func:`make_redis_client` makes the redis-py client of one;
:class:`RedisClientCallable` hands that client to pyramid_session_redis as its
``redis_client_callable``, made on the first request and kept.

From settings (the ``redis`` factory kind), the options in
:data:`TOPOLOGY_OPTIONS` are read by :func:`topology_from_options`; from code,
:func:`redis_client_callable` takes the same things as keyword arguments.
Each option is described once, in the table of ``stores.redis.options``; a
``redis_url`` is parsed by redis-py's own ``parse_url``.

On a cluster the client is a :class:`SessionRedisCluster`, whose
``pipeline()`` is a transaction on one hash slot's master
(:class:`SlotTransaction`), as pyramid_session_redis asks of it.
"""

from .clients import (
    RedisClientCallable,
    breaker_of,
    breakers_of,
    breakers_of_client,
    close_redis_client,
    make_redis_client,
    redis_client_callable,
    redis_client_from_options,
    store_name,
    topology_of,
)
from .cluster import SessionRedisCluster, SlotTransaction
from .guarded import BREAKER_FAILURES, BreakerPipeline, BreakerRedis, RedisCircuitOpen
from .options import OPTIONS, TOPOLOGY_OPTIONS, RedisOption
from .topology import (
    CLUSTER,
    SENTINEL,
    SINGLE,
    RedisTopology,
    topology_from_options,
)

__all__ = [
    "BREAKER_FAILURES",
    "CLUSTER",
    "OPTIONS",
    "SENTINEL",
    "SINGLE",
    "TOPOLOGY_OPTIONS",
    "BreakerPipeline",
    "BreakerRedis",
    "RedisCircuitOpen",
    "RedisClientCallable",
    "RedisOption",
    "RedisTopology",
    "SessionRedisCluster",
    "SlotTransaction",
    "breaker_of",
    "breakers_of",
    "breakers_of_client",
    "close_redis_client",
    "make_redis_client",
    "redis_client_callable",
    "redis_client_from_options",
    "store_name",
    "topology_from_options",
    "topology_of",
]
