"""The classroom load benchmark's protocol student drives the real app: one student, speaking
Streamlit's websocket protocol (benchmarks/streamlit_client.py), against a served lab (the app and a
worker, `serve --classroom` on loopback, seeded through the queue with the quick plan), does the
browser student's journey and gets real images back: the Demo's two heatmaps, then Inspect's grid of
8 cells computed for it (a fresh lab: nothing from the cache). No browser needed.
"""

from __future__ import annotations

import asyncio
import io

import pytest
from PIL import Image

from benchmarks.classroom_load import DEMO_STEPS, INSPECT_STEPS, protocol_student
from tests.e2e import served_lab as served

pytestmark = pytest.mark.slow  # serving and seeding a lab: ~20 s


def _image(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        return img.size


@pytest.mark.timeout(240)
def test_protocol_student_gets_demo_and_inspect_images(tmp_path, monkeypatch):
    env = served.lab_env(tmp_path, "protocol-test-words", OMP_NUM_THREADS="1")
    for name in served.LAB_VARS:
        monkeypatch.setenv(name, env[name])  # this process submits the seeding jobs to the same lab
    monkeypatch.setenv("FOOLING_LAB_SEED_DEMO", "1")
    monkeypatch.delenv("FOOLING_LAB_QUEUE_URL", raising=False)
    port = served.free_port()
    proc = served.start_server(env, port, tmp_path / "serve.log", timeout=60.0)
    try:
        state, _, _ = served.seed()
        assert state.get("shapes_fooled"), state
        result = asyncio.run(protocol_student(f"http://127.0.0.1:{port}", 0.0, 60.0))
    finally:
        served.stop_server(proc, timeout=10.0)

    assert result.errors == []
    assert list(result.steps) == [*DEMO_STEPS, *INSPECT_STEPS]
    assert 0 < result.first_heatmap_s <= result.grid_s
    # The Demo's steps: step 2 drew the original model's heatmap, step 3 the fooled one beside it.
    ((original_url, original),) = result.images["original heatmap"]
    (again_url, _), (fooled_url, fooled) = result.images["fooled heatmap"]
    assert again_url == original_url and fooled_url != original_url and fooled != original
    assert _image(original) == _image(fooled) == (320, 320)
    # Inspect: 8 cells (2 checkpoints x 4 methods), computed for this student, every image fetched.
    assert result.grid_caption.startswith("Grid ready: 8 cells") and "(0 from cache" in result.grid_caption
    grid = result.images["whole grid"]
    assert len({url for url, _ in grid}) == 8
    assert result.images["first heatmap"] == grid[:1]
    sizes = {_image(data) for _, data in grid}
    assert len(sizes) == 1 and min(next(iter(sizes))) >= 64
