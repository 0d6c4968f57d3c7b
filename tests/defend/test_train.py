"""Defence training: settings checked before anything runs, every defence trains and its card says
what it is, a resumed run ends where an uninterrupted one does, the job kind reports and publishes."""

from __future__ import annotations

import pytest
import torch

from backend.defend.config import DefendConfig
from backend.defend.defences import DEFENCES
from backend.defend.params import describe
from backend.defend.pgd import pgd, project
from backend.errors import InvalidConfig
from backend.jobs.kinds import get_kind
from tests.defend.conftest import short
from tests.recording import RecordingContext


def test_every_defence_declares_its_settings_with_limits_and_help():
    assert set(DEFENCES) == {"pgd_linf", "pgd_l2", "distillation", "jacobian", "alignment", "atex"}
    for defence in DEFENCES.values():
        assert defence.label and defence.source
        spec = describe(defence.params)
        assert spec and all(p["help"] for p in spec.values())
        assert defence.check({}) if not defence.needs_reference else True


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"defence": "magic"}, "Unknown defence 'magic'"),
        ({"params": {"epsilon": -1}}, "epsilon must be >= 0"),
        ({"params": {"iterations": 2.5}}, "whole number"),
        ({"params": {"radius": 1}}, "no parameter.*radius"),
        ({"steps": 0}, "steps must be >= 1"),
        ({"defence": "alignment", "params": {}}, "needs a reference checkpoint"),
        ({"defence": "jacobian", "params": {"target": "logits"}}, "target must be one of logit, loss"),
    ],
)
def test_bad_settings_are_refused_with_what_to_change(change, message):
    with pytest.raises(InvalidConfig, match=message):
        DefendConfig.from_dict({"model": "m", **change}).validate()


def test_unknown_model_and_setting_are_refused(shapes_model):
    with pytest.raises(InvalidConfig, match="Unknown model 'nope'"):
        get_kind("defend").validate({"model": "nope", "defence": "pgd_linf"})
    with pytest.raises(InvalidConfig, match="Unknown defence setting"):
        get_kind("defend").validate({"model": shapes_model[1].id, "epochs": 3})


def test_pgd_stays_in_its_ball_and_in_the_pixel_range(shapes_model):
    from backend.defend.checkpoint import open_model

    model, card = shapes_model
    pre = open_model(card.id, "cpu").preprocessing
    torch.manual_seed(0)
    x01 = torch.rand(4, 3, 64, 64)
    x, y = pre.normalize(x01), torch.tensor([0, 1, 2, 3])
    for norm, eps in (("linf", 8 / 255), ("l2", 0.5)):
        adv01 = pre.denormalize(
            pgd(model, x, y, pre, norm=norm, epsilon=eps, step_size=eps / 2, iterations=3)
        )
        delta = adv01 - x01
        size = delta.abs().flatten(1).amax(1) if norm == "linf" else delta.flatten(1).norm(dim=1)
        assert (size <= eps + 1e-5).all() and adv01.min() >= -1e-6 and adv01.max() <= 1 + 1e-6
    big = torch.randn(2, 3, 8, 8) * 10
    assert torch.allclose(project(big, "l2", 1.0).flatten(1).norm(dim=1), torch.ones(2), atol=1e-5)
    assert not model.training and model.features[0].weight.grad is None


@pytest.mark.slow
def test_a_resumed_run_ends_where_an_uninterrupted_one_ends(shapes_model, tmp_path):
    """Distillation keeps its teacher in the resumable state (taken at step 3, saved at step 4)."""
    from backend.defend.trainer import run_defence

    _, card = shapes_model
    cfg = short("distillation", model=card.id, steps=6, checkpoint_every=2, batch_size=8, val_size=16)
    whole = run_defence(cfg, state_dir=tmp_path / "whole")

    class Stop(Exception):
        pass

    def stop_at_5(p):
        if p.done == 5 and "loss" in p.metrics:
            raise Stop

    with pytest.raises(Stop):
        run_defence(cfg, progress=stop_at_5, state_dir=tmp_path / "cut")
    resumed = run_defence(cfg, state_dir=tmp_path / "cut")
    assert resumed.sha256 == whole.sha256
    assert resumed.metrics == whole.metrics


@pytest.mark.slow
def test_the_defend_job_trains_reports_and_records_the_defence(shapes_model, tmp_path):
    from backend.models.registry import Registry

    _, base = shapes_model
    kind = get_kind("defend")
    config = kind.validate(short("pgd_linf", model=base.id, steps=4, batch_size=8, val_size=16))
    assert config["params"]["epsilon"] == pytest.approx(4 / 255) and config["steps"] == 4
    ctx = RecordingContext(tmp_path)
    result = kind.run(config, ctx)
    steps = [r for r in ctx.reports if "adv_ce" in r["metrics"]]
    assert len(steps) == 4 and ctx.reports[-1]["fraction"] == 1.0
    assert "val_accuracy" in ctx.reports[-1]["metrics"]
    assert ctx.artifacts[0][:2] == ("checkpoint", result["checkpoint"])
    card = Registry().card(result["checkpoint"])
    assert card.kind == "defended" and card.parent == base.id
    assert card.config["defence"] == "pgd_linf" and card.config["params"]["iterations"] == 5
    assert {"val_accuracy", "val_accuracy_before", "val_grad_norm", "val_grad_norm_before"} <= set(
        card.metrics
    )
