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

    assert ids(findings_for(register)) == ["psm.I001", "psm.I001"]
    assert {f.namespace for f in findings_for(register)} == {"loose", "pair"}


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
    assert ids(findings) == ["psm.W001", "psm.W002", "psm.W003", "psm.W006", "psm.W007"]


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
    assert shared.namespace == "two" and "'one'" in shared.message


def test_silenced_ids_are_left_out():
    settings = {"session_multi.check.silence": "psm.W001 psm.I001"}
    register = lambda c: c.register_session_factory("ns", good_signed(secure=False))  # noqa: E731
    assert findings_for(register, settings) == []
