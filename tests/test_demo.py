"""The demo through WebTest: every page, every namespace."""

import json
import os
import re
import subprocess
import sys
import time

import pytest
import webtest

from demo_app.redis_embedded import DATA_DIR, EmbeddedRedis
from tests.support.apps import set_cookie_names
from tests.support.demo import INI, make_demo, stored_tokens
from tests.support.http_client import ROOT, wait_for_port
from tests.support.redis_server import free_port
from tests.support.toolbar import toolbar_page

HTTPS = {"wsgi.url_scheme": "https", "HTTP_HOST": "localhost:443"}


@pytest.fixture
def app(redis_db, tmp_path):
    # a database of its own: the revocations and histories of other tests stay theirs
    return webtest.TestApp(
        make_demo(redis_db, toolbar=False, **{"sql.embedded_dir": str(tmp_path)})
    )


def test_first_visit_sets_both_counting_cookies(app):
    response = app.get("/")
    assert set_cookie_names(response) == ["demo_account", "demo_prefs"]
    assert 'id="prefs-visits">1<' in response.text
    assert 'id="account-visits">1<' in response.text
    response = app.get("/")
    assert 'id="prefs-visits">2<' in response.text
    assert 'id="account-visits">2<' in response.text
    assert "Not logged in" in response.text


def test_every_namespace_is_shown_with_its_cookie(app):
    text = app.get("/").text
    for namespace, cookie in (
        ("prefs", "demo_prefs"),
        ("account", "demo_account"),
        ("secure", "demo_secure"),
    ):
        assert f'id="ns-{namespace}"' in text
        assert f"<code>{cookie}</code>" in text
    assert "<code>None</code> (not available over this scheme)" in text


def test_preferences_are_saved_and_shown_everywhere(app):
    form = app.get("/preferences").forms["prefs-form"]
    form["theme"], form["language"] = "dark", "fr"
    response = form.submit().follow()
    assert "Preferences saved." in response.text
    for path in ("/", "/account", "/secure", "/preferences"):
        text = app.get(path).text
        assert '<body class="dark">' in text and '<html lang="fr">' in text


def test_bad_preferences_are_refused_and_nothing_lost(app):
    form = app.get("/preferences").forms["prefs-form"]
    form["theme"] = "dark"
    form.submit()
    form = app.get("/preferences").forms["prefs-form"]
    form["theme"].force_value("<neon>")
    response = form.submit(status=400)
    assert "Unknown theme &#x27;&lt;neon&gt;&#x27;" in response.text
    assert "<neon>" not in response.text
    assert '<body class="dark">' in app.get("/").text


def test_login_keeps_the_token_server_side(app, redis_db):
    form = app.get("/account").forms["login-form"]
    form["username"] = "alice"
    response = form.submit().follow()
    assert "Logged in as <strong id='user'>alice</strong>" in response.text
    tokens = stored_tokens(redis_db)
    assert len(tokens) == 1 and tokens[0].startswith("tok_")
    for path in ("/", "/account", "/preferences", "/secure"):
        assert tokens[0] not in app.get(path).text
    assert "api_token: <em>(kept on the server, never shown)</em>" in app.get("/account").text
    assert all(tokens[0] not in value for value in app.cookies.values())


def log_in(app, username):
    form = app.get("/account").forms["login-form"]
    form["username"] = username
    return form.submit().follow()


def test_login_rotates_every_session_id(app, redis_db):
    app.get("/")  # an anonymous account session (the visit counter)
    anonymous = app.cookies["demo_account"]
    response = log_in(app, "dave")
    assert "every session id was rotated" in response.text
    assert app.cookies["demo_account"] != anonymous
    planted = webtest.TestApp(app.app)
    planted.set_cookie("demo_account", anonymous)
    page = planted.get("/account").text
    assert 'id="login-form"' in page and "dave" not in page


