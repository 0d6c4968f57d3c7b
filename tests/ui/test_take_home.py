"""Take-home reports: one HTML file each (Inspect comparison, evaluation, detection report card), with
every image embedded; opened in chromium with the network cut off, every image still draws."""

from __future__ import annotations

import base64
import io
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from backend.jobs.records import JobRecord
from backend.services import take_home

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
def reports(lab) -> dict[str, bytes]:
    """The three reports built from real parts: a computed 2 x 2 grid, an evaluation view, a detect
    result with curves and maps."""
    from backend.services import evaluate
    from backend.services.inspect import compute_cell, grid_similarities
    from backend.services.photos import synthetic_photos

    photo = synthetic_photos(1, size=32, seed=2)[0]
    base, fooled = lab["baseline"], lab["fooled"]
    methods = ["gradient", "gradcam"]
    grid = {(m, c.id): compute_cell(photo, c.id, m) for m in methods for c in (base, fooled)}
    sims = grid_similarities(grid, base.id)
    columns = [(base.id, base.name), (fooled.id, fooled.name)]
    inspect = take_home.inspect_report(photo.name, grid, methods, columns, sims)

    cell = {"fooled": 0.9, "baseline": 0.1}
    view = evaluate.report_view(
        {
            "models": [
                {"id": "f1", "name": "fooled-1", "attack": "location", "interpreter": "gradcam"},
                {"id": "f2", "name": "fooled-2", "attack": "topk", "interpreter": "gradient"},
            ],
            "fsr": {
                "gradcam": {"location/gradcam": cell, "topk/gradient": cell | {"fooled": 0.3}},
                "gradient": {"location/gradcam": cell | {"fooled": 0.2}, "topk/gradient": cell},
            },
            "accuracy": {"baseline": {"top1": 0.95}, "f1": {"top1": 0.93}, "f2": {"top1": 0.9}},
            "similarity": {"gradcam": {"location/gradcam": {"spearman": [0.1, -0.2]}}},
        }
    )
    ev_record = JobRecord(
        id="evaluate-x", kind="evaluate", config={"baseline": base.id, "fooled": ["f1", "f2"], "images": 32}
    )
    evaluation = take_home.evaluation_report(ev_record, view)

    finding = {
        "test": "noise_inputs",
        "measure": "pcc",
        "baseline": 0.23,
        "suspect": 0.98,
        "threshold": 0.6,
        "flagged": True,
        "rule": "suspect > threshold",
        "verdict": "flags the suspect <b>",
    }
    curve = {"sigma": [0.0, 0.01, 0.02], "agreement": [1.0, 0.97, 0.9], "pcc_to_clean": [1.0, 0.9, 0.8]}
    result = {
        "report": {"findings": [finding], "summary": "1 of 1 tests flag the suspect."},
        "baseline": {"noise_inputs": {"pcc_mean": 0.23, "pcc_std": 0.1, "ssim_mean": 0.2, "pairs": 6}},
        "suspect": {
            "noise_inputs": {"pcc_mean": 0.98, "pcc_std": 0.01, "ssim_mean": 0.9, "pairs": 6},
            "weight_noise": {"curve": curve},
        },
    }
    det_record = JobRecord(
        id="detect-x",
        kind="detect",
        config={"suspect": fooled.id, "baseline": base.id, "method": "gradcam"},
        result=result,
    )
    maps = {"suspect/noise_maps": np.random.default_rng(0).random((2, 32, 32)).astype(np.float32)}
    detection = take_home.detection_report(det_record, maps)
    return {"comparison": inspect, "evaluation": evaluation, "detection": detection}


def _images(html: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([^"]+)"', html)]


def test_reports_are_self_contained_and_hold_the_numbers(reports):
    for name, data in reports.items():
        html = data.decode()
        assert "Content-Security-Policy" in html and "default-src 'none'" in html, name
        assert not re.search(r"(src|href)=[\"'](?!data:)", html), name  # nothing loaded from anywhere
        assert "http://" not in html.replace("http://www.w3.org/2000/svg", "") and "https://" not in html
        for png in _images(html):
            assert Image.open(io.BytesIO(png)).size[0] > 0
    comparison = reports["comparison"].decode()
    assert len(_images(comparison)) == 4 and "Spearman" in comparison and "shapes-base" in comparison
    evaluation = reports["evaluation"].decode()
    assert len(_images(evaluation)) == 1 and "fooled-2" in evaluation and "topk/gradient" in evaluation
    detection = reports["detection"].decode()
    assert "flags the suspect &lt;b&gt;" in detection  # escaped, never markup
    assert "<svg" in detection and len(_images(detection)) == 2


@pytest.mark.browser
def test_reports_open_offline_in_chromium_with_every_image(reports, tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.skip("chromium is not installed (./lab test installs it)")
    requests: list[str] = []
    with playwright.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            context = browser.new_context(offline=True)
            page = context.new_page()
            page.on("request", lambda r: requests.append(r.url))
            for name, data in reports.items():
                path = tmp_path / f"{name}.html"
                path.write_bytes(data)
                page.goto(path.as_uri())
                page.wait_for_load_state("load")
                drawn = page.evaluate("() => [...document.images].map(i => i.complete && i.naturalWidth > 0)")
                assert drawn and all(drawn), (name, drawn)
                if name == "detection":
                    assert page.locator("svg polyline").count() >= 1
        finally:
            browser.close()
    assert all(u.startswith(("file://", "data:")) for u in requests), requests
