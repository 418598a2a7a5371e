"""Small HTML helpers: every value goes through html.escape."""

from collections.abc import Iterable
from html import escape
from typing import Any

from pyramid.csrf import get_csrf_token

from pyramid_session_multi.binding import token_of
from pyramid_session_multi.config import get_manager_config
from pyramid_session_multi.describe import describe_lifetime
from pyramid_session_multi.libraries.beaker import BEAKER_BOOKKEEPING

from .sessions import DESCRIPTIONS, SERVER_ONLY_KEYS

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; }
body.dark { background: #1e1f24; color: #e8e8e8; }
body.dark a { color: #8ab4f8; }
nav a { margin-right: 1rem; }
table { border-collapse: collapse; margin: 1rem 0; }
td, th { border: 1px solid #999; padding: .3rem .6rem; text-align: left; vertical-align: top; }
.error { color: #b00020; font-weight: bold; }
.notice { color: #0a7d2c; }
code { font-size: 95%; }
"""


#: What every page's title ends with; the home page's title is this alone.
SITE_TITLE = "pyramid_session_multi demo"


def page(request: Any, title: str, body: str, message: str = "", error: str = "") -> str:
    prefs = request.session_multi["prefs"]
    theme = prefs.get("theme", "light")
    language = prefs.get("language", "en")
    head_title = title if title == SITE_TITLE else f"{title} · {SITE_TITLE}"
    notes = ""
    if error:
        notes += f'<p class="error" id="error">{escape(error)}</p>'
    if message:
        notes += f'<p class="notice" id="message">{escape(message)}</p>'
    return f"""<!DOCTYPE html>
<html lang="{escape(language)}"><head><meta charset="utf-8">
<title>{escape(head_title)}</title><style>{STYLE}</style></head>
<body class="{escape(theme)}">
<nav><a href="/">Home</a><a href="/preferences">Preferences</a><a href="/account">Account</a>
<a href="/admin">Admin</a><a href="/secure">Secure</a><a href="/history">History</a>
<a href="/fallback">Fallback</a></nav>
<h1>{escape(title)}</h1>{notes}{body}
</body></html>"""


def csrf_field(request: Any) -> str:
    return f'<input type="hidden" name="csrf_token" value="{escape(get_csrf_token(request))}">'


def shown_value(key: str, value: Any) -> str:
    if key in SERVER_ONLY_KEYS:
        return "<em>(kept on the server, never shown)</em>"
    return f"<code>{escape(repr(value))}</code>"


def duration(seconds: float) -> str:
    """``seconds`` as ``h:mm:ss``."""
    whole = int(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def lifetime(request: Any, namespace: str, session: Any) -> dict[str, Any] | None:
    """The add-on's timeouts and recorded user of a loaded session, if it keeps them."""
    config = get_manager_config(request.registry)
    namespace_config = None if config is None else config.get(namespace)
    if namespace_config is None or session is None:
        return None
    described = describe_lifetime(namespace_config, session)
    if described is None:
        return None
    described["idle_timeout"] = namespace_config.idle_timeout
    described["absolute_timeout"] = namespace_config.absolute_timeout
    return described


def lifetime_cell(request: Any, namespace: str, session: Any) -> str:
    """What the table shows of a session's timeouts and recorded user."""
    described = lifetime(request, namespace, session)
    if described is None:
        return "-"
    parts = []
    for kind in ("idle", "absolute"):
        timeout, left = described[f"{kind}_timeout"], described[f"{kind}_left"]
        if timeout is not None:
            parts.append(
                f"<span class='{kind}'>{kind}: {duration(left)} left of {duration(timeout)}</span>"
            )
    if not parts:
        parts.append("no timeout")
    user = described["userid"]
    parts.append(
        f"user: <code class='recorded-user'>{escape(str(user))}</code>"
        if user is not None
        else "no user recorded"
    )
    return "<br>".join(parts)


def namespace_table(request: Any, namespaces: Iterable[str]) -> str:
    manager = request.session_multi
    rows = []
    for namespace in namespaces:
        session = manager[namespace]
        cookie = manager.get_namespace_cookiename(namespace)
        received = "yes" if cookie in request.cookies else "no"
        if session is None:
            values = "<code>None</code> (not available over this scheme)"
        elif not session:
            values = "<em>empty</em>"
        else:
            values = "<br>".join(
                f"{escape(str(k))}: {shown_value(str(k), v)}"
                for k, v in sorted(session.items())
                if k not in BEAKER_BOOKKEEPING
            )
        token = None if session is None else token_of(session)
        if token is not None:
            # the same token in account and admin is what binds them (kept out
            # of the session's data, as the add-on's own record)
            values += (
                f"<br>binding: <code class='binding'>{escape(token[:8])}…</code> (binding token)"
            )
        rows.append(
            f'<tr id="ns-{escape(namespace)}"><th>{escape(namespace)}</th>'
            f"<td>{escape(DESCRIPTIONS.get(namespace, ''))}</td>"
            f"<td><code>{escape(str(cookie))}</code> (sent by your browser: {received})</td>"
            f"<td>{values}</td><td>{lifetime_cell(request, namespace, session)}</td></tr>"
        )
    return (
        "<table><thead><tr><th>namespace</th><th>kind</th><th>cookie</th>"
        "<th>values</th><th>timeouts and user</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )
