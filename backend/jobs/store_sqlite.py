"""The embedded job store: one SQLite file in WAL mode, shared by the app, consumers and runners.

A connection per operation keeps it safe across threads and processes; compare-and-set is a single
`UPDATE ... WHERE state IN (...)` whose row count says whether it won.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from backend.errors import JobNotFound, QueueUnavailable
from backend.jobs import history
from backend.jobs.history import HistoryCursor, HistoryDelta
from backend.jobs.records import Artifact, HistoryPoint, JobRecord, encode_field, now
from backend.jobs.store import JobStore

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, module TEXT, config TEXT NOT NULL, state TEXT NOT NULL,
    submitted_at REAL, queued_at REAL, started_at REAL, finished_at REAL, heartbeat_at REAL,
    worker TEXT, runner_pid INTEGER, attempts INTEGER NOT NULL DEFAULT 0,
    progress TEXT, error TEXT, result TEXT, owner TEXT
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state);
CREATE INDEX IF NOT EXISTS jobs_submitted ON jobs (submitted_at);
CREATE TABLE IF NOT EXISTS history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT NOT NULL, step INTEGER, time REAL, metrics TEXT,
    count INTEGER NOT NULL DEFAULT 1, counts TEXT
);
CREATE TABLE IF NOT EXISTS history_versions (job_id TEXT PRIMARY KEY, version INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS history_job ON history (job_id, seq);
CREATE TABLE IF NOT EXISTS logs (seq INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT NOT NULL, line TEXT);
CREATE INDEX IF NOT EXISTS logs_job ON logs (job_id, seq);
CREATE TABLE IF NOT EXISTS artifacts (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT NOT NULL, kind TEXT, value TEXT, label TEXT, path TEXT
);
CREATE INDEX IF NOT EXISTS artifacts_job ON artifacts (job_id, seq);
CREATE TABLE IF NOT EXISTS workers (id TEXT PRIMARY KEY, info TEXT NOT NULL, beat_at REAL NOT NULL);
"""

_initialised: set[Path] = set()


