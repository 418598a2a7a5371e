"""pytest fixtures for applications that use pyramid_session_multi.

Enable them in a ``conftest.py``::

    pytest_plugins = ["pyramid_session_multi.pytest_plugin"]

then ask for ``session_multi_request``::

    def test_theme(session_multi_request):
        request = session_multi_request(prefs={"theme": "dark"}, secure=None)
        assert my_view(request)["theme"] == "dark"

The plugin is opt-in: installing the add-on changes nothing in a project's
test runs until it is named there.
"""

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pyramid import testing

from .testing import attach_session_multi

__all__ = ["session_multi_request"]


@pytest.fixture
def session_multi_request() -> Iterator[Callable[..., testing.DummyRequest]]:
    """A factory of ``DummyRequest`` objects with a ``session_multi``.

    Call it with one keyword per namespace (see
    :func:`pyramid_session_multi.testing.dummy_session_multi_config` for the
    values); ``request_kwargs`` are passed to ``DummyRequest``.  Pyramid's
    threadlocals are set up for the test and torn down after it.
    """
    config = testing.setUp()

    def make(request_kwargs: dict[str, Any] | None = None, **namespaces: Any) -> Any:
        request = testing.DummyRequest(**(request_kwargs or {}))
        request.registry = config.registry
        attach_session_multi(request, namespaces)
        return request

    try:
        yield make
    finally:
        testing.tearDown()
