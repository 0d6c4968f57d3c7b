"""`python -m backend serve [--port 8501] [--workers 1]`: one queue consumer in the background and the
Streamlit app in front; when the app exits (Ctrl-C, SIGTERM), the consumer is stopped too.

This is what `./lab app` runs, so a newcomer gets a working queue without knowing it exists. With
`--no-worker` only the app starts (consumers run elsewhere, e.g. `./lab worker` on GPU machines).
`--classroom` (`./lab app --classroom`) opens it to a class on the local network (README, "Running a
class").
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

from backend.config import REPO_ROOT

STOP_TIMEOUT_S = 15.0
MAX_WORKER_RESTARTS = 5
# The app process imports what the pages compute with (torch, the explainers: ~5-9 s on a laptop CPU)
# before it starts listening, then runs streamlit's own command line. Otherwise the first visitor's
# page pays for the imports, and every session opened meanwhile waits behind them.
PRELOAD = (
    "import runpy\n"
    "import backend.services.demo, backend.services.inspect, backend.services.take_home\n"
    "runpy.run_module('streamlit', run_name='__main__', alter_sys=True)\n"
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="start a queue consumer and the Streamlit app")
    p.add_argument("--port", type=int, default=8501)
    p.add_argument("--address", default=None, help="address to listen on (default: streamlit's)")
    p.add_argument("--workers", type=int, default=1, help="jobs the local consumer runs at once")
    p.add_argument("--no-worker", action="store_true", help="do not start a local consumer")
    p.add_argument(
        "--classroom",
        action="store_true",
        help="listen on the local network (0.0.0.0 unless --address), sessions are students until they "
        "enter the presenter passphrase; prints the address and the passphrase",
    )
    p.add_argument("streamlit_args", nargs=argparse.REMAINDER, help="extra arguments for streamlit, after --")
    p.set_defaults(func=run)


def start_worker(workers: int, env: dict | None = None) -> subprocess.Popen:
    # Its own session: a Ctrl-C in the terminal reaches the app, and we stop the consumer ourselves.
    return subprocess.Popen(
        [sys.executable, "-m", "backend", "worker", "--workers", str(workers), "--quiet"],
        cwd=REPO_ROOT,
        start_new_session=True,
        env=env,
    )


def classroom_env(args: argparse.Namespace) -> dict | None:
    """With --classroom: the app's environment says so, it listens on every interface, and the address
    and the presenter passphrase are printed for the teacher."""
    if not args.classroom:
        return None
    from backend import access, classroom

    env = dict(os.environ)
    env["FOOLING_LAB_CLASSROOM"] = "1"
    if not args.address:
        args.address = "0.0.0.0"
    secret = access.passphrase()
    shown = args.address if args.address not in ("0.0.0.0", "::") else classroom.lan_address()
    print(
        f"[serve] classroom mode: students open {classroom.classroom_url(args.port, shown)} "
        "(the Demo page shows it as a QR code)\n"
        f"[serve] presenter passphrase: {secret}  (from {access.passphrase_source()})",
        flush=True,
    )
    return env


def streamlit_command(args: argparse.Namespace) -> list[str]:
    cmd = [
        sys.executable,
        "-c",
        PRELOAD,
        "run",
        str(REPO_ROOT / "app.py"),
        "--server.port",
        str(args.port),
        "--server.headless",
        "true",
    ]
    if args.address:
        cmd += ["--server.address", args.address]
    extra = [a for a in args.streamlit_args if a != "--"]
    return cmd + extra


def stop(proc: subprocess.Popen | None, sig: int = signal.SIGTERM) -> None:
    """SIGTERM (the consumer stops its runners and applies the crash policy), then SIGKILL if stuck."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt  # SIGTERM stops cleanly, like Ctrl-C


def run(args: argparse.Namespace) -> int:
    signal.signal(signal.SIGTERM, _interrupt)
    env = classroom_env(args)
    worker = None if args.no_worker else start_worker(args.workers, env)
    app = subprocess.Popen(streamlit_command(args), cwd=REPO_ROOT, env=env)
    restarts, interrupted = 0, False
    try:
        while app.poll() is None:
            if worker is not None and worker.poll() is not None and restarts < MAX_WORKER_RESTARTS:
                restarts += 1
                print(f"[serve] the queue worker exited ({worker.returncode}); restarting it", flush=True)
                worker = start_worker(args.workers, env)
            time.sleep(0.5)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        stop(app, signal.SIGINT)
        stop(worker)
    return 0 if interrupted else app.returncode
