"""Load, faults and leaks against a real server: what the docs' figures come from.

    make soak             # or: .venv/bin/python benchmarks/soak.py [--clients N] [--seconds S]

A waitress worker (12 threads) serves three namespaces: ``redis`` (declared
in the settings, so with the add-on's client, a 0.5 s socket timeout and its
circuit breaker), ``signed`` (a cookie) and ``beaker`` (Beaker files).
Clients, each with its own cookies, write a value of their own and read it
back on every round.  The phases:

1. *steady*: every client writes and reads all three namespaces; counts
   requests per second, 5xx, lost writes and cross-talk (a client reading
   another's value), and the worker's memory before and after;
2. *killed*: Redis is stopped for a few seconds, then started on the same
   data; requests that need it fail fast, the others go on, nothing written
   before is lost;
3. *paused*: Redis is stopped with SIGSTOP (a hung store): requests that
   never touch Redis keep their pace;
4. *logs*: how many lines and tracebacks the worker logged during the
   faults;
5. *left*: the keys, files and lock files left, then what ``sweep()``
   removes once every session is past its timeout.

Run from the checkout's root (``make soak`` does).  It is kept out of the
test suite: it takes about a minute and measures the machine as much as
the add-on.
"""

import argparse
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.http_client import CookieClient, stop, wait_for_port  # noqa: E402
from tests.support.redis_server import RedisServer, free_port, redis_keys  # noqa: E402


def settings(redis_url: str, data_dir: Path) -> dict[str, str]:
    return {
        "session_multi.namespaces": "redis signed beaker",
        "session_multi.redis.factory": "redis",
        "session_multi.redis.secret": "soak-redis-secret-of-at-least-32-bytes",
        "session_multi.redis.cookie_name": "redis",
        "session_multi.redis.redis_url": redis_url,
        "session_multi.redis.redis_socket_timeout": "0.5",
        "session_multi.redis.redis_socket_connect_timeout": "0.5",
        "session_multi.redis.timeout": "600",
        "session_multi.redis.idle_timeout": "600",
        "session_multi.signed.factory": "signed",
        "session_multi.signed.secret": "soak-signed-secret-of-at-least-32-bytes",
        "session_multi.signed.cookie_name": "signed",
        "session_multi.beaker.factory": "beaker",
        "session_multi.beaker.type": "file",
        "session_multi.beaker.key": "beaker",
        "session_multi.beaker.secret": "soak-beaker-secret-of-at-least-32-bytes",
        "session_multi.beaker.data_dir": str(data_dir / "beaker"),
        "session_multi.beaker.lock_dir": str(data_dir / "beaker-lock"),
        "session_multi.beaker.idle_timeout": "600",
    }


def unavailable(exc: Any, request: Any) -> Any:
    """The exception view the docs suggest: a store that is down answers 503."""
    from pyramid.response import Response

    return Response("the session store is unavailable", status=503)


def make_app(redis_url: str, data_dir: Path) -> Any:
    import redis

    from tests.support.apps import build_wsgi

    def setup(config: Any) -> None:
        config.add_view(unavailable, context=redis.exceptions.ConnectionError)
        config.add_view(unavailable, context=redis.exceptions.TimeoutError)

    return build_wsgi(setup, settings=settings(redis_url, data_dir))


