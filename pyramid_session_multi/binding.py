"""Bound namespaces: a session valid only beside the partner session it was written with.

The mechanism is a random token (16 bytes, URL-safe text) kept under
:data:`BINDING_KEY` in both sessions.  The partner gets one the first time a
bound session is written beside it; the bound session gets a copy.  On
load, a bound session whose token differs from its partner's (another
client's partner cookie, or a partner invalidated since: a logout) is
rejected; one whose partner is invalidated during the request is
invalidated with it when the request ends (see ``settle``).  Rotating
either keeps the data, so it keeps the binding.
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


def settle(library: Any, session: Any, partner: Any) -> bool:
    """Bind a bound ``session`` to ``partner`` as the request ends.

    A session with no data needs no token.  One without a token (written in
    this request) gets the partner's, and the partner gets one first if it
    has none.  Returns ``False`` when the session carries a token its
    partner no longer has: the partner was invalidated in this request (a
    load-time mismatch was rejected already), so the binding is broken.

    Call it partners first along a chain, so that every namespace of the
    chain ends up with the one token of its root.
    """
    data = data_of(library, session)
    if not data:
        return True
    token = data.get(BINDING_KEY)
    partner_token = partner.get(BINDING_KEY)
    if token is not None:
        return same_token(token, partner_token)
    if not isinstance(partner_token, str):
        partner_token = secrets.token_urlsafe(16)
        partner[BINDING_KEY] = partner_token
    session[BINDING_KEY] = partner_token
    return True
