"""A session's save to Redis as a compare-and-set, in one round trip.

The request knows what its session's key held when it loaded it.  Its save
is a Lua script that writes only if the key still holds that; else it
returns what the key holds now, which the caller merges with its own
changes (see :mod:`.merge`) and tries again.  A key that is gone (the
session was logged out, rotated away or expired in a parallel request) is
never written again: the save is dropped.

What the request loaded costs nothing to keep: the bytes the library's own
``GET`` returned are remembered as it deserializes them (see
:func:`remembering`), and only a save fingerprints them, and only a save
that met a parallel one decodes them.
"""

import hashlib
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from .retry import ATTEMPTS, ConcurrentSaveConflict, pause

#: KEYS[1]: the session's key.  ARGV: the SHA-1 (hex) of what the request
#: loaded, the bytes to write, "EX" / "PX" / "" and the expiry for it.
#: Returns 1 (written), 0 (the key is gone) or what the key holds now.
COMPARE_AND_SET = """
local current = redis.call('GET', KEYS[1])
if not current then return 0 end
if redis.sha1hex(current) ~= ARGV[1] then return current end
if ARGV[3] == '' then
  redis.call('SET', KEYS[1], ARGV[2])
else
  redis.call('SET', KEYS[1], ARGV[2], ARGV[3], ARGV[4])
end
return 1
"""

COMPARE_AND_SET_SHA = hashlib.sha1(COMPARE_AND_SET.encode()).hexdigest()


def fingerprint(data: bytes) -> str:
    """What the script compares: the SHA-1 (hex) of a stored value."""
    return hashlib.sha1(data).hexdigest()


#: What the last session deserialized in this context was read from, and
#: what it became: ``(bytes, payload)``, until :func:`loaded_bytes` takes it.
_LAST_LOADED: ContextVar[tuple[bytes, Any] | None] = ContextVar(
    "pyramid_session_multi_last_loaded", default=None
)


