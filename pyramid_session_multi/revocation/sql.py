"""Revocations in an SQL database through SQLAlchemy: PostgreSQL or SQLite."""

import threading
from typing import Any

from zope.interface import implementer

from ..interfaces import IDeviceIndex, IRevocationStore
from ..lifecycle.devices import MAX_USER_AGENT, Device, device_id, live
from ..lifecycle.lifetime import now
from ..masking import hide_password
from ..stores.breaker import DEFAULT_INTERVAL, CircuitBreaker
from ..stores.sql import (
    DEFAULT_TIMEOUT,
    INTERVAL_PARAMETER,
    TIMEOUT_PARAMETER,
    as_interval,
    as_timeout,
    guard_engine,
    query_value,
)

#: The table's name unless another is given.
DEFAULT_TABLE = "session_multi_revocations"

#: The device index's tables unless others are given: the live entries, and
#: the ended logins.
DEFAULT_DEVICE_TABLE = "session_multi_devices"
DEFAULT_ENDED_TABLE = "session_multi_device_ends"


@implementer(IRevocationStore, IDeviceIndex)
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
    interval, and its ``statement_timeout_client`` (seconds, or ``off``) the
    seconds a statement may wait for the database's answer before its
    connection is cut (a hung database), as for Beaker's ``ext:database``; a
    wrong one raises :class:`ValueError`.

    The device index takes two more tables: ``device_table`` (an entry per
    live device, indexed by user) and ``ended_table`` (the ended logins);
    a write of a user's entry deletes that user's expired ones, and
    ``psessions sweep`` every expired row.
    """

    def __init__(
        self,
        engine: Any,
        table_name: str = DEFAULT_TABLE,
        breaker_interval: float | None = DEFAULT_INTERVAL,
        device_table: str = DEFAULT_DEVICE_TABLE,
        ended_table: str = DEFAULT_ENDED_TABLE,
    ) -> None:
        import sqlalchemy as sa

        #: the URL given, kept to take its password out of errors
        self._url = engine if isinstance(engine, str) else None
        #: the circuit breaker of the engine made from a URL (``None``: none)
        self.breaker: CircuitBreaker | None = None
        if isinstance(engine, str):
            url = sa.make_url(engine)
            if INTERVAL_PARAMETER in url.query:
                breaker_interval = as_interval(query_value(url, INTERVAL_PARAMETER, None))
            timeout = as_timeout(query_value(url, TIMEOUT_PARAMETER, DEFAULT_TIMEOUT))
            url = url.difference_update_query([INTERVAL_PARAMETER, TIMEOUT_PARAMETER])
            engine = sa.create_engine(url, pool_pre_ping=True)
            if breaker_interval is not None:
                self.breaker = guard_engine(engine, breaker_interval, timeout=timeout)
        self.engine = engine
        metadata = sa.MetaData()
        self.table = sa.Table(
            table_name,
            metadata,
            sa.Column("userid", sa.String(255), primary_key=True),
            sa.Column("revoked_at", sa.Double(), nullable=False),
            sa.Column("expires_at", sa.Double(), nullable=True),
        )
        self.device_table = sa.Table(
            device_table,
            metadata,
            sa.Column("device_id", sa.String(64), primary_key=True),
            sa.Column("userid", sa.String(255), nullable=False, index=True),
            sa.Column("login", sa.Double(), nullable=False),
            sa.Column("user_agent", sa.String(MAX_USER_AGENT), nullable=False),
            sa.Column("created", sa.Double(), nullable=False),
            sa.Column("last_seen", sa.Double(), nullable=False),
            sa.Column("namespaces", sa.Text(), nullable=False),
            sa.Column("expires_at", sa.Double(), nullable=False, index=True),
        )
        self.ended_table = sa.Table(
            ended_table,
            metadata,
            sa.Column("userid", sa.String(255), primary_key=True),
            sa.Column("login", sa.Double(), primary_key=True),
            sa.Column("ended_at", sa.Double(), nullable=False, index=True),
            sa.Column("expires_at", sa.Double(), nullable=False, index=True),
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
            tables = (self.table, self.device_table, self.ended_table)
            try:
                self.table.metadata.create_all(self.engine, tables=tables, checkfirst=True)
            except Exception:
                # another process created them between the check and the create
                import sqlalchemy as sa

                inspector = sa.inspect(self.engine)
                if not all(inspector.has_table(table.name) for table in tables):
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
            devices = self.device_table
            connection.execute(
                sa.delete(devices).where(
                    devices.c.userid == userid,
                    sa.or_(devices.c.login < at, devices.c.expires_at <= current),
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

    def record_device(self, device: Device, replaced: Any = ()) -> None:
        import sqlalchemy as sa

        self._create_table()
        table = self.device_table
        current = now()
        gone = [device_id(userid, login) for userid, login in replaced]
        with self.engine.begin() as connection:
            expired = sa.and_(table.c.userid == device.userid, table.c.expires_at <= current)
            connection.execute(sa.delete(table).where(sa.or_(expired, table.c.device_id.in_(gone))))
            row = (
                connection.execute(
                    sa.select(table).where(table.c.device_id == device.id).with_for_update()
                )
                .mappings()
                .first()
            )
            if self._is_over(connection, device, current):
                # a request in flight when its login was ended writes no entry back
                return
            if row is not None:
                device = _device(row).merged(device)
                connection.execute(
                    sa.update(table).where(table.c.device_id == device.id).values(_row(device))
                )
            else:
                connection.execute(sa.insert(table).values(_row(device)))

    def _is_over(self, connection: Any, device: Device, current: float) -> bool:
        """Whether ``device``'s login is ended or revoked, read in the
        transaction that would write its entry (after its row is locked: an
        end that deleted it is seen)."""
        import sqlalchemy as sa

        table, ended = self.table, self.ended_table
        revoked = sa.select(sa.literal(1)).where(
            table.c.userid == device.userid,
            table.c.revoked_at > device.login,
            sa.or_(table.c.expires_at.is_(None), table.c.expires_at > current),
        )
        ends = sa.select(sa.literal(1)).where(
            ended.c.userid == device.userid,
            ended.c.login > device.login - 0.0005,
            ended.c.login < device.login + 0.0005,
            ended.c.expires_at > current,
        )
        return connection.execute(sa.union_all(revoked, ends)).first() is not None

    def devices(self, userid: str) -> list[Device]:
        import sqlalchemy as sa

        self._create_table()
        table = self.device_table
        current = now()
        query = sa.select(table).where(table.c.userid == userid, table.c.expires_at > current)
        with self.engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
        return live((_device(row) for row in rows), current)

    def find_device(self, device_id: str) -> Device | None:
        import sqlalchemy as sa

        self._create_table()
        table = self.device_table
        query = sa.select(table).where(table.c.device_id == device_id, table.c.expires_at > now())
        with self.engine.connect() as connection:
            row = connection.execute(query).mappings().first()
        return None if row is None else _device(row)

    def end_device(self, device_id: str, ttl: int) -> Device | None:
        import sqlalchemy as sa

        self._create_table()
        devices, ended = self.device_table, self.ended_table
        current = now()
        with self.engine.begin() as connection:
            row = (
                connection.execute(
                    sa.select(devices)
                    .where(devices.c.device_id == device_id, devices.c.expires_at > current)
                    .with_for_update()
                )
                .mappings()
                .first()
            )
            if row is None:
                return None
            device = _device(row)
            connection.execute(
                sa.delete(ended).where(
                    sa.or_(
                        ended.c.expires_at <= current,
                        sa.and_(ended.c.userid == device.userid, ended.c.login == device.login),
                    )
                )
            )
            connection.execute(
                sa.insert(ended).values(
                    userid=device.userid,
                    login=device.login,
                    ended_at=current,
                    expires_at=current + ttl,
                )
            )
            connection.execute(sa.delete(devices).where(devices.c.device_id == device_id))
        return device

    def forget_devices(self, userid: str, logins: Any) -> None:
        import sqlalchemy as sa

        ids = [device_id(userid, login) for login in logins]
        if not ids:
            return
        self._create_table()
        table = self.device_table
        with self.engine.begin() as connection:
            connection.execute(
                sa.delete(table).where(table.c.userid == userid, table.c.device_id.in_(ids))
            )

    def revocation_of(self, userid: str) -> tuple[float | None, frozenset[float]]:
        import sqlalchemy as sa

        self._create_table()
        table, ended = self.table, self.ended_table
        current = now()
        revoked = sa.select(table.c.revoked_at.label("at"), sa.literal(0).label("kind")).where(
            table.c.userid == userid,
            sa.or_(table.c.expires_at.is_(None), table.c.expires_at > current),
        )
        ends = sa.select(ended.c.login.label("at"), sa.literal(1).label("kind")).where(
            ended.c.userid == userid, ended.c.expires_at > current
        )
        with self.engine.connect() as connection:
            rows = connection.execute(sa.union_all(revoked, ends)).all()
        at = next((float(row.at) for row in rows if row.kind == 0), None)
        return at, frozenset(float(row.at) for row in rows if row.kind == 1)

    def changed_since(self, since: float) -> set[str]:
        """The users revoked, or whose device was ended, at ``since`` or later
        (by the clocks of the processes that wrote them): what a mirror
        polling this store drops."""
        import sqlalchemy as sa

        self._create_table()
        table, ended = self.table, self.ended_table
        query = sa.union(
            sa.select(table.c.userid).where(table.c.revoked_at >= since),
            sa.select(ended.c.userid).where(ended.c.ended_at >= since),
        )
        with self.engine.connect() as connection:
            return {str(row[0]) for row in connection.execute(query)}

    def sweep(self, at: float, ttl: int, dry_run: bool = False) -> int:
        """Delete the records, device entries and device ends expired at
        ``at``; returns how many.

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
        wheres = [
            (table, stale),
            (self.device_table, self.device_table.c.expires_at <= at),
            (self.ended_table, self.ended_table.c.expires_at <= at),
        ]
        changed = 0
        with self.engine.begin() as connection:
            for each, where in wheres:
                if dry_run:
                    count = sa.select(sa.func.count()).select_from(each).where(where)
                    changed += int(connection.execute(count).scalar_one())
                else:
                    changed += int(connection.execute(sa.delete(each).where(where)).rowcount)
        return changed

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


def _row(device: Device) -> dict[str, Any]:
    return {
        "device_id": device.id,
        "userid": device.userid,
        "login": device.login,
        "user_agent": device.user_agent,
        "created": device.created,
        "last_seen": device.last_seen,
        "namespaces": "\n".join(device.namespaces),
        "expires_at": device.expires,
    }


def _device(row: Any) -> Device:
    return Device(
        id=str(row["device_id"]),
        userid=str(row["userid"]),
        login=float(row["login"]),
        user_agent=str(row["user_agent"]),
        created=float(row["created"]),
        last_seen=float(row["last_seen"]),
        namespaces=tuple(name for name in str(row["namespaces"]).split("\n") if name),
        expires=float(row["expires_at"]),
    )
