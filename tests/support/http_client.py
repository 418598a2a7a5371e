"""A small HTTP client with its own cookie jar, and worker processes."""

import http.client
import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

#: The directory holding tests/ (a checkout, or a copy of one without the package).
ROOT = Path(__file__).resolve().parents[2]


class CookieClient:
    """Talks to one loopback server, keeping the cookies it is sent."""

    def __init__(self, port: int, timeout: float = 10) -> None:
        self.port = port
        self.timeout = timeout
        self.cookies: dict[str, str] = {}

    def request(
        self, method: str, path: str, params: dict | None = None, port: int | None = None
    ) -> tuple[int, Any, list[str]]:
        connection = http.client.HTTPConnection(
            "127.0.0.1", port or self.port, timeout=self.timeout
        )
        headers = {}
        body = None
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if params is not None:
            body = urlencode(params)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
            set_cookies = response.headers.get_all("Set-Cookie") or []
        finally:
            connection.close()
        for header in set_cookies:
            name, _, rest = header.strip().partition("=")
            value = rest.split(";", 1)[0]
            if value and "max-age=0" not in rest.lower():
                self.cookies[name] = value
            else:
                self.cookies.pop(name, None)
        try:
            payload = json.loads(data)
        except ValueError:
            payload = data.decode("utf-8", "replace")
        return response.status, payload, set_cookies

    def get(self, path: str, port: int | None = None) -> tuple[int, Any, list[str]]:
        return self.request("GET", path, port=port)

    def post(self, path: str, params: dict, port: int | None = None) -> tuple[int, Any, list[str]]:
        return self.request("POST", path, params, port=port)


def wait_for_port(port: int, process: subprocess.Popen | None = None, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server on port {port} exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), 0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {seconds}s")


def start_worker(module: str, port: int, *args: str) -> subprocess.Popen:
    """``python -m module --port port args...`` from the checkout's root."""
    process = subprocess.Popen(
        [sys.executable, "-m", module, "--port", str(port), *args], cwd=str(ROOT)
    )
    try:
        wait_for_port(port, process)
    except Exception:
        process.kill()
        raise
    return process


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)
