"""Several Pyramid sessions at once, each under its own namespace.

``config.include("pyramid_session_multi")`` then
``config.register_session_factory(namespace, factory)``; the sessions are
at ``request.session_multi[namespace]``.
"""

from importlib.metadata import PackageNotFoundError, version

from pyramid.config import Configurator

from .config import (
    NotIncludedError,
    SessionMultiManagerConfig,
    add_session_library,
    check_all_against_session_factory,
    register_session_factory,
    setup_manager_config,
)
from .csrf import NamespaceCSRFStoragePolicy
from .interfaces import ISessionLibrary, ISessionMultiManagerConfig, ISessionMultiObserver
from .manager import (
    SessionMultiManager,
    UnregisteredSession,
    manager_class_for,
    new_session_multi,
)
from .settings import register_from_settings

try:
    __version__ = version("pyramid_session_multi")
except PackageNotFoundError:  # pragma: no cover - a checkout that was never installed
    __version__ = "0+unknown"

#: The installed version, under the name 0.4 used.
__VERSION__ = __version__

__all__ = [
    "ISessionLibrary",
    "ISessionMultiManagerConfig",
    "ISessionMultiObserver",
    "NamespaceCSRFStoragePolicy",
    "NotIncludedError",
    "SessionMultiManager",
    "SessionMultiManagerConfig",
    "UnregisteredSession",
    "add_session_library",
    "includeme",
    "new_session_multi",
    "register_session_factory",
]


def includeme(config: Configurator) -> None:
    """Set up ``request.session_multi`` and the registration directive."""
    manager_config = setup_manager_config(config)
    config.add_directive("register_session_factory", register_session_factory)
    config.add_directive("add_session_library", add_session_library)
    config.add_request_method(manager_class_for(manager_config), "session_multi", reify=True)
    check_all_against_session_factory(config)
    register_from_settings(config)
