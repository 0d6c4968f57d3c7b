"""What the defences do to the shapes CNN (short runs, shared per session): robustness, gradient norm,
alignment against epsilon, and the "does the defence stop the fooling" table for every defence."""

from __future__ import annotations

import pytest
import torch

from backend.defend.defences import DEFENCES
from tests.defend.conftest import RUNS, l2_run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def held_out(shapes_model):
    from backend.data.shapes import make_shapes
    from backend.models.preprocessing import Preprocessing

    _, card = shapes_model
    pre = Preprocessing.from_dict(card.preprocessing)
    x01, y, _ = make_shapes(128, 64, 4242)
    return pre.normalize(x01), y, pre


def test_every_defence_trains_and_its_card_records_the_defence_and_its_parent(shapes_model, all_defended):
    base, card = shapes_model
    assert set(all_defended) == set(DEFENCES)
    for name, (model, dcard) in all_defended.items():
        assert dcard.kind == "defended" and dcard.parent == card.id
        assert dcard.config["defence"] == name and dcard.config["steps"] == RUNS[name]["steps"]
        assert set(dcard.config["params"]) == set(DEFENCES[name].params)
        assert {"val_accuracy", "val_accuracy_before", "val_grad_norm", "val_grad_norm_before"} <= set(
            dcard.metrics
        )
        moved = any(
            not torch.equal(a, b) for a, b in zip(model.state_dict().values(), base.state_dict().values())
        )
        assert moved, name
    assert all_defended["alignment"][1].config["params"]["reference"] == all_defended["pgd_l2"][1].id


def test_pgd_linf_training_raises_accuracy_under_attack_by_20_points(shapes_model, all_defended, held_out):
    from backend.defend.pgd import robust_accuracy

    x, y, pre = held_out
    base, _ = shapes_model
    model, card = all_defended["pgd_linf"]
    p = card.config["params"]
    attack = {"norm": "linf", "epsilon": p["epsilon"], "step_size": p["step_size"], "iterations": 10}
    torch.manual_seed(0)
    before = robust_accuracy(base, x, y, pre, **attack)
    torch.manual_seed(0)
    after = robust_accuracy(model, x, y, pre, **attack)
    print(f"accuracy under PGD-linf {p['epsilon'] * 255:.0f}/255: base {before:.3f} -> defended {after:.3f}")
    assert after >= before + 0.20, (before, after)


def test_the_alignment_metric_rises_with_the_pgd_l2_epsilon(shapes_model, defended, held_out):
    from backend.defend.gradients import pixel_gradient
    from backend.metrics.alignment import alignment

    x, y, pre = held_out
    models = [shapes_model[0]] + [defended("pgd_l2", **l2_run(eps))[0] for eps in (0.1, 0.2, 0.3)]
    values = [
        float(alignment(pre.denormalize(x), pixel_gradient(m, x, y, pre, create_graph=False)).mean())
        for m in models
    ]
    print("alignment at epsilon 0 / 0.1 / 0.2 / 0.3:", [round(v, 3) for v in values])
    assert all(b > a for a, b in zip(values, values[1:])), values


def test_jacobian_halves_the_input_gradient_at_three_points_or_less(shapes_model, all_defended, held_out):
    from backend.defend.gradients import gradient_norm

    x, y, pre = held_out
    base, _ = shapes_model
    model, _ = all_defended["jacobian"]
    norms = [gradient_norm(m, x, y, pre) for m in (base, model)]
    with torch.no_grad():
        acc = [float((m(x).argmax(1) == y).float().mean()) for m in (base, model)]
    print(f"gradient norm {norms[0]:.2f} -> {norms[1]:.2f}, clean accuracy {acc[0]:.3f} -> {acc[1]:.3f}")
    assert norms[1] <= norms[0] / 2, norms
    assert acc[1] >= acc[0] - 0.03, acc


def test_defence_vs_fooling_table_has_every_defence(shapes_model, all_defended):
    """Location / Grad-CAM on the base and on every defended model; the numbers are what they are."""
    from backend.defend.evaluate import evaluate_defences, format_result

    _, card = shapes_model
    ids = [c.id for _, c in all_defended.values()]
    fooling = {
        "steps": 20,
        "val_every": 10,
        "val_size": 64,
        "dataset": {"kind": "shapes", "n": 512, "seed": 1},
    }
    result = evaluate_defences(
        {"base": card.id, "defended": ids, "sections": ["fooling"], "fooling": fooling}
    )
    rows = result["fooling"]["rows"]
    assert list(rows) == [card.id, *ids]
    for r in rows.values():
        assert 0.0 <= r["fsr"] <= 1.0 and r["fooled"]
        assert r["top1_cost"] == pytest.approx(r["top1_before"] - r["top1_after"])
        assert r["steps_to_reach"] in (None, 10, 20) and [s for s, _ in r["curve"]] == [10, 20]
    table = format_result(result)
    print(table)
    assert all(name in table for name in DEFENCES) and "base" in table
