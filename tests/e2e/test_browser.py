"""End to end in a real chromium: the app and a queue worker on loopback, an empty temp lab, served in
classroom mode (every browser session a student until it enters the presenter passphrase).

The lab seeds itself like a classroom first start (train the shapes model, fool a copy, through the
queue). Then: upload photos, see heatmaps of the two seeded checkpoints, draw a Location mask and
submit a short fooling job from the form, watch it reach "succeeded" in Jobs, open its checkpoint in
Inspect, evaluate the pair. Timings are reported, not asserted. The same served lab (one per module:
seeding costs a minute) then takes four sessions at once (each cell computed once for all of them)
and checks what a student and the presenter may do.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.e2e import served_lab as served
from tests.e2e.served_lab import CHROMIUM, CHROMIUM_ARGS

QUICK_SEED = served.quick_seed()

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TIMING_NAME = "ui_timing.md"  # written to the artifacts dir; benchmarks/results/ holds recorded runs
# Records the time of the page's last DOM change; installed just before an action is timed.
WATCH_JS = """() => {
  window.__lastChange = performance.now();
  if (window.__watch) window.__watch.disconnect();
  window.__watch = new MutationObserver(() => { window.__lastChange = performance.now(); });
  const what = {subtree: true, childList: true, attributes: true, characterData: true};
  window.__watch.observe(document.body, what);
  return performance.now();
}"""


PASSPHRASE = "e2e-presenter-words"


@pytest.fixture(scope="module")
def served_lab(tmp_path_factory):
    """A worker and the app (`serve --classroom` on loopback) on a free port over an empty lab, seeded
    like a classroom first start (through the queue, with a quick plan): the trained shapes model and
    its fooled child. One per module: the tests below share it."""
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.skip("chromium is not installed (./lab test installs it)")
    with pytest.MonkeyPatch.context() as monkeypatch:
        yield from _served_lab(tmp_path_factory.mktemp("served"), monkeypatch)


def _served_lab(tmp_path, monkeypatch):
    env = served.lab_env(tmp_path, PASSPHRASE, OMP_NUM_THREADS="1")
    for name in served.LAB_VARS:
        monkeypatch.setenv(name, env[name])  # this process submits the seeding jobs to the same lab
    monkeypatch.setenv("FOOLING_LAB_SEED_DEMO", "1")
    monkeypatch.delenv("FOOLING_LAB_QUEUE_URL", raising=False)
    port = served.free_port()
    logs = tmp_path / "logs"
    logs.mkdir()
    proc = served.start_server(env, port, logs / "serve.log", timeout=60.0)
    try:
        state, first_note, seeded_s = served.seed(QUICK_SEED)
        from backend.models.registry import Registry

        reg = Registry()
        yield {
            "url": f"http://127.0.0.1:{port}",
            "base": reg.card(state["shapes"]),
            "copy": reg.card(state["shapes_fooled"]),
            "seed": state,
            "first_note": first_note,
            "seeded_s": seeded_s,
            "logs": logs,
            "data": tmp_path / "data",
        }
    finally:
        served.stop_server(proc, timeout=10.0)


def _check_seeding(lab: dict) -> None:
    """The first start queued `train`, then `fool` on its result; both succeeded, the fooled child
    names its parent, and the landing page's pair is ready."""
    from backend import jobs
    from backend.services import demo

    state, base, fooled = lab["seed"], lab["base"], lab["copy"]
    assert lab["first_note"] and "training the shapes model" in lab["first_note"]
    for key in ("train_job", "shapes_fool_job"):
        record = jobs.get(state[key])
        assert record.state == "succeeded", record.error
    assert "lite0_job" not in state  # the quick plan has no Lite0
    assert base.kind == "trained" and base.architecture == "shapes_cnn" and base.preprocessing["size"] == 32
    assert fooled.kind == "fooled" and fooled.parent == base.id
    assert fooled.config["attack"] == "location" and fooled.config["interpreter"] == "gradcam"
    assert fooled.config["steps"] == QUICK_SEED.shapes_fool["steps"]
    assert ("Shapes CNN on synthetic shapes", base.id, fooled.id) in demo.demo_pairs()
    seeded = {state["train_job"], state["shapes_fool_job"]}
    assert demo.advance(QUICK_SEED) is None  # done: nothing more queued
    assert {r.id for r in jobs.list_jobs() if r.owner is None} == seeded


