"""Resumable state: written by time in a background thread (the loop only copies), atomically; keep_best
weights wait on disk; a run killed with SIGKILL resumes from its last state and ends where an
uninterrupted run ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from backend.fool import state as state_mod
from backend.fool.state import STATE_FILE, StateWriter
from backend.fool.trainer import run_fooling
from backend.models.registry import Registry

DATA = {"kind": "shapes", "n": 48, "seed": 3}
ROOT = Path(__file__).resolve().parents[2]


def _cfg(card_id: str, **kw) -> dict:
    return {"model": card_id, "dataset": DATA, "attack": "location", "interpreter": "gradcam", **kw}


def _weights(card_id: str) -> dict[str, torch.Tensor]:
    model, _ = Registry().load(card_id, device="cpu")
    return model.state_dict()


class _Stop(RuntimeError):
    pass


def test_state_is_written_by_time_and_at_the_end(shapes_model, tmp_path):
    _, card = shapes_model
    cfg = _cfg(card.id, steps=5, batch_size=8, val_size=8, lr=1e-3)

    def stop_at_4(p):
        if p.done == 4:
            raise _Stop()

    with pytest.raises(_Stop):  # every 10 minutes: nothing was due before step 4
        run_fooling({**cfg, "state_every_s": 600}, progress=stop_at_4, state_dir=tmp_path / "slow")
    assert not (tmp_path / "slow" / STATE_FILE).exists()
    with pytest.raises(_Stop):  # due at every step: the state of step 4 was handed over before the report
        run_fooling({**cfg, "state_every_s": 1e-6}, progress=stop_at_4, state_dir=tmp_path / "fast")
    assert torch.load(tmp_path / "fast" / STATE_FILE, weights_only=True)["step"] == 4
    run_fooling({**cfg, "state_every_s": 600}, state_dir=tmp_path / "slow")  # and at the end
    assert torch.load(tmp_path / "slow" / STATE_FILE, weights_only=True)["step"] == 5
    assert sorted(p.name for p in (tmp_path / "slow").iterdir()) == [STATE_FILE]  # no temp files left


def test_keep_best_weights_live_on_disk(shapes_model, tmp_path):
    _, card = shapes_model
    cfg = _cfg(card.id, steps=6, batch_size=8, val_size=8, lr=3e-2, lam=5.0, val_every=1, keep_best=True)
    seen: list[set[str]] = []

    def look(p):
        if "val" in p.extra:
            seen.append({p.name for p in (tmp_path / "s").iterdir() if p.name.startswith("best-")})

    fooled = run_fooling(cfg, progress=look, state_dir=tmp_path / "s")
    assert all(len(names) <= 2 for names in seen) and any(seen)  # the newest best (and the one in use)
    state = torch.load(tmp_path / "s" / STATE_FILE, weights_only=True)
    kept = fooled.metrics["kept_step"]
    assert set(state["best"]) == {"step", "val"}  # the state names the step; the weights are a file
    if kept < 6:
        best = state_mod.load_best(tmp_path / "s", kept)
        assert all(torch.equal(best[k], v) for k, v in _weights(fooled.id).items())


def test_the_loop_waits_only_for_the_copy(tmp_path, monkeypatch):
    real_save = torch.save

    def slow_save(obj, path):
        time.sleep(0.4)
        real_save(obj, path)

    monkeypatch.setattr(state_mod.torch, "save", slow_save)
    writer = StateWriter(tmp_path)
    began = time.perf_counter()
    writer.submit_state({"step": 1, "w": torch.zeros(3)})
    assert time.perf_counter() - began < 0.2  # handed over; the thread writes
    assert not (tmp_path / STATE_FILE).exists()
    writer.close()
    assert torch.load(tmp_path / STATE_FILE, weights_only=True)["step"] == 1
    assert writer.written == 1 and writer.last_write_s >= 0.4


_CHILD = """
import sys, time
from backend.fool.trainer import run_fooling
cfg = {cfg!r}
run_fooling(cfg, progress=lambda info: time.sleep(0.3), state_dir=sys.argv[1])
"""


@pytest.mark.slow
def test_a_killed_run_resumes_from_its_last_state(shapes_model, tmp_path):
    _, card = shapes_model
    cfg = _cfg(card.id, steps=8, batch_size=8, val_size=8, lr=1e-3, lam=5.0, seed=5, state_every_s=1e-6)
    straight = run_fooling(cfg)
    state_dir = tmp_path / "state"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD.format(cfg=cfg), str(state_dir)], env=env, cwd=ROOT
    )
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            path = state_dir / STATE_FILE
            if path.exists() and torch.load(path, weights_only=True)["step"] >= 3:
                break
            assert child.poll() is None, "the run ended before it could be killed"
            time.sleep(0.1)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(30)
    finally:
        if child.poll() is None:
            child.kill()
    left = torch.load(state_dir / STATE_FILE, weights_only=True)["step"]
    assert 3 <= left < 8
    seen: list[int] = []
    resumed = run_fooling(cfg, progress=lambda p: seen.append(p.done), state_dir=state_dir)
    assert seen[0] == left + 1
    a, b = _weights(straight.id), _weights(resumed.id)
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-6
