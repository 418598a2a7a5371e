"""The deploy audit of every namespace: ``psessions --check`` and the panel.

Each :class:`Finding` has a stable id (``psm.E…`` errors, ``psm.W…``
warnings, ``psm.I…`` information), the namespace, what is wrong and how to
fix it.  The ids are listed, with their meaning, in the documentation's
"Cookie hygiene" page; ``session_multi.check.silence`` (a setting, ids
separated by spaces) silences chosen ones.
"""

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from pyramid.settings import aslist

from .budget import CookieBudget
from .check_ids import CHECK_IDS as CHECK_IDS  # the names the API reference lists here
from .check_ids import LOGOUT_PATH_SETTING as LOGOUT_PATH_SETTING
from .check_ids import SILENCE_SETTING as SILENCE_SETTING
from .config import NamespaceConfig, SessionMultiManagerConfig
from .libraries import UNKNOWN, is_pyramid_cookie_factory
from .revocation.memory import MemoryRevocationStore

#: The levels, lowest first; ``--fail-level`` takes one of them.
LEVELS = ("info", "warning", "error")

#: Shortest secret the checks accept, in bytes.
MIN_SECRET_BYTES = 32


@dataclass(frozen=True)
class Finding:
    """One problem found in one namespace's configuration."""

    id: str
    level: str
    namespace: str
    message: str
    hint: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.id} ({self.level}) [{self.namespace}] {self.message} Fix: {self.hint}"


Check = Callable[[NamespaceConfig, dict[str, Any], dict[str, Any]], Iterable[Finding]]


def _cookie_attributes(
    config: NamespaceConfig, cookie: dict[str, Any], facts: dict[str, Any]
) -> Iterator[Finding]:
    namespace = config.namespace
    if "secure" in cookie and not cookie["secure"]:
        yield Finding(
            "psm.W001", "warning", namespace,
            "the cookie is sent without Secure, so also over plain http.",
            "set secure=True (cookie_secure for pyramid_session_redis) when served over https.",
        )  # fmt: skip
    if "httponly" in cookie and not cookie["httponly"]:
        yield Finding(
            "psm.W002", "warning", namespace,
            "the cookie is readable by scripts in the page (no HttpOnly).",
            "set httponly=True (cookie_httponly for pyramid_session_redis).",
        )  # fmt: skip
    if "samesite" in cookie and not cookie["samesite"]:
        yield Finding(
            "psm.W003", "warning", namespace,
            "the cookie has no SameSite attribute and travels with cross-site requests.",
            "set samesite='Lax' (or 'Strict'; cookie_samesite for pyramid_session_redis).",
        )  # fmt: skip
    if cookie.get("domain"):
        yield Finding(
            "psm.W004", "warning", namespace,
            f"the cookie has Domain={cookie['domain']}, so every subdomain receives it.",
            "leave the domain unset unless subdomains must share this session.",
        )  # fmt: skip


def _partitioned(
    config: NamespaceConfig, cookie: dict[str, Any], facts: dict[str, Any]
) -> Iterator[Finding]:
    samesite = cookie.get("samesite")
    if config.partitioned and not (isinstance(samesite, str) and samesite.lower() == "none"):
        yield Finding(
            "psm.W014", "warning", config.namespace,
            f"the cookie is Partitioned but SameSite={samesite}: browsers partition it only "
            "where the application is embedded in another site, and there they never send "
            "a cookie that is not SameSite=None.",
            "set samesite='None' (cookie_samesite for pyramid_session_redis) for an embedded "
            "application, or leave partitioned out.",
        )  # fmt: skip


def _serialization(
    config: NamespaceConfig, cookie: dict[str, Any], facts: dict[str, Any]
) -> Iterator[Finding]:
    serializer = facts["serializer"]
    if (
        facts["client_side"] is True
        and isinstance(serializer, str)
        and "pickle" in serializer.lower()
    ):
        yield Finding(
            "psm.W005", "warning", config.namespace,
            "a client-side session is serialized with pickle: whoever learns the secret "
            "can run code on the server.",
            "use pyramid.session.JSONSerializer (serializer=JSONSerializer()).",
        )  # fmt: skip
    if facts["timeout"] is None and config.idle_timeout is None:
        yield Finding(
            "psm.W006", "warning", config.namespace,
            "the session has no idle timeout: it lives until the browser drops it.",
            "set timeout= (seconds of inactivity after which the session ends).",
        )  # fmt: skip


