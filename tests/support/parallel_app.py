"""An app of the add-on with one namespace, ``ns``, on one real store, whose
views hold at the interleaving barrier once they loaded it: parallel
requests of one client, through the add-on.

Used in-process by tests/test_concurrency_requests.py and, through ``python
-m tests.support.parallel_app``, as a waitress worker process (two of them
sharing the store), held at :class:`~tests.support.interleave.FileGates`.
"""

import argparse
import json
from pathlib import Path
from typing import Any

from pyramid.config import Configurator
from pyramid.response import Response
from pyramid_session_redis import RedisSessionFactory

from pyramid_session_multi.libraries.beaker import BEAKER_BOOKKEEPING

from .backend_app import beaker_file, beaker_sql
from .interleave import FileGates, Gates, hold

NS = "ns"

#: The stores ``kind`` names (a worker process serves these).
KINDS = ("redis", "beaker-file", "beaker-dbm", "beaker-sql")

#: The kinds whose store is a Redis topology given as ``redis_client``
#: (a :func:`~pyramid_session_multi.stores.redis.redis_client_callable`).
TOPOLOGY_KINDS = ("redis-cluster", "redis-sentinel")


def factory_of(
    kind: str,
    redis_url: str,
    data_dir: Path,
    sql_url: str | None = None,
    redis_client: Any = None,
) -> Any:
    if kind == "redis":
        return RedisSessionFactory(
            secret="parallel-secret-" * 2, cookie_name=NS, redis_url=redis_url, timeout=600
        )
    if kind in TOPOLOGY_KINDS:
        if redis_client is None:
            raise ValueError(f"the {kind} kind needs a redis_client")
        return RedisSessionFactory(
            secret="parallel-secret-" * 2,
            cookie_name=NS,
            redis_client_callable=redis_client,
            timeout=600,
        )
    if kind == "beaker-file":
        return beaker_file(data_dir, NS)
    if kind == "beaker-dbm":
        return beaker_file(data_dir, NS, "dbm")
    url = sql_url or f"sqlite:///{data_dir / 'parallel.sqlite'}"
    return beaker_sql(url, data_dir, NS, table_name="parallel_sessions")


def loaded(request: Any) -> Any:
    session = request.session_multi[NS]
    session.get("anything")  # loaded now, whatever the library
    hold(request)
    return session


def write(request: Any) -> Response:
    loaded(request).update(dict(request.GET))
    return Response("ok")


def delete(request: Any) -> Response:
    session = loaded(request)
    for key in request.GET:
        session.pop(key, None)
    return Response("ok")


def logout(request: Any) -> Response:
    loaded(request)
    request.session_multi.invalidate()
    return Response("ok")


def rotate(request: Any) -> Response:
    loaded(request)
    request.session_multi.rotate(NS)
    return Response("ok")


def read(request: Any) -> Response:
    session = loaded(request)
    data = {key: value for key, value in session.items() if key not in BEAKER_BOOKKEEPING}
    return Response(json.dumps(data), content_type="application/json", charset="utf-8")


VIEWS = {"write": write, "delete": delete, "logout": logout, "rotate": rotate, "read": read}


def make_wsgi(
    kind: str,
    redis_url: str,
    data_dir: Path,
    sql_url: str | None = None,
    gates: Any = None,
    setup: Any = None,
    settings: dict[str, str] | None = None,
    redis_client: Any = None,
    **registration: Any,
) -> Any:
    """The app; ``registration`` goes to ``register_session_factory``
    (``concurrent_writes``, ``on_conflict``); ``redis_client`` is the
    ``redis_client_callable`` of a cluster or Sentinel kind."""
    config = Configurator(settings=settings)
    config.include("pyramid_session_multi")
    config.registry.interleave_gates = gates if gates is not None else Gates()
    config.register_session_factory(
        NS, factory_of(kind, redis_url, data_dir, sql_url, redis_client), **registration
    )
    for name, view in VIEWS.items():
        config.add_route(name, "/" + name)
        config.add_view(view, route_name=name)
    if setup is not None:
        setup(config)
    return config.make_wsgi_app()


def main(argv: Any = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--kind", choices=KINDS, required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--hold-dir", required=True)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args(argv)
    import waitress

    app = make_wsgi(
        args.kind,
        args.redis_url,
        Path(args.data_dir),
        args.database_url,
        gates=FileGates(args.hold_dir),
    )
    waitress.serve(app, host="127.0.0.1", port=args.port, threads=40, _quiet=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
