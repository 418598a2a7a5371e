"""psessions --devices and --end-device, on an application sharing a real Redis store."""

import json

import pytest
import webtest
from pyramid.paster import get_app

from tests.test_revocation import run_psessions, write_ini


@pytest.fixture
def ini(redis_db, tmp_path, own_redis_server):
    return write_ini(tmp_path, redis_db, own_redis_server.url)


def log_in(wsgi, agent):
    client = webtest.TestApp(wsgi, extra_environ={"HTTP_USER_AGENT": agent})
    client.get("/login", {"userid": "alice", "ns": "account"})
    assert client.get("/r/account").json["user"] == "alice"
    return client


def test_psessions_lists_a_users_devices_and_ends_one(ini):
    wsgi = get_app(ini)
    laptop, phone = log_in(wsgi, "Laptop"), log_in(wsgi, "Phone\x1b[2J")

    status, out, err = run_psessions([ini, "--devices", "alice", "--format", "json"])
    assert status == 0, err
    listed = json.loads(out)
    assert [device["namespaces"] for device in listed] == ["account", "account"]
    assert listed[0]["user_agent"] == "Phone[2J"  # what a client sends is never a control
    status, out, _err = run_psessions([ini, "--devices", "alice"])
    assert status == 0 and out.splitlines()[0].split() == [
        "id",
        "user_agent",
        "created",
        "last_seen",
        "namespaces",
    ]
    assert listed[0]["id"] in out and "\x1b" not in out

    status, out, err = run_psessions([ini, "--end-device", listed[0]["id"]])
    assert status == 0, err
    assert "Ended device" in out
    assert phone.get("/r/account").json["user"] is None
    assert laptop.get("/r/account").json["user"] == "alice"
    status, out, err = run_psessions([ini, "--end-device", listed[0]["id"]])
    assert status == 1 and "no live device" in err
    status, out, _err = run_psessions([ini, "--devices", "bob"])
    assert status == 0 and "no live device" in out


def test_psessions_end_device_fails_when_the_store_is_down(ini, own_redis_server):
    own_redis_server.stop()
    try:
        status, _out, err = run_psessions([ini, "--end-device", "abc"])
    finally:
        own_redis_server.start()
    assert status == 1 and "was not ended" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["--devices", "alice", "--revoke", "alice"],
        ["--end-device", "x", "--check"],
        ["--devices", "alice", "--columns", "id"],
        ["--end-device", "x", "--format", "json"],
    ],
)
def test_psessions_refuses_devices_with_another_action(ini, argv):
    status, _out, err = run_psessions([ini, *argv])
    assert status == 2 and err


def test_the_psessions_page_shows_what_devices_and_end_device_print(ini):
    # the page's examples: the table's header and a row's shape, the end's line
    import re

    from tests.test_docs import DOCS

    page = (DOCS / "narr" / "psessions.rst").read_text()
    shown = page.split("$ psessions production.ini --devices alice\n", 1)[1].splitlines()
    header, row = shown[0].strip(), shown[1].strip()
    ended = page.split("$ psessions production.ini --end-device ", 1)[1].splitlines()[1].strip()

    log_in(get_app(ini), "Laptop")
    status, out, err = run_psessions([ini, "--devices", "alice"])
    assert status == 0, err
    assert out.splitlines()[0].split() == header.split()
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00"
    shape = rf"[0-9a-f]{{32}}\s+\S.*\s+{stamp}\s+{stamp}\s+\S.*"
    assert re.fullmatch(shape, row), row
    assert re.fullmatch(shape, out.splitlines()[1].strip()), out
    device = out.splitlines()[1].split()[0]
    status, out, err = run_psessions([ini, "--end-device", device])
    assert status == 0, err
    said = re.sub(r"[0-9a-f]{32}", "ID", out.strip())
    assert re.sub(r"\(store: .*\)", "(store)", said) == re.sub(
        r"\(store: .*\)", "(store)", re.sub(r"[0-9a-f]{32}", "ID", ended)
    )
