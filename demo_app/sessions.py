"""The demo's namespaces registered in code (account, history, admin), and its CSRF policy."""

import os
from pathlib import Path
from typing import Any

import pyramid_beaker
from pyramid.config import Configurator
from pyramid.session import SignedCookieSessionFactory
from pyramid_session_redis import RedisSessionFactory

from pyramid_session_multi import NamespaceCSRFStoragePolicy
from pyramid_session_multi.events import SessionMigrated
from pyramid_session_multi.revocation import SQLRevocationStore

from .redis_embedded import DATA_DIR, EmbeddedRedis, external_redis_from, install_sigterm_handler

#: What each namespace stands for, shown on the pages.
DESCRIPTIONS = {
    "prefs": "client-side signed cookie: theme and language",
    "account": "server-side on Redis: login state and a third-party token",
    "secure": "https-only: secure cookie, mounted only when request.scheme is https",
    "history": "server-side in SQL (Beaker ext:database): SQLite, or PostgreSQL via DATABASE_URL",
    "admin": "client-side signed cookie, bound to account: rejected beside any other account",
}

#: Keys that stay on the server: pages show that they exist, never their value.
SERVER_ONLY_KEYS = {"api_token", "_csrft_"}


def https_only(request: Any) -> bool:
    return bool(request.scheme == "https")


def database_url_from(settings: dict[str, Any]) -> str:
    """``DATABASE_URL`` wins over ``sql.url``; SQLite under ``var/`` otherwise."""
    url = os.environ.get("DATABASE_URL") or settings.get("sql.url")
    if url:
        return str(url)
    directory = Path(settings.get("sql.embedded_dir", DATA_DIR))
    directory.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{directory / 'demo-sessions.sqlite'}"


def register_namespaces(config: Configurator, settings: dict[str, Any]) -> None:
    secret = settings.get("demo.secret", "demo-secret-change-me-0123456789abcdef")
    # "prefs" and "secure" are declared in development.ini (session_multi.*);
    # "account" is registered here, where its Redis may be the embedded one.
    # REDIS_URL, REDIS_CLUSTER_NODES or REDIS_SENTINELS; the embedded server otherwise
    client_callable = external_redis_from(settings)
    if client_callable is None:
        embedded = EmbeddedRedis(Path(settings.get("redis.embedded_dir", DATA_DIR)))
        install_sigterm_handler()
        client_callable = embedded.client_callable()
    config.register_session_factory(
        "account",
        RedisSessionFactory(
            secret=secret + "-account",
            cookie_name="demo_account",
            timeout=None,  # the add-on's timeouts decide
            cookie_samesite="Lax",
            redis_client_callable=client_callable,
        ),
        # unused for half an hour, it ends; and, with "admin" bound to it, at the
        # latest a working day after login
        idle_timeout=IDLE_TIMEOUT,
        absolute_timeout=ABSOLUTE_TIMEOUT,
    )
    config.register_session_factory(
        "history",
        pyramid_beaker.BeakerSessionFactoryConfig(
            type="ext:database",
            url=database_url_from(settings),
            table_name="demo_sessions",
            key="demo_history",
            secret=secret + "-history",
            timeout=7 * 24 * 3600,
            httponly=True,
            samesite="Lax",
        ),
    )
    config.register_session_factory(
        "admin",
        SignedCookieSessionFactory(
            secret + "-admin",
            cookie_name="demo_admin",
            # the add-on's idle timeout decides: pyramid's own re-sends the
            # cookie at every read in a new second (reissue_time 0), an empty
            # one too, so a page only showing admin mode would set one
            timeout=None,
            reissue_time=None,
            httponly=True,
            samesite="Strict",
        ),
        bound_to="account",
        idle_timeout=1800,
    )
    config.set_csrf_storage_policy(NamespaceCSRFStoragePolicy("account"))
    config.set_default_csrf_options(require_csrf=True)
    # "sign out everywhere" needs a store every process shares: a table beside
    # the history's (SQLite under var/, or DATABASE_URL's PostgreSQL)
    config.set_revocation_store(SQLRevocationStore(database_url_from(settings)))
    config.add_subscriber(remember_migration, SessionMigrated)


#: The add-on's timeouts of "account", in seconds.
IDLE_TIMEOUT = 30 * 60
ABSOLUTE_TIMEOUT = 8 * 3600

#: Where a request keeps what was moved from a fallback, for the page to say.
MIGRATED = "demo_migrated"


def remember_migration(event: SessionMigrated) -> None:
    """Note on the request that a namespace's session came from a fallback."""
    event.request.environ.setdefault(MIGRATED, []).append(
        (event.namespace, event.fallback_description)
    )
