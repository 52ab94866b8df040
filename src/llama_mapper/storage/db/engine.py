"""Build the async SQLAlchemy engine from settings.

The embedded default is a SQLite file in ``state_dir`` so a single process needs no
database server; ``database.url`` switches to PostgreSQL (or any async URL). The password
is never written in config: ``database.password_secret`` names a secret that is injected
into the URL at start-up, so rotating it in the secret store needs no config change.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

if TYPE_CHECKING:
    from llama_mapper.config.settings import Settings
    from llama_mapper.secrets import SecretProvider

#: File name of the embedded SQLite database inside ``state_dir``.
SQLITE_FILE = "mapper.db"
#: Execution option: on SQLite, open the transaction with ``BEGIN IMMEDIATE`` (take the
#: write lock up front). Migrations use it so that concurrent start-ups queue up instead of
#: both finding the schema missing and both creating it.
SQLITE_IMMEDIATE = "llama_mapper_sqlite_immediate"


def database_url(settings: Settings, secrets: SecretProvider | None) -> str:
    """The async database URL to connect to, password included when one is configured.

    The returned string may hold a password: log it only through :func:`safe_url`.
    Raises ``ValueError`` when ``database.password_secret`` is set but no provider is
    given, and lets the provider's ``SecretError`` through when the secret is missing.
    """
    configured = settings.database.url
    if configured is None:
        state_dir = settings.state_dir.expanduser().resolve()
        state_dir.mkdir(parents=True, exist_ok=True)
        url: URL = URL.create("sqlite+aiosqlite", database=str(state_dir / SQLITE_FILE))
    else:
        url = make_url(configured)
    secret_name = settings.database.password_secret
    if secret_name:
        if secrets is None:
            raise ValueError(
                f"database.password_secret is {secret_name!r} but no secret provider is available"
            )
        url = url.set(password=secrets.get(secret_name).value)
    return url.render_as_string(hide_password=False)


def safe_url(url: str | URL) -> str:
    """``url`` with any password masked: the only form fit for logs and messages."""
    return make_url(url).render_as_string(hide_password=True)


def create_engine(
    url: str | URL, *, password: Callable[[], str] | None = None, **kwargs: Any
) -> AsyncEngine:
    """An ``AsyncEngine`` tuned for the backend ``url`` points at.

    SQLite gets WAL (readers do not block the writer, which matters once the API and the CLI
    share the file), enforced foreign keys (SQLite ignores them by default) and real
    transactions: the driver's own implicit ``BEGIN`` is switched off and SQLAlchemy emits
    one for every transaction, so DDL is transactional (a failed migration rolls back whole)
    and :data:`SQLITE_IMMEDIATE` can ask for the write lock. PostgreSQL gets
    ``pool_pre_ping`` so connections dropped by a failover or an idle timeout are replaced
    instead of failing the next request. ``kwargs`` go to ``create_async_engine`` (tests
    pass ``connect_args``, e.g. a ``search_path``).
    """
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        kwargs.setdefault("pool_pre_ping", True)
    engine = create_async_engine(parsed, **kwargs)
    if password is not None:
        # Asked for on every NEW connection, so a rotated database password (the provider
        # re-reads it after its cache period) is used without a restart; pooled connections
        # keep working until they are recycled.
        def current_password(
            dialect: Any, record: Any, cargs: Any, cparams: dict[str, Any]
        ) -> None:
            cparams["password"] = password()

        event.listen(engine.sync_engine, "do_connect", current_password)
    if backend == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_connect)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
    return engine


def _sqlite_connect(dbapi_connection: Any, connection_record: Any) -> None:
    dbapi_connection.isolation_level = None  # the "begin" listener below starts transactions
    cursor = dbapi_connection.cursor()
    try:
        # Wait for a concurrent writer instead of failing at once with "database is locked".
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.execute("PRAGMA foreign_keys=ON")
        # With WAL, NORMAL loses nothing when the process dies (kill -9); only a power cut
        # can take the last commits. FULL would fsync on every commit of the event stream.
        cursor.execute("PRAGMA synchronous=NORMAL")
        _enable_wal(cursor)
    finally:
        cursor.close()


def _enable_wal(cursor: Any) -> None:
    """Switch the file to WAL (a persistent, once-per-file change).

    The switch needs an exclusive lock and SQLite does not apply ``busy_timeout`` to it, so
    processes opening a brand-new file together (workers starting up) retry briefly.
    """
    cursor.execute("PRAGMA journal_mode")
    if str(cursor.fetchone()[0]).lower() in ("wal", "memory"):
        return
    for attempt in range(100):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except Exception as exc:
            if "locked" not in str(exc) or attempt == 99:
                raise
            time.sleep(0.05)


def _sqlite_begin(connection: Connection) -> None:
    immediate = connection.get_execution_options().get(SQLITE_IMMEDIATE, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
