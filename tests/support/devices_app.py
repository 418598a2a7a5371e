"""An app whose users' devices live in a shared revocation store, mirrored in
each process: run as a waitress worker process (``python -m
tests.support.devices_app``), two of them sharing the store.

One namespace, ``signed`` (a signed cookie, idle timeout 600 s), the views of
:func:`~tests.support.lifetime_apps.build_lifetime_wsgi` (``/login``,
``/r/signed`` ...), and:

``/devices?userid=``
   the user's devices, as ``[{"id": ..., "current": ...}]``, latest login first;
``/end?id=``
   ``{"ended": ...}``, what ``revoke_device`` answered;
``/mirror``
   what this process's mirror says of itself: ``current``, ``hits`` (checks
   answered from memory) and ``misses`` (checks that asked the store).
"""

import argparse
from pathlib import Path
from typing import Any

from pyramid_session_multi.config import get_manager_config

from .lifetime_apps import build_lifetime_wsgi, library_factory


def devices_view(request: Any) -> Any:
    listed = request.session_multi.devices(request.params["userid"])
    return [{"id": device.id, "current": device.current} for device in listed]


def end_view(request: Any) -> Any:
    return {"ended": request.session_multi.revoke_device(request.params["id"])}


def mirror_view(request: Any) -> Any:
    mirror = get_manager_config(request.registry).revocations
    return {"current": mirror.current, "hits": mirror.hits, "misses": mirror.misses}


def make_wsgi(revocations: str, directory: Path) -> Any:
    """The app, its revocation store at ``revocations`` (a Redis or SQLAlchemy URL)."""

    def register(config: Any) -> None:
        factory = library_factory("signed", "", directory)
        config.register_session_factory("signed", factory, idle_timeout=600)
        for name, view in (("devices", devices_view), ("end", end_view), ("mirror", mirror_view)):
            config.add_route(name, "/" + name)
            config.add_view(view, route_name=name, renderer="json")

    settings = {
        "session_multi.revocations": revocations,
        "session_multi.revocations_mirror": "true",
    }
    return build_lifetime_wsgi(register, settings)


def held_wsgi(store: Any, kind: str, redis_url: str, directory: Path) -> Any:
    """An app of one namespace ``ns`` of library ``kind`` (idle timeout 600 s)
    and the revocation store ``store``, whose views hold at the interleaving
    barrier (:mod:`tests.support.interleave`) once they read ``ns``:

    ``/login?userid=``
       rotates ``ns`` as ``userid`` and writes ``user`` into it;
    ``/read``
       reads ``user``;
    ``/logout``
       invalidates every namespace.
    """
    from pyramid.config import Configurator

    from .interleave import hold, install

    config = Configurator()
    config.include("pyramid_session_multi")
    install(config)
    config.register_session_factory(
        "ns", library_factory(kind, redis_url, directory), idle_timeout=600
    )
    config.set_revocation_store(store)

    def read(request: Any) -> Any:
        user = request.session_multi["ns"].get("user")
        hold(request)
        return {"user": user}

    def login(request: Any) -> Any:
        read(request)
        userid = request.params["userid"]
        request.session_multi.rotate("ns", userid=userid)
        request.session_multi["ns"]["user"] = userid
        return {}

    def logout(request: Any) -> Any:
        read(request)
        request.session_multi.invalidate()
        return {}

    for name, view in (("read", read), ("login", login), ("logout", logout)):
        config.add_route(name, "/" + name)
        config.add_view(view, route_name=name, renderer="json")
    return config.make_wsgi_app()


def main(argv: Any = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--revocations", required=True)
    parser.add_argument("--data-dir", required=True)
    args = parser.parse_args(argv)
    import waitress

    app = make_wsgi(args.revocations, Path(args.data_dir))
    waitress.serve(app, host="127.0.0.1", port=args.port, threads=8, _quiet=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
