"""A served lab for browser work: the app and a queue worker (`serve --classroom` on loopback) over an
empty temporary lab, seeded like a classroom first start through the queue with a quick plan.

Shared by the browser test (tests/e2e/test_browser.py) and the classroom load benchmark
(benchmarks/classroom_load.py), so both start, seed and stop the lab the same way.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the load benchmark's browser process imports this module: no torch there
    from backend.services.demo import SeedPlan

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def quick_seed() -> SeedPlan:
    """The classroom seeding's configs, made small (the worker runs exactly what the plan submits)."""
    from backend.services.demo import SeedPlan
    from tests.ui.helpers import TINY_SHAPES

    return SeedPlan(
        train=dict(TINY_SHAPES),
        shapes_fool={"steps": 3, "batch_size": 16, "dataset": {"n": 64}},
        lite0_fool=None,
    )


# What this process must share with the served lab to submit the seeding jobs to its queue.
LAB_VARS = ("FOOLING_LAB_DATA", "FOOLING_LAB_MODELS", "FOOLING_LAB_DEVICE")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


def lab_env(root: Path, passphrase: str, **extra: str) -> dict[str, str]:
    """The served lab's environment: a lab under `root`, CPU, classroom passphrase, no seeding by the
    app itself (its sidebar would seed with the full classroom plan; `seed` uses the quick one)."""
    env = dict(os.environ)
    env.pop("FOOLING_LAB_QUEUE_URL", None)
    env |= {
        "FOOLING_LAB_DATA": str(root / "data"),
        "FOOLING_LAB_MODELS": str(root / "models"),
        "FOOLING_LAB_DEVICE": "cpu",
        "FOOLING_LAB_SEED_DEMO": "0",
        "FOOLING_LAB_PRESENTER_PASSPHRASE": passphrase,
    }
    return env | extra


def start_server(env: dict[str, str], port: int, log: Path, timeout: float = 120.0) -> subprocess.Popen:
    """`python -m backend serve --classroom` on 127.0.0.1:`port` (its own process group, output to
    `log`), once its health endpoint answers."""
    cmd = [sys.executable, "-m", "backend", "serve", "--port", str(port), "--address", "127.0.0.1"]
    proc = subprocess.Popen(
        [*cmd, "--classroom"],
        cwd=ROOT,
        env=env,
        stdout=open(log, "a"),  # noqa: SIM115 - lives with the process
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/_stcore/health", timeout)
    except BaseException:
        stop_server(proc)
        raise
    return proc


def stop_server(proc: subprocess.Popen, timeout: float = 20.0) -> None:
    """SIGTERM to the server's process group (app, worker, runners), SIGKILL if it lingers."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def seed(plan: SeedPlan | None = None, timeout: float = 240.0) -> tuple[dict, str | None, float]:
    """Seed the served lab like a classroom first start: what the sidebar does (`demo.advance`) once,
    then every second until done. This process's environment must name the lab (`LAB_VARS`) and have
    FOOLING_LAB_SEED_DEMO=1. Returns (the seeding state, the first sidebar note, seconds)."""
    from backend.services import demo

    plan = plan or quick_seed()
    t0 = time.perf_counter()
    first_note = demo.advance(plan)
    deadline = time.monotonic() + timeout
    while demo.advance(plan) is not None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"demo seeding did not finish: {demo.read_state()}")
        time.sleep(1.0)
    return demo.read_state(), first_note, time.perf_counter() - t0
