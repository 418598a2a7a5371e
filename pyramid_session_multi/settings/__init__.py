"""Namespaces declared in the application's settings (its .ini file).

::

    session_multi.namespaces = prefs account
    session_multi.prefs.factory = signed
    session_multi.prefs.secret = env:PREFS_SECRET
    session_multi.prefs.max_age = 31536000
    session_multi.account.factory = redis
    session_multi.account.secret = env:ACCOUNT_SECRET
    session_multi.account.redis_url = redis://127.0.0.1:6379/0

``factory`` is one of
:data:`~pyramid_session_multi.settings.kinds.FACTORY_KINDS` or a dotted
name of a callable that takes the namespace's options (a dict of strings) and returns a session
factory.  Every other key is the chosen library's own option, handed to that
library's own settings reader where it has one; ``discriminator``,
``validator``, ``bound_to`` and ``cookie_name`` are the add-on's.

Every value is checked at start-up, before any library sees it, and a
mistake is a :class:`SettingsError` naming the key and what it takes:

- a value ``env:NAME`` is read from the environment variable ``NAME``, which
  must be set and not empty;
- a secret (``secret``, and Beaker's ``validate_key`` and ``encrypt_key``)
  must not be empty, blank or the word ``none``; it is never shown in an error;
- a boolean takes Pyramid's :func:`~pyramid.settings.asbool` words
  (:data:`~pyramid_session_multi.values.BOOLEAN_WORDS`, any case) and nothing else;
- a number of seconds is a whole number, 0 or more (``none`` where the
  library allows no limit): ``3600s`` is refused;
- ``samesite`` (redis: ``cookie_samesite``) takes ``Strict``, ``Lax`` or
  ``None``, any case; ``None`` sends the attribute ``SameSite=None`` (which
  needs ``secure = true``). An empty value sends no SameSite attribute at
  all; leaving the key out keeps the library's default (``Lax`` for signed,
  nacl and beaker, none for redis);
- ``cookie_name`` is the one name of the namespace's cookie: the add-on
  registers it and the library writes it (for Beaker it is ``key``; both
  given and different is an error).

Fallbacks (see :func:`build_fallbacks`): ``secret_fallbacks = env:OLD1
env:OLD2`` reads sessions written under old secrets, and
``fallback.OPTION = …`` (``fallback.factory``, ``fallback.type``,
``fallback.key`` …) an old store; typos under either are refused naming
the key, as everywhere.

Values handed in from code may be numbers and booleans where the option is
one.  Each namespace is registered through the
:func:`~pyramid_session_multi.register_session_factory` directive, so
conflicts, overrides and introspection treat it like one registered in code.

The package reads them along its seams: ``settings.namespaces`` finds the
namespaces and their options, ``settings.kinds`` builds each library's
factory, ``settings.wiring`` registers them with Pyramid; the values
themselves are read by ``pyramid_session_multi.values``.
"""

from ..exceptions import SettingsError
from ..values import BOOLEAN_WORDS, ENV_PREFIX
from .kinds import FACTORY_KINDS
from .namespaces import (
    ADDON_KEYS,
    FALLBACK_PREFIX,
    GLOBAL_KEYS,
    build_factory,
    build_fallbacks,
    namespace_options,
)
from .readers import PREFIX
from .wiring import REVOCATIONS_KEY, register_from_settings

__all__ = [
    "ADDON_KEYS",
    "BOOLEAN_WORDS",
    "ENV_PREFIX",
    "FACTORY_KINDS",
    "FALLBACK_PREFIX",
    "GLOBAL_KEYS",
    "PREFIX",
    "REVOCATIONS_KEY",
    "SettingsError",
    "build_factory",
    "build_fallbacks",
    "namespace_options",
    "register_from_settings",
]
