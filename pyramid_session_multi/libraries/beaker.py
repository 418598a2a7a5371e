"""pyramid_beaker: a lazy proxy around a Beaker session, stored in files, SQL, memcached...

``BeakerSessionFactoryConfig`` returns a ``SessionObject`` subclass whose
``_options`` are Beaker's.  The proxy loads the Beaker session on first
use, from the store, and saves it in a response callback.  Beaker's own
``invalidate()`` only starts a new id, leaving the old data in the store;
the add-on makes it delete that data first (see :meth:`BeakerLibrary.prepare`).
"""

import inspect
import logging
from typing import Any

from .base import SessionLibrary

logger = logging.getLogger("pyramid_session_multi")

#: Keys pyramid_beaker keeps beside the application's data.
BEAKER_BOOKKEEPING = frozenset({"_accessed_time", "_creation_time", "_domain", "_path"})


def is_beaker_factory(factory: Any) -> bool:
    """Whether ``factory`` is a pyramid_beaker session class."""
    return inspect.isclass(factory) and any(
        cls.__module__.startswith("beaker.") for cls in factory.__mro__
    )


def _without_bookkeeping(data: Any) -> dict[Any, Any]:
    return {k: v for k, v in dict.items(data) if k not in BEAKER_BOOKKEEPING}


def destroy_beaker_storage(session: Any) -> None:
    """Delete the stored data of a pyramid_beaker ``session`` at once."""
    inner = session._session()
    namespace = getattr(inner, "namespace", None)
    if namespace is not None and not inner.is_new:
        namespace.remove()


class BeakerLibrary(SessionLibrary):
    """pyramid_beaker, with any Beaker back end (file, ext:database, ...).

    :meth:`rotate` deletes the old file or row, gives the Beaker session a
    new id (Beaker's ``regenerate_id()``) and marks it to be saved, so the
    data is written under the new id and the new cookie is sent.
    """

    name = "beaker"
    reads_store_when_loaded = True
    has_prepare = True

    def claims(self, factory: Any) -> bool:
        return is_beaker_factory(factory) and isinstance(getattr(factory, "_options", None), dict)

    def cookie(self, factory: Any) -> dict[str, Any] | None:
        options = factory._options
        return {
            "name": options.get("key", "beaker.session.id"),
            "secure": options.get("secure", False),
            "httponly": options.get("httponly", False),
            "samesite": options.get("samesite", "Lax"),
            "max_age": options.get("cookie_expires"),
            "path": options.get("cookie_path", "/"),
            "domain": options.get("cookie_domain"),
        }

    def facts(self, factory: Any) -> dict[str, Any]:
        facts = super().facts(factory)
        options = factory._options
        facts.update(library=self.name, client_side=options.get("type") == "cookie")
        facts["timeout"] = options.get("timeout")
        facts["secret"] = options.get("secret")
        facts["serializer"] = options.get("data_serializer", "pickle")
        return facts

    def prepare(self, namespace: str, session: Any) -> None:
        """Make a session the manager has just created safe and accountable.

        - ``session.invalidate()`` deletes the old stored data first, so that
          an application calling ``request.session_multi[ns].invalidate()``
          directly is as safe as the manager's ``invalidate()``;
        - Beaker loads lazily, on the first read: an error of its store then
          gets the same note naming the namespace, and the same log line, as
          an error of the factory.
        """
        _make_invalidate_destroy(session)
        _name_load_errors(namespace, session)

    def read(self, session: Any) -> dict[Any, Any] | None:
        loaded = session.__dict__.get("_sess")
        # not loaded yet: reading would load it from the store
        return None if loaded is None else _without_bookkeeping(loaded)

    def loaded_data(self, session: Any) -> dict[Any, Any] | None:
        loaded = session.__dict__.get("_sess")
        if loaded is None:
            return None
        return _without_bookkeeping(loaded.accessed_dict)

    def load(self, session: Any) -> None:
        session._session()

    def session_id(self, session: Any) -> str | None:
        loaded = session.__dict__.get("_sess")
        session_id = getattr(loaded, "id", None)
        return session_id if isinstance(session_id, str) else None

    def rotate(self, session: Any) -> None:
        destroy_beaker_storage(session)
        session._session().regenerate_id()
        session.save()


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
