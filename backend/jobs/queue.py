"""The Huey queue: SqliteHuey in the data dir by default, RedisHuey when a queue URL is configured.

The queue only carries job ids; the job store holds everything else. Messages are JSON, not pickle,
so a writable queue file or Redis cannot become code execution. Huey's result store is off.

The queue does not know what running a job means: a consumer hands it the function that does
(`serve(handler)`, the supervisor's `supervise`), so this module imports nothing of the runner side.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import datetime
from functools import lru_cache

from huey import RedisHuey, SqliteHuey
from huey.api import Huey
from huey.registry import Message
from huey.serializer import Serializer

from backend.config import get_settings
from backend.errors import QueueUnavailable

HUEY_NAME = "fooling-lab"
TASK_NAME = "fooling_lab.run_job"


class JsonMessageSerializer(Serializer):
    """Serialises Huey task messages as JSON; refuses anything that is not a plain message."""

    def _serialize(self, data) -> bytes:
        if not isinstance(data, Message):
            raise TypeError(f"only task messages go through this queue, not {type(data).__name__}")
        fields = data._asdict()
        if fields["on_complete"] or fields["on_error"] or fields["chord_config"]:
            raise TypeError("pipelines and chords are not used by Fooling Lab's queue")
        if isinstance(fields["eta"], datetime):
            fields["eta"] = {"datetime": fields["eta"].isoformat()}
        if isinstance(fields["expires_resolved"], datetime):
            fields["expires_resolved"] = {"datetime": fields["expires_resolved"].isoformat()}
        return json.dumps(fields).encode()

    def _deserialize(self, data: bytes) -> Message:
        fields = json.loads(data)
        for name in ("eta", "expires_resolved"):
            if isinstance(fields.get(name), dict):
                fields[name] = datetime.fromisoformat(fields[name]["datetime"])
        fields["args"] = tuple(fields["args"])
        return Message(**fields)


_handler: Callable[[str], None] | None = None


def serve(handler: Callable[[str], None]) -> None:
    """Make this process's consumer run `handler(job_id)` for each message (set before consuming)."""
    global _handler
    _handler = handler


def _run_job(job_id: str) -> None:
    if _handler is None:
        raise RuntimeError("this process only enqueues; a consumer calls backend.jobs.queue.serve first")
    _handler(job_id)


@lru_cache(maxsize=8)
def _huey_for(queue_url: str | None, queue_db: str) -> tuple[Huey, object]:
    serializer = JsonMessageSerializer()
    if queue_url:
        from backend.jobs.store_redis import connection_pool

        huey: Huey = RedisHuey(
            HUEY_NAME, results=False, serializer=serializer, connection_pool=connection_pool(queue_url)
        )
    else:
        huey = SqliteHuey(HUEY_NAME, results=False, serializer=serializer, filename=queue_db)
    task = huey.task(name=TASK_NAME)(_run_job)
    return huey, task


def get_huey() -> tuple[Huey, object]:
    """(huey, run_job task) for the current settings; one instance per queue per process."""
    settings = get_settings()
    if not settings.queue_url:
        settings.queue_db.parent.mkdir(parents=True, exist_ok=True)
    return _huey_for(settings.queue_url, str(settings.queue_db))


def enqueue(job_id: str, delay_s: float | None = None) -> None:
    """Put a job id on the queue (after `delay_s` seconds: Huey's schedule holds it until then);
    `QueueUnavailable` if the queue cannot take it."""
    huey, task = get_huey()
    try:
        if delay_s:
            task.schedule(args=(job_id,), delay=delay_s)
        else:
            task(job_id)
    except (OSError, sqlite3.Error) as err:
        raise QueueUnavailable(_down_message(err)) from err
    except Exception as err:  # redis raises its own ConnectionError family
        if type(err).__module__.startswith("redis"):
            raise QueueUnavailable(_down_message(err)) from err
        raise


def pending_job_ids() -> set[str]:
    """Job ids whose message waits in the queue or in its schedule (for reconciling lost messages)."""
    huey, _ = get_huey()
    try:
        return {str(m.args[0]) for m in [*huey.pending(), *huey.scheduled()] if m.args}
    except (OSError, sqlite3.Error) as err:
        raise QueueUnavailable(_down_message(err)) from err
    except Exception as err:
        if type(err).__module__.startswith("redis"):
            raise QueueUnavailable(_down_message(err)) from err
        raise


def _down_message(err: Exception) -> str:
    settings = get_settings()
    where = settings.queue_url or settings.queue_db
    return (
        f"The job queue is unavailable: {where} is not reachable ({err}). Start Redis or fix "
        "FOOLING_LAB_QUEUE_URL; unset it to use the embedded SQLite queue."
    )
