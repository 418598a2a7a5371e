"""The code the documentation shows runs: every example under docs/examples/."""

import importlib.util
import sys
from pathlib import Path

import pytest
import webtest

from tests.support.apps import set_cookie_names

DOCS = Path(__file__).resolve().parent.parent / "docs"
HTTPS = {"wsgi.url_scheme": "https", "HTTP_HOST": "localhost:443"}


def example(name):
    """The example's globals; it is imported as a real module (Pyramid looks it up)."""
    module_name = f"docs_example_{name}"
    spec = importlib.util.spec_from_file_location(module_name, DOCS / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return vars(module)


def test_no_python_block_escapes_the_examples():
    # Python shown in the docs comes from docs/examples/, which these tests run.
    for page in DOCS.rglob("*.rst"):
        assert ".. code-block:: python" not in page.read_text(), page


def test_registering():
    app = webtest.TestApp(example("registering")["main"]())
    assert app.get("/").json == {"theme": None, "secure": False}
    assert set_cookie_names(app.get("/")) == []
    assert app.get("/", extra_environ=HTTPS).json == {"theme": None, "secure": True}


def test_logout_deletes_the_cookie_the_client_holds():
    app = webtest.TestApp(example("logout")["main"]())
    assert set_cookie_names(app.post("/logout", status=303)) == []  # held nothing
    app.set_cookie("p", "garbage")
    response = app.post("/logout", status=303)
    assert set_cookie_names(response) == ["p"]
    assert "Max-Age=0" in response.headers["Set-Cookie"]


def test_csrf_token_lives_in_the_namespace():
    app = webtest.TestApp(example("csrf")["main"]())
    response = app.get("/form")
    assert set_cookie_names(response) == ["acct"]
    token = response.json["token"]
    app.post("/form", status=400)
    assert app.post("/form", headers={"X-CSRF-Token": token}).json == {"saved": True}


@pytest.mark.parametrize("name", ["test_greeting_counts_visits"])
def test_unit_testing_example(name):
    example("unit_testing")[name]()


def test_unit_testing_example_with_the_fixture(session_multi_request):
    example("unit_testing")["test_greeting_with_the_fixture"](session_multi_request)


def test_the_settings_example_runs(tmp_path, monkeypatch):
    page = (DOCS / "narr" / "settings.rst").read_text()
    block = page.split(".. code-block:: ini\n\n", 1)[1]
    settings = {}
    for line in block.splitlines():
        if line and not line.startswith("   "):
            break  # the end of the indented block
        if line.strip():
            key, _, value = line.strip().partition(" = ")
            settings[key] = value.replace("%(here)s", str(tmp_path))
    monkeypatch.setenv("PREFS_SECRET", "prefs-secret-of-32-bytes-or-more!")
    monkeypatch.setenv("ACCOUNT_SECRET", "account-secret-of-32-bytes-or-more")
    from tests.support.apps import build_wsgi

    app = webtest.TestApp(build_wsgi(settings=settings, include=False))
    for namespace, cookie in (("prefs", "prefs"), ("account", "account")):
        response = app.post(f"/s/{namespace}", {"value": "x"})
        assert set_cookie_names(response) == [cookie]
        assert app.get(f"/s/{namespace}").json["value"] == "x"


def test_every_check_id_is_documented_and_every_documented_id_exists():
    import re

    import pyramid_session_multi.checks as checks

    documented = set(
        re.findall(r"^(psm\.[EWI]\d{3}) ", (DOCS / "narr" / "cookies.rst").read_text(), re.M)
    )
    source = Path(checks.__file__).read_text()
    emitted = set(re.findall(r'"(psm\.[EWI]\d{3})"', source))
    assert documented == emitted and len(emitted) == 10


def test_login_rotates_binds_and_logout_invalidates(redis_db):
    app = webtest.TestApp(example("login")["main"](redis_url=redis_db))
    app.post("/cart", {"item": "book"})
    anonymous = app.cookies["acct"]  # a fixation attacker could have planted it
    app.post("/login", {"username": "alice"}, status=303)
    assert app.cookies["acct"] != anonymous  # rotated at login, data kept
    app.post("/admin")
    assert app.get("/whoami").json == {"userid": "alice", "cart": "book", "admin": True}
    planted = webtest.TestApp(app.app)
    planted.set_cookie("acct", anonymous)
    assert planted.get("/whoami").json == {"userid": None, "cart": None, "admin": False}
    # alice's admin cookie does not make mallory an admin
    mallory = webtest.TestApp(app.app)
    mallory.post("/login", {"username": "mallory"}, status=303)
    mallory.set_cookie("adm", app.cookies["adm"])
    assert mallory.get("/whoami").json["admin"] is False
    app.post("/logout", status=303)
    assert app.get("/whoami").json == {"userid": None, "cart": None, "admin": False}
