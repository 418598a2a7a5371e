"""Sphinx configuration of the pyramid_session_multi documentation.

Built with warnings as errors: ``make docs`` (or ``nox -s docs``).
"""

import zlib
from importlib.metadata import version as installed_version
from pathlib import Path

project = "pyramid_session_multi"
author = "pyramid_session_multi developers"
copyright = "pyramid_session_multi developers"
release = installed_version("pyramid_session_multi")
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.intersphinx",
    "sphinx.ext.viewcode",
]
templates_path: list[str] = []
exclude_patterns = ["_build", "examples"]
root_doc = "index"
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}
html_theme = "alabaster"
html_static_path: list[str] = []
html_theme_options = {"description": "Several Pyramid sessions at once"}

# The build machines reach no documentation site, so intersphinx reads a
# small inventory written here of the Pyramid and WebOb objects these pages
# link to; the links themselves point at the real documentation.
_INVENTORIES = {
    "pyramid": (
        "https://docs.pylonsproject.org/projects/pyramid/en/latest/",
        "Pyramid",
        [
            ("pyramid.config.Configurator", "py:class", "api/config.html#$"),
            ("pyramid.exceptions.ConfigurationError", "py:exception", "api/exceptions.html#$"),
            (
                "pyramid.exceptions.ConfigurationConflictError",
                "py:exception",
                "api/exceptions.html#$",
            ),
            ("pyramid.interfaces.ISession", "py:class", "api/interfaces.html#$"),
            ("pyramid.interfaces.ISessionFactory", "py:class", "api/interfaces.html#$"),
            ("pyramid.interfaces.ICSRFStoragePolicy", "py:class", "api/interfaces.html#$"),
            ("pyramid.session.SignedCookieSessionFactory", "py:function", "api/session.html#$"),
            ("pyramid.csrf.SessionCSRFStoragePolicy", "py:class", "api/csrf.html#$"),
            ("pyramid.request.Request", "py:class", "api/request.html#$"),
            ("pyramid.testing.DummyRequest", "py:class", "api/testing.html#$"),
            ("pyramid.testing.DummySession", "py:class", "api/testing.html#$"),
            ("pyramid.registry.Registry", "py:class", "api/registry.html#$"),
        ],
    ),
    "webob": (
        "https://docs.pylonsproject.org/projects/webob/en/stable/",
        "WebOb",
        [("webob.response.Response", "py:class", "api/response.html#$")],
    ),
}


def _write_inventory(name: str, project_name: str, entries: list[tuple[str, str, str]]) -> str:
    path = Path(__file__).resolve().parent / "_build" / "inventories" / f"{name}.inv"
    path.parent.mkdir(parents=True, exist_ok=True)
    header = (
        f"# Sphinx inventory version 2\n# Project: {project_name}\n# Version: \n"
        "# The remainder of this file is compressed using zlib.\n"
    )
    body = "".join(f"{obj} {role} 1 {uri} -\n" for obj, role, uri in entries)
    path.write_bytes(header.encode() + zlib.compress(body.encode()))
    return str(path)


intersphinx_mapping = {
    name: (url, _write_inventory(name, project_name, entries))
    for name, (url, project_name, entries) in _INVENTORIES.items()
}
intersphinx_disabled_reftypes = ["*"]
