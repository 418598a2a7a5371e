"""A circuit breaker: a store known to be down costs one timeout per interval.

Without one, every request that touches a hung store waits its full socket
timeout, one after another, and the worker's threads pile up behind it
(requests that never touch the store included).  A :class:`CircuitBreaker`
watches the calls to one store:

* *closed* (the store answers): calls go through;
* a call that fails with a timeout or a connection error *opens* it: for
  ``interval`` seconds every call fails at once with :class:`CircuitOpen`,
  without touching the network;
* once the interval is over it is *half-open*: one call (the probe) goes
  through while the others still fail fast; the probe's success closes
  the breaker, its failure opens it for another interval.

Any other outcome (a reply, even an error reply) means the store answers.
Each change of state is logged once (``WARNING`` when it opens, ``INFO``
when it closes), naming the store.  The clock is injectable, so tests move
it rather than sleep.
"""

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

#: Seconds a breaker stays open before it lets a probe through, by default.
DEFAULT_INTERVAL = 5.0

#: The state of a breaker whose store answers.
CLOSED = "closed"
#: The state of a breaker failing calls fast.
OPEN = "open"
#: The state of a breaker letting one probe through.
HALF_OPEN = "half-open"


class CircuitOpen(ConnectionError):
    """A call refused at once: the store failed within the breaker's interval.

    A subclass of the builtin :class:`ConnectionError`; the Redis breaker
    raises a subclass that is also redis-py's ``ConnectionError``, so that
    code that handles a store going away handles this too.
    """

    def __init__(self, store: str, retry_in: float) -> None:
        # the same text for every call refused, so that logs count them as one failure
        super().__init__(
            f"{store} is unavailable: its circuit breaker is open after a timeout or "
            "connection error, and lets one call through once its interval is over"
        )
        #: the store, as :attr:`CircuitBreaker.store` names it
        self.store = store
        #: seconds until a probe may go through
        self.retry_in = retry_in


