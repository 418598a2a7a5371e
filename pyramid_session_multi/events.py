"""What happens to each namespace's session, as Pyramid events.

Subscribe with ``config.add_subscriber(handler, SessionRotated)`` (or any of
the interfaces in :mod:`.interfaces`; ``ISessionEvent`` catches them all).
The manager builds an event only when something subscribes to it, so an
application that listens to none pays one registry lookup per load.

Events never carry a session id: where the library has one, they carry
:attr:`SessionEvent.session_id_hash`, a keyed hash fit for logs.  The key
is the ``session_multi.id_hash_key`` setting (``env:NAME`` reads it from
the environment; unset or empty is an error at start-up), so hashes agree
across processes; without it each process draws a random key at start-up,
and hashes only compare within one process.
"""

import hashlib
import hmac
import logging
import os
import secrets
from dataclasses import dataclass
from typing import Any

from zope.interface import implementedBy, implementer, providedBy

from .interfaces import (
    IConcurrentWriteDropped,
    ISessionExpired,
    ISessionInvalidated,
    ISessionLoaded,
    ISessionMigrated,
    ISessionRejected,
    ISessionRotated,
    ISessionSaveFailed,
)
from .values import Refused, from_environment

#: The setting holding the key of :func:`hash_session_id`.
ID_HASH_SETTING = "session_multi.id_hash_key"

_PROCESS_KEY = secrets.token_bytes(32)


def id_hash_key(settings: Any) -> bytes:
    """The key of :func:`hash_session_id`: the ``session_multi.id_hash_key``
    setting (``env:NAME``: the environment variable ``NAME``), else this
    process's random key.

    Raises :class:`ValueError`, naming the setting, when the variable is not
    set, or the key is empty or not text; the add-on checks it at start-up.
    """
    configured = (settings or {}).get(ID_HASH_SETTING)
    if configured is None:
        return _PROCESS_KEY
    if isinstance(configured, bytes):
        key = configured
    elif not isinstance(configured, str):
        raise ValueError(
            f"{ID_HASH_SETTING} is not text but {type(configured).__name__}: it takes text"
        )
    else:
        try:
            key = from_environment(configured, os.environ).encode()
        except Refused as refused:
            raise ValueError(f"{ID_HASH_SETTING} {refused.problem}") from None
    if not key.strip():
        raise ValueError(f"{ID_HASH_SETTING} is empty: leave it out for a per-process key")
    return key


def hash_session_id(settings: Any, session_id: str | None) -> str | None:
    """A keyed SHA-256 hash of ``session_id`` (16 hex digits), or ``None``.

    The key is :func:`id_hash_key`'s.
    """
    if session_id is None:
        return None
    key = id_hash_key(settings)
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
    namespace's validator said no), ``"binding"`` (it does not belong with
    its partner's session) or ``"revoked"`` (its user's sessions were revoked
    after it was recorded); ``session_id_hash`` is the rejected id's hash."""

    #: ``"validator"``, ``"binding"`` or ``"revoked"``
    reason: str = "validator"


@implementer(ISessionExpired)
@dataclass(repr=False)
class SessionExpired(SessionEvent):
    """A session was ended on load for its age: ``reason`` is ``"idle"`` (unused
    for longer than the namespace's ``idle_timeout``) or ``"absolute"`` (older
    than its ``absolute_timeout``); its server-side state is deleted, the
    namespace goes on with an empty session, and ``session_id_hash`` is the
    ended id's hash (see :doc:`/narr/lifetimes`)."""

    #: ``"idle"`` or ``"absolute"``
    reason: str = "idle"


@implementer(ISessionMigrated)
@dataclass(repr=False)
class SessionMigrated(SessionEvent):
    """A fallback of the namespace read the client's session, which moved into a
    session of the namespace's own factory (see
    :func:`~pyramid_session_multi.register_session_factory`'s ``fallbacks``);
    ``session_id_hash`` is the new session's id hash, where it has one yet."""

    #: the fallback's position in ``fallbacks``, from 1
    fallback: int = 0
    #: what the fallback is: its library and cookie
    fallback_description: str = ""
    #: the hash of the id the old copy had, where it had one
    old_id_hash: str | None = None


