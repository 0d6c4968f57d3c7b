"""The "fool" and "evaluate" job kinds through the kind registry, with a recording context."""

from __future__ import annotations

import pytest

from backend.errors import InvalidConfig
from backend.jobs.kinds import get_kind
from tests.recording import RecordingContext


def test_fool_and_evaluate_jobs_run_and_report(shapes_model, tmp_path):
    _, card = shapes_model
    fool = get_kind("fool")
    config = fool.validate(
        {"preset": "shapes-location-gradcam", "model": card.id, "steps": 4, "val_size": 16}
    )
    assert config["attack"] == "location" and config["steps"] == 4
    ctx = RecordingContext(tmp_path)
    result = fool.run(config, ctx)
    curves = [r["metrics"] for r in ctx.reports if "loss_f" in r["metrics"]]
    assert len(curves) == 4 and all({"loss", "loss_c", "loss_f"} <= set(m) for m in curves)
    assert ctx.reports[-1]["fraction"] == 1.0 and "val_fsr" in ctx.reports[-1]["metrics"]
    assert ctx.artifacts[0][:2] == ("checkpoint", result["checkpoint"])
    assert (ctx.state_dir / "fool_state.pt").is_file()

    evaluate = get_kind("evaluate")
    ev_cfg = evaluate.validate({"baseline": card.id, "fooled": result["checkpoint"], "images": 16})
    summary = evaluate.run(ev_cfg, RecordingContext(tmp_path / "ev"))
    assert set(summary["fsr"]) == {"gradcam", "gradient"}
    assert 0.0 <= summary["fsr"]["gradcam"]["location/gradcam"] <= 1.0


def test_jobs_refuse_bad_configs(shapes_model):
    _, card = shapes_model
    with pytest.raises(InvalidConfig, match="lambda"):
        get_kind("fool").validate({"preset": "shapes-location-gradcam", "model": card.id, "lam": -2})
    with pytest.raises(InvalidConfig, match="not a fooled|fooling config|Unknown checkpoint"):
        get_kind("evaluate").validate({"baseline": card.id, "fooled": card.id})


def test_fool_job_says_which_step_it_kept(shapes_model, tmp_path):
    _, card = shapes_model
    fool = get_kind("fool")
    config = fool.validate(
        {
            "model": card.id,
            "dataset": {"kind": "shapes", "n": 512, "seed": 1},
            "attack": "center_mass",
            "interpreter": "gradcam",
            "steps": 60,
            "batch_size": 16,
            "lr": 3e-2,
            "lam": 3.0,
            "val_every": 10,
            "val_size": 64,
            "keep_best": True,
        }
    )
    ctx = RecordingContext(tmp_path)
    result = fool.run(config, ctx)
    kept = result["metrics"]["kept_step"]
    assert kept in (10, 20, 30, 40, 50, 60)
    assert ("kept the weights of step" in ctx.reports[-1]["message"]) == (kept != 60)
    assert ctx.reports[-1]["metrics"]["val_fsr"] == result["metrics"]["val_fsr"]
