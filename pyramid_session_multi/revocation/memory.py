"""Revocations kept in this process's memory: for tests, never for deployment."""

import threading
from typing import Any

from zope.interface import implementer

from ..interfaces import IDeviceIndex, IRevocationStore
from ..lifecycle.devices import Device, device_id, is_ended, live
from ..lifecycle.lifetime import now


@implementer(IRevocationStore, IDeviceIndex)
class MemoryRevocationStore:
    """Revocations in a dict of this process: what an application's unit tests use.

    Another process (another worker, another instance) never sees them, so a
    deployment needs :class:`~pyramid_session_multi.revocation.RedisRevocationStore`
    or :class:`~pyramid_session_multi.revocation.SQLRevocationStore`.  Records
    expire on the add-on's clock, like the sessions they match.
    """

    def __init__(self) -> None:
        self._records: dict[str, tuple[float, float | None]] = {}
        #: device id -> entry
        self._devices: dict[str, Device] = {}
        #: userid -> ended login -> when the record of its end expires
        self._ended: dict[str, dict[float, float]] = {}
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
            self._drop_devices(lambda device: device.userid == userid and device.login < at)

    def _drop_devices(self, condition: Any) -> None:
        current = now()
        self._devices = {
            key: device
            for key, device in self._devices.items()
            if device.expires > current and not condition(device)
        }
        self._ended = {
            user: kept
            for user, ends in self._ended.items()
            if (kept := {login: until for login, until in ends.items() if until > current})
        }

    def record_device(self, device: Device, replaced: Any = ()) -> None:
        gone = {device_id(userid, login) for userid, login in replaced}
        with self._lock:
            self._drop_devices(lambda entry: entry.id in gone)
            if self._is_over(device):
                # a request in flight when its login was ended writes no entry back
                return
            previous = self._devices.get(device.id)
            self._devices[device.id] = device if previous is None else previous.merged(device)

    def _is_over(self, device: Device) -> bool:
        """Whether ``device``'s login is ended or revoked (the lock held)."""
        record = self._records.get(device.userid)
        live_record = record is not None and (record[1] is None or record[1] > now())
        if live_record and record is not None and device.login < record[0]:
            return True
        return is_ended(device.login, frozenset(self._ended.get(device.userid, {})))

    def devices(self, userid: str) -> list[Device]:
        with self._lock:
            return live((d for d in self._devices.values() if d.userid == userid), now())

    def find_device(self, device_id: str) -> Device | None:
        with self._lock:
            device = self._devices.get(device_id)
            return device if device is not None and device.expires > now() else None

    def end_device(self, device_id: str, ttl: int) -> Device | None:
        with self._lock:
            device = self._devices.get(device_id)
            if device is None or device.expires <= now():
                return None
            self._ended.setdefault(device.userid, {})[device.login] = now() + ttl
            self._drop_devices(lambda entry: entry.id == device_id)
            return device

    def forget_devices(self, userid: str, logins: Any) -> None:
        ids = {device_id(userid, login) for login in logins}
        with self._lock:
            self._drop_devices(lambda entry: entry.id in ids)

    def revocation_of(self, userid: str) -> tuple[float | None, frozenset[float]]:
        revoked = self.revoked_at(userid)
        with self._lock:
            current = now()
            ends = self._ended.get(userid, {})
            return revoked, frozenset(login for login, until in ends.items() if until > current)

    def __len__(self) -> int:
        """How many records are kept (expired ones included until the next revoke)."""
        return len(self._records)

    def counts(self) -> dict[str, int]:
        """How many revocations, device entries and device ends are kept
        (expired ones included until the next write)."""
        return {
            "revocations": len(self._records),
            "devices": len(self._devices),
            "ended": sum(len(ends) for ends in self._ended.values()),
        }
