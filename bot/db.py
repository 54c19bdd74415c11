"""Engine and session factory: one session per inbound message, per job, per request."""
from __future__ import annotations

from contextlib import contextmanager
from functools import lru_cache
import re
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker


class Database:
    """Holds the engine and hands out sessions."""

    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self):
        """A session committed on success and rolled back on error."""
        with self.sessionmaker() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def dispose(self) -> None:
        """Close pooled connections (tests, forks)."""
        self.engine.dispose()


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets WAL, a busy timeout and its folder created."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        # A database that is away must fail fast (the webhook spools the message), not hang.
        connect_args = {"connect_timeout": 2} if parsed.get_driver_name() == "psycopg2" else {}
        engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20,
                               pool_timeout=5, connect_args=connect_args, hide_parameters=True)
        event.listen(engine, "handle_error", _hide_row_values)
        return engine
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    # hide_parameters: an SQL error in a log never carries a name, a phone or an address.
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False},
                           hide_parameters=True)
    event.listen(engine, "connect", _sqlite_pragmas)
    event.listen(engine, "begin", _sqlite_begin_immediate)
    return engine


# PostgreSQL's own error text quotes the row (`DETAIL: Failing row contains (张三, …)`, `Key
# (phone)=(138…)`): hide_parameters does not reach it, so it is cut before anything logs it.
_ROW_VALUES = re.compile(r"(DETAIL:\s*).*", re.S)


def _hide_row_values(context) -> None:
    for error in (context.original_exception, context.sqlalchemy_exception):
        if error is not None and error.args and isinstance(error.args[0], str):
            error.args = (_ROW_VALUES.sub(r"\1[row values hidden]", error.args[0]),
                          *error.args[1:])


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    # Let SQLAlchemy own transactions so BEGIN IMMEDIATE below is what really starts them.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _sqlite_begin_immediate(conn) -> None:
    # Writers queue on the lock at BEGIN instead of failing on upgrade (SQLITE_BUSY deadlock).
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def session_of(db: Database) -> Session:
    """A bare session for callers that manage the transaction themselves."""
    return db.sessionmaker()


def insert_missing(session: Session, model, values: dict, key: str, returning=None):
    """Insert a row unless one with the same unique `key` exists (a concurrent writer's row
    wins): one INSERT … ON CONFLICT DO NOTHING instead of a savepoint, an INSERT and its
    release, and no aborted transaction on PostgreSQL when the row is there already. With
    `returning` (a column), that column of the new row, or None when it existed."""
    dialect = session.get_bind().dialect
    statement = _insert_missing(dialect.name, model, key, returning)
    # On the session's connection, in its transaction, as a Core statement: the ORM's
    # bulk-insert handling of `session.execute(insert(Model))` cost ~0.35 ms of CPU a call.
    connection = session.connection()
    compiled = _compiled(dialect, statement, tuple(values))
    if compiled is None:
        result = connection.execute(statement, values)
    else:
        sql, processors = compiled
        result = connection.exec_driver_sql(sql, {
            k: processors[k](v) if k in processors else v for k, v in values.items()})
    return None if returning is None else result.scalar_one_or_none()


@lru_cache(maxsize=64)
def _compiled(dialect, statement, keys: tuple):
    """(SQL, bind processors) of the statement compiled once for these value keys, for the
    driver to run with the values processed as SQLAlchemy would; None where SQLAlchemy must
    do more (a Python-side default of a column not given, positional parameters).
    SQLAlchemy caches no compiled ON CONFLICT insert: compiling it cost ~0.09 ms of CPU for
    every message."""
    compiled = statement.compile(dialect=dialect, column_keys=list(keys))
    if compiled.insert_prefetch or compiled.positiontup is not None or \
            set(compiled.binds) != set(keys):
        return None
    processors = compiled._bind_processors  # noqa: SLF001 - what execute() would apply
    return compiled.string, {k: processors[k] for k in keys if k in processors}


@lru_cache(maxsize=None)
def _insert_missing(dialect: str, model, key: str, returning=None):
    """The statement, built once (SQLAlchemy does not cache the compiled form of a dialect's
    ON CONFLICT insert: compiling it takes ~0.1 ms, less than the two round trips it saves)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:  # pragma: no cover - the two supported databases
        raise NotImplementedError(dialect)
    statement = insert(model).on_conflict_do_nothing(index_elements=[key])
    return statement if returning is None else statement.returning(returning)
