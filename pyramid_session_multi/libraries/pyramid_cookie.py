"""pyramid's cookie sessions: ``SignedCookieSessionFactory`` and pyramid_nacl_session.

Both are classes made by ``pyramid.session.BaseCookieSessionFactory``: the
session is a dict, the cookie settings are class attributes, and the data
travels in the cookie, signed or encrypted.
"""

import inspect
import time
from typing import Any

from ..budget import PYRAMID_VALUE_LIMIT
from ..held_request import HELD_REQUEST
from ..hidden import reveal, take
from .base import UNKNOWN, SessionLibrary, closure_of, signer_reads

#: The key the user a login recorded rides under in a pyramid cookie
#: session's data, out of the application's sight (see
#: :mod:`~pyramid_session_multi.lifecycle.cookie_lifetime`): the userid
#: alone when the login was when the session was created, else
#: ``[userid, login - created]``.
USER_KEY = "_psm_u"

#: The class attribute marking a session class as keeping its own stamps
#: (see :mod:`~pyramid_session_multi.lifecycle.cookie_lifetime`): the
#: namespace configuration it stamps for.
STAMPS_FOR = "_session_multi_stamps_for"


def user_record(userid: Any, login: float, created: float) -> Any:
    """What :data:`USER_KEY` holds for ``userid`` recorded at ``login``."""
    offset = round(login - created, 3)
    return userid if offset == 0 else [userid, offset]


def read_user_record(record: Any, created: float) -> tuple[Any, float] | None:
    """The ``(userid, login)`` a :data:`USER_KEY` record holds, ``None`` if it is not one."""
    offset: Any = 0
    if type(record) is list and len(record) == 2:
        record, offset = record
        if type(offset) not in (int, float):
            return None
    if type(record) not in (str, int):  # never a bool, a list or anything else
        return None
    return record, round(created + offset, 3)


def is_pyramid_cookie_factory(factory: Any) -> bool:
    """Whether ``factory`` is a session class of ``pyramid.session.BaseCookieSessionFactory``
    (pyramid's signed sessions and pyramid_nacl_session's encrypted ones)."""
    return (
        inspect.isclass(factory)
        and isinstance(getattr(factory, "_cookie_name", None), str)
        and hasattr(factory, "_set_cookie")
    )


class PyramidCookieLibrary(SessionLibrary):
    """pyramid's signed cookie sessions and pyramid_nacl_session's encrypted ones.

    :meth:`rotate` re-issues the cookie with a new creation time, so its
    value changes (NaCl's would anyway: every encryption has a new nonce).
    The old value cannot be revoked: it stays valid until the session's
    timeout, as any copy of a client-side session does.
    """

    name = "pyramid cookie"
    # pyramid_nacl_session's sessions are pyramid's cookie-session class too;
    # the add-on's subclasses of it queue pyramid's cookie-setting callback
    # from pyramid_session_multi.held_request, on pyramid's behalf
    modules = ("pyramid.session", "pyramid_session_multi.held_request")

    def claims(self, factory: Any) -> bool:
        return is_pyramid_cookie_factory(factory)

    def cookie(self, factory: Any) -> dict[str, Any] | None:
        return {
            "name": factory._cookie_name,
            "secure": getattr(factory, "_cookie_secure", None),
            "httponly": getattr(factory, "_cookie_httponly", None),
            "samesite": getattr(factory, "_cookie_samesite", None),
            "max_age": getattr(factory, "_cookie_max_age", None),
            "path": getattr(factory, "_cookie_path", None),
            "domain": getattr(factory, "_cookie_domain", None),
        }

    def facts(self, factory: Any) -> dict[str, Any]:
        facts = super().facts(factory)
        facts.update(library=self.name, client_side=True)
        facts["timeout"] = getattr(factory, "_timeout", UNKNOWN)
        facts["cookie_value_size"] = PYRAMID_VALUE_LIMIT
        outer = closure_of(factory._set_cookie).get("serializer")
        if outer is not None:
            inner = getattr(outer, "serializer", outer)
            facts["serializer"] = type(inner).__name__
            if hasattr(outer, "secret"):  # webob's SignedSerializer
                facts["secret"] = outer.secret
            elif hasattr(outer, "box"):  # pyramid_nacl_session: a 32-byte key
                facts["secret"] = bytes(outer.box)
        return facts

    def reads(self, factory: Any) -> Any:
        cookie = self.cookie(factory) or {}
        signer = closure_of(factory._set_cookie).get("serializer")
        return (
            cookie.get("name"), cookie.get("path") or "/", cookie.get("domain"),
            signer_reads(signer),
        )  # fmt: skip

    #: the recorded user is the add-on's, not the application's data
    bookkeeping = frozenset({USER_KEY})

    def read(self, session: Any) -> dict[Any, Any] | None:
        data = dict(dict.items(session))
        if getattr(session, STAMPS_FOR, None) is None:
            # as its cookie holds it (a fallback's session): the add-on's
            # record, carrying the application's own key of that name
            take(data, USER_KEY)
        # a session that keeps its own stamps holds the record elsewhere:
        # the key is the application's
        return data

    records_in_data = False

    def lifetime_record(self, session: Any) -> list[Any] | None:
        """Its creation and last issue, pyramid's own fields, and the user
        :data:`USER_KEY` holds: what its cookie says of its lifetime."""
        created = getattr(session, "created", None)
        renewed = getattr(session, "renewed", None)
        if type(created) is not float or type(renewed) is not float:
            return None
        record: list[Any] = [round(created, 3), max(0.0, round(renewed - created, 3))]
        stored = dict.get(session, USER_KEY)
        if getattr(session, STAMPS_FOR, None) is None:
            stored = reveal({}, USER_KEY, stored)
        else:
            stored = session._session_multi_user
        user = read_user_record(stored, created)
        if user is not None:
            record += list(user)
        return record

    def cookie_sent(self, session: Any) -> bool:
        # pyramid's callback drops the session's request once it set the
        # cookie (the add-on's subclasses drop their weak reference to it)
        attributes = getattr(session, "__dict__", None)
        if attributes is None or attributes.get("_dirty") is not True:
            return False
        return attributes.get(HELD_REQUEST, attributes.get("request", False)) is None

    def rotate(self, session: Any) -> None:
        # pyramid keeps whole seconds; a float makes the value new at once
        session.created = time.time()
        session.changed()
