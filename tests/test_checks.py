"""The deploy checks, on each library where they apply; a good app has no finding."""

import pyramid_beaker
import pytest
from pyramid.config import Configurator
from pyramid.session import JSONSerializer, PickleSerializer, SignedCookieSessionFactory
from pyramid_nacl_session import EncryptedCookieSessionFactory
from pyramid_session_redis import RedisSessionFactory

from pyramid_session_multi.checks import at_or_above, run_checks
from pyramid_session_multi.config import get_manager_config

GOOD_SECRET = "a-random-secret-of-at-least-32-bytes!"
REDIS = "redis://127.0.0.1:1/0"  # never connected to: checks only read the configuration


def findings_for(register, settings=None):
    config = Configurator(settings=settings or {})
    config.include("pyramid_session_multi")
    register(config)
    config.commit()
    return run_checks(get_manager_config(config.registry), config.registry.settings)


def ids(findings, namespace=None):
    return sorted(f.id for f in findings if namespace in (None, f.namespace))


def good_signed(name="good", **overrides):
    options = dict(secure=True, httponly=True, samesite="Lax", timeout=600)
    options.update(overrides)
    secret = options.pop("secret", GOOD_SECRET + name)
    return SignedCookieSessionFactory(secret, cookie_name=name, **options)


def well_configured(config):
    config.register_session_factory(
        "account",
        RedisSessionFactory(
            secret=GOOD_SECRET + "redis",
            cookie_name="account",
            redis_url=REDIS,
            cookie_secure=True,
            cookie_httponly=True,
            cookie_samesite="Lax",
            timeout=1200,
            redis_socket_timeout=2,
        ),
    )
    config.register_session_factory(
        "files",
        pyramid_beaker.BeakerSessionFactoryConfig(
            type="file",
            data_dir="/nonexistent/never-used",
            key="files",
            secret=GOOD_SECRET + "beaker",
            secure=True,
            httponly=True,
            samesite="Lax",
            timeout=1200,
        ),
    )


def test_a_well_configured_app_has_no_finding():
    assert findings_for(well_configured) == []


def test_client_side_namespaces_are_noted_as_info_only():
    findings = findings_for(
        lambda c: [
            c.register_session_factory("signed", good_signed("signed")),
            c.register_session_factory(
                "nacl",
                EncryptedCookieSessionFactory(
                    bytes(range(32)),
                    cookie_name="nacl",
                    secure=True,
                    httponly=True,
                    samesite="Lax",
                    serializer=JSONSerializer(),
                ),
            ),
        ]
    )
    assert ids(findings) == ["psm.I001", "psm.I001"]
    assert at_or_above(findings, "warning") == []


def test_a_client_side_namespace_bound_to_a_server_side_one_is_not_noted():
    def register(config):
        well_configured(config)
        config.register_session_factory("admin", good_signed("admin"), bound_to="account")
        # bound through admin: still revoked with account
        config.register_session_factory("audit", good_signed("audit"), bound_to="admin")
        config.register_session_factory("loose", good_signed("loose"))
        config.register_session_factory("pair", good_signed("pair"), bound_to="loose")

    # four cookie sessions: 16 KB; partners without an absolute timeout: not this test's
    settings = {"session_multi.check.silence": "psm.W009 psm.W013"}
    assert ids(findings_for(register, settings)) == ["psm.I001", "psm.I001"]
    assert {f.namespace for f in findings_for(register, settings)} == {"loose", "pair"}


PROBLEMS = {
    "psm.W001": lambda: good_signed(secure=False),
    "psm.W002": lambda: good_signed(httponly=False),
    "psm.W003": lambda: good_signed(samesite=None),
    "psm.W004": lambda: good_signed(domain="example.com"),
    "psm.W005": lambda: good_signed(serializer=PickleSerializer()),
    "psm.W006": lambda: good_signed(timeout=None),
    "psm.W007": lambda: good_signed(secret="short"),
}


