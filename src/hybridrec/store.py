"""A durable key-value store on SQLite, shared by the embedding and explanation caches.

Writes are transactional (a batch is stored whole or not at all), so a run killed half-way keeps
every batch it finished; WAL mode and a busy timeout let several processes read and write at once.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

_MAX_PARAMS = 900  # below SQLite's default limit on host parameters per statement


class DurableStore:
    """Blobs keyed by (namespace, key). Inserting an existing key keeps the first value."""

    def __init__(self, path: str | Path, table: str, timeout: float = 60.0):
        if not table.isidentifier():
            raise ValueError(f"invalid table name {table!r}")
        self.path = Path(path).expanduser()
        self.table = table
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._timeout = timeout
        self._local = threading.local()
        with self._connection(write=True) as conn:
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {table} ("
                "namespace TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL, created REAL NOT NULL, "
                "PRIMARY KEY (namespace, key)) WITHOUT ROWID"
            )

    def _connection(self, write: bool = False) -> _Transaction:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=self._timeout, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return _Transaction(conn, "IMMEDIATE" if write else "DEFERRED")

    def get_many(self, namespace: str, keys: Sequence[str]) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        unique = list(dict.fromkeys(keys))
        with self._connection() as conn:
            for start in range(0, len(unique), _MAX_PARAMS):
                chunk = unique[start : start + _MAX_PARAMS]
                marks = ",".join("?" * len(chunk))
                rows = conn.execute(
                    f"SELECT key, value FROM {self.table} WHERE namespace = ? AND key IN ({marks})",
                    (namespace, *chunk),
                )
                found.update(rows)
        return found

    def put_many(self, namespace: str, items: Iterable[tuple[str, bytes]]) -> None:
        """Store a batch in one transaction."""
        now = time.time()
        rows = [(namespace, key, value, now) for key, value in items]
        with self._connection(write=True) as conn:
            conn.executemany(
                f"INSERT OR IGNORE INTO {self.table} (namespace, key, value, created) VALUES (?, ?, ?, ?)",
                rows,
            )

    def count(self, namespace: str | None = None) -> int:
        with self._connection() as conn:
            if namespace is None:
                return conn.execute(f"SELECT COUNT(*) FROM {self.table}").fetchone()[0]
            return conn.execute(
                f"SELECT COUNT(*) FROM {self.table} WHERE namespace = ?", (namespace,)
            ).fetchone()[0]

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


class _Transaction:
    """``with`` block: BEGIN … COMMIT, or ROLLBACK on error (IMMEDIATE takes the write lock up front)."""

    def __init__(self, conn: sqlite3.Connection, mode: str):
        self.conn = conn
        self.mode = mode

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute(f"BEGIN {self.mode}")
        return self.conn

    def __exit__(self, exc_type, exc, tb) -> None:
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")