class CircuitBreaker:
    """The breaker of one store; thread-safe, shared by every request of a process.

    :param store: how logs and errors name the store (never with a password).
    :param interval: seconds it stays open before letting a probe through;
        a positive number.
    :param failures: the exception classes that open it (timeouts and
        connection errors of the store's client).
    :param clock: a monotonic clock, in seconds (``time.monotonic``).
    :param error: the class of error raised while open (:class:`CircuitOpen`
        or a subclass), called with the store and the seconds left.
    :param mask: takes a failure's text (type and message) and returns what
        logs and ``last_failure`` show of it: a driver's error may quote
        the store's password (or a piece of it), which this takes out.
    """

    __slots__ = (
        "_lock",
        "_opened_at",
        "_probing",
        "clock",
        "error",
        "failures",
        "interval",
        "last_failure",
        "mask",
        "opened",
        "refused",
        "store",
    )

    def __init__(
        self,
        store: str,
        interval: float = DEFAULT_INTERVAL,
        failures: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError),
        clock: Callable[[], float] = time.monotonic,
        error: type[CircuitOpen] = CircuitOpen,
        mask: Callable[[str], str] | None = None,
    ) -> None:
        if not interval > 0:
            raise ValueError(f"a circuit breaker's interval must be positive, not {interval!r}")
        self.store = store
        self.interval = float(interval)
        self.failures = failures
        self.clock = clock
        self.error = error
        self.mask = mask
        self._lock = threading.Lock()
        self._opened_at: float | None = None
        self._probing = False
        #: how many times it opened since the process started
        self.opened = 0
        #: how many calls it refused while open
        self.refused = 0
        #: the type and message of the failure that last opened it
        self.last_failure: str | None = None

    @property
    def state(self) -> str:
        """:data:`CLOSED`, :data:`OPEN` or :data:`HALF_OPEN` (a probe may go through)."""
        opened_at = self._opened_at
        if opened_at is None:
            return CLOSED
        if self._probing or self.clock() - opened_at < self.interval:
            return OPEN
        return HALF_OPEN

    def retry_in(self) -> float:
        """Seconds until a probe may go through (0 when closed or half-open)."""
        opened_at = self._opened_at
        if opened_at is None:
            return 0.0
        return max(0.0, opened_at + self.interval - self.clock())

    def before(self) -> bool:
        """Let a call through, or raise its ``error`` while open.

        Returns whether the call is the probe, which the caller hands to
        :meth:`succeeded` or :meth:`failed`.
        """
        if self._opened_at is None:  # the common case, without the lock
            return False
        with self._lock:
            opened_at = self._opened_at
            if opened_at is None:
                return False
            left = opened_at + self.interval - self.clock()
            if left > 0 or self._probing:
                self.refused += 1
                raise self.error(self.store, max(left, 0.0))
            self._probing = True
            return True

    def succeeded(self, probe: bool = False) -> None:
        """The store answered: close the breaker if it was open."""
        if self._opened_at is None and not probe:
            return
        with self._lock:
            was_open = self._opened_at is not None
            self._opened_at = None
            self._probing = False
            refused, self.refused = self.refused, 0
        if was_open:
            logger.info(
                "%s answers again: its circuit breaker is closed (%d calls were refused "
                "while it was open)",
                self.store,
                refused,
            )

    def failed(self, exc: BaseException, probe: bool = False) -> None:
        """A call failed with ``exc``: open the breaker if it is a store failure."""
        if not isinstance(exc, self.failures) or isinstance(exc, CircuitOpen):
            if probe:
                self.succeeded(probe)
            return
        with self._lock:
            was_open = self._opened_at is not None
            if was_open and not probe:
                # a call that went through before it opened: already counted
                return
            self._opened_at = self.clock()
            self._probing = False
            self.opened += 1
            failure = f"{type(exc).__name__}: {exc}"
            self.last_failure = failure if self.mask is None else self.mask(failure)
        logger.warning(
            "%s failed (%s): its circuit breaker is open, calls to it fail at once "
            "for %g s, then one goes through to try it",
            self.store,
            self.last_failure,
            self.interval,
        )

    def call(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``function(*args, **kwargs)`` through the breaker."""
        probe = self.before()
        try:
            result = function(*args, **kwargs)
        except BaseException as exc:
            self.failed(exc, probe)
            raise
        self.succeeded(probe)
        return result

    def snapshot(self) -> dict[str, Any]:
        """What the panel and ``psessions`` show of it."""
        return {
            "store": self.store,
            "state": self.state,
            "interval": self.interval,
            "retry_in": round(self.retry_in(), 1),
            "opened": self.opened,
            "refused": self.refused,
            "last_failure": self.last_failure,
        }

    def __repr__(self) -> str:
        return f"<CircuitBreaker {self.store} {self.state}>"


class Breakers:
    """The breakers of several stores of one kind, one per key, made on first use.

    A Redis Cluster's client keeps one per node (keyed ``host:port``), so
    that a node down opens only its own: the others, and a replica promoted
    in its place, keep answering.  Thread-safe.

    :param make: makes the breaker of a key, called once per key.
    """

    __slots__ = ("_breakers", "_lock", "make")

    def __init__(self, make: Callable[[str], CircuitBreaker]) -> None:
        self.make = make
        self._breakers: dict[str, CircuitBreaker] = {}
        self._lock = threading.Lock()

    def of(self, key: str) -> CircuitBreaker:
        """The breaker of ``key``, made now if it has none yet."""
        breaker = self._breakers.get(key)
        if breaker is None:
            with self._lock:
                breaker = self._breakers.get(key)
                if breaker is None:
                    breaker = self._breakers[key] = self.make(key)
        return breaker

    def all(self) -> list[CircuitBreaker]:
        """Every breaker made so far, by key."""
        with self._lock:
            return [self._breakers[key] for key in sorted(self._breakers)]

    def __repr__(self) -> str:
        return f"<Breakers {self.all()!r}>"
