"""Objects the tests name by dotted name, as an ini or an include would."""

from pyramid.session import SignedCookieSessionFactory

prefs_factory = SignedCookieSessionFactory("dotted-secret", cookie_name="dotted_prefs")


def only_https(request):
    return request.scheme == "https"


def always_valid(request, session):
    return True


def addon_includeme(config):
    """An add-on registering namespace 'shared', to be overridden."""
    config.register_session_factory(
        "shared", SignedCookieSessionFactory("addon", cookie_name="addon_shared")
    )


def addon_same_cookie(config):
    config.register_session_factory(
        "other", SignedCookieSessionFactory("addon", cookie_name="cookie_a")
    )


def settings_factory(options):
    """A factory kind named by dotted name in settings: gets the options as text."""
    return SignedCookieSessionFactory(options["secret"], cookie_name=options["cookie"])


#: the old-secret factory a fallback test names by dotted name
old_prefs_factory = SignedCookieSessionFactory(
    "the-old-secret-0123456789abcdef-0123456789", cookie_name="prefs"
)
