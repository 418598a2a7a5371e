"""Every check CI runs, as nox sessions: ``make test`` runs them all.

The test sessions install what ships, never the checkout: the wheel built
from this tree (or from the sdist), into a fresh virtualenv, and run the
suite from a copy of the tree that has no ``pyramid_session_multi/`` in it,
so an import can only find the installed package.

    nox -l                  # the sessions
    nox -s tests-3.12       # one of them
"""

import email.parser
import glob
import json
import os
import shutil
import sys
import tarfile
import zipfile
from pathlib import Path

import nox
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent
PYTHONS = ["3.11", "3.12", "3.13"]
OLDEST = PYTHONS[0]

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = False
nox.options.error_on_missing_interpreters = True


def _find_interpreters() -> None:
    # pyenv keeps each version in its own directory, behind shims that only
    # answer for the global version: put the real directories on PATH.
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    extra = [str(path) for path in sorted(pyenv.glob("3.*/bin")) if path.is_dir()]
    if extra:
        os.environ["PATH"] = os.pathsep.join([*extra, os.environ.get("PATH", "")])


_find_interpreters()


def _build(session: nox.Session, *kinds: str, source: Path = ROOT) -> Path:
    """Build ``kinds`` (--sdist, --wheel) from ``source`` into a fresh dir."""
    out = Path(session.create_tmp()) / "dist"
    shutil.rmtree(out, ignore_errors=True)
    session.run("uv", "build", "--quiet", *kinds, "--out-dir", str(out), str(source), external=True)
    return out


def _one(pattern: str) -> str:
    (found,) = glob.glob(pattern)
    return found


def _tree_without_package(source: Path, session: nox.Session) -> Path:
    """A copy of ``source`` to run the suite from, minus the package itself."""
    copy = Path(session.create_tmp()) / "tree"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(
        source,
        copy,
        ignore=shutil.ignore_patterns(
            "pyramid_session_multi",
            ".git",
            ".venv",
            ".nox",
            "dist",
            "build",
            "*.egg-info",
            "__pycache__",
            ".pytest_cache",
            ".mypy_cache",
            ".ruff_cache",
            "var",
        ),
    )
    return copy


def _run_suite(session: nox.Session, tree: Path, *pytest_args: str) -> None:
    session.chdir(str(tree))
    session.run(
        "python", "-m", "pytest", *pytest_args, *session.posargs, env={"PSM_EXPECT_INSTALLED": "1"}
    )


def _install_wheel(
    session: nox.Session, wheel: str, *uv_args: str, source: Path = ROOT, extras: str = "testing"
) -> None:
    # the demo is its own small distribution; the suite drives it too
    session.install(*uv_args, f"{wheel}[{extras}]", "-e", str(source / "demo_app"))


# The modules whose failure paths are security decisions: their branch
# coverage (branches alone, and lines and branches together) is measured and
# printed by the oldest Python's tests session, which fails below the floor of
# branches alone.
COVERED = [
    "pyramid_session_multi.lifecycle",
    "pyramid_session_multi.revocation",
    "pyramid_session_multi.binding",
    "pyramid_session_multi.cookies",
]
COVERAGE_FLOOR = 97

# The newest Python's tests session runs the suite in one shuffled order (every
# test among all the others, not only within its module): a test that depends
# on another's leftovers fails there. Seeded, so a failure can be run again;
# `nox -s tests-3.13 -- --random-order-seed=N` tries another order. Each test
# also starts 5 ms before a wall-clock second ends (tests/support/late_second.py):
# one that depends on where in the second it started fails there every time.
SHUFFLE = [
    "-p",
    "random_order",
    "--random-order-bucket=global",
    "--random-order-seed=35",
    "-p",
    "tests.support.late_second",
]


def _suite_args(python: object, coverage_report: Path) -> list[str]:
    if python == OLDEST:
        return [
            *(f"--cov={module}" for module in COVERED),
            "--cov-branch",
            "--cov-report=term-missing:skip-covered",
            f"--cov-report=json:{coverage_report}",
        ]
    if python == PYTHONS[-1]:
        return SHUFFLE
    return []


