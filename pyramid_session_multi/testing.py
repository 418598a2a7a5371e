"""Helpers for the unit tests of applications that use pyramid_session_multi.

A view that reads ``request.session_multi`` can be unit-tested with a
``pyramid.testing.DummyRequest`` and no registered factory at all::

    from pyramid import testing
    from pyramid_session_multi.testing import attach_session_multi

    request = testing.DummyRequest()
    attach_session_multi(request, {"prefs": {"theme": "dark"}, "secure": None})
    assert request.session_multi["prefs"]["theme"] == "dark"
    assert request.session_multi["secure"] is None

For pytest, :mod:`pyramid_session_multi.pytest_plugin` offers the same as a
fixture.

:class:`~pyramid_session_multi.revocation.MemoryRevocationStore` keeps
revocations in memory, for a test of a view that calls
``request.session_multi.revoke()``::

    config.set_revocation_store(MemoryRevocationStore())
"""

from collections.abc import Mapping
from typing import Any

from pyramid.testing import DummyRequest, DummySession

from .config import NamespaceConfig, SessionMultiManagerConfig
from .manager import SessionMultiManager
from .revocation.memory import MemoryRevocationStore

__all__ = ["MemoryRevocationStore", "attach_session_multi", "dummy_session_multi_config"]


#: The value of the cookie a test request carries for each namespace it holds.
HELD = "held-by-the-test-client"


def _never(request: Any) -> bool:
    return False


class _Fixed:
    """A session factory that returns one prepared session."""

    def __init__(self, session: Any) -> None:
        self.session = session

    def __call__(self, request: Any) -> Any:
        return self.session


def dummy_session_multi_config(
    namespaces: Mapping[str, Any],
) -> SessionMultiManagerConfig:
    """A configuration mounting the sessions described by ``namespaces``.

    ``namespaces`` maps each namespace to one of:

    * a mapping: the data of a new :class:`pyramid.testing.DummySession`;
    * ``None``: the namespace mounts ``None``, as when its discriminator
      turns the request away;
    * any other object: used as the session itself (a ``DummySession`` you
      made, or a real session).

    Each namespace's cookie is named after it.
    """
    config = SessionMultiManagerConfig()
    for namespace, value in namespaces.items():
        discriminator = None
        session: Any = value
        if value is None:
            discriminator = _never
        elif isinstance(value, Mapping) and not hasattr(value, "invalidate"):
            session = DummySession(value)
        config.add(
            NamespaceConfig(
                namespace=namespace,
                factory=_Fixed(session),
                cookie_name=namespace,
                discriminator=discriminator,
            )
        )
    return config


def attach_session_multi(
    request: DummyRequest, namespaces: Mapping[str, Any]
) -> SessionMultiManager:
    """Give ``request`` a ``session_multi`` with ``namespaces``; return it.

    ``namespaces`` is as for :func:`dummy_session_multi_config`.  The
    manager is the real :class:`~pyramid_session_multi.SessionMultiManager`,
    so laziness, the read-only mapping and ``UnregisteredSession`` behave as
    in the application; each namespace returns the same session object on
    every access, across requests too, so that a test can look at what a
    view wrote.

    Each namespace given a session is held by the client: ``request``
    carries its cookie (named after the namespace; a cookie the request
    already has is kept).  So ``invalidate()``, ``rotate()`` and
    ``revoke(..)`` act on it as in the application, whether or not the view
    touched it first, while ``len()`` and iteration still list only the
    namespaces loaded so far.
    """
    config = dummy_session_multi_config(namespaces)
    for namespace, value in namespaces.items():
        if value is not None:
            request.cookies.setdefault(namespace, HELD)
    manager = SessionMultiManager(request, config, weak=False)
    request.session_multi = manager
    return manager
