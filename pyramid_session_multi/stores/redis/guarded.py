"""Redis clients whose commands go through a circuit breaker (see :mod:`..breaker`)."""

from collections.abc import Callable
from typing import Any

import redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..breaker import CircuitBreaker, CircuitOpen


class RedisCircuitOpen(CircuitOpen, RedisConnectionError):
    """A Redis command refused at once: its client's circuit breaker is open.

    Both :class:`~pyramid_session_multi.stores.breaker.CircuitOpen` and
    redis-py's ``ConnectionError``, so what handles Redis going away
    handles this too.
    """


#: What opens a Redis client's circuit breaker.
BREAKER_FAILURES = (RedisConnectionError, RedisTimeoutError)


def _guarded(breaker: CircuitBreaker | None, function: Callable[..., Any], *args: Any) -> Any:
    if breaker is None:
        return function(*args)
    return breaker.call(function, *args)


class BreakerRedis(redis.Redis):
    """A :class:`redis.Redis` whose commands and pipelines go through its
    :attr:`session_multi_breaker`, when it has one."""

    #: the client's circuit breaker (``None``: none)
    session_multi_breaker: CircuitBreaker | None = None

    def execute_command(self, *args: Any, **options: Any) -> Any:
        breaker = self.session_multi_breaker
        if breaker is None:
            return super().execute_command(*args, **options)  # type: ignore[no-untyped-call]
        return breaker.call(super().execute_command, *args, **options)

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Any:
        pipeline = BreakerPipeline(
            self.connection_pool, self.response_callbacks, transaction, shard_hint
        )
        pipeline.session_multi_breaker = self.session_multi_breaker
        return pipeline


class BreakerPipeline(redis.client.Pipeline):
    """The pipeline of a :class:`BreakerRedis`: what reaches the server goes
    through the breaker (commands queued for later do not)."""

    session_multi_breaker: CircuitBreaker | None = None

    def immediate_execute_command(self, *args: Any, **options: Any) -> Any:
        breaker = self.session_multi_breaker
        if breaker is None:
            return super().immediate_execute_command(*args, **options)  # type: ignore[no-untyped-call]
        return breaker.call(super().immediate_execute_command, *args, **options)

    def execute(self, raise_on_error: bool = True) -> list[Any]:
        return list(_guarded(self.session_multi_breaker, super().execute, raise_on_error))
