"""A Beaker session's save merged with what parallel requests saved.

Two kinds of Beaker store are merged:

- a store with its own lock (``file``, ``dbm``): the save takes the
  namespace's write lock, reads what the store holds now, merges, and writes
  under the same lock (Beaker's locks are reentrant, so its own ``save()``
  runs inside);
- a SQL store (``ext:database``), which Beaker does not
  lock: the save reads the row, merges, and writes with a conditional
  ``UPDATE`` that only matches the row as it was read; if another request
  wrote in between, it reads, merges and tries again.

A session whose stored state is gone (logged out, rotated away or expired
in a parallel request) is not written again.  A rotated session (saved
under a new id, its old stored state deleted once it is) is written only
while the old state is still there, with what a parallel request saved
there merged in.
"""

import copy
import pickle
from collections.abc import Callable
from datetime import datetime
from typing import Any

from .merge import MergePolicy
from .outcome import SaveOutcome
from .retry import ATTEMPTS, ConcurrentSaveConflict, pause

#: Where Beaker keeps a session's data in its namespace.
SESSION_KEY = "session"


def snapshot(data: dict[Any, Any]) -> Callable[[], dict[Any, Any]]:
    """What ``data`` holds now, as later changes in place do not reach it:
    returned by the callable returned.

    Kept pickled, and unpickled only when asked (by a save), once: a request
    that saves nothing pays one ``pickle.dumps``.
    """
    try:
        pickled = pickle.dumps(data, pickle.HIGHEST_PROTOCOL)
    except Exception:
        try:
            copied: dict[Any, Any] = copy.deepcopy(data)
        except Exception:  # a value that cannot be copied: compared as it is
            copied = dict(data)
        return lambda: copied
    unpickled: list[dict[Any, Any]] = []

    def thawed() -> dict[Any, Any]:
        if not unpickled:
            unpickled.append(pickle.loads(pickled))
        return unpickled[0]

    return thawed


def store_kind(namespace: Any) -> str | None:
    """``"locked"``, ``"sql"``, or ``None`` for a Beaker namespace manager not merged."""
    from beaker.container import DBMNamespaceManager, FileNamespaceManager

    if isinstance(namespace, FileNamespaceManager | DBMNamespaceManager):
        return "locked"
    try:
        from beaker.ext.sqla import SqlaNamespaceManager
    except ImportError:  # pragma: no cover - SQLAlchemy is optional
        return None
    if isinstance(namespace, SqlaNamespaceManager):
        return "sql"
    return None


def guard_saves(inner: Any, policy: MergePolicy, outcome: SaveOutcome) -> bool:
    """Make the saves of ``inner``, a loaded Beaker ``Session``, merge.

    ``False`` where there is nothing to merge with (a new session) or its
    store is not one merged here.
    """
    if inner.is_new:
        return False
    kind = store_kind(getattr(inner, "namespace", None))
    if kind is None:
        return False
    loaded_id = inner.id
    loaded_namespace = inner.namespace
    loaded_data = snapshot(dict(dict.items(inner)))
    # what came in, for the panel too: Beaker's own copy of it (its
    # ``accessed_dict``) shares the values a view then changes in place
    inner.session_multi_loaded = loaded_data
    original: Callable[..., Any] = inner.save
    original_invalidate: Callable[[], Any] = inner.invalidate
    read = _locked_read if kind == "locked" else _sql_read
    ended_here: list[bool] = []

    def merging_save(accessed_only: bool = False) -> Any:
        if ended_here or inner.is_new:
            return original(accessed_only)  # this request's own new session
        if outcome.dropped is not None:
            return None
        if inner.id != loaded_id:
            old = read(loaded_namespace)
            return _moved_save(inner, original, old, loaded_data, policy, outcome)
        if accessed_only and not inner.save_atime:
            return original(accessed_only)
        ours = dict(inner.accessed_dict if accessed_only else dict.items(inner))
        if kind == "locked":
            return _locked_save(inner, original, accessed_only, loaded_data, ours, policy, outcome)
        return _conditional_save(inner, accessed_only, loaded_data, ours, policy, outcome)

    def invalidate() -> Any:
        ended_here.append(True)  # a logout of this request: its next session is its own
        return original_invalidate()

    # instance attributes: Beaker's own methods are what they wrap
    inner.save = merging_save
    inner.invalidate = invalidate
    return True


