"""A copy of a request whose callbacks nothing will ever run.

The debug toolbar panel reads untouched namespaces through one, and a
namespace's fallbacks read the client's old session through one: whatever
a session library queues on it (saving, setting its cookie) never happens.
"""

import io

from pyramid.request import Request, apply_request_extensions


def detached_request(request: Request) -> Request:
    """A copy of ``request`` whose callbacks nothing will ever run."""
    environ = dict(request.environ)
    environ["wsgi.input"] = io.BytesIO(b"")
    environ["CONTENT_LENGTH"] = "0"
    environ["REQUEST_METHOD"] = "GET"
    copy = Request(environ)
    copy.registry = request.registry
    apply_request_extensions(copy)
    return copy