def remembering(deserialize: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    """``deserialize``, remembering what it was given for :func:`loaded_bytes`
    (a reference: nothing is copied)."""

    def deserialize_remembered(serialized: bytes) -> Any:
        payload = deserialize(serialized)
        _LAST_LOADED.set((serialized, payload))
        return payload

    return deserialize_remembered


def loaded_bytes(data_key: Any, managed: Any) -> bytes | None:
    """The bytes the session whose data is ``managed`` was just deserialized
    from, in this context, by a :func:`remembering` deserializer; ``None``
    where they were not remembered.  Asking forgets them.

    ``data_key`` is where the library keeps the session's data in what it
    deserialized: they are the session's bytes only where that is ``managed``
    itself (the last deserialized may be another session's, or a library's
    own decoding may have copied the data).
    """
    remembered = _LAST_LOADED.get()
    if remembered is None:
        return None
    _LAST_LOADED.set(None)
    serialized, payload = remembered
    try:
        held = payload[data_key]
    except Exception:
        return None
    return serialized if held is managed else None


def compare_and_set(
    client: Any, key: str, expected: str, value: bytes, expiry: tuple[str, int] | None
) -> Any:
    """One run of :data:`COMPARE_AND_SET`: ``1``, ``0`` or the key's bytes now."""
    # redis-py is imported here, not with the module: the package imports
    # without it where no namespace keeps its sessions in Redis
    from redis.exceptions import NoScriptError

    args: list[Any] = [expected, value, *(expiry or ("", ""))]
    try:
        return client.evalsha(COMPARE_AND_SET_SHA, 1, key, *args)
    except NoScriptError:  # a server that has not seen it (or was restarted)
        return client.eval(COMPARE_AND_SET, 1, key, *args)


class MergingClient:
    """A Redis client, as one session sees it, whose writes of the session's
    loaded key are compare-and-set saves merged with what parallel requests saved.

    A rotation (the session saved under a new key while the loaded one is
    kept until the new one is saved) is merged too: the new key is written
    only while the loaded one is still there, with what a parallel request
    saved there merged in; and when the loaded key is then deleted (the old
    id retired) but was gone already, another request ended the session
    meanwhile: the new key is deleted again and the save counts as dropped.
    A session this request itself ended (its loaded key deleted through
    this client: a logout) saves its new key as the library does.

    Every other command goes to ``client`` as it is.

    :param client: the redis-py client the session was loaded with
    :param key: the key the session was loaded from
    :param loaded: what the key held when the request loaded it: the bytes
        the library read (anything else, such as a re-serialization of what
        it read, may differ from the stored bytes: the first save then costs
        one more round trip); fingerprinted by each save, decoded only
        by ``remerge``
    :param remerge: called as ``remerge(loaded, ours, theirs)`` with what
        the request loaded, what it saves and what the key holds now (bytes,
        all three); returns the merged bytes to write instead
    :param dropped: called once when the key is gone and nothing is written
    :param attempts: how many compare-and-set rounds before
        :class:`~pyramid_session_multi.concurrency.retry.ConcurrentSaveConflict`
    """

    def __init__(
        self,
        client: Any,
        key: str,
        loaded: bytes,
        remerge: Callable[[bytes, bytes, bytes], bytes],
        dropped: Callable[[], None],
        attempts: int = ATTEMPTS,
    ) -> None:
        self.session_multi_client = client
        self.session_multi_key = key
        self.session_multi_loaded = loaded
        self.session_multi_remerge = remerge
        self.session_multi_dropped = dropped
        self.session_multi_attempts = attempts
        #: whether a save was dropped (the key was gone)
        self.session_multi_gone = False
        #: whether this request deleted the loaded key itself (a logout)
        self.session_multi_ended_here = False
        #: the new key a rotated session was saved under
        self.session_multi_moved_to: Any = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.session_multi_client, name)

    def set(self, name: Any, value: Any, ex: Any = None, px: Any = None, **options: Any) -> Any:
        expiry = None if ex is None and px is None else ("EX", ex) if px is None else ("PX", px)
        if options or self.session_multi_ended_here:
            return self.session_multi_client.set(name, value, ex=ex, px=px, **options)
        if name != self.session_multi_key:
            return self._moved(name, value, expiry)
        return self._save(value, expiry)

    def setex(self, name: Any, time: Any, value: Any) -> Any:
        if self.session_multi_ended_here:
            return self.session_multi_client.setex(name, time, value)
        if name != self.session_multi_key:
            return self._moved(name, value, ("EX", time))
        return self._save(value, ("EX", time))

    def delete(self, *names: Any) -> Any:
        deleted = self.session_multi_client.delete(*names)
        if self.session_multi_key in names:
            moved_to = self.session_multi_moved_to
            if moved_to is None:
                self.session_multi_ended_here = True
            elif not deleted and not self.session_multi_gone:
                # the old id was retired by someone else first: it ended meanwhile
                self.session_multi_client.delete(moved_to)
                self._drop()
        return deleted

    def _drop(self) -> None:
        self.session_multi_gone = True
        self.session_multi_dropped()

    def _moved(self, name: Any, value: bytes, expiry: tuple[str, Any] | None) -> bool:
        """Save a rotated session under its new key ``name``, merged with what
        the loaded key holds now; nothing once the loaded key is gone."""
        if self.session_multi_gone:
            return False
        client = self.session_multi_client
        theirs = client.get(self.session_multi_key)
        if theirs is None:
            client.delete(name)  # what the library put there when it made the id
            self._drop()
            return False
        if theirs != self.session_multi_loaded:
            value = self.session_multi_remerge(self.session_multi_loaded, value, theirs)
        options = {} if expiry is None else {expiry[0].lower(): expiry[1]}
        client.set(name, value, **options)
        self.session_multi_moved_to = name
        return True

    def _save(self, value: bytes, expiry: tuple[str, Any] | None) -> bool:
        if self.session_multi_gone:
            return False
        client = self.session_multi_client
        key = self.session_multi_key
        ours = value
        expected = fingerprint(self.session_multi_loaded)
        for attempt in range(self.session_multi_attempts):
            if attempt > 1:  # the first retry merged with what it read: go at once
                pause(attempt)
            outcome = compare_and_set(client, key, expected, value, expiry)
            if outcome == 1:
                # a second save in the same request changed what this one wrote
                self.session_multi_loaded = value
                return True
            if outcome == 0:
                self._drop()
                return False
            # always the request's own changes against the latest parallel save
            expected = fingerprint(outcome)
            value = self.session_multi_remerge(self.session_multi_loaded, ours, outcome)
        raise ConcurrentSaveConflict(
            f"the session kept changing under {self.session_multi_attempts} saves in a row"
        )
