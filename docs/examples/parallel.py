"""A cart that a page's parallel requests fill: a Redis namespace that merges
on save (the default), with an ``on_conflict`` that keeps both sides' items.

``REDIS_URL`` says where Redis is; nothing connects until a request needs the
namespace.
"""

import os

from pyramid.config import Configurator
from pyramid_session_redis import RedisSessionFactory

from pyramid_session_multi.concurrency.merge import MISSING
from pyramid_session_multi.stores.redis import redis_client_callable

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
SECRET = os.environ.get("CART_SECRET", "a-long-random-secret-of-32-bytes-or-more")


def merge_carts(key, loaded, ours, theirs):
    """Two requests changed the same key: keep every item either side added."""
    if key != "items":
        return ours  # any other key: the last writer wins
    before = [] if loaded is MISSING else loaded
    mine = [] if ours is MISSING else ours
    other = [] if theirs is MISSING else theirs
    added = [item for item in mine if item not in before]
    return other + [item for item in added if item not in other]


def add_item(request):
    cart = request.session_multi["cart"]
    cart["items"] = [*cart.get("items", []), request.params["item"]]
    return {"items": cart["items"]}


def main(global_config=None, **settings):
    config = Configurator(settings=settings)
    config.include("pyramid_session_multi")
    config.register_session_factory(
        "cart",
        RedisSessionFactory(
            secret=SECRET,
            cookie_name="cart",
            cookie_secure=True,
            cookie_httponly=True,
            cookie_samesite="Lax",
            timeout=1200,
            redis_client_callable=redis_client_callable(
                REDIS_URL, socket_timeout=1, socket_connect_timeout=1
            ),
        ),
        on_conflict=merge_carts,  # or a dotted name: "myapp.carts:merge_carts"
    )
    config.add_route("add", "/add")
    config.add_view(add_item, route_name="add", renderer="json")
    return config.make_wsgi_app()
