"""Revocations in an SQL database through SQLAlchemy: PostgreSQL or SQLite."""

import threading
from typing import Any

from zope.interface import implementer

from ..interfaces import IRevocationStore
from ..lifecycle.lifetime import now
from ..masking import hide_password
from ..stores.breaker import DEFAULT_INTERVAL, CircuitBreaker
from ..stores.sql import INTERVAL_PARAMETER, as_interval, guard_engine

#: The table's name unless another is given.
DEFAULT_TABLE = "session_multi_revocations"


@implementer(IRevocationStore)
class SQLRevocationStore:
    """Revocations in one table, a row per revoked user, through SQLAlchemy.

    ``engine`` is an SQLAlchemy engine or URL (PostgreSQL and SQLite are
    tested; another database works where SQLAlchemy does, without the
    one-statement upsert).  The table is created on first use if missing:
    ``userid`` (the primary key), ``revoked_at`` and ``expires_at`` (seconds
    since the epoch; no expiry when null).  A lookup is one ``SELECT``; a
    revocation deletes the expired rows and upserts the user's in one
    transaction, so the table holds no more than the users revoked within
    the longest absolute timeout.  An engine made from a URL checks its
    connections before use, so the store recovers when the database returns,
    and sits behind the circuit breaker of its URL
    (:func:`~pyramid_session_multi.stores.sql.guard_engine`, interval
    ``breaker_interval`` seconds, ``None`` for none): while the database is
    down or hung, a lookup fails at once rather than after a timeout.  An
    engine given is used as it is (it may serve the application too).  A
    URL's ``breaker_interval`` query parameter (seconds, or ``off``) sets the
    interval, as for Beaker's ``ext:database``; a wrong one raises
    :class:`ValueError`.
    """

    def __init__(
        self,
        engine: Any,
        table_name: str = DEFAULT_TABLE,
        breaker_interval: float | None = DEFAULT_INTERVAL,
    ) -> None:
        import sqlalchemy as sa

        #: the URL given, kept to take its password out of errors
        self._url = engine if isinstance(engine, str) else None
        #: the circuit breaker of the engine made from a URL (``None``: none)
        self.breaker: CircuitBreaker | None = None
        if isinstance(engine, str):
            url = sa.make_url(engine)
            if INTERVAL_PARAMETER in url.query:
                given = url.query[INTERVAL_PARAMETER]
                breaker_interval = as_interval(given[-1] if isinstance(given, tuple) else given)
                url = url.difference_update_query([INTERVAL_PARAMETER])
            engine = sa.create_engine(url, pool_pre_ping=True)
            if breaker_interval is not None:
                self.breaker = guard_engine(engine, breaker_interval)
        self.engine = engine
        self.table = sa.Table(
            table_name,
            sa.MetaData(),
            sa.Column("userid", sa.String(255), primary_key=True),
            sa.Column("revoked_at", sa.Double(), nullable=False),
            sa.Column("expires_at", sa.Double(), nullable=True),
        )
        self._created = False
        self._lock = threading.Lock()

    def describe(self) -> str:
        url = self.engine.url
        # a password holding "@" would be split into the host
        where = (url.host or "").rpartition("@")[2] or url.database or "?"
        if url.host and url.port:
            where = f"{where}:{url.port}"
        return f"{url.get_backend_name()} at {where}, table {self.table.name}"

    @property
    def breakers(self) -> list[CircuitBreaker]:
        """Its circuit breaker, if it has one."""
        return [] if self.breaker is None else [self.breaker]

    def hide_password(self, message: str) -> str:
        """``message`` (a driver's error) without the database's password."""
        url = self._url or self.engine.url.render_as_string(hide_password=False)
        return hide_password(message, url)

    def _create_table(self) -> None:
        if self._created:
            return
        with self._lock:
            if self._created:
                return
            try:
                self.table.create(self.engine, checkfirst=True)
            except Exception:
                # another process created it between the check and the create
                import sqlalchemy as sa

                if not sa.inspect(self.engine).has_table(self.table.name):
                    raise
            self._created = True

    def revoked_at(self, userid: str) -> float | None:
        import sqlalchemy as sa

        self._create_table()
        table = self.table
        query = sa.select(table.c.revoked_at).where(
            table.c.userid == userid,
            sa.or_(table.c.expires_at.is_(None), table.c.expires_at > now()),
        )
        with self.engine.connect() as connection:
            value = connection.execute(query).scalar()
        return None if value is None else float(value)

    def revoke(self, userid: str, at: float, ttl: int | None) -> None:
        import sqlalchemy as sa

        self._create_table()
        table = self.table
        current = now()
        expires = None if ttl is None else current + ttl
        with self.engine.begin() as connection:
            connection.execute(
                sa.delete(table).where(
                    table.c.expires_at.is_not(None), table.c.expires_at <= current
                )
            )
            dialect = connection.dialect.name
            if dialect in ("postgresql", "sqlite"):
                from sqlalchemy.dialects import postgresql, sqlite

                dialect_module: Any = postgresql if dialect == "postgresql" else sqlite
                statement = dialect_module.insert(table).values(
                    userid=userid, revoked_at=at, expires_at=expires
                )
                later = sa.func.greatest if dialect == "postgresql" else sa.func.max
                connection.execute(
                    statement.on_conflict_do_update(
                        index_elements=[table.c.userid],
                        set_={
                            "revoked_at": later(table.c.revoked_at, statement.excluded.revoked_at),
                            "expires_at": statement.excluded.expires_at,
                        },
                    )
                )
                return
            previous = connection.execute(
                sa.select(table.c.revoked_at).where(table.c.userid == userid).with_for_update()
            ).scalar()
            if previous is None:
                connection.execute(
                    sa.insert(table).values(userid=userid, revoked_at=at, expires_at=expires)
                )
            else:
                connection.execute(
                    sa.update(table)
                    .where(table.c.userid == userid)
                    .values(revoked_at=max(at, float(previous)), expires_at=expires)
                )

    def sweep(self, at: float, ttl: int, dry_run: bool = False) -> int:
        """Delete the records expired at ``at``; returns how many.

        A record an earlier version wrote without an expiry is stale once
        ``ttl`` seconds (the longest a session can live unused, see
        ``record_ttl``) have passed since its revocation.
        """
        import sqlalchemy as sa

        self._create_table()
        table = self.table
        stale = sa.or_(
            sa.and_(table.c.expires_at.is_not(None), table.c.expires_at <= at),
            sa.and_(table.c.expires_at.is_(None), table.c.revoked_at + ttl <= at),
        )
        with self.engine.begin() as connection:
            if dry_run:
                count = sa.select(sa.func.count()).select_from(table).where(stale)
                return int(connection.execute(count).scalar_one())
            return int(connection.execute(sa.delete(table).where(stale)).rowcount)

    def __bool__(self) -> bool:
        """A store is true without asking the database (which ``len()`` does):
        ``if store:`` must not fail, nor wait, while the database is down."""
        return True

    def __len__(self) -> int:
        """How many rows the table holds (expired ones included until the next revoke)."""
        import sqlalchemy as sa

        self._create_table()
        with self.engine.connect() as connection:
            return int(
                connection.execute(sa.select(sa.func.count()).select_from(self.table)).scalar_one()
            )
