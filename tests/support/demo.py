"""The demo app for tests: built from development.ini, Redis from the fixture."""

import pickle
import threading
from pathlib import Path
from typing import Any

import redis
from pyramid.paster import get_appsettings

import demo_app

INI = str(Path(demo_app.__file__).resolve().parent / "development.ini")


def demo_settings(
    redis_url: str | None = None, toolbar: bool = True, **extra: str
) -> dict[str, Any]:
    settings = dict(get_appsettings(INI))
    if not toolbar:
        settings.pop("pyramid.includes", None)
    if redis_url:
        settings["redis.url"] = redis_url
    settings.update(extra)
    return settings


def make_demo(redis_url: str | None = None, toolbar: bool = True, **extra: str) -> Any:
    return demo_app.main({}, **demo_settings(redis_url, toolbar, **extra))


class ServedApp:
    """A WSGI app served by waitress on a loopback port, in a thread."""

    def __init__(self, app: Any, port: int) -> None:
        import waitress

        self.port = port
        self.server = waitress.create_server(app, host="127.0.0.1", port=port, threads=4)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "ServedApp":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.close()
        self.thread.join(5)


def stored_tokens(redis_url):
    client = redis.StrictRedis.from_url(redis_url)
    tokens = []
    for key in client.keys():  # noqa: SIM118 (a Redis client, not a dict)
        payload = pickle.loads(client.get(key))
        tokens.append(payload.get("m", {}).get("api_token"))
    client.close()
    return [t for t in tokens if t]
