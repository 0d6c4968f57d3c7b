"""Invalid configs are refused with actionable messages; a crashed run resumes to the same end."""

from __future__ import annotations

import pytest
import torch

from backend.errors import InvalidConfig
from backend.fool.config import FoolConfig
from backend.fool.trainer import run_fooling
from backend.models.registry import Registry

DATA = {"kind": "shapes", "n": 48, "seed": 3}


def _cfg(card_id: str, **kw) -> dict:
    return {"model": card_id, "dataset": DATA, "attack": "location", "interpreter": "gradcam", **kw}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"model": "no-such-checkpoint"}, "Unknown model"),
        ({"lambda": -1}, "lambda must be >= 0"),
        ({"interpreter": "occlusion"}, "cannot be differentiated"),
        ({"interpreter": "magic"}, "Unknown explanation method"),
        ({"attack": "teleport"}, "Unknown attack"),
        ({"attack_params": {"mask": [[0.0, 1.0], [1.0, 0.0]]}}, "draw or upload"),
        ({"interpreter_params": {"nonsense": 1}}, "has no parameter"),
        ({"classification": "vibes"}, "classification must be one of"),
        ({"lr": 0}, "learning rate"),
        ({"attack": "active", "attack_params": {"c1": 0, "c2": 99}}, "class indices"),
        ({"keep_best": True}, "set val_every"),
    ],
)
def test_invalid_configs_are_refused(shapes_model, change, message):
    _, card = shapes_model
    with pytest.raises(InvalidConfig, match=message):
        FoolConfig.from_dict({**_cfg(card.id), **change}).validate(Registry())


def test_missing_dataset_and_unknown_keys_are_refused():
    with pytest.raises(InvalidConfig, match="dataset"):
        FoolConfig.from_dict({"model": "x"})
    with pytest.raises(InvalidConfig, match="Unknown fooling setting"):
        FoolConfig.from_dict({"model": "x", "dataset": DATA, "learning_rate": 1})


def test_round_trip_through_dict():
    cfg = FoolConfig.from_dict({"model": "m", "dataset": DATA, "lambda": 2.5, "attack_params": {"k": 0.2}})
    assert cfg.lam == 2.5 and FoolConfig.from_dict(cfg.to_dict()) == cfg


class _Crash(RuntimeError):
    pass


@pytest.mark.parametrize("keep_best", [False, True])
def test_a_resumed_run_ends_where_an_uninterrupted_one_does(shapes_model, tmp_path, keep_best):
    """With keep_best the best validation so far is part of the saved state, so the kept weights agree."""
    _, card = shapes_model
    cfg = _cfg(card.id, steps=6, batch_size=8, lr=1e-3, lam=5.0, checkpoint_every=2, val_size=8, seed=11)
    if keep_best:
        cfg.update(keep_best=True, val_every=1, lr=3e-2)  # a large step: validations go up and down
    straight = run_fooling(cfg, state_dir=tmp_path / "a")

    def crash_at_5(p):
        if p.done == 5:
            raise _Crash()

    with pytest.raises(_Crash):
        run_fooling(cfg, progress=crash_at_5, state_dir=tmp_path / "b")
    state = torch.load(tmp_path / "b" / "fool_state.pt", weights_only=True)
    assert state["step"] == 4  # the last state written before the crash
    seen: list[int] = []
    resumed = run_fooling(cfg, progress=lambda p: seen.append(p.done), state_dir=tmp_path / "b")
    assert seen[0] == 5  # it continued, it did not start over
    reg = Registry()
    a, _ = reg.load(straight.id, device="cpu")
    b, _ = reg.load(resumed.id, device="cpu")
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.allclose(pa, pb, atol=1e-6, rtol=0), name
    assert straight.metrics["kept_step"] == resumed.metrics["kept_step"]
    parent, _ = reg.load(card.id, device="cpu")
    assert any(
        not torch.equal(pa, p0) for pa, p0 in zip(a.state_dict().values(), parent.state_dict().values())
    )


def test_a_state_of_another_config_is_refused(shapes_model, tmp_path):
    _, card = shapes_model
    cfg = _cfg(card.id, steps=2, batch_size=4, checkpoint_every=1, val_size=4)
    run_fooling(cfg, state_dir=tmp_path)
    with pytest.raises(InvalidConfig, match="another config"):
        run_fooling({**cfg, "lr": 0.5}, state_dir=tmp_path)


def test_keep_best_ends_with_the_weights_of_the_best_validation(shapes_model):
    """The saved model is the best of the periodic validations (FSR, then agreement) on the images that
    chose it; its card reports numbers measured on other held-out images, and says how many."""
    import copy

    from backend.fool.data import load_fooling_data
    from backend.fool.losses import FOOLING_ATTACKS
    from backend.fool.objective import Interpreter
    from backend.fool.trainer import held_out_metrics

    _, card = shapes_model
    cfg = _cfg(card.id, attack="center_mass", steps=60, batch_size=16, lr=3e-2, lam=3.0, val_every=10)
    cfg.update(keep_best=True, val_size=64, dataset={"kind": "shapes", "n": 512, "seed": 1})
    vals: dict[int, dict] = {}

    fooled = run_fooling(
        cfg, progress=lambda p: vals.update({p.done: p.extra["val"]}) if "val" in p.extra else None
    )
    periodic = [vals[s] for s in range(10, 60, 10)]
    kept = fooled.metrics["kept_step"]
    assert kept in (10, 20, 30, 40, 50, 60)

    reg = Registry()
    fooled_checkpoint = reg.get(fooled.id, device="cpu")
    model = fooled_checkpoint.fresh_model()
    original, _ = reg.load(card.id, device="cpu")
    data = load_fooling_data(FoolConfig.from_dict(cfg), fooled_checkpoint, torch.device("cpu"))
    attack = FOOLING_ATTACKS["center_mass"]
    args = (model.eval(), copy.deepcopy(original).eval(), data, attack, attack.setup({}, 64, 5))
    chooser = held_out_metrics(*args, Interpreter("gradcam", {}), 16)
    assert all((chooser["fsr"], chooser["agreement"]) >= (v["fsr"], v["agreement"]) for v in periodic)
    if kept < 60:
        assert (chooser["fsr"], chooser["agreement"]) == (vals[kept]["fsr"], vals[kept]["agreement"])
    report = held_out_metrics(*args, Interpreter("gradcam", {}), 16, images=(data.report_x, data.report_y))
    assert report["fsr"] == pytest.approx(fooled.metrics["val_fsr"])
    assert report["agreement"] == pytest.approx(fooled.metrics["val_agreement"])
    # 512 images, 20% held out = 102: 51 chose the weights, the other 51 report the result
    assert fooled.metrics["val_select_images"] == fooled.metrics["val_report_images"] == 51
    assert fooled.metrics["val_held_out"] == 102 and fooled.metrics["val_maps"] == "relu"
    flat = lambda t: {tuple(row.flatten()[:64].tolist()) for row in t}  # noqa: E731
    assert not flat(data.val_x) & flat(data.report_x)
