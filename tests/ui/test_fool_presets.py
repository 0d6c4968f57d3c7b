"""The Fool form reaches every FoolConfig field, and a preset chosen on it is the preset the tests measured:
for every preset, the config the real page submits equals the preset's own config after validation,
field by field. Without a preset, the form starts from the defaults of the checkpoint's architecture."""

from __future__ import annotations

import dataclasses
import time

import pytest

from backend import jobs
from backend.errors import InvalidConfig
from backend.fool.config import FoolConfig
from backend.fool.presets import PRESETS
from tests.ui.helpers import messages


def _expected(name: str, model: str, dataset: dict | None, registry) -> dict | str:
    """The preset's config validated (model and, for presets without images, the form's dataset), or
    the reason validation refuses it."""
    cfg = {**PRESETS[name]["config"], "model": model}
    cfg.setdefault("dataset", dataset)
    try:
        return FoolConfig.from_dict(cfg).validate(registry).to_dict()
    except InvalidConfig as err:
        return str(err)


def test_every_preset_submits_the_presets_config_field_by_field(lab, app_page):
    base, reg = lab["baseline"], lab["registry"]
    at = app_page("pages/fool.py", query={"base": base.id})
    fields = {f.name for f in dataclasses.fields(FoolConfig)}
    refused, start = [], time.perf_counter()
    for name in PRESETS:
        before = {j.id for j in jobs.list_jobs(kind="fool")}
        dataset = at.session_state["f_dataset"]  # presets without images keep the form's
        at.selectbox(key="f_preset").set_value(name)
        at.button(key="f_submit").click().run()  # the preset's callback fills the form, then submit
        assert not at.exception, (name, [e.value for e in at.exception])
        expected = _expected(name, base.id, dataset, reg)
        new = [j for j in jobs.list_jobs(kind="fool") if j.id not in before]
        if isinstance(expected, str):  # the preset needs something from the user (e.g. a target)
            assert not new and any(expected in m for m in messages(at)), (name, messages(at))
            refused.append(name)
            continue
        assert len(new) == 1, (name, messages(at))
        submitted = new[0].config
        assert set(submitted) == fields
        for field in sorted(fields):
            assert submitted[field] == expected[field], (name, field, submitted[field], expected[field])
    assert len(refused) < len(PRESETS) / 4, refused
    print(
        f"{len(PRESETS)} presets through the page in {time.perf_counter() - start:.1f} s; refused: {refused}"
    )


def test_the_preset_says_what_it_set_and_active_sets_its_classes(lab, app_page):
    at = app_page("pages/fool.py", query={"base": lab["baseline"].id})
    at.selectbox(key="f_preset").set_value("shapes-active-gradcam").run()
    shown = {row["setting"]: row["value"] for row in at.dataframe[0].value.to_dict("records")}
    preset = PRESETS["shapes-active-gradcam"]["config"]
    assert (
        shown["lam"] == str(float(preset["lam"]))
        and shown["lam_start"] == str(float(preset["lam_start"]))
        and shown["attack"] == "active"
        and "attack_params" in shown
    )
    assert at.selectbox(key="f_ap_active_c1").value == 0
    assert at.selectbox(key="f_ap_active_c2").value == 2  # circle and triangle, not the default square
    assert at.selectbox(key="f_ap_active_images").value == "unlabelled"
    assert at.number_input(key="f_ap_active_pair_fraction").value == pytest.approx(0.3)
    assert (
        at.selectbox(key="f_lr_schedule").value == "cosine"
        and at.number_input(key="f_grad_clip").value == 1.0
    )


def test_without_a_preset_the_form_starts_from_the_architectures_paper_defaults(lab, app_page):
    at = app_page("pages/fool.py", query={"base": lab["baseline"].id})
    # the shapes CNN: the shapes presets' base
    assert at.number_input(key="f_lr").value == pytest.approx(1e-3)
    assert at.number_input(key="f_shapes_n").value == 8192
    # an ImageNet network: Heo2019's Adam, batch 8, lr 1e-6, lambda 1, on the sample photos
    (lite0,) = lab["registry"].ensure_builtin()
    at.run()  # the picker lists it now
    at.selectbox(key="f_base").set_value(lite0.id).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.number_input(key="f_lr").value == pytest.approx(1e-6)
    assert at.number_input(key="f_batch_size").value == 8 and at.number_input(key="f_lam").value == 1.0
    assert at.radio(key="f_ds_kind").value == "Sample photos"


def test_every_fool_config_field_has_a_widget(lab, app_page):
    from backend.fool.fields import DRAWN_ELSEWHERE, config_fields

    fields = config_fields()
    assert {f.name for f in fields} | set(DRAWN_ELSEWHERE) == {f.name for f in dataclasses.fields(FoolConfig)}
    at = app_page("pages/fool.py", query={"base": lab["baseline"].id})
    at.selectbox(key="f_preset").set_value("shapes-location-lrp_t").run()
    missing = [f.name for f in fields if at.get_by_key(f"f_{f.name}") is None and f.kind != "point"]
    assert not missing, missing
    # the interpreter's own parameters, the LRP composite among them, and its target layer
    assert at.selectbox(key="f_ip_lrp_t_composite").value == "epsilon_alpha1beta0"
    assert at.selectbox(key="f_layer").value is None  # = the model's default target layer


def test_a_new_attack_needs_no_page_change(lab, app_page, monkeypatch):
    from backend.fool import losses
    from backend.forms import FieldSpec

    class Probe(losses.Location):  # a Location loss with two declared settings of its own
        name, label, description = "probe", "Probe", "A test attack."
        form = (
            FieldSpec("mask", "mask", "frame"),
            FieldSpec("strength", "float", 0.5, label="Strength", min=0.0, max=1.0),
            FieldSpec("side", "choice", "left", label="Side", choices=("left", "right")),
        )

    monkeypatch.setitem(losses.FOOLING_ATTACKS, "probe", Probe())
    at = app_page("pages/fool.py", query={"base": lab["baseline"].id})
    at.selectbox(key="f_attack").set_value("probe").run()
    at.number_input(key="f_ap_probe_strength").set_value(0.25)
    at.selectbox(key="f_ap_probe_side").set_value("right")
    at.number_input(key="f_steps").set_value(2)
    at.button(key="f_submit").click().run()
    assert not messages(at), messages(at)
    (job,) = jobs.list_jobs(kind="fool")
    assert job.config["attack"] == "probe"
    assert job.config["attack_params"] == {"mask": "frame", "strength": 0.25, "side": "right"}


def test_heos_active_preset_refuses_a_checkpoint_without_its_classes(lab, app_page):
    """The heo-*-active-* presets name fire engine / African elephant: on the shapes CNN the page says so
    and Submit sends nothing (before, the class fields fell back to classes 0 and 1)."""
    at = app_page("pages/fool.py", query={"base": lab["baseline"].id})
    before = {j.id for j in jobs.list_jobs(kind="fool")}
    at.selectbox(key="f_preset").set_value("heo-vgg19-active-gradcam")
    at.button(key="f_submit").click().run()
    assert not at.exception
    assert {j.id for j in jobs.list_jobs(kind="fool")} == before
    shown = messages(at)
    assert any("Not submitted" in m and "fire engine" in m for m in shown), shown
