"""Models and Demo pages, the router and the sidebar in AppTest (incl. a queue that is down)."""

from __future__ import annotations

import io

import torch
from safetensors.torch import save as st_save

from backend import jobs
from backend.cache import ResultCache
from backend.services.photos import synthetic_photos
from tests.ui.helpers import messages


def _upload(at, name: str, data: bytes, arch: str, label: str) -> None:
    at.file_uploader(key="up_file").set_value((name, data, "application/octet-stream"))
    at.selectbox(key="up_arch").set_value(arch)
    at.text_input(key="up_name").set_value(label)
    at.button(key="up_submit").click().run()


def test_models_upload_checks_rename_and_delete_with_cache(lab, app_page, tiny_shapes):
    from backend.models.registry import Registry
    from backend.services.inspect import compute_cell

    at = app_page("pages/models.py")
    # the registry's lineage tree, and each card's own (ancestors, itself, children)
    assert len(at.get("plotly_chart")) == 1 + len(Registry().list())
    assert any("How it was fooled" in m.value for m in at.markdown)
    n_before = len(Registry().list())

    _upload(at, "junk.pt", b"\x00random bytes, not a checkpoint" * 10, "shapes_cnn", "junk")
    assert messages(at) and "Upload refused" in messages(at)[0]
    model, card = tiny_shapes
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    _upload(at, "shapes.safetensors", st_save(state), "efficientnet_lite0", "wrong-arch")
    assert any("Upload refused" in e for e in messages(at))
    assert len(Registry().list()) == n_before  # nothing stored by refused uploads

    buf = io.BytesIO()
    torch.save(state, buf)
    _upload(at, "shapes.pt", buf.getvalue(), "shapes_cnn", "uploaded-shapes")
    assert not messages(at), messages(at)
    assert any(c.name == "uploaded-shapes" for c in Registry().list())

    fooled = lab["fooled"]
    compute_cell(synthetic_photos(1, size=card.preprocessing["size"])[0], fooled.id, "gradient")
    with ResultCache() as cache:
        assert len(cache) == 1
    at = app_page("pages/models.py")
    at.text_input(key=f"rn_{fooled.id}").set_value("renamed-fooled")
    at.button(key=f"rnb_{fooled.id}").click().run()
    assert Registry().card(fooled.id).name == "renamed-fooled"
    assert at.button(key=f"del_{fooled.id}").disabled  # needs the confirmation first
    at.checkbox(key=f"del_ok_{fooled.id}").check().run()
    at.button(key=f"del_{fooled.id}").click().run()
    assert fooled.id not in {c.id for c in Registry().list()}
    assert lab["baseline"].id in {c.id for c in Registry().list()}
    with ResultCache() as cache:
        assert len(cache) == 0


def test_models_page_trains_from_a_form_with_devices_and_both_batches(lab, app_page):
    at = app_page("pages/models.py")
    assert "Batch 32 on one device." in [c.value for c in at.caption]
    at.number_input(key="tr_devices").set_value(4).run()
    assert "Batch 32 in all: 8 per device on 4 devices." in [c.value for c in at.caption]
    at.number_input(key="tr_epochs").set_value(1)
    at.button(key="tr_submit").click().run()
    assert not messages(at), messages(at)
    (queued,) = jobs.list_jobs(kind="train")
    assert (queued.config["devices"], queued.config["epochs"], queued.config["batch_size"]) == (4, 1, 32)
    assert queued.config["device"] is None  # the worker's device: the job waits for 4 free GPUs


def test_router_has_every_page_and_sidebar_status(lab, app_page):
    from streamlit.testing.v1 import AppTest

    from tests.ui.helpers import ROOT

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not at.exception
    side = " ".join(c.value for c in at.sidebar.caption)
    assert "Heatmaps here on: `cpu`" in side
    assert any("No worker" in w.value for w in at.sidebar.warning)  # none started in this test
    for page in ("inspect", "fool", "jobs", "evaluate", "models"):
        app_page(f"pages/{page}.py")


def test_queue_down_is_a_message_not_a_crash(lab, app_page, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from tests.ui.helpers import ROOT

    monkeypatch.setenv("FOOLING_LAB_QUEUE_URL", "redis://127.0.0.1:9/0")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    assert not at.exception
    assert any("job queue is unavailable" in e and "redis-server" in e for e in messages(at))
    at = app_page("pages/fool.py", query={"base": lab["baseline"].id})
    at.number_input(key="f_steps").set_value(2).run()
    at.button(key="f_submit").click().run()
    assert any(e.startswith("Not submitted") and "Redis" in e for e in messages(at)), messages(at)
    at = app_page("pages/jobs.py")
    assert any(e.startswith("Job list") for e in messages(at))
    assert lab["registry"].card(lab["baseline"].id)  # nothing stored was touched


def test_first_start_seeds_the_demo_through_the_queue(isolated_lab, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from tests.ui.helpers import ROOT

    monkeypatch.setenv("FOOLING_LAB_SEED_DEMO", "1")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()  # the landing page
    assert not at.exception
    kinds = sorted(r.kind for r in jobs.list_jobs())
    # the shapes model trains as a job, visible in Jobs; Lite0's fooling waits until the shapes
    # pair's fooling is queued, so one worker finishes the quick pair first
    assert kinds == ["train"]
    assert any("Preparing the classroom demo" in i.value for i in at.sidebar.info)
    assert any("being prepared" in i.value for i in at.info)
    at.run()  # a rerun does not submit twice
    assert sorted(r.kind for r in jobs.list_jobs()) == kinds


def test_demo_page_three_steps_show_both_heatmaps_and_link_to_inspect(lab):
    """The landing page's three clicks (a fragment since the classroom load work): pick an image, the
    original model's Grad-CAM, then the fooled copy's, and the link to Inspect with both checkpoints."""
    import json

    from streamlit.testing.v1 import AppTest

    from backend.config import get_settings
    from tests.ui.helpers import ROOT

    base, fooled = lab["baseline"].id, lab["fooled"].id
    state = get_settings().data_dir / "demo_seed.json"
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_text(json.dumps({"shapes": base, "shapes_fooled": fooled, "done": True}))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    assert not at.exception
    photo = at.button_group(key="demo_photo")
    assert len(photo.options) == 6 and not at.toggle  # step 1 only: six images to pick from
    photo.set_value(photo.options[0]).run()
    at.toggle(key="demo_step2").set_value(True).run()
    assert [m.value for m in at.markdown if m.value.startswith("Original: ")]
    assert not [m.value for m in at.markdown if m.value.startswith("Fooled: ")]
    at.toggle(key="demo_step3").set_value(True).run()
    assert not at.exception and not messages(at)
    assert [m.value for m in at.markdown if m.value.startswith("Fooled: ")]
    assert any("explanation now points somewhere else" in s.value for s in at.success)
    (link,) = [p for p in at.get("page_link") if "Inspect" in p.proto.label]
    assert link.proto.query_string == f"ckpt={base}%2C{fooled}"
