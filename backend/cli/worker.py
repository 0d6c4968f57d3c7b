"""`python -m backend worker [--workers N]`: one queue consumer (one per GPU machine when distributed).

The consumer itself (recovery at start, the sweeper, GPUs, shutdown) is `backend.jobs.consumer`.
"""

from __future__ import annotations

import argparse
import logging
import signal


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("worker", help="run a job queue consumer")
    p.add_argument("--workers", type=int, default=1, help="jobs run at the same time (default 1)")
    p.add_argument("--quiet", action="store_true", help="log warnings only")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from backend.jobs.consumer import run_consumer

    if args.workers < 1:
        raise SystemExit("--workers must be at least 1")
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    signal.signal(signal.SIGTERM, _exit_on_signal)  # until Huey installs its own handlers
    try:
        run_consumer(args.workers)
    except KeyboardInterrupt:
        pass
    return 0


def _exit_on_signal(signum, frame) -> None:
    raise KeyboardInterrupt
