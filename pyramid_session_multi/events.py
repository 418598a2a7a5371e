"""What happens to each namespace's session, as Pyramid events.

Subscribe with ``config.add_subscriber(handler, SessionRotated)`` (or any of
the interfaces in :mod:`.interfaces`; ``ISessionEvent`` catches them all).
The manager builds an event only when something subscribes to it, so an
application that listens to none pays one registry lookup per load.

Events never carry a session id: where the library has one, they carry
:attr:`SessionEvent.session_id_hash`, a keyed hash fit for logs.  The key
is the ``session_multi.id_hash_key`` setting (``env:NAME`` reads it from
the environment), so hashes agree across processes; without it each
process draws a random key at start-up, and hashes only compare within one
process.
"""

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from typing import Any

from zope.interface import implementedBy, implementer

from .interfaces import (
    ISessionInvalidated,
    ISessionLoaded,
    ISessionRejected,
    ISessionRotated,
)

#: The setting holding the key of :func:`hash_session_id`.
ID_HASH_SETTING = "session_multi.id_hash_key"

_PROCESS_KEY = secrets.token_bytes(32)


def hash_session_id(settings: Any, session_id: str | None) -> str | None:
    """A keyed SHA-256 hash of ``session_id`` (16 hex digits), or ``None``."""
    if session_id is None:
        return None
    configured = (settings or {}).get(ID_HASH_SETTING)
    if isinstance(configured, str) and configured.startswith("env:"):
        configured = os.environ.get(configured[4:])
    key = configured.encode() if isinstance(configured, str) else _PROCESS_KEY
    return hmac.new(key, session_id.encode(), hashlib.sha256).hexdigest()[:16]


def has_subscribers(registry: Any, event_class: type) -> bool:
    """Whether anything subscribes to ``event_class`` (or what it implements)."""
    if not getattr(registry, "has_listeners", False):
        return False
    return bool(registry.adapters.subscriptions((implementedBy(event_class),), None))


@dataclass(repr=False)
class SessionEvent:
    """What every event of this module has."""

    #: the request
    request: Any
    #: the namespace
    namespace: str
    #: the namespace's session, ``None`` where there is none
    session: Any
    #: a keyed hash of the session id, ``None`` where it is not known
    session_id_hash: str | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} namespace={self.namespace!r}>"


@implementer(ISessionLoaded)
@dataclass(repr=False)
class SessionLoaded(SessionEvent):
    """A namespace was loaded, once per request; ``session`` is ``None``
    when its discriminator (or its partner's) turned the request away."""


@implementer(ISessionRotated)
@dataclass(repr=False)
class SessionRotated(SessionEvent):
    """:meth:`~pyramid_session_multi.SessionMultiManager.rotate` gave the
    namespace's session a new id; ``old_id_hash`` is the old one's hash."""

    #: the hash of the id the session had before
    old_id_hash: str | None = None


@implementer(ISessionInvalidated)
@dataclass(repr=False)
class SessionInvalidated(SessionEvent):
    """:meth:`~pyramid_session_multi.SessionMultiManager.invalidate`
    invalidated the namespace; ``session_id_hash`` is the old id's hash."""


@implementer(ISessionRejected)
@dataclass(repr=False)
class SessionRejected(SessionEvent):
    """A session was thrown away on load: ``reason`` is ``"validator"`` (the
    namespace's validator said no) or ``"binding"`` (it does not belong with
    its partner's session); ``session_id_hash`` is the rejected id's hash."""

    #: ``"validator"`` or ``"binding"``
    reason: str = "validator"


__all__ = [
    "ID_HASH_SETTING",
    "SessionEvent",
    "SessionInvalidated",
    "SessionLoaded",
    "SessionRejected",
    "SessionRotated",
    "has_subscribers",
    "hash_session_id",
]
