"""GPUs per job, on the CPU: workers announce a configured GPU count (FOOLING_LAB_GPUS), a job asking
for `devices` runs only on a worker with that many free, gets them as CUDA_VISIBLE_DEVICES, and the
Jobs page says why it waits. Real consumers on Huey's SQLite queue."""

from __future__ import annotations

import time

import pytest

from backend import jobs
from backend.jobs.gpus import GpuPool, fits, gpus_needed, wait_reason
from backend.jobs.workers import WorkerInfo, alive_workers
from backend.services import job_follow
from tests.jobs.conftest import wait_for


def settled(job_id: str, state: str):
    record = jobs.get(job_id)
    return record if record.state == state and record.runner_pid is None else None


def started_lines(job_id: str) -> list[str]:
    return [line for line in jobs.logs(job_id) if "started on" in line]


def test_a_job_needing_two_gpus_waits_for_a_worker_with_two_free_and_says_why(lab):
    cpu = lab.start_consumer(workers=2)
    wait_for(lambda: len(alive_workers()) == 1, what="the CPU worker to announce itself")
    big = jobs.submit("selftest", {"devices": 2, "probe_torch": False})
    small = jobs.submit("selftest", {"probe_torch": False})
    wait_for(lambda: settled(small, "succeeded"), what="a single-device job on the CPU worker")
    time.sleep(1.5)  # the CPU worker has looked at the big job (and passed it on) more than once
    record = jobs.get(big)
    assert (record.state, record.attempts, record.started_at) == ("queued", 0, None)
    assert job_follow.status(big).waiting == (
        "waiting for a worker with 2 free GPUs (none alive has that many); workers alive: 1 with 0 GPUs"
    )
    gpu = lab.start_consumer(workers=2, env={"FOOLING_LAB_GPUS": "2"})
    done = wait_for(lambda: settled(big, "succeeded"), what="the two-GPU job on the GPU worker")
    assert done.attempts == 1 and len(started_lines(big)) == 1  # ran once, nothing lost on the way
    assert done.worker.endswith(f":{gpu.pid}") and not done.worker.endswith(f":{cpu.pid}")
    assert done.result["visible_gpus"] == "0,1"
    assert job_follow.status(big).waiting is None
    workers = {w.pid: w for w in wait_for(lambda: len(alive_workers()) == 2 and alive_workers())}
    assert (workers[gpu.pid].gpus, workers[cpu.pid].gpus) == (2, 0)


def test_jobs_never_share_a_workers_gpus(lab):
    lab.start_consumer(workers=2, env={"FOOLING_LAB_GPUS": "2"})
    slow = {"devices": 2, "steps": 8, "sleep_s": 0.1, "probe_torch": False}
    ids = [jobs.submit("selftest", slow | {"seed": s}) for s in range(2)]
    done = [wait_for(lambda i=i: settled(i, "succeeded"), what="both two-GPU jobs") for i in ids]
    first, second = sorted(done, key=lambda r: r.started_at)
    assert second.started_at >= first.finished_at  # two threads, but only one job's worth of GPUs
    assert [r.result["visible_gpus"] for r in done] == ["0,1", "0,1"]
    assert all(r.attempts == 1 and len(started_lines(r.id)) == 1 for r in done)


@pytest.mark.parametrize(
    "config, needed",
    [
        ({}, 1),
        ({"devices": 4}, 4),
        ({"world_size": 2}, 2),
        ({"devices": 2, "device": "cpu"}, 0),  # data-parallel on CPU processes: no GPU needed
        ({"devices": 2, "device": "cuda:1"}, 0),  # pinned by the config itself
        ({"devices": 2, "device": "cuda"}, 2),
        ({"devices": "two"}, 1),  # the kind's validation names the error; the queue just never blocks
    ],
)
def test_gpus_needed_reads_devices_from_any_job_config(config, needed):
    assert gpus_needed(config) == needed


def test_gpu_pool_hands_out_free_gpus_by_their_visible_names():
    pool = GpuPool(3, visible="4,6,7")
    first = pool.take(2)
    assert pool.visible_devices(first) == "4,6" and pool.free == 1
    assert pool.take(2) is None  # one free: a two-GPU job waits
    second = pool.take(1)
    assert pool.visible_devices(second) == "7" and pool.free == 0
    pool.give(first)
    assert pool.free == 2 and pool.visible_devices(pool.take(2)) == "4,6"
    cpu = GpuPool(0)
    assert cpu.take(1) == [] and cpu.take(2) is None  # a CPU worker runs single-device jobs only
    assert fits(1, 0, 0) and not fits(2, 0, 0) and fits(2, 4, 2) and not fits(3, 4, 2)


def _worker(gpus: int, free: int, threads: int = 1, running: int = 0) -> WorkerInfo:
    return WorkerInfo("h:1", "h", 1, threads, "cuda" if gpus else "cpu", 0.0, 0.0, gpus, free, running)


def test_wait_reasons_name_what_is_missing():
    assert wait_reason(1, []).startswith("waiting for a worker: none is alive")
    assert wait_reason(2, [_worker(4, 1), _worker(4, 0)]) == (
        "waiting for a worker with 2 free GPUs; workers alive: 1 with 4 GPUs (0 free), 1 with 4 GPUs (1 free)"
    )
    assert wait_reason(1, [_worker(0, 0, threads=1, running=1)]).startswith("waiting for a free worker")
    assert wait_reason(1, [_worker(0, 0)]).startswith("waiting for a worker to pick it up")
