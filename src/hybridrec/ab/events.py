"""The experiment's event log: exposures and feedback in SQLite (WAL), written by one thread.

Requests hand their events to a queue and go on; the writer thread takes whatever has queued up,
writes it in one transaction and commits it (``synchronous=FULL``: on disk before the commit
returns), and only then resolves each request's future with its events' ids. A feedback request
answers 202 after its future resolves, so an acknowledged event is committed: a ``kill -9`` of the
server, or a restart, loses none of them. Batching many requests into one commit keeps the
throughput of a single fsync per batch. Exposures are queued without waiting for the commit (the
list is not delayed by the disk); a clean shutdown writes out what is queued before it returns.
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import sqlite3
import threading
import time
from concurrent.futures import Future, InvalidStateError
from dataclasses import astuple, dataclass, fields
from pathlib import Path

from hybridrec.errors import BusyError, HybridRecError

log = logging.getLogger(__name__)

FEEDBACK_EVENTS = ("click", "watch", "rating", "dismiss")
EXPOSURE = "exposure"

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    event_id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,                -- seconds since the epoch, when the server took it
    experiment TEXT NOT NULL,
    kind TEXT NOT NULL,              -- exposure, click, watch, rating, dismiss
    unit TEXT NOT NULL,              -- user:<id> or session:<id>: what was assigned
    variant TEXT,                    -- exposures: the variant that put the film there
    item_id INTEGER NOT NULL,
    rank INTEGER,                    -- exposures: the film's position, from 1
    value REAL,                      -- ratings: the stars given
    impression TEXT,                 -- exposures: one id per list shown
    interleaved INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS events_by_unit ON events (experiment, unit, item_id);
CREATE TABLE IF NOT EXISTS experiments (  -- each experiment's definition (variants, shares), as served
    name TEXT NOT NULL,
    definition TEXT NOT NULL,
    first_served REAL NOT NULL,
    PRIMARY KEY (name, definition)
);
"""


@dataclass(frozen=True)
class Event:
    experiment: str
    kind: str
    unit: str
    variant: str | None
    item_id: int
    rank: int | None = None
    value: float | None = None
    impression: str | None = None
    interleaved: bool = False


COLUMNS = ("ts", *(f.name for f in fields(Event)))
INSERT = f"INSERT INTO events ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"


class EventLogClosed(HybridRecError):
    """The log no longer takes events (the service is shutting down)."""


def connect(path: str | Path) -> sqlite3.Connection:
    """A connection in WAL mode whose commits are on disk when they return."""
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    return connection


class EventLog:
    """A queue in front of one writer thread; ``record`` waits for the commit, ``submit`` does not."""

    def __init__(
        self, path: str | Path, experiment: dict | None = None, max_batch: int = 512, max_queue: int = 100_000
    ):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._connection = connect(self.path)
        self._connection.executescript(SCHEMA)
        if experiment is not None:  # what the report checks the traffic split against
            self._connection.execute(
                "INSERT OR IGNORE INTO experiments VALUES (?, ?, ?)",
                (experiment["name"], json.dumps(experiment, sort_keys=True), time.time()),
            )
        self.max_batch = max_batch
        self._queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self._closed = False
        self._writer = threading.Thread(target=self._write_loop, name="event-log-writer", daemon=True)
        self._writer.start()

    def submit(self, events: list[Event]) -> Future:
        """Queue ``events``; the future resolves to their ids once they are committed."""
        future: Future = Future()
        if self._closed:
            raise EventLogClosed("the event log is closed: the service is shutting down")
        try:
            self._queue.put_nowait((time.time(), events, future))
        except queue.Full:
            raise BusyError("the event log is behind; try again shortly", retry_after_s=1) from None
        return future

    async def record(self, events: list[Event]) -> list[int]:
        """Queue ``events`` and wait until they are committed: their ids."""
        return await asyncio.wrap_future(self.submit(events))

    def close(self, timeout_s: float = 30.0) -> None:
        """Write what is queued, then stop the writer and close the file."""
        if self._closed:
            return
        self._closed = True
        self._queue.put((0.0, None, None))  # the writer stops after writing what is before it
        self._writer.join(timeout_s)
        if self._writer.is_alive():
            log.error("the event log's writer did not finish within %.0fs", timeout_s)
        else:
            self._connection.close()

    def _write_loop(self) -> None:
        stop = False
        while not stop:
            batch = [self._queue.get()]
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = any(events is None for _, events, _ in batch)
            work = [(ts, events, future) for ts, events, future in batch if events is not None]
            if work:
                self._write(work)

    def _write(self, work: list[tuple[float, list[Event], Future]]) -> None:
        try:
            cursor = self._connection.cursor()
            cursor.execute("BEGIN IMMEDIATE")
            ids = []
            for ts, events, _ in work:
                ids.append([cursor.execute(INSERT, (ts, *astuple(event))).lastrowid for event in events])
            cursor.execute("COMMIT")
        except Exception as err:  # the disk is full, the file is gone: every waiting request hears it
            log.error("the event log could not write %d requests' events: %s", len(work), err)
            if self._connection.in_transaction:
                self._connection.execute("ROLLBACK")
            failure = HybridRecError(f"the event log could not write: {err}")
            failure.retry_after_s = 1
            for _, _, future in work:
                _resolve(future, exception=failure)
            return
        for (_, _, future), event_ids in zip(work, ids, strict=True):
            _resolve(future, result=event_ids)


def _resolve(future: Future, result=None, exception: BaseException | None = None) -> None:
    """Resolve a request's future, unless it was cancelled (its client left; the events stay written)."""
    try:
        if exception is not None:
            future.set_exception(exception)
        else:
            future.set_result(result)
    except InvalidStateError:
        pass


def read_log(path: str | Path):
    """A log's events and experiments as two DataFrames (read-only; safe while a server writes)."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no event log at {path}")
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        events = pd.read_sql_query("SELECT * FROM events ORDER BY event_id", connection)
        experiments = pd.read_sql_query("SELECT * FROM experiments ORDER BY first_served", connection)
    finally:
        connection.close()
    return events, experiments
