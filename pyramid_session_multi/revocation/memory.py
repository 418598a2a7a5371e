"""Revocations kept in this process's memory: for tests, never for deployment."""

import threading

from zope.interface import implementer

from ..interfaces import IRevocationStore
from ..lifecycle.lifetime import now


@implementer(IRevocationStore)
class MemoryRevocationStore:
    """Revocations in a dict of this process: what an application's unit tests use.

    Another process (another worker, another instance) never sees them, so a
    deployment needs :class:`~pyramid_session_multi.revocation.RedisRevocationStore`
    or :class:`~pyramid_session_multi.revocation.SQLRevocationStore`.  Records
    expire on the add-on's clock, like the sessions they match.
    """

    def __init__(self) -> None:
        self._records: dict[str, tuple[float, float | None]] = {}
        self._lock = threading.Lock()

    def describe(self) -> str:
        return "in memory"

    def revoked_at(self, userid: str) -> float | None:
        with self._lock:
            record = self._records.get(userid)
            if record is None:
                return None
            at, expires = record
            if expires is not None and expires <= now():
                del self._records[userid]
                return None
            return at

    def revoke(self, userid: str, at: float, ttl: int | None) -> None:
        with self._lock:
            current = now()
            self._records = {
                user: record
                for user, record in self._records.items()
                if record[1] is None or record[1] > current
            }
            previous = self._records.get(userid)
            if previous is not None:
                at = max(at, previous[0])
            self._records[userid] = (at, None if ttl is None else current + ttl)

    def __len__(self) -> int:
        """How many records are kept (expired ones included until the next revoke)."""
        return len(self._records)
