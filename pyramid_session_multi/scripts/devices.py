"""``psessions CONFIG_URI --devices USERID`` lists a user's devices;
``--end-device DEVICE_ID`` ends one everywhere (see :doc:`/narr/devices`)."""

import datetime
import json
from collections.abc import Callable
from typing import Any, TextIO

from ..lifecycle.devices import keeps_devices
from ..lifecycle.revoking import record_ttl
from ..revocation import MemoryRevocationStore, describe_store

#: The columns of the table, in order.
COLUMNS = ("id", "user_agent", "created", "last_seen", "namespaces")


def _when(at: float) -> str:
    return datetime.datetime.fromtimestamp(at, datetime.UTC).isoformat(timespec="seconds")


def _store(config: Any, what: str, err: TextIO) -> Any:
    store = config.revocations
    if not keeps_devices(store):
        print(
            f"psessions: {what}: the application sets no revocation store keeping a device "
            "index; set session_multi.revocations to a Redis or SQLAlchemy URL.",
            file=err,
        )
        return None
    if isinstance(store, MemoryRevocationStore):
        print(
            f"psessions: {what}: the application keeps its devices in memory, in each of "
            "its processes, and this one knows none; set session_multi.revocations to a "
            "Redis or SQLAlchemy URL every process shares.",
            file=err,
        )
        return None
    return store


def list_devices(
    config: Any,
    userid: str,
    output: str,
    out: TextIO,
    err: TextIO,
    printable: Callable[[str], str],
) -> int:
    """Print ``userid``'s live devices, the latest login first; the exit status.

    ``printable`` escapes what the terminal should not interpret.
    """
    store = _store(config, "--devices", err)
    if store is None:
        return 1
    try:
        devices = store.devices(userid)
    except Exception as exc:
        print(
            printable(f"psessions: the devices could not be listed: {type(exc).__name__}: {exc}"),
            file=err,
        )
        return 1
    rows = [
        {
            "id": device.id,
            "user_agent": device.user_agent,
            "created": _when(device.created),
            "last_seen": _when(device.last_seen),
            "namespaces": " ".join(device.namespaces),
        }
        for device in devices
    ]
    if output == "json":
        print(json.dumps(rows, indent=2), file=out)
        return 0
    if not rows:
        print(f"User {userid!r} has no live device.", file=out)
        return 0
    widths = {column: max(len(column), *(len(row[column]) for row in rows)) for column in COLUMNS}
    print("  ".join(column.ljust(widths[column]) for column in COLUMNS).rstrip(), file=out)
    for row in rows:
        line = "  ".join(printable(row[column]).ljust(widths[column]) for column in COLUMNS)
        print(line.rstrip(), file=out)
    return 0


def end_device(
    config: Any, device_id: str, out: TextIO, err: TextIO, printable: Callable[[str], str]
) -> int:
    """End the device ``device_id`` everywhere; the exit status."""
    if not device_id.strip():
        print("psessions: --end-device needs a device id, not an empty one.", file=err)
        return 2
    store = _store(config, "--end-device", err)
    if store is None:
        return 1
    try:
        ended = store.end_device(device_id, record_ttl(config))
    except Exception as exc:
        print(
            printable(f"psessions: the device was not ended: {type(exc).__name__}: {exc}"),
            file=err,
        )
        return 1
    if ended is None:
        print(f"psessions: no live device has the id {device_id!r}.", file=err)
        return 1
    print(
        f"Ended device {device_id} of user {ended.userid!r} in every namespace "
        f"(store: {describe_store(store)}).",
        file=out,
    )
    return 0
