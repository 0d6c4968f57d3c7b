"""A classroom at once (a benchmark, not a test): N browser sessions against one served app.

    python benchmarks/classroom_load.py [--sessions 10,20,30] [--out benchmarks/results/classroom_load.md]

Serves the lab like `./lab app --classroom` (on loopback) over a fresh temporary lab, seeds the demo
pair through the queue (a small shapes model and a fooled copy: the quick plan of the browser test),
then for each N: starts the app afresh (cold result cache), lets N Playwright contexts (one chromium,
N sessions) each open the Demo page, click through its three steps, then follow its link to Inspect
(the same session) and pick a sample photo with the two checkpoints and four methods; and the same N
sessions again (warm cache). Per run it reports p50 / p95 time to the first heatmap on Inspect (from
clicking the link until the first cell image has loaded) and to the whole grid, errors (error boxes,
exceptions, timeouts), and the server's CPU (all its processes: app, worker, runners) and peak memory.
The browser runs on the same machine: on a 2-core laptop its own CPU is part of what the students'
phones would not cost.

Goal (issue 16, on the 2-core machine): 30 sessions, no error, p95 under 10 s cold and 2 s warm.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
TINY_SHAPES = {"seed": 0, "size": 32, "n_train": 300, "n_val": 50, "epochs": 2, "name": "tiny shapes"}
FIRST_IMAGE_JS = (
    "() => [...document.querySelectorAll('[data-testid=stImage] img')]"
    ".some(i => i.complete && i.naturalWidth > 0)"
)
ALL_IMAGES_JS = (
    "n => { const i = [...document.querySelectorAll('[data-testid=stImage] img')];"
    " return i.length >= n && i.every(x => x.complete && x.naturalWidth > 0); }"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 120.0) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


# ---- the server and what it costs ------------------------------------------------------------------------
class ProcessGroupMeter:
    """CPU seconds and resident memory of every process in one process group, sampled from /proc."""

    def __init__(self, pgid: int, every_s: float = 0.5):
        self.pgid, self.every_s = pgid, every_s
        self.peak_rss = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._tick = os.sysconf("SC_CLK_TCK")
        self._page = os.sysconf("SC_PAGE_SIZE")
        self._seen: dict[int, float] = {}  # pid -> last cpu seconds (exited processes keep theirs)

    def _sample(self) -> int:
        rss = 0
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                fields = stat[stat.rindex(")") + 2 :].split()
                if int(fields[2]) != self.pgid:  # field 5 of stat: the process group
                    continue
                self._seen[int(entry.name)] = (int(fields[11]) + int(fields[12])) / self._tick
                rss += int((entry / "statm").read_text().split()[1]) * self._page
            except (OSError, ValueError, IndexError):
                continue
        return rss

    def cpu_seconds(self) -> float:
        self._sample()
        return sum(self._seen.values())

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self.peak_rss = max(self.peak_rss, self._sample())

    def __enter__(self) -> ProcessGroupMeter:
        self.peak_rss = self._sample()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def start_server(env: dict, port: int, log: Path) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "backend",
        "serve",
        "--port",
        str(port),
        "--address",
        "127.0.0.1",
        "--classroom",
    ]
    proc = subprocess.Popen(
        cmd,
        cwd=REPO,
        env=env,
        stdout=open(log, "a"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # noqa: SIM115
    )
    wait_http(f"http://127.0.0.1:{port}/_stcore/health")
    return proc


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def seed(env: dict) -> tuple[str, str]:
    """The demo pair (baseline, fooled) trained and fooled through the served lab's queue."""
    from backend.services import demo

    plan = demo.SeedPlan(
        train=dict(TINY_SHAPES),
        shapes_fool={"steps": 3, "batch_size": 16, "dataset": {"n": 64}},
        lite0_fool=None,
    )
    os.environ.update({k: env[k] for k in ("FOOLING_LAB_DATA", "FOOLING_LAB_MODELS", "FOOLING_LAB_DEVICE")})
    os.environ["FOOLING_LAB_SEED_DEMO"] = "1"
    deadline = time.monotonic() + 900
    while demo.advance(plan) is not None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"seeding did not finish: {demo.read_state()}")
        time.sleep(1.0)
    state = demo.read_state()
    if not state.get("shapes_fooled"):
        raise RuntimeError(f"seeding failed: {state}")
    return state["shapes"], state["shapes_fooled"]


