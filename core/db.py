"""Database set-up: one SQLAlchemy metadata for every stage's tables, async engines for SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, DateTime, MetaData, Table, TypeDecorator, event
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from core.errors import ConfigError

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(TypeDecorator[Any]):
    """Timezone-aware datetimes stored as UTC on every backend (SQLite drops the zone otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC) if dialect.name != "sqlite" else value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONType = JSON().with_variant(JSON(none_as_null=True), "postgresql")


def async_url(url: str) -> str:
    """Map the user-facing URL to the async driver: sqlite:/// -> aiosqlite, postgresql:// -> asyncpg."""
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise ConfigError(f"ABUSE_DESK_DATABASE_URL {url!r} is not a database URL: {exc}") from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return str(parsed.set(drivername="sqlite+aiosqlite"))
    if backend == "postgresql":
        return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    raise ConfigError(f"unsupported database {backend!r}: use sqlite:/// or postgresql://")


def create_engine(url: str) -> AsyncEngine:
    """An async engine; SQLite gets its folder created, WAL mode and a busy timeout for concurrent writers."""
    full = async_url(url)
    parsed = make_url(full)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(full, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    # A pool that holds what a busy worker uses at once (8 decisions, the drain, events): a connection opened past
    # it is closed when returned, and opening one costs a TLS negotiation and a login.
    return create_async_engine(full, pool_pre_ping=True, pool_size=14, max_overflow=6)


def _insert(conn: AsyncConnection, table: Table) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table)
    raise ConfigError(f"unsupported database {dialect}")  # pragma: no cover - only the two supported backends


async def upsert(
    conn: AsyncConnection, table: Table, rows: list[dict[str, Any]], keys: list[str], *, update: bool = True
) -> None:
    """Insert rows; on a key conflict update the other columns (or leave the row when update=False)."""
    if not rows:
        return
    columns = tuple(c for c in rows[0] if c not in keys)
    shape = (conn.dialect.name, table, tuple(keys), columns, update)
    stmt = _UPSERTS.get(shape)
    if stmt is None:  # built once per shape: the statement's expression and cache key are memoised on it
        stmt = _insert(conn, table)
        if update and columns:
            excluded = stmt.excluded
            stmt = stmt.on_conflict_do_update(index_elements=keys, set_={c: getattr(excluded, c) for c in columns})
        else:
            stmt = stmt.on_conflict_do_nothing(index_elements=keys)
        _UPSERTS[shape] = stmt
    await conn.execute(stmt, rows)


_UPSERTS: dict[tuple[str, Table, tuple[str, ...], tuple[str, ...], bool], Any] = {}


async def insert_new(conn: AsyncConnection, table: Table, row: dict[str, Any], keys: list[str]) -> Any | None:
    """Insert a row unless one with the same keys exists: its primary key when inserted, else None."""
    stmt = _insert(conn, table).values(row).on_conflict_do_nothing(index_elements=keys)
    return await conn.scalar(stmt.returning(*table.primary_key.columns))
