"""Merge on save in a request: the load step that makes a namespace's saves
merge with parallel requests', and what the end of request does with each
merge (see :doc:`/narr/parallel`).

The step runs first in a merging namespace's pipeline, on the session as the
store held it (the add-on's records still in it), so that what the request
loaded is compared with what the store holds at save, record for record.
"""

from typing import Any

from ..concurrency.outcome import SaveOutcome
from ..events import ConcurrentWriteDropped


def merge_on_save(work: Any, namespace_config: Any, request: Any, session: Any, state: Any) -> None:
    """Load step ``"merge"``: make the loaded session's saves merge, and have
    the unit of work keep what they do (a new session has nothing to merge with)."""
    policy = namespace_config.merge_policy
    if state is None or policy is None:
        return
    outcome = SaveOutcome()
    if namespace_config.library.merge_saves(session, policy, outcome):
        # the namespace's end is enlisted already (``state``): noted there at once
        work.ending.merging(state, outcome)


def after_merge(work: Any, state: Any, before: list[tuple[str, str]], response: Any) -> None:
    """Once the session of ``state`` (the end of a namespace whose saves merge)
    was saved, and its save met a parallel one (the end of request calls
    nothing otherwise: saved as the library would have, there is nothing to
    tell): the panel hears what its merge did, and a save that was dropped
    (the session ended in a parallel request) takes back the cookie its
    library set in this response and is told with
    :class:`~pyramid_session_multi.events.ConcurrentWriteDropped`.

    ``before`` is the response's headers before the namespace's callbacks ran.
    """
    outcome = state.merge
    namespace_config = state.config
    work.tell_observers("namespace_merged", namespace_config.namespace, outcome)
    if outcome.dropped is None or outcome.told:
        return
    outcome.told = True
    # nothing of the session was written: the device index hears of no move of
    # its stamps (its login ended in the parallel request)
    work.moved.discard(namespace_config.namespace)
    take_back_cookie(before, response, namespace_config.cookie_name)
    work.send(
        ConcurrentWriteDropped, namespace_config.namespace, state.session, reason=outcome.dropped
    )


def take_back_cookie(before: list[tuple[str, str]], response: Any, cookie_name: str) -> None:
    """Remove from ``response`` what sets ``cookie_name`` and was not in ``before``."""
    prefix = cookie_name + "="
    kept = [value for name, value in before if name.lower() == "set-cookie"]
    headers = []
    for name, value in response.headerlist:
        if name.lower() == "set-cookie" and value.lstrip().startswith(prefix):
            if value not in kept:
                continue
            kept.remove(value)
        headers.append((name, value))
    response.headerlist[:] = headers
