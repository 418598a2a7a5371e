"""Sphinx configuration of the pyramid_session_multi documentation.

Built nitpicky, with warnings as errors: ``make docs`` or ``nox -s docs``
(which CI runs), and the same way on Read the Docs (``.readthedocs.yaml``).
"""

import importlib
import inspect
import re
import zlib
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Any

project = "pyramid_session_multi"
author = "pyramid_session_multi developers"
copyright = "pyramid_session_multi developers"
release = installed_version("pyramid_session_multi")
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.intersphinx",
    "sphinx.ext.viewcode",
    # autodoc skips zope interfaces; this renders them, as Pyramid's docs do
    "repoze.sphinx.autointerface",
]
templates_path: list[str] = []
exclude_patterns = ["_build", "examples"]
root_doc = "index"
nitpicky = True
# Each autodoc directive in api.rst names the members it shows: nothing is
# documented by default, so internals never appear as API.
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options: dict[str, Any] = {}
html_theme = "alabaster"
html_static_path: list[str] = []
html_theme_options = {"description": "Several Pyramid sessions at once"}

# Intersphinx, offline. The build machines (and Read the Docs builds that
# must not depend on another site being up) reach no documentation site, so
# the inventories of the objects these pages link to are written here at
# build time. The links themselves point at the real documentation.
_INVENTORIES: dict[str, tuple[str, str, list[tuple[str, str, str]]]] = {
    "python": (
        "https://docs.python.org/3/",
        "Python",
        [
            ("collections.abc", "py:module", "library/collections.abc.html#module-$"),
            ("collections.abc.Callable", "py:class", "library/collections.abc.html#$"),
            ("collections.abc.Iterable", "py:class", "library/collections.abc.html#$"),
            ("collections.abc.Iterator", "py:class", "library/collections.abc.html#$"),
            ("collections.abc.Mapping", "py:class", "library/collections.abc.html#$"),
            ("collections.abc.Sequence", "py:class", "library/collections.abc.html#$"),
            ("typing.Any", "py:data", "library/typing.html#$"),
            ("dict", "py:class", "library/stdtypes.html#$"),
            ("list", "py:class", "library/stdtypes.html#$"),
            ("tuple", "py:class", "library/stdtypes.html#$"),
            ("str", "py:class", "library/stdtypes.html#$"),
            ("int", "py:class", "library/functions.html#$"),
            ("bool", "py:class", "library/functions.html#$"),
            ("object", "py:class", "library/functions.html#$"),
            ("Exception", "py:exception", "library/exceptions.html#$"),
            ("AttributeError", "py:exception", "library/exceptions.html#$"),
            ("KeyError", "py:exception", "library/exceptions.html#$"),
            ("RuntimeError", "py:exception", "library/exceptions.html#$"),
            ("ValueError", "py:exception", "library/exceptions.html#$"),
        ],
    ),
    "pyramid": (
        "https://docs.pylonsproject.org/projects/pyramid/en/latest/",
        "Pyramid",
        [
            ("pyramid.config.Configurator", "py:class", "api/config.html#$"),
            (
                "pyramid.config.Configurator.set_security_policy",
                "py:method",
                "api/config.html#$",
            ),
            (
                "pyramid.config.Configurator.set_session_factory",
                "py:method",
                "api/config.html#$",
            ),
            ("pyramid.config.Configurator.add_directive", "py:method", "api/config.html#$"),
            ("pyramid.config.Configurator.add_subscriber", "py:method", "api/config.html#$"),
            ("pyramid.config.Configurator.include", "py:method", "api/config.html#$"),
            ("pyramid.exceptions.ConfigurationError", "py:exception", "api/exceptions.html#$"),
            (
                "pyramid.exceptions.ConfigurationConflictError",
                "py:exception",
                "api/exceptions.html#$",
            ),
            ("pyramid.exceptions.BadCSRFToken", "py:exception", "api/exceptions.html#$"),
            ("pyramid.interfaces.ISession", "py:interface", "api/interfaces.html#$"),
            ("pyramid.interfaces.ISessionFactory", "py:interface", "api/interfaces.html#$"),
            (
                "pyramid.interfaces.ICSRFStoragePolicy",
                "py:interface",
                "api/interfaces.html#$",
            ),
            (
                "pyramid.interfaces.ISecurityPolicy",
                "py:interface",
                "api/interfaces.html#$",
            ),
            ("pyramid.session.SignedCookieSessionFactory", "py:function", "api/session.html#$"),
            ("pyramid.csrf.SessionCSRFStoragePolicy", "py:class", "api/csrf.html#$"),
            ("pyramid.request.Request", "py:class", "api/request.html#$"),
            ("pyramid.testing.DummyRequest", "py:class", "api/testing.html#$"),
            ("pyramid.testing.DummySession", "py:class", "api/testing.html#$"),
            ("pyramid.testing.setUp", "py:function", "api/testing.html#$"),
            ("pyramid.registry.Registry", "py:class", "api/registry.html#$"),
            ("pyramid.paster.bootstrap", "py:function", "api/paster.html#$"),
            ("pyramid.settings.asbool", "py:function", "api/settings.html#$"),
            ("pyramid.settings.aslist", "py:function", "api/settings.html#$"),
        ],
    ),
    "webob": (
        "https://docs.pylonsproject.org/projects/webob/en/stable/",
        "WebOb",
        [
            ("webob.request.BaseRequest", "py:class", "api/request.html#$"),
            ("webob.request.Request", "py:class", "api/request.html#$"),
            ("webob.response.Response", "py:class", "api/response.html#$"),
            ("webob.response.Response.set_cookie", "py:method", "api/response.html#$"),
        ],
    ),
}


