"""How a merging save tries again, on every store: how often, how long it
waits between tries, and what it raises when it gives up.

Kept apart from the stores' modules so that none of them needs another's
client library installed.
"""

import random
import time

#: How many times a save merges and tries again before it gives up: each
#: retry means another request saved the same session in between.
ATTEMPTS = 32

#: The longest pause, in seconds, before a save tries again.
LONGEST_PAUSE = 0.05


def pause(attempt: int) -> None:
    """Wait a little before trying again (a random share of a pause that
    doubles each time): writers that keep meeting each other spread out
    instead of starving one of them."""
    time.sleep(random.uniform(0, min(LONGEST_PAUSE, 0.001 * 2**attempt)))


class ConcurrentSaveConflict(RuntimeError):
    """A save kept meeting parallel saves of the same session and gave up."""
