"""What the add-on knows about the inside of each session library it supports.

Cookie discovery lives in :mod:`.cookies`; this module holds the rest: how
to read a session's data without the side effects of its accessors, and
how pyramid_beaker's sessions are made to forget their old data when
invalidated.  Anything not recognised here is left to its own ``ISession``
methods.
"""

import inspect
import logging
from typing import Any

logger = logging.getLogger("pyramid_session_multi")

#: Keys pyramid_beaker keeps beside the application's data.
BEAKER_BOOKKEEPING = frozenset({"_accessed_time", "_creation_time", "_domain", "_path"})


def is_pyramid_cookie_factory(factory: Any) -> bool:
    """Whether ``factory`` is a session class of ``pyramid.session.BaseCookieSessionFactory``
    (pyramid's signed sessions and pyramid_nacl_session's encrypted ones)."""
    return (
        inspect.isclass(factory)
        and isinstance(getattr(factory, "_cookie_name", None), str)
        and hasattr(factory, "_set_cookie")
    )


def is_beaker_factory(factory: Any) -> bool:
    """Whether ``factory`` is a pyramid_beaker session class."""
    return inspect.isclass(factory) and any(
        cls.__module__.startswith("beaker.") for cls in factory.__mro__
    )


def is_beaker_session(session: Any) -> bool:
    """Whether ``session`` is a pyramid_beaker (lazy Beaker) session."""
    return "_sess" in getattr(session, "__dict__", {}) and is_beaker_factory(type(session))


def raw_data(session: Any) -> dict[Any, Any] | None:
    """The session's data without touching its accessors, or ``None``.

    ``None`` means the data cannot be read without side effects: a lazy
    session nobody loaded yet, or an invalidated server-side one.  Beaker's
    bookkeeping keys are left out.
    """
    if isinstance(session, dict):  # pyramid's cookie sessions, NaCl
        return dict(dict.items(session))
    if hasattr(type(session), "_session_state"):  # pyramid_session_redis
        state = session.__dict__.get("_session_state")
        # no state: invalidated, and asking for one would create a new session
        return {} if state is None else dict(state.managed_dict)
    if is_beaker_session(session):
        loaded = session.__dict__["_sess"]
        if loaded is None:
            return None
        return {k: v for k, v in dict.items(loaded) if k not in BEAKER_BOOKKEEPING}
    return None


def beaker_loaded_data(session: Any) -> dict[Any, Any] | None:
    """The data a pyramid_beaker session held when it was loaded, if it was."""
    loaded = session.__dict__.get("_sess")
    if loaded is None:
        return None
    return {k: v for k, v in loaded.accessed_dict.items() if k not in BEAKER_BOOKKEEPING}


def destroy_beaker_storage(session: Any) -> None:
    """Delete the stored data of a pyramid_beaker ``session`` at once.

    Beaker's own ``invalidate()`` only starts a new id: the old file or row
    stays, and replaying the old cookie would bring the session back.
    """
    inner = session._session()
    namespace = getattr(inner, "namespace", None)
    if namespace is not None and not inner.is_new:
        namespace.remove()


def prepare_beaker_session(namespace: str, session: Any) -> None:
    """Set up a pyramid_beaker session the manager has just created.

    - ``session.invalidate()`` deletes the old stored data first, so that an
      application calling ``request.session_multi[ns].invalidate()`` directly
      is as safe as the manager's ``invalidate()``;
    - Beaker loads lazily, on the first read: an error of its store then
      gets the same note naming the namespace, and the same log line, as an
      error of the factory.
    """
    _make_invalidate_destroy(session)
    _name_load_errors(namespace, session)


def _name_load_errors(namespace: str, session: Any) -> None:
    load = session._session

    def named_load() -> Any:
        if session.__dict__["_sess"] is not None:
            return load()
        try:
            return load()
        except Exception as exc:
            exc.add_note(
                f"pyramid_session_multi: raised while loading the session of "
                f"namespace {namespace!r}"
            )
            logger.error(
                "namespace %r could not be loaded: %s: %s", namespace, type(exc).__name__, exc
            )
            raise

    session.__dict__["_session"] = named_load


def _make_invalidate_destroy(session: Any) -> None:

    def invalidate() -> None:
        destroy_beaker_storage(session)
        session._session().invalidate()

    # pyramid_beaker's session proxies attribute writes to the Beaker
    # session it wraps; this instance attribute must stay on the proxy.
    session.__dict__["invalidate"] = invalidate


#: What :func:`security_facts` could not read.
UNKNOWN: Any = object()


def _closure(func: Any) -> dict[str, Any]:
    code = getattr(func, "__code__", None)
    cells = getattr(func, "__closure__", None)
    if code is None or cells is None:
        return {}
    values = {}
    for name, cell in zip(code.co_freevars, cells, strict=True):
        try:
            values[name] = cell.cell_contents
        except ValueError:  # an empty cell
            continue
    return values


def security_facts(factory: Any) -> dict[str, Any]:
    """What the deploy checks need to know of ``factory``, where it can be read.

    Keys: ``library`` (``"pyramid cookie"``, ``"redis"``, ``"beaker"`` or
    ``None``), ``client_side`` (the data travels in the cookie),
    ``serializer`` (the class name of what turns the data into bytes, for
    client-side sessions), ``timeout`` (the idle timeout in seconds, ``None``
    for none) and ``secret`` (the signing or encryption secret). A value
    that cannot be read is :data:`UNKNOWN`.
    """
    facts: dict[str, Any] = {
        "library": None,
        "client_side": UNKNOWN,
        "serializer": UNKNOWN,
        "timeout": UNKNOWN,
        "secret": UNKNOWN,
    }
    if isinstance(getattr(factory, "_cookie_name", None), str) and hasattr(factory, "_set_cookie"):
        # pyramid.session.BaseCookieSessionFactory: signed, or NaCl-encrypted
        facts.update(library="pyramid cookie", client_side=True)
        facts["timeout"] = getattr(factory, "_timeout", UNKNOWN)
        outer = _closure(factory._set_cookie).get("serializer")
        if outer is not None:
            inner = getattr(outer, "serializer", outer)
            facts["serializer"] = type(inner).__name__
            if hasattr(outer, "secret"):  # webob's SignedSerializer
                facts["secret"] = outer.secret
            elif hasattr(outer, "box"):  # pyramid_nacl_session: a 32-byte key
                facts["secret"] = bytes(outer.box)
        return facts
    if is_beaker_factory(factory):
        options = factory._options
        facts.update(library="beaker", client_side=options.get("type") == "cookie")
        facts["timeout"] = options.get("timeout")
        facts["secret"] = options.get("secret")
        facts["serializer"] = options.get("data_serializer", "pickle")
        return facts
    closure = _closure(factory)
    if "cookie_name" in closure and "_cookie_signer" in closure:  # pyramid_session_redis
        facts.update(library="redis", client_side=False, timeout=closure.get("timeout"))
        facts["secret"] = getattr(closure["_cookie_signer"], "secret", UNKNOWN)
    return facts
