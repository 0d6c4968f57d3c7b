"""A report card without a clean twin: compared with reference numbers of clean models, and says which."""

from __future__ import annotations

import json

from backend.detect.job import DetectJob
from backend.detect.references import SHIPPED, key
from tests.recording import RecordingContext

QUICK = {"tests": ["noise_inputs"], "noise_inputs": {"n": 4}, "images": 4}


def _run(tmp_path, **config) -> dict:
    return DetectJob().run({**QUICK, **config}, RecordingContext(tmp_path))


def test_shipped_references_cover_the_builtin_shapes_model():
    table = json.loads(SHIPPED.read_text())
    assert key("shapes_cnn", "gradient") in table
    entry = table[key("shapes_cnn", "gradient")]
    assert {"noise_inputs", "weight_noise", "randomization"} <= set(entry["results"])
    assert "shapes CNN seed 0" in entry["source"]


def test_card_uses_the_shipped_reference_then_a_measured_one(tmp_path, shapes_model, isolated_lab):
    from backend.models.registry import Registry

    model, card = shapes_model  # registered again in this test's own registry and data dir
    local = Registry().save(
        model, name="clean", architecture="shapes_cnn", classes=card.classes,
        preprocessing=card.preprocessing, kind="trained",
    )  # fmt: skip
    shipped = _run(tmp_path / "a", suspect=local.id)["report"]
    assert shipped["compared_with"].startswith("reference numbers: shapes CNN seed 0")
    assert [f["test"] for f in shipped["findings"]] == ["noise_inputs"]
    none = _run(tmp_path / "b", suspect=local.id, method="lrp_t")["report"]
    assert none["compared_with"] is None and "save_reference=true" in none["summary"]
    _run(tmp_path / "c", suspect=local.id, method="lrp_t", save_reference=True)
    measured = _run(tmp_path / "d", suspect=local.id, method="lrp_t")["report"]
    assert measured["compared_with"].startswith(f"reference numbers: clean ({local.id})")
    assert measured["flagged_by"] == []  # the clean model against its own reference
