"""`python -m backend worker [--workers N]`: one queue consumer (one per GPU machine when distributed).

At start it recovers jobs orphaned by a killed consumer and re-queues lost messages; while it runs a
sweeper thread does the same for other consumers' stale jobs; on exit it stops its runners and
applies the crash policy to their jobs, so a stopped worker never leaves a job in `running`.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
import time

SWEEP_EVERY_S = 2.0  # also how often it announces itself (backend.jobs.workers)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("worker", help="run a job queue consumer")
    p.add_argument("--workers", type=int, default=1, help="jobs run at the same time (default 1)")
    p.add_argument("--quiet", action="store_true", help="log warnings only")
    p.set_defaults(func=run)


def _sweep_forever(stop: threading.Event, me: str, info: dict) -> None:
    from backend.jobs.recovery import requeue_lost_messages, sweep
    from backend.jobs.store import open_store
    from backend.jobs.supervisor import active_job_ids

    log = logging.getLogger("fooling_lab.worker")
    while not stop.wait(SWEEP_EVERY_S):
        try:
            store = open_store()
            store.beat_worker(me, info)
            sweep(store, supervised=active_job_ids())
            requeue_lost_messages(store)
        except Exception:  # keep sweeping; a Redis blip must not kill the consumer
            log.exception("sweep failed")


def run(args: argparse.Namespace) -> int:
    from backend.config import get_settings
    from backend.jobs.recovery import requeue_lost_messages, sweep
    from backend.jobs.store import open_store
    from backend.jobs.supervisor import stop_all, worker_id

    if args.workers < 1:
        raise SystemExit("--workers must be at least 1")
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    settings = get_settings()
    me = worker_id()
    store = open_store(settings)
    recovered = sweep(store)
    lost = requeue_lost_messages(store, min_age_s=0.0)
    where = settings.queue_url or settings.queue_db
    print(
        f"[worker] {me} consuming {where} with {args.workers} worker(s) on {settings.device}; "
        f"recovered {len(recovered)} orphaned job(s), re-queued {len(lost)} lost message(s)",
        flush=True,
    )
    host, _, pid = me.rpartition(":")
    info = {
        "host": host,
        "pid": int(pid),
        "threads": args.workers,
        "device": settings.device,
        "started_at": time.time(),
    }
    signal.signal(signal.SIGTERM, _exit_on_signal)  # until Huey installs its own handlers
    store.beat_worker(me, info)
    try:
        _consume(args.workers, settings, me, info)
    except KeyboardInterrupt:
        pass
    finally:
        stop_all(f"The worker {me} was stopped while running this job.")
        open_store(settings).forget_worker(me)
    return 0


def _exit_on_signal(signum, frame) -> None:
    raise KeyboardInterrupt


def _consume(workers: int, settings, me: str, info: dict) -> None:
    from backend.jobs.queue import get_huey

    huey, _ = get_huey()
    max_delay = 0.5 if not settings.queue_url else 10.0  # SQLite is polled: keep start latency low
    consumer = huey.create_consumer(
        workers=workers,
        periodic=False,
        initial_delay=0.05,
        backoff=1.3,
        max_delay=max_delay,
        worker_type="thread",
    )
    stop = threading.Event()
    sweeper = threading.Thread(target=_sweep_forever, args=(stop, me, info), name="sweeper", daemon=True)
    sweeper.start()
    try:
        consumer.run()
    finally:
        stop.set()
