"""The tabular area through its doors: the job kinds (a user's CSV round trip: upload, train, fool,
report), the command line, the Tabular page, and image pages that do not offer table models."""

from __future__ import annotations

import json

import numpy as np
import pytest

from backend.errors import IncompatibleCheckpoint, InvalidConfig
from backend.jobs.kinds import get_kind
from backend.tabular.synthetic import make_synthetic
from tests.detect.fixtures import single_thread
from tests.recording import RecordingContext
from tests.tabular.conftest import SYNTHETIC, SYNTHETIC_FOOL, SYNTHETIC_TRAIN
from tests.tabular.test_fairwashing import check_bars
from tests.ui.helpers import ROOT, messages


def synthetic_csv() -> bytes:
    """The synthetic table as a user would export it: a header, numbers with 6 decimals, text labels."""
    t = make_synthetic(SYNTHETIC["n"], SYNTHETIC["seed"], SYNTHETIC["effect"], SYNTHETIC["noise"])
    lines = [",".join([*t.features, "outcome"])]
    for i in range(len(t)):
        cells = [f"{t.columns[c][i]:.6f}" if c in t.numeric else t.columns[c][i] for c in t.features]
        lines.append(",".join([*cells, t.classes[t.target[i]]]))
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture(scope="module")
def csv_models(tmp_path_factory) -> dict:
    """Upload -> train (with and without `group`) -> fool -> report, each through its job kind."""
    root = tmp_path_factory.mktemp("csv_jobs")
    with single_thread():  # module scope: set up before the autouse one-thread fixture applies
        return _csv_models(root)


def _csv_models(root) -> dict:
    from backend.models.registry import Registry
    from backend.services.tabular import save_upload

    path = save_upload(synthetic_csv(), "people.csv")
    data = {
        "kind": "csv",
        "path": str(path),
        "target": "outcome",
        "protected": ["group"],
        "test_fraction": 0.3,
    }
    train = {**SYNTHETIC_TRAIN, "data": data}
    results = {}
    for name, kind, config in (
        ("baseline", "tabular_train", train),
        ("without", "tabular_train", {**train, "drop_protected": True}),
    ):
        results[name] = get_kind(kind).run(get_kind(kind).validate(config), RecordingContext(root / name))
    fool = get_kind("tabular_fool").validate({**SYNTHETIC_FOOL, "model": results["baseline"]["checkpoint"]})
    ctx = RecordingContext(root / "fool")
    results["fooled"] = get_kind("tabular_fool").run(fool, ctx)
    assert (
        ctx.artifacts[0][:2] == ("checkpoint", results["fooled"]["checkpoint"])
        and ctx.reports[-1]["fraction"] == 1
    )
    report_cfg = {
        "suspect": results["fooled"]["checkpoint"],
        "baseline": results["baseline"]["checkpoint"],
        "without": results["without"]["checkpoint"],
        "tests": ["counterfactual", "accuracy_gap", "fairness"],
        "methods": ["gradient"],
    }
    report = get_kind("tabular_report").run(
        get_kind("tabular_report").validate(report_cfg), RecordingContext(root)
    )
    registry = Registry()
    return {**{k: registry.card(v["checkpoint"]) for k, v in results.items()}, "report": report}


def test_a_user_csv_round_trip_meets_the_same_bars(csv_models):
    numbers = check_bars(csv_models, ["group"])
    card = csv_models["baseline"]
    assert card.preprocessing["data"]["kind"] == "csv" and card.classes == ["no", "yes"]
    assert card.preprocessing["columns"][0] == {"name": "x1", "kind": "numeric", **{
        k: card.preprocessing["columns"][0][k] for k in ("mean", "std")}}  # fmt: skip
    assert abs(card.preprocessing["columns"][0]["std"] - 1) < 0.1  # standardisation stored on the card
    json.dumps(csv_models["report"])  # the job result is plain JSON
    print(f"\nCSV round trip: {numbers}")


def test_job_kinds_refuse_bad_configs_at_submit_time(shapes_model, synthetic_models):
    _, image_card = shapes_model
    with pytest.raises(IncompatibleCheckpoint, match="image model"):
        get_kind("tabular_fool").validate({"model": image_card.id})
    with pytest.raises(InvalidConfig, match="Unknown tabular preset"):
        get_kind("tabular_fool").validate({"model": synthetic_models["baseline"].id, "preset": "nope"})
    with pytest.raises(InvalidConfig, match="attack must be one of"):
        get_kind("tabular_fool").validate({"model": synthetic_models["baseline"].id, "attack": "location"})
    with pytest.raises(InvalidConfig, match="Unknown report test"):
        get_kind("tabular_report").validate({"suspect": synthetic_models["fooled"].id, "tests": ["vibes"]})
    with pytest.raises(InvalidConfig, match="Unknown train setting"):
        get_kind("tabular_train").validate({"epocs": 3})
    from backend.tabular.attack import run_tabular_fooling

    with pytest.raises(InvalidConfig, match="nothing to hide"):
        run_tabular_fooling({"model": synthetic_models["without"].id, "epochs": 1})
    with pytest.raises(InvalidConfig, match="differentiable method"):
        run_tabular_fooling({"model": synthetic_models["baseline"].id, "method": "occlusion", "epochs": 1})


