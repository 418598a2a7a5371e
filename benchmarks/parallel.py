"""The bench's rows for merge on save (see docs/narr/parallel.rst).

- sequential writes on Redis, each request writing a key of a stored session:
  ``concurrent_writes="merge"`` against ``"overwrite"`` (the library's own
  save), as the median ratio of interleaved rounds, at most 1.20;
- reads of the same session, merge against overwrite (nothing changes);
- for both, the function calls per request of each side (cProfile's count:
  what the load of the machine does not move);
- 8 parallel writers on one session, each request writing a key of its own:
  the keys lost and the requests per second, merge against overwrite.  Each
  round holds every writer after it loaded the session (the suite's
  interleaving harness), as a page's parallel XHRs do at their worst; the
  throughput runs the 8 writers unheld, in threads.
"""

import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

from pyramid.config import Configurator
from pyramid.response import Response
from webob import Request

#: The most merge may cost over overwrite, sequentially (the issue's target).
SEQUENTIAL_LIMIT = 1.20

COOKIE = "main"


def redis_app(redis_url: str, mode: str) -> Any:
    """An app whose namespace ``main`` is pyramid_session_redis in ``mode``.

    ``/w?k=v`` writes, ``/r`` reads; each view holds at the interleaving
    barrier of a request that names one (none, outside the harness).
    """
    from pyramid_session_redis import RedisSessionFactory

    from tests.support.interleave import hold, install

    config = Configurator()
    config.include("pyramid_session_multi")
    install(config)
    config.register_session_factory(
        COOKIE,
        RedisSessionFactory(secret="bench-" * 6, cookie_name=COOKIE, redis_url=redis_url),
        concurrent_writes=mode,
    )

    def write(request: Any) -> Response:
        session = request.session_multi[COOKIE]
        session.get("seed")
        hold(request)
        session.update(request.GET)
        return Response("ok")

    def read(request: Any) -> Response:
        session = request.session_multi[COOKIE]
        return Response(str(len(session.keys())))

    config.add_route("w", "/w")
    config.add_view(write, route_name="w")
    config.add_route("r", "/r")
    config.add_view(read, route_name="r")
    return config.make_wsgi_app()


def _cookie(app: Any) -> str:
    response = Request.blank("/w?seed=1").get_response(app)
    value = response.headers["Set-Cookie"].split(";", 1)[0]
    return value


def _batch(app: Any, cookie: str, path: str, requests: int) -> float:
    started = time.perf_counter()
    for index in range(requests):
        request = Request.blank(path.format(index=index))
        request.headers["Cookie"] = cookie
        response = request.get_response(app)
        assert response.status_int == 200, response.status
    return time.perf_counter() - started


def _calls(app: Any, cookie: str, path: str, requests: int) -> float:
    """Function calls per request (as cProfile counts them): a figure the
    load of the machine does not move, unlike the timings."""
    import cProfile
    import pstats

    profile = cProfile.Profile()
    profile.enable()
    try:
        _batch(app, cookie, path, requests)
    finally:
        profile.disable()
    return float(pstats.Stats(profile).total_calls) / requests  # type: ignore[attr-defined]


def sequential(
    redis_url: str, path: str, rounds: int, requests: int
) -> tuple[float, float, float, str]:
    """Median ratio merge/overwrite, each side's microseconds per request,
    and each side's function calls per request."""
    merge, overwrite = redis_app(redis_url, "merge"), redis_app(redis_url, "overwrite")
    cookies = {id(merge): _cookie(merge), id(overwrite): _cookie(overwrite)}
    for app in (merge, overwrite):
        _batch(app, cookies[id(app)], path, requests)  # warm up
    calls = "/".join(
        f"{_calls(app, cookies[id(app)], path, requests):.0f}" for app in (merge, overwrite)
    )
    times: dict[int, list[float]] = {id(merge): [], id(overwrite): []}
    ratios = []
    for index in range(rounds):
        pair = [merge, overwrite] if index % 2 == 0 else [overwrite, merge]
        for app in pair:
            times[id(app)].append(_batch(app, cookies[id(app)], path, requests))
        ratios.append(times[id(merge)][-1] / times[id(overwrite)][-1])
    per = lambda app: statistics.median(times[id(app)]) / requests * 1e6  # noqa: E731
    return statistics.median(ratios), per(merge), per(overwrite), calls