def _secrets(
    config: NamespaceConfig, cookie: dict[str, Any], facts: dict[str, Any]
) -> Iterator[Finding]:
    namespace = config.namespace
    if facts["library"] == "beaker" and facts["client_side"] is False and facts["secret"] is None:
        yield Finding(
            "psm.E001", "error", namespace,
            "a pyramid_beaker namespace without a secret: its cookie is the bare session "
            "id, and Beaker adopts an id the client chose (session fixation).",
            "set secret= (session_multi.NAME.secret, or secret in the Beaker options).",
        )  # fmt: skip
    for option, secret in _named_secrets(facts).items():
        what = "the secret" if option == "secret" else f"the {option}"
        size = _length(secret)
        if size == 0:
            yield Finding(
                "psm.E002", "error", namespace,
                f"{what} is empty, so it protects nothing: anyone can make a cookie this "
                "namespace accepts as its own.",
                f"set {option} to a random secret of at least {MIN_SECRET_BYTES} bytes "
                "(python -c 'import secrets; print(secrets.token_hex(32))').",
            )  # fmt: skip
        elif size < MIN_SECRET_BYTES:
            yield Finding(
                "psm.W007", "warning", namespace,
                f"{what} is {size} bytes, shorter than {MIN_SECRET_BYTES}.",
                f"use a random {option} of at least {MIN_SECRET_BYTES} bytes "
                "(python -c 'import secrets; print(secrets.token_hex(32))').",
            )  # fmt: skip
    if facts["client_side"] is True and not facts.get("bound_server_side"):
        yield Finding(
            "psm.I001", "info", config.namespace,
            "a client-side session: a cookie copied before logout stays valid until its "
            "timeout, since there is no server-side state to destroy.",
            "keep login state server-side, bind this namespace to a server-side one "
            "(bound_to=...), or give it a short timeout.",
        )  # fmt: skip


def _named_secrets(facts: dict[str, Any]) -> dict[str, Any]:
    """The secrets the library could read, by option name (``secret`` alone
    for a library reporting one)."""
    secrets = facts.get("secrets", UNKNOWN)
    if not isinstance(secrets, Mapping):
        secrets = {"secret": facts["secret"]}
    return {
        option: secret
        for option, secret in secrets.items()
        if isinstance(secret, str | bytes | bytearray | memoryview)
    }


def _as_bytes(secret: Any) -> bytes:
    return secret.encode() if isinstance(secret, str) else bytes(secret)


def _length(secret: Any) -> int:
    return len(_as_bytes(secret))


def _fallbacks(
    config: NamespaceConfig, cookie: dict[str, Any], facts: dict[str, Any]
) -> Iterator[Finding]:
    own = {option: _length(secret) for option, secret in _named_secrets(facts).items()}
    for fallback in config.fallbacks:
        yield Finding(
            "psm.I002", "info", config.namespace,
            f"{fallback.describe()} still reads sessions the namespace's own factory "
            "cannot, and moves them.",
            "remove it once every session it could read has moved or expired (after the "
            "longest session lifetime): until then its secret or store stays trusted.",
        )  # fmt: skip
        if fallback.library is not config.library:
            continue
        try:
            theirs = _named_secrets(fallback.library.facts(fallback.factory))
        except Exception:
            continue
        for option, secret in theirs.items():
            # weaker: shorter than the current one where that matters, under the minimum
            if option in own and _length(secret) < min(own[option], MIN_SECRET_BYTES):
                yield Finding(
                    "psm.W010", "warning", config.namespace,
                    f"the {option} of {fallback.describe()} is {_length(secret)} bytes, "
                    f"weaker than the namespace's own ({own[option]} bytes) and under "
                    f"{MIN_SECRET_BYTES}: a cookie forged with it is still accepted and moved.",
                    "retire the fallback as soon as sessions have moved; if its secret "
                    "leaked, remove it now (its sessions are then logged out).",
                )  # fmt: skip


def _redis_connection(
    config: NamespaceConfig, cookie: dict[str, Any], facts: dict[str, Any]
) -> Iterator[Finding]:
    if facts["library"] != "redis":
        return
    from .stores.redis import CLUSTER, SINGLE, topology_of  # needs redis-py, as the factory does

    topology = topology_of(config.factory)
    if topology is None:  # the application's own client callable
        return
    if topology.kind == CLUSTER and len(topology.nodes) == 1:
        yield Finding(
            "psm.W011", "warning", config.namespace,
            f"the Redis Cluster is given one start-up node ({topology.addresses[0]}): a "
            "process that starts while it is down cannot find the cluster, though its "
            "other nodes are up.",
            "list several nodes, on different machines (redis_cluster_nodes = host1:port "
            "host2:port host3:port).",
        )  # fmt: skip
    elif topology.kind != SINGLE and len(topology.nodes) == 1:
        yield Finding(
            "psm.W011", "warning", config.namespace,
            f"one sentinel is listed ({topology.addresses[0]}): while it is down the master "
            "cannot be found, even once the other sentinels have failed it over.",
            "list every sentinel (redis_sentinels = host1:port host2:port host3:port); run "
            "at least three, on different machines, so that a majority can agree a master "
            "is down.",
        )  # fmt: skip
    if topology.socket_timeout is None:
        yield Finding(
            "psm.W012", "warning", config.namespace,
            "no socket timeout is set: a Redis node that stops answering (a machine gone, "
            "a network cut) holds each request to this namespace for as long as the client "
            "waits, without limit on pyramid_session_redis's own connection and on older "
            "redis-py versions.",
            "set redis_socket_timeout (and redis_socket_connect_timeout) to a second or "
            "two: a dead node then fails the requests that need it, as an outage does.",
        )  # fmt: skip


