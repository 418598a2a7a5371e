"""Sweeping the stores that do not clean themselves: ``psessions CONFIG sweep``.

A session is ended when it is next loaded and found expired; one whose
client never comes back stays in a store without expiry for ever, and so do
the lock files Beaker leaves behind (one per session id, and more).  Run
from cron, :func:`sweep` deletes, for every namespace of an application:

* Beaker ``file`` and ``dbm`` stores: the files of sessions that expired
  (Beaker's own ``timeout``, the add-on's ``idle_timeout`` and
  ``absolute_timeout``), with their lock files; and lock files whose session
  is gone (a logout, a rotation) once nobody holds them and they are older
  than ``grace`` seconds;
* Beaker ``ext:database``: the rows of sessions that expired, and lock files
  as above;
* the revocation store: the records that expired (an SQL store's rows,
  Redis keys left without a time to live by an earlier version).

It counts what it removed.  Redis keeps a time to live on every session key
and cookie sessions store nothing: those are reported as needing nothing.
A session without any timeout never expires, and is never deleted.
A session is judged by the stamps it holds, the same way a request judges
it on load, so the sweep deletes nothing a request would still accept.
"""

import base64
import dbm
import fcntl
import hashlib
import os
import pickle
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..hidden import take
from ..lifecycle.lifetime import LIFETIME_KEY, Stamps
from ..revocation import describe_store, record_ttl

#: Seconds a lock file whose session is gone is kept, in case a request is
#: just creating that session.
DEFAULT_GRACE = 300.0


@dataclass
class Swept:
    """What the sweep did to one store."""

    #: ``namespace 'cart'`` or ``revocation store``
    what: str
    #: the store, as people read it (never with a password)
    store: str
    #: sessions (files, rows) deleted
    sessions: int = 0
    #: lock files deleted
    lock_files: int = 0
    #: revocation records deleted or given an expiry
    records: int = 0
    #: sessions left (still alive, or held by a request right now)
    kept: int = 0
    #: what could not be read (left alone)
    unreadable: int = 0
    #: why nothing was to be done, where nothing was
    note: str | None = None
    #: the error that stopped the sweep of this store, if one did
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def expired(namespace_config: Any, data: Any, at: float, beaker_timeout: float | None) -> bool:
    """Whether a stored Beaker session (its data dict) has expired at ``at``.

    By Beaker's own ``timeout`` (its ``_accessed_time``), and by the add-on's
    stamps as the load check reads them (see
    :mod:`pyramid_session_multi.lifecycle.lifetime`).
    """
    if not isinstance(data, dict):
        return False
    accessed = data.get("_accessed_time")
    if beaker_timeout and isinstance(accessed, int | float) and at - accessed > beaker_timeout:
        return True
    stamps = Stamps.from_raw(take(dict(data), LIFETIME_KEY))
    if stamps is None:
        return False
    idle, absolute = namespace_config.idle_timeout, namespace_config.absolute_timeout
    if absolute is not None and at - stamps.created > absolute:
        return True
    return idle is not None and at - stamps.active > idle


def expired_by_idle_since(
    namespace_config: Any, saved: float, at: float, beaker_timeout: float | None
) -> bool:
    """Whether a session last saved at ``saved`` (a file's mtime) has expired
    through idleness, whatever it holds: it cannot have been used later
    than it was saved (Beaker saves its access time, the add-on its stamps)."""
    limits = [limit for limit in (beaker_timeout, namespace_config.idle_timeout) if limit]
    return bool(limits) and at - saved > min(limits)


class _Decoder:
    """Beaker's stored form of a session's data (base64 of its serializer's
    output) back to the dict; an encrypted store only Beaker with its key
    can read (:class:`_Encrypted`)."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.method = str(options.get("data_serializer") or "pickle")
        self.encrypted = bool(options.get("encrypt_key"))

    def __call__(self, stored: Any) -> Any:
        if stored is None or isinstance(stored, dict):
            return stored
        if self.encrypted:
            raise _Encrypted
        from beaker.util import deserialize

        return deserialize(base64.b64decode(stored), self.method)


class _Encrypted(Exception):
    """The data is encrypted: judged by when it was saved instead."""


def _lock_name(identifier: str) -> str:
    # how Beaker names a lock file: the SHA-1 of its identifier
    return hashlib.sha1(identifier.encode()).hexdigest()


def _files(root: Path, suffix: str) -> Iterator[Path]:
    if not root.is_dir():
        return
    for directory, _, names in os.walk(root):
        for name in names:
            if name.endswith(suffix) or (suffix in name and suffix == ".dbm"):
                yield Path(directory) / name


class _Lock:
    """A Beaker lock file taken without waiting: ``None`` when another holds it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.descriptor: int | None = None

    def __enter__(self) -> "_Lock | None":
        try:
            self.descriptor = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return self
        try:
            fcntl.flock(self.descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self.descriptor)
            self.descriptor = None
            return None
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.descriptor is not None:
            os.close(self.descriptor)