def test_cli_trains_explains_fools_and_reports(capsys, tmp_path):
    from backend.__main__ import main

    assert main(["tabular", "train", "--data", "synthetic", "--epochs", "2", "--set", "data.n=300"]) == 0
    trained = json.loads(capsys.readouterr().out)
    assert trained["metrics"]["test_rows"] == 90 and trained["name"] == "synthetic MLP"
    assert main(["tabular", "explain", "--model", trained["checkpoint"], "--rows", "0,3"]) == 0
    out = capsys.readouterr().out
    assert "global importance (gradient)" in out and out.count("test row") == 2 and "group" in out
    assert main(["tabular", "fool", "--model", trained["checkpoint"], "--set", "epochs=1"]) == 0
    fooled = json.loads(capsys.readouterr().out)
    target = tmp_path / "report.json"
    args = ["tabular", "report", "--suspect", fooled["checkpoint"], "--baseline", trained["checkpoint"]]
    args += ["--set", 'tests=["counterfactual"]', "--set", 'methods=["gradient"]', "--json", str(target)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "flipping group changes" in out and "counterfactual/group" in out
    assert json.loads(target.read_text())["suspect"]["id"] == fooled["checkpoint"]
    assert main(["tabular", "explain", "--model", trained["checkpoint"], "--rows", "x"]) == 2


def test_image_pages_do_not_offer_table_models(synthetic_models, shapes_model):
    from backend.services.checkpoints import list_cards

    images, tables = {c.id for c in list_cards()}, {c.id for c in list_cards("tabular")}
    assert synthetic_models["baseline"].id in tables and synthetic_models["baseline"].id not in images
    assert shapes_model[1].id in images and shapes_model[1].id not in tables
    assert {c.id for c in list_cards(None)} >= images | tables


def test_tabular_page_compares_explains_and_queues_jobs(synthetic_models, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from backend import jobs

    monkeypatch.setenv("FOOLING_LAB_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("FOOLING_LAB_SEED_DEMO", "0")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    at.query_params["baseline"] = synthetic_models["baseline"].id
    at.query_params["fooled"] = synthetic_models["fooled"].id
    at.switch_page("pages/tabular.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not messages(at), messages(at)
    caption = next(c.value for c in at.caption if c.value.startswith("baseline: protected share"))
    base_share, fooled_share = [
        float(p.split("protected share ")[1].split("%")[0]) for p in caption.split(" · ")
    ]
    assert fooled_share <= 0.1 * base_share, caption
    assert len(at.dataframe) >= 3  # the person, and one counterfactual table per model
    counterfactual = at.dataframe[1].value
    assert set(counterfactual["attribute"]) == {"group"} and len(counterfactual) == 2
    # a bad fooling form is refused, a good one queued; a preset fills the form
    at.selectbox(key="tab_preset").set_value("thesis-target").run()
    assert at.selectbox(key="tab_attack").value == "target" and at.number_input(key="tab_lam").value == 100.0
    at.button(key="tab_fool_submit").click().run()
    (queued,) = jobs.list_jobs(kind="tabular_fool")
    assert queued.config["attack"] == "target" and queued.config["lr_schedule"] == "constant"
    at.button(key="tab_report_submit").click().run()
    assert jobs.list_jobs(kind="tabular_report")[0].config["method"] == "gradient"
    at.selectbox(key="tab_data").set_value("csv").run()
    at.button(key="tab_train_submit").click().run()
    assert any("upload a CSV" in m for m in messages(at)) and not jobs.list_jobs(kind="tabular_train")


def test_report_rows_for_the_page(synthetic_models):
    from backend.services.tabular import finding_rows, model_rows

    rows = finding_rows(synthetic_models["report"])
    assert {"test", "flagged", "verdict", "rule"} <= set(rows[0]) and any(r["flagged"] == "yes" for r in rows)
    table = model_rows(synthetic_models["report"])
    assert [r["model"] for r in table] == ["baseline", "suspect", "without"]
    assert table[1]["protected share % (gradient)"] < table[0]["protected share % (gradient)"]
    assert np.isfinite(table[0]["flip rate % (group)"])
