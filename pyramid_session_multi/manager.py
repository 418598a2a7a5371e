"""The per-request lazy mapping behind ``request.session_multi``."""

import logging
import sys
import weakref
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from pyramid.request import Request

from .binding import BindingStamp, belongs
from .budget import COOKIE_SIZE_LIMIT, TOO_LONG, CookieTooLarge
from .config import (
    Discriminator,
    NamespaceConfig,
    SessionMultiManagerConfig,
    Validator,
    get_manager_config,
)
from .events import (
    SessionInvalidated,
    SessionLoaded,
    SessionRejected,
    SessionRotated,
    has_subscribers,
    hash_session_id,
)

_MISSING: Any = object()


logger = logging.getLogger("pyramid_session_multi")


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


class _StrongRef:
    """Quacks like ``weakref.ref`` but keeps its object alive."""

    __slots__ = ("obj",)

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def __call__(self) -> Any:
        return self.obj


class SessionMultiManager(Mapping[str, Any]):
    """The sessions of one request, one per namespace, created on demand.

    ``manager[namespace]`` calls that namespace's discriminator (if any) and
    factory the first time it is asked for, and returns the same session for
    the rest of the request, finished callbacks included; a namespace whose
    discriminator says no mounts ``None``.

    It is a read-only :class:`collections.abc.Mapping` of the namespaces
    *loaded so far*: ``in``, ``len``, iteration, ``keys()``, ``values()``,
    ``items()``, ``==`` and :meth:`copy` speak of those, while
    :attr:`namespaces` lists every registered one.  Every mutation raises
    ``ValueError``.

    ``request.session_multi`` holds its request weakly, so it never keeps it
    alive; a manager made by :func:`new_session_multi` holds it strongly, so
    that it works for as long as the caller keeps the manager.
    """

    #: the configuration used when none is given (see :func:`manager_class_for`)
    _default_config: SessionMultiManagerConfig | None = None

    __slots__ = (
        "_config",
        "_configs",
        "_observers",
        "_release_scheduled",
        "_request_ref",
        "_sessions",
    )

    def __init__(
        self,
        request: Request,
        config: SessionMultiManagerConfig | None = None,
        *,
        weak: bool = True,
    ) -> None:
        self._request_ref: Callable[[], Any] = weakref.ref(request) if weak else _StrongRef(request)
        if config is None:
            config = self._default_config or get_manager_config(request.registry)
            if config is None:
                config = SessionMultiManagerConfig()
        self._config = config
        self._configs = config.configs
        self._sessions: dict[str, Any] = {}
        # a list once an observer is added; a shared empty tuple until then
        self._observers: list[Any] | tuple[()] = ()
        self._release_scheduled = False

    @property
    def request(self) -> Request:
        """The request of this manager (as 0.4's ``manager.request``)."""
        return self._live_request()

    def _live_request(self) -> Request:
        request = self._request_ref()
        if request is None:
            raise RuntimeError("pyramid_session_multi: the request of this manager is gone")
        return request

    # loading

    def __getitem__(self, namespace: str) -> Any:
        session = self._sessions.get(namespace, _MISSING)
        if session is not _MISSING:
            return session
        # Loading, inlined: this runs on every request that uses a session.
        namespace_config = self._configs.get(namespace)
        if namespace_config is None:
            raise UnregisteredSession(namespace)
        request = self._request_ref()
        if request is None:
            request = self._live_request()  # raises
        if namespace_config.plain:
            # no discriminator, validator, binding or preparation: the
            # common case, and the hot path
            if not self._release_scheduled:
                request.finished_callbacks.append(self._release)
                self._release_scheduled = True
            try:
                session = namespace_config.loader(request)  # type: ignore[misc]
            except Exception as exc:
                exc.add_note(
                    "pyramid_session_multi: raised by the session factory of "
                    f"namespace {namespace!r}"
                )
                _log_load_error(namespace, exc)
                raise
        else:
            session = self._load_in_full(namespace_config, request)
        self._sessions[namespace] = session
        if self._observers:
            for observer in self._observers:
                observer.namespace_loaded(namespace, session)
        if request.registry.has_listeners:  # one attribute when nothing subscribes
            self._notify(SessionLoaded, namespace, session)
        return session

    def _schedule_release(self, request: Request) -> None:
        if not self._release_scheduled:
            # Sessions commonly hold their request; forget them once the
            # request is over so that nothing cyclic outlives it.  (The deque
            # add_finished_callback appends to, minus a call.)
            request.finished_callbacks.append(self._release)
            self._release_scheduled = True

    def _load_in_full(self, namespace_config: NamespaceConfig, request: Request) -> Any:
        namespace = namespace_config.namespace
        session = partner = None
        discriminator = namespace_config.discriminator
        bound_to = namespace_config.bound_to
        if bound_to is not None:
            # a bound namespace exists only where its partner does
            partner = self[bound_to]
            if partner is None:
                return None
        try:
            if discriminator is None or call_for_namespace(
                "discriminator", namespace, discriminator, request
            ):
                self._schedule_release(request)
                session = call_for_namespace(
                    "session factory", namespace, namespace_config.loader, request
                )
                if namespace_config.prepare is not None:
                    namespace_config.prepare(namespace, session)
                validator = namespace_config.validator
                if validator is not None and not call_for_namespace(
                    "validator", namespace, validator, request, session
                ):
                    self._reject(namespace, session, "validator")
                if bound_to is not None:
                    self._check_binding(namespace_config, session, partner)
        except Exception as exc:
            _log_load_error(namespace, exc)
            raise
        return session

    def _reject(self, namespace: str, session: Any, reason: str) -> None:
        session_id = self._session_id(namespace, session)
        session.invalidate()
        self.tell_observers("namespace_rejected", namespace, reason)
        self._notify(SessionRejected, namespace, session, session_id, reason=reason)

    def _check_binding(self, namespace_config: NamespaceConfig, session: Any, partner: Any) -> None:
        library = namespace_config.library
        namespace = namespace_config.namespace
        if not belongs(library, session, partner):
            self._reject(namespace, session, "binding")

        def broken() -> None:
            # the partner lost its token in this request (a logout)
            self._reject(namespace, session, "binding")
            self._live_request().add_response_callback(_CookieExpiry(namespace_config, session))

        stamp = BindingStamp(library, session, partner, broken)
        # before the callbacks that save either session or set its cookie
        self._live_request().response_callbacks.appendleft(stamp)

    def _notify(
        self,
        event_class: type,
        namespace: str,
        session: Any,
        session_id: str | None = _MISSING,
        **extra: Any,
    ) -> None:
        """Build and send ``event_class`` if anything subscribes to it."""
        registry = self._live_request().registry
        if not has_subscribers(registry, event_class):
            return
        if session_id is _MISSING:
            session_id = None if session is None else self._session_id(namespace, session)
        settings = registry.settings
        if "old_id" in extra:
            extra["old_id_hash"] = hash_session_id(settings, extra.pop("old_id"))
        event = event_class(
            self._live_request(), namespace, session, hash_session_id(settings, session_id), **extra
        )
        registry.notify(event)

    def _session_id(self, namespace: str, session: Any) -> str | None:
        try:
            session_id = self._configs[namespace].library.session_id(session)
        except Exception:  # an event must not break the request
            return None
        return session_id if isinstance(session_id, str) else None

    def _release(self, request: Request) -> None:
        # the deque _load appended to, without the descriptor walk of an attribute
        callbacks = request.__dict__.get("finished_callbacks", ())
        if callbacks and any(
            getattr(callback, "__func__", None) is not _RELEASE for callback in callbacks
        ):
            # Finished callbacks queued after this one may still use the
            # sessions: go last, and let them see the objects the view used.
            callbacks.append(self._release)
            return
        failure = sys.exception()
        if failure is not None:
            self._explain_failed_response(failure)
        self._sessions.clear()
        self._observers = ()
        self._release_scheduled = False

    def _explain_failed_response(self, failure: BaseException) -> None:
        if isinstance(failure, CookieTooLarge):  # the budget's own error says it all
            logger.error("%s", failure)
            return
        # Another library's cookie over WebOb's limit makes it raise from a
        # response callback, with no word of which session: find the cookie
        # in the traceback.
        match = TOO_LONG.search(str(failure)) if isinstance(failure, ValueError) else None
        if match is None:
            return
        namespace = self._namespace_in_traceback(failure)
        if namespace is None:
            return
        cookie_name = self._configs[namespace].cookie_name
        size = len(cookie_name) + 1 + int(match.group(1))
        message = str(CookieTooLarge(namespace, cookie_name, size, COOKIE_SIZE_LIMIT))
        failure.add_note(message)
        logger.error("%s", message)
        self.tell_observers("cookie_refused", namespace, size, COOKIE_SIZE_LIMIT)

    def _namespace_in_traceback(self, failure: BaseException) -> str | None:
        by_cookie = {config.cookie_name: ns for ns, config in self._configs.items()}
        traceback = failure.__traceback__
        while traceback is not None:
            frame_locals = traceback.tb_frame.f_locals
            for candidate in (
                frame_locals.get("name"),
                getattr(frame_locals.get("self"), "_cookie_name", None),
                getattr(frame_locals.get("self"), "cookie_name", None),
            ):
                if isinstance(candidate, str) and candidate in by_cookie:
                    return by_cookie[candidate]
            traceback = traceback.tb_next
        return None

    def tell_observers(self, method: str, *args: Any) -> None:
        """Call ``method(*args)`` on each observer that has it.

        ``namespace_loaded`` is required of an observer; the others of
        :class:`~pyramid_session_multi.interfaces.ISessionMultiObserver` are
        optional.
        """
        for observer in self._observers:
            notify = getattr(observer, method, None)
            if notify is not None:
                notify(*args)

    def add_observer(self, observer: Any) -> None:
        """Tell ``observer`` about every namespace loaded from now on.

        ``observer`` provides
        :class:`~pyramid_session_multi.interfaces.ISessionMultiObserver`.
        Observers are forgotten when the request finishes.
        """
        self._observers = [*self._observers, observer]

    def get(self, namespace: str, default: Any = None) -> Any:
        """Return the session of ``namespace``, ``default`` if unregistered."""
        try:
            return self[namespace]
        except UnregisteredSession:
            return default

    def rotate(self, *namespaces: str, raise_errors: bool = False) -> dict[str, Exception]:
        """Give sessions new ids, keeping their data: call it at login.

        With no argument, every namespace loaded in this request or whose
        cookie the request carries is rotated (one its discriminator turns
        away is skipped); name namespaces to rotate only those.  Each gets a
        new id and sends its new cookie; for server-side stores the old key,
        file or row is deleted at once, so the cookie the client held before
        brings back nothing.  Writes after ``rotate()`` are kept.  How each
        library rotates is its adapter's
        :meth:`~pyramid_session_multi.libraries.SessionLibrary.rotate`.

        A namespace that fails to rotate does not stop the others: the error
        gets a note naming it and is logged, the namespace's cookie is
        deleted (so the client does not keep an id that outlived the
        privilege change), and the failures are returned as a dict of
        namespace to exception.  ``raise_errors=True`` raises the first
        after every namespace was tried.
        """
        request = self._live_request()
        for namespace in namespaces:
            if namespace not in self._configs:
                raise UnregisteredSession(namespace)
        chosen = namespaces or tuple(self._carried(request))
        failures: dict[str, Exception] = {}
        for namespace in chosen:
            namespace_config = self._configs[namespace]
            try:
                session = self[namespace]
                if session is None:
                    continue
                library = namespace_config.library
                library.load(session)
                old_id = self._session_id(namespace, session)
                library.rotate(session)
            except Exception as exc:
                exc.add_note(f"pyramid_session_multi: rotating namespace {namespace!r} failed")
                logger.error(
                    "namespace %r could not be rotated; its cookie is deleted: %s: %s",
                    namespace,
                    type(exc).__name__,
                    exc,
                )
                failures[namespace] = exc
                request.add_response_callback(_CookieExpiry(namespace_config, None))
                continue
            self.tell_observers("namespace_rotated", namespace)
            self._notify(SessionRotated, namespace, session, old_id=old_id)
        if failures and raise_errors:
            raise next(iter(failures.values()))
        return failures

    def _carried(self, request: Request) -> Iterator[str]:
        """The namespaces loaded so far or whose cookie ``request`` carries."""
        cookies = request.cookies
        for namespace, namespace_config in self._configs.items():
            if namespace in self._sessions or namespace_config.cookie_name in cookies:
                yield namespace

    def invalidate(self, *, raise_errors: bool = False) -> dict[str, Exception]:
        """Log the client out of every namespace it holds.

        The namespaces invalidated are those loaded in this request and those
        whose cookie the request carries; a namespace the client never had is
        left alone (no cookie, no backend I/O), and so is one its
        discriminator turns away.  For pyramid_beaker the old file or row is
        deleted at once, as pyramid_session_redis deletes its key.  A
        namespace that is still empty when the response goes out has its
        cookie deleted.

        A namespace whose ``invalidate()`` raises (its store is down, say)
        does not stop the others: the error is logged with the namespace
        named, the namespace's cookie is deleted anyway, so the client no
        longer presents it, and the failures are returned as a dict of
        namespace to exception, empty when all went well.  With
        ``raise_errors=True`` the first failure is raised after every
        namespace was tried; the cookies still go out if an exception view
        renders the response.
        """
        request = self._live_request()
        failures: dict[str, Exception] = {}
        for namespace in list(self._carried(request)):
            namespace_config = self._configs[namespace]
            session = None
            try:
                session = self[namespace]
                if session is None:
                    continue
                namespace_config.library.load(session)
                old_id = self._session_id(namespace, session)
                session.invalidate()
                self.tell_observers("namespace_invalidated", namespace)
                self._notify(SessionInvalidated, namespace, session, old_id)
            except Exception as exc:
                exc.add_note(f"pyramid_session_multi: invalidating namespace {namespace!r} failed")
                logger.error(
                    "namespace %r could not be invalidated; its cookie is deleted "
                    "but its stored data may remain: %s: %s",
                    namespace,
                    type(exc).__name__,
                    exc,
                )
                failures[namespace] = exc
                session = None
            request.add_response_callback(_CookieExpiry(namespace_config, session))
        if failures and raise_errors:
            raise next(iter(failures.values()))
        return failures

    # what has been loaded so far

    def __contains__(self, namespace: object) -> bool:
        return namespace in self._sessions

    def __len__(self) -> int:
        return len(self._sessions)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._sessions))

    def copy(self) -> dict[str, Any]:
        """A plain ``dict`` of the namespaces loaded so far and their sessions."""
        return dict(self._sessions)

    def __repr__(self) -> str:
        return (
            f"<SessionMultiManager loaded={list(self._sessions)!r} "
            f"namespaces={self._config.namespaces!r}>"
        )

    # the mapping is read-only

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise ValueError(
            "request.session_multi is read-only: register namespaces with "
            "register_session_factory and change the sessions themselves."
        )

    __setitem__ = __delitem__ = _refuse
    pop = popitem = clear = update = setdefault = _refuse

    # the same introspection as the registry utility

    @property
    def namespaces(self) -> list[str]:
        return self._config.namespaces

    @property
    def discriminators(self) -> list[str]:
        return self._config.discriminators

    @property
    def namespaces_to_cookienames(self) -> dict[str, str]:
        return self._config.namespaces_to_cookienames

    def has_namespace(self, namespace: str) -> bool:
        return self._config.has_namespace(namespace)

    def get_namespace_config(self, namespace: str) -> Any:
        return self._config.get_namespace_config(namespace)

    def get_namespace_cookiename(self, namespace: str) -> str | None:
        return self._config.get_namespace_cookiename(namespace)

    def get_namespace_discriminator(self, namespace: str) -> Discriminator | None:
        return self._config.get_namespace_discriminator(namespace)

    def get_namespace_validator(self, namespace: str) -> Validator | None:
        return self._config.get_namespace_validator(namespace)