def _locked_read(namespace: Any) -> Any:
    """What a locked namespace holds for the session now, ``None`` if gone."""
    namespace.acquire_read_lock()
    try:
        if SESSION_KEY not in namespace:
            return None
        return namespace[SESSION_KEY]
    finally:
        namespace.release_read_lock()


def _sql_read(namespace: Any) -> Any:
    """What a SQL namespace's row holds for the session now, ``None`` if gone."""
    stored = _row(namespace)[1]
    return None if stored is None else stored.get(SESSION_KEY)


def _row(namespace: Any) -> tuple[Any, Any]:
    """The row's raw data and what it holds (a dict), or ``(None, None)``."""
    import sqlalchemy as sa

    table = namespace.table
    raw_data = sa.type_coerce(table.c.data, sa.LargeBinary)
    with namespace.bind.connect() as connection:
        row = connection.execute(
            sa.select(raw_data).where(table.c.namespace == namespace.namespace)
        ).fetchone()
    if row is None:
        return None, None
    stored = pickle.loads(row[0])
    return row[0], stored if isinstance(stored, dict) else None


def _moved_save(
    inner: Any,
    original: Callable[..., Any],
    old: Any,
    loaded_data: Callable[[], dict[Any, Any]],
    policy: MergePolicy,
    outcome: SaveOutcome,
) -> Any:
    """Save a rotated session under its new id, merged with what its old id
    holds now; nothing once the old id's state is gone.  What its old id
    holds is merged from what it held at this request's last save (see
    :func:`_merged_from`): a save under the new id leaves it as it was, and
    the session then holds what that save took in from it, which a later
    save merged from what the request loaded would take for its own change
    (a key a parallel request deleted since would come back)."""
    if old is None:
        _dropped(inner, outcome)
        return None
    loaded = _merged_from(inner, False, loaded_data)
    theirs = inner._decrypt_data(old)
    merged = policy.merge(loaded, dict(dict.items(inner)), theirs)
    outcome.merged(merged, retry=False)
    _settle(inner, False, merged.data)
    result = original()
    _saved(inner, False, theirs)
    return result


#: Where a loaded Beaker ``Session`` keeps what its last merging save of its
#: data wrote, and what its last one of the access time alone wrote.
WRITTEN = "session_multi_written"
WRITTEN_ACCESSED = "session_multi_written_accessed"


def _written_key(accessed_only: bool) -> str:
    return WRITTEN_ACCESSED if accessed_only else WRITTEN


def _merged_from(
    inner: Any, accessed_only: bool, loaded_data: Callable[[], dict[Any, Any]]
) -> dict[Any, Any]:
    """What the store held for the session after this request last wrote it
    (the application's own ``persist()`` in its view, before the end of
    request's save), else what the request loaded: what its next save merges
    from.  Merged from what it loaded, this request's own writes would be a
    parallel request's: a key it deleted since would come back.

    Kept apart for the two things a Beaker save writes: the session's data,
    and (``accessed_only``) its copy of what it loaded (``accessed_dict``),
    which is all a save of the access time alone merges and settles.  The
    data the application holds does not take in what such a save merged in
    (a parallel request's write): merged from it, the next save of the data
    would take that write for one the request undid."""
    written = inner.__dict__.get(_written_key(accessed_only))
    if written is None:
        return loaded_data()
    if type(written) is bytes:
        return dict(pickle.loads(written))
    return dict(written())


def _saved(inner: Any, accessed_only: bool, data: dict[Any, Any]) -> None:
    """``data`` was written (see :func:`_merged_from`): kept pickled, which
    leaves nothing for the collector."""
    try:
        kept: Any = pickle.dumps(data, pickle.HIGHEST_PROTOCOL)
    except Exception:
        kept = snapshot(data)
    inner.__dict__[_written_key(accessed_only)] = kept


