"""What one namespace's merge on save did in one request."""

from dataclasses import dataclass, field
from typing import Any

from .merge import Merged

#: :attr:`SaveOutcome.dropped`: the session's stored state was gone at save
#: (logged out, rotated away or expired in a parallel request).
GONE = "gone"


@dataclass(eq=False, slots=True)
class SaveOutcome:
    """The record of one namespace's merging saves in a request: the panel
    shows it, and a dropped save is told with
    :class:`~pyramid_session_multi.events.ConcurrentWriteDropped`."""

    #: keys a parallel save changed and this request kept (see :class:`.Merged`)
    kept_theirs: list[Any] = field(default_factory=list)
    #: keys both changed, settled by ``on_conflict``
    conflicts: list[Any] = field(default_factory=list)
    #: how many saves met a parallel save (merged, and written again)
    retries: int = 0
    #: why the save was dropped (:data:`GONE`), or ``None``
    dropped: str | None = None
    #: whether the application was told of the dropped save
    told: bool = False
    #: whether its library's callbacks are running (the end of request): an
    #: ``invalidate()`` then is the library's own, of a session the request
    #: emptied, not a logout
    saving: bool = False
    #: whether a save met a parallel request's: it merged with it, or was
    #: dropped (the end of request has nothing to tell otherwise, and reads
    #: only this)
    met_parallel: bool = False

    def merged(self, merged: Merged, retry: bool = True) -> None:
        """Note one merge (the last one of a save is the one written);
        ``retry``: the save had met a parallel one."""
        self.retries += retry
        self.kept_theirs[:] = merged.kept_theirs
        self.conflicts[:] = merged.conflicts
        if retry or merged.kept_theirs or merged.conflicts:
            self.met_parallel = True

    def gone(self) -> None:
        """Note that the save was dropped: the session's stored state was gone."""
        self.dropped = GONE
        self.met_parallel = True