# ---- one student ------------------------------------------------------------------------------------------
@dataclass
class SessionResult:
    first_heatmap_s: float | None = None
    grid_s: float | None = None
    demo_s: float | None = None
    errors: list[str] = field(default_factory=list)


async def errors_on(page) -> list[str]:
    boxes = page.locator('[data-testid="stAlertContentError"], [data-testid="stException"]')
    return [await boxes.nth(i).inner_text() for i in range(await boxes.count())]


async def student(browser, url: str, base: str, fooled: str, timeout_s: float) -> SessionResult:
    out = SessionResult()
    context = await browser.new_context(viewport={"width": 1300, "height": 2200})
    page = await context.new_page()
    ms = int(timeout_s * 1000)
    try:
        t0 = time.perf_counter()
        await page.goto(url)  # the Demo page: pick an image, step 2, step 3
        await page.get_by_text("① Pick an image").wait_for(timeout=ms)
        await page.locator('[data-testid="stButtonGroup"] button').first.click()
        toggle = page.get_by_text("Show the original model's explanation (Grad-CAM)")
        await toggle.wait_for(timeout=ms)
        await toggle.click()
        await page.get_by_text(re.compile(r"^Original: ")).first.wait_for(timeout=ms)
        await page.get_by_text("Show the fooled model's explanation").click()
        await page.get_by_text(re.compile(r"^Fooled: ")).first.wait_for(timeout=ms)
        out.demo_s = time.perf_counter() - t0
        out.errors += await errors_on(page)

        t0 = time.perf_counter()  # Inspect, by the Demo page's link: sample photos, 2 checkpoints, 4 methods
        await page.get_by_text("Compare every method in Inspect").click(timeout=ms)
        await page.get_by_text("Sample photos", exact=True).click(timeout=ms)
        await page.get_by_text(re.compile(r"^Grid ready: ")).first.wait_for(timeout=ms)
        await page.wait_for_function(FIRST_IMAGE_JS, timeout=ms)
        out.first_heatmap_s = time.perf_counter() - t0
        await page.wait_for_function(ALL_IMAGES_JS, arg=8, timeout=ms)
        out.grid_s = time.perf_counter() - t0
        out.errors += await errors_on(page)
    except Exception as err:  # a timeout is an error the student sees
        out.errors.append(f"{type(err).__name__}: {str(err).splitlines()[0][:160]}")
    finally:
        await context.close()
    return out


async def classroom(url: str, base: str, fooled: str, n: int, timeout_s: float) -> list[SessionResult]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            return list(
                await asyncio.gather(*(student(browser, url, base, fooled, timeout_s) for _ in range(n)))
            )
        finally:
            await browser.close()


# ---- the report -------------------------------------------------------------------------------------------
def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


