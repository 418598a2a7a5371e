"""A pytest plugin: every test starts 5 ms before a wall-clock second ends.

``-p tests.support.late_second`` shifts ``time.time()`` forward, per test, to
just before the next second, then lets it run on as usual; the newest
Python's tests session runs the suite with it.  A test whose outcome depends
on where in the second it started (two clocks read a few milliseconds apart,
one rounded to the second) fails under it every time, not once in a hundred.
"""

import time
from collections.abc import Iterator

import pytest

_real_time = time.time


@pytest.fixture(autouse=True)
def _late_in_a_second(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    started = _real_time()
    shift = (1 - started % 1) - 0.005
    if shift < 0:
        shift += 1
    monkeypatch.setattr(time, "time", lambda: _real_time() + shift)
    yield
