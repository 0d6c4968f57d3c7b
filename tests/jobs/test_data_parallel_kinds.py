"""The train and defend kinds go data-parallel like fool: `devices` (or `world_size`) on their configs
and forms, the global batch split evenly, and the worker's GPU accounting applies to them (a job that
needs 2 GPUs waits on a CPU worker and the Jobs page says why); with `device: "cpu"` a train job runs
through the queue on 2 gloo processes and gives the weights of one process with the same global batch
and seed."""

from __future__ import annotations

import time

import pytest

from backend import jobs
from backend.errors import InvalidConfig
from backend.jobs.gpus import gpus_needed
from backend.jobs.kinds import get_kind
from backend.jobs.workers import alive_workers
from backend.models.registry import Registry
from backend.models.train_shapes import train_shapes_model
from backend.services import defend as defend_svc
from backend.services import job_follow
from backend.services import models as models_svc
from backend.services.form_fields import batch_text
from tests.distributed import max_weight_diff
from tests.jobs.conftest import wait_for

# BatchNorm trains here, so the 2-process run must use the global batch's statistics; the last batch
# (55 = 5 x 10 + 5) splits 3 / 2, which the loss must weigh as one process does. Measured on the
# shapes CNN at 32 px, n_train 90, batches of 16, 6 Adam steps: 4.8e-7 in float32 (the same code in
# float64 over 2 epochs: 6.7e-14, so what is left is rounding, amplified by Adam near zero gradients).
TINY_TRAIN = {"size": 32, "n_train": 55, "n_val": 10, "epochs": 1, "batch_size": 10}
WAITING = "waiting for a worker with 2 free GPUs (none alive has that many); workers alive: 1 with 0 GPUs"


def finished(job_id: str):
    record = jobs.get(job_id)
    return record if record.state in ("succeeded", "failed") else None


def _base_model():
    """The shapes CNN in this lab's registry (the defend kind checks its model exists)."""
    from safetensors.torch import load_file

    from backend.data.shapes import SHAPE_CLASSES
    from backend.models import zoo
    from backend.models.registry import Registry
    from tests.conftest import SHAPES_WEIGHTS

    model = zoo.build("shapes_cnn", len(SHAPE_CLASSES))
    model.load_state_dict(load_file(SHAPES_WEIGHTS))
    pre = zoo.spec("shapes_cnn").preprocessing
    return Registry().save(
        model, name="shapes CNN", architecture="shapes_cnn", classes=list(SHAPE_CLASSES), preprocessing=pre,
        kind="trained",
    )  # fmt: skip


def test_forms_and_configs_carry_devices_and_split_the_batch(isolated_lab):
    base = _base_model()
    train = models_svc.build_train_config({**TINY_TRAIN, "devices": "2", "device": ""})
    assert (train["devices"], train["device"], gpus_needed(train)) == (2, None, 2)
    assert {"batch_size", "devices", "device"} <= {f.name for f in models_svc.train_fields()}
    defend = defend_svc.build_train_config(
        base.id, "jacobian", {}, run={"batch_size": 16, "devices": 2, "device": "cpu"}, steps=2
    )
    assert (defend["devices"], defend["batch_size"], gpus_needed(defend)) == (2, 16, 0)
    assert get_kind("defend").validate({"model": base.id, "world_size": 4, "batch_size": 8})["devices"] == 4
    assert batch_text({"batch_size": 16, "devices": 2}) == "Batch 16 in all: 8 per device on 2 devices."
    for kind, config in (("train", {"batch_size": 30}), ("defend", {"model": base.id, "batch_size": 30})):
        with pytest.raises(InvalidConfig, match="does not split evenly over 4 devices.*multiple of 4"):
            get_kind(kind).validate({**config, "devices": 4})


@pytest.mark.slow  # a consumer, and a train job over two gloo processes through the queue (~20 s)
def test_gpu_accounting_applies_to_train_and_defend_and_a_cpu_run_goes_through_the_queue(lab):
    base = _base_model()
    lab.start_consumer(workers=1)
    wait_for(lambda: len(alive_workers()) == 1, what="the CPU worker to announce itself")
    big_train = jobs.submit("train", {**TINY_TRAIN, "devices": 2})
    big_defend = jobs.submit("defend", {"model": base.id, "defence": "jacobian", "steps": 2, "world_size": 2})
    on_cpu = jobs.submit("train", {**TINY_TRAIN, "devices": 2, "device": "cpu", "seed": 4})
    one = train_shapes_model({**TINY_TRAIN, "device": "cpu", "seed": 4})  # meanwhile, in one process
    done = wait_for(lambda: finished(on_cpu), timeout=240, what="the train job on two gloo processes")
    assert done.state == "succeeded", done.error
    two = Registry().card(done.result["checkpoint"])
    diff = max_weight_diff(one.id, two.id)
    print(f"train: max weight difference, 2 gloo processes vs 1: {diff:.3g}")
    assert diff < 1e-5 and two.config["devices"] == 2
    assert abs(two.metrics["train_loss"] - one.metrics["train_loss"]) < 1e-5
    assert done.history[-1].metrics["val_accuracy"] == one.metrics["val_accuracy"]  # rank 0's reports
    time.sleep(1.5)  # the CPU worker has passed the two-GPU jobs on more than once by now
    for job_id in (big_train, big_defend):
        assert jobs.get(job_id).state == "queued"
        assert job_follow.status(job_id).waiting == WAITING
        jobs.cancel(job_id)