class SqliteJobStore(JobStore):
    def __init__(self, path: Path, timeout_s: float = 30.0):
        self.path = Path(path)
        self.timeout_s = timeout_s
        if self.path not in _initialised or not self.path.exists():
            with self._connect() as db:
                db.execute("PRAGMA journal_mode=WAL")
                db.executescript(_SCHEMA)
                _migrate(db)
            _initialised.add(self.path)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=self.timeout_s, isolation_level=None)
        except (OSError, sqlite3.Error) as err:
            raise QueueUnavailable(
                f"The job queue is unavailable: cannot open the job store {self.path} ({err}). "
                "Check that the data directory (FOOLING_LAB_DATA) exists and is writable."
            ) from err
        try:
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA synchronous=NORMAL")
            yield db
        except sqlite3.OperationalError as err:
            raise QueueUnavailable(
                f"The job queue is unavailable: the job store {self.path} failed ({err}). "
                "If it says 'locked', another process holds it too long; retry."
            ) from err
        finally:
            db.close()

    def create(self, record: JobRecord) -> None:
        fields = record.to_fields()
        names = ", ".join(fields)
        marks = ", ".join("?" for _ in fields)
        with self._connect() as db:
            db.execute(f"INSERT INTO jobs ({names}) VALUES ({marks})", list(fields.values()))

    def delete(self, job_id: str) -> None:
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            for table in ("history", "history_versions", "logs", "artifacts"):
                db.execute(f"DELETE FROM {table} WHERE job_id = ?", (job_id,))
            db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
            db.execute("COMMIT")

    def get(self, job_id: str, *, history: bool = True) -> JobRecord:
        with self._connect() as db:
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                raise JobNotFound(f"No job with id {job_id!r}; it may have been deleted with its data dir.")
            points = _points(db, job_id) if history else []
        return JobRecord.from_fields(dict(row), points)

    def list(
        self, state: str | None = None, kind: str | None = None, limit: int = 100, owner: str | None = None
    ) -> list[JobRecord]:
        where, args = [], []
        if owner is not None:
            where.append("owner = ?")
            args.append(owner)
        if state is not None:
            where.append("state = ?")
            args.append(state)
        if kind is not None:
            where.append("kind = ?")
            args.append(kind)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        with self._connect() as db:
            rows = db.execute(
                f"SELECT * FROM jobs {clause} ORDER BY submitted_at DESC, id LIMIT ?", [*args, int(limit)]
            ).fetchall()
        return [JobRecord.from_fields(dict(r)) for r in rows]

    def state_of(self, job_id: str) -> tuple[str, int] | None:
        with self._connect() as db:
            row = db.execute("SELECT state, attempts FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else (row["state"], row["attempts"])

    def _compare_and_set(
        self, job_id: str, from_states: list[str], attempt: int | None, fields: dict
    ) -> bool:
        sets = ", ".join(f"{name} = ?" for name in fields) or "state = state"
        values = [encode_field(name, value) for name, value in fields.items()]
        sql = f"UPDATE jobs SET {sets} WHERE id = ? AND state IN ({', '.join('?' for _ in from_states)})"
        args = [*values, job_id, *from_states]
        if attempt is not None:
            sql += " AND attempts = ?"
            args.append(attempt)
        with self._connect() as db:
            return db.execute(sql, args).rowcount == 1

    def extend_history(self, job_id: str, points: list[HistoryPoint]) -> None:
        if not points:
            return
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            _insert_points(db, job_id, points)
            (length,) = db.execute("SELECT COUNT(*) FROM history WHERE job_id = ?", (job_id,)).fetchone()
            if history.needs_compaction(length):
                kept = history.compact(_points(db, job_id))
                db.execute("DELETE FROM history WHERE job_id = ?", (job_id,))
                _insert_points(db, job_id, kept)
                db.execute(
                    "INSERT INTO history_versions (job_id, version) VALUES (?, 1) "
                    "ON CONFLICT (job_id) DO UPDATE SET version = version + 1",
                    (job_id,),
                )
            db.execute("COMMIT")

    def history_since(self, job_id: str, cursor: HistoryCursor | None = None) -> HistoryDelta:
        with self._connect() as db:
            db.execute("BEGIN")  # one snapshot: the version and the points agree
            version = _version(db, job_id)
            fresh = cursor is None or cursor.version != version
            points = _points(db, job_id, 0 if fresh else cursor.length)
            db.execute("COMMIT")
        return history.delta(points, version, cursor)

    def append_log(self, job_id: str, line: str) -> None:
        with self._connect() as db:
            db.execute("INSERT INTO logs (job_id, line) VALUES (?, ?)", (job_id, line))

    def logs(self, job_id: str, tail: int = 200) -> list[str]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT line FROM logs WHERE job_id = ? ORDER BY seq DESC LIMIT ?", (job_id, int(tail))
            ).fetchall()
        return [r["line"] for r in reversed(rows)]

    def add_artifact(self, job_id: str, artifact: Artifact) -> None:
        with self._connect() as db:
            db.execute(
                "INSERT INTO artifacts (job_id, kind, value, label, path) VALUES (?, ?, ?, ?, ?)",
                (job_id, artifact.kind, json.dumps(artifact.value), artifact.label, artifact.path),
            )

    def artifacts(self, job_id: str) -> list[Artifact]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT kind, value, label, path FROM artifacts WHERE job_id = ? ORDER BY seq", (job_id,)
            ).fetchall()
        return [Artifact(r["kind"], json.loads(r["value"]), r["label"], r["path"]) for r in rows]

    def beat_worker(self, worker_id: str, info: dict) -> None:
        with self._connect() as db:
            db.execute(
                "INSERT OR REPLACE INTO workers (id, info, beat_at) VALUES (?, ?, ?)",
                (worker_id, json.dumps(info), now()),
            )

    def forget_worker(self, worker_id: str) -> None:
        with self._connect() as db:
            db.execute("DELETE FROM workers WHERE id = ?", (worker_id,))

    def worker_beats(self) -> list[dict]:
        with self._connect() as db:
            rows = db.execute("SELECT id, info, beat_at FROM workers ORDER BY id").fetchall()
        return [json.loads(r["info"]) | {"id": r["id"], "beat_at": r["beat_at"]} for r in rows]


def _migrate(db: sqlite3.Connection) -> None:
    """Columns added since a data dir was created (a store made by an older version keeps working)."""
    have = {r["name"] for r in db.execute("PRAGMA table_info(history)")}
    for column, decl in (("count", "INTEGER NOT NULL DEFAULT 1"), ("counts", "TEXT")):
        if column not in have:
            db.execute(f"ALTER TABLE history ADD COLUMN {column} {decl}")
    if "owner" not in {r["name"] for r in db.execute("PRAGMA table_info(jobs)")}:
        db.execute("ALTER TABLE jobs ADD COLUMN owner TEXT")


def _insert_points(db: sqlite3.Connection, job_id: str, points: list[HistoryPoint]) -> None:
    db.executemany(
        "INSERT INTO history (job_id, step, time, metrics, count, counts) VALUES (?, ?, ?, ?, ?, ?)",
        [
            (
                job_id,
                p.step,
                p.time,
                json.dumps(p.metrics),
                p.count,
                json.dumps(p.counts) if p.counts else None,
            )
            for p in points
        ],
    )


def _points(db: sqlite3.Connection, job_id: str, offset: int = 0) -> list[HistoryPoint]:
    rows = db.execute(
        "SELECT step, time, metrics, count, counts FROM history WHERE job_id = ? "
        "ORDER BY seq LIMIT -1 OFFSET ?",
        (job_id, int(offset)),
    )
    return [
        HistoryPoint(
            r["step"],
            r["time"],
            json.loads(r["metrics"]),
            r["count"],
            json.loads(r["counts"]) if r["counts"] else None,
        )
        for r in rows
    ]


def _version(db: sqlite3.Connection, job_id: str) -> int:
    row = db.execute("SELECT version FROM history_versions WHERE job_id = ?", (job_id,)).fetchone()
    return 0 if row is None else int(row["version"])
