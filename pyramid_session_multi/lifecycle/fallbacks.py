"""Fallback factories: change a secret or a store without logging anyone out.

A namespace registered with ``fallbacks=[...]`` tries them, in order, only
when its own factory finds no session (none with data) for the request and
the request carries a fallback's cookie.  The first fallback that finds a session wins:

1. its data moves into the session the namespace's own factory made, which
   is therefore written in this same response (the copy keeps its creation
   time where both libraries can tell it);
2. once that session is saved (or logged out in the same request), the old
   copy is *retired*: its server-side state is deleted and its cookie
   deleted where its name differs from the namespace's own.

A fallback reads through a detached copy of the request (see
:mod:`.detached`): whatever its library queues there (saving, setting its
cookie) never runs, so a fallback never writes a session nor sets a cookie
except to delete its own.  A fallback that finds nothing costs that read
only; a request that carries none of the fallbacks' cookies costs nothing.

Two uses:

- a new secret: a fallback of the same library and cookie with the old
  secret reads what the client still carries, and the namespace writes it
  again under the new one;
- a new store: any other factory (a Beaker file session behind a Redis
  namespace, say) reads the old session, which moves to the new store.
"""

import logging
from dataclasses import dataclass
from typing import Any

from pyramid.exceptions import ConfigurationError

from ..binding import BINDING_KEY, adopt_migrated_token, data_of
from ..cookies import deletion_secure
from ..events import SessionMigrated, log_decision
from ..hidden import take
from ..libraries import UNKNOWN, library_for
from .detached import detached_request

# the lifetime's load step comes before the migration, which adopts the stamps
from .lifetime import LIFETIME_KEY
from .lifetime_step import adopt_migrated
from .loading import call_for_namespace
from .saving import delete_cookie
from .work import RequestWork

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Fallback:
    """A fallback factory and the cookie it reads, for ``fallbacks=[...]``.

    A plain factory in ``fallbacks`` is enough wherever the add-on can tell
    the cookie it reads (pyramid's cookie sessions, pyramid_nacl_session,
    pyramid_session_redis, pyramid_beaker); wrap any other in
    ``Fallback(factory, cookie_name="...")``.
    """

    #: the session factory, or a dotted name to one
    factory: Any
    #: the cookie it reads; found on the factory where the add-on can
    cookie_name: str | None = None


@dataclass(frozen=True)
class FallbackConfig:
    """One fallback of a namespace, resolved and checked at registration."""

    #: its position in ``fallbacks``, from 1
    position: int
    factory: Any
    #: its :class:`~pyramid_session_multi.interfaces.ISessionLibrary` adapter
    library: Any
    cookie_name: str
    cookie_path: str = "/"
    cookie_domain: str | None = None
    #: what its deletion carries beside Path and Domain (see
    #: :class:`~pyramid_session_multi.config.NamespaceConfig`); an old
    #: cookie is never taken as partitioned
    cookie_secure: bool = False
    cookie_samesite: str | None = None
    partitioned: bool = False

    def describe(self) -> str:
        """How logs, events, the panel and ``psessions`` name it."""
        return f"fallback {self.position} ({self.library.name}, cookie {self.cookie_name!r})"


