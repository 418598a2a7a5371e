"""The demo's pages."""

import re
import secrets
from html import escape
from typing import Any
from urllib.parse import urlencode

from pyramid.config import Configurator
from pyramid.httpexceptions import HTTPSeeOther
from pyramid.response import Response
from pyramid.session import SignedCookieSessionFactory
from pyramid.settings import aslist

from .render import SITE_TITLE, csrf_field, duration, lifetime, namespace_table, page
from .sessions import MIGRATED

THEMES = ("light", "dark")
LANGUAGES = {"en": "English", "fr": "Français", "de": "Deutsch"}
USERNAME = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
NOTE_LIMIT = 200


def html(text: str, status: int = 200) -> Response:
    return Response(text, status=status, content_type="text/html", charset="utf-8")


def redirect(location: str, message: str) -> HTTPSeeOther:
    return HTTPSeeOther(location=f"{location}?{urlencode({'message': message})}")


def flash_message(request: Any) -> str:
    return str(request.GET.get("message", ""))[:100]


def home(request: Any) -> Response:
    manager = request.session_multi
    prefs, account = manager["prefs"], manager["account"]
    prefs["visits"] = prefs.get("visits", 0) + 1
    account["visits"] = account.get("visits", 0) + 1
    user = account.get("user")
    greeting = (
        f"Logged in as <strong id='user'>{escape(user)}</strong>." if user else "Not logged in."
    )
    body = f"""
<p>Visits counted client-side (<code>prefs</code>):
<strong id="prefs-visits">{prefs["visits"]}</strong>;
server-side (<code>account</code>):
<strong id="account-visits">{account["visits"]}</strong>. {greeting}</p>
{namespace_table(request, manager.namespaces)}
<form method="post" action="/logout">{csrf_field(request)}
<button id="logout" type="submit">Log out of every namespace</button>
<small>calls <code>request.session_multi.invalidate()</code>: this browser only; to sign
out on every device, see <a href="/account">Account</a></small></form>"""
    return html(page(request, SITE_TITLE, body, flash_message(request)))


def preferences_form(request: Any, theme: str, language: str, error: str = "") -> str:
    theme_options = "".join(
        f'<option value="{t}"{" selected" if t == theme else ""}>{t}</option>' for t in THEMES
    )
    language_options = "".join(
        f'<option value="{code}"{" selected" if code == language else ""}>{escape(name)}</option>'
        for code, name in LANGUAGES.items()
    )
    body = f"""<p>Stored in <code>prefs</code>, a signed cookie: the browser holds the data.</p>
<form method="post" id="prefs-form">{csrf_field(request)}
<label>Theme <select name="theme" id="theme">{theme_options}</select></label>
<label>Language <select name="language" id="language">{language_options}</select></label>
<button type="submit" id="save-prefs">Save</button></form>
{namespace_table(request, ["prefs"])}"""
    return page(request, "Preferences", body, flash_message(request), error)


def preferences(request: Any) -> Response:
    prefs = request.session_multi["prefs"]
    theme, language = prefs.get("theme", "light"), prefs.get("language", "en")
    if request.method == "POST":
        wanted_theme = request.POST.get("theme", "")
        wanted_language = request.POST.get("language", "")
        if wanted_theme not in THEMES or wanted_language not in LANGUAGES:
            error = (
                f"Unknown theme {wanted_theme!r} or language {wanted_language!r}: "
                f"choose a theme of {', '.join(THEMES)} and a language of "
                f"{', '.join(LANGUAGES)}. Your preferences were not changed."
            )
            return html(preferences_form(request, theme, language, error), status=400)
        prefs["theme"], prefs["language"] = wanted_theme, wanted_language
        return redirect("/preferences", "Preferences saved.")
    return html(preferences_form(request, theme, language))


