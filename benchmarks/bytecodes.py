"""Count the Python bytecodes a request runs, per function: a figure the load
of the machine does not move, unlike the timings of ``bench.py``.

    PYTHONPATH=. .venv/bin/python benchmarks/bytecodes.py [--requests N] [--top N]

For the signed-cookie rows of ``bench.py`` (writes; reads of a logged-in
session, timeouts off and on) and each server-side row (Redis reads and
writes, Beaker file writes), it runs the library used natively, the add-on's
namespace, and the namespace with its timeouts, under ``sys.settrace`` with
opcode events, and prints the bytecodes per request of each side and the
functions whose count differs most from the side before.  Tracing makes the
requests slow: only the counts mean anything here.
"""

import argparse
import collections
import os
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

import bench

#: the sides of a server-side row, each against the one before it
SIDES = (("native", True, False), ("namespace", False, False), ("timeouts", False, True))

#: a row: its name, and its sides, each a name and what builds its app
Row = tuple[str, tuple[tuple[str, Callable[[], bench.WSGIApp]], ...]]


def rows() -> list[Row]:
    """The signed-cookie rows, then the server-side ones."""
    found: list[Row] = [
        (
            "Signed cookie writes",
            (
                ("native", bench.session_app),
                ("namespace", lambda: bench.multi_app(1)),
                ("timeouts", lambda: bench.multi_app(1, timeouts=True)),
            ),
        ),
        (
            "Signed cookie reads, logged in",
            (
                ("namespace", lambda: bench.lifetime_app(False)),
                ("timeouts", lambda: bench.lifetime_app(True)),
            ),
        ),
    ]
    stores = (
        ("Redis", bench.redis_factory, "reads"),
        ("Redis", bench.redis_factory, "writes"),
        ("Beaker file", bench.beaker_factory, "writes"),
    )
    for store, make_factory, what in stores:
        sides = tuple(
            (
                side,
                lambda f=make_factory, w=what, n=native, t=timeouts: bench.server_side_app(
                    f, n, w, timeouts=t
                ),
            )
            for side, native, timeouts in SIDES
        )
        found.append((f"{store} {what}", sides))
    return found


def _where(frame: FrameType) -> str:
    code = frame.f_code
    _, found, path = code.co_filename.rpartition("site-packages/")
    if not found:  # the checkout's own
        path = os.path.relpath(code.co_filename)
    return f"{path}:{code.co_firstlineno}({code.co_name})"


def bytecodes(app: bench.WSGIApp, requests: int) -> collections.Counter[str]:
    """The bytecodes per request ``app`` runs, by function."""
    bench.run_batch(app, 20)  # warm: first requests set up connections and caches
    counts: collections.Counter[str] = collections.Counter()

    def trace(frame: FrameType, event: str, arg: Any) -> Callable[..., Any]:
        frame.f_trace_opcodes = True
        where = _where(frame)

        def count(frame: FrameType, event: str, arg: Any) -> Callable[..., Any]:
            if event == "opcode":
                counts[where] += 1
            return count

        return count

    sys.settrace(trace)
    try:
        bench.run_batch(app, requests)
    finally:
        sys.settrace(None)
    return collections.Counter({where: n // requests for where, n in counts.items()})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--top", type=int, default=8, help="functions shown per side")
    args = parser.parse_args()
    try:
        for name, sides in rows():
            before: collections.Counter[str] | None = None
            for side, make_app in sides:
                counts = bytecodes(make_app(), args.requests)
                total = sum(counts.values())
                print(f"{name}, {side}: {total} bytecodes per request")
                if before is not None:
                    changed = counts.copy()
                    changed.subtract(before)
                    for where, more in changed.most_common(args.top):
                        if more > 0:
                            print(f"  {more:+6d}  {where}")
                before = counts
    finally:
        bench.stop_servers()
    return 0


if __name__ == "__main__":
    sys.exit(main())
