"""Sessions that hold their request weakly.

pyramid's cookie sessions keep the request they were made for
(``session.request``) until their response callback has set their cookie;
one that is only read keeps it for good.  In a namespace that makes a cycle:
the request holds its manager (``request.session_multi``), which holds the
session, which holds the request.  Left as it is, only the cycle collector
frees it; broken by the manager at the end of every request, it costs a
finished callback per request.

The add-on's own subclasses of pyramid's cookie sessions (see
:mod:`~pyramid_session_multi.budget`) hold their request through a weak
proxy instead: such a namespace makes no cycle, and, where nothing else of
it holds the request (see ``Pipeline.releases_nothing``), the manager queues
nothing to release it.  ``session.request`` reaches the request for as long
as the request lives; a session used once it is gone (read by a streaming
body, kept by a test past its ``DummyRequest``) has no response to set its
cookie on, as before: what would re-issue or save its cookie does nothing.
Being a proxy, ``session.request`` is not the request itself (``is``
compares false, and it can be neither hashed nor weakly referenced): code
that needs the request uses the one it is given.
"""

from collections.abc import Callable
from typing import Any
from weakref import proxy

#: The class attribute that says a session class holds its request weakly.
HOLDS_REQUEST_WEAKLY = "session_multi_holds_request_weakly"


def init_holding_request_weakly(base_init: Callable[..., None]) -> Callable[..., None]:
    """An ``__init__(self, request)`` that runs ``base_init`` (a pyramid cookie
    session's), then holds the request weakly."""

    def __init__(self: Any, request: Any) -> None:
        base_init(self, request)
        # pyramid sets it to None once the cookie is set, as it does its own
        self.request = proxy(request)

    return __init__


def changed_holding_request_weakly(base_changed: Callable[[Any], None]) -> Callable[[Any], None]:
    """A ``changed(self)`` that runs ``base_changed`` (a pyramid cookie
    session's, which queues the setting of its cookie on ``session.request``),
    and does nothing more once the request is gone.

    Where ``base_changed`` is pyramid's own, which does nothing once it has
    queued the cookie (its ``_dirty`` flag set), it is not called again then;
    an application's own ``changed()`` is called every time, as before.
    """
    pyramids_own = getattr(base_changed, "__module__", None) == "pyramid.session"

    def changed(self: Any) -> None:
        if pyramids_own and self._dirty:
            return  # queued already: no call on every later write
        try:
            base_changed(self)
        except ReferenceError:
            if not is_gone(self.request):
                raise
            # no response will carry its cookie, as none would have when the
            # session held its request (pyramid marked it changed already)

    return changed


def is_gone(request: Any) -> bool:
    """Whether ``request``, a weak proxy, no longer reaches its request."""
    try:
        request.__class__  # noqa: B018 (read through the proxy)
    except ReferenceError:
        return True
    return False


def holds_request_weakly(session_class: Any) -> bool:
    """Whether the sessions of ``session_class`` hold their request weakly."""
    return getattr(session_class, HOLDS_REQUEST_WEAKLY, False) is True
