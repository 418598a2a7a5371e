"""The demo's namespace registered in code (account), and its CSRF policy."""

from pathlib import Path
from typing import Any

from pyramid.config import Configurator
from pyramid_session_redis import RedisSessionFactory

from pyramid_session_multi import NamespaceCSRFStoragePolicy

from .redis_embedded import DATA_DIR, EmbeddedRedis, install_sigterm_handler, redis_url_from

#: What each namespace stands for, shown on the pages.
DESCRIPTIONS = {
    "prefs": "client-side signed cookie: theme and language",
    "account": "server-side on Redis: login state and a third-party token",
    "secure": "https-only: secure cookie, mounted only when request.scheme is https",
}

#: Keys that stay on the server: pages show that they exist, never their value.
SERVER_ONLY_KEYS = {"api_token", "_csrft_"}


def https_only(request: Any) -> bool:
    return bool(request.scheme == "https")


def register_namespaces(config: Configurator, settings: dict[str, Any]) -> None:
    secret = settings.get("demo.secret", "demo-secret-change-me")
    # "prefs" and "secure" are declared in development.ini (session_multi.*);
    # "account" is registered here, where its Redis may be the embedded one.
    redis_url = redis_url_from(settings)
    redis_options: dict[str, Any] = {"redis_url": redis_url}
    if redis_url is None:
        embedded = EmbeddedRedis(Path(settings.get("redis.embedded_dir", DATA_DIR)))
        install_sigterm_handler()
        redis_options = {"redis_client_callable": embedded.client_callable()}
    config.register_session_factory(
        "account",
        RedisSessionFactory(
            secret=secret + "-account",
            cookie_name="demo_account",
            timeout=3600,
            cookie_samesite="Lax",
            **redis_options,
        ),
    )
    config.set_csrf_storage_policy(NamespaceCSRFStoragePolicy("account"))
    config.set_default_csrf_options(require_csrf=True)
