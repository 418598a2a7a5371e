"""One app, five namespaces on five real session stores.

Used in-process by the backend tests and, through ``python -m
tests.support.backend_app``, as a waitress worker process for the scale-out and
reliability tests.
"""

import argparse
import sys
from pathlib import Path
from typing import Any

import pyramid_beaker
from pyramid.session import SignedCookieSessionFactory
from pyramid_nacl_session import EncryptedCookieSessionFactory
from pyramid_session_redis import RedisSessionFactory

from tests.support.apps import build_wsgi

NACL_SECRET = bytes(range(32))
NAMESPACES = ("signed", "nacl", "redis", "beaker", "database")
COOKIE_NAMESPACES = ("signed", "nacl")


def database_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / 'sessions.sqlite'}"


def beaker_file(directory: Path, key: str, kind: str = "file") -> Any:
    """A pyramid_beaker factory on files (or ``kind="dbm"``) under ``directory``,
    cookie ``key``."""
    return pyramid_beaker.BeakerSessionFactoryConfig(
        type=kind, data_dir=str(directory / key), lock_dir=str(directory / f"{key}-lock"), key=key
    )


def audited_beaker(directory: Path, calls: list[Any]) -> Any:
    """A subclass of :func:`beaker_file`'s class for ``files`` with an
    ``invalidate()`` and a ``revert()`` of its own, which note their calls
    in ``calls``, then call Beaker's."""

    class Audited(beaker_file(directory, "files")):  # type: ignore[misc]
        def invalidate(self) -> None:
            calls.append("invalidate")
            self._session().invalidate()

        def revert(self) -> None:
            calls.append("revert")
            self._session().revert()

    return Audited


def beaker_sql(url: str, directory: Path, key: str, table_name: str = "beaker_sessions") -> Any:
    """A pyramid_beaker factory on Beaker's ext:database at ``url``, cookie ``key``."""
    return pyramid_beaker.BeakerSessionFactoryConfig(
        type="ext:database",
        url=url,
        table_name=table_name,
        lock_dir=str(directory / f"{key}-lock"),
        key=key,
    )


def register_signed_nacl_redis(config: Any, redis_url: str) -> None:
    config.register_session_factory(
        "signed", SignedCookieSessionFactory("signed-secret", cookie_name="signed")
    )
    config.register_session_factory(
        "nacl", EncryptedCookieSessionFactory(NACL_SECRET, cookie_name="nacl")
    )
    config.register_session_factory(
        "redis",
        RedisSessionFactory(
            secret="redis-secret", cookie_name="redis", redis_url=redis_url, timeout=600
        ),
    )


def register_backends(
    config: Any, redis_url: str, data_dir: Path, sql_url: str | None = None
) -> None:
    """The five namespaces; "database" is on ``sql_url``, SQLite by default."""
    register_signed_nacl_redis(config, redis_url)
    config.register_session_factory("beaker", beaker_file(data_dir, "beaker"))
    config.register_session_factory(
        "database", beaker_sql(sql_url or database_url(data_dir), data_dir, "database")
    )


def multi_view(request: Any) -> Any:
    """POST ``value`` into every namespace named in ``ns``; GET reads them."""
    namespaces = request.params.get("ns", ",".join(NAMESPACES)).split(",")
    values = {}
    for namespace in namespaces:
        session = request.session_multi[namespace]
        if session is None:
            values[namespace] = None
            continue
        if request.method == "POST":
            session["value"] = request.POST["value"]
        values[namespace] = session.get("value")
    return values


#: What :func:`steps_view` can do to a session, by name.
STEPS = ("write", "rotate", "invalidate", "own-invalidate")


def steps_view(request: Any) -> Any:
    """Apply ``steps`` (names of :data:`STEPS`, comma-separated) in order to
    namespace ``ns``, in this one request: ``write`` sets ``value`` to the
    step's position, ``rotate`` and ``invalidate`` go through the manager,
    ``own-invalidate`` calls the session's own ``invalidate()``."""
    namespace = request.matchdict["ns"]
    manager = request.session_multi
    for position, step in enumerate(request.params["steps"].split(",")):
        if step == "write":
            manager[namespace]["value"] = f"step {position}"
        elif step == "rotate":
            assert manager.rotate(namespace) == {}
        elif step == "invalidate":
            assert manager.invalidate() == {}
        elif step == "own-invalidate":
            manager[namespace].invalidate()
        else:
            raise ValueError(f"unknown step {step!r}; use one of {STEPS}")
    return {}


def add_steps_view(config: Any) -> None:
    """Serve :func:`steps_view` at ``/steps/{ns}?steps=...``."""
    config.add_route("steps", "/steps/{ns}")
    config.add_view(steps_view, route_name="steps", renderer="json")


def every_sequence(steps: tuple[str, ...], longest: int) -> list[tuple[str, ...]]:
    """Every sequence of 1 to ``longest`` of ``steps``, repeats allowed."""
    found: list[tuple[str, ...]] = []
    sequences: list[tuple[str, ...]] = [()]
    for _ in range(longest):
        sequences = [(*sequence, step) for sequence in sequences for step in steps]
        found += sequences
    return found


def value_after_steps(sequence: tuple[str, ...], start: str | None) -> str | None:
    """What ``value`` is once :func:`steps_view` ran ``sequence`` on a session
    holding ``start`` (``None``: nothing)."""
    value = start
    for position, step in enumerate(sequence):
        if step == "write":
            value = f"step {position}"
        elif step in ("invalidate", "own-invalidate"):
            value = None
    return value


def orphans_after_steps(app: Any, namespace: str, stored: Any, longest: int = 3) -> list[Any]:
    """Run every sequence of :data:`STEPS` up to ``longest`` long on ``namespace``
    of ``app`` (a WebTest app with :func:`add_steps_view`), each in one request
    of a new client, on a new session and on one holding data.

    ``stored()`` counts the sessions the store holds (``None``: there is no
    store, only the reads are checked).  Returns ``(sequence, start, sessions
    left)`` wherever the store gained or kept a session beyond the one the
    client's cookie still reaches with data; each client's next request must
    read what the sequence left.
    """
    import webtest

    orphans = []
    for sequence in every_sequence(STEPS, longest):
        for start in (None, "logged in"):
            client = webtest.TestApp(app)
            if start is not None:
                client.post(f"/s/{namespace}", {"value": start})
            others = 0 if stored is None else stored() - (start is not None)
            client.get(f"/steps/{namespace}", {"steps": ",".join(sequence)})
            expected = value_after_steps(sequence, start)
            left = 0 if stored is None else stored() - others
            if stored is not None and left != (expected is not None):
                orphans.append((sequence, start, left))
            read = client.get(f"/s/{namespace}").json["value"]
            assert read == expected, (sequence, start, read)
    return orphans


def make_wsgi(redis_url: str, data_dir: Path, sql_url: str | None = None) -> Any:
    def setup(config: Any) -> None:
        register_backends(config, redis_url, Path(data_dir), sql_url)
        config.add_route("multi", "/multi")
        config.add_view(multi_view, route_name="multi", renderer="json")
        add_steps_view(config)

    return build_wsgi(setup)


def main(argv: Any = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--database-url", default=None, help="SQLAlchemy URL; SQLite if absent")
    args = parser.parse_args(argv)
    import waitress

    waitress.serve(
        make_wsgi(args.redis_url, Path(args.data_dir), args.database_url),
        host="127.0.0.1",
        port=args.port,
        threads=args.threads,
        _quiet=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