@dataclass
class Run:
    n: int
    cache: str
    results: list[SessionResult]
    wall_s: float
    cpu_s: float
    peak_rss: int

    def row(self) -> list[str]:
        first = [r.first_heatmap_s for r in self.results if r.first_heatmap_s is not None]
        grid = [r.grid_s for r in self.results if r.grid_s is not None]
        failed = sum(1 for r in self.results if r.errors)
        return [
            str(self.n),
            self.cache,
            f"{percentile(first, 0.5):.2f} / {percentile(first, 0.95):.2f}",
            f"{percentile(grid, 0.5):.2f} / {percentile(grid, 0.95):.2f}",
            f"{statistics.median([r.demo_s for r in self.results if r.demo_s] or [float('nan')]):.2f}",
            f"{failed} of {self.n}",
            f"{self.cpu_s:.0f} s ({100 * self.cpu_s / max(self.wall_s, 1e-9):.0f}% of a core)",
            f"{self.peak_rss / 1024**2:.0f} MB",
            f"{self.wall_s:.0f} s",
        ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", default="10,20,30", help="comma-separated session counts")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds a session waits for one step")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "classroom_load.md")
    ap.add_argument("--keep", action="store_true", help="keep the temporary lab")
    args = ap.parse_args()
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        sys.exit("chromium is not installed (./lab test installs it)")
    counts = [int(n) for n in args.sessions.split(",") if n.strip()]
    root = Path(tempfile.mkdtemp(prefix="classroom-load-"))
    env = dict(os.environ)
    env.pop("FOOLING_LAB_QUEUE_URL", None)
    env |= {
        "FOOLING_LAB_DATA": str(root / "data"),
        "FOOLING_LAB_MODELS": str(root / "models"),
        "FOOLING_LAB_DEVICE": "cpu",
        "FOOLING_LAB_SEED_DEMO": "0",
        "FOOLING_LAB_PRESENTER_PASSPHRASE": "load-benchmark",
    }
    log = root / "serve.log"
    runs: list[Run] = []
    try:
        port = free_port()
        proc = start_server(env, port, log)
        try:
            print("[load] seeding the demo pair through the queue ...", flush=True)
            base, fooled = seed(env)
        finally:
            stop_server(proc)
        for n in counts:
            shutil.rmtree(root / "data" / "cache", ignore_errors=True)  # cold: an empty result cache
            proc = start_server(env, port, log)
            try:
                for cache in ("cold", "warm"):
                    with ProcessGroupMeter(proc.pid) as meter:
                        cpu0, t0 = meter.cpu_seconds(), time.perf_counter()
                        results = asyncio.run(
                            classroom(f"http://127.0.0.1:{port}", base, fooled, n, args.timeout)
                        )
                        wall, cpu = time.perf_counter() - t0, meter.cpu_seconds() - cpu0
                    runs.append(Run(n, cache, results, wall, cpu, meter.peak_rss))
                    print(f"[load] N={n} {cache}: {runs[-1].row()}", flush=True)
                    for r in results:
                        for e in r.errors[:2]:
                            print(f"[load]   error: {e}", flush=True)
            finally:
                stop_server(proc)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    write(runs, args.out)


def write(runs: list[Run], out: Path) -> None:
    from benchmarks.common import machine_description, markdown_table

    header = [
        "sessions",
        "cache",
        "first heatmap p50 / p95 (s)",
        "whole grid p50 / p95 (s)",
        "Demo 3 steps, median (s)",
        "sessions with an error",
        "server CPU",
        "server peak memory",
        "wall",
    ]
    text = "\n".join(
        [
            "# Classroom load (N browser sessions at once)",
            "",
            "`python benchmarks/classroom_load.py --sessions "
            + ",".join(str(n) for n in dict.fromkeys(r.n for r in runs))
            + "`: one served app (`serve --classroom`: app + one worker),",
            "N Playwright sessions in one headless chromium on the same machine. Each session: the Demo",
            "page's three steps, then Inspect on a sample photo, 2 checkpoints (shapes CNN 32 px + fooled",
            "copy) x 4 fast methods. *first heatmap*: from clicking the Demo page's link to Inspect until",
            "the first cell image has loaded. *cold*: fresh app and empty result cache; *warm*: the same",
            "N sessions again.",
            "Goal: 30 sessions, no error, p95 < 10 s cold, < 2 s warm.",
            "",
            machine_description("cpu"),
            "",
            markdown_table(header, [r.row() for r in runs]),
            "",
        ]
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
