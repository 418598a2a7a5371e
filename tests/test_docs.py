"""The documentation holds: it builds nitpicky, and every piece of code it shows runs.

The examples under docs/examples/ are run for what they claim; every Python
block of the built pages and of the README is run as a reader who copies it
would, unless it is marked as an excerpt of a complete example the page
offers for download.
"""

import configparser
import importlib.util
import io
import json
import re
import shlex
import subprocess
import sys
import types
from pathlib import Path

import pytest
import webtest

from tests.support.apps import set_cookie_names
from tests.support.docs import (
    DOCS,
    PYTHON_LANGUAGES,
    README,
    UNNAMED_LANGUAGE,
    CodeBlock,
    build_html,
    built_pages,
    html_code_blocks,
    in_order,
    readme_code_blocks,
    undefined_names,
)

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


EXAMPLES_WITH_AN_APP = ("registering", "login", "logout", "csrf", "fallbacks", "lifetimes")
EXAMPLES_WITH_AN_APP += ("scaling", "testing_timeouts", "partitioned", "load_step", "devices")
EXAMPLES_WITH_AN_APP += ("parallel",)


def test_every_example_with_an_app_is_listed_for_the_deploy_check():
    with_main = {
        path.stem for path in (DOCS / "examples").glob("*.py") if "\ndef main(" in path.read_text()
    }
    assert with_main == set(EXAMPLES_WITH_AN_APP)


@pytest.mark.parametrize("name", EXAMPLES_WITH_AN_APP)
def test_every_example_passes_the_deploy_check_without_a_warning(name, tmp_path, monkeypatch):
    # loaded from an ini that gives no setting: each example needs none it does not name
    from pyramid_session_multi.scripts.psessions import main as psessions

    monkeypatch.syspath_prepend(str(DOCS / "examples"))
    ini = tmp_path / "example.ini"
    ini.write_text(f"[app:main]\nuse = call:{name}:main\n")
    out, err = io.StringIO(), io.StringIO()
    status = psessions(["--check", "--format", "json", str(ini)], out=out, err=err)
    assert status == 0, err.getvalue() + out.getvalue()
    findings = json.loads(out.getvalue())
    assert [f for f in findings if f["level"] != "info"] == []


def test_csrf_token_lives_in_the_namespace():
    app = webtest.TestApp(example("csrf")["main"](), extra_environ=HTTPS)
    response = app.get("/form")
    assert set_cookie_names(response) == ["acct"]
    token = response.json["token"]
    same_origin = {"Origin": "https://localhost"}  # Pyramid checks it over https
    app.post("/form", headers=same_origin, status=400)
    headers = {**same_origin, "X-CSRF-Token": token}
    assert app.post("/form", headers=headers).json == {"saved": True}


@pytest.mark.parametrize(
    "name", ["test_greeting_counts_visits", "test_logout_empties_every_namespace"]
)
def test_unit_testing_example(name):
    example("unit_testing")[name]()


@pytest.mark.parametrize("name", ["test_greeting_with_the_fixture", "test_logout_with_the_fixture"])
def test_unit_testing_example_with_the_fixture(session_multi_request, name):
    example("unit_testing")[name](session_multi_request)


def test_the_timeout_testing_example_runs():
    example("testing_timeouts")["test_a_session_idle_for_longer_than_its_timeout_is_over"]()


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
    assert documented == emitted and emitted


def test_login_rotates_binds_and_logout_invalidates(redis_db):
    app = webtest.TestApp(example("login")["main"](redis_url=redis_db), extra_environ=HTTPS)
    app.post("/cart", {"item": "book"})
    anonymous = app.cookies["acct"]  # a fixation attacker could have planted it
    app.post("/login", {"username": "alice"}, status=303)
    assert app.cookies["acct"] != anonymous  # rotated at login, data kept
    app.post("/admin")
    assert app.get("/whoami").json == {"userid": "alice", "cart": "book", "admin": True}
    planted = webtest.TestApp(app.app, extra_environ=HTTPS)
    planted.set_cookie("acct", anonymous)
    assert planted.get("/whoami").json == {"userid": None, "cart": None, "admin": False}
    # alice's admin cookie does not make mallory an admin
    mallory = webtest.TestApp(app.app, extra_environ=HTTPS)
    mallory.post("/login", {"username": "mallory"}, status=303)
    mallory.set_cookie("adm", app.cookies["adm"])
    assert mallory.get("/whoami").json["admin"] is False
    app.post("/logout", status=303)
    assert app.get("/whoami").json == {"userid": None, "cart": None, "admin": False}


