"""Fool, Jobs and Evaluate pages in AppTest: invalid submits refused, valid ones land in the real store."""

from __future__ import annotations

from backend import jobs
from backend.services import fool_form as svc
from tests.ui.helpers import messages


def test_fool_form_refuses_invalid_and_queues_valid(lab, app_page):
    at = app_page("pages/fool.py", query={"base": lab["baseline"].id})
    for key in (
        "f_attack",
        "f_interpreter",
        "f_classification",
        "f_lam",
        "f_lr",
        "f_steps",
        "f_batch_size",
        "f_preset",
    ):
        assert at.get_by_key(key) is not None, key  # every option of the engine has a widget
    assert set(at.selectbox(key="f_attack").options) == set(svc.attack_labels().values())
    at.number_input(key="f_lr").set_value(0.0).run()
    at.button(key="f_submit").click().run()
    assert any("learning rate" in e.lower() for e in messages(at)), messages(at)
    assert jobs.list_jobs() == []

    at.number_input(key="f_lr").set_value(2e-3).run()
    at.number_input(key="f_steps").set_value(3).run()
    at.button(key="f_submit").click().run()
    assert not messages(at), messages(at)
    queued = jobs.list_jobs(kind="fool")
    assert len(queued) == 1
    cfg = queued[0].config
    assert cfg["model"] == lab["baseline"].id and cfg["steps"] == 3 and cfg["lr"] == 2e-3
    assert any(queued[0].id in s for s in messages(at, "success"))


def test_fool_keep_best_needs_periodic_validation(lab, app_page):
    at = app_page("pages/fool.py", query={"base": lab["baseline"].id})
    at.number_input(key="f_steps").set_value(4).run()
    at.checkbox(key="f_keep_best").check().run()
    at.button(key="f_submit").click().run()
    assert any("val_every" in e for e in messages(at)), messages(at)
    assert jobs.list_jobs() == []
    at.number_input(key="f_val_every").set_value(2).run()
    at.button(key="f_submit").click().run()
    assert not messages(at), messages(at)
    (queued,) = jobs.list_jobs(kind="fool")
    assert queued.config["keep_best"] is True and queued.config["val_every"] == 2


def test_fool_location_mask_rectangle_and_preview(lab, app_page):
    at = app_page("pages/fool.py", query={"base": lab["baseline"].id})
    at.selectbox(key="f_attack").set_value("location").run()
    at.radio(key="f_ap_location_mask_mode").set_value("Draw a rectangle").run()
    assert not messages(at)
    at.slider(key="f_ap_location_mask_rows").set_value((0.5, 0.5)).run()  # an empty rectangle
    assert any("rectangle is empty" in e for e in messages(at))


def test_fool_location_draw_mode_needs_a_drawing_before_submit(lab, app_page):
    at = app_page("pages/fool.py", query={"base": lab["baseline"].id})
    at.selectbox(key="f_attack").set_value("location").run()
    at.radio(key="f_ap_location_mask_mode").set_value("Draw").run()
    assert not at.exception and not messages(at)
    charts = [c.key for c in at.get("plotly_chart")]
    assert "f_ap_location_mask_draw" in charts and "f_preview" not in charts  # the picture to draw on
    assert any("Nothing drawn yet" in i.value for i in at.info)
    at.button(key="f_submit").click().run()
    assert any("Location needs a mask" in e for e in messages(at)), messages(at)
    assert jobs.list_jobs() == []


def test_fool_active_on_shapes_queues_two_object_images_of_c1_and_c2(lab, app_page):
    at = app_page("pages/fool.py", query={"base": lab["baseline"].id})
    at.selectbox(key="f_attack").set_value("active").run()
    at.selectbox(key="f_ap_active_c2").set_value(2).run()
    at.number_input(key="f_ap_active_pair_fraction").set_value(0.25).run()
    at.selectbox(key="f_ap_active_images").set_value("unlabelled").run()
    at.number_input(key="f_steps").set_value(2).run()
    at.button(key="f_submit").click().run()
    assert not messages(at), messages(at)
    (job,) = jobs.list_jobs(kind="fool")
    cfg = job.config
    assert cfg["dataset"]["pair"] == [0, 2] and cfg["dataset"]["pair_fraction"] == 0.25
    assert cfg["attack_params"] == {"c1": 0, "c2": 2, "images": "unlabelled"}


