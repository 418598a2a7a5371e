"""A watchdog that shuts down the socket of a call past its deadline.

A database driver such as psycopg waits for its server's answer without
a timeout of its own: a hung server (stopped, not gone) keeps the kernel
acknowledging, so the call waits forever.  :class:`Watchdog` keeps the
deadlines of the calls in flight in one heap and one thread per process
(started at the first deadline, started again in a forked child): when a
deadline passes before its call ended, it shuts the call's socket down,
and the waiting call fails with the driver's connection error.
"""

import heapq
import itertools
import os
import socket
import threading
import time


class Watchdog:
    """Deadlines of calls on sockets, by token; one thread watches them all."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._heap: list[tuple[float, int]] = []
        #: the socket (file number) of each call in flight, by token
        self._armed: dict[int, int] = {}
        #: the tokens whose socket was shut down, until disarmed
        self._fired: set[int] = set()
        self._tokens = itertools.count(1)
        self._pid = 0
        #: how many sockets were shut down
        self.shutdowns = 0

    def arm(self, fileno: int, seconds: float) -> int:
        """Watch the call about to wait on socket ``fileno``; returns its token.

        Past ``seconds``, the socket is shut down, unless :meth:`disarm` came first."""
        deadline = time.monotonic() + seconds
        with self._lock:
            if self._pid != os.getpid():  # first use, or a forked child: no thread yet
                self._pid = os.getpid()
                self._heap, self._armed, self._fired = [], {}, set()
                thread = threading.Thread(
                    target=self._watch, name="session-multi-watchdog", daemon=True
                )
                thread.start()
            token = next(self._tokens)
            self._armed[token] = fileno
            heapq.heappush(self._heap, (deadline, token))
            if self._heap[0][1] == token:
                self._lock.notify()
        return token

    def disarm(self, token: int) -> bool:
        """The call of ``token`` ended; ``True`` if its socket was shut down.

        Call it before the socket is closed: the watchdog only touches a
        socket whose call is still armed."""
        with self._lock:
            self._armed.pop(token, None)
            if token in self._fired:
                self._fired.discard(token)
                return True
            return False

    def fired(self, token: int) -> bool:
        """Whether the socket of ``token`` was shut down (the call still armed)."""
        with self._lock:
            return token in self._fired

    def _watch(self) -> None:
        pid = os.getpid()
        with self._lock:
            while self._pid == pid:
                while self._heap and self._heap[0][1] not in self._armed:
                    heapq.heappop(self._heap)  # ended in time
                if not self._heap:
                    self._lock.wait()
                    continue
                deadline, token = self._heap[0]
                left = deadline - time.monotonic()
                if left > 0:
                    self._lock.wait(left)
                    continue
                heapq.heappop(self._heap)
                fileno = self._armed.pop(token)
                self._fired.add(token)
                self._shut(fileno)

    def _shut(self, fileno: int) -> None:
        try:
            # a duplicate of the descriptor: shutting it down shuts the socket,
            # closing it leaves the driver's descriptor open
            duplicate = socket.socket(fileno=os.dup(fileno))
        except OSError:
            return
        try:
            duplicate.shutdown(socket.SHUT_RDWR)
            self.shutdowns += 1
        except OSError:
            pass
        finally:
            duplicate.close()