def serve(port: int, redis_url: str, data_dir: Path, log: Path) -> None:
    import logging

    import waitress

    logging.basicConfig(filename=str(log), level=logging.WARNING)
    waitress.serve(
        make_app(redis_url, data_dir), host="127.0.0.1", port=port, threads=12, _quiet=True
    )


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Load:
    """``clients`` threads, each a client with its own cookies, looping over ``paths``."""

    def __init__(
        self,
        port: int,
        clients: int,
        namespaces: tuple[str, ...],
        reuse: "list[CookieClient] | None" = None,
    ) -> None:
        self.port = port
        self.namespaces = namespaces
        self.clients = reuse or [CookieClient(port, timeout=10) for _ in range(clients)]
        self.values: dict[int, dict[str, str]] = {i: {} for i in range(clients)}
        self.counts = {"requests": 0, "5xx": 0, "lost": 0, "crosstalk": 0}
        # requests, 5xx, writes answered 200 but not read back
        self.by_namespace: dict[str, list[int]] = {ns: [0, 0, 0] for ns in namespaces}
        self.durations: dict[str, list[float]] = {ns: [] for ns in namespaces}
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def run(self, seconds: float) -> float:
        self._stop.clear()
        threads = [
            threading.Thread(target=self._client, args=(index,), daemon=True)
            for index in range(len(self.clients))
        ]
        start = time.monotonic()
        for thread in threads:
            thread.start()
        time.sleep(seconds)
        self._stop.set()
        for thread in threads:
            thread.join(30)
        return time.monotonic() - start

    def _client(self, index: int) -> None:
        client = self.clients[index]
        round_ = 0
        while not self._stop.is_set():
            round_ += 1
            for namespace in self.namespaces:
                value = f"client {index} round {round_}"
                began = time.monotonic()
                try:
                    status, payload, _ = client.post(f"/s/{namespace}", {"value": value})
                except OSError:
                    status, payload = 599, None
                took = time.monotonic() - began
                with self._lock:
                    self.counts["requests"] += 1
                    self.by_namespace[namespace][0] += 1
                    self.durations[namespace].append(took)
                    if status >= 500:
                        self.counts["5xx"] += 1
                        self.by_namespace[namespace][1] += 1
                if status >= 500:
                    continue
                self.values[index][namespace] = value
                try:
                    status, payload, _ = client.get(f"/s/{namespace}")
                except OSError:
                    continue
                with self._lock:
                    self.counts["requests"] += 1
                    self.by_namespace[namespace][0] += 1
                    if status >= 500:
                        self.counts["5xx"] += 1
                        self.by_namespace[namespace][1] += 1
                    elif payload.get("value") != value:
                        read = str(payload.get("value"))
                        key = "crosstalk" if not read.startswith(f"client {index} ") else "lost"
                        if read == "None":
                            key = "lost"
                        self.counts[key] += 1
                        self.by_namespace[namespace][2] += 1


def count_files(directory: Path, suffix: str) -> int:
    return sum(1 for path in directory.rglob(f"*{suffix}") if path.is_file())


def log_counts(log: Path) -> tuple[int, int]:
    """The add-on's log lines (waitress's own are left out), and every traceback."""
    text = log.read_text() if log.exists() else ""
    lines = [line for line in text.splitlines() if ":pyramid_session_multi." in line]
    return len(lines), text.count("Traceback (most recent call last)")


def _pair(first: int, second: int) -> str:
    return f"{first} / {second}"


def _triple(load: Load, namespace: str) -> str:
    return " / ".join(str(number) for number in load.by_namespace[namespace])


def _latency(load: Load, namespace: str) -> str:
    durations = load.durations[namespace] or [0.0]
    return f"{1000 * statistics.median(durations):.1f} / {1000 * max(durations):.0f}"


def report(title: str, figures: dict[str, Any]) -> None:
    print(f"\n{title}")
    for name, value in figures.items():
        print(f"  {name:44} {value}")


def main(argv: Any = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=24)
    parser.add_argument("--seconds", type=float, default=15.0, help="of steady load")
    parser.add_argument("--fault-seconds", type=float, default=5.0)
    parser.add_argument("--show-log", action="store_true", help="print the worker's log")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--redis-url", help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    parser.add_argument("--log", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.port, args.redis_url, Path(args.data_dir), Path(args.log))
        return 0

    with tempfile.TemporaryDirectory() as directory:
        data_dir = Path(directory)
        server = RedisServer(data_dir / "redis")
        (data_dir / "redis").mkdir()
        server.start()
        port = free_port()
        log = data_dir / "worker.log"
        worker = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--serve",
                "--port",
                str(port),
                "--redis-url",
                server.url,
                "--data-dir",
                str(data_dir),
                "--log",
                str(log),
            ],
            cwd=str(ROOT),
        )
        try:
            wait_for_port(port, worker)
            return _phases(args, port, worker, server, data_dir, log)
        finally:
            if server.process is not None:
                server.process.send_signal(signal.SIGCONT)
            stop(worker)
            server.stop()