def build_fallbacks(
    namespace: str,
    fallbacks: Any,
    resolve: Any,
    libraries: Any,
    own_factory: Any,
    own_library: Any,
) -> tuple[FallbackConfig, ...]:
    """Check and resolve a registration's ``fallbacks``; mistakes are ConfigurationErrors.

    ``resolve`` turns dotted names into objects (``None`` refuses them);
    ``libraries`` are the application's session library adapters.
    """
    if fallbacks is None:
        return ()
    if isinstance(fallbacks, str | bytes) or not hasattr(fallbacks, "__iter__"):
        raise ConfigurationError(
            f"pyramid_session_multi: namespace {namespace!r}: fallbacks is a list of "
            f"session factories (or dotted names, or Fallback(...)), not {fallbacks!r}."
        )
    own_secret = _secret(own_library, own_factory)
    own_cookie = own_library.cookie(own_factory) or {}
    built: list[FallbackConfig] = []
    for position, given in enumerate(fallbacks, 1):
        spec = given if isinstance(given, Fallback) else Fallback(given)
        where = f"namespace {namespace!r}: fallback {position}"
        factory = spec.factory
        if isinstance(factory, str):
            if resolve is None:
                raise ConfigurationError(
                    f"pyramid_session_multi: {where} is the dotted name {factory!r}; pass "
                    "the factory itself, or use the config.register_session_factory directive."
                )
            try:
                factory = resolve(factory)
            except Exception as exc:
                raise ConfigurationError(
                    f"pyramid_session_multi: {where}: {factory!r} cannot be imported "
                    f"({type(exc).__name__}: {exc}); check the dotted name."
                ) from exc
        if factory is None or not callable(factory):
            raise ConfigurationError(
                f"pyramid_session_multi: {where} must be a session factory, not {factory!r}."
            )
        if factory is own_factory:
            raise ConfigurationError(
                f"pyramid_session_multi: {where} is the namespace's own factory; a fallback "
                "is the factory that reads what the namespace's own cannot (an old secret, "
                "an old store)."
            )
        library = library_for(factory, libraries)
        cookie = library.cookie(factory) or {}
        found = cookie.get("name")
        cookie_name = spec.cookie_name or found
        if spec.cookie_name is not None and found is not None and spec.cookie_name != found:
            raise ConfigurationError(
                f"pyramid_session_multi: {where} was given cookie_name={spec.cookie_name!r}, "
                f"but the factory reads the cookie {found!r}; leave cookie_name out or make "
                "the two agree."
            )
        if not isinstance(cookie_name, str) or not cookie_name:
            raise ConfigurationError(
                f"pyramid_session_multi: cannot tell which cookie {where} reads; wrap it as "
                "pyramid_session_multi.Fallback(factory, cookie_name=...)."
            )
        problem = library.fallback_problem(factory)
        if problem is not None:
            raise ConfigurationError(f"pyramid_session_multi: {where}: {problem}.")
        if cookie_name == own_cookie.get("name") and (
            cookie.get("path") or "/",
            cookie.get("domain"),
        ) != (own_cookie.get("path") or "/", own_cookie.get("domain")):
            raise ConfigurationError(
                f"pyramid_session_multi: {where} reads the namespace's own cookie "
                f"{cookie_name!r} with another path or domain: the browser would keep both "
                "cookies and the old one could never be deleted. Give the fallback the "
                "namespace's path and domain."
            )
        secret = _secret(library, factory)
        reads = _reads(library, factory)
        for earlier in built:
            if (
                secret is not None
                and earlier.library is library
                and earlier.cookie_name == cookie_name
                and _secret(library, earlier.factory) == secret
                # another store or algorithm under the same secret reads other sessions
                and reads is not None
                and reads == _reads(library, earlier.factory)
            ):
                raise ConfigurationError(
                    f"pyramid_session_multi: {where} has the same secret, cookie and store "
                    f"as fallback {earlier.position}; list each old secret once."
                )
        if (
            library is own_library
            and secret is not None
            and secret == own_secret
            and reads is not None
            and reads == _reads(own_library, own_factory)
        ):
            raise ConfigurationError(
                f"pyramid_session_multi: {where} has the namespace's own secret, cookie, "
                "algorithms and store, so it reads only what the namespace reads already; "
                "give it the old secret (or the old store, cookie or algorithm)."
            )
        built.append(
            FallbackConfig(
                position=position,
                factory=factory,
                library=library,
                cookie_name=cookie_name,
                cookie_path=cookie.get("path") or "/",
                cookie_domain=cookie.get("domain"),
                cookie_secure=deletion_secure(cookie_name, cookie),
                cookie_samesite=cookie.get("samesite"),
            )
        )
    if any(fallback.cookie_name == own_cookie.get("name") for fallback in built):
        problem = own_library.shared_cookie_problem(own_factory)
        if problem is not None:
            raise ConfigurationError(f"pyramid_session_multi: namespace {namespace!r}: {problem}.")
    return tuple(built)


