"""A queue consumer (`python -m backend worker`): Huey's consumer running the supervisor, plus its chores.

At start it recovers jobs orphaned by a killed consumer and re-queues lost messages; while it runs a
sweeper thread announces it (device, GPUs, free GPUs, jobs running), and recovers other consumers' stale
jobs. On exit it stops its runners and applies the crash policy to their jobs, so a stopped worker never
leaves a job in `running`. A store that goes away (a Redis restart) is waited for: Huey's consumer and
the sweeper retry on their own, the runners pause on their writes, and heartbeats are judged only once
the store has been back for a whole timeout.
"""

from __future__ import annotations

import logging
import os
import threading
import time

from backend.config import Settings, get_settings
from backend.errors import QueueUnavailable
from backend.jobs import queue
from backend.jobs.gpus import POOL
from backend.jobs.recovery import lost_messages, sweep
from backend.jobs.store import JobStore
from backend.jobs.stores import open_store
from backend.jobs.supervisor import active_job_ids, stop_all, supervise, worker_id
from backend.jobs.workers import BEAT_EVERY_S

log = logging.getLogger("fooling_lab.worker")


def announcement(settings: Settings, threads: int, started_at: float) -> dict:
    """What this consumer tells the app about itself (read back as `workers.WorkerInfo`)."""
    host, _, pid = worker_id().rpartition(":")
    return {
        "host": host,
        "pid": int(pid),
        "threads": threads,
        "device": settings.device,
        "started_at": started_at,
        "gpus": POOL.total,
        "free_gpus": POOL.free,
        "running": len(active_job_ids()),
    }


def recover_orphans(store: JobStore, reachable_since: float | None = None) -> list[str]:
    """Sweep for jobs whose consumer is gone; enqueue those the crash policy put back in the queue."""
    recovered = sweep(store, supervised=active_job_ids(), reachable_since=reachable_since)
    for job_id, state in recovered.items():
        if state == "queued":
            queue.enqueue(job_id)
    return list(recovered)


def requeue_lost_messages(store: JobStore, min_age_s: float = 5.0) -> list[str]:
    """Re-enqueue jobs that are queued in the store but have no message in the queue."""
    lost = lost_messages(store, queue.pending_job_ids(), min_age_s)
    for job_id in lost:
        queue.enqueue(job_id)
    return lost


class Chores:
    """The sweeper thread's work, every `BEAT_EVERY_S`: announce, recover orphans, re-queue lost messages."""

    def __init__(self, settings: Settings, threads: int):
        self.settings = settings
        self.threads = threads
        self.started_at = time.time()
        self.reachable_since: float | None = 0.0  # when the store came back; None while it is down

    def once(self) -> None:
        store = open_store(self.settings)
        try:
            store.beat_worker(worker_id(), announcement(self.settings, self.threads, self.started_at))
        except QueueUnavailable:
            if self.reachable_since is not None:
                log.warning("the job store is unreachable; waiting for it")
            self.reachable_since = None
            return
        if self.reachable_since is None:
            self.reachable_since = time.time()
            log.warning("the job store is back")
        recover_orphans(store, self.reachable_since)
        requeue_lost_messages(store)

    def forever(self, stop: threading.Event) -> None:
        while not stop.wait(BEAT_EVERY_S):
            try:
                self.once()
            except Exception:  # keep sweeping; a store blip must not kill the consumer
                log.exception("sweep failed")


def run_consumer(threads: int) -> None:
    """Consume until interrupted (KeyboardInterrupt, or SIGTERM turned into one by the caller)."""
    settings = get_settings()
    POOL.configure(settings.gpus, os.environ.get("CUDA_VISIBLE_DEVICES"))
    queue.serve(supervise)
    me = worker_id()
    store = open_store(settings)
    recovered = recover_orphans(store)
    lost = requeue_lost_messages(store, min_age_s=0.0)
    where = settings.queue_url or settings.queue_db
    print(
        f"[worker] {me} consuming {where} with {threads} worker(s) on {settings.device}, "
        f"{POOL.total} GPU(s); recovered {len(recovered)} orphaned job(s), re-queued {len(lost)} lost "
        "message(s)",
        flush=True,
    )
    chores = Chores(settings, threads)
    stop = threading.Event()
    try:  # from the first announcement on, whatever stops us (a signal, an error) ends in the cleanup
        store.beat_worker(me, announcement(settings, threads, chores.started_at))
        huey, _ = queue.get_huey()
        consumer = huey.create_consumer(
            workers=threads,
            periodic=False,
            initial_delay=0.05,
            backoff=1.3,
            max_delay=0.5
            if not settings.queue_url
            else 2.0,  # SQLite is polled; Redis retried after an outage
            worker_type="thread",
        )
        threading.Thread(target=chores.forever, args=(stop,), name="sweeper", daemon=True).start()
        consumer.run()
    finally:
        stop.set()
        stop_all(f"The worker {me} was stopped while running this job.")
        try:
            open_store(settings).forget_worker(me)
        except QueueUnavailable:
            pass
