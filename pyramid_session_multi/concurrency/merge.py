"""The per-key three-way merge of a session's data.

A request loaded the session (``loaded``), changed it (``ours``) while a
parallel request saved its own changes (``theirs``, what the store holds
now).  Each key ends as whichever side changed it: a key only one side
touched keeps that side's value, a key one side deleted stays deleted, and
a key both sides changed to different values is a conflict, settled by the
last writer (``ours``: this save is the later one) or by an application's
``on_conflict(key, loaded, ours, theirs)``.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final


class _Missing:
    """The type of :data:`MISSING`."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __reduce__(self) -> str:
        return "MISSING"


#: Stands for a key a side does not hold: what ``on_conflict`` receives for a
#: deleted or never-set key, and may return to have the key deleted.
MISSING: Final[Any] = _Missing()

#: ``on_conflict(key, loaded, ours, theirs)``: the value to keep, or :data:`MISSING`.
ConflictResolver = Callable[[Any, Any, Any, Any], Any]


def last_writer_wins(key: Any, loaded: Any, ours: Any, theirs: Any) -> Any:
    """The default ``on_conflict``: the save being made now (``ours``) wins."""
    return ours


def same(left: Any, right: Any) -> bool:
    """Whether two sides hold the same value (or both miss the key).

    Values whose comparison raises, or does not answer a plain boolean, count
    as different: a key is then taken as changed, never silently as kept.
    """
    if left is MISSING or right is MISSING:
        return left is right
    if left is right:
        return True
    try:
        return bool(left == right)
    except Exception:
        return False


@dataclass(frozen=True, slots=True)
class Merged:
    """The outcome of :func:`merge`."""

    #: the data to store
    data: dict[Any, Any]
    #: keys of the application's a parallel save changed (or deleted) and this
    #: request left alone: what a whole-session overwrite would have lost (or
    #: brought back)
    kept_theirs: tuple[Any, ...] = field(default=())
    #: keys both sides changed to different values, each settled by ``on_conflict``
    conflicts: tuple[Any, ...] = field(default=())


def merge(
    loaded: Mapping[Any, Any],
    ours: Mapping[Any, Any],
    theirs: Mapping[Any, Any],
    on_conflict: ConflictResolver | None = None,
    own_keys: frozenset[Any] = frozenset(),
    concealed: "Concealed | None" = None,
) -> Merged:
    """Merge ``ours`` and ``theirs``, two sessions changed from ``loaded``, key by key.

    :param loaded: the data the request loaded, as it was then
    :param ours: the data the request holds now
    :param theirs: the data the store holds now (a parallel request's save)
    :param on_conflict: called as ``on_conflict(key, loaded, ours, theirs)``
        for a key both sides changed to different values, each value
        :data:`MISSING` where that side does not hold the key; returns the
        value to keep, or :data:`MISSING` to delete the key.  Default:
        :func:`last_writer_wins`.
    :param own_keys: keys that are not the application's (a library's
        bookkeeping, the add-on's records): the last writer wins there, and
        ``on_conflict`` never sees them nor are they counted as conflicts.
    :param concealed: the add-on's records that may carry an application's
        value for a key spelled like them (see :class:`Concealed`): the
        record goes to the last writer, the application's value is merged
        like any key (``on_conflict`` included).
    :returns: a :class:`Merged`, whose ``data`` keeps the order of ``theirs``
        with this request's new keys after it.
    """
    resolve = on_conflict or last_writer_wins
    data: dict[Any, Any] = {}
    kept: list[Any] = []
    conflicts: list[Any] = []
    keys = dict.fromkeys([*theirs, *ours, *loaded])
    concealed_keys = frozenset() if concealed is None else concealed.keys
    for key in keys:
        sides = before, mine, other = (
            loaded.get(key, MISSING),
            ours.get(key, MISSING),
            theirs.get(key, MISSING),
        )
        if (
            before is not MISSING
            and mine is not MISSING
            and other is not MISSING
            and key not in concealed_keys
        ):
            # most keys of a session neither side touched: settled by two
            # comparisons, without a call (one that raises goes the long way)
            try:
                # only a plain True settles it: anything else goes the long way
                untouched = (mine == before) is True and (other == before) is True
            except Exception:
                untouched = False
            if untouched:
                data[key] = other
                continue
        if concealed is not None and key in concealed_keys:
            # the add-on's record to the last writer; the application's value
            # riding inside it is the application's, merged like any key
            (app_before, record_before), (app_mine, record_mine), (app_other, record_other) = (
                concealed.split(side) for side in sides
            )
            own_value, kept_it, conflicted = _settle(key, app_before, app_mine, app_other, resolve)
            record, _, _ = _settle(key, record_before, record_mine, record_other, None)
            value = concealed.join(own_value, record)
        elif key in own_keys:
            value, _, _ = _settle(key, *sides, None)
            kept_it = conflicted = False
        else:
            value, kept_it, conflicted = _settle(key, *sides, resolve)
        if kept_it:
            kept.append(key)
        if conflicted:
            conflicts.append(key)
        if value is not MISSING:
            data[key] = value
    return Merged(data, tuple(kept), tuple(conflicts))


def _settle(
    key: Any,
    before: Any,
    mine: Any,
    other: Any,
    resolve: ConflictResolver | None,
    dry: bool = False,
) -> tuple[Any, bool, bool]:
    """One key's merged value, whether a parallel save's change was kept, and
    whether both changed it (a conflict).  ``resolve`` ``None``: the last
    writer (``mine``) wins, unseen; ``dry``: ``resolve`` is not called."""
    we_changed = not same(mine, before)
    they_changed = not same(other, before)
    if we_changed and they_changed and not same(mine, other):
        if resolve is None or dry:
            return mine, False, resolve is not None
        try:
            return resolve(key, before, mine, other), False, True
        except Exception as exc:
            exc.add_note(f"pyramid_session_multi: raised by on_conflict for the key {key!r}")
            raise
    if we_changed:
        return mine, False, False
    return other, they_changed, False


@dataclass(frozen=True, slots=True)
class Concealed:
    """Keys under which the add-on stores a record that may carry the
    application's own value for a key spelled the same (see
    ``pyramid_session_multi.hidden``)."""

    #: the keys
    keys: frozenset[Any]
    #: a stored value (or :data:`MISSING`) into ``(application's value or
    #: MISSING, record or MISSING)``
    split: Callable[[Any], tuple[Any, Any]]
    #: the inverse of ``split``: :data:`MISSING` when neither is held
    join: Callable[[Any, Any], Any]

    def __contains__(self, key: Any) -> bool:
        return key in self.keys


@dataclass(frozen=True, slots=True)
class MergePolicy:
    """How one namespace merges: what a library's merging save is given."""

    #: settles a key both sides changed (see :func:`merge`); ``None``: the last writer
    on_conflict: ConflictResolver | None = None
    #: keys that are not the application's (see :func:`merge`)
    own_keys: frozenset[Any] = frozenset()
    #: the add-on's records an application's value may ride in (see :func:`merge`)
    concealed: Concealed | None = None
    #: the namespace, named in a note on what ``on_conflict`` raises
    namespace: str = ""

    def merge(
        self, loaded: Mapping[Any, Any], ours: Mapping[Any, Any], theirs: Mapping[Any, Any]
    ) -> Merged:
        """:func:`merge` with this policy."""
        try:
            return merge(loaded, ours, theirs, self.on_conflict, self.own_keys, self.concealed)
        except Exception as exc:
            exc.add_note(f"pyramid_session_multi: merging a save of namespace {self.namespace!r}")
            raise
