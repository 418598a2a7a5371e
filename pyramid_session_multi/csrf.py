"""Keeping Pyramid's CSRF token in one namespace of ``request.session_multi``."""

import uuid
from typing import Any

from pyramid.interfaces import ICSRFStoragePolicy
from pyramid.request import Request
from pyramid.util import bytes_, strings_differ
from zope.interface import implementer

from .exceptions import CSRFNamespaceUnavailable


@implementer(ICSRFStoragePolicy)
class NamespaceCSRFStoragePolicy:
    """Store the CSRF token in ``request.session_multi[namespace]``.

    Behaves like :class:`pyramid.csrf.SessionCSRFStoragePolicy`, for apps
    whose sessions all live in ``session_multi``::

        config.set_csrf_storage_policy(NamespaceCSRFStoragePolicy("secure"))

    :param namespace: the registered namespace that keeps the token.
    :param key: the session key of the token.
    :param new_token_on_rotate: ``True`` (the default): when
        ``request.session_multi.rotate()`` rotates the namespace (a login), a
        token the session holds is replaced by a new one, so a token an
        attacker learnt by planting a session cookie before the victim logged
        in is worth nothing after.  ``False`` keeps the token through the
        rotation, as before 0.6; forms rendered before the login then still
        submit.

    When the namespace's discriminator turns the request away, there is
    nowhere to keep a token: :meth:`get_csrf_token` and
    :meth:`new_csrf_token` raise :class:`CSRFNamespaceUnavailable`, and
    :meth:`check_csrf_token` returns ``False`` so that ``require_csrf`` and
    ``check_csrf_token`` answer with ``BadCSRFToken``.
    """

    def __init__(
        self, namespace: str, key: str = "_csrft_", new_token_on_rotate: bool = True
    ) -> None:
        self.namespace = namespace
        self.key = key
        self.new_token_on_rotate = new_token_on_rotate

    def session_rotated(self, namespace: str, session: Any) -> None:
        """Called by ``rotate()`` for each namespace it rotated: give the
        token's namespace a new token, where it held one (see
        ``new_token_on_rotate``)."""
        if namespace != self.namespace or not self.new_token_on_rotate:
            return
        if session.get(self.key, None):
            session[self.key] = uuid.uuid4().hex

    def _session(self, request: Request) -> Any:
        session = request.session_multi[self.namespace]
        if session is None:
            raise CSRFNamespaceUnavailable(
                f"pyramid_session_multi: the CSRF token lives in namespace "
                f"{self.namespace!r}, which is not available for this request "
                "(its discriminator returned a falsy value)."
            )
        return session

    def new_csrf_token(self, request: Request) -> str:
        """Store a new token in the namespace and return it."""
        token = uuid.uuid4().hex
        self._session(request)[self.key] = token
        return token

    def get_csrf_token(self, request: Request) -> str:
        """Return the namespace's token, making one if there is none."""
        token = self._session(request).get(self.key, None)
        if not token:
            token = self.new_csrf_token(request)
        return str(token)

    def check_csrf_token(self, request: Request, supplied_token: str) -> bool:
        """Return ``True`` if ``supplied_token`` is the namespace's token."""
        try:
            expected = self.get_csrf_token(request)
        except CSRFNamespaceUnavailable:
            return False
        return not strings_differ(
            bytes_(expected), bytes_(supplied_token, errors="backslashreplace")
        )
