"""Both job kinds through the real queue: a consumer subprocess runs them, reports progress, publishes
results and maps, and a running job can be cancelled."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from backend import jobs
from backend.config import REPO_ROOT
from backend.detect import view


@pytest.fixture
def consumer(tmp_path, monkeypatch, tiny_registry):
    """A worker (`python -m backend worker`) on a fresh data dir, reading the tiny model's registry."""
    monkeypatch.setenv("FOOLING_LAB_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("FOOLING_LAB_MODELS", str(tiny_registry[0]))
    log = (tmp_path / "consumer.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "backend", "worker", "--workers", "1", "--quiet"],
        cwd=REPO_ROOT,
        env=dict(os.environ),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    yield proc, tmp_path / "consumer.log"
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()


def _wait(job_id: str, states: tuple[str, ...], log: Path, timeout: float = 240.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = jobs.get(job_id)
        if record.state in states:
            return record
        time.sleep(0.2)
    pytest.fail(
        f"{job_id} still {jobs.get(job_id).state}; consumer log:\n{log.read_text(errors='replace')[-2000:]}"
    )


@pytest.mark.slow
def test_detect_and_decoys_jobs_run_report_progress_and_cancel(consumer, tiny_registry, page):
    _, log = consumer
    _, _, card = tiny_registry
    size = card.preprocessing["size"]
    detect_id = jobs.submit(
        "detect",
        {
            "suspect": card.id,
            "baseline": card.id,
            "tests": ["noise_inputs", "weight_noise", "reference"],
            "dataset": {"kind": "shapes", "n": 4, "size": size, "seed": 5},
            "images": 4,
            "noise_inputs": {"n": 4},
            "weight_noise": {"sigmas": [0.0, 0.01], "seeds": [0]},
        },
    )
    decoys_id = jobs.submit(
        "decoys",
        {
            "checkpoint": card.id,
            "dataset": {"kind": "shapes", "n": 1, "size": size, "seed": 5},
            "images": 1,
            "decoys": {"patch": size // 2, "stride": size // 2, "steps": 5},
        },
    )
    record = _wait(detect_id, ("succeeded", "failed"), log)
    assert record.state == "succeeded", record.error
    assert record.progress.fraction == 1.0
    res = record.result
    # the same checkpoint as baseline and suspect: identical numbers, nothing flagged
    assert res["baseline"]["noise_inputs"]["pcc_mean"] == pytest.approx(
        res["suspect"]["noise_inputs"]["pcc_mean"]
    )
    assert res["suspect"]["reference"]["pearson"] == pytest.approx(1.0, abs=1e-4)
    assert res["report"]["flagged_by"] == []
    assert view.weight_noise_series(res, "agreement")["suspect"][0] == (0.0, 1.0)
    maps = view.load_maps(detect_id)
    assert maps["suspect/noise_maps"].shape == (4, size, size)
    open_page, _ = page
    at = open_page("pages/detect.py", {"suspect": card.id})  # the finished run renders without errors
    assert not at.error and any("No test flags" in m.value for m in at.markdown)

    record = _wait(decoys_id, ("succeeded", "failed"), log)
    assert record.state == "succeeded", record.error
    summary = record.result["summary"]
    assert summary["all_constraints_ok"] is True
    assert record.result["rows"][0]["decoys"] == 8
    assert record.series("fidelity_raw")[0] == [1]  # one progress point with metrics per image
    assert view.load_maps(decoys_id)["0/enhanced"].shape == (size, size)
    at = open_page("pages/decoys.py", {"checkpoint": card.id})
    assert not at.error and len(at.dataframe) == 2

    slow_id = jobs.submit(
        "decoys",
        {
            "checkpoint": card.id,
            "dataset": {"kind": "shapes", "n": 8, "size": size, "seed": 6},
            "images": 8,
            "decoys": {"patch": 4, "stride": 4, "steps": 400},
        },
    )
    running = _wait(slow_id, ("running",), log)
    assert running.runner_pid is not None
    jobs.cancel(slow_id)
    deadline = time.monotonic() + 20
    while jobs.get(slow_id).runner_pid is not None and time.monotonic() < deadline:
        time.sleep(0.2)
    final = jobs.get(slow_id)
    assert final.state == "cancelled" and final.runner_pid is None and final.result is None