def _photo_png(cx: int = 150) -> bytes:
    """A photo-like test image: a red disc (centre column `cx`) on a textured background, 300x200."""
    rng = np.random.default_rng(7)
    img = rng.integers(60, 140, (200, 300, 3), dtype=np.uint8)
    yy, xx = np.mgrid[:200, :300]
    img[(yy - 100) ** 2 + (xx - cx) ** 2 < 60**2] = (220, 30, 30)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def _grid_caption(page, timeout_ms: int) -> tuple[int, float, int]:
    loc = page.get_by_text(re.compile(r"Grid ready: \d+ cells"))
    loc.first.wait_for(timeout=timeout_ms)
    text = loc.first.inner_text()
    cells, secs, hits = re.search(r"Grid ready: (\d+) cells in ([\d.]+) s \((\d+) from cache", text).groups()
    return int(cells), float(secs), int(hits)


def _job_heading(page, job_id: str, state: str):
    """The Jobs page's heading of one job once it shows `state` (not the table's hidden a11y copy)."""
    return page.locator("h3").filter(has_text=re.compile(rf"{re.escape(job_id)}.*{state}")).first


def _wait_grid_drawn(page):
    """Until the last element of the grid and its 4 x 2 cell images are on the page (loaded); returns
    the images."""
    page.get_by_role("button", name="Download numbers (CSV)").wait_for(timeout=60_000)
    images = page.locator('[data-testid="stImage"] img')
    images.nth(7).wait_for(timeout=60_000)
    page.wait_for_function(
        "() => { const i = [...document.querySelectorAll('[data-testid=stImage] img')];"
        " return i.length >= 8 && i.every(x => x.complete && x.naturalWidth > 0); }",
        timeout=60_000,
    )
    return images


def _settled_after(page, t0_ms: float, quiet_ms: float = 400.0, timeout_s: float = 60.0) -> float:
    """Seconds from `t0_ms` (page clock, from WATCH_JS) to the page's last DOM change, once the script
    run is over and nothing has changed for `quiet_ms`: what a person waits for, without fixed sleeps."""
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="detached", timeout=120_000)
    deadline = time.monotonic() + timeout_s
    while page.evaluate("() => performance.now() - window.__lastChange") < quiet_ms:
        if time.monotonic() > deadline:
            raise TimeoutError("the page kept changing")
        page.wait_for_timeout(50)
    return (page.evaluate("() => window.__lastChange") - t0_ms) / 1000


def _pick_image(page, name: str) -> None:
    page.locator('[data-testid="stSelectbox"]').filter(has_text="Image").first.click()
    page.get_by_role("option", name=name, exact=True).click()


def _draw_mask(page, corners=((0.2, 0.2), (0.6, 0.2), (0.6, 0.6), (0.2, 0.6))) -> int:
    """Lasso a polygon (fractions of the picture) on the Fool page's Draw mask; returns its pixels."""
    page.get_by_text("Draw", exact=True).click()
    _wait_idle(page)
    drag = page.locator('[data-testid="stPlotlyChart"] .nsewdrag').first
    drag.wait_for(timeout=30_000)
    box = drag.bounding_box()
    at = [(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy) for fx, fy in corners]
    page.mouse.move(*at[0])
    page.mouse.down()
    for x, y in [*at[1:], at[0]]:
        page.mouse.move(x, y, steps=8)
    page.mouse.up()
    caption = page.get_by_text(re.compile(r"Drawn( mask)?: \d+ of"))
    caption.first.wait_for(timeout=30_000)
    _wait_idle(page)
    return int(re.search(r"Drawn(?: mask)?: (\d+) of", caption.first.inner_text()).group(1))


def _wait_idle(page) -> None:
    """Until Streamlit's script run ends (the status widget disappears)."""
    page.wait_for_timeout(300)
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="detached", timeout=120_000)


