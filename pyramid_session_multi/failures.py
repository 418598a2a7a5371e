"""Reporting store failures: each distinct one once per interval, with a count.

A store that goes away fails every request that touches it; logging each of
them with its traceback buries the first line an operator needs under
thousands of copies.  A :class:`FailureLog` logs the first occurrence of a
failure (the same namespace, step and error) with its traceback, counts the
ones that follow within ``interval`` seconds without logging them, and logs
the next one after that with the count of those it held back.

What a namespace does when its session cannot be saved is its
``on_save_error``: :data:`REPORT` (answer, log, send
:class:`~pyramid_session_multi.events.SessionSaveFailed`) or :data:`FAIL`
(the same, then fail the response).
"""

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from .interfaces import IFailureLog

#: ``on_save_error``: answer the request; the failure is logged and an event sent.
REPORT = "report"
#: ``on_save_error``: the same, then fail the response.
FAIL = "fail"
#: Every ``on_save_error``.
ON_SAVE_ERROR = (REPORT, FAIL)

#: Seconds within which a failure seen again is counted, not logged, by default.
DEFAULT_INTERVAL = 60.0

#: The most distinct failures remembered at once; the oldest are forgotten first.
MAX_KINDS = 256


class FailureLog:
    """Each distinct failure logged once per ``interval``, with a count.

    One per application (the registry's), shared by its threads.

    :param interval: seconds within which a failure seen again is counted.
    :param clock: a monotonic clock, in seconds (``time.monotonic``).
    """

    def __init__(
        self, interval: float = DEFAULT_INTERVAL, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.interval = interval
        self.clock = clock
        self._lock = threading.Lock()
        # what the failure is -> [when its window started, how many were held back]
        self._seen: dict[tuple[str, ...], list[float]] = {}

    def report(
        self,
        logger: Any,
        namespace: str,
        what: str,
        exc: BaseException,
        level: int = logging.ERROR,
        traceback: bool = True,
    ) -> bool:
        """Log that ``namespace`` ``what`` (``could not be saved`` …) because of
        ``exc``, unless the same was logged less than ``interval`` seconds ago.

        ``logger`` is the ``logging.Logger`` to log on.  Returns whether it
        was logged.  A logged line says how many of the same were held back
        since the last one, and carries the traceback unless ``traceback``
        is false.
        """
        key = (namespace, what, type(exc).__qualname__, str(exc))
        now = self.clock()
        with self._lock:
            seen = self._seen.get(key)
            if seen is not None and now - seen[0] < self.interval:
                seen[1] += 1
                return False
            held_back = 0 if seen is None else int(seen[1])
            self._seen.pop(key, None)
            if len(self._seen) >= MAX_KINDS:
                del self._seen[next(iter(self._seen))]
            self._seen[key] = [now, 0]
        more = ""
        if held_back:
            more = f" (and {held_back} more times since it was last logged, not logged one by one)"
        logger.log(
            level,
            "namespace %r %s: %s: %s%s",
            namespace,
            what,
            type(exc).__name__,
            exc,
            more,
            exc_info=exc if traceback else None,
        )
        return True


def failure_log_of(registry: Any) -> FailureLog | None:
    """The application's :class:`FailureLog` (``None`` where the add-on was not included)."""
    log: FailureLog | None = registry.queryUtility(IFailureLog)
    return log