def _phases(args: Any, port: int, worker: Any, server: Any, data_dir: Path, log: Path) -> int:
    namespaces = ("redis", "signed", "beaker")
    load = Load(port, args.clients, namespaces)
    load.run(2)  # warm up: every client has its sessions
    rss_before = rss_kib(worker.pid)
    requests_before = load.counts["requests"]
    seconds = load.run(args.seconds)
    steady = load.counts["requests"] - requests_before
    report(
        f"steady: {args.clients} clients, {seconds:.0f} s, 12 waitress threads",
        {
            "requests": steady,
            "requests per second": round(steady / seconds),
            "5xx": load.counts["5xx"],
            "lost writes": load.counts["lost"],
            "cross-talk": load.counts["crosstalk"],
            "worker memory before / after (KiB)": f"{rss_before} / {rss_kib(worker.pid)}",
        },
    )

    # Redis killed, then started again on the same data
    lines_before, tracebacks_before = log_counts(log)
    server.stop()
    fault = Load(port, args.clients, ("redis", "signed"), reuse=load.clients)
    fault.run(args.fault_seconds)
    server.start()
    lines, tracebacks = log_counts(log)
    report(
        f"killed: Redis stopped {args.fault_seconds:.0f} s",
        {
            "requests to redis / 5xx / writes lost": _triple(fault, "redis"),
            "requests to signed / 5xx / writes lost": _triple(fault, "signed"),
            "add-on lines / tracebacks": _pair(
                lines - lines_before, tracebacks - tracebacks_before
            ),
        },
    )
    time.sleep(6)  # the breaker's interval: its probe finds Redis back
    lost = 0
    for client in load.clients:
        status, payload, _ = client.get("/s/redis")
        if status != 200 or payload.get("value") is None:
            lost += 1
    report("after the restart", {"clients whose Redis session was lost": lost})

    # Redis paused: a hung store
    baseline = Load(port, args.clients, ("signed",), reuse=load.clients)
    baseline.run(args.fault_seconds)
    lines_before, tracebacks_before = log_counts(log)
    server.process.send_signal(signal.SIGSTOP)
    paused = Load(port, args.clients, ("redis", "signed"), reuse=load.clients)
    paused.run(args.fault_seconds)
    server.process.send_signal(signal.SIGCONT)
    lines, tracebacks = log_counts(log)
    report(
        f"paused: Redis stopped with SIGSTOP {args.fault_seconds:.0f} s, 0.5 s socket timeout",
        {
            "signed request before, median / slowest (ms)": _latency(baseline, "signed"),
            "signed request paused, median / slowest (ms)": _latency(paused, "signed"),
            "requests to redis / 5xx / writes lost": _triple(paused, "redis"),
            "add-on lines / tracebacks": _pair(
                lines - lines_before, tracebacks - tracebacks_before
            ),
        },
    )

    # what is left, then swept
    time.sleep(6)
    from pyramid_session_multi.config import get_manager_config
    from pyramid_session_multi.scripts.sweep import sweep

    beaker = data_dir / "beaker"
    locks = data_dir / "beaker-lock"
    left = {
        "Redis keys": len(redis_keys(server.url)),
        "Beaker session files": count_files(beaker, ".cache"),
        "Beaker lock files": count_files(locks, ".lock"),
    }
    config = get_manager_config(make_app(server.url, data_dir).registry)
    swept = {s.what: s for s in sweep(config, at=time.time() + 3600, grace=0)}
    beaker_swept = swept["namespace 'beaker'"]
    left["swept: Beaker sessions / lock files"] = (
        f"{beaker_swept.sessions} / {beaker_swept.lock_files}"
    )
    left["after the sweep: files / lock files"] = (
        f"{count_files(beaker, '.cache')} / {count_files(locks, '.lock')}"
    )
    report("left in the stores", left)
    if args.show_log:
        print(log.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
