"""A runnable demo of pyramid_session_multi: ``make demo``."""

from typing import Any

from pyramid.config import Configurator

from .sessions import register_namespaces


def main(global_config: Any, **settings: Any) -> Any:
    """The PasteDeploy app factory of ``development.ini``."""
    config = Configurator(settings=settings)
    config.include("pyramid_session_multi")
    register_namespaces(config, settings)
    config.include(".views")
    return config.make_wsgi_app()