def _check_branch_coverage(session: nox.Session, coverage_report: Path) -> None:
    """Print the branch coverage of :data:`COVERED`; fail below the floor."""
    totals = json.loads(coverage_report.read_text())["totals"]
    branches = 100 * totals["covered_branches"] / max(totals["num_branches"], 1)
    session.log(
        f"branch coverage of {', '.join(COVERED)}: {branches:.2f}% of "
        f"{totals['num_branches']} branches ({totals['percent_covered']:.2f}% of "
        f"{totals['num_statements']} statements and the branches together)"
    )
    if branches < COVERAGE_FLOOR:
        session.error(f"branch coverage {branches:.2f}% is below {COVERAGE_FLOOR}%")


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The whole suite against the built wheel, with the newest dependencies.

    On the oldest Python, with the branch coverage of :data:`COVERED` printed
    (and a floor); on the newest, in a shuffled order, each test started late
    in a wall-clock second.
    """
    dist = _build(session, "--wheel")
    _install_wheel(session, _one(f"{dist}/*.whl"))
    coverage_report = Path(session.create_tmp()) / "coverage.json"
    coverage_report.unlink(missing_ok=True)
    tree = _tree_without_package(ROOT, session)
    _run_suite(session, tree, *_suite_args(session.python, coverage_report))
    if session.python == OLDEST:
        _check_branch_coverage(session, coverage_report)


# Built and tested at the newest releases by the docs session, not at floors.
UNFLOORED_EXTRAS = {"docs"}

# Pyramid 2.0 imports pkg_resources: setuptools 82 removed it, so the floors
# keep a setuptools that still has it (81 has it, but warns that it will go).
SETUPTOOLS_WITH_PKG_RESOURCES = "setuptools<82"


def _declared_floors(session: nox.Session, wheel: str) -> tuple[list[str], dict[str, str]]:
    """The extras to install and ``{name: floor}`` for every requirement in them.

    Read from the wheel's own metadata (``Requires-Dist``), so ``setup.cfg``
    stays the one place that names a floor: the floor is the version of a
    requirement's ``>=`` (or ``==`` / ``~=``) bound. A requirement without one,
    or a package given different floors in two extras, fails the session.
    """
    with zipfile.ZipFile(wheel) as archive:
        (name,) = (n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = email.parser.BytesParser().parsebytes(archive.read(name))
    extras = [e for e in metadata.get_all("Provides-Extra", []) if e not in UNFLOORED_EXTRAS]
    by_project: dict[str, str] = {}
    for line in metadata.get_all("Requires-Dist", []):
        requirement = Requirement(line)
        marker = requirement.marker
        if marker is not None and not any(marker.evaluate({"extra": e}) for e in ["", *extras]):
            continue
        bounds = [s.version for s in requirement.specifier if s.operator in (">=", "==", "~=")]
        if not bounds:
            session.error(f"{line!r} declares no floor: give it a >= bound in setup.cfg")
        floor = max(bounds, key=Version)
        project = canonicalize_name(requirement.name)
        if by_project.setdefault(project, floor) != floor:
            session.error(f"{project} has two floors, {by_project[project]} and {floor}")
    return extras, by_project


def _installed_versions(session: nox.Session) -> dict[str, str]:
    """``{name: version}`` of every distribution in the session's virtualenv."""
    found = Path(session.create_tmp()) / "installed.json"
    session.run(
        "python",
        "-c",
        "import importlib.metadata as m, json, sys; json.dump({d.name: d.version"
        " for d in m.distributions()}, open(sys.argv[1], 'w'))",
        str(found),
        silent=True,
    )
    return {canonicalize_name(k): v for k, v in json.loads(found.read_text()).items()}


@nox.session(python=OLDEST)
def floors(session: nox.Session) -> None:
    """The whole suite with every declared dependency at its declared floor.

    The floors are read from the built wheel's metadata: ``install_requires``
    and every extra but ``docs`` (the ``testing`` extra among them), each
    pinned with ``==floor`` as a constraint. The packages those pull in are
    the newest that they allow. The versions are printed, and the session fails
    before running the suite if any installed version is not its floor.
    """
    dist = _build(session, "--wheel")
    wheel = _one(f"{dist}/*.whl")
    extras, declared = _declared_floors(session, wheel)
    constraints = Path(session.create_tmp()) / "floors.txt"
    pins = [f"{project}=={floor}" for project, floor in sorted(declared.items())]
    constraints.write_text("\n".join([*pins, SETUPTOOLS_WITH_PKG_RESOURCES, ""]))
    _install_wheel(session, wheel, "-c", str(constraints), extras=",".join(extras))

    installed = _installed_versions(session)
    wrong = []
    session.log("declared dependencies: floor, installed")
    for project, floor in sorted(declared.items()):
        version = installed.get(project, "not installed")
        same = project in installed and Version(version) == Version(floor)
        session.log(f"  {project:24} {floor:14} {version}{'' if same else '   <- not the floor'}")
        if not same:
            wrong.append(f"{project} {version} (floor {floor})")
    others = sorted(f"{p}=={v}" for p, v in installed.items() if p not in declared)
    session.log("also installed: " + ", ".join(others))
    if wrong:
        session.error("not at the declared floor: " + "; ".join(wrong))

    _run_suite(
        session,
        _tree_without_package(ROOT, session),
        "-W",
        "ignore::DeprecationWarning",
        "-W",
        "ignore:pkg_resources is deprecated as an API:UserWarning",
    )


@nox.session(python=OLDEST)
def sdist(session: nox.Session) -> None:
    """The sdist: twine accepts it, and it builds and runs its own tests."""
    dist = _build(session, "--sdist", "--wheel")
    session.install("twine")
    session.run("twine", "check", "--strict", *glob.glob(f"{dist}/*"))
    unpacked = Path(session.create_tmp()) / "unpacked"
    shutil.rmtree(unpacked, ignore_errors=True)
    with tarfile.open(_one(f"{dist}/*.tar.gz")) as archive:
        archive.extractall(unpacked, filter="data")
    (source,) = unpacked.iterdir()
    from_sdist = _build(session, "--wheel", source=source)
    _install_wheel(session, _one(f"{from_sdist}/*.whl"), source=source)
    _run_suite(session, _tree_without_package(source, session))