def reverted(inner: Any) -> None:
    """``inner``, a loaded Beaker ``Session``, holds its copy of what it
    loaded again (its ``revert()``), which only its saves of the access time
    alone wrote: its next save of the data merges from what that copy came
    from."""
    attributes = inner.__dict__
    accessed = attributes.get(WRITTEN_ACCESSED)
    if accessed is None:
        attributes.pop(WRITTEN, None)
    else:
        attributes[WRITTEN] = accessed


def _dropped(inner: Any, outcome: SaveOutcome) -> None:
    """Nothing is written, and no cookie carrying the ended session's id is sent."""
    outcome.gone()
    inner.request["set_cookie"] = False


def _settle(inner: Any, accessed_only: bool, data: dict[Any, Any]) -> None:
    """Make ``inner`` hold the merged ``data``, for what its save writes."""
    if accessed_only:
        inner.accessed_dict = data
    else:
        dict.clear(inner)
        dict.update(inner, data)


def _locked_save(
    inner: Any,
    original: Callable[..., Any],
    accessed_only: bool,
    loaded_data: Callable[[], dict[Any, Any]],
    ours: dict[Any, Any],
    policy: MergePolicy,
    outcome: SaveOutcome,
) -> Any:
    namespace = inner.namespace
    gone = False
    # not replace=True: the store is read again, under the lock
    namespace.acquire_write_lock()
    try:
        if SESSION_KEY not in namespace:
            _dropped(inner, outcome)
            gone = True
            return None
        theirs = inner._decrypt_data(namespace[SESSION_KEY])
        loaded = _merged_from(inner, accessed_only, loaded_data)
        merged = policy.merge(loaded, ours, theirs)
        outcome.merged(merged, retry=not _same_data(theirs, loaded))
        _settle(inner, accessed_only, merged.data)
        # Beaker's own save, inside the lock it takes again (reentrant)
        result = original(accessed_only)
        _saved(inner, accessed_only, merged.data)
        return result
    finally:
        namespace.release_write_lock()
        if gone:
            # what opening it to write made (an empty file or dbm) goes again
            namespace.remove()


def _same_data(left: dict[Any, Any], right: dict[Any, Any]) -> bool:
    try:
        return bool(left == right)
    except Exception:
        return False


def _conditional_save(
    inner: Any,
    accessed_only: bool,
    loaded_data: Callable[[], dict[Any, Any]],
    ours: dict[Any, Any],
    policy: MergePolicy,
    outcome: SaveOutcome,
) -> Any:
    import sqlalchemy as sa

    namespace = inner.namespace
    table = namespace.table
    raw_data = sa.type_coerce(table.c.data, sa.LargeBinary)
    row_of = table.c.namespace == namespace.namespace
    loaded = _merged_from(inner, accessed_only, loaded_data)
    for attempt in range(ATTEMPTS):
        if attempt > 1:
            pause(attempt)
        raw, stored = _row(namespace)
        if stored is None or SESSION_KEY not in stored:
            _dropped(inner, outcome)
            return None
        theirs = inner._decrypt_data(stored[SESSION_KEY])
        merged = policy.merge(loaded, ours, theirs)
        written = dict(stored)
        if merged.data:
            written[SESSION_KEY] = inner._encrypt_data(merged.data)
        else:
            written.pop(SESSION_KEY, None)
        update = (
            table.update()
            .where(row_of, raw_data == raw)
            .values(data=written, accessed=datetime.now())
        )
        with namespace.bind.begin() as connection:
            matched = connection.execute(update).rowcount
        if matched == 1:
            outcome.merged(merged, retry=not _same_data(theirs, loaded))
            _settle(inner, accessed_only, merged.data)
            namespace.hash = written
            _saved(inner, accessed_only, merged.data)
            return None
        outcome.retries += 1
    raise ConcurrentSaveConflict(f"the session kept changing under {ATTEMPTS} saves in a row")
