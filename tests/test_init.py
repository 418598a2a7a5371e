"""The package's public names, kept for users of the 0.4 API."""

import pyramid_session_multi

COMPAT_NAMES = [
    "includeme",
    "register_session_factory",
    "UnregisteredSession",
    "SessionMultiManager",
    "SessionMultiManagerConfig",
    "ISessionMultiManagerConfig",
    "new_session_multi",
]


def test_compat_names_importable():
    for name in COMPAT_NAMES:
        assert getattr(pyramid_session_multi, name) is not None, name
        assert name in pyramid_session_multi.__all__


def test_includeme_wires_the_directive_and_request_property():
    from pyramid.config import Configurator
    from pyramid.interfaces import IRequestExtensions

    config = Configurator()
    config.include("pyramid_session_multi")
    assert callable(config.register_session_factory)
    config.commit()
    extensions = config.registry.getUtility(IRequestExtensions)
    assert "session_multi" in extensions.descriptors
    assert (
        config.registry.queryUtility(pyramid_session_multi.ISessionMultiManagerConfig) is not None
    )


def test_package_is_typed():
    from importlib.resources import files

    assert files("pyramid_session_multi").joinpath("py.typed").is_file()


def test_version_is_the_installed_one_under_both_names():
    from importlib.metadata import version

    assert version("pyramid_session_multi") == pyramid_session_multi.__VERSION__
    assert pyramid_session_multi.__version__ == pyramid_session_multi.__VERSION__


def test_panel_importable_from_its_04_module_path():
    from pyramid_session_multi.debugtoolbar.panel import SessionMultiDebugPanel
    from pyramid_session_multi.debugtoolbar.panels.session_multi import (
        SessionMultiDebugPanel as old_path,
    )

    assert old_path is SessionMultiDebugPanel


def test_panel_template_ships_with_the_package():
    from importlib.resources import files

    templates = files("pyramid_session_multi.debugtoolbar").joinpath("templates")
    assert templates.joinpath("session_multi.dbtmako").is_file()