@nox.session(python=OLDEST)
def lint(session: nox.Session) -> None:
    """ruff (lint and format), mypy --strict, and the floors.

    mypy sees the libraries the package imports where they are installed
    (redis, SQLAlchemy, the session libraries): the testing extra has them all.
    ``lint-imports`` holds the contracts of ``[tool.importlinter]`` in
    pyproject.toml: imports run downward floor by floor, and no two modules
    import each other (function-level imports count).
    """
    session.install("ruff>=0.6", "mypy>=1.8", "import-linter>=2.17", "-e", ".[testing]")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy", "--strict", "pyramid_session_multi")
    session.run("lint-imports", "--no-cache")


# the Python .readthedocs.yaml builds the documentation with
DOCS_PYTHON = "3.12"


@nox.session(python=DOCS_PYTHON)
def docs(session: nox.Session) -> None:
    """The documentation as Read the Docs builds it, then every code block it shows, run.

    The pinned ``docs/requirements.txt``, a nitpicky build with warnings as
    errors; then ``tests/test_docs.py`` and ``tests/test_readme.py``, which
    build it again and run each Python block of the pages and the README (the
    wheel sessions, without Sphinx, skip the tests that need the build).
    """
    session.install("-r", "docs/requirements.txt")
    session.install("-e", ".[testing]")
    out = Path(session.create_tmp()) / "html"
    shutil.rmtree(out, ignore_errors=True)
    session.run("sphinx-build", "-n", "-W", "--keep-going", "-b", "html", "-q", "docs", str(out))
    session.log(f"docs built in {out}")
    session.run(
        "python",
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "tests/test_docs.py",
        "tests/test_readme.py",
        *session.posargs,
    )


# What mutmut mutates and which fast tests it runs against each module are in
# pyproject.toml ([tool.mutmut]); the survivors found equivalent, with why, in
# tests/mutation_equivalents.txt.
MUTATION_EQUIVALENTS = ROOT / "tests" / "mutation_equivalents.txt"


@nox.session(python=OLDEST, default=False)
def mutation(session: nox.Session) -> None:
    """mutmut on the security-relevant modules; not part of ``make test``.

    Every mutant of ``binding.py``, ``cookies.py`` and ``lifecycle/loading.py``
    runs against the few fast tests that pin them.  The session fails if a
    mutant survives that ``tests/mutation_equivalents.txt`` does not list as
    equivalent, and prints the score.  ``nox -s mutation``; takes a few
    minutes on one core.
    """
    session.install("mutmut>=3.3", "-e", ".[testing]")
    shutil.rmtree(ROOT / "mutants", ignore_errors=True)
    session.run("mutmut", "run", "--max-children", str(os.cpu_count() or 1))
    results = session.run("mutmut", "results", "--all", "true", silent=True)
    statuses: dict[str, str] = {}
    for line in str(results).splitlines():
        name, _, status = line.strip().rpartition(": ")
        if name:
            statuses[name] = status
    equivalent = {
        line.split()[0]
        for line in MUTATION_EQUIVALENTS.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    killed = sum(status == "killed" for status in statuses.values())
    unexplained = sorted(
        name for name, status in statuses.items() if status != "killed" and name not in equivalent
    )
    session.log(
        f"mutation score: {killed} of {len(statuses)} mutants killed, "
        f"{len(statuses) - killed - len(unexplained)} listed as equivalent"
    )
    if unexplained:
        session.error("mutants neither killed nor listed as equivalent: " + ", ".join(unexplained))


@nox.session(python=OLDEST, name="compat-0.4")
def compat_04(session: nox.Session) -> None:
    """0.4.0's own configuration and manager tests, unchanged, against this package.

    They are taken from 0.4.0's sdist on the package index, not copied here.
    """
    dist = _build(session, "--wheel")
    session.install(f"{_one(f'{dist}/*.whl')}", "pytest", "typing_extensions", "pip")
    tmp = Path(session.create_tmp())
    download = tmp / "download"
    shutil.rmtree(download, ignore_errors=True)
    session.run(
        "python",
        "-m",
        "pip",
        "download",
        "--quiet",
        "--no-deps",
        "--no-binary",
        ":all:",
        "pyramid_session_multi==0.4.0",
        "-d",
        str(download),
    )
    unpacked = tmp / "old"
    shutil.rmtree(unpacked, ignore_errors=True)
    with tarfile.open(_one(f"{download}/*.tar.gz")) as archive:
        archive.extractall(unpacked, filter="data")
    old_tests = _one(f"{unpacked}/*/tests")
    session.chdir(str(Path(old_tests).parent))
    session.run(
        "python",
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-q",
        "tests/test_config.py",
        "tests/test_session_multi.py",
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit("run this with nox")