def test_admin_mode_is_bound_to_the_account_session(app):
    assert "Log in first" in app.get("/admin").text
    log_in(app, "erin")
    app.get("/admin").forms[0].submit().follow()
    page = app.get("/admin").text
    assert "Admin mode is <strong>on</strong>" in page
    assert page.count("(binding token)") == 2  # the same token in admin and account
    mallory = webtest.TestApp(app.app)
    log_in(mallory, "mallory")
    mallory.set_cookie("demo_admin", app.cookies["demo_admin"])
    assert "Admin mode is off" in mallory.get("/admin").text
    app.get("/").forms[0].submit()  # log out everywhere
    assert "Log in first" in app.get("/admin").text


def test_bad_user_name_is_refused_and_what_was_typed_kept(app):
    form = app.get("/account").forms["login-form"]
    form["username"] = "<bob>"
    response = form.submit(status=400)
    assert "A user name is 1 to 32 letters" in response.text
    assert 'value="&lt;bob&gt;"' in response.text
    assert "Not logged in" in app.get("/").text


def test_secure_namespace_is_none_over_http_and_a_session_over_https(app):
    response = app.get("/secure")
    assert "is <code>None</code>" in response.text
    assert "demo_secure" not in set_cookie_names(response)
    response = app.get("/secure", extra_environ=HTTPS)
    form = response.forms[0]
    form["note"] = "over tls"
    response = form.submit(extra_environ=HTTPS)
    secure_cookie = [
        h for h in response.headers.getall("Set-Cookie") if h.startswith("demo_secure=")
    ]
    assert len(secure_cookie) == 1 and "secure" in secure_cookie[0].lower()
    assert "over tls" in app.get("/secure", extra_environ=HTTPS).text
    # replayed over http, the namespace stays None and nothing is sent
    response = app.get("/secure")
    assert "is <code>None</code>" in response.text
    assert "demo_secure" not in set_cookie_names(response)


def test_log_out_of_every_namespace(app):
    app.get("/")
    form = app.get("/account").forms["login-form"]
    form["username"] = "carol"
    form.submit()
    prefs_form = app.get("/preferences").forms["prefs-form"]
    prefs_form["theme"] = "dark"
    prefs_form.submit()
    response = app.get("/").forms[0].submit().follow()
    assert "Logged out: every namespace of this browser was invalidated." in response.text
    assert "Not logged in" in response.text
    assert '<body class="light">' in response.text


def test_posts_need_the_csrf_token(app):
    app.get("/")
    app.post("/account", {"username": "mallory"}, status=400)
    assert "Not logged in" in app.get("/").text


def test_embedded_redis_when_no_url(tmp_path, monkeypatch):
    monkeypatch.delenv("REDIS_URL", raising=False)
    started = []

    class Recorded(EmbeddedRedis):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            started.append(self)

    monkeypatch.setattr("demo_app.sessions.EmbeddedRedis", Recorded)
    app = webtest.TestApp(make_demo(None, toolbar=False, **{"redis.embedded_dir": str(tmp_path)}))
    try:
        form = app.get("/account").forms["login-form"]
        form["username"] = "dave"
        form.submit()
        assert "Logged in as" in app.get("/account").text
        assert len(redis_servers(tmp_path)) == 1
    finally:
        for embedded in started:
            embedded.stop()
    assert [embedded.started for embedded in started] == [False]
    assert redis_servers(tmp_path) == set(), "stop() left the embedded redis-server running"


def test_demo_with_the_toolbar_and_panel(redis_db):
    app = webtest.TestApp(make_demo(redis_db), extra_environ={"REMOTE_ADDR": "127.0.0.1"})
    response = app.get("/")
    assert 'id="pDebug"' in response.text
    assert "SessionMulti" in toolbar_page(app)