def _reads(library: Any, factory: Any) -> Any:
    try:
        return library.reads(factory)
    except Exception:  # an application's own adapter, or a factory it cannot read
        return None


def _secret(library: Any, factory: Any) -> Any:
    try:
        secret = library.facts(factory).get("secret")
    except Exception:
        return None
    if secret is UNKNOWN or secret in (None, "", b""):
        return None
    return secret.encode() if isinstance(secret, str) else secret


class Retirement:
    """An after-save hook retiring the old copy a fallback read."""

    __slots__ = ("fallback", "namespace_config", "old", "work")

    def __init__(self, work: Any, namespace_config: Any, fallback: Any, old: Any) -> None:
        #: the request's unit of work (a :class:`~.work.RequestWork`)
        self.work = work
        self.namespace_config = namespace_config
        self.fallback = fallback
        self.old = old

    def __call__(self, response: Any) -> None:
        fallback = self.fallback
        namespace_config = self.namespace_config
        # its server-side state, deleted on the detached request it was read on;
        # should that fail, the old cookie stays for the next request to retry
        claimed = fallback.library.claim(self.old)
        if fallback.cookie_name != namespace_config.cookie_name:
            delete_cookie(response, fallback)
        if not claimed:
            # another request moved the same old session first: this copy is a
            # duplicate, which the client must not keep
            session = self.work.loaded(namespace_config.namespace)
            if session is not None:
                session.invalidate()
            delete_cookie(response, namespace_config)
            logger.warning(
                "namespace %r: the old copy %s read was claimed by another request; "
                "this request's copy is dropped",
                namespace_config.namespace,
                fallback.describe(),
            )
            return
        self.work.tell_observers(
            "namespace_retired", namespace_config.namespace, fallback.describe()
        )


def retire_at_logout(work: RequestWork, namespace_config: Any) -> Exception | None:
    """A logout of ``namespace_config``'s namespace: every copy a fallback could
    still read goes too, so nothing from before the logout migrates back.

    The fallbacks whose cookie ``request`` carries have their old session's
    stored state deleted (the copy a migration in this request read, or one
    read now on a detached request); each fallback cookie other than the
    namespace's own is deleted, on its own path and domain, carried or not
    (the browser may keep it for another path).  A fallback that fails is
    logged, named, and does not stop the logout: the first such failure is
    returned, for :meth:`~pyramid_session_multi.SessionMultiManager.invalidate`
    to report.
    """
    namespace = namespace_config.namespace
    own = (namespace_config.cookie_name, namespace_config.cookie_path or "/",
           namespace_config.cookie_domain)  # fmt: skip
    request = work.request
    # a migration of this request waited for the save to retire its old copy:
    # the logout retires it now instead
    read = {
        hook.fallback.position: hook.old
        for hook in work.take_after_save(namespace_config, Retirement)
    }
    cookies = request.cookies
    detached = None
    failure = None
    for fallback in namespace_config.fallbacks:
        if (fallback.cookie_name, fallback.cookie_path, fallback.cookie_domain) != own:
            work.delete_also(namespace_config, fallback)
        if fallback.cookie_name not in cookies:
            continue
        try:
            old = read.get(fallback.position)
            if old is None:
                if detached is None:
                    detached = detached_request(request)
                old = fallback.factory(detached)
                if getattr(fallback.library, "has_prepare", True):
                    fallback.library.prepare(namespace, old)
                if not data_of(fallback.library, old):
                    continue
            # False when another request deleted it first: gone all the same
            fallback.library.claim(old)
        except Exception as exc:
            exc.add_note(
                f"pyramid_session_multi: retiring the {fallback.describe()} of namespace "
                f"{namespace!r} at logout failed"
            )
            logger.error(
                "namespace %r: the old copy %s reads could not be deleted at logout: %s: %s",
                namespace,
                fallback.describe(),
                type(exc).__name__,
                exc,
            )
            failure = failure or exc
    return failure


