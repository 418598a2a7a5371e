"""A cookie jar that applies the rules browsers apply to ``Set-Cookie``.

WebTest's jar keeps whatever it is sent.  A browser does not: it ignores a
``__Host-`` or ``__Secure-`` cookie without ``Secure`` (and a ``__Host-``
one with a ``Domain`` or a ``Path`` other than ``/``), a ``SameSite=None``
or ``Partitioned`` cookie without ``Secure`` -- and a deletion is a cookie
like any other, ignored by the same rules.  It keeps cookies apart by name,
domain, path and partition, so a deletion only drops the cookie it matches
in all four.  These are the rules of RFC 6265bis and CHIPS as Chromium
applies them; ``tests/test_browser.py`` checks one of them in Chromium.
"""

from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

HOST = "app.example"


@dataclass
class BrowserJar:
    """The cookies of one https origin, as a browser keeps them."""

    host: str = HOST
    #: (name, domain, path, partitioned) -> value
    cookies: dict[tuple[str, str, str, bool], str] = field(default_factory=dict)
    #: every Set-Cookie ignored, with the rule that ignored it
    ignored: list[tuple[str, str]] = field(default_factory=list)

    def receive(self, response: Any) -> None:
        """Apply every ``Set-Cookie`` of a WebTest response, in order."""
        for header in response.headers.getall("Set-Cookie"):
            self.apply(header)

    def apply(self, header: str) -> None:
        pair, *parts = header.split(";")
        name, _, value = pair.strip().partition("=")
        attributes: dict[str, str] = {}
        for part in parts:
            key, _, attribute_value = part.strip().partition("=")
            attributes[key.strip().lower()] = attribute_value.strip()
        secure = "secure" in attributes
        path = attributes.get("path") or "/"
        domain = attributes.get("domain", "").lstrip(".").lower() or self.host
        partitioned = "partitioned" in attributes
        refusal = None
        if name.startswith("__Secure-") and not secure:
            refusal = "__Secure- without Secure"
        elif name.startswith("__Host-") and (not secure or "domain" in attributes or path != "/"):
            refusal = "__Host- without Secure, or with Domain, or a Path other than /"
        elif attributes.get("samesite", "").lower() == "none" and not secure:
            refusal = "SameSite=None without Secure"
        elif partitioned and not secure:
            refusal = "Partitioned without Secure"
        if refusal is not None:
            self.ignored.append((header, refusal))
            return
        key = (name, domain, path, partitioned)
        if _expired(attributes):
            self.cookies.pop(key, None)
        else:
            self.cookies[key] = value

    def named(self, name: str) -> list[tuple[tuple[str, str, str, bool], str]]:
        """Every cookie kept under ``name``, with its key."""
        return [(key, value) for key, value in self.cookies.items() if key[0] == name]

    def header(self) -> str:
        """The Cookie header the browser sends to ``/`` of its host."""
        return "; ".join(f"{key[0]}={value}" for key, value in self.cookies.items())

    def environ(self) -> dict[str, str]:
        """The WSGI environ of a request from this browser, over https."""
        return {
            "HTTP_COOKIE": self.header(),
            "wsgi.url_scheme": "https",
            "HTTP_HOST": self.host,
        }


def _expired(attributes: dict[str, str]) -> bool:
    max_age = attributes.get("max-age")
    if max_age is not None:
        try:
            return int(max_age) <= 0
        except ValueError:
            pass
    expires = attributes.get("expires")
    if expires:
        try:
            return parsedate_to_datetime(expires).year < 2000
        except (TypeError, ValueError):
            return False
    return False
