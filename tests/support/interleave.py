"""A deterministic interleaving of parallel requests on a real WSGI app.

Each request runs in a thread of its own and is held at a barrier in its
view, right after it loaded its session (the view calls :func:`hold`), until
the harness releases it.  :meth:`Interleaving.run` starts every request,
waits until all of them loaded, then releases them one at a time in a
forced order, each finishing (its response formed, its finished callbacks
run: its session saved) before the next is released.  Every request thus
loads the same stored session and saves in a known order: what parallel
XHRs of one page do, at their worst, every time.
"""

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from webob import Request

#: the generous hang guard of each wait, in seconds (never a timing assertion)
HANG_GUARD = 60.0

#: the request header naming a held request
HOLD_HEADER = "X-Hold"


@dataclass
class Call:
    """One request of an interleaving."""

    path: str
    cookies: dict[str, str] = field(default_factory=dict)
    method: str = "GET"
    params: dict[str, str] = field(default_factory=dict)


class Gates:
    """The barrier of each held request; kept on the app's registry."""

    def __init__(self) -> None:
        self.loaded: dict[str, threading.Event] = {}
        self.release: dict[str, threading.Event] = {}

    def open(self, name: str) -> None:
        self.loaded[name] = threading.Event()
        self.release[name] = threading.Event()

    def hold(self, name: str) -> None:
        self.loaded[name].set()
        if not self.release[name].wait(HANG_GUARD):
            raise RuntimeError(f"request {name} was never released")


class FileGates:
    """Barriers across processes, as files in ``directory``: a held request
    writes ``loaded-NAME`` and waits for ``release-NAME``."""

    #: how often a held request looks for its release, in seconds
    POLL = 0.005

    def __init__(self, directory: str) -> None:
        from pathlib import Path

        self.directory = Path(directory)

    def hold(self, name: str) -> None:
        (self.directory / f"loaded-{name}").touch()
        release = self.directory / f"release-{name}"
        deadline = time.monotonic() + HANG_GUARD
        while not release.exists():
            if time.monotonic() > deadline:
                raise RuntimeError(f"request {name} was never released")
            time.sleep(self.POLL)


def hold(request: Any) -> None:
    """Called by a view once it loaded its session: wait for the harness."""
    name = request.headers.get(HOLD_HEADER)
    gates = getattr(request.registry, "interleave_gates", None)
    if name is not None and gates is not None:
        gates.hold(name)


def install(config: Any) -> Gates:
    """Give the app being configured the barriers :func:`hold` waits at."""
    gates = Gates()
    config.registry.interleave_gates = gates
    return gates


def cookie_header(cookies: dict[str, str]) -> str:
    return "; ".join(f"{name}={value}" for name, value in cookies.items())


class Interleaving:
    """Runs calls against ``app`` (whose registry got :func:`install`)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.gates: Gates = app.registry.interleave_gates
        self.rounds = 0

    def _send(self, call: Call, name: str) -> Any:
        return self._request(call, name).get_response(self.app)

    def _wait_loaded(self, name: str) -> bool:
        return self.gates.loaded[name].wait(HANG_GUARD)

    def _release(self, name: str) -> None:
        self.gates.release[name].set()

    def _open(self, name: str) -> None:
        self.gates.open(name)

    def _failed(self, name: str) -> None:
        self.gates.loaded[name].set()

    def _request(self, call: Call, name: str | None) -> Request:
        request = Request.blank(call.path, method=call.method, POST=call.params or None)
        if call.method == "GET" and call.params:
            request = Request.blank(call.path, method="GET")
            request.GET.update(call.params)
        if call.cookies:
            request.headers["Cookie"] = cookie_header(call.cookies)
        if name is not None:
            request.headers[HOLD_HEADER] = name
        request.environ.setdefault("REMOTE_ADDR", "127.0.0.1")
        return request

    def one(self, call: Call) -> Any:
        """Run ``call`` alone, unheld."""
        return self._request(call, None).get_response(self.app)

    def run(self, calls: Sequence[Call], order: Sequence[int] | None = None) -> list[Any]:
        """Run ``calls`` in parallel: all load, then each is released in ``order``
        (indexes into ``calls``; default: as given) and finishes before the next.

        Returns the responses, in the order of ``calls``.
        """
        order = list(range(len(calls))) if order is None else list(order)
        if sorted(order) != list(range(len(calls))):
            raise ValueError(f"order {order} is not a permutation of the {len(calls)} calls")
        self.rounds += 1
        names = [f"{self.rounds}-{index}" for index in range(len(calls))]
        responses: list[Any] = [None] * len(calls)
        errors: list[BaseException] = []

        def send(index: int) -> None:
            try:
                responses[index] = self._send(calls[index], names[index])
            except BaseException as exc:  # shown by the caller
                errors.append(exc)
                self._failed(names[index])

        for name in names:
            self._open(name)
        threads = [threading.Thread(target=send, args=(index,)) for index in range(len(calls))]
        for thread in threads:
            thread.start()
        try:
            for name in names:
                if not self._wait_loaded(name):
                    raise RuntimeError(f"request {name} never loaded its session")
            for index in order:
                self._release(names[index])
                threads[index].join(HANG_GUARD)
                if threads[index].is_alive():
                    raise RuntimeError(f"request {names[index]} never finished")
        finally:
            for name in names:
                self._release(name)
            for thread in threads:
                thread.join(HANG_GUARD)
        if errors:
            raise errors[0]
        return responses


class HttpResponse:
    """What :class:`HttpInterleaving` returns of one response."""

    def __init__(self, status: int, text: str, headerlist: list[tuple[str, str]]) -> None:
        self.status_int = status
        self.text = text
        self.headerlist = headerlist


class HttpInterleaving(Interleaving):
    """The same, over HTTP, against worker processes on ``ports`` whose apps
    hold at :class:`FileGates` in ``directory``: call ``i`` goes to
    ``ports[i % len(ports)]``."""

    def __init__(self, ports: Sequence[int], directory: str) -> None:
        from pathlib import Path

        self.ports = list(ports)
        self.directory = Path(directory)
        self.rounds = 0
        self.sent = 0

    def _send(self, call: Call, name: str | None) -> Any:
        import http.client
        from urllib.parse import urlencode

        port = self.ports[int(name.rsplit("-", 1)[1]) % len(self.ports)] if name else self.ports[0]
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=HANG_GUARD)
        path = call.path + ("?" + urlencode(call.params) if call.params else "")
        headers = {HOLD_HEADER: name} if name else {}
        if call.cookies:
            headers["Cookie"] = cookie_header(call.cookies)
        try:
            connection.request(call.method, path, headers=headers)
            response = connection.getresponse()
            text = response.read().decode()
            return HttpResponse(response.status, text, list(response.getheaders()))
        finally:
            connection.close()

    def one(self, call: Call) -> Any:
        return self._send(call, None)

    def _open(self, name: str) -> None:
        pass

    def _wait_loaded(self, name: str) -> bool:
        loaded = self.directory / f"loaded-{name}"
        deadline = time.monotonic() + HANG_GUARD
        while not loaded.exists():
            if time.monotonic() > deadline:
                return False
            time.sleep(FileGates.POLL)
        return True

    def _release(self, name: str) -> None:
        (self.directory / f"release-{name}").touch()

    def _failed(self, name: str) -> None:
        (self.directory / f"loaded-{name}").touch()


def set_cookies(response: Any) -> dict[str, str]:
    """The cookies a response sets, by name (a deletion as the empty value)."""
    cookies = {}
    for name, value in response.headerlist:
        if name.lower() == "set-cookie":
            cookie_name, _, rest = value.partition("=")
            cookies[cookie_name.strip()] = rest.split(";", 1)[0]
    return cookies
