"""The errors an application may catch, in one place at the bottom of the package.

Each is also importable from the module the API reference lists it under
(:class:`~pyramid_session_multi.settings.SettingsError` from
:mod:`~pyramid_session_multi.settings`, …); this module imports nothing of
the package, so every other module may raise them.
"""

from typing import Any

from pyramid.exceptions import ConfigurationError

__all__ = [
    "CSRFNamespaceUnavailable",
    "CookieTooLarge",
    "NotIncludedError",
    "RevocationStoreUnavailable",
    "RotatedTooLate",
    "SettingsError",
    "UnregisteredSession",
]


class SettingsError(ConfigurationError):  # type: ignore[misc]
    """A mistake in the ``session_multi.*`` settings; the message names the key."""


class NotIncludedError(ConfigurationError, AttributeError):  # type: ignore[misc]
    """A namespace was registered before ``config.include("pyramid_session_multi")``.

    Also an ``AttributeError``, which is what 0.4 raised.
    """


class UnregisteredSession(KeyError):
    """Raised when a namespace that was never registered is asked for."""

    def __init__(self, namespace: Any) -> None:
        super().__init__(namespace)
        self.namespace = namespace

    def __str__(self) -> str:
        return (
            f"pyramid_session_multi: no session factory is registered for "
            f"namespace {self.namespace!r}"
        )


class CookieTooLarge(ValueError):
    """A namespace's cookie is over the per-cookie limit (``raise`` policy).

    Where the session library refused the cookie itself (without the
    budget), its own error is kept as the message (``library_error``) and
    the namespace is named in a note.
    """

    def __init__(
        self,
        namespace: str,
        cookie_name: str,
        size: int,
        limit: int,
        library_error: Exception | None = None,
    ) -> None:
        ours = (
            f"pyramid_session_multi: the cookie {cookie_name!r} of namespace {namespace!r} "
            f"would be {size} bytes, over the {limit}-byte limit of one cookie; keep less "
            "in this namespace or move it to a server-side store"
        )
        if library_error is None:
            super().__init__(ours)
        else:
            super().__init__(str(library_error))
            self.add_note(ours)
        self.namespace = namespace
        self.cookie_name = cookie_name
        self.size = size
        self.limit = limit


class RevocationStoreUnavailable(RuntimeError):
    """The revocation store could not be reached.

    Raised while loading a namespace whose session has a user recorded (the
    namespace is named, and nothing is deleted: the request fails as it would
    if the namespace's own store were down), and by ``revoke()``.
    """


class RotatedTooLate(RuntimeError):
    """A namespace was rotated once its library had saved its session and set
    its cookie in this request (``rotate()`` in a response or finished
    callback that ran after the library's own).

    The new id could not reach the client any more, and the id the client
    holds must not outlive a login: the session is ended instead, as a
    logout of that namespace would end it (its stored state deleted, its
    cookie deleted).  Returned by ``rotate()`` for the namespace, or raised
    with ``raise_errors=True``.
    """

    def __init__(self, namespace: str) -> None:
        super().__init__(
            f"pyramid_session_multi: namespace {namespace!r} was rotated after its "
            "session was saved and its cookie set in this request, so its new id could "
            "not reach the client; its session was ended instead. Rotate it in the view, "
            "or in a response callback added before the namespace is first loaded"
        )
        self.namespace = namespace


class CSRFNamespaceUnavailable(RuntimeError):
    """The CSRF namespace mounts ``None`` for this request (discriminated)."""
