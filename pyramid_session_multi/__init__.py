"""Several Pyramid sessions at once, each under its own namespace.

``config.include("pyramid_session_multi")`` then
``config.register_session_factory(namespace, factory)``; the sessions are
at ``request.session_multi[namespace]``.
"""

# Everything imported here under a plain name is public API (listed in
# __all__); what the module only uses is imported under a private name.
from importlib.metadata import PackageNotFoundError as _PackageNotFoundError
from importlib.metadata import version as _version

from pyramid.config import Configurator as _Configurator

from .config import (
    SessionMultiManagerConfig,
    register_session_factory,
)
from .config import check_all_against_session_factory as _check_all_against_session_factory
from .config import setup_manager_config as _setup_manager_config
from .csrf import NamespaceCSRFStoragePolicy
from .exceptions import NotIncludedError, RotatedTooLate, UnregisteredSession
from .extending import add_session_library, add_session_load_step
from .failures import FailureLog as _FailureLog
from .interfaces import IFailureLog as _IFailureLog
from .interfaces import ISessionLibrary, ISessionMultiManagerConfig, ISessionMultiObserver
from .lifecycle.fallbacks import Fallback
from .manager import SessionMultiManager, new_session_multi
from .manager import manager_class_for as _manager_class_for
from .revocation import set_revocation_store
from .revocation import stamp_every_namespace as _stamp_every_namespace
from .settings import register_from_settings as _register_from_settings

try:
    __version__ = _version("pyramid_session_multi")
except _PackageNotFoundError:  # pragma: no cover - a checkout that was never installed
    __version__ = "0+unknown"

#: The installed version, under the name 0.4 used.
__VERSION__ = __version__

__all__ = [
    "Fallback",
    "ISessionLibrary",
    "ISessionMultiManagerConfig",
    "ISessionMultiObserver",
    "NamespaceCSRFStoragePolicy",
    "NotIncludedError",
    "RotatedTooLate",
    "SessionMultiManager",
    "SessionMultiManagerConfig",
    "UnregisteredSession",
    "add_session_library",
    "add_session_load_step",
    "includeme",
    "new_session_multi",
    "register_session_factory",
    "set_revocation_store",
]


def includeme(config: _Configurator) -> None:
    """Set up ``request.session_multi`` and the directives.

    Called by ``config.include("pyramid_session_multi")`` (or
    ``pyramid.includes = pyramid_session_multi`` in the settings). It adds
    the directives ``config.register_session_factory``,
    ``config.add_session_library``, ``config.add_session_load_step`` and
    ``config.set_revocation_store``, the
    reified ``request.session_multi``, and
    registers the namespaces declared in the settings (see
    :doc:`/narr/settings`).
    """
    manager_config = _setup_manager_config(config)
    if config.registry.queryUtility(_IFailureLog) is None:
        config.registry.registerUtility(_FailureLog(), _IFailureLog)
    config.add_directive("register_session_factory", register_session_factory)
    config.add_directive("add_session_library", add_session_library)
    config.add_directive("add_session_load_step", add_session_load_step)
    config.add_directive("set_revocation_store", set_revocation_store)
    config.add_request_method(_manager_class_for(manager_config), "session_multi", reify=True)
    _check_all_against_session_factory(config)
    _stamp_every_namespace(config)
    _register_from_settings(config)
