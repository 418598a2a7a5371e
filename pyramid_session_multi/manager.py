"""The per-request lazy mapping behind ``request.session_multi``."""
import logging
import weakref
from typing import Any
from typing import Dict
from typing import Iterator
from typing import List
from typing import Optional
from typing import Tuple

from pyramid.request import Request

from .config import Discriminator
from .config import SessionMultiManagerConfig
from .config import Validator
from .config import get_manager_config

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


class SessionMultiManager:
    """The sessions of one request, one per namespace, created on demand.

    ``manager[namespace]`` calls that namespace's discriminator (if any) and
    factory the first time it is asked for, and returns the same session for
    the rest of the request; a namespace whose discriminator says no mounts
    ``None``.  ``in``, ``len``, iteration and ``keys()`` speak of the
    namespaces loaded so far; :attr:`namespaces` lists every registered one.
    The mapping itself is read-only: every mutation raises ``ValueError``.

    The manager holds its request weakly, so it never keeps it alive.
    """

    __slots__ = ("_request_ref", "_config", "_configs", "_sessions", "_observers",
                 "_release_scheduled")

    def __init__(self, request: Request,
                 config: Optional[SessionMultiManagerConfig] = None) -> None:
        self._request_ref = weakref.ref(request)
        if config is None:
            config = get_manager_config(request.registry)
            if config is None:
                config = SessionMultiManagerConfig()
        self._config = config
        self._configs = config.configs
        self._sessions: Dict[str, Any] = {}
        self._observers: List[Any] = []
        self._release_scheduled = False

    # loading

    def __getitem__(self, namespace: str) -> Any:
        session = self._sessions.get(namespace, _MISSING)
        if session is _MISSING:
            session = self._load(namespace)
        return session

    def _load(self, namespace: str) -> Any:
        namespace_config = self._configs.get(namespace)
        if namespace_config is None:
            raise UnregisteredSession(namespace)
        request = self._request_ref()
        if request is None:
            raise RuntimeError(
                "pyramid_session_multi: the request of this manager is gone"
            )
        session = None
        discriminator = namespace_config.discriminator
        try:
            if discriminator is None or call_for_namespace(
                "discriminator", namespace, discriminator, request
            ):
                if not self._release_scheduled:
                    # Sessions commonly hold their request; forget them once
                    # the request is over so that nothing cyclic outlives it.
                    # (The deque add_finished_callback appends to, minus a
                    # call: this is the per-request hot path.)
                    request.finished_callbacks.append(self._release)
                    self._release_scheduled = True
                session = call_for_namespace(
                    "session factory", namespace, namespace_config.factory, request
                )
                validator = namespace_config.validator
                if validator is not None and not call_for_namespace(
                    "validator", namespace, validator, request, session
                ):
                    session.invalidate()
        except Exception as exc:
            # Operators see which store failed even where no traceback is logged.
            logger.error("namespace %r could not be loaded: %s: %s",
                         namespace, type(exc).__name__, exc)
            raise
        self._sessions[namespace] = session
        if self._observers:
            for observer in self._observers:
                observer.namespace_loaded(namespace, session)
        return session

    def _release(self, request: Request) -> None:
        self._sessions.clear()
        del self._observers[:]
        self._release_scheduled = False

    def add_observer(self, observer: Any) -> None:
        """Tell ``observer`` about every namespace loaded from now on.

        ``observer`` provides
        :class:`~pyramid_session_multi.interfaces.ISessionMultiObserver`.
        Observers are forgotten when the request finishes.
        """
        self._observers.append(observer)

    def get(self, namespace: str, default: Any = None) -> Any:
        """Return the session of ``namespace``, ``default`` if unregistered."""
        try:
            return self[namespace]
        except UnregisteredSession:
            return default

    def invalidate(self) -> None:
        """Invalidate the session of every namespace available to the request.

        Namespaces turned away by their discriminator are skipped.  Every
        namespace is tried even if one fails; the first error is raised
        afterwards, with its namespace named.
        """
        first_error: Optional[BaseException] = None
        for namespace in self._config.namespaces:
            try:
                session = self[namespace]
                if session is not None:
                    session.invalidate()
            except Exception as exc:
                if first_error is None:
                    first_error = exc
        if first_error is not None:
            raise first_error

    # what has been loaded so far

    def __contains__(self, namespace: object) -> bool:
        return namespace in self._sessions

    def __len__(self) -> int:
        return len(self._sessions)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._sessions))

    def keys(self) -> List[str]:
        return list(self._sessions)

    def values(self) -> List[Any]:
        return list(self._sessions.values())

    def items(self) -> List[Tuple[str, Any]]:
        return list(self._sessions.items())

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
    def namespaces(self) -> List[str]:
        return self._config.namespaces

    @property
    def discriminators(self) -> List[str]:
        return self._config.discriminators

    @property
    def namespaces_to_cookienames(self) -> Dict[str, str]:
        return self._config.namespaces_to_cookienames

    def has_namespace(self, namespace: str) -> bool:
        return self._config.has_namespace(namespace)

    def get_namespace_config(self, namespace: str) -> Any:
        return self._config.get_namespace_config(namespace)

    def get_namespace_cookiename(self, namespace: str) -> Optional[str]:
        return self._config.get_namespace_cookiename(namespace)

    def get_namespace_discriminator(self, namespace: str) -> Optional[Discriminator]:
        return self._config.get_namespace_discriminator(namespace)

    def get_namespace_validator(self, namespace: str) -> Optional[Validator]:
        return self._config.get_namespace_validator(namespace)


def call_for_namespace(role: str, namespace: str, func: Any, *args: Any) -> Any:
    """Call ``func(*args)``; an exception gets a note naming ``namespace``."""
    try:
        return func(*args)
    except Exception as exc:
        exc.add_note(f"pyramid_session_multi: raised by the {role} of "
                     f"namespace {namespace!r}")
        raise


def new_session_multi(request: Request) -> SessionMultiManager:
    """Return a new :class:`SessionMultiManager` for ``request``.

    Call it to give a ``pyramid.testing.DummyRequest`` a manager; it looks
    the configuration up in ``request.registry``.
    """
    return SessionMultiManager(request)


class ManagerFactory:
    """What ``request.session_multi`` is reified from.

    It holds the registry's configuration, sparing every request the
    utility lookup :func:`new_session_multi` does.
    """

    def __init__(self, config: SessionMultiManagerConfig) -> None:
        self.config = config

    def __call__(self, request: Request) -> SessionMultiManager:
        return SessionMultiManager(request, self.config)