# The built documentation -------------------------------------------------


@pytest.fixture(scope="module")
def built_html(tmp_path_factory):
    """The HTML docs, built once for this module as CI and Read the Docs build them."""
    # The nox "docs" session runs these; the wheel sessions have no Sphinx.
    pytest.importorskip("sphinx", reason="the docs extra is not installed")
    pytest.importorskip("repoze.sphinx.autointerface", reason="the docs extra is not installed")
    return build_html(tmp_path_factory.mktemp("docs"))


def run_as_a_reader_would(block: CodeBlock, text: str | None = None) -> None:
    """Compile ``block``, check every name it uses is defined, and run it as a module."""
    text = block.text if text is None else text
    code = compile(text, block.where, "exec")
    assert not undefined_names(text, block.where), (
        f"{block.where} uses names it does not define or import: "
        f"{sorted(undefined_names(text, block.where))}"
    )
    module = types.ModuleType("copied_from_the_docs")
    exec(code, vars(module))


def python_blocks(blocks):
    return [block for block in blocks if block.language in PYTHON_LANGUAGES]


def test_the_docs_build_nitpicky_without_a_warning(built_html):
    assert (built_html / "index.html").is_file()


def test_every_python_block_of_the_pages_runs_or_is_a_marked_excerpt(built_html):
    checked = excerpts = 0
    for page in built_pages(built_html):
        blocks = html_code_blocks(page)
        if page.name != "api.html":
            # a reader should not have to guess whether a block is Python
            unnamed = [block.where for block in blocks if block.language == UNNAMED_LANGUAGE]
            assert not unnamed, f"give these blocks a language: {unnamed}"
        for block in python_blocks(blocks):
            if page.name == "api.html":
                # docstring snippets: the reference shows them in context
                compile(block.text, block.where, "exec")
            elif block.is_excerpt:
                assert block.download is not None and block.download.is_file(), (
                    f"{block.where}: an excerpt must link the complete example to download"
                )
                whole = block.download.read_text()
                assert in_order(block.text, whole), f"{block.where} is not in {block.download}"
                run_as_a_reader_would(block, whole)
                excerpts += 1
            else:
                run_as_a_reader_would(block)
                checked += 1
    assert checked >= 5 and excerpts >= 3, (checked, excerpts)


def test_every_python_block_of_the_readme_runs(monkeypatch):
    for name in ("PREFS_SECRET", "ACCOUNT_SECRET", "SECURE_SECRET"):
        monkeypatch.setenv(name, f"{name.lower()}-for-the-test-of-32-bytes-or-more")
    blocks = python_blocks(readme_code_blocks())
    assert blocks
    for block in blocks:
        run_as_a_reader_would(block)


def test_links_reach_pyramid_webob_and_python(built_html):
    pages = "".join(page.read_text() for page in built_pages(built_html))
    pyramid = "https://docs.pylonsproject.org/projects/pyramid/en/latest/api/"
    for target in (
        f"{pyramid}config.html#pyramid.config.Configurator",
        f"{pyramid}interfaces.html#pyramid.interfaces.ISession",
        f"{pyramid}request.html#pyramid.request.Request",
        "https://docs.pylonsproject.org/projects/webob/en/stable/api/",
        "https://docs.python.org/3/library/collections.abc.html#collections.abc.Mapping",
    ):
        assert f'href="{target}' in pages, target


