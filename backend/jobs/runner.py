"""The per-job child process: `python -m backend.jobs.runner JOB_ID --attempt N --parent PID`.

Spawned by the supervisor (never forked), it runs exactly the attempt it was started for: it waits for
the supervisor's go on stdin (sent once the claim is written), checks that the record is `running` with
that attempt number, runs the kind, and records the end with a compare-and-set, so a job cancelled
meanwhile stays cancelled. Its store is patient: a Redis restart pauses the job instead of failing it.
"""

from __future__ import annotations

import argparse
import ctypes
import importlib
import json
import os
import signal
import sys
import threading
import time
import traceback

from backend.config import get_settings
from backend.errors import FoolingLabError
from backend.jobs.context import RunnerContext
from backend.jobs.kinds import JOB_KINDS, JobKind, get_kind
from backend.jobs.records import FAILED, RUNNING, SUCCEEDED, JobRecord, now
from backend.jobs.stores import open_store

TRACEBACK_LINES = 6
EXIT_NOT_MINE = 3


def die_with_parent(parent: int) -> None:
    """Make sure this process does not outlive the consumer `parent` that supervises it (a SIGKILLed
    consumer cannot clean up): Linux's parent-death signal, plus a watchdog thread for other systems."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except OSError:
            pass
    if os.getppid() != parent:
        os._exit(EXIT_NOT_MINE)  # the parent died before we got here

    def watch() -> None:
        while True:
            if os.getppid() != parent:
                os._exit(EXIT_NOT_MINE)
            time.sleep(0.5)

    threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()


def resolve_kind(record: JobRecord) -> JobKind:
    """Import only the module that registered the kind (keeps runner start-up fast)."""
    if record.module:
        try:
            importlib.import_module(record.module)
        except ImportError:
            pass
    if record.kind in JOB_KINDS:
        return JOB_KINDS[record.kind]
    return get_kind(record.kind)


def error_text(err: BaseException) -> str:
    """The message for a person: ours as written, anything else as the last traceback lines."""
    if isinstance(err, FoolingLabError):
        return str(err)
    lines = "".join(traceback.format_exception(err)).strip().splitlines()
    return "\n".join(lines[-TRACEBACK_LINES:])


def run(job_id: str, attempt: int) -> int:
    store = open_store(patient=True)
    record = store.get(job_id, history=False)
    if (record.state, record.attempts) != (RUNNING, attempt):
        return EXIT_NOT_MINE
    ctx = RunnerContext(store, job_id, attempt, get_settings().device)
    try:
        kind = resolve_kind(record)
        result = kind.run(record.config, ctx)
        if result is None:
            result = {}
        json.dumps(result)
    except BaseException as err:  # noqa: BLE001 - everything becomes a readable error on the record
        message = error_text(err)
        ctx.log(f"[runner] failed: {message}")
        store.transition(job_id, [RUNNING], FAILED, attempt=attempt, error=message, finished_at=now())
        return 1
    latest = store.get(job_id, history=False).progress
    final = latest.__dict__ | {"fraction": 1.0, "eta_s": 0.0, "updated_at": now()}
    if store.transition(
        job_id, [RUNNING], SUCCEEDED, attempt=attempt, result=result, finished_at=now(), progress=final
    ):
        ctx.log("[runner] finished")
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m backend.jobs.runner")
    parser.add_argument("job_id")
    parser.add_argument("--attempt", type=int, required=True, help="the attempt the supervisor claimed")
    parser.add_argument("--parent", type=int, default=None, help="the supervising consumer's pid")
    args = parser.parse_args(argv)
    die_with_parent(args.parent if args.parent is not None else os.getppid())
    if sys.stdin.readline().strip() != "go":
        return EXIT_NOT_MINE  # the supervisor did not win the claim (or died): nothing to run
    return run(args.job_id, args.attempt)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