@implementer(ISessionSaveFailed)
@dataclass(repr=False)
class SessionSaveFailed(SessionEvent):
    """The namespace's session could not be saved (its store failed at the
    end of the request): what the request wrote to it is lost, and the
    client keeps the cookie it had.  ``reason`` is the error's type and
    message; ``error`` the exception.  Sent whatever the namespace's
    ``on_save_error`` (see :doc:`/narr/lifecycle`), before the response
    fails where it is ``fail``."""

    #: the error's type and message (``ConnectionError: Error 111 ...``)
    reason: str = ""
    #: the exception the library raised
    error: BaseException | None = None


@implementer(IConcurrentWriteDropped)
@dataclass(repr=False)
class ConcurrentWriteDropped(SessionEvent):
    """The namespace's save was dropped: a parallel request ended the session
    this request loaded (logged it out, rotated it away) or it expired
    meanwhile, and merge on save never brings an ended session back (see
    :doc:`/narr/parallel`).  What this request wrote to it is lost; its
    response carries no cookie for the ended session.  ``reason`` is
    ``"gone"``: the stored session was no longer there."""

    #: why the save was dropped
    reason: str = ""


logger = logging.getLogger(__name__)


def log_decision(
    log: logging.Logger,
    what: str,
    namespace: str,
    reason: str,
    settings: Any,
    session_id: str | None,
) -> None:
    """Log one INFO line of a session's fate, for operators.

    ``what`` is what happened (``rotated``, ``invalidated``, ``expired``,
    ``rejected``, ``revoked``, ``migrated``), ``reason`` why; the id is
    given as :func:`hash_session_id` makes it (``-`` where there is none),
    never as it is, so logs hold nothing a client could present.  The line
    reads ``session rotated: namespace='account' reason=login
    id_hash=3f2a...``.
    """
    if log.isEnabledFor(logging.INFO):
        log.info(
            "session %s: namespace=%r reason=%s id_hash=%s",
            what,
            namespace,
            reason,
            hash_session_id(settings, session_id) or "-",
        )


def deliver(registry: Any, event: SessionEvent) -> list[Exception]:
    """Call every subscriber of ``event``, each on its own; return their errors.

    The change an event tells of is complete before it is sent, so a
    subscriber that raises cannot undo or half-do it, nor keep the other
    subscribers from hearing of it.  Each error gets a note naming the
    subscriber and the namespace, is logged, and is returned for the caller
    to raise once its own work is done (``raise_errors=True``).
    """
    failures: list[Exception] = []
    for subscriber in registry.adapters.subscriptions((providedBy(event),), None):
        try:
            subscriber(event)
        except Exception as exc:
            name = getattr(subscriber, "__qualname__", None) or repr(subscriber)
            module = getattr(subscriber, "__module__", None)
            if module:
                name = f"{module}.{name}"
            exc.add_note(
                f"pyramid_session_multi: raised by the subscriber {name} to "
                f"{type(event).__name__} of namespace {event.namespace!r}"
            )
            logger.error(
                "namespace %r: the subscriber %s to %s raised %s: %s; the change it was "
                "told of stands",
                event.namespace,
                name,
                type(event).__name__,
                type(exc).__name__,
                exc,
            )
            failures.append(exc)
    return failures


__all__ = [
    "ID_HASH_SETTING",
    "ConcurrentWriteDropped",
    "SessionEvent",
    "SessionExpired",
    "SessionInvalidated",
    "SessionLoaded",
    "SessionMigrated",
    "SessionRejected",
    "SessionRotated",
    "SessionSaveFailed",
    "deliver",
    "has_subscribers",
    "hash_session_id",
    "id_hash_key",
    "log_decision",
]