def account_page(request: Any, error: str = "", typed: str = "") -> str:
    account = request.session_multi["account"]
    user = account.get("user")
    if user:
        described = lifetime(request, "account", account) or {}
        recorded = described.get("userid")
        state = (
            f"<p>Logged in as <strong id='user'>{escape(user)}</strong>. A third-party "
            "API token was stored server-side for you; it never leaves Redis.</p>"
            "<p>The login recorded the user in every session this browser holds "
            "(<code>rotate(userid=...)</code>): recorded user "
            f"<strong id='recorded-user'>{escape(str(recorded))}</strong>. "
            f"This session ends after <span id='idle-left'>{duration(described['idle_left'])}"
            "</span> unused (<code>idle_timeout</code>), and at the latest in "
            f"<span id='absolute-left'>{duration(described['absolute_left'])}</span> "
            "(<code>absolute_timeout</code>).</p>"
            f"""<form method="post" action="/sign-out" id="sign-out-everywhere">
{csrf_field(request)}<button type="submit" id="sign-out-all">Sign out everywhere</button>
<small>calls <code>request.session_multi.revoke(user)</code>: every session recorded for
{escape(user)}, in every namespace and on every device, ends</small></form>
<form method="post" action="/sign-out" id="sign-out-others">{csrf_field(request)}
<input type="hidden" name="keep" value="1">
<button type="submit" id="sign-out-other-devices">Sign out my other devices</button>
<small><code>revoke(user, keep_current=True)</code>: this browser stays signed in</small>
</form>"""
        )
    else:
        state = f"""<form method="post" id="login-form">{csrf_field(request)}
<label>User name <input name="username" id="username" value="{escape(typed)}"
 maxlength="64"></label> <button type="submit" id="login">Log in</button></form>"""
    body = f"""<p>Stored in <code>account</code>, on Redis: the browser holds only a signed id.</p>
{state}{namespace_table(request, ["account"])}"""
    return page(request, "Account", body, flash_message(request), error)


def account(request: Any) -> Response:
    if request.method == "POST":
        username = request.POST.get("username", "").strip()
        if not USERNAME.match(username):
            error = (
                "A user name is 1 to 32 letters, digits, '.', '_' or '-'. "
                "You are not logged in; nothing else changed."
            )
            return html(account_page(request, error, username[:64]), status=400)
        # a privilege change: every namespace the browser holds gets a new id
        # (the old Redis key and SQL row are deleted), then the login is written
        # and records who the sessions now belong to, for revoke()
        request.session_multi.rotate(userid=username, raise_errors=True)
        session = request.session_multi["account"]
        session["user"] = username
        session["api_token"] = "tok_" + secrets.token_hex(16)
        return redirect("/account", "Logged in; every session id was rotated.")
    return html(account_page(request))


def admin(request: Any) -> Response:
    user = request.session_multi["account"].get("user")
    session = request.session_multi["admin"]
    if request.method == "POST" and user:
        session["admin_since"] = request.POST.get("since", "now")[:40] or "now"
        return redirect("/admin", "Admin mode on, bound to your account session.")
    if not user:
        state = "<p id='admin-state'>Log in first: admin mode needs an account session.</p>"
    elif session.get("admin_since"):
        state = (
            "<p id='admin-state'>Admin mode is <strong>on</strong>. Its cookie is only valid "
            "beside the account session it was written with: present it with another "
            "account cookie, or after logging out, and it is rejected.</p>"
        )
    else:
        state = f"""<p id='admin-state'>Admin mode is off.</p><form method="post">
{csrf_field(request)}<button type="submit" id="enter-admin">Enter admin mode</button></form>"""
    body = f"""<p>Kept in <code>admin</code>, a client-side signed cookie registered with
<code>bound_to="account"</code>.</p>{state}{namespace_table(request, ["admin", "account"])}"""
    return html(page(request, "Admin", body, flash_message(request)))


def logout(request: Any) -> Response:
    request.session_multi.invalidate()
    return redirect("/", "Logged out: every namespace of this browser was invalidated.")


def sign_out(request: Any) -> Response:
    user = request.session_multi["account"].get("user")
    if not user:
        return redirect("/account", "Log in first: nobody is signed in here.")
    keep = bool(request.POST.get("keep"))
    request.session_multi.revoke(user, keep_current=keep)
    if keep:
        return redirect("/account", f"Every other device of {user} was signed out.")
    return redirect("/account", f"{user} was signed out everywhere, this browser included.")