@pytest.mark.parametrize("check", sorted(PROBLEMS))
def test_each_check_on_pyramid_cookie_sessions(check):
    findings = findings_for(lambda c: c.register_session_factory("ns", PROBLEMS[check]()))
    assert ids(findings) == sorted([check, "psm.I001"])
    (finding,) = [f for f in findings if f.id == check]
    assert finding.namespace == "ns" and finding.message and finding.hint


def test_nacl_defaults_to_pickle():
    factory = EncryptedCookieSessionFactory(
        bytes(range(32)), cookie_name="nacl", secure=True, httponly=True, samesite="Lax"
    )
    findings = findings_for(lambda c: c.register_session_factory("nacl", factory))
    assert "psm.W005" in ids(findings)


def test_redis_cookie_attributes_and_secret():
    factory = RedisSessionFactory(
        secret="short", cookie_name="r", redis_url=REDIS, cookie_httponly=False, timeout=None
    )
    findings = findings_for(lambda c: c.register_session_factory("r", factory))
    assert ids(findings) == [
        "psm.W001", "psm.W002", "psm.W003", "psm.W006", "psm.W007", "psm.W012",
    ]  # fmt: skip


def test_beaker_without_a_secret_is_an_error_fixation():
    factory = pyramid_beaker.BeakerSessionFactoryConfig(
        type="file", data_dir="/nonexistent", key="b", secure=True, httponly=True, timeout=60
    )
    findings = findings_for(lambda c: c.register_session_factory("b", factory))
    (error,) = at_or_above(findings, "error")
    assert error.id == "psm.E001" and "fixation" in error.message


def test_a_secret_shared_by_two_namespaces():
    findings = findings_for(
        lambda c: [
            c.register_session_factory("one", good_signed("one", secret=GOOD_SECRET)),
            c.register_session_factory("two", good_signed("two", secret=GOOD_SECRET)),
        ]
    )
    (shared,) = [f for f in findings if f.id == "psm.W008"]
    assert shared.namespace == "two"
    assert shared.message == "namespace 'one' uses the same secret."  # not "'one''s"


def settings_of(namespaces, **options):
    settings = {"session_multi.namespaces": " ".join(namespaces)}
    settings.update({f"session_multi.{key.replace('__', '.')}": v for key, v in options.items()})
    return settings


def test_one_env_secret_shared_by_a_signed_and_a_nacl_namespace(monkeypatch):
    """pyramid_nacl_session decodes the hex text its key is given; signed
    sessions sign with the text itself: still one secret (issue 20, item 13)."""
    shared = "5f" * 32
    monkeypatch.setenv("PSM_SHARED_SECRET", shared)
    settings = settings_of(
        ["signed", "nacl"],
        signed__factory="signed",
        signed__secret="env:PSM_SHARED_SECRET",
        signed__cookie_name="signed",
        nacl__factory="nacl",
        nacl__cookie_name="nacl",
        nacl__secret="env:PSM_SHARED_SECRET",
    )
    findings = findings_for(lambda config: None, settings)
    (shared_finding,) = [f for f in findings if f.id == "psm.W008"]
    assert shared_finding.namespace == "nacl" and "'signed'" in shared_finding.message
    printed = " ".join(str(f) for f in findings) + repr(findings)
    assert shared not in printed and bytes.fromhex(shared).decode("latin-1") not in printed


def test_the_same_secret_as_text_and_as_bytes_is_shared():
    def register(config):
        config.register_session_factory("text", good_signed("text", secret=GOOD_SECRET))
        config.register_session_factory("bytes", good_signed("bytes", secret=GOOD_SECRET.encode()))
        config.register_session_factory("other", good_signed("other"))

    findings = findings_for(register)
    assert [(f.id, f.namespace) for f in findings if f.id == "psm.W008"] == [("psm.W008", "bytes")]


def test_different_nacl_and_signed_secrets_are_not_shared():
    nacl = EncryptedCookieSessionFactory(bytes(range(32)), cookie_name="nacl")
    signed = good_signed("signed", secret=bytes(range(32, 64)).hex())
    findings = findings_for(
        lambda c: [
            c.register_session_factory("nacl", nacl),
            c.register_session_factory("signed", signed),
        ]
    )
    assert "psm.W008" not in ids(findings)


