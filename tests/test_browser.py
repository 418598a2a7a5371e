"""The demo and the panel in headless Chromium (Debian's), via Playwright."""

import os
import re
import shutil
from pathlib import Path

import pytest

from tests.support.browser import browser  # noqa: F401  (the fixture)
from tests.support.demo import ServedApp, make_demo, stored_tokens
from tests.support.redis_server import free_port

pytestmark = pytest.mark.browser
DOCS = Path(__file__).resolve().parent.parent / "docs"


@pytest.fixture
def demo(redis_db):
    with ServedApp(make_demo(redis_db), free_port()) as served:
        yield served


def test_preferences_login_and_the_token_never_shown(browser, demo, redis_db):  # noqa: F811
    context = browser.new_context()
    page = context.new_page()
    page.goto(demo.url + "/")
    assert page.text_content("#prefs-visits") == "1"
    assert {c["name"] for c in context.cookies()} >= {"demo_prefs", "demo_account"}

    page.goto(demo.url + "/preferences")
    page.select_option("#theme", "dark")
    page.select_option("#language", "de")
    page.click("#save-prefs")
    page.wait_for_url(re.compile(r".*/preferences\?message=.*"))
    assert page.text_content("#message") == "Preferences saved."

    page.goto(demo.url + "/account")
    page.fill("#username", "bad name!")
    page.click("#login")
    assert "A user name is 1 to 32" in page.text_content("#error")
    page.fill("#username", "alice")
    page.click("#login")
    page.wait_for_url(re.compile(r".*/account\?message=.*"))
    assert page.text_content("#user") == "alice"

    tokens = stored_tokens(redis_db)
    assert len(tokens) == 1
    for path in ("/", "/preferences", "/account", "/secure"):
        page.goto(demo.url + path)
        assert page.get_attribute("body", "class") == "dark"
        assert page.get_attribute("html", "lang") == "de"
        assert tokens[0] not in page.content()
    # the loop ended on /secure, which is None over http
    assert (
        page.text_content("#secure-state")
        .strip()
        .startswith("request.session_multi['secure'] is None")
    )
    page.goto(demo.url + "/")
    assert page.text_content("#user") == "alice"
    assert int(page.text_content("#account-visits")) >= 2
    assert all(tokens[0] not in c["value"] for c in context.cookies())

    page.click("#logout")
    page.wait_for_url(re.compile(r".*/\?message=.*"))
    assert "Not logged in" in page.content()
    assert page.get_attribute("body", "class") == "light"
    context.close()


def test_panel_screenshot(browser, demo, tmp_path):  # noqa: F811
    """The panel renders in a real browser; its picture is the docs' one.

    The suite leaves the checkout alone: the picture goes to a temporary
    directory, and replaces ``docs/panel.png`` only when
    ``UPDATE_PANEL_SCREENSHOT=1`` is set.
    """
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(demo.url + "/")
    page.goto(demo.url + "/preferences")
    page.select_option("#theme", "dark")
    page.click("#save-prefs")
    page.wait_for_url(re.compile(r".*/preferences\?message=.*"))
    page.goto(demo.url + "/")  # a second visit: both counters change
    toolbar_link = page.get_attribute("#pShowToolBarButton", "href")
    assert toolbar_link and "/_debug_toolbar/" in toolbar_link
    page.goto(toolbar_link)
    page.click("#pDebugPanel-session_multi a")
    content = page.locator("#pDebugPanel-session_multi-content")
    content.wait_for(state="visible")
    text = content.text_content()
    assert "Configuration" in text and "demo_prefs" in text
    assert "accessed by the app" in text and "changed" in text and "Set-Cookie: set" in text
    shot = tmp_path / "panel.png"
    page.screenshot(path=str(shot), full_page=False)
    assert shot.stat().st_size > 10_000
    context.close()
    if os.environ.get("UPDATE_PANEL_SCREENSHOT") == "1":
        shutil.copyfile(shot, DOCS / "panel.png")


def prefixed_cookie_app(partitioned):
    """One ``__Host-`` namespace; login rotates and writes, logout invalidates."""
    from pyramid.config import Configurator
    from pyramid.session import SignedCookieSessionFactory

    config = Configurator()
    config.include("pyramid_session_multi")
    factory = SignedCookieSessionFactory(
        "browser-secret-of-32-bytes-or-more",
        cookie_name="__Host-acct",
        secure=True,  # Chromium keeps Secure cookies of http://127.0.0.1, a trustworthy origin
        samesite="None" if partitioned else "Lax",
    )
    config.register_session_factory("acct", factory, partitioned=partitioned)

    def login(request):
        request.session_multi.rotate()
        request.session_multi["acct"]["user"] = "alice"
        return {}

    def logout(request):
        request.session_multi.invalidate()
        return {}

    def whoami(request):
        return {"user": request.session_multi["acct"].get("user")}

    for route, view in (("login", login), ("logout", logout), ("whoami", whoami)):
        config.add_route(route, "/" + route)
        config.add_view(view, route_name=route, renderer="json")
    return config.make_wsgi_app()


@pytest.mark.parametrize("partitioned", [False, True], ids=["host-prefix", "partitioned"])
def test_chromium_drops_a_host_prefixed_cookie_at_logout(browser, partitioned):  # noqa: F811
    import json

    with ServedApp(prefixed_cookie_app(partitioned), free_port()) as served:
        context = browser.new_context()
        page = context.new_page()

        def user():
            page.goto(served.url + "/whoami")
            return json.loads(page.inner_text("body"))["user"]

        page.goto(served.url + "/login")
        assert [c["name"] for c in context.cookies()] == ["__Host-acct"]
        assert user() == "alice"
        page.goto(served.url + "/logout")
        assert context.cookies() == []  # the browser applied the deletion
        assert user() is None
        context.close()
