"""The pages' pure helpers: ETA, curves, links, heatmap display, PNG/CSV export, split view."""

from __future__ import annotations

import base64
import csv
import io

import numpy as np
import pytest
from PIL import Image

from backend.jobs.records import Artifact, HistoryPoint, JobProgress, JobRecord
from backend.services import figures, jobs_view
from backend.services import inspect as svc


def _record(**kw) -> JobRecord:
    base = dict(id="j1", kind="fool", config={"model": "base-1"}, state="running", started_at=100.0)
    return JobRecord(**(base | kw))


def test_eta_prefers_the_runners_estimate_and_counts_down():
    rec = _record(progress=JobProgress(fraction=0.5, eta_s=30.0, updated_at=1000.0))
    assert jobs_view.eta_seconds(rec, now=1010.0) == pytest.approx(20.0)
    assert jobs_view.eta_seconds(rec, now=2000.0) == 0.0
    done = _record(state="succeeded", progress=JobProgress(fraction=1.0))
    assert jobs_view.eta_seconds(done) == 0.0


def test_eta_extrapolates_from_elapsed_time(monkeypatch):
    monkeypatch.setattr("backend.jobs.records.now", lambda: 140.0)
    rec = _record(progress=JobProgress(fraction=0.25))  # 40 s for a quarter -> 120 s left
    assert jobs_view.eta_seconds(rec) == pytest.approx(120.0)
    assert jobs_view.eta_seconds(_record(progress=JobProgress(fraction=0.0))) is None


@pytest.mark.parametrize("secs,text", [(None, "—"), (5.4, "5s"), (65, "1m 05s"), (3725, "1h 02m")])
def test_duration_text(secs, text):
    assert jobs_view.duration_text(secs) == text


def test_loss_series_collects_every_metric_by_step():
    hist = [
        HistoryPoint(step=1, time=0.0, metrics={"loss": 2.0, "fool": 1.0}),
        HistoryPoint(step=2, time=1.0, metrics={"loss": 1.5}),
        HistoryPoint(step=None, time=2.0, metrics={"fool": 0.2}),
    ]
    series = jobs_view.loss_series(hist)
    assert series == {"loss": [(1.0, 2.0), (2.0, 1.5)], "fool": [(1.0, 1.0), (2.0, 0.2)]}


def test_checkpoint_links_put_the_base_first():
    arts = [Artifact("table", "x"), Artifact("checkpoint", "fooled-9")]
    made = jobs_view.checkpoint_ids(arts, None)
    assert made == ["fooled-9"]
    assert jobs_view.checkpoint_ids([], {"checkpoint": "c2"}) == ["c2"]
    assert jobs_view.inspect_link_ids(_record(), made) == ["base-1", "fooled-9"]
    assert jobs_view.inspect_link_ids(_record(config={"baseline": "b"}), ["f"]) == ["b", "f"]


def test_display_scaling_signed_and_absolute():
    h = np.array([[-2.0, 1.0], [0.0, 0.5]], dtype=np.float32)
    signed, lo, hi = figures.display_heatmap(h, signed=True)
    assert (lo, hi) == (-2.0, 2.0) and signed[0, 0] == -2.0
    absolute, lo, hi = figures.display_heatmap(h, signed=False)
    assert (lo, hi) == (0.0, 2.0) and absolute.min() >= 0
    flat, lo, hi = figures.display_heatmap(np.zeros((3, 3)), signed=False)
    assert hi > lo  # a flat map still gets a drawable range


def test_colorize_maps_extremes_to_the_scales_ends():
    h = np.array([[0.0, 1.0]], dtype=np.float32)
    rgb = figures.colorize(h, colorscale="Greys")
    assert rgb.shape == (1, 2, 3) and rgb.dtype == np.uint8
    assert abs(int(rgb[0, 0].mean()) - int(rgb[0, 1].mean())) > 200  # black vs white


def test_heatmap_figure_stretches_a_native_map_over_the_image():
    img = np.zeros((64, 64, 3), dtype=np.uint8)
    fig = figures.heatmap_figure(img, np.ones((8, 8)), opacity=0.4)
    heat = fig.data[1]
    assert heat.dx == pytest.approx(8.0) and heat.opacity == pytest.approx(0.4)
    assert heat.x0 + 7 * heat.dx == pytest.approx(59.5)  # last cell centred inside the image


def test_heatmap_levels_are_one_byte_percent_of_the_maximum():
    h = np.array([[-4.0, 2.0], [1.0, 0.0]], dtype=np.float32)
    signed, bound = figures.heatmap_levels(h, signed=True)
    assert signed.dtype == np.int8 and bound == 4.0
    assert signed.tolist() == [[-100, 50], [25, 0]]
    absolute, bound = figures.heatmap_levels(h, signed=False)
    assert absolute.tolist() == [[100, 50], [25, 0]]
    flat, _ = figures.heatmap_levels(np.zeros((2, 2)), signed=False)
    assert flat.max() == 0


