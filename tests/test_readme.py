"""The README's quickstart is a good app: it runs, it checks clean, and it serves as told."""

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import webtest

from tests.support.apps import set_cookie_names
from tests.support.docs import readme_code_blocks
from tests.support.http_client import wait_for_port

SECRETS = ("PREFS_SECRET", "ACCOUNT_SECRET", "SECURE_SECRET")


def readme_block(language):
    """The README's one block in ``language`` (its quickstart's ``myapp.py`` or ini)."""
    (block,) = (block for block in readme_code_blocks() if block.language == language)
    return block.text


def secrets_env():
    return {name: f"{name.lower()}-for-the-readme-test-0123456789" for name in SECRETS}


@pytest.fixture
def readme_app_dir(tmp_path):
    """``myapp.py`` and ``development.ini`` saved from the README, as it says to."""
    (tmp_path / "myapp.py").write_text(readme_block("python"))
    (tmp_path / "development.ini").write_text(readme_block("ini"))
    return tmp_path


def script(name):
    return str(Path(sys.executable).parent / name)


def test_quickstart(redis_db, monkeypatch):
    for name, value in secrets_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("REDIS_URL", redis_db)
    namespace = {}
    exec(compile(readme_block("python"), "README.rst", "exec"), namespace)
    app = webtest.TestApp(namespace["main"]({}))
    response = app.get("/")
    assert response.json == {"user": None, "https": False}
    assert set_cookie_names(response) == ["prefs"]
    https = app.get("/", extra_environ={"wsgi.url_scheme": "https", "HTTP_HOST": "localhost:443"})
    assert https.json["https"] is True


def test_the_quickstart_takes_every_secret_from_the_environment(monkeypatch):
    for name in SECRETS:
        monkeypatch.delenv(name, raising=False)
    namespace = {}
    exec(compile(readme_block("python"), "README.rst", "exec"), namespace)
    with pytest.raises(KeyError, match="PREFS_SECRET"):
        namespace["main"]({})


def test_psessions_check_on_the_readme_app_warns_of_nothing(readme_app_dir):
    # as the README runs it: PYTHONPATH=. psessions --check development.ini
    result = subprocess.run(
        [script("psessions"), "--check", "development.ini", "--format", "json"],
        capture_output=True,
        text=True,
        cwd=readme_app_dir,
        env={**os.environ, **secrets_env(), "PYTHONPATH": "."},
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    findings = json.loads(result.stdout)
    assert [(f["id"], f["namespace"]) for f in findings] == [
        ("psm.I001", "prefs"),
        ("psm.I001", "secure"),
    ]


def test_pserve_serves_the_readme_app(readme_app_dir, redis_db):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ini = readme_app_dir / "development.ini"
    text = ini.read_text()
    assert "use = egg:waitress#main" in text and "listen = localhost:6543" in text
    ini.write_text(text.replace("localhost:6543", f"127.0.0.1:{port}"))
    process = subprocess.Popen(
        [script("pserve"), "development.ini"],
        cwd=readme_app_dir,
        env={**os.environ, **secrets_env(), "PYTHONPATH": ".", "REDIS_URL": redis_db},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for_port(port, process)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
            assert json.load(response) == {"user": None, "https": False}
            assert "prefs=" in response.headers["Set-Cookie"]
    finally:
        process.terminate()
        process.wait(timeout=20)
        process.stderr.close()


def test_the_readme_renders_without_a_warning():
    # the package index shows it: a malformed table is an error there
    import io

    from docutils.core import publish_doctree

    from tests.support.docs import README

    warnings = io.StringIO()
    publish_doctree(
        README.read_text(), settings_overrides={"warning_stream": warnings, "report_level": 2}
    )
    assert warnings.getvalue() == ""
