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
