"""What a request's manager tells of the configuration: the same
introspection as the registry utility's (and 0.4's manager)."""

from typing import Any

from .config import Discriminator, SessionMultiManagerConfig, Validator


class ConfigIntrospection:
    """The registered namespaces, as ``request.session_multi`` tells them,
    read from its configuration (``_config``)."""

    __slots__ = ()

    _config: SessionMultiManagerConfig

    @property
    def namespaces(self) -> list[str]:
        """Every registered namespace, in registration order, loaded or not."""
        return self._config.namespaces

    @property
    def discriminators(self) -> list[str]:
        """The registered namespaces that have a discriminator."""
        return self._config.discriminators

    @property
    def namespaces_to_cookienames(self) -> dict[str, str]:
        """A new dict of each registered namespace to the name of its cookie."""
        return self._config.namespaces_to_cookienames

    def has_namespace(self, namespace: str) -> bool:
        """Whether ``namespace`` is registered (loaded or not: see ``in`` for that)."""
        return self._config.has_namespace(namespace)

    def get_namespace_config(self, namespace: str) -> Any:
        """The session factory registered for ``namespace``, or ``None``."""
        return self._config.get_namespace_config(namespace)

    def get_namespace_cookiename(self, namespace: str) -> str | None:
        """The name of the cookie ``namespace`` writes, or ``None`` if unregistered."""
        return self._config.get_namespace_cookiename(namespace)

    def get_namespace_discriminator(self, namespace: str) -> Discriminator | None:
        """The discriminator of ``namespace``, or ``None`` if it has none or is unregistered."""
        return self._config.get_namespace_discriminator(namespace)

    def get_namespace_validator(self, namespace: str) -> Validator | None:
        """The validator of ``namespace``, or ``None`` if it has none or is unregistered."""
        return self._config.get_namespace_validator(namespace)
