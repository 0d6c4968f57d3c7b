"""Embedded (SQLite) and distributed (Redis) queues: every job runs exactly once, with correct results."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from backend import jobs
from backend.jobs.job import expected_value
from backend.jobs.queue import enqueue
from tests.jobs.conftest import wait_for

N_JOBS, STEPS = 20, 2


def run_batch(submit_threads: int = 4) -> dict[int, jobs.JobRecord]:
    """Submit N_JOBS selftests from several threads, duplicate some queue messages, wait for all."""
    seeds = list(range(N_JOBS))
    with ThreadPoolExecutor(submit_threads) as pool:
        ids = list(
            pool.map(
                lambda s: jobs.submit("selftest", {"seed": s, "steps": STEPS, "probe_torch": False}), seeds
            )
        )
    for job_id in ids[::4]:
        enqueue(job_id)  # a queue may deliver a message twice: the claim must make that harmless

    def finished(job_id: str) -> bool:
        record = jobs.get(job_id)
        return record.done and record.runner_pid is None  # ended, and its runner reaped

    wait_for(lambda: all(finished(i) for i in ids), timeout=90, what="all jobs to finish")
    return {seed: jobs.get(job_id) for seed, job_id in zip(seeds, ids)}


def assert_ran_once_correctly(records: dict[int, jobs.JobRecord]) -> None:
    assert len({r.id for r in records.values()}) == N_JOBS
    for seed, record in records.items():
        assert record.state == "succeeded", (record.id, record.error)
        assert record.attempts == 1
        assert record.result["runs"] == 1  # the job's own tally in its state dir
        assert record.result["value"] == expected_value(seed, STEPS)
        assert [p.step for p in record.history] == list(range(1, STEPS + 1))
        assert record.progress.fraction == 1.0
        started = [line for line in jobs.logs(record.id) if "started on" in line]
        assert len(started) == 1, started
        assert record.runner_pid is None and record.started_at <= record.finished_at


def test_embedded_jobs_from_four_threads_run_exactly_once(lab):
    lab.start_consumer(workers=3)
    records = run_batch()
    assert_ran_once_correctly(records)
    assert len(jobs.list_jobs(state="succeeded", kind="selftest", limit=100)) == N_JOBS


@pytest.mark.redis
def test_distributed_two_consumers_share_work_and_match_embedded(lab, redis_url):
    embedded = {seed: expected_value(seed, STEPS) for seed in range(N_JOBS)}
    lab.setenv("FOOLING_LAB_QUEUE_URL", redis_url)
    lab.start_consumer(workers=2)
    lab.start_consumer(workers=2)
    records = run_batch()
    assert_ran_once_correctly(records)
    assert {seed: r.result["value"] for seed, r in records.items()} == embedded
    workers = {r.worker for r in records.values()}
    assert len(workers) == 2, workers  # both consumers took work
    assert not (lab.root / "data" / "jobs.sqlite3").exists()  # records went to Redis, not the local file
