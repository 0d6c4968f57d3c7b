"""The defend_evaluate job kind, the Defend page's services and form, and the CLI."""

from __future__ import annotations

import json

import pytest

from backend import jobs
from backend.errors import InvalidConfig
from backend.jobs.kinds import get_kind
from backend.services import defend as svc
from tests.defend.conftest import RUNS, SESSION_MODELS
from tests.recording import RecordingContext
from tests.ui.helpers import messages


def test_defend_evaluate_refuses_bad_configs(shapes_model):
    kind = get_kind("defend_evaluate")
    with pytest.raises(InvalidConfig, match="Unknown section"):
        kind.validate({"base": shapes_model[1].id, "sections": ["vibes"]})
    with pytest.raises(InvalidConfig, match="Unknown method"):
        kind.validate({"base": shapes_model[1].id, "methods": ["random", "astrology"]})
    with pytest.raises(InvalidConfig, match="Unknown checkpoint 'gone'"):
        kind.validate({"base": shapes_model[1].id, "defended": ["gone"]})
    with pytest.raises(InvalidConfig, match="fractions must lie in"):
        kind.validate({"base": shapes_model[1].id, "road": {"fractions": [0.2, 1.5]}})


@pytest.mark.slow
def test_defend_evaluate_job_publishes_tables_the_page_reads(shapes_model, defended, tmp_path):
    _, card = shapes_model
    _, l2 = defended("pgd_l2", **RUNS["pgd_l2"])
    kind = get_kind("defend_evaluate")
    config = kind.validate(
        {
            "base": card.id,
            "defended": [l2.id],
            "sections": ["accuracy", "input_attacks", "alignment", "road"],
            "images": 12,
            "methods": ["random", "gradient"],
            "input_attacks": {"images": 2, "steps": 2, "attacks": ["topk"]},
            "road": {"fractions": [0.4], "orders": ["morf"]},
        }
    )
    ctx = RecordingContext(tmp_path)
    summary = kind.run(config, ctx)
    assert summary[card.id]["defence"] == "base" and summary[l2.id]["defence"] == "pgd_l2"
    assert [a[0] for a in ctx.artifacts] == ["table", "file"] and ctx.reports[-1]["fraction"] == 1.0
    result = json.loads(open(ctx.artifacts[1][1]).read())
    acc = svc.accuracy_rows(result)
    assert [r["model"] for r in acc] == ["base", "pgd_l2"] and "gradient Spearman vs base" in acc[1]
    assert [(r["model"], r["attack"]) for r in svc.input_attack_rows(result)] == [
        ("base", "topk"),
        ("pgd_l2", "topk"),
    ]
    assert list(svc.alignment_series(result)) == ["PGD-l2"]
    assert (
        svc.alignment_series(result)["PGD-l2"][0][0] == 0.0
        and svc.alignment_series(result)["PGD-l2"][1][0] == 0.3
    )
    road = svc.removal_series(result, "road")
    assert set(road) == {"base", "pgd_l2"} and [p[0] for p in road["base"]["gradient"]] == [0.0, 40.0]
    assert svc.fooling_rows(result) == [] and "ROAD accuracy" in ctx.artifacts[0][1]


def captions(at) -> list[str]:
    return [c.value for c in at.caption]


@pytest.fixture
def defend_page(tmp_path, monkeypatch, shapes_model):
    from streamlit.testing.v1 import AppTest

    from tests.ui.helpers import ROOT

    _, card = shapes_model
    monkeypatch.setenv("FOOLING_LAB_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("FOOLING_LAB_MODELS", str(SESSION_MODELS))
    monkeypatch.setenv("FOOLING_LAB_SEED_DEMO", "0")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    at.query_params["base"] = card.id
    at.switch_page("pages/defend.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at, card


def test_defend_page_builds_each_form_from_the_registry_and_queues_a_job(defend_page):
    at, card = defend_page
    assert list(at.selectbox(key="def_defence").options) == list(svc.defences().values())
    for name in svc.defences():  # every defence's form is built from its params
        at.selectbox(key="def_defence").set_value(name).run()
        assert not at.exception, (name, [e.value for e in at.exception])
        numeric = [
            p for p, d in svc.defence_info(name)["params"].items() if isinstance(d["default"], int | float)
        ]
        keys = {w.key for w in at.number_input} | {w.key for w in at.checkbox}
        assert {f"def_p_{name}_{p}" for p in numeric} <= keys, (name, keys)
    at.selectbox(key="def_defence").set_value("alignment").run()
    if not svc.reference_choices(card.id):  # no PGD-l2 model yet: the form says what to train first
        at.button(key="def_train_submit").click().run()
        assert jobs.list_jobs() == [] and any("reference" in m for m in messages(at)), messages(at)
    at.selectbox(key="def_defence").set_value("pgd_l2").run()
    at.number_input(key="def_p_pgd_l2_epsilon").set_value(0.25)
    at.number_input(key="def_steps").set_value(7)
    at.button(key="def_train_submit").click().run()
    assert not messages(at), messages(at)
    (queued,) = jobs.list_jobs(kind="defend")
    assert queued.config["model"] == card.id and queued.config["defence"] == "pgd_l2"
    assert queued.config["params"]["epsilon"] == 0.25 and queued.config["steps"] == 7
    assert queued.config["devices"] == 1 and "Batch 32 on one device." in captions(at)
    at.number_input(key="def_run_devices").set_value(2).run()  # data-parallel: both batches shown
    assert "Batch 32 in all: 16 per device on 2 devices." in captions(at)
    at.selectbox(key="def_defence").set_value("jacobian").run()
    at.selectbox(key="def_preset_jacobian").set_value("zeng-jacobian").run()  # the preset fills the form
    assert at.number_input(key="def_p_jacobian_lam").value == 0.5
    assert at.selectbox(key="def_p_jacobian_target").value == "loss"


def test_cli_lists_defences_and_refuses_a_bad_setting(capsys, shapes_model):
    from backend.__main__ import main

    assert main(["defend", "presets"]) == 0
    out = capsys.readouterr().out
    assert "pgd_l2" in out and "zeng-pgd_linf-eps8-t20" in out and "temperature" in out
    code = main(
        ["defend", "train", "--defence", "jacobian", "--model", shapes_model[1].id, "--set", "params.lam=-1"]
    )
    assert code == 2 and "lam must be >= 0" in capsys.readouterr().err
