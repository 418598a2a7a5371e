"""Describing the registered namespaces for people: psessions and the panel."""

from typing import Any

from .config import SessionMultiManagerConfig
from .cookies import COOKIE_ATTRIBUTES
from .lifecycle.lifetime import lifetime_of, now


def callable_name(obj: Any) -> str | None:
    """Return ``module.qualname`` of ``obj``, its repr as a fallback."""
    if obj is None:
        return None
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if module and qualname:
        return f"{module}.{qualname}"
    return repr(obj)


def redis_topology(library: Any, factory: Any) -> str | None:
    """Where a Redis namespace keeps its data: ``single``, ``cluster`` or
    ``sentinel master NAME``; ``None`` for other libraries, and for a factory
    with an application's own ``redis_client_callable``."""
    if getattr(library, "name", None) != "redis":
        return None
    from .stores.redis import topology_of  # needs redis-py, as the factory does

    topology = topology_of(factory)
    return None if topology is None else topology.describe()


def describe_breakers(namespace_config: Any) -> list[dict[str, Any]]:
    """The state of the circuit breakers of a namespace's store, each as
    :meth:`~pyramid_session_multi.stores.breaker.CircuitBreaker.snapshot`
    gives it: a Redis namespace's client (one, or one per cluster node a
    request reached), a Beaker ``ext:database`` namespace's database.  Empty
    when it has none: another store, a client that is not the add-on's,
    nothing connected yet, or a breaker turned off."""
    library = getattr(namespace_config.library, "name", None)
    if library == "redis":
        from .stores.redis import breakers_of  # needs redis-py, as the factory does

        return [breaker.snapshot() for breaker in breakers_of(namespace_config.factory)]
    if library == "beaker":
        options = getattr(namespace_config.factory, "_options", None) or {}
        if options.get("type") == "ext:database" and isinstance(options.get("url"), str):
            from .stores.sql import breaker_of_url  # needs SQLAlchemy, as Beaker does

            breaker = breaker_of_url(options["url"])
            return [] if breaker is None else [breaker.snapshot()]
    return []


def describe_store_breakers(store: Any) -> list[dict[str, Any]]:
    """The state of the circuit breakers of a revocation store (``[]`` for a
    store without any, or ``None``)."""
    breakers = getattr(store, "breakers", None) or []
    return [breaker.snapshot() for breaker in breakers]


def describe_fallback(fallback: Any) -> dict[str, Any]:
    """One fallback of a namespace as data: its position (from 1), library,
    factory and the cookie it reads."""
    return {
        "position": fallback.position,
        "library": getattr(fallback.library, "name", None),
        "factory": callable_name(fallback.factory),
        "cookie_name": fallback.cookie_name,
        "cookie_path": fallback.cookie_path,
        "cookie_domain": fallback.cookie_domain,
    }


def describe_namespaces(config: SessionMultiManagerConfig) -> list[dict[str, Any]]:
    """Return one row per namespace: names of its parts and cookie attributes.

    Attributes a library does not expose are ``None``.
    """
    rows = []
    for namespace in config.namespaces:
        namespace_config = config.get(namespace)
        assert namespace_config is not None
        library = namespace_config.library
        cookie = library.cookie(namespace_config.factory) or {}
        row: dict[str, Any] = {
            "namespace": namespace,
            "cookie_name": namespace_config.cookie_name,
            "library": getattr(library, "name", None),
            "topology": redis_topology(library, namespace_config.factory),
            "bound_to": namespace_config.bound_to,
            "fallbacks": [describe_fallback(fallback) for fallback in namespace_config.fallbacks],
            "factory": callable_name(namespace_config.factory),
            "discriminator": callable_name(namespace_config.discriminator),
            "validator": callable_name(namespace_config.validator),
            "idle_timeout": namespace_config.idle_timeout,
            "absolute_timeout": namespace_config.absolute_timeout,
            # what its load runs, in order (see lifecycle/pipeline.py)
            "steps": list(namespace_config.steps),
            # how its saves meet parallel requests' (see docs/narr/parallel.rst)
            "concurrent_writes": namespace_config.concurrent_writes,
        }
        for attribute in COOKIE_ATTRIBUTES:
            row[attribute] = cookie.get(attribute)
        # the add-on's attribute, not the library's: appended to its Set-Cookie
        row["partitioned"] = namespace_config.partitioned
        rows.append(row)
    return rows


def describe_lifetime(
    namespace_config: Any, session: Any, at: float | None = None
) -> dict[str, Any] | None:
    """What the panel shows of a stamped session: seconds left before each
    expiry (``None`` without that timeout), the recorded user and login
    time, and the reason it was ended on load, if it was."""
    lifetime = lifetime_of(session)
    if lifetime is None:
        return None
    t = now() if at is None else at
    stamps = lifetime.stamps
    idle, absolute = namespace_config.idle_timeout, namespace_config.absolute_timeout
    return {
        "idle_left": None if idle is None else max(0.0, stamps.active + idle - t),
        "absolute_left": None if absolute is None else max(0.0, stamps.created + absolute - t),
        "userid": stamps.userid,
        "login": stamps.login,
        "ended": lifetime.verdict,
    }