def beaker_cookie(**options):
    defaults = {"key": "crumbs", "secure": True, "httponly": True, "timeout": 600}
    options = defaults | {"data_serializer": "json"} | options
    return pyramid_beaker.BeakerSessionFactoryConfig(type="cookie", **options)


def test_beaker_cookie_sessions_have_no_fixation_finding():
    """A cookie session's data is signed into the cookie: there is no
    server-side id to fix, so psm.E001 does not apply (issue 20, item 5)."""
    factory = beaker_cookie(validate_key=GOOD_SECRET)
    findings = findings_for(lambda c: c.register_session_factory("crumbs", factory))
    assert ids(findings) == ["psm.I001"]


@pytest.mark.parametrize(
    ("options", "weak"),
    [
        ({"validate_key": "k"}, "validate_key"),
        ({"validate_key": GOOD_SECRET, "encrypt_key": "short"}, "encrypt_key"),
    ],
)
def test_weak_beaker_cookie_keys_are_flagged(options, weak):
    factory = beaker_cookie(**options)
    findings = findings_for(lambda c: c.register_session_factory("crumbs", factory))
    (finding,) = [f for f in findings if f.id == "psm.W007"]
    assert f"the {weak} is" in finding.message and weak in finding.hint


@pytest.mark.parametrize("option", ["secret", "validate_key", "encrypt_key"])
def test_weak_beaker_server_side_keys_are_flagged(option):
    options = {"secret": GOOD_SECRET, "validate_key": GOOD_SECRET + "v"} | {option: "x"}
    factory = pyramid_beaker.BeakerSessionFactoryConfig(
        type="file", data_dir="/nonexistent", key="b", secure=True, httponly=True,
        timeout=60, **options,
    )  # fmt: skip
    findings = findings_for(lambda c: c.register_session_factory("b", factory))
    assert ids(findings) == ["psm.W007"]


EMPTY_SECRETS = {
    "signed": lambda: good_signed(secret=""),
    "signed, bytes": lambda: good_signed(secret=b""),
    "beaker secret": lambda: pyramid_beaker.BeakerSessionFactoryConfig(
        type="file", data_dir="/nonexistent", key="good", secret="", timeout=60
    ),
    "beaker validate_key": lambda: beaker_cookie(key="good", validate_key=""),
    "beaker encrypt_key": lambda: beaker_cookie(
        key="good", validate_key=GOOD_SECRET, encrypt_key=""
    ),
}


@pytest.mark.parametrize("kind", sorted(EMPTY_SECRETS))
def test_an_empty_secret_is_an_error(kind):
    """Registered in code, an empty secret the adapter can read is psm.E002,
    never a mere "short" warning (issue 20, item 1)."""
    factory = EMPTY_SECRETS[kind]()
    findings = findings_for(lambda c: c.register_session_factory("good", factory))
    (error,) = at_or_above(findings, "error")
    assert (error.id, error.namespace) == ("psm.E002", "good")
    assert "empty" in error.message
    assert "psm.W007" not in ids(findings) and "psm.W008" not in ids(findings)


def redis_namespace(config, name):
    factory = RedisSessionFactory(
        secret=GOOD_SECRET + name, cookie_name=name, redis_url=REDIS, cookie_secure=True,
        cookie_httponly=True, cookie_samesite="Lax", timeout=600, redis_socket_timeout=2,
    )  # fmt: skip
    config.register_session_factory(name, factory)


def test_server_side_id_cookies_count_towards_the_header_budget():
    """Fifty pyramid_session_redis ids (about 175 bytes each) pass a header
    budget of 8190 bytes; no cookie session is involved (issue 20, item 12)."""

    def register(config, count):
        for index in range(count):
            redis_namespace(config, f"ns{index:02}")

    assert findings_for(lambda c: register(c, 40)) == []
    (finding,) = findings_for(lambda c: register(c, 50))
    assert (finding.id, finding.level, finding.namespace) == ("psm.W009", "warning", "*")
    assert "ns49 " in finding.message and "8190" in finding.message