@pytest.mark.timeout(600)
def test_seeded_lab_upload_inspect_fool_watch_open(served_lab, artifacts_dir, tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    _check_seeding(served_lab)  # 0. the first start trained a model and fooled a copy through the queue
    url, base, copy_card = served_lab["url"], served_lab["base"], served_lab["copy"]
    photo, other = tmp_path / "photo.png", tmp_path / "other.png"
    photo.write_bytes(_photo_png())
    other.write_bytes(_photo_png(cx=90))
    timings: dict[str, float] = {"seeding_s": served_lab["seeded_s"]}
    with playwright.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 2600})
        try:
            # 1. Inspect: upload two photos; the first is drawn for two checkpoints x 4 fast methods
            page.goto(f"{url}/inspect?ckpt={base.id},{copy_card.id}")
            page.get_by_text("Explanation methods").wait_for(timeout=60_000)
            _wait_idle(page)
            t0 = time.perf_counter()
            page.locator('input[type="file"]').first.set_input_files([str(photo), str(other)])
            cells, server_s, hits = _grid_caption(page, 120_000)
            images = _wait_grid_drawn(page)
            timings["first_render_browser_s"] = time.perf_counter() - t0
            timings["first_render_server_s"] = server_s
            assert (cells, hits) == (8, 0)
            assert images.count() >= 8
            _wait_idle(page)
            page.screenshot(path=str(artifacts_dir / "e2e-1-inspect.png"), full_page=True)

            # a display-only change reruns only the grid fragment (no model, no cache, no metrics)
            t0 = page.evaluate(WATCH_JS)
            page.get_by_text("Signed", exact=True).click()
            timings["display_change_browser_s"] = _settled_after(page, t0)
            assert _grid_caption(page, 10_000) == (cells, server_s, hits)  # the page above did not rerun

            # cached re-render: the other photo (computed), then back: a full rerun, every cell cached
            _pick_image(page, "other.png")
            page.get_by_text(re.compile(r"Grid ready: 8 cells .*\(0 from cache\)")).first.wait_for(
                timeout=120_000
            )
            _wait_idle(page)
            t0 = page.evaluate(WATCH_JS)
            _pick_image(page, "photo.png")
            page.get_by_text("(8 from cache)").first.wait_for(timeout=60_000)
            timings["cached_render_browser_s"] = _settled_after(page, t0)
            timings["cached_render_server_s"] = _grid_caption(page, 10_000)[1]

            # 2. Fool: a short job from the form
            page.goto(f"{url}/fool?base={base.id}")
            page.get_by_role("button", name="Submit fooling job").wait_for(timeout=60_000)
            _wait_idle(page)
            for label, value in (("Images", "64"), ("Steps", "4"), ("Batch size", "16")):
                box = page.get_by_label(label, exact=True)
                box.fill(value)
                box.press("Enter")
                _wait_idle(page)
            drawn = _draw_mask(page)  # a lasso square over 0.2..0.6 of the 32 px picture
            assert 12**2 <= drawn <= 14**2, drawn
            (saved,) = (served_lab["data"] / "uploads" / "masks").glob("mask-*.npy")
            assert int(np.load(saved, allow_pickle=False).sum()) == drawn
            page.screenshot(path=str(artifacts_dir / "e2e-2-fool.png"), full_page=True)
            page.get_by_role("button", name="Submit fooling job").click()
            queued = page.get_by_text(re.compile(r"Job .* queued"))
            queued.first.wait_for(timeout=60_000)
            job_id = re.search(r"Job (\S+) queued", queued.first.inner_text()).group(1)

            # 3. Jobs: the live panel polls until the job succeeds
            t0 = time.perf_counter()
            page.get_by_text("Watch it in Jobs").click()
            _job_heading(page, job_id, "succeeded").wait_for(timeout=240_000)
            timings["fool_job_s"] = time.perf_counter() - t0
            page.get_by_text("Open in Inspect").wait_for(timeout=30_000)
            page.screenshot(path=str(artifacts_dir / "e2e-3-jobs.png"), full_page=True)

            # 4. its checkpoint opens in Inspect next to its base
            page.get_by_text("Open in Inspect").click()
            page.get_by_text("Explanation methods").wait_for(timeout=60_000)
            page.get_by_text(re.compile(r"-fooled|location")).first.wait_for(timeout=30_000)
            page.get_by_text("Synthetic shapes", exact=True).click()
            cells, _, _ = _grid_caption(page, 120_000)
            _wait_grid_drawn(page)
            assert cells == 8
            page.get_by_text("vs baseline").nth(3).wait_for(timeout=30_000)  # one per method

            page.screenshot(path=str(artifacts_dir / "e2e-4-inspect-fooled.png"), full_page=True)

            # 5. evaluate the pair as a job, then read the FSR table
            page.goto(f"{url}/jobs?job={job_id}")
            page.get_by_text("Evaluate", exact=True).last.wait_for(timeout=60_000)
            page.locator('a[href*="evaluate?"]').first.click()
            page.get_by_role("button", name="Run evaluation").wait_for(timeout=60_000)
            _wait_idle(page)
            evaluate_url = page.url
            box = page.get_by_label("At most this many images", exact=True)
            box.fill("32")
            box.press("Enter")
            _wait_idle(page)
            t0 = time.perf_counter()
            page.get_by_role("button", name="Run evaluation").click()
            queued = page.get_by_text(re.compile(r"Evaluation job .* queued"))
            queued.first.wait_for(timeout=60_000)
            eval_id = re.search(r"job (\S+) queued", queued.first.inner_text()).group(1)
            page.goto(f"{url}/jobs?job={eval_id}")
            _job_heading(page, eval_id, "succeeded").wait_for(timeout=240_000)
            timings["evaluate_job_s"] = time.perf_counter() - t0
            page.goto(evaluate_url)
            page.get_by_text("Fooling success rate per interpreter").wait_for(timeout=60_000)
            page.get_by_role("button", name="Export CSV").wait_for(timeout=60_000)
            page.screenshot(path=str(artifacts_dir / "e2e-5-evaluate.png"), full_page=True)
        except Exception:
            page.screenshot(path=str(artifacts_dir / "e2e-failure.png"), full_page=True)
            raise
        finally:
            browser.close()
    _report(timings, artifacts_dir)


