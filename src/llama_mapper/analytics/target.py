"""Where shipped events go, and how a session with it is opened (sync; call from a thread).

Two backends speak the same SQL through clickhouse-connect:

* **embedded** (default): the real ClickHouse engine in-process (chDB) on a folder under
  ``state_dir/analytics``. chDB lets *one process* open a folder, and one process open *one*
  folder at a time. So every use of the folder (a ship pass of the server, a CLI query) is a
  short session that takes a file lock next to it, plus a process-wide lock, and closes the
  engine at the end. The server ships in one pass and lets go; a CLI command run meanwhile
  waits for the lock (``analytics.lock_timeout_seconds``) instead of failing, and a second
  server worker simply finds the lock taken and leaves the shipping to the first.
* **server**: ``analytics.url`` (``http(s)://user@host:8123/database``) with the password
  from the SecretProvider; any number of processes may connect.

Messages of :class:`AnalyticsUnavailable` carry the driver's first line only (no SQL
parameters, never event content), so they may be logged and shown.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote, urlsplit

from llama_mapper.analytics import ddl
from llama_mapper.analytics.rows import COLUMNS

#: Only one embedded engine session per process (chDB holds one folder per process).
_EMBEDDED = threading.Lock()
EMBEDDED_FOLDER = "chdb"
CONNECT_TIMEOUT = 3
_OS_REASON = re.compile(r"\[Errno -?\d+\] ([^'\")]+)|(\w+ timed out)")
RECEIVE_TIMEOUT = 60


class AnalyticsUnavailable(Exception):
    """ClickHouse (or the embedded engine's folder) cannot be used right now."""


class EngineBusy(AnalyticsUnavailable):
    """Another process (or session) holds the embedded engine's folder."""


@dataclass(frozen=True)
class Target:
    """One analytics destination; build it with :func:`target_from_settings`."""

    database: str
    #: The embedded engine's folder, or ``None`` for a server.
    folder: Path | None = None
    url: str | None = None
    password: Callable[[], str] | None = None

    @property
    def backend(self) -> str:
        return "chdb" if self.folder is not None else "clickhouse"

    @property
    def sink(self) -> str:
        """Stable name of the destination for the cursor table: no user, no password."""
        if self.folder is not None:
            return f"chdb:{self.folder}/{self.database}"
        parts = urlsplit(self.url or "")
        port = parts.port or (8443 if parts.scheme == "https" else 8123)
        return f"{parts.scheme}://{parts.hostname}:{port}/{self.database}"

    @property
    def lock_file(self) -> Path | None:
        return None if self.folder is None else self.folder.with_name(self.folder.name + ".lock")


def target_from_settings(
    analytics: Any, state_dir: Path, password: Callable[[], str] | None = None
) -> Target:
    """The destination ``analytics`` settings describe (see the module docstring).

    ``password`` is asked for on every server session, so a rotated secret is picked up.
    Raises ``ValueError`` for a URL that is not ``http(s)://[user@]host[:port][/database]``.
    """
    if analytics.url is None:
        folder = state_dir.expanduser().resolve() / "analytics" / EMBEDDED_FOLDER
        return Target(database=ddl.identifier(analytics.database), folder=folder)
    parts = urlsplit(analytics.url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("analytics.url must look like http(s)://user@host:8123/database")
    if parts.password:
        raise ValueError("analytics.url must not contain a password; set analytics.password_secret")
    database = unquote(parts.path.strip("/")) or analytics.database
    return Target(database=ddl.identifier(database), url=analytics.url, password=password)


class Session:
    """An open client on the target; every method is blocking."""

    def __init__(self, client: Any, database: str) -> None:
        self.client = client
        self.database = database

    def ensure_schema(self, retention_days: int) -> None:
        """Create the database and table if missing; align the TTL with the setting.

        Raises :class:`AnalyticsUnavailable` when ClickHouse refuses (e.g. a user without
        the DDL grants), so every caller reports it as one line.
        """
        try:
            self.client.command(ddl.create_database(self.database))
            self.client.command(ddl.create_events(self.database, retention_days))
            sql, parameters = ddl.table_ttl_query(self.database)
            rows = self.client.query(sql, parameters=parameters).result_rows
            if rows and ddl.ttl_clause(retention_days) not in str(rows[0][0]):
                self.client.command(ddl.modify_ttl(self.database, retention_days))
        except Exception as exc:
            raise AnalyticsUnavailable(f"schema of {self.database}: {describe(exc)}") from None

    def insert(self, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self.client.insert(f"{self.database}.{ddl.TABLE}", rows, column_names=list(COLUMNS))

    def delete_range(self, tenant_id: str, first_seq: int, last_seq: int) -> None:
        """Delete a tenant's rows in a seq range (what a retention tombstone covers)."""
        self.client.command(
            ddl.delete_range(self.database),
            parameters={"t": tenant_id, "first": first_seq, "last": last_seq},
        )

    def query(
        self, sql: str, *, parameters: Mapping[str, Any] | None = None, settings: Any = None
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        result = self.client.query(sql, parameters=parameters, settings=settings)
        return list(result.column_names), [tuple(row) for row in result.result_rows]

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()


@contextlib.contextmanager
def open_session(target: Target, *, wait: float = 0.0) -> Iterator[Session]:
    """A session on ``target``, closed (and the embedded folder released) on exit.

    ``wait`` is how long to wait for the embedded folder (0: try once); a holder that does
    not let go in time raises :class:`EngineBusy`. Any failure to connect raises
    :class:`AnalyticsUnavailable`.
    """
    if target.folder is None:
        session = Session(_server_client(target), target.database)
        try:
            yield session
        finally:
            session.close()
        return
    with _folder_lock(target, wait):
        session = Session(_embedded_client(target.folder), target.database)
        try:
            yield session
        finally:
            session.close()


def describe(exc: BaseException) -> str:
    """One line for logs and the terminal: ClickHouse's own reason, its noise cut.

    ``Code: 62. DB::Exception: Code: 62. DB::Exception: Syntax error ... (version 26.9)``
    becomes ``Syntax error ...``; the HTTP driver's preamble line is dropped the same way.
    """
    text = str(exc).strip()
    if "Max retries exceeded" in text or "Failed to establish" in text:
        # urllib3's "HTTPConnectionPool(...): Max retries exceeded ... (Caused by ...)":
        # the OS reason ("Connection refused") or the timeout is what matters.
        reason = _OS_REASON.search(text)
        return (reason.group(1) or reason.group(2)).strip() if reason else "cannot connect"
    marker = "DB::Exception: "
    if marker in text:
        text = text.rsplit(marker, 1)[1]
    lines = text.splitlines()
    line = lines[0].split(" (version ")[0].strip() if lines else ""
    return line[:300] or type(exc).__name__


@contextlib.contextmanager
def _folder_lock(target: Target, wait: float) -> Iterator[None]:
    lock_file = target.lock_file
    assert lock_file is not None
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait
    acquired = _EMBEDDED.acquire(timeout=wait) if wait > 0 else _EMBEDDED.acquire(blocking=False)
    if not acquired:
        raise EngineBusy("the embedded analytics engine is in use by this process")
    try:
        with lock_file.open("a+") as handle:
            _flock(handle, lock_file, deadline)
            try:
                handle.seek(0)
                handle.truncate()
                handle.write(str(os.getpid()))
                handle.flush()
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
    finally:
        _EMBEDDED.release()


def _flock(handle: IO[str], lock_file: Path, deadline: float) -> None:
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                holder = lock_file.read_text().strip() or "another process"
                raise EngineBusy(
                    f"the embedded analytics engine ({lock_file.parent}) is in use by "
                    f"process {holder}; try again, or set analytics.url to a ClickHouse server"
                ) from None
            time.sleep(0.05)


def _embedded_client(folder: Path) -> Any:
    try:
        import clickhouse_connect
    except ImportError as exc:  # pragma: no cover - a core dependency
        raise AnalyticsUnavailable("clickhouse-connect is not installed") from exc
    try:
        import chdb  # noqa: F401
    except ImportError:
        raise AnalyticsUnavailable(
            "the embedded analytics engine needs chDB: pip install 'llama-mapper[analytics]', "
            "or set analytics.url to a ClickHouse server"
        ) from None
    folder.mkdir(parents=True, exist_ok=True)
    try:
        return clickhouse_connect.get_client(dsn=f"chdb://{folder}")
    except Exception as exc:
        raise AnalyticsUnavailable(f"embedded ClickHouse: {describe(exc)}") from None


def _server_client(target: Target) -> Any:
    import clickhouse_connect

    parts = urlsplit(target.url or "")
    secure = parts.scheme == "https"
    try:
        return clickhouse_connect.get_client(
            host=parts.hostname,
            port=parts.port or (8443 if secure else 8123),
            username=unquote(parts.username) if parts.username else "default",
            password=target.password() if target.password is not None else "",
            secure=secure,
            connect_timeout=CONNECT_TIMEOUT,
            send_receive_timeout=RECEIVE_TIMEOUT,
            autogenerate_session_id=False,
        )
    except Exception as exc:
        raise AnalyticsUnavailable(f"ClickHouse at {target.sink}: {describe(exc)}") from None
