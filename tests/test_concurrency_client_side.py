"""Client-side namespaces and parallel requests: what the browser's last
Set-Cookie wins over is only what a request changed, so a request that
changed nothing must send nothing (docs/narr/parallel.rst)."""

import pyramid_beaker
import pytest
from pyramid_nacl_session import EncryptedCookieSessionFactory

from .support.apps import build_app, set_cookie_names, signed_factory


def beaker_cookie(name, **options):
    return pyramid_beaker.BeakerSessionFactoryConfig(
        type="cookie", key=name, validate_key="validate-" * 4, secret="secret-" * 4, **options
    )


# pyramid's cookie sessions reissue their cookie on a read once a second has
# passed (reissue_time=0): the library's own choice, not what the test asks
FACTORIES = {
    "signed": lambda: signed_factory("signed", reissue_time=None),
    "nacl": lambda: EncryptedCookieSessionFactory(
        bytes(range(32)), cookie_name="nacl", reissue_time=None
    ),
    "stamped": lambda: signed_factory("stamped", reissue_time=None),
}

#: registration arguments beside the factory
OPTIONS = {"stamped": {"idle_timeout": 3600}}


@pytest.mark.parametrize("namespace", sorted(FACTORIES))
def test_a_client_side_namespace_sends_no_cookie_when_nothing_changed(namespace):
    app = build_app(
        lambda config: config.register_session_factory(
            namespace, FACTORIES[namespace](), **OPTIONS.get(namespace, {})
        )
    )
    written = app.post(f"/s/{namespace}", {"value": "kept"})
    assert set_cookie_names(written) == [namespace]
    read = app.get(f"/s/{namespace}")
    assert read.json["value"] == "kept"
    # a parallel request that only read sends nothing to overwrite another's write
    assert set_cookie_names(read) == []
    assert set_cookie_names(app.get("/plain")) == []


@pytest.mark.parametrize("save_accessed_time", [True, False])
def test_a_beaker_cookie_session_is_sent_again_on_every_read(save_accessed_time):
    # Beaker's own behaviour, whatever save_accessed_time says: why the docs keep
    # what parallel requests write out of a Beaker cookie namespace
    factory = beaker_cookie("beakercookie", save_accessed_time=save_accessed_time)
    app = build_app(lambda config: config.register_session_factory("beakercookie", factory))
    app.post("/s/beakercookie", {"value": "kept"})
    assert set_cookie_names(app.get("/s/beakercookie")) == ["beakercookie"]
