"""The distributed job store: records in Redis, so the app and consumers on several machines agree.

A job is a hash of JSON-encoded fields; history, logs and artifacts are lists; `fooling-lab:jobs` is a
sorted set by submit time. Compare-and-set runs as a Lua script, which Redis executes atomically; a
history compaction replaces the list in a WATCH/MULTI transaction and bumps `...:history_version`.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import redis

from backend.errors import JobNotFound, QueueUnavailable
from backend.jobs import history
from backend.jobs.history import HistoryCursor, HistoryDelta
from backend.jobs.records import Artifact, HistoryPoint, JobRecord, encode_field, now
from backend.jobs.store import JobStore

PREFIX = "fooling-lab"
INDEX = f"{PREFIX}:jobs"
WORKERS = f"{PREFIX}:workers"

# KEYS[1] = job hash; ARGV[1] = JSON list of allowed states; ARGV[2] = expected attempts ("" = any);
# ARGV[3..] = field, value pairs to set.
_CAS = """
local cur = redis.call('HGET', KEYS[1], 'state')
if not cur then return 0 end
local state = cjson.decode(cur)
local allowed = false
for _, s in ipairs(cjson.decode(ARGV[1])) do
  if s == state then allowed = true end
end
if not allowed then return 0 end
if ARGV[2] ~= '' and redis.call('HGET', KEYS[1], 'attempts') ~= ARGV[2] then return 0 end
if #ARGV > 2 then redis.call('HSET', KEYS[1], unpack(ARGV, 3)) end
return 1
"""


@lru_cache(maxsize=8)
def connection_pool(url: str) -> redis.ConnectionPool:
    """One pool per URL and process; short connect timeout so a down server fails fast."""
    return redis.ConnectionPool.from_url(url, socket_connect_timeout=3, socket_timeout=30)


def _key(job_id: str, part: str = "") -> str:
    return f"{PREFIX}:job:{job_id}" + (f":{part}" if part else "")


def _encode(name: str, value: Any) -> str:
    return json.dumps(encode_field(name, value))


def _point(raw: bytes | str) -> HistoryPoint:
    return HistoryPoint(**json.loads(raw))


def _decode(raw: dict[bytes, bytes]) -> dict[str, Any]:
    return {k.decode(): json.loads(v) for k, v in raw.items()}


class RedisJobStore(JobStore):
    def __init__(self, url: str):
        self.url = url
        self.db = redis.Redis(connection_pool=connection_pool(url))
        self._cas = self.db.register_script(_CAS)

    def _call(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (redis.ConnectionError, redis.TimeoutError) as err:
            raise QueueUnavailable(
                f"The job queue is unavailable: cannot reach the Redis server at {self.url} ({err}). "
                "Start it (redis-server) or unset FOOLING_LAB_QUEUE_URL for the embedded queue."
            ) from err

    def ping(self) -> None:
        self._call(self.db.ping)

    def create(self, record: JobRecord) -> None:
        mapping = {name: json.dumps(value) for name, value in record.to_fields().items()}  # already encoded
        with self.db.pipeline() as pipe:
            pipe.hset(_key(record.id), mapping=mapping)
            pipe.zadd(INDEX, {record.id: record.submitted_at})
            self._call(pipe.execute)

    def delete(self, job_id: str) -> None:
        keys = [_key(job_id)] + [_key(job_id, p) for p in ("history", "history_version", "logs", "artifacts")]
        with self.db.pipeline() as pipe:
            pipe.delete(*keys)
            pipe.zrem(INDEX, job_id)
            self._call(pipe.execute)

    def get(self, job_id: str, *, history: bool = True) -> JobRecord:
        with self.db.pipeline() as pipe:
            pipe.hgetall(_key(job_id))
            if history:
                pipe.lrange(_key(job_id, "history"), 0, -1)
            replies = self._call(pipe.execute)
        if not replies[0]:
            raise JobNotFound(f"No job with id {job_id!r} in the Redis store {self.url}.")
        points = [_point(p) for p in replies[1]] if history else []
        return JobRecord.from_fields(_decode(replies[0]), points)

    def list(
        self, state: str | None = None, kind: str | None = None, limit: int = 100, owner: str | None = None
    ) -> list[JobRecord]:
        out: list[JobRecord] = []
        start, chunk = 0, max(limit, 100)
        while len(out) < limit:
            ids = self._call(self.db.zrevrange, INDEX, start, start + chunk - 1)
            if not ids:
                break
            with self.db.pipeline() as pipe:
                for job_id in ids:
                    pipe.hgetall(_key(job_id.decode()))
                rows = self._call(pipe.execute)
            for raw in rows:
                if not raw:
                    continue
                record = JobRecord.from_fields(_decode(raw))
                if (
                    (state is None or record.state == state)
                    and (kind is None or record.kind == kind)
                    and (owner is None or record.owner == owner)
                ):
                    out.append(record)
            start += chunk
        return out[:limit]

    def state_of(self, job_id: str) -> tuple[str, int] | None:
        state, attempts = self._call(self.db.hmget, _key(job_id), ["state", "attempts"])
        return None if state is None else (json.loads(state), json.loads(attempts))

    def _compare_and_set(
        self, job_id: str, from_states: list[str], attempt: int | None, fields: dict
    ) -> bool:
        args: list[Any] = [json.dumps(list(from_states)), "" if attempt is None else json.dumps(attempt)]
        for name, value in fields.items():
            args += [name, _encode(name, value)]
        return bool(self._call(self._cas, keys=[_key(job_id)], args=args))

    def extend_history(self, job_id: str, points: list[HistoryPoint]) -> None:
        if not points:
            return
        key = _key(job_id, "history")
        length = self._call(self.db.rpush, key, *(json.dumps(p.to_json()) for p in points))
        if history.needs_compaction(length):
            self._call(self._compact, job_id)

    def _compact(self, job_id: str) -> None:
        """Replace the history list by its compaction, atomically (retried if another writer came in)."""
        key, version = _key(job_id, "history"), _key(job_id, "history_version")
        with self.db.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    raw = pipe.lrange(key, 0, -1)
                    kept = history.compact([_point(p) for p in raw])
                    if len(kept) == len(raw):
                        return
                    pipe.multi()
                    pipe.delete(key)
                    pipe.rpush(key, *(json.dumps(p.to_json()) for p in kept))
                    pipe.incr(version)
                    pipe.execute()
                    return
                except redis.WatchError:
                    continue

    def history_since(self, job_id: str, cursor: HistoryCursor | None = None) -> HistoryDelta:
        key, version_key = _key(job_id, "history"), _key(job_id, "history_version")
        start = 0 if cursor is None else cursor.length
        with self.db.pipeline() as pipe:  # MULTI: the version and the points are one snapshot
            pipe.get(version_key)
            pipe.lrange(key, start, -1)
            raw_version, raw = self._call(pipe.execute)
        version = int(raw_version or 0)
        if cursor is not None and start and cursor.version != version:
            with self.db.pipeline() as pipe:
                pipe.get(version_key)
                pipe.lrange(key, 0, -1)
                raw_version, raw = self._call(pipe.execute)
            version = int(raw_version or 0)
        return history.delta([_point(p) for p in raw], version, cursor)

    def append_log(self, job_id: str, line: str) -> None:
        self._call(self.db.rpush, _key(job_id, "logs"), line)

    def logs(self, job_id: str, tail: int = 200) -> list[str]:
        return [x.decode() for x in self._call(self.db.lrange, _key(job_id, "logs"), -int(tail), -1)]

    def add_artifact(self, job_id: str, artifact: Artifact) -> None:
        payload = json.dumps(
            {"kind": artifact.kind, "value": artifact.value, "label": artifact.label, "path": artifact.path}
        )
        self._call(self.db.rpush, _key(job_id, "artifacts"), payload)

    def artifacts(self, job_id: str) -> list[Artifact]:
        return [
            Artifact(**json.loads(x)) for x in self._call(self.db.lrange, _key(job_id, "artifacts"), 0, -1)
        ]

    def beat_worker(self, worker_id: str, info: dict) -> None:
        self._call(self.db.hset, WORKERS, worker_id, json.dumps(info | {"beat_at": now()}))

    def forget_worker(self, worker_id: str) -> None:
        self._call(self.db.hdel, WORKERS, worker_id)

    def worker_beats(self) -> list[dict]:
        raw = self._call(self.db.hgetall, WORKERS)
        return sorted((json.loads(v) | {"id": k.decode()} for k, v in raw.items()), key=lambda w: w["id"])