def _lock_path(lock_dir: Path, digest: str) -> Path:
    return lock_dir / digest[0] / digest[:2] / f"{digest}.lock"


def _remove_orphan_locks(
    lock_dir: Path, live: set[str], at: float, grace: float, dry_run: bool
) -> int:
    removed = 0
    for path in _files(lock_dir, ".lock"):
        if path.stem in live:
            continue
        try:
            if at - path.stat().st_mtime < grace:
                continue
        except FileNotFoundError:
            continue
        with _Lock(path) as lock:
            if lock is None:
                continue
            if not dry_run:
                path.unlink(missing_ok=True)
            removed += 1
    return removed


def _read_file_session(path: Path) -> Any:
    with path.open("rb") as file:
        stored = pickle.load(file)
    return stored.get("session") if isinstance(stored, dict) else None


def _dbm_files(path: Path) -> list[Path]:
    """The files of one Beaker dbm session (``ID.dbm`` and what the dbm module adds)."""
    stem = path.name.split(".dbm")[0] + ".dbm"
    return [other for other in path.parent.iterdir() if other.name.startswith(stem)]


def _read_dbm_session(path: Path) -> Any:
    base = str(path.parent / (path.name.split(".dbm")[0] + ".dbm"))
    with dbm.open(base, "r") as database:
        raw = database.get(b"session")
    return None if raw is None else pickle.loads(raw)


def _sweep_files(
    swept: Swept,
    namespace_config: Any,
    options: dict[str, Any],
    kind: str,
    at: float,
    grace: float,
    dry_run: bool,
) -> None:
    data_dir = options.get("data_dir")
    container = "container_file" if kind == "file" else "container_dbm"
    root = options.get("file_dir" if kind == "file" else "dbm_dir")
    root = Path(root) if root else Path(data_dir or ".") / container
    lock_dir = Path(options.get("lock_dir") or Path(data_dir or ".") / f"{container}_lock")
    swept.store = f"Beaker {kind} store at {root}"
    timeout = _as_seconds(options.get("timeout"))
    decode = _Decoder(options)
    live: set[str] = set()
    seen: set[str] = set()
    for path in sorted(_files(root, ".cache" if kind == "file" else ".dbm")):
        session_id = path.name.split(".cache" if kind == "file" else ".dbm")[0]
        if session_id in seen:
            continue
        seen.add(session_id)
        try:
            stored = _read_file_session(path) if kind == "file" else _read_dbm_session(path)
            done = expired(namespace_config, decode(stored), at, timeout)
        except FileNotFoundError:
            continue
        except _Encrypted:
            done = expired_by_idle_since(namespace_config, path.stat().st_mtime, at, timeout)
        except Exception:
            swept.unreadable += 1
            live.add(_lock_name(session_id))
            continue
        if not done:
            swept.kept += 1
            live.add(_lock_name(session_id))
            continue
        lock_path = _lock_path(lock_dir, _lock_name(session_id))
        with _Lock(lock_path) as lock:
            if lock is None:  # a request holds it: the next sweep
                swept.kept += 1
                live.add(_lock_name(session_id))
                continue
            if not dry_run:
                for file in [path] if kind == "file" else _dbm_files(path):
                    file.unlink(missing_ok=True)
                if lock_path.exists():
                    lock_path.unlink()
                    swept.lock_files += 1
            elif lock_path.exists():
                swept.lock_files += 1
        swept.sessions += 1
    swept.lock_files += _remove_orphan_locks(lock_dir, live, at, grace, dry_run)


