"""The Detect and Decoys pages in AppTest: bad input gets a message and queues nothing; a valid form
queues a job with the chosen settings in the real store (no consumer needed)."""

from __future__ import annotations

from backend import jobs
from backend.explain import METHODS
from tests.ui.helpers import messages


def test_detect_form_refuses_bad_sigmas_and_queues_a_valid_job(page):
    open_page, card = page
    at = open_page("pages/detect.py", {"suspect": card.id})
    assert set(at.selectbox(key="det_method").options) == {m.label for m in METHODS.values()}
    at.text_input(key="det_weight_noise_sigmas").set_value("0, lots")
    at.button(key="det_submit").click().run()
    assert any("sigmas must be numbers separated by commas" in m for m in messages(at)), messages(at)
    assert jobs.list_jobs() == []
    at.text_input(key="det_weight_noise_sigmas").set_value("0, 0.01")
    at.number_input(key="det_images").set_value(4)
    at.selectbox(key="det_method").set_value("smoothgrad").run()  # its own parameters appear
    at.number_input(key="det_p_smoothgrad_n").set_value(4)
    at.text_input(key="det_weight_noise_select").set_value("features.0, features.3")
    at.button(key="det_submit").click().run()
    assert not messages(at), messages(at)
    (queued,) = jobs.list_jobs(kind="detect")
    assert queued.config["suspect"] == card.id
    assert queued.config["weight_noise"]["sigmas"] == [0.0, 0.01] and queued.config["images"] == 4
    assert queued.config["dataset"]["size"] == card.preprocessing["size"]
    assert queued.config["method"] == "smoothgrad" and queued.config["params"]["n"] == 4
    assert queued.config["weight_noise"]["select"] == ["features.0", "features.3"]


def test_decoys_form_refuses_a_patch_larger_than_the_image(page):
    open_page, card = page
    at = open_page("pages/decoys.py", {"checkpoint": card.id})
    at.number_input(key="dec_patch").set_value(card.preprocessing["size"] + 1)
    at.button(key="dec_submit").click().run()
    assert any("larger than" in m for m in messages(at)), messages(at)
    assert jobs.list_jobs() == []
    at.number_input(key="dec_patch").set_value(8)
    at.multiselect(key="dec_attacks").set_value(["topk"])
    at.button(key="dec_submit").click().run()
    assert not messages(at), messages(at)
    (queued,) = jobs.list_jobs(kind="decoys")
    assert queued.config["decoys"]["patch"] == 8 and queued.config["attacks"] == ["topk"]
