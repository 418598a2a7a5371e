"""The cookie budget: one cookie's size, and the Cookie header all of them make.

A browser keeps at most 4096 bytes of one cookie (name and value); proxies
and servers refuse a request whose Cookie header passes about 8 KB (nginx's
default buffer, Apache's ``LimitRequestFieldSize`` of 8190).  Settings:

``session_multi.cookie_limit``
    bytes of one namespace's cookie, name and value (default 4096);
``session_multi.oversize``
    ``raise`` (default): a cookie over the limit is a :class:`CookieTooLarge`
    error naming the namespace, the size and the limit; ``drop``: it is
    logged, not sent (the client keeps its previous cookie), and every other
    cookie goes out as usual;
``session_multi.cookie_header_limit``
    bytes of the Cookie header the client will send back (default 8190):
    every cookie it sent, with the response's applied, checked once every
    cookie is set; over it, a warning is logged and the panel shows it.

A cookie is measured by its name and value, whatever attributes follow.
Only client-side sessions (pyramid's cookie sessions, pyramid_nacl_session)
have cookies that grow with their data, so the budget is enforced where they
set their cookie; server-side namespaces' cookies hold only an id, and they
count towards the header total.
"""

import inspect
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from webob.cookies import CookieProfile

from .exceptions import CookieTooLarge as CookieTooLarge  # documented here too
from .held_request import HoldsRequestWeakly, changed_holding_request_weakly
from .values import Refused, read, whole_number

logger = logging.getLogger(__name__)

#: Browsers keep at most this many bytes of one cookie (name and value).
COOKIE_SIZE_LIMIT = 4096

#: The Cookie header size proxies and servers commonly accept.
COOKIE_HEADER_LIMIT = 8190

POLICIES = ("raise", "drop")

# Pyramid refuses a cookie-session value over this many bytes by itself.
PYRAMID_VALUE_LIMIT = 4064


def _as_bytes(value: Any) -> int:
    return whole_number(value, "a positive whole number of bytes", 1)


def _as_policy(value: Any) -> str:
    policy = value.strip().lower() if isinstance(value, str) else value
    if policy not in POLICIES:
        raise Refused(", ".join(POLICIES))
    return str(policy)


@dataclass(frozen=True)
class CookieBudget:
    """The limits and the policy, read once from the settings."""

    cookie_limit: int = COOKIE_SIZE_LIMIT
    oversize: str = "raise"
    header_limit: int = COOKIE_HEADER_LIMIT

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any] | None) -> "CookieBudget":
        """The budget the settings describe (the defaults where they say nothing).

        The limits are positive whole numbers of bytes, as text or, from code,
        integers; ``oversize`` is one of :data:`POLICIES`, any case.  A mistake
        is a :class:`~pyramid_session_multi.settings.SettingsError` naming the key.
        """
        settings = settings or {}
        values: dict[str, Any] = {}
        for key, field in (
            ("session_multi.cookie_limit", "cookie_limit"),
            ("session_multi.cookie_header_limit", "header_limit"),
        ):
            if key in settings:
                values[field] = read(key, settings[key], _as_bytes)
        if "session_multi.oversize" in settings:
            values["oversize"] = read(
                "session_multi.oversize", settings["session_multi.oversize"], _as_policy
            )
        return cls(**values)

    def refuse(self, request: Any, namespace: str, cookie_name: str, size: int) -> bool:
        """Apply the policy to a cookie over the limit; ``False`` when dropped."""
        _tell_observers(request, "cookie_refused", namespace, size, self.cookie_limit)
        if self.oversize == "raise":
            error = CookieTooLarge(namespace, cookie_name, size, self.cookie_limit)
            logger.error("%s", error)
            raise error
        logger.error(
            "namespace %r: cookie %r dropped, %d bytes over the %d-byte limit; the client "
            "keeps its previous cookie",
            namespace,
            cookie_name,
            size,
            self.cookie_limit,
        )
        return False

    def schedule_header_check(self, request: Any, manager: Any = None) -> None:
        """Check the Cookie header once every cookie of the response is set.

        Called when a request first loads a namespace, during the view: a
        response callback queued now would run before the cookies of the
        namespaces loaded after it, so it queues the check itself once the
        response callbacks run, behind all of them.
        """
        request.add_response_callback(self._queue_header_check)

    def _queue_header_check(self, request: Any, response: Any) -> None:
        request.add_response_callback(self._check_header_if_it_may_pass)

    def _check_header_if_it_may_pass(self, request: Any, response: Any) -> None:
        # what the client sent plus every Set-Cookie bounds what it sends back:
        # only past the limit are the cookies parsed and totalled exactly
        bound = len(request.environ.get("HTTP_COOKIE", ""))
        for name, value in response.headerlist:
            if name.lower() == "set-cookie":
                bound += len(value) + 2
        if bound > self.header_limit:
            self.check_header(request, response)

    def check_header(self, request: Any, response: Any, manager: Any = None) -> None:
        """Warn when the Cookie header the client will send back passes the limit.

        The header is what the client sent with the response's cookies
        applied: every cookie set replaces or adds its own, every deletion
        removes one, and cookies the add-on does not know (the
        application's, a load balancer's) count as well.  (``manager`` is
        accepted for compatibility and unused.)
        """
        total = next_cookie_header(request, response)
        if total > self.header_limit:
            logger.warning(
                "the cookies this client will send back total %d bytes, over the "
                "Cookie header budget of %d bytes; servers and proxies may refuse its requests",
                total,
                self.header_limit,
            )
            _tell_observers(request, "cookie_header_over", total, self.header_limit)


