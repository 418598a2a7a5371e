"""A namespace's ``concurrent_writes``: how its saves meet parallel requests'."""

from typing import Any, Final

#: Merge on save (see :doc:`/narr/parallel`): the default where the store merges.
MERGE: Final = "merge"
#: The library's own save: the last writer wins for the whole session.
OVERWRITE: Final = "overwrite"
#: The values ``concurrent_writes`` takes.
CONCURRENT_WRITES: Final = (MERGE, OVERWRITE)


def concurrent_writes_problem(value: Any) -> str | None:
    """What is wrong with ``value`` as a ``concurrent_writes``, or ``None``."""
    if value is None or value in CONCURRENT_WRITES:
        return None
    return f"takes {' or '.join(repr(mode) for mode in CONCURRENT_WRITES)}, not {value!r}"


def mode_of(declared: str | None, merges: bool) -> str:
    """The mode a namespace runs in: what it declared, else :data:`MERGE` where
    its store merges (``merges``) and :data:`OVERWRITE` elsewhere.

    Raises :class:`ValueError` when :data:`MERGE` is asked of a store that
    cannot merge.
    """
    if declared is None:
        return MERGE if merges else OVERWRITE
    if declared == MERGE and not merges:
        raise ValueError(
            "its store cannot merge parallel saves (a client-side session, or a "
            "store the add-on does not merge: see the 'Parallel requests' page); "
            "leave concurrent_writes out, or set it to 'overwrite'"
        )
    return declared
