"""The README's quickstart runs as written (with the test Redis)."""

from pathlib import Path

import webtest

from tests.support.apps import set_cookie_names

README = Path(__file__).resolve().parent.parent / "README.rst"


def quickstart_code():
    text = README.read_text()
    section = text[text.index("Quickstart\n") :]
    block = section[section.index(".. code-block:: python") :].split("\n\n", 1)[1]
    lines = []
    for line in block.splitlines():
        if line and not line.startswith("   "):
            break
        lines.append(line[3:])
    return "\n".join(lines)


def test_quickstart(redis_db):
    code = quickstart_code().replace("redis://127.0.0.1:6379/0", redis_db)
    namespace = {}
    exec(compile(code, str(README), "exec"), namespace)
    app = webtest.TestApp(namespace["main"]({}))
    response = app.get("/")
    assert response.json == {"user": None, "https": False}
    assert set_cookie_names(response) == ["prefs"]
    https = app.get("/", extra_environ={"wsgi.url_scheme": "https", "HTTP_HOST": "localhost:443"})
    assert https.json["https"] is True