_RELEASE = SessionMultiManager._release


class _CookieExpiry:
    """A response callback deleting an invalidated namespace's cookie.

    It runs after the session's own callbacks.  A session the application
    wrote to again after invalidating keeps the cookie its library set; one
    that stayed empty (or failed) has the cookie deleted instead of
    re-issued as an empty session.
    """

    __slots__ = ("namespace_config", "session")

    def __init__(self, namespace_config: NamespaceConfig, session: Any) -> None:
        self.namespace_config = namespace_config
        self.session = session

    def __call__(self, request: Request, response: Any) -> None:
        config = self.namespace_config
        if self.session is not None and config.library.read(self.session) != {}:
            return
        response.unset_cookie(config.cookie_name, strict=False)
        response.delete_cookie(
            config.cookie_name, path=config.cookie_path, domain=config.cookie_domain
        )


def _log_load_error(namespace: str, exc: Exception) -> None:
    # Operators see which store failed even where no traceback is logged.
    logger.error("namespace %r could not be loaded: %s: %s", namespace, type(exc).__name__, exc)


def call_for_namespace(role: str, namespace: str, func: Any, *args: Any) -> Any:
    """Call ``func(*args)``; an exception gets a note naming ``namespace``."""
    try:
        return func(*args)
    except Exception as exc:
        exc.add_note(f"pyramid_session_multi: raised by the {role} of namespace {namespace!r}")
        raise


def new_session_multi(request: Request) -> SessionMultiManager:
    """Return a new :class:`SessionMultiManager` for ``request``.

    Call it to give a ``pyramid.testing.DummyRequest`` a manager; it looks
    the configuration up in ``request.registry``.  The manager keeps the
    request alive, so ``new_session_multi(DummyRequest())`` works alone.
    """
    return SessionMultiManager(request, weak=False)


def manager_class_for(config: SessionMultiManagerConfig) -> type[SessionMultiManager]:
    """The class ``request.session_multi`` is reified from.

    A subclass of :class:`SessionMultiManager` whose managers use ``config``
    unless given another: it spares every request the utility lookup of
    :func:`new_session_multi`, and a call.
    """
    attributes = {"__slots__": (), "_default_config": config, "__module__": __name__}
    cls = type("SessionMultiManager", (SessionMultiManager,), attributes)
    cls.__qualname__ = SessionMultiManager.__qualname__
    return cls
