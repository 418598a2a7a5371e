"""A redis-py client that keeps the name of each command it sends: what a
test compares of two ways of saving, where timings would only be noise."""

from typing import Any

import redis


class CountingRedis(redis.StrictRedis):
    """:class:`redis.StrictRedis`, with :attr:`commands`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: the names of the commands sent, in order (a script's own not among them)
        self.commands: list[str] = []

    def execute_command(self, *args: Any, **options: Any) -> Any:
        self.commands.append(str(args[0]).upper())
        return super().execute_command(*args, **options)

    def client_callable(self, request: Any = None, **redis_options: Any) -> "CountingRedis":
        """A ``redis_client_callable`` for pyramid_session_redis: this client."""
        return self