@pytest.mark.parametrize(
    "command",
    [
        [sys.executable, "-m", "demo_app"],
        [os.path.join(os.path.dirname(sys.executable), "pserve"), INI],
    ],
    ids=["python-m", "pserve"],
)
def test_the_demo_serves_on_the_port_the_command_line_gives(command, redis_db):
    port = free_port()
    env = dict(os.environ, REDIS_URL=redis_db)
    process = subprocess.Popen(
        [*command, f"http_port={port}"],
        cwd=str(ROOT),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, process)
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/") as response:
            assert b"pyramid_session_multi demo" in response.read()
        # as a local TLS-terminating proxy would send it, from 127.0.0.1
        proxied = urllib.request.Request(
            f"http://127.0.0.1:{port}/secure", headers={"X-Forwarded-Proto": "https"}
        )
        with urllib.request.urlopen(proxied) as response:
            assert b"Over https" in response.read()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/secure") as response:
            assert b"is <code>None</code>" in response.read()
    finally:
        process.terminate()
        process.wait(10)


def test_make_demo_takes_the_port():
    def planned(*arguments):
        result = subprocess.run(
            ["make", "--no-print-directory", "-n", "demo", *arguments],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.splitlines()[-1]

    assert planned("PORT=8080").endswith("pserve demo_app/development.ini http_port=8080")
    assert planned().endswith("pserve demo_app/development.ini http_port=6543")
    with open(INI) as ini:
        assert "listen = 127.0.0.1:%(http_port)s" in ini.read()


def redis_servers(directory=DATA_DIR):
    """The pids of the redis-servers working in ``directory``.

    The embedded server runs in the directory of its data file (the demo's
    ``var/`` unless configured); other tests (or other runs on a busy
    machine) start servers elsewhere.
    """
    demo_data = os.path.realpath(directory)
    pids = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                    if b"redis-server" not in cmdline.read().split(b"\0")[0]:
                        continue
                if os.path.realpath(os.readlink(f"/proc/{entry}/cwd")) == demo_data:
                    pids.add(int(entry))
            except OSError:
                continue
    return pids


def test_embedded_redis_starts_and_stops_with_the_demo():
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    before = redis_servers()
    process = subprocess.Popen(
        [sys.executable, "-m", "demo_app", f"http_port={port}"],
        cwd=str(ROOT),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, process)
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/") as response:
            assert b'id="account-visits">1<' in response.read()
        servers = redis_servers() - before
        assert len(servers) == 1, "the demo should start one embedded redis-server"
    finally:
        process.terminate()
        process.wait(10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and servers & redis_servers():
        time.sleep(0.1)
    assert not servers & redis_servers(), "redis-server outlived the demo"


def test_psessions_lists_the_demo_without_starting_redis():
    script = os.path.join(os.path.dirname(sys.executable), "psessions")
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    before = redis_servers()
    result = subprocess.run(
        [script, INI, "--format", "json"], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 0, result.stderr
    rows = {row["namespace"]: row for row in json.loads(result.stdout)}
    assert sorted(rows) == ["account", "admin", "history", "prefs", "secure"]
    assert redis_servers() - before == set(), "psessions started the embedded Redis"


def test_history_is_kept_in_sqlite_by_default(redis_db, tmp_path, monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    app = webtest.TestApp(make_demo(redis_db, toolbar=False, **{"sql.embedded_dir": str(tmp_path)}))
    app.get("/history")
    response = app.get("/history?again=1")
    assert "/history?again=1" in response.text and "demo_history" in app.cookies
    assert (tmp_path / "demo-sessions.sqlite").exists()


@pytest.mark.postgresql
def test_database_url_moves_history_to_postgresql(redis_db, postgresql_url, monkeypatch):
    import sqlalchemy

    monkeypatch.setenv("DATABASE_URL", postgresql_url)
    app = webtest.TestApp(make_demo(redis_db, toolbar=False))
    app.get("/history")
    engine = sqlalchemy.create_engine(postgresql_url)
    with engine.connect() as connection:
        stored = connection.execute(sqlalchemy.text("select namespace from demo_sessions"))
        (session_id,) = [row[0] for row in stored]
    assert app.cookies["demo_history"].endswith(session_id)  # signed: signature + id
    engine.dispose()


def test_the_home_page_names_the_demo_once_in_its_title(app):
    text = app.get("/").text
    assert "<title>pyramid_session_multi demo</title>" in text
    assert "<title>Preferences · pyramid_session_multi demo</title>" in app.get("/preferences").text


@pytest.mark.parametrize("active", [False, True])
def test_the_panel_asks_to_be_activated_only_while_inactive(redis_db, active):
    from tests.support.toolbar import panel_html, text_of

    app = webtest.TestApp(make_demo(redis_db, toolbar=True))
    app.extra_environ = {"REMOTE_ADDR": "127.0.0.1"}
    if active:
        app.set_cookie("pdtb_active", "session_multi")
    app.get("/")
    text = text_of(panel_html(app))
    assert ("was active" in text) is active
    assert ("Activate it in the toolbar's Settings tab" in text) is not active


def test_the_ini_counts_the_namespaces_it_describes():
    from pathlib import Path

    from demo_app import sessions

    text = Path(INI).read_text()
    in_code = {"account", "history", "admin"}
    assert set(sessions.DESCRIPTIONS) == in_code | {"prefs", "secure"}
    assert "Two of the demo's five namespaces are declared here" in text
    for namespace in in_code:
        assert f'"{namespace}"' in text.split("session_multi.namespaces")[0]


def demo_topology(app):
    from pyramid_session_multi.config import get_manager_config
    from pyramid_session_multi.describe import describe_namespaces

    rows = describe_namespaces(get_manager_config(app.registry))
    return next(row["topology"] for row in rows if row["namespace"] == "account")


@pytest.mark.parametrize(
    ("environment", "topology"),
    [
        ({"REDIS_CLUSTER_NODES": "10.9.9.1:7000 10.9.9.2:7000"}, "cluster"),
        (
            {"REDIS_SENTINELS": "10.9.9.3:26379", "REDIS_SENTINEL_MASTER": "demo"},
            "sentinel master demo",
        ),
        ({"REDIS_URL": "redis://10.9.9.4:6379/0"}, "single"),
    ],
)
def test_the_demo_takes_a_cluster_or_sentinels_beside_a_url(monkeypatch, environment, topology):
    from demo_app.redis_embedded import EXTERNAL_REDIS

    for variable, _key, _argument in EXTERNAL_REDIS:
        monkeypatch.delenv(variable, raising=False)
    for variable, value in environment.items():
        monkeypatch.setenv(variable, value)
    # nothing connects: these servers do not exist
    assert demo_topology(make_demo(None, toolbar=False)) == topology


def test_the_demo_refuses_two_redis_at_once(monkeypatch):
    from pyramid.exceptions import ConfigurationError

    monkeypatch.setenv("REDIS_CLUSTER_NODES", "10.9.9.1:7000")
    monkeypatch.setenv("REDIS_URL", "redis://10.9.9.4:6379/0")
    with pytest.raises(ConfigurationError, match="REDIS_URL and REDIS_CLUSTER_NODES"):
        make_demo(None, toolbar=False)
    monkeypatch.delenv("REDIS_URL")
    monkeypatch.setenv("REDIS_CLUSTER_NODES", "10.9.9.1:port")
    with pytest.raises(ConfigurationError, match=r"REDIS_CLUSTER_NODES.*port 'port'"):
        make_demo(None, toolbar=False)


def test_the_account_page_shows_the_timeouts_and_the_recorded_user(app):
    text = log_in(app, "dave").text
    assert "<strong id='recorded-user'>dave</strong>" in text
    # half an hour unused, eight hours at most: a fresh login has (nearly) all of both
    idle = re.search(r"<span id='idle-left'>(\d+):(\d\d):(\d\d)</span>", text)
    absolute = re.search(r"<span id='absolute-left'>(\d+):(\d\d):(\d\d)</span>", text)
    assert idle and idle.group(1, 2) in (("0", "30"), ("0", "29"))
    assert absolute and absolute.group(1) in ("8", "7")
    row = text[text.index('id="ns-account"') :]
    assert "idle: 0:" in row and "of 0:30:00" in row and "of 8:00:00" in row
    assert "user: <code class='recorded-user'>dave</code>" in row


def test_the_panel_shows_the_user_the_login_recorded(redis_db):
    from tests.support.toolbar import panel_html, text_of

    app = webtest.TestApp(make_demo(redis_db, toolbar=True))
    app.extra_environ = {"REMOTE_ADDR": "127.0.0.1"}
    app.set_cookie("pdtb_active", "session_multi")
    log_in(app, "erin")
    assert "user 'erin'" in text_of(panel_html(app))


def test_sign_out_everywhere_ends_the_users_sessions_on_every_device(redis_db):
    wsgi = make_demo(redis_db, toolbar=False)
    laptop, phone, stranger = (webtest.TestApp(wsgi) for _ in range(3))
    user = f"frank{os.getpid()}"
    for device in (laptop, phone):
        log_in(device, user)
    log_in(stranger, "grace")
    response = laptop.get("/account").forms["sign-out-everywhere"].submit().follow()
    assert f"{user} was signed out everywhere" in response.text
    for device in (laptop, phone):
        assert "Not logged in" in device.get("/").text
    assert "Logged in as <strong id='user'>grace</strong>" in stranger.get("/").text
    # a new login after it holds
    assert f"Logged in as <strong id='user'>{user}</strong>" in log_in(phone, user).text


def test_sign_out_other_devices_keeps_this_one(redis_db):
    wsgi = make_demo(redis_db, toolbar=False)
    laptop, phone = webtest.TestApp(wsgi), webtest.TestApp(wsgi)
    user = f"heidi{os.getpid()}"
    for device in (laptop, phone):
        log_in(device, user)
    response = laptop.get("/account").forms["sign-out-others"].submit().follow()
    assert f"Every other device of {user} was signed out." in response.text
    assert f"Logged in as <strong id='user'>{user}</strong>" in laptop.get("/").text
    assert "Not logged in" in phone.get("/").text


def test_the_fallback_page_moves_a_cookie_signed_with_the_old_secret(app):
    assert "Nothing was moved in this request." in app.get("/fallback").text
    response = app.get("/fallback").forms[0].submit()
    old_cookie = app.cookies["demo_prefs"]
    text = response.follow().text
    assert "This request moved <code>prefs</code> from its fallback 1" in text
    assert "&#x27;the old secret&#x27;" in text and '<body class="dark">' in text
    assert app.cookies["demo_prefs"] != old_cookie  # now signed with the current secret
    again = app.get("/fallback").text
    assert "Nothing was moved in this request." in again and '<body class="dark">' in again
    # a cookie signed with neither secret is refused
    stranger = webtest.TestApp(app.app)
    stranger.set_cookie("demo_prefs", "forged-with-no-known-secret")
    assert '<body class="light">' in stranger.get("/fallback").text


class EverySecondANewOne:
    """pyramid's cookie sessions' clock, one second later at every call: a
    request slow enough to cross a second between any two of its readings."""

    def __init__(self, real):
        self.now = float(int(real.time()))

    def time(self):
        self.now += 1
        return self.now


def test_a_first_visit_sets_no_admin_cookie_however_many_seconds_it_crosses(app, monkeypatch):
    import pyramid.session

    monkeypatch.setattr(pyramid.session, "time", EverySecondANewOne(time))
    response = app.get("/")
    assert 'id="ns-admin"' in response.text  # the admin session was made and read
    assert set_cookie_names(response) == ["demo_account", "demo_prefs"]