def _errors(page) -> list[str]:
    """Error boxes and exceptions on a page (none expected)."""
    boxes = page.locator('[data-testid="stAlertContentError"], [data-testid="stException"]')
    return [boxes.nth(i).inner_text() for i in range(boxes.count())]


def _shared_caption(page, timeout_ms: int) -> tuple[int, int, int]:
    """(cells, from cache, shared with another session) of the grid caption."""
    loc = page.get_by_text(re.compile(r"Grid ready: \d+ cells"))
    loc.first.wait_for(timeout=timeout_ms)
    text = loc.first.inner_text()
    cells, hits = re.search(r"Grid ready: (\d+) cells in [\d.]+ s \((\d+) from cache", text).groups()
    shared = re.search(r"(\d+) shared with other sessions", text)
    return int(cells), int(hits), int(shared.group(1)) if shared else 0


@pytest.mark.timeout(300)
def test_sessions_at_once_compute_each_cell_once(served_lab, artifacts_dir):
    """Four students open the same comparison at the same moment: no error anywhere, every session
    gets all 8 cells, and the 8 distinct cells are computed once in all (the rest come from the
    cache or from the computation another session started: single-flight)."""
    playwright = pytest.importorskip("playwright.sync_api")
    url, base, copy_card = served_lab["url"], served_lab["base"], served_lab["copy"]
    with playwright.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        pages = [browser.new_context(viewport={"width": 1400, "height": 2400}).new_page() for _ in range(4)]
        try:
            for page in pages:
                page.goto(f"{url}/inspect?ckpt={base.id},{copy_card.id}")
            for page in pages:
                page.get_by_text("Explanation methods").wait_for(timeout=60_000)
                _wait_idle(page)
            for page in pages:  # as close together as one driver can click
                page.get_by_text("Sample photos", exact=True).click()
            counts = [_shared_caption(page, 120_000) for page in pages]
            for page in pages:
                _wait_grid_drawn(page)
                _wait_idle(page)
            assert [_errors(page) for page in pages] == [[]] * 4
            assert [c[0] for c in counts] == [8] * 4
            computed = sum(cells - hits - shared for cells, hits, shared in counts)
            assert computed == 8, counts  # one computation per distinct cell across the sessions
            pages[0].screenshot(path=str(artifacts_dir / "e2e-6-four-sessions.png"), full_page=True)
        except Exception:
            pages[0].screenshot(path=str(artifacts_dir / "e2e-failure-sessions.png"), full_page=True)
            raise
        finally:
            browser.close()


