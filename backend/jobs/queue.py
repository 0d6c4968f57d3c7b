"""The Huey queue: SqliteHuey in the data dir by default, RedisHuey when a queue URL is configured.

The queue only carries job ids; the job store holds everything else. Messages are JSON, not pickle,
so a writable queue file or Redis cannot become code execution. Huey's result store is off.
"""

from __future__ import annotations

import json
import sqlite3
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


def _supervise(job_id: str) -> None:
    # Imported here: the app only enqueues; consumers run the supervisor.
    from backend.jobs.supervisor import supervise

    supervise(job_id)


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
    task = huey.task(name=TASK_NAME)(_supervise)
    return huey, task


def get_huey() -> tuple[Huey, object]:
    """(huey, run_job task) for the current settings; one instance per queue per process."""
    settings = get_settings()
    if not settings.queue_url:
        settings.queue_db.parent.mkdir(parents=True, exist_ok=True)
    return _huey_for(settings.queue_url, str(settings.queue_db))


def enqueue(job_id: str) -> None:
    """Put a job id on the queue; `QueueUnavailable` if the queue cannot take it."""
    huey, task = get_huey()
    try:
        task(job_id)
    except (OSError, sqlite3.Error) as err:
        raise QueueUnavailable(_down_message(err)) from err
    except Exception as err:  # redis raises its own ConnectionError family
        if type(err).__module__.startswith("redis"):
            raise QueueUnavailable(_down_message(err)) from err
        raise


def pending_job_ids() -> set[str]:
    """Job ids whose message waits in the queue (for reconciling lost messages)."""
    huey, _ = get_huey()
    return {str(m.args[0]) for m in huey.pending() if m.args}


def _down_message(err: Exception) -> str:
    settings = get_settings()
    where = settings.queue_url or settings.queue_db
    return (
        f"The job queue at {where} is not reachable ({err}). Start Redis or fix "
        "FOOLING_LAB_QUEUE_URL; unset it to use the embedded SQLite queue."
    )
