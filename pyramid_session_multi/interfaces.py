"""The contracts of pyramid_session_multi, as zope interfaces."""

from zope.interface import Attribute, Interface


class ISessionMultiManagerConfig(Interface):  # type: ignore[misc]
    """The registry utility holding every registered namespace.

    ``config.include("pyramid_session_multi")`` registers one; the
    ``register_session_factory`` directive fills it.
    """

    namespaces = Attribute("The registered namespaces, in registration order.")
    discriminators = Attribute("The namespaces that have a discriminator.")
    namespaces_to_cookienames = Attribute("A dict of namespace to cookie name.")

    def has_namespace(namespace):  # type: ignore[no-untyped-def]
        """Return ``True`` if ``namespace`` is registered."""

    def get_namespace_config(namespace):  # type: ignore[no-untyped-def]
        """Return the session factory of ``namespace``, or ``None``."""

    def get_namespace_cookiename(namespace):  # type: ignore[no-untyped-def]
        """Return the cookie name of ``namespace``, or ``None``."""

    def get_namespace_discriminator(namespace):  # type: ignore[no-untyped-def]
        """Return the discriminator of ``namespace``, or ``None``."""

    def get_namespace_validator(namespace):  # type: ignore[no-untyped-def]
        """Return the validator of ``namespace``, or ``None``."""


class ISessionMultiObserver(Interface):  # type: ignore[misc]
    """Something told about each namespace the manager loads.

    Register one per request with
    :meth:`pyramid_session_multi.SessionMultiManager.add_observer`.  The
    debug toolbar panel is the reason this exists: it watches without
    touching the manager's entries.
    """

    def namespace_loaded(namespace, session):  # type: ignore[no-untyped-def]
        """Called once, right after ``namespace`` was loaded for the request.

        ``session`` is the ISession the namespace mounts, or ``None`` when
        the discriminator turned it away.
        """

    def cookie_refused(namespace, size, limit):  # type: ignore[no-untyped-def]
        """Called when the response failed because the cookie of ``namespace``
        would be ``size`` bytes, over ``limit``.

        Optional: the manager calls it only on observers that have it.
        """

    def cookie_header_over(total, limit):  # type: ignore[no-untyped-def]
        """Called when the session cookies the client will send back total
        ``total`` bytes, over the Cookie header budget ``limit``.

        Optional, like :meth:`cookie_refused`.
        """
