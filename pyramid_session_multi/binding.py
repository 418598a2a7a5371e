"""Bound namespaces: a session valid only beside the partner session it was written with.

The mechanism is a random token (16 bytes, URL-safe text) kept under
:data:`BINDING_KEY` in both sessions.  The partner gets one the first time a
bound session is written beside it; the bound session gets a copy.  On
load, a bound session whose token differs from its partner's (another
client's partner cookie, or a partner invalidated since: a logout) is
invalidated.  Rotating either keeps the data, so it keeps the binding.
"""

import hmac
import secrets
from typing import Any

#: The key the token is kept under, in the partner and in the bound session.
BINDING_KEY = "_session_multi_binding"


def data_of(library: Any, session: Any) -> dict[Any, Any]:
    """The session's data, read raw where the library allows."""
    data: dict[Any, Any] | None = library.read(session)
    if data is None:
        items = dict(session.items())
        # loaded now: a lazy library's own read leaves its bookkeeping out
        data = library.read(session)
        if data is None:
            data = items
    return data


def belongs(library: Any, session: Any, partner: Any) -> bool:
    """Whether a freshly loaded bound ``session`` may stay beside ``partner``.

    An empty session belongs anywhere; one with data must carry the
    partner's token.
    """
    data = data_of(library, session)
    if not data:
        return True
    return same_token(data.get(BINDING_KEY), partner.get(BINDING_KEY))


def same_token(token: Any, partner_token: Any) -> bool:
    """Whether two stored tokens are the same token (compared in constant time)."""
    return (
        isinstance(token, str)
        and isinstance(partner_token, str)
        and hmac.compare_digest(token, partner_token)
    )


class BindingStamp:
    """A response callback binding a session written in this request to its partner.

    It is put at the front of the response callbacks when the bound
    namespace loads, so that it runs before the callbacks that save either
    session or set their cookies.
    """

    __slots__ = ("library", "on_broken", "partner", "session")

    def __init__(self, library: Any, session: Any, partner: Any, on_broken: Any) -> None:
        self.library = library
        self.session = session
        self.partner = partner
        #: called with no argument when the partner changed under a bound
        #: session that was bound at load (its token is gone: a logout)
        self.on_broken = on_broken

    def __call__(self, request: Any, response: Any) -> None:
        data = data_of(self.library, self.session)
        if not data:
            return
        token = data.get(BINDING_KEY)
        partner_token = self.partner.get(BINDING_KEY)
        if token is not None:
            if not same_token(token, partner_token):
                self.on_broken()
            return
        if not isinstance(partner_token, str):
            partner_token = secrets.token_urlsafe(16)
            self.partner[BINDING_KEY] = partner_token
        self.session[BINDING_KEY] = partner_token
