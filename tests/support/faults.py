"""Fault injection: the Nth call a request makes to a store or a library fails.

A :class:`Faults` wraps, for the length of a test, the calls a request makes
to what lies outside the add-on: Redis commands, Beaker namespace
operations, SQL statements, a revocation store's lookups and records, and
any callable the application hands the add-on (subscribers, validators,
hooks).  Each wrapped call is counted, in order, under a label; once armed
with :meth:`Faults.fail_at`, the Nth call raises the chosen error instead of
running, and every other call runs as usual.

A test runs a path once unarmed to learn how many calls it makes
(:meth:`Faults.count`), then once per call with that call failing::

    faults = Faults(monkeypatch).redis().sql()
    calls = faults.count(lambda: run_the_path())
    for n in range(1, len(calls) + 1):
        reset_the_stores()
        with faults.failing(n):
            run_the_path()
        assert what_the_docs_promise()

Nothing here fakes a store: the calls that do not fail reach the real
redis-server, the real database, the real session library.
"""

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any

import pytest


class InjectedFault(ConnectionError):
    """The error a wrapped call raises by default: a store that went away."""


class Faults:
    """Counts the wrapped calls and fails the Nth once armed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch
        #: the label of every wrapped call since the last :meth:`reset`
        self.calls: list[str] = []
        #: the call to fail (1-based), ``None`` when disarmed
        self.target: int | None = None
        self.error: Callable[[str], BaseException] = InjectedFault
        #: the label of the call that failed, once one did
        self.fired: str | None = None
        #: the phase :meth:`mark` last named when the fault fired
        self.fired_in: str | None = None
        self.phase = "load"
        self.undo: list[Callable[[], None]] = []

    # -- what is wrapped ----------------------------------------------------

    def wrap(self, owner: Any, name: str, label: str | None = None) -> "Faults":
        """Wrap ``owner.name`` (a class's method or an object's callable)."""
        original = getattr(owner, name)
        label = label or name
        faults = self

        @functools.wraps(original)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            faults.hit(label)
            return original(*args, **kwargs)

        self.monkeypatch.setattr(owner, name, wrapper)
        return self

    def callable(self, func: Callable[..., Any], label: str) -> Callable[..., Any]:
        """``func`` wrapped: an application's subscriber, validator or hook."""
        holder = type("Holder", (), {"func": staticmethod(func)})
        self.wrap(holder, "func", label)
        return holder.func  # type: ignore[no-any-return]

    def redis(self) -> "Faults":
        """Every Redis command, of every client: one call, one command or pipeline."""
        import redis.client

        self.wrap(redis.client.Redis, "execute_command", "redis")
        self.wrap(redis.client.Pipeline, "execute", "redis pipeline")
        self.wrap(redis.client.Pipeline, "immediate_execute_command", "redis (watching)")
        return self

    def sql(self) -> "Faults":
        """Every SQL statement SQLAlchemy sends (Beaker's ext:database, the SQL stores)."""
        from sqlalchemy import event
        from sqlalchemy.engine import Engine

        def before_cursor_execute(connection: Any, cursor: Any, statement: str, *rest: Any) -> None:
            self.hit("sql " + statement.split(None, 1)[0].upper())

        event.listen(Engine, "before_cursor_execute", before_cursor_execute)
        self.undo.append(
            lambda: event.remove(Engine, "before_cursor_execute", before_cursor_execute)
        )
        return self

    def beaker(self) -> "Faults":
        """Every operation of Beaker's namespaces (the file and database managers)."""
        from beaker.container import FileNamespaceManager
        from beaker.ext.database import DatabaseNamespaceManager

        for manager in (FileNamespaceManager, DatabaseNamespaceManager):
            for name in ("do_open", "__getitem__", "__setitem__", "__delitem__", "do_remove"):
                if hasattr(manager, name):  # its own, or inherited
                    self.wrap(manager, name, f"beaker {name}")
        return self

    def revocations(self, store: Any) -> "Faults":
        """A revocation store's lookups and records."""
        for name in ("revoked_at", "revoke"):
            self.wrap(store, name, f"revocations {name}")
        return self

    # -- running ------------------------------------------------------------

    def hit(self, label: str) -> None:
        """Count a call; raise if it is the one to fail."""
        self.calls.append(label)
        if self.target is not None and len(self.calls) == self.target:
            self.fired = label
            self.fired_in = self.phase
            raise self.error(f"injected fault at call {self.target}: {label}")

    def close(self) -> None:
        """Undo what :mod:`pytest`'s monkeypatch does not (SQLAlchemy's listeners)."""
        while self.undo:
            self.undo.pop()()

    def mark(self, phase: str) -> None:
        """Name what the request is doing now: a fault that fires is told as in it."""
        self.phase = phase

    def reset(self) -> None:
        self.calls = []
        self.target = None
        self.fired = self.fired_in = None
        self.phase = "load"

    def count(self, path: Callable[[], Any]) -> list[str]:
        """The labels of the calls ``path`` makes, unarmed."""
        self.reset()
        path()
        calls = self.calls
        self.reset()
        return calls

    @contextlib.contextmanager
    def failing(
        self, n: int, error: Callable[[str], BaseException] = InjectedFault
    ) -> Iterator["Faults"]:
        """Fail the ``n``-th wrapped call in the block with ``error(message)``."""
        self.reset()
        self.target = n
        self.error = error
        try:
            yield self
        finally:
            self.target = None
