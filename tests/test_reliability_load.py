"""Load and memory: waitress with 8 threads, 16 clients; 20,000 requests."""

import gc
import os
import threading
import time

import pyramid_beaker
import webtest

from pyramid_session_multi import SessionMultiManager
from tests.support.apps import build_wsgi, signed_factory
from tests.support.backend_app import multi_view, register_signed_nacl_redis
from tests.support.http_client import CookieClient, start_worker, stop
from tests.support.redis_server import free_port

CLIENTS = int(os.environ.get("RELIABILITY_CLIENTS", "16"))
REQUESTS = int(os.environ.get("RELIABILITY_REQUESTS", "500"))
MEMORY_REQUESTS = int(os.environ.get("RELIABILITY_MEMORY_REQUESTS", "20000"))
LOAD_NAMESPACES = "signed,nacl,redis,beaker"
TIME_LIMIT = 120  # seconds: the loops stop by themselves


def test_concurrent_clients_never_see_each_other(redis_db, tmp_path):
    port = free_port()
    worker = start_worker(
        "tests.support.backend_app",
        port,
        "--redis-url",
        redis_db,
        "--data-dir",
        str(tmp_path),
        "--threads",
        "8",
    )
    errors, crosstalk, done = [], [], []
    deadline = time.monotonic() + TIME_LIMIT

    def client(index):
        http = CookieClient(port, timeout=30)
        for step in range(REQUESTS // 2):
            if time.monotonic() > deadline:
                errors.append((index, "time limit"))
                return
            identity = f"client-{index}-step-{step}"
            try:
                status, _, _ = http.post(f"/multi?ns={LOAD_NAMESPACES}", {"value": identity})
                if status != 200:
                    errors.append((index, status))
                    continue
                status, values, _ = http.get(f"/multi?ns={LOAD_NAMESPACES}")
            except Exception as exc:
                errors.append((index, repr(exc)))
                continue
            if status != 200:
                errors.append((index, status))
            elif set(values.values()) != {identity}:
                crosstalk.append((identity, values))
        done.append(index)

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(TIME_LIMIT + 30)
    finally:
        stop(worker)
    elapsed = time.monotonic() - started
    print(
        f"\n{CLIENTS} clients x {REQUESTS} requests in {elapsed:.1f}s "
        f"({CLIENTS * REQUESTS / elapsed:.0f} requests/s): "
        f"{len(errors)} errors, {len(crosstalk)} cross-talk"
    )
    assert errors == []
    assert crosstalk == []
    assert sorted(done) == list(range(CLIENTS))


def resident_kib():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def memory_app(redis_url):
    """Five namespaces: the fast real stores, so 20,000 requests fit in CI."""

    def setup(config):
        register_signed_nacl_redis(config, redis_url)
        config.register_session_factory(
            "beaker", pyramid_beaker.BeakerSessionFactoryConfig(type="memory", key="beaker")
        )
        config.register_session_factory(
            "tls",
            signed_factory("tls", secure=True),
            discriminator=lambda request: request.scheme == "https",
        )
        config.add_route("multi", "/multi")
        config.add_view(multi_view, route_name="multi", renderer="json")

    return webtest.TestApp(build_wsgi(setup))


def test_memory_is_flat_and_nothing_waits_for_the_cycle_collector(redis_db):
    app = memory_app(redis_db)
    namespaces = "signed,nacl,redis,beaker,tls"

    def batch(count):
        for step in range(count):
            if step % 2:
                app.get(f"/multi?ns={namespaces}")
            else:
                app.post(f"/multi?ns={namespaces}", {"value": f"v{step % 100}"})

    batch(2000)  # warm-up: caches, connections, pools
    gc.collect()
    before = resident_kib()
    started = time.monotonic()
    batch(MEMORY_REQUESTS)
    gc.collect()
    growth_kib = resident_kib() - before
    print(
        f"\n{MEMORY_REQUESTS} requests in {time.monotonic() - started:.1f}s: "
        f"resident memory grew {growth_kib} KiB"
    )
    assert growth_kib <= 5 * 1024

    def managers():
        return {id(o): o for o in gc.get_objects() if isinstance(o, SessionMultiManager)}

    gc.collect()
    gc.disable()
    try:
        alive_before = managers()  # other tests' toolbars may keep some alive
        batch(200)
        leftovers = [o for key, o in managers().items() if key not in alive_before]
    finally:
        gc.enable()
    assert leftovers == []