def is_deletion(header: str) -> bool:
    """Whether the ``Set-Cookie`` value ``header`` tells the browser to drop its cookie."""
    pair, _, attributes = header.partition(";")
    lowered = attributes.lower().replace(" ", "")
    return (
        not pair.partition("=")[2].strip()
        or "max-age=0" in lowered
        or "01-jan-1970" in lowered
        or "01jan1970" in lowered
    )


def set_cookie_sizes(response: Any) -> dict[str, int]:
    """Each cookie the response sets, with its size; a deletion counts 0."""
    sizes = {}
    for name, header in response.headerlist:
        if name.lower() != "set-cookie":
            continue
        pair = header.partition(";")[0].strip()
        cookie = pair.partition("=")[0]
        sizes[cookie] = 0 if is_deletion(header) else len(pair)
    return sizes


def next_cookie_header(request: Any, response: Any) -> int:
    """Bytes of the Cookie header the client sends next: every cookie it
    sent, with what ``response`` sets or deletes applied."""
    sizes = {name: len(name) + 1 + len(value) for name, value in request.cookies.items()}
    sizes.update(set_cookie_sizes(response))
    kept = [size for size in sizes.values() if size]
    return sum(kept) + 2 * max(len(kept) - 1, 0)  # "; " between cookies


def header_total(request: Any, response: Any, cookie_names: Mapping[str, str]) -> int:
    """Bytes of the namespace cookies in the client's next Cookie header."""
    setting = set_cookie_sizes(response)
    cookies = request.cookies
    sizes = []
    for cookie_name in cookie_names.values():
        if cookie_name in setting:
            size = setting[cookie_name]
        elif cookie_name in cookies:
            size = len(cookie_name) + 1 + len(cookies[cookie_name])
        else:
            continue
        if size:
            sizes.append(size)
    return sum(sizes) + 2 * max(len(sizes) - 1, 0)  # "; " between cookies


def _tell_observers(request: Any, method: str, *args: Any) -> None:
    manager = request.__dict__.get("session_multi") if request is not None else None
    if manager is not None:
        manager.tell_observers(method, *args)


def budget_limit_of(cookie_name: str) -> int:
    """The cookie size pyramid refuses on its own for ``cookie_name``."""
    return len(cookie_name) + 1 + PYRAMID_VALUE_LIMIT


def value_size(session: Any) -> int | None:
    """Bytes of the value a pyramid cookie session (signed, or pyramid_nacl_session's,
    built on it) writes for ``session``, measured by serializing it with the
    session's own serializer; ``None`` for a session that has none."""
    serializer = None
    for cls in type(session).__mro__:  # past the add-on's own subclasses
        set_cookie = cls.__dict__.get("_set_cookie")
        if inspect.isfunction(set_cookie):
            serializer = inspect.getclosurevars(set_cookie).nonlocals.get("serializer")
            if serializer is not None:
                break
    if serializer is None:
        return None
    value = serializer.dumps((session.accessed, session.created, dict(session)))
    return len(value.decode("latin-1") if isinstance(value, bytes) else value)


def refused_size(session: Any, cookie_name: str) -> int | None:
    """The size of ``session``'s cookie (name and value) when pyramid refuses
    it for its value's length (over :data:`PYRAMID_VALUE_LIMIT`), else ``None``."""
    try:
        size = value_size(session)
    except Exception:  # the serializer fails: not a refusal of the size
        return None
    if size is None or size <= PYRAMID_VALUE_LIMIT:
        return None
    return len(cookie_name) + 1 + size


def too_long_error(
    session: Any, namespace: str, cookie_name: str, exc: ValueError
) -> CookieTooLarge | None:
    """The library's refusal of a cookie over its own limit, as a
    :class:`CookieTooLarge` that keeps its message and names the namespace;
    ``None`` where the cookie is not over that limit (another error)."""
    size = refused_size(session, cookie_name)
    if size is None:
        return None
    error = CookieTooLarge(namespace, cookie_name, size, COOKIE_SIZE_LIMIT, library_error=exc)
    logger.error("%s", error.__notes__[-1])
    _tell_observers(session.request, "cookie_refused", namespace, size, COOKIE_SIZE_LIMIT)
    return error


