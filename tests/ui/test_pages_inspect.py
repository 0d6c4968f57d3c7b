"""Inspect page in AppTest: the grid, the cache, the similarity column, bad uploads refused."""

from __future__ import annotations

import io
import re

import numpy as np
from PIL import Image

from tests.ui.helpers import messages

INSPECT = "pages/inspect.py"


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _grid_caption(at) -> tuple[int, float, int]:
    text = next(c.value for c in at.caption if c.value.startswith("Grid ready"))
    cells, seconds, hits = re.match(
        r"Grid ready: (\d+) cells in ([\d.]+) s \((\d+) from cache", text
    ).groups()
    return int(cells), float(seconds), int(hits)


def test_grid_of_two_checkpoints_is_cached_and_compared(lab, app_page):
    ids = f"{lab['baseline'].id},{lab['fooled'].id}"
    at = app_page(INSPECT, query={"ckpt": ids})
    at.radio(key="inspect_source").set_value("Synthetic shapes").run()
    assert not at.exception
    methods = at.multiselect(key="inspect_methods").value
    assert len(methods) >= 2
    cells, _, hits = _grid_caption(at)
    assert (cells, hits) == (2 * len(methods), 0)
    # every method row has one image per checkpoint, plus the comparison slider's; no chart until asked
    assert len(at.get("image")) == 2 * len(methods) + 1 and not at.get("plotly_chart")
    at.selectbox(key="inspect_live_cell").set_value((methods[0], lab["fooled"].id)).run()
    assert len(at.get("plotly_chart")) == 1 and _grid_caption(at)[2] == cells  # nothing recomputed
    sims = [c.value for c in at.caption if c.value.startswith("vs baseline")]
    assert len(sims) == len(methods)  # only the non-baseline column is compared
    for text in sims:
        rho = float(re.search(r"Spearman (-?[\d.]+)", text).group(1))
        assert -1.0 <= rho <= 1.0
    # the same grid again comes entirely from the cache
    at.run()
    cells2, _, hits2 = _grid_caption(at)
    assert cells2 == hits2 == cells
    # opacity / colour map only change the drawing, not the numbers
    at.slider(key="inspect_opacity").set_value(0.3).run()
    assert _grid_caption(at)[2] == cells


def test_bad_uploads_get_a_message_good_odd_formats_work(lab, app_page):
    at = app_page(INSPECT, query={"ckpt": lab["baseline"].id})
    rgb = Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 50, 3), dtype=np.uint8))
    good_png = _png(rgb)
    palette = _png(rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=16))
    gray = _png(rgb.convert("L"))
    buf = io.BytesIO()
    Image.new("L", (8700, 5800), 90).save(buf, format="JPEG", quality=50)  # a 50-megapixel photo
    huge = buf.getvalue()
    files = [
        ("notes.png", b"this is not an image at all", "image/png"),
        ("truncated.png", good_png[: len(good_png) // 2], "image/png"),
        ("palette.png", palette, "image/png"),
        ("gray.png", gray, "image/png"),
        ("huge.jpg", huge, "image/jpeg"),
    ]
    at.file_uploader(key="inspect_up").set_value(files).run()
    assert not at.exception
    errors = messages(at)
    assert any("notes.png" in e for e in errors)
    assert any("truncated.png" in e for e in errors)
    assert not any(name in e for e in errors for name in ("palette.png", "gray.png", "huge.jpg"))
    assert at.selectbox(key="inspect_photo").options == ["palette.png", "gray.png", "huge.jpg"]
    at.selectbox(key="inspect_photo").set_value("huge.jpg").run()
    assert len(messages(at)) == 2  # still only the two bad files
    assert _grid_caption(at)[0] == len(at.multiselect(key="inspect_methods").value)
    assert _grid_caption(at)[0] == len(at.multiselect(key="inspect_methods").value)


def test_heavy_cell_reports_progress_while_computing_and_not_from_cache(lab):
    from backend.services import inspect as svc
    from backend.services.photos import synthetic_photos

    photo = synthetic_photos(1, size=32, seed=5)[0]
    calls: list[tuple[int, int]] = []

    def ig_cell() -> svc.Cell:
        report = lambda p: calls.append((p.done, p.total))  # noqa: E731
        return svc.compute_cell(
            photo, lab["baseline"].id, "integrated_gradients", {"steps": 12}, progress=report
        )

    cell = ig_cell()
    assert not cell.cached and cell.heatmap.shape == (32, 32)
    assert calls and {t for _, t in calls} == {12}  # one unit per IG point
    done = [d for d, _ in calls]
    assert done == sorted(done) and done[-1] == 12
    calls.clear()
    again = ig_cell()
    assert again.cached and calls == []
    assert np.array_equal(again.heatmap, cell.heatmap)


def test_grid_with_a_heavy_method_draws_it_and_leaves_no_bar(lab, app_page):
    at = app_page(INSPECT, query={"ckpt": f"{lab['baseline'].id},{lab['fooled'].id}"})
    at.radio(key="inspect_source").set_value("Synthetic shapes").run()
    at.multiselect(key="inspect_methods").set_value(["gradient", "occlusion"]).run()
    assert not at.exception
    cells, _, hits = _grid_caption(at)
    assert (cells, hits) == (4, 2)  # the gradient cells were drawn by the default grid before
    assert len(at.get("image")) == 4 + 1
    assert not at.get("progress")  # every per-cell bar (and the grid bar) is gone once drawn
    # a display change inside the grid fragment keeps the cells and the numbers
    sims = [c.value for c in at.caption if c.value.startswith("vs baseline")]
    at.toggle(key="inspect_signed").set_value(True).run()
    assert [c.value for c in at.caption if c.value.startswith("vs baseline")] == sims
    assert len(at.get("image")) == 5


def test_non_numeric_method_parameters_and_the_target_layer_reach_the_map(lab, app_page):
    at = app_page(INSPECT, query={"ckpt": lab["baseline"].id})
    at.radio(key="inspect_source").set_value("Synthetic shapes").run()
    at.multiselect(key="inspect_methods").set_value(["lrp", "gradcam"]).run()
    composite = at.selectbox(key="p_lrp_composite")
    assert (
        composite.value == "epsilon_alpha1beta0"
        and "z^beta first layer + z+ (Pasliev2020)" in composite.options
    )
    assert at.selectbox(key="p_gradcam_upsample").value == "bilinear"
    layer = at.selectbox(key="p_gradcam_layer")
    assert layer.value is None and layer.options[0].startswith("default (")  # the model's target layer
    assert _grid_caption(at)[:1] == (2,)
    # another composite and another layer are other cells (other cache keys), not the cached ones
    at.selectbox(key="p_lrp_composite").set_value("zplus").run()
    assert _grid_caption(at)[2] == 1  # Grad-CAM from the cache, LRP computed anew
    at.selectbox(key="p_gradcam_layer").set_value("features.10").run()
    assert not at.exception and not messages(at), messages(at)
    assert _grid_caption(at)[2] == 1  # now LRP (z+) from the cache, Grad-CAM at the other layer anew


def test_a_bad_parameter_names_itself_and_the_other_cells_still_show(lab):
    from backend.services.inspect import compute_grid
    from backend.services.photos import synthetic_photos

    photo = synthetic_photos(1, size=32, seed=0)[0]
    run = compute_grid(
        photo, [lab["baseline"].id], ["gradient", "smoothgrad"], {"smoothgrad": {"n": 0, "sigma": 0.1}}
    )
    assert list(run.cells) == [("gradient", lab["baseline"].id)]
    assert run.errors and "Samples must be >= 1" in run.errors[0], run.errors
