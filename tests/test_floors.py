"""The package's floors, read from its source: no module over 600 lines, no
private name taken from another module, no two modules importing each other.

Function-level imports count, as a module's top-level ones do.  The layers
themselves (which floor may import which) are import-linter's contract in
pyproject.toml, run by ``make lint``; these hold what it does not say.
"""

import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

import pyramid_session_multi
from tests.support.floors import cycle_edges, cycles, read_package

PACKAGE = Path(pyramid_session_multi.__file__).parent

#: The most lines a module may have.
LONGEST = 600


@pytest.fixture(scope="module")
def modules():
    return read_package(PACKAGE)


def test_no_module_is_over_600_lines(modules):
    long = {name: module.lines for name, module in modules.items() if module.lines > LONGEST}
    assert long == {}


def test_the_import_contracts_let_no_import_through():
    """Every floor holds without exceptions: no contract ignores an import."""
    # the tree the suite runs from (the package itself may be an installed wheel)
    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    contracts = pyproject["tool"]["importlinter"]["contracts"]
    assert {contract["id"] for contract in contracts} >= {"floors", "acyclic"}
    ignored = {contract["id"]: contract.get("ignore_imports") for contract in contracts}
    assert ignored == {contract["id"]: None for contract in contracts}


def test_no_private_name_is_imported_across_modules(modules):
    taken = [
        f"{name} l.{line}: {source}.{private}"
        for name, module in modules.items()
        for line, source, private in module.private
    ]
    assert taken == []


def test_no_two_modules_import_each_other(modules):
    found = {" ".join(group): cycle_edges(modules, group) for group in cycles(modules)}
    assert found == {}


# -- the reader finds what it is meant to find ----------------------------------------------


def _package(tmp_path, files):
    root = tmp_path / "pkg"
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return read_package(root)


def test_a_function_level_import_closes_a_cycle(tmp_path):
    modules = _package(
        tmp_path,
        {
            "__init__.py": "",
            "low.py": "def late():\n    from .high import thing\n    return thing\n",
            "high.py": "from .low import late\nthing = 1\n",
        },
    )
    assert cycles(modules) == [["pkg.high", "pkg.low"]]
    assert cycle_edges(modules, ["pkg.high", "pkg.low"]) == [
        "pkg.high -> pkg.low (l.1)",
        "pkg.low -> pkg.high (l.2)",
    ]


def test_an_import_through_a_package_runs_its_init(tmp_path):
    modules = _package(
        tmp_path,
        {
            "__init__.py": "",
            "sub/__init__.py": "from .inner import x\n",
            "sub/inner.py": "x = 1\n",
            "sub/other.py": "from ..top import y\n",
            "top.py": "from .sub.inner import x\ny = x\n",
        },
    )
    # top imports sub (its __init__ runs), which imports nothing of top: no cycle
    assert cycles(modules) == []
    assert "pkg.sub" in modules["pkg.top"].imports
    # a sub-module importing its own package is not counted as a cycle
    assert "pkg.sub" not in modules["pkg.sub.other"].imports


def test_a_private_name_taken_from_another_module_is_found(tmp_path):
    modules = _package(
        tmp_path,
        {
            "__init__.py": "__version__ = '1'\n",
            "a.py": "_hidden = 1\nvisible = 2\n",
            "b.py": "from .a import _hidden, visible\nfrom . import __version__\n",
            "c.py": "from . import a\nvalue = a._hidden + a.visible\n",
        },
    )
    assert modules["pkg.b"].private == [(1, "pkg.a", "_hidden")]
    assert modules["pkg.c"].private == [(2, "pkg.a", "_hidden")]
    assert modules["pkg.a"].private == []


def test_a_module_is_measured_in_lines(tmp_path):
    modules = _package(tmp_path, {"__init__.py": "", "long.py": "x = 1\n" * (LONGEST + 1)})
    assert modules["pkg.long"].lines == LONGEST + 1


@pytest.mark.parametrize(
    "library", ["redis", "beaker", "sqlalchemy", "nacl", "pyramid_debugtoolbar", "psycopg"]
)
def test_the_package_imports_without_each_optional_library(library):
    # an extra's library is imported where a namespace uses it, never by the
    # package itself: a base install (no extras) imports and configures
    code = (
        f"import sys; sys.modules[{library!r}] = None\n"
        "import pyramid_session_multi, pyramid_session_multi.config\n"
        "import pyramid_session_multi.manager, pyramid_session_multi.scripts\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
