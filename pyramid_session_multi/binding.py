"""Bound namespaces: a session valid only beside the partner session it was written with.

The mechanism is a random token (16 bytes, URL-safe text) kept under
:data:`BINDING_KEY` in both sessions.  The partner gets one the first time a
bound session is written beside it; the bound session gets a copy.  On
load, a bound session whose token differs from its partner's (another
client's partner cookie, or a partner invalidated since: a logout) is
rejected; one whose partner is invalidated during the request is
invalidated with it when the request ends (see ``settle``).  Rotating
either keeps the binding.

The token is the add-on's record, kept out of the application's reach as
the lifetime stamps are (see ``pyramid_session_multi.hidden``): the
load step ``load_binding`` takes it out of the library's raw storage
before the application sees the session, and the end of the request puts it
back only while the library saves.  An application key spelled
:data:`BINDING_KEY` (a client's form stored with ``session.update()``) is
application data, stored inside the record, and never read as a token.
"""

import hmac
import secrets
import weakref
from collections.abc import Callable
from typing import Any

from .hidden import ABSENT, conceal, restore, take

#: The key the token is kept under, in the partner's and in the bound
#: session's raw storage (an application key spelled the same stays the
#: application's).
BINDING_KEY = "_session_multi_binding"

#: The attribute of a loaded session holding its :class:`Binding` for the request.
ATTRIBUTE = "_session_multi_binding"


class Binding:
    """The token of one bound or partner session in one request.

    Kept on the session object (never in its data) for the request, it
    becomes its session's ``invalidate()`` when made (a logout drops the
    token) and is one of the add-on's records of its namespace's end of
    request.  It holds its session weakly.
    """

    __slots__ = ("__weakref__", "_invalidate", "_session", "config", "own", "token")

    def __init__(self, namespace_config: Any, session: Any, token: str | None) -> None:
        self.config = namespace_config
        self._session = weakref.ref(session)
        #: the token the session goes out with (``None``: none)
        self.token = token
        #: the application's own value for :data:`BINDING_KEY` while the token is stored
        self.own: Any = ABSENT
        # it becomes the session's invalidate(): a logout drops the token
        attributes = session.__dict__
        self._invalidate: Any = attributes.get("invalidate")
        attributes["invalidate"] = self.invalidate

    def invalidate(self, *args: Any, **kwargs: Any) -> Any:
        if self._invalidate is not None:
            result = self._invalidate(*args, **kwargs)
        else:
            session: Any = self._session()
            result = type(session).invalidate(session, *args, **kwargs)
        self.token = None
        return result

    def put_back(self, response: Any) -> None:
        """Just before the library saves: the token goes into the raw storage."""
        storage = self.config.library.raw_storage(self._session())
        self.own = conceal(storage, BINDING_KEY, self.token)

    def session_multi_hide_again(self, storage: Any) -> None:
        """The library put the token loaded back into ``storage`` by itself
        (pyramid_beaker's ``revert()``): it leaves the data again, as at load."""
        take(storage, BINDING_KEY)

    def session_multi_as_stored(self, data: dict[Any, Any]) -> None:
        """``data``, a copy of what the session holds, as its library would
        have loaded it: the application's own value for the token's key
        rides as stored (what :meth:`session_multi_hide_again` takes out)."""
        conceal(data, BINDING_KEY, None)

    def take_out(self, response: Any) -> None:
        """Once the library saved: the token leaves the data again."""
        storage = self.config.library.raw_storage(self._session())
        restore(storage, BINDING_KEY, self.own)
        self.own = ABSENT

    def persist_around(self, persist: Any, session: Any) -> None:
        """``persist(session)``, the session's own save, with the token put
        back while it runs (where it is the namespace's only record)."""
        self.put_back(None)
        try:
            persist(session)
        finally:
            self.take_out(None)


def binding_of(session: Any) -> Binding | None:
    """The :class:`Binding` of a loaded bound or partner session, else ``None``."""
    binding = getattr(session, "__dict__", {}).get(ATTRIBUTE)
    return binding if isinstance(binding, Binding) else None


def token_of(session: Any) -> Any:
    """The token a loaded bound or partner session carries (``None``: none)."""
    binding = binding_of(session)
    return None if binding is None else binding.token


def load_binding(work: Any, namespace_config: Any, request: Any, session: Any, state: Any) -> None:
    """The load step of a bound namespace and of a partner: the token leaves
    the data before the application sees it; the namespace's end of request
    puts it back."""
    storage = namespace_config.library.raw_storage(session)
    if not isinstance(storage, dict):
        raise TypeError(
            f"pyramid_session_multi: namespace {namespace_config.namespace!r} is bound or a "
            f"partner, but its session library ({namespace_config.library.name}) gives no "
            "raw storage to keep the binding token in; see SessionLibrary.raw_storage"
        )
    stored = take(storage, BINDING_KEY) if namespace_config.cookie_name in request.cookies else None
    binding = Binding(namespace_config, session, stored if isinstance(stored, str) else None)
    session.__dict__[ATTRIBUTE] = binding
    work.hide(namespace_config, session, binding)


def adopt_migrated_token(session: Any, stored: Any) -> None:
    """A fallback's migration moved an old bound or partner session into
    ``session``: the token the old one carried (``stored``, as its library
    stored it) becomes this one's, so that the binding judges it as it
    judged the old one."""
    binding = binding_of(session)
    if binding is not None and isinstance(stored, str):
        binding.token = stored


def keep_through_rotation(session: Any) -> Callable[[], None]:
    """Before a library rotates ``session`` (which may invalidate it): what to
    call once it has, so that the session keeps its token."""
    binding = binding_of(session)
    if binding is None:
        return _nothing
    token = binding.token

    def rotated() -> None:
        binding.token = token

    return rotated


def _nothing() -> None:
    pass


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
    if not data_of(library, session):
        return True
    return same_token(token_of(session), token_of(partner))


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
    if not data_of(library, session):
        return True
    binding, partner_binding = binding_of(session), binding_of(partner)
    if binding is None or partner_binding is None:
        return False  # not loaded by the add-on: nothing proves the binding
    if binding.token is not None:
        return same_token(binding.token, partner_binding.token)
    if partner_binding.token is None:
        partner_binding.token = secrets.token_urlsafe(16)
        partner_binding.config.library.mark_changed(partner)
    binding.token = partner_binding.token
    library.mark_changed(session)
    return True