def _write_inventory(
    directory: Path, name: str, project_name: str, entries: list[tuple[str, str, str]]
) -> str:
    """Write one Sphinx (version 2) inventory and return its path."""
    path = directory / f"{name}.inv"
    header = (
        f"# Sphinx inventory version 2\n# Project: {project_name}\n# Version: \n"
        "# The remainder of this file is compressed using zlib.\n"
    )
    body = "".join(f"{obj} {role} 1 {uri} -\n" for obj, role, uri in entries)
    path.write_bytes(header.encode() + zlib.compress(body.encode()))
    return str(path)


def _offline_inventories(app: Any, config: Any) -> None:
    # beside the doctrees, so a build writes nothing into the source tree
    directory = Path(app.doctreedir) / "inventories"
    directory.mkdir(parents=True, exist_ok=True)
    config.intersphinx_mapping = {
        name: (url, _write_inventory(directory, name, project_name, entries))
        for name, (url, project_name, entries) in _INVENTORIES.items()
    }


intersphinx_mapping: dict[str, Any] = {}


# A docstring names its neighbours as its own module sees them
# (:class:`NamespaceConfig` in pyramid_session_multi.config), while api.rst
# documents many objects where users import them from (the package itself).
# When a reference from a docstring finds nothing where the object is
# documented, look again from where the docstring was written, then from the
# documented base classes of its class, before reporting it as missing.
_DOCSTRING_OF = re.compile(r"docstring of ([\w.]+)")


def _import_path(path: str) -> tuple[str, Any] | None:
    """The longest importable module of ``path`` and the object ``path`` names."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        module_name = found.__name__
        for attribute in parts[cut:]:
            found = getattr(found, attribute, None)
        return module_name, found
    return None


def _contexts(env: Any, path: str) -> list[tuple[str, str | None]]:
    """(module, class) pairs to resolve a docstring's references from."""
    imported = _import_path(path)
    if imported is None:
        return []
    module_name, found = imported
    qualname = path[len(module_name) + 1 :]
    if not inspect.isclass(found):
        qualname = qualname.rpartition(".")[0]  # a method's class, or nothing
        found = _import_path(f"{module_name}.{qualname}")[1] if qualname else None  # type: ignore[index]
    contexts: list[tuple[str, str | None]] = [(module_name, qualname or None)]
    if inspect.isclass(found):
        documented = _documented_classes(env)
        for base in found.__mro__:
            name = documented.get(id(base))
            if name is not None:
                module, _, cls = name.rpartition(".")
                contexts.append((module, cls))
    return contexts


def _documented_classes(env: Any) -> dict[int, str]:
    names = {}
    for name, entry in env.get_domain("py").objects.items():
        if entry.objtype in ("class", "exception", "interface") and not entry.aliased:
            imported = _import_path(name)
            if imported is not None and imported[1] is not None:
                names[id(imported[1])] = name
    return names


def _resolve_from_docstring_source(app: Any, env: Any, node: Any, contnode: Any) -> Any:
    if node.get("refdomain") != "py":
        return None
    written = _DOCSTRING_OF.search(node.source or "")
    if written is None:
        return None
    domain = env.get_domain("py")
    for module, cls in _contexts(env, written.group(1)):
        retry = node.deepcopy()
        retry["py:module"], retry["py:class"] = module, cls
        found = domain.resolve_xref(
            env, node["refdoc"], app.builder, node["reftype"], node["reftarget"], retry, contnode
        )
        if found is not None:
            return found
    return None


def setup(app: Any) -> None:
    # before intersphinx validates the mapping (its own handler runs at 800)
    app.connect("config-inited", _offline_inventories, priority=100)
    app.connect("missing-reference", _resolve_from_docstring_source)