def test_heatmap_figure_sends_the_photo_once_as_png_and_the_map_as_levels():
    img = np.random.default_rng(0).integers(0, 255, (32, 48, 3), dtype=np.uint8)
    fig = figures.heatmap_figure(img, np.linspace(-1, 1, 32 * 48).reshape(32, 48), signed=True, split=20)
    photo, heat = fig.data
    assert photo.source.startswith("data:image/png;base64,")
    decoded = Image.open(io.BytesIO(base64.b64decode(photo.source.split(",", 1)[1])))
    assert np.array_equal(np.asarray(decoded), img)  # lossless
    assert heat.z.dtype == np.int8 and (heat.zmin, heat.zmax) == (-100, 100)
    assert "% of max h (1)" in heat.hovertemplate
    (line,) = fig.layout.shapes
    assert line.x0 == line.x1 == 19.5
    spec = fig.to_json()
    assert '"dtype":"i1"' in spec and len(spec) < 20_000  # the map travels as bytes, not float text


def test_split_view_joins_two_maps_at_the_cut():
    a, b = np.full((4, 10), 2.0), np.full((4, 10), -5.0)
    mixed, cut = svc.split_view(a, b, 0.3)
    assert cut == 3
    assert np.all(mixed[:, :3] == 1.0) and np.all(mixed[:, 3:] == 1.0)  # each side |h| scaled to 1
    assert svc.split_view(a, b, 1.5)[1] == 10


def _cell(value: float) -> svc.Cell:
    return svc.Cell(
        method="gradient",
        card_id="c",
        heatmap=np.full((16, 16), value, dtype=np.float32),
        native=np.zeros((16, 16), dtype=np.float32),
        logits=np.zeros(3, dtype=np.float32),
        image=np.full((16, 16, 3), 128, dtype=np.uint8),
        seconds=0.1,
        cached=False,
    )


def test_grid_png_and_csv_exports():
    grid = {("gradient", "a"): _cell(1.0), ("gradient", "b"): _cell(0.0)}
    png = svc.grid_png(grid, ["gradient"], [("a", "base"), ("b", "fooled")], tile=40)
    img = Image.open(io.BytesIO(png))
    assert img.format == "PNG" and img.width > 2 * 40 and img.height > 40
    rows = [{"method": "gradient", "spearman": 0.5}, {"method": "gradcam", "top1": "circle"}]
    parsed = list(csv.DictReader(io.StringIO(svc.grid_csv(rows).decode())))
    assert parsed[0]["spearman"] == "0.5" and parsed[1]["top1"] == "circle"


def test_top_predictions_are_softmax_sorted():
    top = svc.top_predictions(np.array([0.0, 3.0, 1.0]), ["a", "b", "c"], k=2)
    assert [t[0] for t in top] == ["b", "c"]
    assert top[0][1] == pytest.approx(np.exp(3) / (1 + np.exp(3) + np.e))


def test_tree_layout_puts_children_right_of_parents_and_orphans_at_the_root():
    place = figures.tree_layout(["a", "b", "c", "d"], ["", "a", "b", ""])
    assert place["a"][0] == 0 and place["b"][0] == 1 and place["c"][0] == 2 and place["d"][0] == 0
    assert sorted(r for _, r in place.values()) == [0, 1, 2, 3]
    fig = figures.tree_figure(["a", "b"], ["A", "B"], ["", "a"])
    assert list(fig.data[-1].text) == ["A", "B"]


def test_curve_groups_keep_scales_apart():
    series = {"loss": [(1, 2.0)], "loss_f": [(1, 1.0)], "val_fsr": [(1, 0.5)], "images_per_s": [(1, 250.0)]}
    groups = jobs_view.curve_groups(series)
    assert set(groups["Training losses"]) == {"loss", "loss_f"}
    assert set(groups["Validation"]) == {"val_fsr"} and set(groups["Other"]) == {"images_per_s"}
    assert jobs_view.curve_groups({"val_x": [(0, 1)]}).keys() == {"Validation"}


def test_evaluation_report_becomes_tables_matrix_and_csv():
    from backend.services import evaluate as ev

    cell = {"fooled": 0.9, "baseline": 0.1, "test_loss_fooled": [0.1], "test_loss_baseline": [0.5]}
    report = {
        "models": [{"id": "f1", "name": "fooled-1", "attack": "location", "interpreter": "gradcam"}],
        "fsr": {
            "gradcam": {"location/gradcam": cell},
            "gradient": {"location/gradcam": cell | {"fooled": 0.2}},
        },
        "accuracy": {"baseline": {"top1": 0.95, "agreement": 1.0}, "f1": {"top1": 0.93, "agreement": 0.97}},
        "similarity": {"gradcam": {"location/gradcam": {"spearman": [0.1, -0.2], "ssim": [0.3, 0.4]}}},
    }
    v = ev.report_view(report)
    rows, cols, values = v.transfer
    assert rows == ["gradcam", "gradient"] and cols == ["location/gradcam"] and values == [[0.9], [0.2]]
    assert [r["FSR fooled"] for r in v.fsr_rows] == [0.9, 0.2]
    assert [r["checkpoint"] for r in v.accuracy_rows] == ["baseline", "fooled-1"]
    assert v.similarity == {"gradcam · location/gradcam": [0.1, -0.2]}
    parsed = list(csv.DictReader(io.StringIO(ev.to_csv(v).decode())))
    assert [r["table"] for r in parsed] == ["fsr", "fsr", "accuracy", "accuracy"]