def old_secret(request: Any) -> str | None:
    """The first of the ``prefs`` namespace's ``secret_fallbacks``, if any."""
    words = aslist(request.registry.settings.get("session_multi.prefs.secret_fallbacks", ""))
    return words[0] if words else None


def fallback(request: Any) -> Response:
    secret = old_secret(request)
    if request.method == "POST":
        if secret is None:
            return redirect("/fallback", "No fallback is configured for prefs.")
        # a browser from before the secret changed: its prefs cookie is signed
        # with the old secret (what the namespace's factory used to be)
        old = SignedCookieSessionFactory(secret, cookie_name="demo_prefs", httponly=True)(request)
        old["theme"], old["written_with"] = "dark", "the old secret"
        return redirect("/fallback", "Your prefs cookie is now signed with the old secret.")
    request.session_multi["prefs"]  # loaded first: a migration happens here
    moved = request.environ.get(MIGRATED, [])
    if moved:
        state = "".join(
            f"<p id='migrated'>This request moved <code>{escape(namespace)}</code> from its "
            f"{escape(description)}: the cookie is now signed with the current secret, and "
            "the data was kept.</p>"
            for namespace, description in moved
        )
    else:
        state = "<p id='migrated'>Nothing was moved in this request.</p>"
    body = f"""<p>The secret of <code>prefs</code> was changed: the one before it is kept
as a fallback (<code>session_multi.prefs.secret_fallbacks</code> in
<code>development.ini</code>). A cookie signed with it is still read, once, and moved to
the current secret; a cookie signed with neither is refused.</p>{state}
<form method="post">{csrf_field(request)}
<button type="submit" id="old-cookie">Give me a prefs cookie signed with the old secret</button>
</form>{namespace_table(request, ["prefs"])}"""
    return html(page(request, "Fallback", body, flash_message(request)))


def secure(request: Any) -> Response:
    session = request.session_multi["secure"]
    error = ""
    if session is None:
        body = (
            "<p id='secure-state'><code>request.session_multi['secure']</code> is "
            "<code>None</code>: this namespace only exists over https, so no cookie "
            "was or will be sent over http.</p>"
        )
    else:
        if request.method == "POST":
            note = request.POST.get("note", "")
            if not note or len(note) > NOTE_LIMIT:
                error = f"A note is 1 to {NOTE_LIMIT} characters; the saved note was kept."
            else:
                session["note"] = note
        body = f"""<p id='secure-state'>Over https: the namespace is a session with a
secure cookie.</p><form method="post">{csrf_field(request)}
<label>Note <input name="note" maxlength="{NOTE_LIMIT}"></label>
<button type="submit">Save</button></form>"""
    body += namespace_table(request, ["secure"])
    return html(page(request, "Secure", body, error=error), status=400 if error else 200)


def history(request: Any) -> Response:
    session = request.session_multi["history"]
    if request.method == "POST":
        session["pages"] = []
        return redirect("/history", "History cleared.")
    pages = session.setdefault("pages", [])
    pages.append(request.path_qs[:100])
    del pages[:-10]
    session.save()
    items = "".join(f"<li>{escape(str(p))}</li>" for p in pages)
    body = f"""<p>Kept in <code>history</code>, a row of an SQL table (SQLite by default,
PostgreSQL when <code>DATABASE_URL</code> is set): the browser holds only a signed id.
Reload to add a visit.</p><ol id="history">{items}</ol>
<form method="post">{csrf_field(request)}<button type="submit" id="clear">Clear</button></form>
{namespace_table(request, ["history"])}"""
    return html(page(request, "History", body, flash_message(request)))


def includeme(config: Configurator) -> None:
    for name, path, view in (
        ("home", "/", home),
        ("preferences", "/preferences", preferences),
        ("account", "/account", account),
        ("admin", "/admin", admin),
        ("logout", "/logout", logout),
        ("sign_out", "/sign-out", sign_out),
        ("fallback", "/fallback", fallback),
        ("secure", "/secure", secure),
        ("history", "/history", history),
    ):
        config.add_route(name, path)
        config.add_view(view, route_name=name)
