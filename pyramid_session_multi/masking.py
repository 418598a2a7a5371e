"""Passwords kept out of what the add-on shows: errors, reprs, logs, ``psessions``, the panel.

A URL may carry a password (``redis://:PASSWORD@host/0``,
``postgresql://user:PASSWORD@host/db``, ``?password=`` in a query), and an
operator may paste one where a host was expected.  Whatever the add-on shows
of such text goes through :func:`without_password` first.

A password may hold ``/``, ``@``, ``:``, ``%`` or ``#`` (percent-encoded or
not): everything between the scheme and the *last* ``@`` is the user and
password, whatever a URL parser would make of it, so nothing of the password
is left when a parser would split it elsewhere.
"""

import re

#: What stands for a password.
MASK = "***"

_QUERY_PASSWORD = re.compile(r"(?i)((?:^|[?&;])[a-z_]*password=)[^&;#]*")


def without_password(text: str) -> str:
    """``text`` (a URL, or a ``host:port`` that may be one) with any password masked.

    SQLAlchemy URLs go through SQLAlchemy's own
    ``render_as_string(hide_password=True)`` where it parses them; every URL
    then has what precedes its last ``@`` masked after the user name.
    """
    text = str(text)
    scheme, separator, rest = text.partition("://")
    if not separator:
        scheme, rest = "", text
    elif "redis" not in scheme and scheme != "unix":
        text = _sqlalchemy_masked(text)
        scheme, _, rest = text.partition("://")
    if "@" in rest:
        userinfo, _, after = rest.rpartition("@")
        user, colon, _password = userinfo.partition(":")
        if "/" in user or "?" in user:
            user, colon = "", ""  # no user: the password spans them
        rest = f"{user}:{MASK}@{after}" if colon else f"{MASK}@{after}"
    if separator:
        rest = _without_odd_port(rest)
    rest = _QUERY_PASSWORD.sub(lambda match: match.group(1) + MASK, rest)
    return f"{scheme}://{rest}" if separator else rest


def _without_odd_port(rest: str) -> str:
    """``rest`` (a URL after its scheme) with a port that is not a number masked:
    an operator may have pasted a password where the port goes."""
    prefix, at, hostpart = rest.rpartition("@")
    end = len(hostpart)
    for stop in "/?#":
        found = hostpart.find(stop)
        if found != -1:
            end = min(end, found)
    hostport, tail = hostpart[:end], hostpart[end:]
    host, colon, port = hostport.rpartition(":")
    if not colon or "]" in port or port.isdigit() or port == MASK:
        return rest
    return f"{prefix}{at}{host}:{MASK}{tail}"


def _sqlalchemy_masked(url: str) -> str:
    try:
        from sqlalchemy.engine import make_url

        masked: str = make_url(url).render_as_string(hide_password=True)
    except Exception:  # not SQLAlchemy's, or no SQLAlchemy: the generic rule
        return url
    return masked


def hide_in(message: str, *texts: str) -> str:
    """``message`` with every one of ``texts`` in it replaced by its masked form."""
    for text in texts:
        if text:
            message = message.replace(text, without_password(text))
    return message


def password_of(url: str) -> str | None:
    """The password of ``url`` as :func:`without_password` sees it (what precedes
    its last ``@``, after the user name), or ``None``."""
    _, separator, rest = str(url).partition("://")
    if not separator or "@" not in rest:
        return None
    userinfo = rest.rpartition("@")[0]
    user, colon, password = userinfo.partition(":")
    if "/" in user or "?" in user:
        password = userinfo
    elif not colon:
        return None
    return password or None


#: Where a driver's parser may have split a password, and shown a part of it.
_SPLITS = re.compile(r"[/@:%#?&;]")


def hide_password(message: str, url: str | None) -> str:
    """``message`` (a driver's error, say) without ``url``'s password, nor any part
    of it a parser split off at ``/``, ``@``, ``:``, ``%`` or ``#``."""
    password = None if url is None else password_of(url)
    if password is None:
        return message
    message = hide_in(message, str(url)).replace(password, MASK)
    for part in sorted(_SPLITS.split(password), key=len, reverse=True):
        if len(part) >= 3:
            message = message.replace(part, MASK)
    return message