def documented_ids(built_html):
    return set(re.findall(r'<dt class="sig sig-object py" id="([^"]+)"', api_page(built_html)))


def api_page(built_html):
    return (built_html / "api.html").read_text()


def test_the_api_page_documents_the_interfaces_and_the_public_names(built_html):
    import pyramid_session_multi
    from pyramid_session_multi import interfaces

    ids = documented_ids(built_html)
    for name in dir(interfaces):
        if name.startswith("I") and name != "Interface":
            assert f"pyramid_session_multi.interfaces.{name}" in ids, name
    assert "pyramid_session_multi.interfaces.ISessionLibrary.rotate" in ids
    for name in pyramid_session_multi.__all__:
        documented = f"pyramid_session_multi.{name}" in ids
        assert documented or f"pyramid_session_multi.interfaces.{name}" in ids, name
    # internals do not appear as API
    for internal in ("manager_class_for", "setup_manager_config", "NamespaceRecorder", "configs"):
        assert not any(i.endswith(f".{internal}") for i in ids), internal


def test_every_api_entry_has_a_docstring(built_html):
    empty = re.findall(
        r'<dt class="sig sig-object py" id="([^"]+)">(?:(?!</dt>).)*</dt>\s*<dd>\s*</dd>',
        api_page(built_html),
        re.S,
    )
    assert not empty, f"documented without a docstring: {empty}"


def test_the_top_level_namespace_holds_the_public_api_only():
    import pyramid_session_multi

    public = {
        name
        for name, value in vars(pyramid_session_multi).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == set(pyramid_session_multi.__all__)


def test_every_install_command_installs_this_release_from_the_checkout():
    # the package index serves 0.4 until 1.0 is released: never install by name
    texts = {README: README.read_text()}
    texts.update({page: page.read_text() for page in DOCS.rglob("*.rst")})
    commands = []
    for path, text in texts.items():
        for command in re.findall(r"pip\s+install [^`\n]*", text):
            commands.append(command)
            assert "pyramid_session_multi" not in command, (path, command)
            if "[" in command:
                assert re.search(r'"\.\[[a-z,]+\]"', command), (path, command)
    assert any('".[redis]"' in command for command in commands)


def _first_install_command(text):
    (command,) = re.findall(r"^   (pip install .*)$", text, re.M)[:1]
    return shlex.split(command)


@pytest.mark.parametrize("page", ["README.rst", "docs/narr/quickstart.rst"])
def test_the_first_install_command_installs_this_release(page, tmp_path):
    import importlib.metadata

    argv = _first_install_command((DOCS.parent / page).read_text())
    assert argv[:2] == ["pip", "install"], argv
    report = tmp_path / "report.json"
    # as a reader runs it in the checkout; resolved, not installed
    result = subprocess.run(
        [
            *(sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps", "--quiet"),
            *("--report", str(report), *argv[2:]),
        ],
        cwd=DOCS.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    (installed,) = json.loads(report.read_text())["install"]
    assert installed["metadata"]["name"] == "pyramid_session_multi"
    assert installed["metadata"]["version"] == importlib.metadata.version("pyramid_session_multi")
    assert installed["requested_extras"] == ["debugtoolbar"]


def test_the_psessions_page_names_every_column():
    from pyramid_session_multi.scripts.psessions import HEADERS

    page = (DOCS / "narr" / "psessions.rst").read_text()
    for column, header in HEADERS.items():
        assert f"``{column}``" in page, column
        assert f"``{header}``" in page or header.lower() == column, column


def test_registering_without_the_include_raises_what_the_docs_say():
    from pyramid.config import Configurator
    from pyramid.session import SignedCookieSessionFactory

    from pyramid_session_multi import NotIncludedError, register_session_factory

    factory = SignedCookieSessionFactory("a-secret-of-at-least-32-bytes-long", cookie_name="p")
    config = Configurator()
    with pytest.raises(AttributeError) as directive:
        config.register_session_factory("prefs", factory)
    assert not isinstance(directive.value, NotIncludedError)
    with pytest.raises(
        NotIncludedError, match=re.escape('config.include("pyramid_session_multi")')
    ):
        register_session_factory(config, "prefs", factory)
    page = " ".join((DOCS / "narr" / "registering.rst").read_text().split())
    assert "raises Pyramid's own ``AttributeError: register_session_factory``" in page
    assert "raises :class:`~pyramid_session_multi.NotIncludedError`" in page


def test_the_metadata_points_at_the_docs_host_and_at_no_other_project():
    root = DOCS.parent
    setup = configparser.ConfigParser()
    setup.read(root / "setup.cfg")
    urls = dict(
        line.split(" = ", 1) for line in setup["metadata"]["project_urls"].strip().splitlines()
    )
    assert urls["Documentation"] == "https://pyramid-session-multi.readthedocs.io/"
    for path in (root / "setup.cfg", README):
        assert "jvanasco" not in path.read_text(), path


def test_read_the_docs_builds_from_pinned_requirements_with_a_pinned_python():
    root = DOCS.parent
    config = (root / ".readthedocs.yaml").read_text()
    assert re.search(r'^\s+python: "3\.\d+"$', config, re.M)
    assert "configuration: docs/conf.py" in config and "fail_on_warning: true" in config
    assert "requirements: docs/requirements.txt" in config
    pins = {}
    for line in (DOCS / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"not pinned: {line}"
            pins[name] = version
    setup = configparser.ConfigParser()
    setup.read(root / "setup.cfg")
    for requirement in setup["options.extras_require"]["docs"].split("\n"):
        requirement = requirement.split("#", 1)[0].strip()
        if requirement:
            name = re.split(r"[<>=~!\[ ]", requirement, maxsplit=1)[0]
            assert name.lower().replace(".", "-") in pins, name


def test_the_fallbacks_example_moves_a_session_signed_with_the_old_secret():
    from tests.support.apps import build_wsgi

    module = example("fallbacks")
    old_factory = module["prefs_factory"](module["OLD_SECRET"])
    # a client whose cookie the old secret signed, before the change
    client = webtest.TestApp(
        build_wsgi(lambda config: config.register_session_factory("prefs", old_factory))
    )
    client.post("/s/prefs", {"value": "dark"}, extra_environ=HTTPS)
    cookie = client.cookies["prefs"]
    client.app = module["main"]()
    client.get("/", extra_environ=HTTPS)  # the first request under the new secret
    client.app = build_wsgi(
        lambda config: config.register_session_factory(
            "prefs", module["prefs_factory"](module["NEW_SECRET"])
        )
    )
    # the example wrote it again under the new secret
    assert client.cookies["prefs"] != cookie
    assert client.get("/s/prefs", extra_environ=HTTPS).json["value"] == "dark"


def test_the_load_step_example_starts_an_account_afresh_on_another_host():
    from pyramid_session_multi.config import get_manager_config

    module = example("load_step")
    wsgi = module["main"]()
    here = {"wsgi.url_scheme": "https", "HTTP_HOST": "a.example:443"}
    there = {"wsgi.url_scheme": "https", "HTTP_HOST": "b.example:443"}
    client = webtest.TestApp(wsgi)
    assert client.get("/", extra_environ=here).json == {"made on": "a.example:443"}
    cookie = f"account={client.cookies['account']}"
    # the same cookie, brought back to its host and carried to another
    again = webtest.TestApp(wsgi).get("/", headers={"Cookie": cookie}, extra_environ=here)
    assert again.json == {"made on": "a.example:443"}
    moved = webtest.TestApp(wsgi).get("/", headers={"Cookie": cookie}, extra_environ=there)
    assert moved.json == {"made on": "b.example:443"}
    # only the namespace the check applies to runs it, as the page shows
    configs = get_manager_config(wsgi.registry).configs
    assert {name: configs[name].steps for name in configs} == {
        "account": ("made_here",),
        "prefs": (),
    }


def test_the_extending_page_shows_what_psessions_prints_for_its_example(monkeypatch, tmp_path):
    from pyramid_session_multi.scripts.psessions import main as psessions

    monkeypatch.syspath_prepend(str(DOCS / "examples"))
    ini = tmp_path / "example.ini"
    ini.write_text("[app:main]\nuse = call:load_step:main\n")
    out, err = io.StringIO(), io.StringIO()
    status = psessions([str(ini), "--columns", "namespace,cookie_name,steps"], out=out, err=err)
    assert status == 0, err.getvalue()
    page = (DOCS / "narr" / "extending.rst").read_text()
    shown = [line.strip() for line in out.getvalue().splitlines()]
    assert all(f"   {line}\n" in page for line in shown if line), (shown, page)


def test_the_partitioned_example_sends_a_partitioned_cookie_and_passes_the_checks():
    from pyramid_session_multi.checks import run_checks
    from pyramid_session_multi.config import get_manager_config

    wsgi = example("partitioned")["main"]()
    app = webtest.TestApp(wsgi, extra_environ=HTTPS)
    header = app.get("/").headers["Set-Cookie"]
    assert header.startswith("__Host-embed=") and header.endswith("; Partitioned")
    assert app.get("/").json == {"visits": 2}
    findings = run_checks(get_manager_config(wsgi.registry))
    assert [f.id for f in findings] == ["psm.I001"]  # client-side, on purpose


def _extras():
    from packaging.requirements import Requirement

    setup = configparser.ConfigParser()
    setup.read(DOCS.parent / "setup.cfg")
    declared = {"": setup["options"]["install_requires"]}
    declared.update(setup["options.extras_require"])
    return {
        extra: {
            Requirement(line).name.lower().replace("_", "-")
            for line in text.splitlines()
            if line.strip() and not line.strip().startswith("#")
        }
        for extra, text in declared.items()
    }


def test_every_package_the_add_on_imports_is_declared_by_the_extra_that_needs_it():
    import ast
    import importlib.metadata

    distributions = importlib.metadata.packages_distributions()
    imported = set()
    for path in (DOCS.parent / "pyramid_session_multi").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module)
    # a namespace package (zope.interface) by its two first parts
    imported = {
        ".".join(name.split(".")[:2]) if name.startswith("zope.") else name.split(".")[0]
        for name in imported
    }
    third_party = {
        name
        for name in imported
        if name not in sys.stdlib_module_names
        # the pytest plugin runs inside the application's own pytest
        and name not in ("pyramid_session_multi", "pytest")
    }
    extras = _extras()
    for name in sorted(third_party):
        top = name.split(".")[0]
        (distribution,) = {
            d.lower().replace("_", "-")
            for d in distributions[top]
            if top != "zope" or d.lower() == name
        }
        users = [extra for extra, names in extras.items() if distribution in names]
        assert set(users) - {"testing", "docs"}, (name, distribution, users)
    # the imports of the optional features, by the extra a user installs for them
    assert "redis" in extras["redis"] and "sqlalchemy" in extras["sql"]


def test_make_docs_installs_the_docs_extra_only(tmp_path):
    result = subprocess.run(
        ["make", "--no-print-directory", "-n", "docs", f"VENV={tmp_path / 'venv'}"],
        cwd=DOCS.parent,
        capture_output=True,
        text=True,
        check=True,
    )
    installs = [line for line in result.stdout.splitlines() if "pip install" in line]
    assert installs[-1].endswith("pip install --quiet -e '.[docs]'"), installs
    assert not any("testing" in line or "demo_app" in line for line in installs), installs
    assert "sphinx-build" in result.stdout.splitlines()[-1]


def test_the_parallel_example_merges_its_cart_with_its_on_conflict(redis_db, monkeypatch):
    from pyramid_session_multi.config import get_manager_config

    monkeypatch.setenv("REDIS_URL", redis_db)
    parallel = example("parallel")
    wsgi = parallel["main"]()
    cart = get_manager_config(wsgi.registry).get("cart")
    assert cart.merge_policy.on_conflict is parallel["merge_carts"]
    app = webtest.TestApp(wsgi, extra_environ=HTTPS)
    app.get("/add", {"item": "tea"})
    assert app.get("/add", {"item": "milk"}).json == {"items": ["tea", "milk"]}
    merge_carts = parallel["merge_carts"]
    # two requests that loaded ["tea"] each added an item: both are kept
    assert merge_carts("items", ["tea"], ["tea", "milk"], ["tea", "jam"]) == ["tea", "jam", "milk"]
    assert merge_carts("items", parallel["MISSING"], ["milk"], ["jam"]) == ["jam", "milk"]
    assert merge_carts("theme", "a", "b", "c") == "b"


def test_the_settings_reference_lists_every_key():
    import inspect

    from pyramid.session import SignedCookieSessionFactory
    from pyramid_nacl_session import EncryptedCookieSessionFactory
    from pyramid_session_redis import RedisSessionFactory

    from pyramid_session_multi.settings import (
        ADDON_KEYS,
        FALLBACK_PREFIX,
        GLOBAL_KEYS,
    )
    from pyramid_session_multi.settings.kinds import BEAKER_OWN_OPTIONS
    from pyramid_session_multi.stores.redis import TOPOLOGY_OPTIONS

    page = (DOCS / "narr" / "settings_reference.rst").read_text()
    keys = set(re.findall(r"^   \* - ``(session_multi\.[^`]+)``", page, re.M))
    for key in GLOBAL_KEYS:
        assert f"session_multi.{key}" in keys, key
    for option in [*ADDON_KEYS, "cookie_name", FALLBACK_PREFIX + "OPTION"]:
        assert f"session_multi.NS.{option}" in keys, option

    def parameters(func):
        return set(inspect.signature(func).parameters) - {"self", "request", "namespace_args"}

    from beaker.session import Session

    library_options = (
        parameters(SignedCookieSessionFactory)
        | parameters(EncryptedCookieSessionFactory)
        | parameters(RedisSessionFactory)
        | TOPOLOGY_OPTIONS
        | parameters(Session.__init__)
        | BEAKER_OWN_OPTIONS
    ) - {"cookie_name", "id", "namespace_class"}
    # pyramid_session_redis before 1.8 also takes these deprecated aliases of its redis_* options
    library_options -= {"client_callable", "db", "host", "password", "port", "url"}
    for option in sorted(library_options):
        assert f"session_multi.NS.{option}" in keys, option
    # and every page that explains settings links to it
    for name in ("settings", "lifetimes", "fallbacks", "scaling", "deploying", "cookies"):
        assert ":doc:`settings_reference`" in (DOCS / "narr" / f"{name}.rst").read_text(), name


def test_the_devices_example_lists_a_users_devices_and_ends_one(redis_db):
    import re

    app = example("devices")["main"](redis_url=redis_db, **{"session_multi.revocations": redis_db})
    laptop = webtest.TestApp(app, extra_environ={**HTTPS, "HTTP_USER_AGENT": "Laptop"})
    phone = webtest.TestApp(app, extra_environ={**HTTPS, "HTTP_USER_AGENT": "Phone <b>"})
    mallory = webtest.TestApp(app, extra_environ={**HTTPS, "HTTP_USER_AGENT": "Mallory"})
    for client, userid in ((laptop, "alice"), (phone, "alice"), (mallory, "mallory")):
        client.post("/login", {"userid": userid})
    page = laptop.get("/devices").text
    assert "this device" in page and "Phone &lt;b&gt;" in page and "<b>" not in page
    ids = re.findall(r'name="id" value="([0-9a-f]+)"', page)
    assert len(ids) == 2
    phone_id = ids[0]  # the latest login first
    # an id of another user's device is refused, and ends nothing
    mallory.post("/devices/end", {"id": phone_id}, status=403)
    assert phone.get("/devices").status_int == 200
    laptop.post("/devices/end", {"id": phone_id})
    phone.get("/devices", status=403)
    assert laptop.get("/devices").text.count('name="id"') == 1
