"""The classroom first start, for real: an empty lab, a real queue worker, and the sidebar's polling
(`demo.advance`) until the shapes model is trained and a fooled copy of it is in the registry."""

from __future__ import annotations

import pytest

from backend import jobs
from backend.models.registry import Registry
from backend.services import demo
from tests.jobs.conftest import Lab, wait_for

pytestmark = pytest.mark.slow

# The default plan's configs, made small: the worker runs exactly what the plan submits.
QUICK = demo.SeedPlan(
    train={"seed": 0, "size": 32, "n_train": 200, "n_val": 40, "epochs": 1, "name": "demo shapes"},
    shapes_fool={"steps": 3, "batch_size": 16, "dataset": {"n": 64}},
    lite0_fool=None,
)


@pytest.mark.timeout(300)
def test_first_start_seeds_a_trained_and_a_fooled_model_through_the_queue(tmp_path, monkeypatch):
    lab = Lab(tmp_path, monkeypatch)
    lab.setenv("FOOLING_LAB_SEED_DEMO", "1")
    try:
        lab.start_consumer()
        assert demo.pending()
        note = demo.advance(QUICK)
        assert note and "training the shapes model" in note
        assert [r.kind for r in jobs.list_jobs()] == ["train"]
        # what the sidebar fragment does every few seconds while seeding is pending
        wait_for(lambda: demo.advance(QUICK) is None, timeout=240, every=1.0, what="the demo seeding")
        assert not demo.pending()
        state = demo.read_state()
        for key in ("train_job", "shapes_fool_job"):
            record = jobs.get(state[key])
            assert record.state == "succeeded", (record.error, lab.consumer_output()[-2000:])
        assert sorted(r.kind for r in jobs.list_jobs()) == ["fool", "train"]  # no Lite0 in this plan

        reg = Registry()
        trained, fooled = reg.card(state["shapes"]), reg.card(state["shapes_fooled"])
        assert trained.kind == "trained" and trained.architecture == "shapes_cnn"
        assert trained.preprocessing["size"] == 32
        assert fooled.kind == "fooled" and fooled.parent == trained.id
        assert fooled.config["attack"] == "location" and fooled.config["interpreter"] == "gradcam"
        assert fooled.config["steps"] == 3 and fooled.config["dataset"]["size"] == 32
        assert [c.id for c in reg.lineage(fooled.id)][-2:] == [trained.id, fooled.id]
        assert ("Shapes CNN on synthetic shapes", trained.id, fooled.id) in demo.demo_pairs()
        assert demo.advance(QUICK) is None and len(jobs.list_jobs()) == 2  # done: nothing more is queued
    finally:
        lab.stop()
