"""`python -m backend serve` starts a consumer with the app and stops it with the app;
`python -m backend jobs submit selftest --wait` is the worker health check."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from backend.config import REPO_ROOT
from tests.jobs.conftest import _free_port, pid_gone, wait_for


def children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1) as reply:
            return reply.read() == b"ok"
    except OSError:
        return False


def test_serve_runs_app_and_worker_and_stops_both(lab):
    port = _free_port()
    serve = subprocess.Popen(
        [sys.executable, "-m", "backend", "serve", "--port", str(port)],
        cwd=REPO_ROOT,
        env=lab.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    lab.consumers.append(serve)  # stopped by the fixture if the test fails early
    wait_for(lambda: healthy(port), timeout=60, every=0.3, what="the Streamlit app to answer")
    kids = children(serve.pid)
    assert len(kids) == 2  # the consumer and streamlit
    check = subprocess.run(
        [
            sys.executable,
            "-m",
            "backend",
            "jobs",
            "submit",
            "selftest",
            "--config",
            '{"steps": 2, "seed": 5}',
            "--wait",
            "--timeout",
            "60",
        ],
        cwd=REPO_ROOT,
        env=lab.env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    report = json.loads(check.stdout.split("\n", 1)[1])
    assert report["state"] == "succeeded" and report["result"]["device"] == "cpu"
    assert report["result"]["torch"].startswith("2.")
    serve.send_signal(signal.SIGTERM)
    assert serve.wait(timeout=30) == 0  # a clean stop
    wait_for(lambda: all(pid_gone(k) for k in kids), timeout=20, what="app and consumer to stop")


def test_workers_announce_themselves_and_leave_on_stop(lab):
    from backend.jobs.workers import alive_workers

    assert alive_workers() == []
    consumer = lab.start_consumer(workers=3)
    (info,) = wait_for(alive_workers, timeout=30, what="the consumer to announce itself")
    assert (info.pid, info.threads, info.device) == (consumer.pid, 3, "cpu")
    consumer.send_signal(signal.SIGTERM)
    consumer.wait(timeout=20)
    assert alive_workers() == []