def _sweep_database(
    swept: Swept,
    namespace_config: Any,
    options: dict[str, Any],
    at: float,
    grace: float,
    dry_run: bool,
) -> None:
    import sqlalchemy as sa

    url = str(options["url"])
    table_name = options.get("table_name", "beaker_cache")
    engine = sa.create_engine(url)
    try:
        swept.store = f"Beaker ext:database {engine.url.get_backend_name()}, table {table_name}"
        timeout = _as_seconds(options.get("timeout"))
        decode = _Decoder(options)
        table = sa.Table(table_name, sa.MetaData(), autoload_with=engine)
        live: set[str] = set()
        doomed = []
        with engine.connect() as connection:
            for row_id, namespace, data in connection.execute(
                sa.select(table.c.id, table.c.namespace, table.c.data)
            ):
                try:
                    stored = data if isinstance(data, dict) else pickle.loads(data)
                    session = decode(stored.get("session"))
                except Exception:
                    swept.unreadable += 1
                    continue
                if expired(namespace_config, session, at, timeout):
                    doomed.append((row_id, namespace))
                else:
                    swept.kept += 1
                    live.add(_lock_name(f"databasecontainer/funclock/{namespace}"))
        if doomed and not dry_run:
            with engine.begin() as connection:
                connection.execute(
                    sa.delete(table).where(table.c.id.in_([row_id for row_id, _ in doomed]))
                )
        swept.sessions += len(doomed)
    finally:
        engine.dispose()
    lock_dir = options.get("lock_dir") or (
        Path(options["data_dir"]) / "container_db_lock" if options.get("data_dir") else None
    )
    if lock_dir is not None:
        swept.lock_files += _remove_orphan_locks(Path(lock_dir), live, at, grace, dry_run)


def _as_seconds(value: Any) -> float | None:
    try:
        return None if value in (None, "") else float(value)
    except (TypeError, ValueError):
        return None


def _sweep_namespace(namespace_config: Any, at: float, grace: float, dry_run: bool) -> Swept:
    library = getattr(namespace_config.library, "name", None)
    swept = Swept(f"namespace {namespace_config.namespace!r}", str(library))
    if library == "redis":
        swept.note = "Redis expires every session key itself (its TTL): nothing to sweep"
        return swept
    if library != "beaker":
        swept.note = "the session lives in its cookie: nothing is stored"
        return swept
    from ..libraries.beaker import beaker_options

    options = beaker_options(namespace_config.factory)
    kind = str(options.get("type") or "memory")
    if kind in ("file", "dbm"):
        _sweep_files(swept, namespace_config, options, kind, at, grace, dry_run)
    elif kind == "ext:database":
        _sweep_database(swept, namespace_config, options, at, grace, dry_run)
    elif kind == "cookie":
        swept.note = "the session lives in its cookie: nothing is stored"
    elif kind == "memory":
        swept.note = "kept in each process's memory: nothing a script can reach"
    else:
        swept.store = f"Beaker {kind}"
        swept.note = f"Beaker {kind} is not swept: give its sessions an expiry of the store's own"
    return swept


def _sweep_revocations(manager_config: Any, at: float, dry_run: bool) -> Swept | None:
    store = manager_config.revocations
    if store is None:
        return None
    swept = Swept("revocation store", describe_store(store))
    sweep_store = getattr(store, "sweep", None)
    if sweep_store is None:
        swept.note = "this store has no sweep(): its records expire on their own, or never"
        return swept
    swept.records = int(sweep_store(at, record_ttl(manager_config), dry_run=dry_run))
    return swept


def sweep(
    manager_config: Any,
    at: float | None = None,
    grace: float = DEFAULT_GRACE,
    dry_run: bool = False,
) -> list[Swept]:
    """Delete what expired in every store of ``manager_config``; what was done, per store.

    :param manager_config: the application's
        :class:`~pyramid_session_multi.SessionMultiManagerConfig`.
    :param at: the time to judge expiry at (seconds since the epoch; now).
    :param grace: seconds a lock file whose session is gone is left, in case
        a request is creating that session right now.
    :param dry_run: count what would be removed, remove nothing.

    A store that fails is reported in its :attr:`Swept.error`; the others
    are swept all the same.
    """
    at = time.time() if at is None else at
    report: list[Swept] = []
    for namespace in manager_config.namespaces:
        namespace_config = manager_config.get(namespace)
        try:
            report.append(_sweep_namespace(namespace_config, at, grace, dry_run))
        except Exception as exc:
            report.append(
                Swept(f"namespace {namespace!r}", "?", error=f"{type(exc).__name__}: {exc}")
            )
    try:
        revocations = _sweep_revocations(manager_config, at, dry_run)
    except Exception as exc:
        store = manager_config.revocations
        message = f"{type(exc).__name__}: {exc}"
        hide = getattr(store, "hide_password", None)
        if callable(hide):
            message = hide(message)
        revocations = Swept("revocation store", describe_store(store), error=message)
    if revocations is not None:
        report.append(revocations)
    return report
