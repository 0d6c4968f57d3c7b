"""Both job kinds through the real queue: a consumer subprocess runs them on the shapes CNN and its
fooled copy, reports progress, publishes results and maps, and a running job can be cancelled."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from backend import jobs
from backend.config import REPO_ROOT
from backend.services import detect as view
from tests.detect.conftest import METHOD, SESSION_MODELS


@pytest.fixture
def consumer(tmp_path, monkeypatch, fooled_shapes):
    """A worker (`python -m backend worker`) on a fresh data dir, reading the session registry."""
    monkeypatch.setenv("FOOLING_LAB_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("FOOLING_LAB_MODELS", str(SESSION_MODELS))
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
def test_detect_and_decoys_jobs_run_report_progress_and_cancel(consumer, fooled_shapes, page):
    _, log = consumer
    _, card, _, fooled = fooled_shapes
    size = card.preprocessing["size"]
    detect_id = jobs.submit(
        "detect",
        {
            "suspect": fooled.id,
            "baseline": card.id,
            "method": METHOD,
            "tests": ["noise_inputs", "weight_noise", "reference"],
            "dataset": {"kind": "shapes", "n": 6, "size": size, "seed": 5},
            "images": 6,
            "noise_inputs": {"n": 8},
            "weight_noise": {"sigmas": [0.0, 0.01], "seeds": [0]},
        },
    )
    decoys_id = jobs.submit(
        "decoys",
        {
            "checkpoint": fooled.id,
            "baseline": card.id,
            "method": METHOD,
            "dataset": {"kind": "shapes", "n": 1, "size": size, "seed": 5},
            "images": 1,
            "decoys": {"patch": size // 2, "stride": size // 2},
        },
    )
    record = _wait(detect_id, ("succeeded", "failed"), log)
    assert record.state == "succeeded", record.error
    assert record.progress.fraction == 1.0
    res = record.result
    # the engine-fooled suspect against its own parent: the noise-input test flags it
    assert res["suspect"]["noise_inputs"]["pcc_mean"] > res["baseline"]["noise_inputs"]["pcc_mean"]
    assert "noise_inputs" in res["report"]["flagged_by"]
    assert res["baseline"]["reference"]["pearson"] == pytest.approx(1.0, abs=1e-4)  # itself
    assert res["suspect"]["reference"]["pearson"] < 0.9
    assert view.weight_noise_series(res, "agreement")["suspect"][0] == (0.0, 1.0)
    maps = view.load_maps(detect_id)
    assert maps["suspect/noise_maps"].shape == (6, size, size)
    open_page, _ = page
    at = open_page("pages/detect.py", {"suspect": fooled.id})  # the finished run renders without errors
    assert not at.error and any("noise_inputs" in m.value for m in at.markdown)

    record = _wait(decoys_id, ("succeeded", "failed"), log)
    assert record.state == "succeeded", record.error
    summary = record.result["summary"]
    assert summary["all_constraints_ok"] is True
    row = record.result["rows"][0]
    assert row["decoys"] == 8 and row["iterations_per_decoy"] >= 1
    assert -1 <= row["pcc_enhanced_to_baseline"] <= 1
    assert record.series("fidelity_raw")[0] == [1]  # one progress point with metrics per image
    assert view.load_maps(decoys_id)["0/enhanced"].shape == (size, size)
    at = open_page("pages/decoys.py", {"checkpoint": fooled.id})
    assert not at.error and len(at.dataframe) == 2

    slow_id = jobs.submit(
        "decoys",
        {
            "checkpoint": card.id,
            "dataset": {"kind": "shapes", "n": 8, "size": size, "seed": 6},
            "images": 8,
            "decoys": {"patch": 4, "stride": 4, "steps": 400, "paper_stop": False},
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


@pytest.mark.slow
def test_input_attacks_and_blur_decoys_run_in_a_queued_job(consumer, fooled_shapes):
    _, log = consumer
    _, card, _, _ = fooled_shapes
    size = card.preprocessing["size"]
    eps = 8 / 255
    job_id = jobs.submit(
        "decoys",
        {
            "checkpoint": card.id,
            "method": "gradient",
            "generator": "blur",
            "dataset": {"kind": "shapes", "n": 2, "size": size, "seed": 8},
            "images": 2,
            "decoys": {"patch": 16, "stride": 16},
            "attacks": ["topk", "target_region", "mass_center"],
            "attack": {"epsilon": eps, "steps": 4, "step_size": 2 / 255},
        },
    )
    record = _wait(job_id, ("succeeded", "failed"), log)
    assert record.state == "succeeded", record.error
    rows, summary = record.result["rows"], record.result["summary"]
    maps = view.load_maps(job_id)
    for i, row in enumerate(rows):
        assert row["decoys"] == 16 and row["iterations_per_decoy"] == 0  # blurred, not optimised
        for attack in ("topk", "target_region", "mass_center"):
            # each attack stays in its budget, keeps the class, and its sensitivities are measured
            assert 0 < row[f"{attack}/linf"] <= eps + 1e-6
            assert row[f"{attack}/label_kept"] is True
            assert row[f"{attack}/ss_raw"] >= 0 and row[f"{attack}/ss_enhanced"] >= 0
            moved = maps[f"{i}/{attack}/image"] - maps[f"{i}/image"]
            assert abs(abs(moved).max() - row[f"{attack}/linf"]) < 1e-5
            assert maps[f"{i}/{attack}/enhanced"].shape == (size, size)
    assert summary["all_topk_label_kept"] and summary["all_mass_center_label_kept"]
    # progress moved through each image's stages: decoys, then each attack
    stages = [m[1] for line in jobs.logs(job_id) if (m := re.search(r"image \d+/2: (\w+) done", line))]
    assert stages == ["decoys", "topk", "target_region", "mass_center"] * 2
    history = jobs.get(job_id).history
    assert [p.step for p in history if p.metrics] == [1, 2]
    assert record.progress.fraction == 1.0
