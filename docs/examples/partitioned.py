"""A namespace for an application embedded in other sites: a partitioned cookie."""

from pyramid.config import Configurator
from pyramid.session import JSONSerializer, SignedCookieSessionFactory


def visit(request):
    session = request.session_multi["embed"]
    session["visits"] = session.get("visits", 0) + 1
    return {"visits": session["visits"]}


def main(global_config=None, **settings):
    config = Configurator(settings=settings)
    config.include("pyramid_session_multi")
    config.register_session_factory(
        "embed",
        SignedCookieSessionFactory(
            "embed-secret-of-32-bytes-or-more!",
            cookie_name="__Host-embed",
            secure=True,  # a Partitioned cookie needs Secure
            httponly=True,
            samesite="None",  # sent where the application is embedded
            timeout=1800,
            serializer=JSONSerializer(),
        ),
        partitioned=True,
    )
    config.add_route("visit", "/")
    config.add_view(visit, route_name="visit", renderer="json")
    return config.make_wsgi_app()
