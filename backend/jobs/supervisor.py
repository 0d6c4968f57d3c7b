"""Runs one job inside a consumer thread: take its GPUs, spawn the runner, claim the job, heartbeat,
cancel, and judge the end.

The runner is a spawned child process (`python -m backend.jobs.runner JOB_ID`), never a fork: killing
it is a hard cancel that frees GPU memory. The child dies with its parent (see `runner.die_with_parent`),
so a killed consumer leaves no orphan doing work; the stale heartbeat then lets a sweep recover the job.

The claim is one write: the runner is spawned first and waits for a go on its stdin, so the record
turns `running` together with its worker, heartbeat and `runner_pid` (a reader that sees `running`
sees the pid too). A job that needs more GPUs than this worker has free goes back on the queue.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from backend.config import REPO_ROOT
from backend.errors import JobNotFound, QueueUnavailable
from backend.jobs import paths
from backend.jobs.gpus import POOL, gpus_needed
from backend.jobs.queue import enqueue
from backend.jobs.records import FAILED, QUEUED, RUNNING, STATES, SUCCEEDED, JobRecord, now, stamped
from backend.jobs.recovery import handle_lost_run
from backend.jobs.store import JobStore
from backend.jobs.stores import open_store

POLL_S = 0.1  # how often the supervisor looks at the child and the record's state
HEARTBEAT_S = 1.0
KILL_GRACE_S = 0.5  # SIGTERM first, SIGKILL after this; keeps cancel well under 2 s
RUNNER_EXIT_S = 5.0  # a runner that recorded its end gets this long to exit before it is killed
PASS_ON_S = 1.0  # a job this worker cannot take now goes back on the queue after this delay
GO = b"go\n"  # what the runner waits for on its stdin once the claim is written

log = logging.getLogger("fooling_lab.worker")
_active: dict[str, subprocess.Popen] = {}
_active_lock = threading.Lock()


def worker_id() -> str:
    """hostname:pid of this consumer process (computed late: a test may fork/spawn after import)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def supervise(job_id: str) -> None:
    """The queue handler (see `queue.serve`). Returns when the job has ended, was not ours to run, or
    was passed on for want of free GPUs."""
    store = open_store(patient=True)
    try:
        record = store.get(job_id, history=False)
    except JobNotFound:
        return  # rolled back at submit, or deleted: nothing to run
    if record.state != QUEUED:
        return  # cancelled while queued, or another delivery of the same message won
    taken = POOL.take(gpus_needed(record.config))
    if taken is None:
        _pass_on(store, record)
        return
    try:
        _run(store, record, taken)
    finally:
        POOL.give(taken)


def _pass_on(store: JobStore, record: JobRecord) -> None:
    """Put a job this worker cannot run now back on the queue for the next worker to look at; the
    stamp on `heartbeat_at` tells the lost-message check that a message for it is on its way."""
    if store.transition(record.id, [QUEUED], attempt=record.attempts, heartbeat_at=now()):
        enqueue(record.id, delay_s=PASS_ON_S)


def _run(store: JobStore, record: JobRecord, taken: list[int]) -> None:
    job_id = record.id
    attempt = record.attempts + 1
    proc = _spawn(job_id, attempt, taken)
    with _active_lock:
        _active[job_id] = proc
    claimed, outcome = False, None
    try:
        claimed = _claim(store, record, attempt, proc)
        if claimed:
            _go(proc)
            gpus = f" with GPU(s) {POOL.visible_devices(taken)}" if taken else ""
            store.append_log(job_id, stamped(f"[queue] attempt {attempt} started on {worker_id()}{gpus}"))
            outcome = _watch(store, job_id, attempt, proc)
    except QueueUnavailable as err:
        if not claimed:
            raise  # still queued: the lost-message check puts it back once the store is back
        outcome = f"The worker lost the job store while supervising this job ({err})."
    finally:
        _stop(proc)
        with _active_lock:
            _active.pop(job_id, None)
    if not claimed:
        return
    store.transition(job_id, STATES, attempt=attempt, runner_pid=None)
    if outcome is not None:
        recover(store, job_id, attempt, outcome)


def _claim(store: JobStore, record: JobRecord, attempt: int, proc: subprocess.Popen) -> bool:
    """queued -> running with everything a reader needs, in one compare-and-set."""
    me = worker_id()
    if store.transition(
        record.id,
        [QUEUED],
        RUNNING,
        attempt=record.attempts,
        attempts=attempt,
        started_at=now(),
        finished_at=None,
        heartbeat_at=now(),
        worker=me,
        error=None,
        runner_pid=proc.pid,
    ):
        return True
    # A write retried across a store restart may have won the first time (its reply was lost): look.
    mine = store.get(record.id, history=False)
    return (mine.state, mine.attempts, mine.worker, mine.runner_pid) == (RUNNING, attempt, me, proc.pid)