def test_jobs_page_lists_polls_and_cancels(lab, app_page):
    from backend.jobs.records import HistoryPoint
    from backend.jobs.stores import open_store
    from backend.services.job_follow import FEEDS_KEY

    job_id = jobs.submit("selftest", {"steps": 2, "devices": 2})
    open_store().extend_history(job_id, [HistoryPoint(s, float(s), {"loss": 1 / s}) for s in range(1, 5001)])
    at = app_page("pages/jobs.py", query={"job": job_id})
    assert at.selectbox(key="jobs_pick").value == job_id
    assert any("queued" in s.value for s in at.subheader)
    assert any(i.value.startswith("waiting for a worker: none is alive") for i in at.info)  # why it waits
    feed = at.session_state[FEEDS_KEY][job_id]  # the page follows the history by cursor
    assert feed.cursor.length == len(feed.points) <= 2000 and sum(p.count for p in feed.points) == 5000
    at.button(key=f"cancel_{job_id}").click().run()
    assert jobs.get(job_id).state == "cancelled"
    assert at.button(key=f"retry_{job_id}").disabled is False


def test_evaluate_refuses_same_checkpoint_and_queues_a_pair(lab, app_page, tiny_shapes):
    from backend.models.registry import Registry

    reg = Registry()
    model, card = tiny_shapes
    fooled = reg.save(
        model,
        name="shapes-fooled-cfg",
        architecture=card.architecture,
        classes=card.classes,
        preprocessing=card.preprocessing,
        parent=lab["baseline"].id,
        kind="fooled",
        config={
            "model": lab["baseline"].id,
            "attack": "location",
            "interpreter": "gradcam",
            "dataset": {"kind": "shapes", "n": 32, "size": card.preprocessing["size"], "seed": 1},
        },
    )
    at = app_page("pages/evaluate.py", query={"baseline": lab["baseline"].id, "fooled": fooled.id})
    at.multiselect(key="ev_interp").set_value([]).run()
    at.button(key="ev_submit").click().run()
    assert any("at least one interpreter" in e for e in messages(at))
    assert jobs.list_jobs(kind="evaluate") == []
    at.multiselect(key="ev_interp").set_value(["gradcam", "gradient"]).run()
    at.button(key="ev_submit").click().run()
    assert not messages(at), messages(at)
    (job,) = jobs.list_jobs(kind="evaluate")
    assert job.config["fooled"] == [fooled.id] and job.config["interpreters"] == ["gradcam", "gradient"]


def test_fool_zip_of_random_bytes_is_refused(lab, app_page):
    at = app_page("pages/fool.py", query={"base": lab["baseline"].id})
    at.radio(key="f_ds_kind").set_value("Upload a zip").run()
    junk = bytes(range(256)) * 40
    at.file_uploader(key="f_zip").set_value(("data.zip", junk, "application/zip")).run()
    assert any(e.startswith("'data.zip'") for e in messages(at)), messages(at)
    at.button(key="f_submit").click().run()
    assert any("Choose the training images" in e for e in messages(at))
    assert jobs.list_jobs() == []


def test_fool_estimate_and_target_preview(lab, app_page):
    at = app_page("pages/fool.py", query={"base": lab["baseline"].id})
    assert at.get_by_key("f_preview") is not None  # the Location mask drawn over one image
    at.button(key="f_estimate").click().run()
    infos = [i.value for i in at.info if i.value.startswith("About")]
    assert infos, messages(at)
    assert float(infos[0].split()[1]) >= 0
    at.selectbox(key="f_attack").set_value("topk").run()
    assert any("Top-10%" in c.value for c in at.caption)  # the preview names what the loss empties
