"""Runs one job inside a consumer thread: claim it, spawn the runner, heartbeat, cancel, and judge the end.

The runner is a spawned child process (`python -m backend.jobs.runner JOB_ID`), never a fork: killing
it is a hard cancel that frees GPU memory. The child dies with its parent (see `runner.die_with_parent`),
so a killed consumer leaves no orphan doing work; the stale heartbeat then lets a sweep recover the job.
"""

from __future__ import annotations

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
from backend.jobs.records import FAILED, QUEUED, RUNNING, STATES, SUCCEEDED, now, stamped
from backend.jobs.recovery import handle_lost_run
from backend.jobs.store import JobStore, open_store

POLL_S = 0.1  # how often the supervisor looks at the child and the record's state
HEARTBEAT_S = 1.0
KILL_GRACE_S = 0.5  # SIGTERM first, SIGKILL after this; keeps cancel well under 2 s
RUNNER_EXIT_S = 5.0  # a runner that recorded its end gets this long to exit before it is killed
ENV_ATTEMPT = "FOOLING_LAB_JOB_ATTEMPT"
ENV_PARENT = "FOOLING_LAB_SUPERVISOR_PID"

_active: dict[str, subprocess.Popen] = {}
_active_lock = threading.Lock()


def worker_id() -> str:
    """hostname:pid of this consumer process (computed late: a test may fork/spawn after import)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def supervise(job_id: str) -> None:
    """The Huey task body. Returns when the job has ended (or was not ours to run)."""
    store = open_store()
    try:
        record = store.get(job_id, history=False)
    except JobNotFound:
        return  # rolled back at submit, or deleted: nothing to run
    attempt = record.attempts + 1
    claimed = store.transition(
        job_id,
        [QUEUED],
        RUNNING,
        attempt=record.attempts,
        attempts=attempt,
        started_at=now(),
        finished_at=None,
        heartbeat_at=now(),
        worker=worker_id(),
        error=None,
        runner_pid=None,
    )
    if not claimed:
        return  # cancelled while queued, or another delivery of the same message won
    store.append_log(job_id, stamped(f"[queue] attempt {attempt} started on {worker_id()}"))
    proc = _spawn(job_id, attempt)
    with _active_lock:
        _active[job_id] = proc
    try:
        store.transition(job_id, [RUNNING], attempt=attempt, runner_pid=proc.pid)
        outcome = _watch(store, job_id, attempt, proc)
    except QueueUnavailable as err:
        outcome = f"The worker lost the job store while supervising this job ({err})."
    finally:
        _stop(proc)
        with _active_lock:
            _active.pop(job_id, None)
    store.transition(job_id, STATES, attempt=attempt, runner_pid=None)
    if outcome is not None:
        handle_lost_run(store, job_id, attempt, outcome)


def _spawn(job_id: str, attempt: int) -> subprocess.Popen:
    job_dir = paths.job_dir(job_id)
    job_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, **{ENV_ATTEMPT: str(attempt), ENV_PARENT: str(os.getpid())})
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    with open(paths.runner_output(job_id, attempt), "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "backend.jobs.runner", job_id],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: a cancel kills its helpers too
        )


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
    store = open_store()
    for job_id, proc in active:
        state = store.state_of(job_id)
        _stop(proc)
        if state and state[0] == RUNNING:
            handle_lost_run(store, job_id, state[1], reason)
