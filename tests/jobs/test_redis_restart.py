"""A Redis restart while jobs run (a real redis-server with its append-only file on, stopped and started
again on the same port): no job is lost or runs twice, the workers carry on by themselves, and while
the server is down the app hears "queue unavailable" instead of a redis traceback."""

from __future__ import annotations

import time

import pytest

from backend import jobs
from backend.errors import QueueUnavailable
from backend.jobs.job import expected_value
from backend.jobs.workers import alive_workers
from backend.services import job_follow
from backend.services.status import lab_status
from tests.jobs.conftest import HEARTBEAT_TIMEOUT_S, wait_for

SLOW = {"steps": 30, "sleep_s": 0.15, "probe_torch": False}


def settled(job_id: str):
    record = jobs.get(job_id)
    return record if record.done and record.runner_pid is None else None


@pytest.mark.redis
def test_a_redis_restart_while_jobs_run_loses_none_runs_none_twice(lab, redis_server):
    lab.setenv("FOOLING_LAB_QUEUE_URL", redis_server.url)
    consumers = [lab.start_consumer(workers=2), lab.start_consumer(workers=1)]
    wait_for(lambda: len(alive_workers()) == 2, what="both consumers to announce themselves")
    running = [jobs.submit("selftest", SLOW | {"seed": s}) for s in range(2)]
    behind = [jobs.submit("selftest", {"seed": 10 + s, "steps": 2, "probe_torch": False}) for s in range(3)]
    wait_for(
        lambda: all((jobs.get(i).progress.step or 0) >= 3 for i in running[:2]),
        what="two jobs to be running with progress",
    )

    redis_server.stop()
    for call in (jobs.list_jobs, lambda: job_follow.status(running[0]), lambda: jobs.submit("selftest", {})):
        with pytest.raises(QueueUnavailable, match="job queue is unavailable"):
            call()
    status = lab_status()
    assert not status.queue_ok and "job queue is unavailable" in status.message
    time.sleep(float(HEARTBEAT_TIMEOUT_S) + 1.5)  # longer than the heartbeat timeout: no beat was possible
    redis_server.start()

    records = {
        i: wait_for(lambda i=i: settled(i), timeout=60, what=f"{i} to finish") for i in running + behind
    }
    seeds = {i: 10 + k for k, i in enumerate(behind)} | dict(zip(running, range(2)))
    for job_id, record in records.items():
        steps = record.config["steps"]
        assert record.state == "succeeded", (job_id, record.error, jobs.logs(job_id))
        assert record.attempts == 1 and record.result["runs"] == 1  # never lost, never run again
        assert record.result["value"] == expected_value(seeds[job_id], steps)
        assert len([line for line in jobs.logs(job_id) if "started on" in line]) == 1
        assert {p.step for p in record.history} == set(range(1, steps + 1))
    assert all(c.poll() is None for c in consumers)  # the workers rode it out
    wait_for(lambda: len(alive_workers()) == 2, what="both consumers to announce themselves again")
    after = jobs.submit("selftest", {"seed": 99, "probe_torch": False})  # the queue works as before
    assert wait_for(lambda: settled(after), what="a job after the restart").state == "succeeded"
