"""Every check CI runs, as nox sessions: ``make test`` runs them all.

The test sessions install what ships, never the checkout: the wheel built
from this tree (or from the sdist), into a fresh virtualenv, and run the
suite from a copy of the tree that has no ``pyramid_session_multi/`` in it,
so an import can only find the installed package.

    nox -l                  # the sessions
    nox -s tests-3.12       # one of them
"""

import glob
import os
import shutil
import sys
import tarfile
from pathlib import Path

import nox

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


def _install_wheel(session: nox.Session, wheel: str, *uv_args: str, source: Path = ROOT) -> None:
    # the demo is its own small distribution; the suite drives it too
    session.install(*uv_args, f"{wheel}[testing]", "-e", str(source / "demo_app"))


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The whole suite against the built wheel, with the newest dependencies."""
    dist = _build(session, "--wheel")
    _install_wheel(session, _one(f"{dist}/*.whl"))
    _run_suite(session, _tree_without_package(ROOT, session))


@nox.session(python=OLDEST)
def floors(session: nox.Session) -> None:
    """The whole suite with every direct dependency at its lowest allowed version.

    Pyramid 2.0 imports ``pkg_resources``, which setuptools 81 removed: the
    setuptools of Pyramid 2.0's day is pinned beside it.
    """
    if session.venv_backend != "uv":
        session.error("the floors session resolves with uv: pip install uv")
    dist = _build(session, "--wheel")
    # a constraint, not a requirement: lowest-direct would pick setuptools 0.7
    constraints = Path(session.create_tmp()) / "constraints.txt"
    constraints.write_text("setuptools<81\n")
    _install_wheel(
        session, _one(f"{dist}/*.whl"), "--resolution", "lowest-direct", "-c", str(constraints)
    )
    session.run(  # the versions tested, for the log
        "python",
        "-c",
        "import importlib.metadata as m; print(*sorted("
        "f'{d.name}=={d.version}' for d in m.distributions()), sep='\\n')",
    )
    _run_suite(
        session,
        _tree_without_package(ROOT, session),
        "-W",
        "ignore::DeprecationWarning",
        "-W",
        "ignore::UserWarning:pyramid",
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
    """ruff (lint and format) and mypy --strict."""
    session.install("ruff>=0.6", "mypy>=1.8", "pytest", "-e", ".[debugtoolbar]")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy", "--strict", "pyramid_session_multi")


@nox.session(python=OLDEST)
def docs(session: nox.Session) -> None:
    """The Sphinx documentation, warnings as errors."""
    session.install("-e", ".[docs,debugtoolbar]")
    out = Path(session.create_tmp()) / "html"
    session.run("sphinx-build", "-W", "--keep-going", "-b", "html", "-q", "docs", str(out))
    session.log(f"docs built in {out}")


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
