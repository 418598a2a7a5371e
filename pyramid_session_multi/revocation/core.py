"""Signing a user out everywhere: the directive that sets the revocation store.

``rotate(userid=...)`` records, in the stamps of every namespace it rotates
(see :mod:`..lifecycle.lifetime`), the user and the time.  ``revoke(userid)``
(:mod:`..lifecycle.revoking`) writes one record to the shared revocation
store: *the sessions of this user recorded before this time are over*.  Every
process then refuses such a session when it is next loaded
(:func:`revocation_check`), client-side cookies included, since the record
outlives every session it can match.

A request asks the store once per recorded user at most, and only when it
loads a session that has a user recorded; a request with none costs nothing.
"""

from typing import Any

from pyramid.config import Configurator
from pyramid.exceptions import ConfigurationError

from ..config import LATE_ORDER, get_manager_config, require_manager_config
from ..exceptions import RevocationStoreUnavailable
from ..lifecycle.revoked import REVOKED, describe_store, revocation_check
from ..lifecycle.revoking import record_ttl, record_unended, revoke, revoke_user

__all__ = [
    "REVOKED",
    "RevocationStoreUnavailable",
    "describe_store",
    "record_ttl",
    "record_unended",
    "revocation_check",
    "revoke",
    "revoke_user",
    "set_revocation_store",
    "stamp_every_namespace",
]


def set_revocation_store(config: Configurator, store: Any) -> None:
    """Keep revocations in ``store``: ``config.set_revocation_store(store)``.

    ``store`` (an object, a class to instantiate, or a dotted name to either)
    provides :class:`~pyramid_session_multi.interfaces.IRevocationStore`;
    every process of the application must share it.  Once a store is set,
    every namespace keeps lifetime stamps, so ``rotate(userid=...)`` can
    record its user.  One store per application: setting it twice at one
    include level is a conflict, and an including configuration overrides an
    included one.  The ``session_multi.revocations`` setting calls this
    with the store its URL names.
    """
    manager_config = require_manager_config(config.registry, "setting a revocation store")
    store = config.maybe_dotted(store)
    if isinstance(store, type):
        store = store()
    missing = [
        name for name in ("revoked_at", "revoke") if not callable(getattr(store, name, None))
    ]
    if missing:
        raise ConfigurationError(
            f"pyramid_session_multi: the revocation store {store!r} lacks "
            f"{', '.join(missing)}; see pyramid_session_multi.interfaces.IRevocationStore."
        )

    def register() -> None:
        manager_config.revocations = store
        # namespaces an earlier commit registered record users too; later ones
        # are stamped as they are added
        manager_config.finalize_all()

    intr = config.introspectable(
        "session_multi revocation store", "revocations", describe_store(store),
        "session_multi revocation store",
    )  # fmt: skip
    intr["store"] = store
    config.action(("pyramid_session_multi", "revocation store"), register, introspectables=(intr,))


def stamp_every_namespace(config: Configurator) -> None:
    """At commit, once a revocation store is set: every namespace keeps stamps."""
    registry = config.registry

    def stamp() -> None:
        manager_config = get_manager_config(registry)
        if manager_config is None or manager_config.revocations is None:
            return
        manager_config.finalize_all()

    config.action(("pyramid_session_multi", "stamp for revocations"), stamp, order=LATE_ORDER)