def cookie_header_names(fallbacks: tuple[FallbackConfig, ...]) -> tuple[str, ...]:
    """The names of the cookies ``fallbacks`` read, once each, as a Cookie
    header spells them in a WSGI environ (UTF-8 bytes read as Latin-1)."""
    names = dict.fromkeys(
        fallback.cookie_name.encode("utf-8").decode("latin-1") for fallback in fallbacks
    )
    return tuple(names)


def may_migrate(namespace_config: Any, request: Any, session: Any) -> bool:
    """Whether the migration step could move anything into ``session``, just
    made by the namespace's own factory: only where the request's Cookie
    header may hold one of the fallbacks' cookies (a name absent from it is
    no cookie of it) and the session has no data.  Elsewhere a namespace
    whose only other step is the migration takes the manager's fast path."""
    environ = request.environ
    if "HTTP_COOKIE" not in environ:
        return False
    header = environ["HTTP_COOKIE"]
    for name in namespace_config.pipeline.fallback_cookies:
        if name in header:
            return not data_of(namespace_config.library, session)
    return False


def migrate_from_fallbacks(
    work: RequestWork, namespace_config: Any, request: Any, session: Any, state: Any
) -> None:
    """The load step: move the client's session from the first fallback that finds one."""
    if not may_migrate(namespace_config, request, session):
        return  # nothing to read, or the namespace's own factory found a session
    cookies = request.cookies
    carried = [
        fallback for fallback in namespace_config.fallbacks if fallback.cookie_name in cookies
    ]
    if not carried:
        return
    namespace = namespace_config.namespace
    if work.ended_earlier(namespace):
        # logged out (or its cookie dropped) earlier in this request: what the
        # client held before that does not come back in the same request
        return
    detached = detached_request(request)
    for fallback in carried:
        role = fallback.describe()
        try:
            old = call_for_namespace(role, namespace, fallback.factory, detached)
            if getattr(fallback.library, "has_prepare", True):
                fallback.library.prepare(namespace, old)
            data = data_of(fallback.library, old)
        except Exception as exc:
            # contained: the request goes on with the namespace's own session;
            # nothing migrates this time (not an older copy from a later
            # fallback either), and the old cookie stays for a retry
            logger.error(
                "namespace %r: its %s could not be read; nothing migrates in this "
                "request and the old cookie is kept: %s: %s",
                namespace,
                role,
                type(exc).__name__,
                exc,
            )
            return
        if not data:
            continue
        old_id = fallback.library.session_id(old)
        # the add-on's record among what its library stores is no data to move
        # (the application's own key of that name is)
        record = (
            take(data, LIFETIME_KEY)
            if fallback.library.records_in_data
            else fallback.library.lifetime_record(old)
        )
        if namespace_config.bound_to is not None or namespace_config.partner:
            # its binding token too: the binding judges it as it did the old one
            adopt_migrated_token(session, take(data, BINDING_KEY))
        if not data:
            continue
        for key, value in data.items():
            session[key] = value
        created = fallback.library.created(old)
        if created is not None:
            namespace_config.library.set_created(session, created)
        if namespace_config.stamped:
            # the old session's stamps judge the one it moved into
            adopt_migrated(namespace_config, session, record)
        loaded_as_now = getattr(type(session), "session_multi_loaded_as_now", None)
        if loaded_as_now is not None:
            # what moved in is what the session loaded (pyramid_beaker's keeps
            # a copy of that, for its revert())
            loaded_as_now(session)
        # a client-side namespace's end is the add-on's from now; a copy under a
        # new id only the response can carry: a request that forms none (its
        # view raised) leaves it unsaved, and the old copy for the next
        work.mark_rotated(namespace_config, session)
        work.after_save(
            namespace_config, session, Retirement(work, namespace_config, fallback, old)
        )
        work.tell_observers("namespace_migrated", namespace, role)
        event = work.event(
            SessionMigrated,
            namespace,
            session,
            fallback=fallback.position,
            fallback_description=role,
            old_id=old_id,
        )
        if event is not None:
            work.queue_event(namespace_config, session, event)
        log_decision(
            logger, "migrated", namespace, f"from {role}", request.registry.settings, old_id
        )
        return
