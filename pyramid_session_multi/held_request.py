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
reference instead (:class:`HoldsRequestWeakly`): such a namespace makes no
cycle, and, where nothing else of it holds the request (see
``Pipeline.releases_nothing``), the manager queues nothing to release it.
``session.request`` is the request itself for as long as the request lives,
and ``None`` once it is gone, as it is once pyramid has set the cookie.  A
session used once its request is gone (read by a streaming body, kept by a
test past its ``DummyRequest``) has no response to set its cookie on, as
before: what would re-issue or save its cookie does nothing.

The weak reference is the one the manager already holds (a request has one
plain weak reference, shared by all who ask for one): a session made costs
no object more than pyramid's own.
"""

from collections.abc import Callable
from typing import Any
from weakref import ReferenceType, ref

#: The class attribute that says a session class holds its request weakly.
HOLDS_REQUEST_WEAKLY = "session_multi_holds_request_weakly"

#: The attribute of such a session that holds the weak reference to its
#: request (``None`` once the cookie is set, as pyramid sets ``request``).
HELD_REQUEST = "_session_multi_request_ref"


def _held_request(session: Any) -> Any:
    held = session._session_multi_request_ref
    return None if held is None else held()


def _hold_request(session: Any, request: Any) -> None:
    # pyramid's __init__ gives the request, its response callback None
    session._session_multi_request_ref = None if request is None else ref(request)


class HoldsRequestWeakly:
    """What a subclass of a pyramid cookie-session class needs to hold its
    request weakly, placed before that class among its bases.

    Its ``changed()`` is made by :func:`changed_holding_request_weakly`
    from the session class's own.
    """

    #: the request, while it lives; ``None`` once it is gone or the cookie is set
    request = property(_held_request, _hold_request)
    _session_multi_request_ref: "ReferenceType[Any] | None" = None
    session_multi_holds_request_weakly = True

    def _session_multi_cookie_callback(self, request: Any, response: Any) -> None:
        # the response callback changed() queues, as pyramid's own: set the
        # cookie, then let go of the request
        self._set_cookie(response)  # type: ignore[attr-defined]
        self._session_multi_request_ref = None


def changed_holding_request_weakly(base_changed: Callable[[Any], None]) -> Callable[[Any], None]:
    """The ``changed(self)`` of a :class:`HoldsRequestWeakly` subclass of a
    session class whose ``changed`` is ``base_changed``.

    Where ``base_changed`` is pyramid's own, the returned one does its work
    (queue the setting of the cookie on the request, once) in one call, and
    nothing once the request is gone.  An application's own ``changed()`` is
    called every time, as before; pyramid's, reached from it once the request
    is gone, does nothing then either.
    """
    if getattr(base_changed, "__module__", None) == "pyramid.session":

        def changed(self: Any) -> None:
            if self._dirty:
                return  # queued already
            self._dirty = True
            held = self._session_multi_request_ref
            request = None if held is None else held()
            if request is not None:
                request.add_response_callback(self._session_multi_cookie_callback)
            # else: gone, no response will carry its cookie, as none would
            # have when the session held its request

        return changed

    def applications_changed(self: Any) -> None:
        try:
            base_changed(self)
        except AttributeError:
            # pyramid's changed() reached ``None.add_response_callback``
            if not is_gone(self):
                raise

    return applications_changed


def is_gone(session: Any) -> bool:
    """Whether the request ``session`` held weakly no longer lives."""
    held = session._session_multi_request_ref
    return held is not None and held() is None


def holds_request_weakly(session_class: Any) -> bool:
    """Whether the sessions of ``session_class`` hold their request weakly."""
    return getattr(session_class, HOLDS_REQUEST_WEAKLY, False) is True
