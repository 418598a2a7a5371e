"""Plain Pyramid apps whose ``request.session`` is one real session store,
merging its saves through a session library adapter of the add-on (or not):
the store side of merge on save, without the add-on's namespaces.

Every view loads the session, holds at the interleaving barrier
(:func:`tests.support.interleave.hold`), then does its part.
"""

import json
from pathlib import Path
from typing import Any

import pyramid_beaker
from pyramid.config import Configurator
from pyramid_session_redis import RedisSessionFactory

from pyramid_session_multi.concurrency.merge import MergePolicy
from pyramid_session_multi.concurrency.outcome import SaveOutcome
from pyramid_session_multi.libraries.beaker import BEAKER_BOOKKEEPING, BeakerLibrary
from pyramid_session_multi.libraries.redis import RedisLibrary

from .interleave import Call, Interleaving, hold, install, set_cookies

COOKIE = "store"


def redis_store(redis_url: str, **options: Any) -> tuple[Any, Any]:
    factory = RedisSessionFactory(
        "secret-" * 4, redis_url=redis_url, cookie_name=COOKIE, **{"timeout": 600, **options}
    )
    return factory, RedisLibrary()


def beaker_file_store(directory: Path, kind: str = "file") -> tuple[Any, Any]:
    """Beaker ``file`` (or ``dbm``) under ``directory``."""
    factory = pyramid_beaker.BeakerSessionFactoryConfig(
        type=kind, data_dir=str(directory / "data"), lock_dir=str(directory / "lock"), key=COOKIE
    )
    return factory, BeakerLibrary()


def beaker_sql_store(url: str, directory: Path) -> tuple[Any, Any]:
    factory = pyramid_beaker.BeakerSessionFactoryConfig(
        type="ext:database",
        url=url,
        table_name="merge_sessions",
        lock_dir=str(directory / "lock"),
        key=COOKIE,
    )
    return factory, BeakerLibrary()


class StoreApp:
    """The app, its interleaving harness and each request's merge outcome."""

    def __init__(self, store: tuple[Any, Any], merging: bool = True, on_conflict: Any = None):
        factory, self.library = store
        self.cookie = self.library.cookie(factory)["name"]
        self.policy = MergePolicy(on_conflict, frozenset(BEAKER_BOOKKEEPING))
        self.merging = merging
        #: each request's SaveOutcome, by (path, params)
        self.outcomes: dict[tuple[Any, ...], SaveOutcome] = {}
        config = Configurator()
        install(config)
        config.set_session_factory(factory)
        for name in ("write", "delete", "logout", "read"):
            config.add_route(name, "/" + name)
            config.add_view(getattr(self, name), route_name=name)
        self.harness = Interleaving(config.make_wsgi_app())

    def _loaded(self, request: Any) -> Any:
        session = request.session
        if self.library.has_prepare:  # what the add-on sets up (Beaker: a logout destroys)
            self.library.prepare("store", session)
        if self.merging:
            outcome = SaveOutcome()
            self.library.merge_saves(session, self.policy, outcome)
            self.outcomes[(request.path, *sorted(request.params.items()))] = outcome
        session.get("anything")  # loaded now (Beaker loads lazily)
        hold(request)
        return session

    def write(self, request: Any) -> Any:
        self._loaded(request).update(dict(request.params))
        return request.response

    def delete(self, request: Any) -> Any:
        session = self._loaded(request)
        for key in request.params:
            session.pop(key, None)
        return request.response

    def logout(self, request: Any) -> Any:
        self._loaded(request).invalidate()
        return request.response

    def read(self, request: Any) -> Any:
        session = self._loaded(request)
        data = {key: value for key, value in session.items() if key not in BEAKER_BOOKKEEPING}
        request.response.text = json.dumps(data)
        return request.response

    def start(self, **data: str) -> dict[str, str]:
        """A stored session holding ``data``; the cookies that carry it."""
        response = self.harness.one(Call("/write", params=data))
        return {self.cookie: set_cookies(response)[self.cookie]}

    def data(self, cookies: dict[str, str]) -> dict[str, str]:
        """What the session ``cookies`` carry holds now ({} once it is gone)."""
        response = self.harness.one(Call("/read", cookies))
        return dict(json.loads(response.text))

    def outcome(self, path: str, **params: str) -> SaveOutcome:
        return self.outcomes[(path, *sorted(params.items()))]