def test_beaker_id_cookies_count_with_their_signature():
    def register(config):
        for index in range(3):
            config.register_session_factory(
                f"b{index}",
                pyramid_beaker.BeakerSessionFactoryConfig(
                    type="file", data_dir="/nonexistent", key=f"b{index}",
                    secret=GOOD_SECRET + str(index), secure=True, httponly=True, timeout=60,
                ),
            )  # fmt: skip

    # three "bN=" + 40 hex digits of signature + a 32-digit id, and two "; "
    limit = 3 * (3 + 72) + 2 * 2
    assert findings_for(register, {"session_multi.cookie_header_limit": str(limit)}) == []
    settings = {"session_multi.cookie_header_limit": str(limit - 1)}
    assert ids(findings_for(register, settings)) == ["psm.W009"]


def test_cookie_sessions_count_up_to_the_cookie_limit():
    def register(config):
        config.register_session_factory("one", good_signed("one"))
        config.register_session_factory("two", good_signed("two"))
        redis_namespace(config, "account")

    silence = {"session_multi.check.silence": "psm.I001"}
    (finding,) = findings_for(register, silence)
    assert finding.id == "psm.W009" and "one 4068" in finding.message
    assert findings_for(register, silence | {"session_multi.cookie_limit": "3500"}) == []


def test_silenced_ids_are_left_out():
    settings = {"session_multi.check.silence": "psm.W001 psm.I001"}
    register = lambda c: c.register_session_factory("ns", good_signed(secure=False))  # noqa: E731
    assert findings_for(register, settings) == []


def test_each_fallback_is_reported_and_a_weaker_secret_warned_of():
    strong = "a-new-secret-of-more-than-32-bytes-0123456789"

    def register(config):
        config.register_session_factory(
            "good",
            good_signed(secret=strong),
            fallbacks=[
                good_signed(secret="old-but-long-enough-secret-0123456789ab"),
                good_signed(secret="short-old"),
            ],
        )

    findings = findings_for(register)
    assert ids(findings, "good").count("psm.I002") == 2
    (weak,) = [f for f in findings if f.id == "psm.W010"]
    assert "fallback 2" in weak.message and "9 bytes" in weak.message
    assert "short-old" not in str(weak)  # never the secret itself


def test_a_fallback_of_another_library_is_not_compared(redis_db):
    def register(config):
        config.register_session_factory(
            "good",
            good_signed(),
            fallbacks=[RedisSessionFactory(secret="s", cookie_name="old", redis_url=redis_db)],
        )

    assert "psm.W010" not in ids(findings_for(register))


def redis_on(name, **where):
    """A well-configured pyramid_session_redis namespace on the topology ``where``
    describes (see pyramid_session_multi.stores.redis.redis_client_callable)."""
    from pyramid_session_multi.stores.redis import redis_client_callable

    factory = RedisSessionFactory(
        secret=GOOD_SECRET + name, cookie_name=name, cookie_secure=True, cookie_httponly=True,
        cookie_samesite="Lax", timeout=600, redis_client_callable=redis_client_callable(**where),
    )  # fmt: skip
    return lambda config: config.register_session_factory(name, factory)


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ({"cluster_nodes": "10.0.0.1:7000 10.0.0.2:7000", "socket_timeout": 1}, []),
        ({"cluster_nodes": "10.0.0.1:7000", "socket_timeout": 1}, ["psm.W011"]),
        ({"sentinels": "s1:1 s2:1 s3:1", "sentinel_master": "m", "socket_timeout": 1}, []),
        ({"sentinels": "s1:26379", "sentinel_master": "m", "socket_timeout": 1}, ["psm.W011"]),
        ({"url": "redis://cache:6379/0", "socket_timeout": 1}, []),
        ({"url": "redis://cache:6379/0", "socket_connect_timeout": 1}, ["psm.W012"]),
        ({"sentinels": "s1:26379", "sentinel_master": "m"}, ["psm.W011", "psm.W012"]),
    ],
)
def test_redis_topologies_without_failover_or_timeouts_are_warned_of(where, expected):
    findings = findings_for(redis_on("ns", **where))
    assert ids(findings) == expected
    for finding in findings:
        assert finding.level == "warning" and finding.namespace == "ns"
    if "psm.W011" in expected:
        (one_node,) = [f for f in findings if f.id == "psm.W011"]
        assert ("s1:26379" if "sentinels" in where else "10.0.0.1:7000") in one_node.message