#: WebOb's ``CookieProfile`` refuses a cookie value over this many bytes.
WEBOB_VALUE_LIMIT = 4093


def webob_refused_size(exc: BaseException, cookie_name: str) -> int | None:
    """The size of the cookie (name, ``=``, value) WebOb's ``CookieProfile``
    refused by raising ``exc``, measured from the value it was given; ``None``
    for any other error.

    An application's own session library may set its cookie through WebOb's
    profile, which refuses a value over :data:`WEBOB_VALUE_LIMIT` bytes; the
    refusal is recognised by where it was raised and the value measured there.
    """
    last = exc.__traceback__
    while last is not None and last.tb_next is not None:
        last = last.tb_next
    if last is None or last.tb_frame.f_code is not CookieProfile._get_cookies.__code__:
        return None
    value = last.tb_frame.f_locals.get("value")
    if not isinstance(value, str | bytes) or len(value) <= WEBOB_VALUE_LIMIT:
        return None
    return len(cookie_name) + 1 + len(value)


def cookie_refusal(
    request: Any, namespace: str, cookie_name: str, exc: BaseException
) -> BaseException | None:
    """``exc`` when it refuses ``namespace``'s cookie for its size, named and
    logged once; ``None`` for any other error.

    The budget's own :class:`CookieTooLarge` named the namespace when it
    measured the cookie; WebOb's refusal (see :func:`webob_refused_size`) gets
    a note naming it here.
    """
    if isinstance(exc, CookieTooLarge):
        return exc
    size = webob_refused_size(exc, cookie_name)
    if size is None:
        return None
    message = str(CookieTooLarge(namespace, cookie_name, size, COOKIE_SIZE_LIMIT))
    exc.add_note(message)
    logger.error("%s", message)
    _tell_observers(request, "cookie_refused", namespace, size, COOKIE_SIZE_LIMIT)
    return exc


def named_cookie_session(factory: Any, namespace: str) -> Any:
    """A subclass of a pyramid cookie-session class whose refusals name ``namespace``.

    What a cookie session gets when the budget is not needed: a cookie over
    what pyramid accepts keeps pyramid's error message, as a
    :class:`CookieTooLarge` with a note naming the namespace and its size
    (measured, not read from the message).
    """
    cookie_name = factory._cookie_name
    set_cookie = factory._set_cookie

    class Named(HoldsRequestWeakly, factory):  # type: ignore[misc]
        # no cycle with the request (see pyramid_session_multi.held_request)
        changed = changed_holding_request_weakly(factory.changed)

        def _set_cookie(self, response: Any) -> Any:
            try:
                return set_cookie(self, response)
            except ValueError as exc:
                error = too_long_error(self, namespace, cookie_name, exc)
                if error is None:
                    raise
                raise error from exc

    Named.__name__ = factory.__name__
    Named.__qualname__ = factory.__qualname__
    Named.__module__ = factory.__module__
    return Named


def budgeted_cookie_session(factory: Any, namespace: str, budget: CookieBudget) -> Any:
    """A subclass of a pyramid cookie-session class that keeps to ``budget``.

    It looks the same as ``factory``'s class from outside (same name and
    module); only setting the cookie differs.

    The cost stays off the common path: the cookie is measured only when
    the limit is below what pyramid and WebOb refuse on their own.  (The
    Cookie header is checked by the manager, once per request, see
    :meth:`CookieBudget.schedule_header_check`.)
    """
    cookie_name = factory._cookie_name
    cookie_limit = budget.cookie_limit
    measure = cookie_limit < budget_limit_of(cookie_name)

    class Budgeted(HoldsRequestWeakly, factory):  # type: ignore[misc]
        # no cycle with the request (see pyramid_session_multi.held_request)
        changed = changed_holding_request_weakly(factory.changed)

        def _set_cookie(self, response: Any) -> Any:
            request = self.request
            try:
                done = super()._set_cookie(response)
            except ValueError:
                size = refused_size(self, cookie_name)
                if size is None:
                    raise
                return budget.refuse(request, namespace, cookie_name, size)
            if not done or not measure:
                return done
            # name=value, with or without attributes after it
            size = len(response.headerlist[-1][1].partition(";")[0].strip())
            if size > cookie_limit:
                response.unset_cookie(cookie_name, strict=False)
                return budget.refuse(request, namespace, cookie_name, size)
            return done

    Budgeted.__name__ = factory.__name__
    Budgeted.__qualname__ = factory.__qualname__
    Budgeted.__module__ = factory.__module__
    return Budgeted