#: Every per-namespace check, in the order findings are reported.
CHECKS: tuple[Check, ...] = (
    _cookie_attributes,
    _partitioned,
    _serialization,
    _secrets,
    _fallbacks,
    _redis_connection,
)


def _secret_forms(secret: Any) -> tuple[set[bytes], set[bytes]]:
    """The bytes ``secret`` is, and those it stands for as hex text.

    One value given to two libraries arrives differently: pyramid's signed
    sessions sign with the text, pyramid_nacl_session decodes the same text
    from hex into its 32-byte key.
    """
    raw = _as_bytes(secret)
    try:
        decoded = {bytes.fromhex(raw.decode("ascii"))} if raw else set()
    except ValueError:  # not hex text (or not ASCII)
        decoded = set()
    return {raw}, decoded


def _shared_secrets(
    configs: list[NamespaceConfig], facts: Mapping[str, dict[str, Any]]
) -> Iterator[Finding]:
    seen: list[tuple[str, set[bytes], set[bytes]]] = []
    for config in configs:
        raw: set[bytes] = set()
        decoded: set[bytes] = set()
        for secret in _named_secrets(facts[config.namespace]).values():
            if _length(secret):  # an empty one is psm.E002
                forms = _secret_forms(secret)
                raw |= forms[0]
                decoded |= forms[1]
        for owner, owner_raw, owner_decoded in seen:
            if raw & owner_raw or raw & owner_decoded or decoded & owner_raw:
                yield Finding(
                    "psm.W008", "warning", config.namespace,
                    f"namespace {owner!r} uses the same secret.",
                    "give each namespace its own secret.",
                )  # fmt: skip
                break
        seen.append((config.namespace, raw, decoded))


def _cookie_header(
    configs: list[NamespaceConfig],
    facts: Mapping[str, dict[str, Any]],
    settings: Mapping[str, Any],
) -> Iterator[Finding]:
    budget = CookieBudget.from_settings(settings)
    sizes: dict[str, int] = {}
    for config in configs:
        value_size = facts[config.namespace].get("cookie_value_size", UNKNOWN)
        if not isinstance(value_size, int):
            continue  # a library that does not say: not counted
        size = len(config.cookie_name) + 1 + value_size
        if is_pyramid_cookie_factory(config.factory):
            size = min(size, budget.cookie_limit)  # the budget refuses more
        sizes[config.namespace] = size
    total = sum(sizes.values()) + 2 * max(len(sizes) - 1, 0)  # "; " between cookies
    if total > budget.header_limit:
        parts = ", ".join(f"{namespace} {size}" for namespace, size in sizes.items())
        yield Finding(
            "psm.W009", "warning", "*",
            f"the namespaces' cookies could together reach {total} bytes of the Cookie "
            f"header (at most {parts}), over session_multi.cookie_header_limit = "
            f"{budget.header_limit}: servers and proxies may refuse the requests.",
            "lower session_multi.cookie_limit so that the cookies in the data fit, keep "
            "data server-side, or raise session_multi.cookie_header_limit to what your "
            "servers accept.",
        )  # fmt: skip


def _lifetimes(
    configs: list[NamespaceConfig], facts: Mapping[str, dict[str, Any]]
) -> Iterator[Finding]:
    partners = {config.bound_to for config in configs if config.bound_to is not None}
    for config in configs:
        if config.namespace in partners and config.absolute_timeout is None:
            bound = sorted(c.namespace for c in configs if c.bound_to == config.namespace)
            yield Finding(
                "psm.W013", "warning", config.namespace,
                f"namespaces are bound to it ({', '.join(bound)}) and it has no absolute "
                "timeout: kept busy, it and every session bound to it live for ever.",
                "set absolute_timeout= on it (OWASP suggests 4 to 8 hours for an "
                "ordinary application); the bound namespaces end with it.",
            )  # fmt: skip
        own: Any = facts[config.namespace].get("timeout")
        numeric = isinstance(own, int | float) and not isinstance(own, bool)
        idle = config.idle_timeout
        if numeric and idle is not None and 0 < own <= idle:
            yield Finding(
                "psm.I003", "info", config.namespace,
                f"the library's own timeout ({own:g} s) is not longer than the add-on's "
                f"idle_timeout ({idle} s): the library ends idle sessions first, silently "
                "(no SessionExpired, its server-side state left to expire).",
                "turn the library's timeout off (timeout=None) or make it longer, and let "
                "idle_timeout and absolute_timeout decide.",
            )  # fmt: skip