def recover(store: JobStore, job_id: str, attempt: int, reason: str) -> str | None:
    """The crash policy for a lost run (`recovery.handle_lost_run`), and the queue side of its decision."""
    state = handle_lost_run(store, job_id, attempt, reason)
    if state == QUEUED:
        try:
            enqueue(job_id)
        except QueueUnavailable as err:  # the job stays queued; the lost-message check re-enqueues it
            log.warning("could not re-enqueue %s yet: %s", job_id, err)
    return state


def _spawn(job_id: str, attempt: int, taken: list[int]) -> subprocess.Popen:
    job_dir = paths.job_dir(job_id)
    job_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    if taken:
        env["CUDA_VISIBLE_DEVICES"] = POOL.visible_devices(taken)  # the job's `cuda` is its own GPUs
    command = [sys.executable, "-m", "backend.jobs.runner", job_id, "--attempt", str(attempt)]
    # Appended to: a runner spawned for a claim that another worker won must not truncate the winner's.
    with open(paths.runner_output(job_id, attempt), "ab") as out:
        return subprocess.Popen(
            [*command, "--parent", str(os.getpid())],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.PIPE,  # it waits for GO: it starts importing while the claim is written
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: a cancel kills its helpers too
        )


def _go(proc: subprocess.Popen) -> None:
    try:
        proc.stdin.write(GO)
        proc.stdin.close()
    except OSError:
        pass  # it died already: `_watch` reports why


def _watch(store: JobStore, job_id: str, attempt: int, proc: subprocess.Popen) -> str | None:
    """Wait for the child; heartbeat; stop it if the record left `running`. Returns why the run was
    lost (child died without recording an end), or None if it ended properly or was stopped on purpose."""
    last_beat = time.monotonic()
    while True:
        code = proc.poll()
        state = store.state_of(job_id)
        if state != (RUNNING, attempt):
            ended_by_runner = state is not None and state[1] == attempt and state[0] in (SUCCEEDED, FAILED)
            if ended_by_runner:
                _wait_quietly(proc, RUNNER_EXIT_S)  # it recorded its end; let it exit by itself
            elif code is None:
                now_state = state[0] if state else "gone"
                store.append_log(
                    job_id, stamped(f"[queue] attempt {attempt} stopped: the job is {now_state}")
                )
            return None
        if code is not None:
            return _exit_reason(code, job_id, attempt)
        if time.monotonic() - last_beat >= HEARTBEAT_S:
            store.transition(job_id, [RUNNING], attempt=attempt, heartbeat_at=now())
            last_beat = time.monotonic()
        time.sleep(POLL_S)


def _wait_quietly(proc: subprocess.Popen, timeout_s: float) -> None:
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        pass  # the caller's `_stop` kills it


def _exit_reason(code: int, job_id: str, attempt: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        what = f"The job's runner process was killed ({name})"
        if -code == signal.SIGKILL:
            what += "; if nobody killed it, the machine may have run out of memory"
    else:
        what = f"The job's runner process exited with code {code} without reporting a result"
    tail = _output_tail(paths.runner_output(job_id, attempt))
    return what + (f". Last output:\n{tail}" if tail else ".")


def _output_tail(path: Path, lines: int = 8) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM the runner's process group, SIGKILL it if still there after a grace period, reap it."""
    if proc.stdin is not None and not proc.stdin.closed:
        try:
            proc.stdin.close()  # a runner still waiting for GO reads the end and leaves
        except OSError:
            pass
    if proc.poll() is not None:
        return
    for sig, wait_s in ((signal.SIGTERM, KILL_GRACE_S), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


def active_job_ids() -> set[str]:
    """Jobs whose runner this process is supervising right now (the sweep leaves these alone)."""
    with _active_lock:
        return set(_active)


def stop_all(reason: str) -> None:
    """Stop every runner this process supervises (the consumer is shutting down) and recover their
    jobs by the crash policy, so a stopped worker leaves nothing in `running`."""
    with _active_lock:
        active = list(_active.items())
    store = open_store()  # not patient: a worker being stopped does not wait for a store that is down
    for job_id, proc in active:
        try:
            state = store.state_of(job_id)
        except QueueUnavailable:
            state = None  # left running: another worker's sweep recovers it once the store is back
        _stop(proc)
        if state and state[0] == RUNNING:
            try:
                recover(store, job_id, state[1], reason)
            except QueueUnavailable as err:
                log.warning("could not recover %s: %s", job_id, err)