@pytest.mark.timeout(300)
def test_student_cannot_delete_or_cancel_others_presenter_can(served_lab, artifacts_dir):
    """A student session: the join QR code on the Demo page, no Delete on Models, no Cancel/Retry on
    the lab's jobs. The same session after the presenter passphrase: Delete is there."""
    playwright = pytest.importorskip("playwright.sync_api")
    url, seed = served_lab["url"], served_lab["seed"]
    with playwright.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 2000})
        try:
            page.goto(url)
            page.get_by_text("Scan to join").wait_for(timeout=60_000)  # classroom mode: the QR code
            page.get_by_text("Join this class").wait_for(timeout=10_000)
            page.goto(f"{url}/jobs?job={seed['train_job']}")
            page.get_by_text("Submitted by the lab").wait_for(timeout=60_000)
            _wait_idle(page)
            assert page.get_by_role("button", name="Retry").count() == 0
            assert page.get_by_role("button", name="Cancel").count() == 0
            page.get_by_role("link", name="Models").click()
            page.get_by_text("is for the presenter").wait_for(timeout=60_000)
            _wait_idle(page)
            page.get_by_text("Lineage graph, raw card").first.click()
            _wait_idle(page)
            assert page.get_by_role("button", name="Delete").count() == 0
            sidebar = page.locator('[data-testid="stSidebar"]')
            sidebar.get_by_text("· student").click()
            sidebar.get_by_label("Presenter passphrase").fill(PASSPHRASE)
            sidebar.get_by_role("button", name="Unlock presenter mode").click()
            sidebar.get_by_text("· presenter").wait_for(timeout=60_000)
            _wait_idle(page)
            page.get_by_text("Classroom: disk, quotas, folders").wait_for(timeout=60_000)
            page.get_by_text(re.compile("Lineage graph, raw card, rename, delete")).first.click()
            page.get_by_role("button", name="Delete").first.wait_for(timeout=30_000)
            assert _errors(page) == []
            page.screenshot(path=str(artifacts_dir / "e2e-7-presenter.png"), full_page=True)
        except Exception:
            page.screenshot(path=str(artifacts_dir / "e2e-failure-presenter.png"), full_page=True)
            raise
        finally:
            browser.close()


def _report(t: dict[str, float], artifacts_dir: Path) -> None:
    lines = [
        "# Dashboard timing (end-to-end browser test)",
        "",
        "Measured by `tests/e2e/test_browser.py` in headless chromium against `python -m backend serve`,",
        f"CPU only ({os.cpu_count()} cores), shapes CNN (32x32), 1 photo x 2 checkpoints x 4 fast methods.",
        "Reported, not asserted. *server* = the grid's compute time on the page; *browser* = from the",
        "action until the page's last DOM change (first render: until all 8 cell images are loaded).",
        "",
        "| what | server (s) | browser (s) | target |",
        "| --- | --- | --- | --- |",
        f"| first render | {t['first_render_server_s']:.2f} | {t['first_render_browser_s']:.2f} | < 5 s |",
        f"| cached re-render (full rerun, 8 cells from the cache) | {t['cached_render_server_s']:.3f} "
        f"| {t['cached_render_browser_s']:.2f} | < 0.5 s |",
        f"| display change (Signed; grid fragment only) | | {t['display_change_browser_s']:.2f} | < 0.5 s |",
        f"| short fooling job, submit -> succeeded | | {t['fool_job_s']:.1f} | |",
        f"| evaluation job (32 images), submit -> succeeded | | {t['evaluate_job_s']:.1f} | |",
        f"| first-start seeding, quick plan (train + fool jobs) | | {t['seeding_s']:.1f} | |",
        "",
    ]
    (artifacts_dir / TIMING_NAME).write_text("\n".join(lines))
    print("\n".join(lines))