def path_matches(request_path: str, cookie_path: str) -> bool:
    """Whether a browser sends a cookie of ``cookie_path`` to ``request_path``
    (RFC 6265's path-match)."""
    if request_path == cookie_path:
        return True
    return request_path.startswith(cookie_path) and (
        cookie_path.endswith("/") or request_path[len(cookie_path)] == "/"
    )


def _logout_path(
    configs: list[NamespaceConfig],
    facts: Mapping[str, dict[str, Any]],
    settings: Mapping[str, Any],
) -> Iterator[Finding]:
    logout = settings.get(LOGOUT_PATH_SETTING)
    logout = logout.strip() if isinstance(logout, str) and logout.strip() else None
    for config in configs:
        path = config.cookie_path or "/"
        if facts[config.namespace]["client_side"] is not False or path == "/":
            continue
        if logout is not None and path_matches(logout, path):
            continue
        where = f"at {logout}" if logout is not None else "outside it"
        yield Finding(
            "psm.W015", "warning", config.namespace,
            f"a server-side session whose cookie has Path={path}: a logout {where} never "
            "receives the cookie, so it cannot load the session to destroy it; the session "
            "outlives the logout in its store (until its timeout), though the deletion of "
            "the cookie is still sent.",
            f"set the cookie path to / (or one that contains the logout URL), or log out "
            f"under {path}; set {LOGOUT_PATH_SETTING} to the logout URL's path to check it.",
        )  # fmt: skip


def _revocation_store(manager_config: SessionMultiManagerConfig) -> Iterator[Finding]:
    if isinstance(manager_config.revocations, MemoryRevocationStore):
        yield Finding(
            "psm.W016", "warning", "*",
            "the revocation store is kept in memory: each process has its own, so a user "
            "revoked by one worker is still signed in on the others, every revocation is "
            "lost at a restart, and psessions --revoke reaches no server.",
            "set session_multi.revocations to a Redis or SQLAlchemy URL every process "
            "shares (MemoryRevocationStore is for unit tests).",
        )  # fmt: skip


def _bound_server_side(
    manager_config: SessionMultiManagerConfig,
    facts: dict[str, dict[str, Any]],
    partner: str | None,
) -> bool:
    # a client-side copy is revoked with its partner if a partner up the chain is server-side
    seen = set()
    while partner is not None and partner in facts and partner not in seen:
        if facts[partner]["client_side"] is False:
            return True
        seen.add(partner)
        partner = manager_config.configs[partner].bound_to
    return False


def run_checks(
    manager_config: SessionMultiManagerConfig, settings: Mapping[str, Any] | None = None
) -> list[Finding]:
    """Every finding for the registered namespaces, less the silenced ids."""
    silenced = set(aslist((settings or {}).get(SILENCE_SETTING, "")))
    configs = [manager_config.configs[ns] for ns in manager_config.namespaces]
    facts = {config.namespace: config.library.facts(config.factory) for config in configs}
    for config in configs:
        facts[config.namespace]["bound_server_side"] = _bound_server_side(
            manager_config, facts, config.bound_to
        )
    findings: list[Finding] = []
    for config in configs:
        cookie = {
            key: value
            for key, value in (config.library.cookie(config.factory) or {}).items()
            if value is not None or key in ("samesite", "domain")
        }
        for check in CHECKS:
            findings.extend(check(config, cookie, facts[config.namespace]))
    findings.extend(_shared_secrets(configs, facts))
    findings.extend(_cookie_header(configs, facts, settings or {}))
    findings.extend(_lifetimes(configs, facts))
    findings.extend(_logout_path(configs, facts, settings or {}))
    findings.extend(_revocation_store(manager_config))
    return [finding for finding in findings if finding.id not in silenced]


def at_or_above(findings: Iterable[Finding], level: str) -> list[Finding]:
    """The findings whose level is ``level`` or higher."""
    floor = LEVELS.index(level)
    return [finding for finding in findings if LEVELS.index(finding.level) >= floor]
