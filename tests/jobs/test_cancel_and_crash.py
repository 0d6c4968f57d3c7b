"""Cancel, SIGKILL of a runner or of a whole consumer, retry and resume: nothing lost, nothing run twice."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from backend import jobs
from backend.jobs import paths
from backend.jobs.job import CHECKPOINT, expected_value, step_digest
from tests.jobs.conftest import pid_gone, wait_for

SLOW = {"seed": 7, "steps": 60, "sleep_s": 0.05, "probe_torch": False, "payload_bytes": 256 * 1024}


def running_with_progress(job_id: str, min_step: int = 3):
    record = jobs.get(job_id)
    if record.state == "running" and record.runner_pid and (record.progress.step or 0) >= min_step:
        return record
    return None


def settled(job_id: str, state: str):
    record = jobs.get(job_id)
    return record if record.state == state and record.runner_pid is None else None


def assert_checkpoint_whole(job_id: str, seed: int) -> int:
    """The selftest's checkpoint (written with temp file + rename) parses and is self-consistent."""
    saved = json.loads((paths.state_dir(job_id) / CHECKPOINT).read_text())
    acc = step_digest(seed, -1)
    for step in range(saved["step"]):
        acc = (acc * 31 + step_digest(seed, step)) % (2**61 - 1)
    assert saved["acc"] == f"{acc:016x}" and len(saved["payload"]) == SLOW["payload_bytes"]
    return saved["step"]


def test_cancel_running_job_within_two_seconds(lab):
    lab.start_consumer(workers=1)
    job_id = jobs.submit("selftest", SLOW)
    record = wait_for(lambda: running_with_progress(job_id), what="the job to run")
    pid = record.runner_pid
    t0 = time.monotonic()
    assert jobs.cancel(job_id).state == "cancelled"
    wait_for(lambda: pid_gone(pid), timeout=2.0, every=0.02, what="the runner process to be gone")
    assert time.monotonic() - t0 < 2.0
    record = wait_for(lambda: settled(job_id, "cancelled"), timeout=2.0, what="runner_pid cleared")
    assert record.result is None and record.finished_at is not None
    time.sleep(0.3)
    assert jobs.get(job_id).state == "cancelled"  # the killed runner did not overwrite it


def test_cancel_queued_job_never_runs(lab):
    lab.start_consumer(workers=1)
    blocker = jobs.submit("selftest", SLOW)
    wait_for(lambda: running_with_progress(blocker, 1), what="the first job to run")
    waiting = jobs.submit("selftest", {"seed": 1, "probe_torch": False})
    assert jobs.get(waiting).state == "queued"
    assert jobs.cancel(waiting).state == "cancelled"
    jobs.cancel(blocker)
    probe = jobs.submit("selftest", {"seed": 2, "probe_torch": False})  # goes through the queue after it
    wait_for(lambda: settled(probe, "succeeded"), what="a later job to finish")
    record = jobs.get(waiting)
    assert (record.state, record.attempts, record.started_at) == ("cancelled", 0, None)
    assert not paths.state_dir(waiting).exists()


def test_runner_sigkill_fails_job_then_retry_resumes_from_checkpoint(lab):
    lab.start_consumer(workers=1)
    job_id = jobs.submit("selftest", SLOW)
    record = wait_for(lambda: running_with_progress(job_id, 5), what="progress")
    os.kill(record.runner_pid, signal.SIGKILL)
    failed = wait_for(lambda: settled(job_id, "failed"), timeout=5, what="the job to be failed")
    assert "killed (SIGKILL)" in failed.error and "Retry" in failed.error
    reached = assert_checkpoint_whole(job_id, SLOW["seed"])
    assert reached >= 5
    assert jobs.retry(job_id) == job_id
    done = wait_for(lambda: settled(job_id, "succeeded"), timeout=30, what="the retried job to finish")
    assert done.attempts == 2 and done.error is None
    assert done.result["resumed_from"] == reached and done.result["runs"] == 2
    assert done.result["value"] == expected_value(SLOW["seed"], SLOW["steps"])
    with pytest.raises(jobs.InvalidConfig, match="only a failed or cancelled job"):
        jobs.retry(job_id)


def test_runner_sigkill_requeues_when_configured(lab):
    lab.setenv("FOOLING_LAB_ON_CRASH", "requeue")
    lab.start_consumer(workers=1)
    job_id = jobs.submit("selftest", SLOW)
    record = wait_for(lambda: running_with_progress(job_id, 5), what="progress")
    os.kill(record.runner_pid, signal.SIGKILL)
    done = wait_for(lambda: settled(job_id, "succeeded"), timeout=30, what="the requeued job to finish")
    assert done.attempts == 2 and done.result["runs"] == 2 and done.result["resumed_from"] >= 5
    assert done.result["value"] == expected_value(SLOW["seed"], SLOW["steps"])
    assert any("requeued" in line for line in jobs.logs(job_id))


def test_consumer_sigkill_then_restart_loses_and_duplicates_nothing(lab):
    lab.setenv("FOOLING_LAB_ON_CRASH", "requeue")
    consumer = lab.start_consumer(workers=1)
    job_id = jobs.submit("selftest", SLOW)
    behind = [jobs.submit("selftest", {"seed": s, "steps": 1, "probe_torch": False}) for s in range(3)]
    record = wait_for(lambda: running_with_progress(job_id, 5), what="progress")
    consumer.send_signal(signal.SIGKILL)
    consumer.wait(timeout=5)
    wait_for(
        lambda: pid_gone(record.runner_pid), timeout=3, what="the orphaned runner to die with its consumer"
    )
    assert jobs.get(job_id).state == "running"  # nobody has noticed yet
    reached = assert_checkpoint_whole(job_id, SLOW["seed"])
    lab.start_consumer(workers=2)  # on start it recovers jobs of dead consumers on this host
    done = wait_for(lambda: settled(job_id, "succeeded"), timeout=40, what="the recovered job to finish")
    assert done.attempts == 2 and done.result["runs"] == 2 and done.result["resumed_from"] >= reached
    assert done.result["value"] == expected_value(SLOW["seed"], SLOW["steps"])
    for seed, other in enumerate(behind):
        finished = wait_for(lambda o=other: settled(o, "succeeded"), timeout=20, what="queued jobs")
        assert finished.attempts == 1 and finished.result["value"] == expected_value(seed, 1)
    assert len([r for r in jobs.list_jobs() if r.state == "running"]) == 0