def lost_keys(redis_url: str, mode: str, writers: int, rounds: int) -> int:
    """Keys lost over ``rounds`` rounds of ``writers`` held parallel writers."""
    from tests.support.interleave import Call, Interleaving

    app = redis_app(redis_url, mode)
    harness = Interleaving(app)
    lost = 0
    for round_ in range(rounds):
        cookie = _cookie(app)
        name, value = cookie.split("=", 1)
        calls = [
            Call("/w", {name: value}, params={f"r{round_}k{index}": "1"})
            for index in range(writers)
        ]
        harness.run(calls)
        read = Request.blank("/r")
        read.headers["Cookie"] = cookie
        held = int(read.get_response(app).text) - 1  # the seed key aside
        lost += writers - held
    return lost


def parallel_throughput(
    redis_url: str, mode: str, writers: int, requests: int
) -> tuple[float, int]:
    """Requests per second of ``writers`` unheld threads writing one session,
    and the keys lost."""
    app = redis_app(redis_url, mode)
    cookie = _cookie(app)
    per_writer = requests // writers

    def run(writer: int) -> None:
        _batch(app, cookie, f"/w?w{writer}k{{index}}=1", per_writer)

    threads = [threading.Thread(target=run, args=(writer,)) for writer in range(writers)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    read = Request.blank("/r")
    read.headers["Cookie"] = cookie
    held = int(read.get_response(app).text) - 1
    return writers * per_writer / elapsed, writers * per_writer - held


def report(redis_url: str, rounds: int, requests: int, show: Callable[[str], None]) -> bool:
    """Print the rows; ``True`` when the sequential write ratio is over its limit."""
    ratio, merge_us, overwrite_us, calls = sequential(redis_url, "/w?k{index}=1", rounds, requests)
    over = ratio > SEQUENTIAL_LIMIT
    verdict = "OVER" if over else "ok"
    show(
        f"{'Redis writes, merge vs overwrite':45} {merge_us:8.1f}us {overwrite_us:8.1f}us"
        f" {ratio:7.3f} {'':11} {SEQUENTIAL_LIMIT:6.2f} {verdict:>7} {calls:>13}"
    )
    ratio, merge_us, overwrite_us, calls = sequential(redis_url, "/r", rounds, requests)
    show(
        f"{'Redis reads, merge vs overwrite':45} {merge_us:8.1f}us {overwrite_us:8.1f}us"
        f" {ratio:7.3f} {'':11} {'':6} {'':>7} {calls:>13}"
    )
    show(f"\n{'8 parallel writers on one Redis session':45} {'merge':>10} {'overwrite':>10}")
    held_rounds = 20
    show(
        f"{f'keys lost of {8 * held_rounds}, held after loading':45}"
        f" {lost_keys(redis_url, 'merge', 8, held_rounds):10d}"
        f" {lost_keys(redis_url, 'overwrite', 8, held_rounds):10d}"
    )
    merge_rps, merge_lost = parallel_throughput(redis_url, "merge", 8, requests * 2)
    overwrite_rps, overwrite_lost = parallel_throughput(redis_url, "overwrite", 8, requests * 2)
    show(
        f"{f'unheld, {8 * (requests * 2 // 8)} requests: requests/s':45}"
        f" {merge_rps:10.0f} {overwrite_rps:10.0f}"
    )
    show(f"{'unheld: keys lost':45} {merge_lost:10d} {overwrite_lost:10d}")
    return over
