"""An "account" namespace on a Redis master that Redis Sentinel watches, from code.

``REDIS_SENTINELS`` lists the sentinels (``host:port host:port …``) and
``REDIS_SENTINEL_MASTER`` names the master they watch; nothing connects until
a request needs the namespace.
"""

import os

from pyramid.config import Configurator
from pyramid_session_redis import RedisSessionFactory

from pyramid_session_multi.stores.redis import redis_client_callable

SENTINELS = os.environ.get("REDIS_SENTINELS", "10.0.1.1:26379 10.0.1.2:26379 10.0.1.3:26379")
MASTER = os.environ.get("REDIS_SENTINEL_MASTER", "sessions")
SECRET = os.environ.get("ACCOUNT_SECRET", "a-long-random-secret-of-32-bytes-or-more")


def visits(request):
    account = request.session_multi["account"]
    account["visits"] = account.get("visits", 0) + 1
    return {"visits": account["visits"]}


def main(global_config=None, **settings):
    config = Configurator(settings=settings)
    config.include("pyramid_session_multi")
    config.register_session_factory(
        "account",
        RedisSessionFactory(
            secret=SECRET,
            cookie_name="account",
            cookie_secure=True,
            cookie_httponly=True,
            cookie_samesite="Lax",
            timeout=1200,
            redis_client_callable=redis_client_callable(
                sentinels=SENTINELS,
                sentinel_master=MASTER,
                socket_timeout=1,
                socket_connect_timeout=1,
            ),
        ),
    )
    config.add_route("visits", "/")
    config.add_view(visits, route_name="visits", renderer="json")
    return config.make_wsgi_app()


if __name__ == "__main__":
    app = main()
