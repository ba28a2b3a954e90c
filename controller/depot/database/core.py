"""Engine, sessions and the declarative base. SQLite is the embedded default; PostgreSQL is the
production database, where workers coordinate through row locks (SKIP LOCKED)."""

from __future__ import annotations

import datetime as dt
import logging
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, TypeVar

from sqlalchemy import JSON, DateTime, MetaData, create_engine, event
from sqlalchemy import exc as sa
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

log = logging.getLogger(__name__)
T = TypeVar("T")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None:
            if value.tzinfo is None:
                raise ValueError("naive datetime given; use UTC-aware datetimes")
            value = value.astimezone(dt.timezone.utc)
        return value

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dt.datetime: UTCDateTime, dict: JSON, list: JSON}


def ensure_sqlite_directory(url: str) -> None:
    """SQLite creates the database file but not its directory."""
    database = make_url(url).database if url.startswith("sqlite") else None
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)


# Connections a process may hold at once: the API's thread pool (40 threads for sync views), plus
# the worker's tick, heartbeat, one thread per running batch and its event writes. The pool must
# not be the bottleneck: with fewer connections than threads, requests queue for a connection
# (pool_timeout) behind requests that hold one while they wait for something slow (ansible-inventory).
POOL_SIZE, MAX_OVERFLOW = 10, 40
# Seconds to wait for a PostgreSQL connection: an unreachable server fails a request, not hangs it.
CONNECT_TIMEOUT = 10
# Seconds a SQLite statement waits for the write lock (busy timeout) before "database is locked".
SQLITE_BUSY_SECONDS = 30


def is_disconnect(exc: BaseException) -> bool:
    """Whether ``exc`` says the database is unreachable or restarting (or, on SQLite, locked too long):
    a condition to retry later, not a fault of the request or the data."""
    if isinstance(exc, sa.DBAPIError):
        return bool(exc.connection_invalidated) or isinstance(exc, (sa.OperationalError, sa.InterfaceError))
    return isinstance(exc, sa.TimeoutError)   # no pooled connection came free in time


def first_line(exc: BaseException) -> str:
    """An error in one line, for a log message."""
    text = str(exc)
    return text.splitlines()[0] if text else type(exc).__name__


def log_failure(logger: logging.Logger, what: str, exc: BaseException) -> None:
    """A background loop's failed pass: one line while the database is unreachable (it will be
    tried again), the whole traceback for anything else."""
    if is_disconnect(exc):
        logger.warning("%s failed: the database is unreachable (%s)", what, first_line(exc))
    else:
        logger.error("%s failed", what, exc_info=exc)


def retry_while_unreachable(fn: Callable[[], T], wait: float, what: str, sleep=time.sleep, clock=time.monotonic) -> T:
    """``fn()``, retried with backoff for up to ``wait`` seconds while the database is unreachable
    (:func:`is_disconnect`); any other error, or the last one after ``wait``, is raised. For work
    that must not be lost to a database restart (a run's end); ``fn`` must be safe to repeat."""
    deadline, delay = clock() + wait, 0.5
    while True:
        try:
            return fn()
        except Exception as e:
            if not is_disconnect(e) or clock() + delay > deadline:
                raise
            log.warning("%s failed (the database is unreachable), retrying in %.1f s: %s", what, delay, first_line(e))
            sleep(delay)
            delay = min(delay * 2, 5.0)


def make_engine(url: str) -> Engine:
    ensure_sqlite_directory(url)
    if url.startswith("sqlite"):
        on_disk = make_url(url).database not in (None, "", ":memory:")   # in memory: one connection per thread
        pool = dict(pool_size=POOL_SIZE, max_overflow=MAX_OVERFLOW) if on_disk else {}
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_SECONDS}, **pool)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    # pre-ping: a connection the server dropped (restart, failover) is replaced on checkout, so
    # the first request after a restart succeeds instead of failing on a dead connection.
    connect_args = {"connect_timeout": CONNECT_TIMEOUT} if url.startswith("postgresql") else {}
    return create_engine(url, pool_pre_ping=True, pool_size=POOL_SIZE, max_overflow=MAX_OVERFLOW,
                         connect_args=connect_args)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work commits at the end of the block, or rolls back on any error."""
    with factory() as session, session.begin():
        yield session
