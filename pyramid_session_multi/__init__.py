"""Several Pyramid sessions at once, each under its own namespace.

``config.include("pyramid_session_multi")`` then
``config.register_session_factory(namespace, factory)``; the sessions are
at ``request.session_multi[namespace]``.
"""
from pyramid.config import Configurator

from .config import SessionMultiManagerConfig
from .config import check_all_against_session_factory
from .config import register_session_factory
from .config import setup_manager_config
from .csrf import NamespaceCSRFStoragePolicy
from .interfaces import ISessionMultiManagerConfig
from .interfaces import ISessionMultiObserver
from .manager import ManagerFactory
from .manager import SessionMultiManager
from .manager import UnregisteredSession
from .manager import new_session_multi

__all__ = [
    "ISessionMultiManagerConfig",
    "ISessionMultiObserver",
    "NamespaceCSRFStoragePolicy",
    "SessionMultiManager",
    "SessionMultiManagerConfig",
    "UnregisteredSession",
    "includeme",
    "new_session_multi",
    "register_session_factory",
]


def includeme(config: Configurator) -> None:
    """Set up ``request.session_multi`` and the registration directive."""
    manager_config = setup_manager_config(config)
    config.add_directive("register_session_factory", register_session_factory)
    config.add_request_method(
        ManagerFactory(manager_config), "session_multi", reify=True
    )
    check_all_against_session_factory(config)
