"""pyramid's cookie sessions: ``SignedCookieSessionFactory`` and pyramid_nacl_session.

Both are classes made by ``pyramid.session.BaseCookieSessionFactory``: the
session is a dict, the cookie settings are class attributes, and the data
travels in the cookie, signed or encrypted.
"""

import inspect
import time
from typing import Any

from ..budget import PYRAMID_VALUE_LIMIT
from .base import UNKNOWN, SessionLibrary, closure_of


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

    def read(self, session: Any) -> dict[Any, Any] | None:
        return dict(dict.items(session))

    def rotate(self, session: Any) -> None:
        # pyramid keeps whole seconds; a float makes the value new at once
        session.created = time.time()
        session.changed()