def test_a_redis_namespace_with_its_own_client_callable_is_not_judged():
    factory = RedisSessionFactory(
        secret=GOOD_SECRET, cookie_name="own", cookie_secure=True, cookie_httponly=True,
        cookie_samesite="Lax", timeout=600, redis_client_callable=lambda request, **kw: None,
    )  # fmt: skip
    assert findings_for(lambda c: c.register_session_factory("own", factory)) == []


def _findings_of(setup, settings=None):
    from pyramid.config import Configurator

    from pyramid_session_multi.checks import run_checks
    from pyramid_session_multi.config import get_manager_config

    config = Configurator(settings=settings or {})
    config.include("pyramid_session_multi")
    setup(config)
    config.commit()
    return run_checks(get_manager_config(config.registry), config.registry.settings)


def _beaker_file(tmp_path, key, path):
    import pyramid_beaker

    return pyramid_beaker.BeakerSessionFactoryConfig(
        type="file", data_dir=str(tmp_path / key), secret="s" * 40, key=key, cookie_path=path
    )


def test_a_server_side_cookie_narrower_than_the_logout_path_is_reported(tmp_path):
    def setup(config):
        config.register_session_factory("account", _beaker_file(tmp_path, "acc", "/account"))
        config.register_session_factory("site", _beaker_file(tmp_path, "site", "/"))

    unknown = [f for f in _findings_of(setup) if f.id == "psm.W015"]
    assert [f.namespace for f in unknown] == ["account"]
    assert "Path=/account" in unknown[0].message
    outside = _findings_of(setup, {"session_multi.check.logout_path": "/logout"})
    assert [(f.namespace, "at /logout" in f.message) for f in outside if f.id == "psm.W015"] == [
        ("account", True)
    ]
    inside = _findings_of(setup, {"session_multi.check.logout_path": "/account/logout"})
    assert [f for f in inside if f.id == "psm.W015"] == []


def test_a_client_side_cookie_with_a_narrow_path_is_not_the_logout_trap():
    from tests.support.apps import signed_factory

    def setup(config):
        config.register_session_factory("prefs", signed_factory("prefs", path="/prefs"))

    assert [f for f in _findings_of(setup) if f.id == "psm.W015"] == []


def test_a_partitioned_cookie_that_is_not_samesite_none_is_reported():
    from tests.support.apps import signed_factory

    def setup(config):
        config.register_session_factory("lax", signed_factory("lax", secure=True), partitioned=True)
        config.register_session_factory(
            "embed", signed_factory("embed", secure=True, samesite="None"), partitioned=True
        )

    assert [f.namespace for f in _findings_of(setup) if f.id == "psm.W014"] == ["lax"]


def test_path_match_is_rfc_6265s():
    from pyramid_session_multi.checks import path_matches

    assert path_matches("/account", "/account") and path_matches("/account/x", "/account")
    assert path_matches("/a/b", "/a/") and not path_matches("/accounts", "/account")
    assert not path_matches("/logout", "/account")


def test_every_id_a_check_gives_is_one_the_silence_setting_may_name():
    import re
    from pathlib import Path

    from pyramid_session_multi import checks

    given = set(re.findall(r'"(psm\.[EWI]\d{3})"', Path(checks.__file__).read_text()))
    assert given == set(checks.CHECK_IDS)
