"""Several machines per lab, on one host: two workers with their own data directories share only a real
redis-server and the shared directory (FOOLING_LAB_SHARED), and both run fooling jobs that read a mask
and a dataset zip uploaded through the Fool page's services in the app process (a third data dir)."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from backend import jobs
from backend.config import get_settings
from backend.services import fool_form, job_follow
from tests.jobs.conftest import wait_for


def shapes_zip(size: int) -> bytes:
    """A class-per-folder zip of shapes images (the folder names are the checkpoint's class names)."""
    from backend.data.shapes import SHAPE_CLASSES, make_shapes

    images, labels, _ = make_shapes(16, size=size, seed=3)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for i, (image, label) in enumerate(zip(images, labels)):
            png = io.BytesIO()
            pixels = (image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
            Image.fromarray(pixels).save(png, format="PNG")
            archive.writestr(f"shapes/{SHAPE_CLASSES[int(label)]}/{i}.png", png.getvalue())
    return buf.getvalue()


@pytest.mark.slow
@pytest.mark.redis
def test_two_workers_sharing_only_redis_and_the_shared_dir_run_jobs_with_uploads(
    lab, redis_url, shapes_model
):
    from backend.models.registry import Registry

    model, card = shapes_model
    shared = lab.root / "shared"
    lab.setenv("FOOLING_LAB_QUEUE_URL", redis_url)
    lab.setenv("FOOLING_LAB_SHARED", str(shared))
    lab.delenv("FOOLING_LAB_MODELS")  # models, artifacts and uploads all default under the shared dir
    settings = get_settings()
    assert settings.models_dir == shared / "models" and settings.uploads_dir == shared / "uploads"
    base = Registry().save(
        model,
        name="shapes CNN",
        architecture=card.architecture,
        classes=card.classes,
        preprocessing=card.preprocessing,
        kind="trained",
    )
    workers = [lab.start_consumer(env={"FOOLING_LAB_DATA": str(lab.root / f"worker{i}")}) for i in (1, 2)]

    size = card.preprocessing["size"]
    dataset = fool_form.save_dataset_zip(shapes_zip(size), "shapes.zip")
    mask = np.zeros((size, size), dtype=np.float32)
    mask[: size // 2, : size // 2] = 1.0
    mask_path = fool_form.save_array(mask, "mask")
    for path in (dataset["path"], mask_path):
        assert str(shared / "uploads") in path  # where every worker can read it
    config = {
        "model": base.id,
        "dataset": dataset,
        "attack": "location",
        "attack_params": {"mask": mask_path},
        "interpreter": "gradient",
        "steps": 2,
        "batch_size": 4,
        "val_size": 4,
    }
    ids = [job_follow.submit("fool", config | {"seed": s, "name": f"shared-{s}"}) for s in range(2)]
    done = [wait_for(lambda i=i: jobs.get(i).done and jobs.get(i), timeout=240, what=f"{i}") for i in ids]
    assert [r.state for r in done] == ["succeeded", "succeeded"], [r.error for r in done]
    assert {r.worker.rpartition(":")[2] for r in done} == {str(w.pid) for w in workers}  # one job each
    for record in done:
        fooled = Registry().card(record.result["checkpoint"])  # the app sees what a worker saved
        assert fooled.parent == base.id and fooled.config["attack_params"]["mask"] == mask_path
    for local in ("data", "worker1", "worker2"):  # nothing a job needs stayed in a machine's own dir
        assert not (lab.root / local / "uploads").exists() and not (lab.root / local / "artifacts").exists()
