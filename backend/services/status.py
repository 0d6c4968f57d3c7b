"""The sidebar's health line: can the queue be reached, is a worker consuming it, which device.

The queue has no worker registry, so "alive" is what can be seen from here: consumer processes on
this machine (`python -m backend worker`, also started by `serve`) plus remote workers whose
running jobs sent a heartbeat in the last `FRESH_S` seconds.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from pathlib import Path

from backend.config import REPO_ROOT, get_settings
from backend.errors import QueueUnavailable

FRESH_S = 15.0


@dataclass(frozen=True)
class LabStatus:
    device: str
    queue_ok: bool
    workers_alive: int
    running: int
    queued: int
    message: str = ""


def _env_of(entry: Path) -> dict[str, str]:
    pairs = (entry / "environ").read_bytes().split(b"\0")
    return dict(p.decode(errors="replace").split("=", 1) for p in pairs if b"=" in p)


def local_consumers(proc: Path = Path("/proc")) -> list[int]:
    """Pids of `python -m backend worker` processes on this machine that consume *our* queue
    (same data dir and queue URL; other labs on the machine do not count)."""
    settings = get_settings()
    ours = (settings.data_dir, settings.queue_url or "")
    pids = []
    for entry in proc.glob("[0-9]*"):
        try:
            args = [a.decode(errors="replace") for a in (entry / "cmdline").read_bytes().split(b"\0") if a]
            if not (len(args) >= 4 and args[1:4] == ["-m", "backend", "worker"]):
                continue
            env = _env_of(entry)
        except (OSError, ValueError):
            continue
        data = Path(env.get("FOOLING_LAB_DATA") or REPO_ROOT / ".lab_data")
        if (data, env.get("FOOLING_LAB_QUEUE_URL", "")) == ours:
            pids.append(int(entry.name))
    return pids


def lab_status() -> LabStatus:
    """Never raises for a queue that is down: that is a status to show, not an error."""
    from backend import jobs

    device = get_settings().device
    try:
        records = jobs.list_jobs(limit=500)
    except QueueUnavailable as err:
        return LabStatus(device, False, 0, 0, 0, str(err))
    now = time.time()
    host = socket.gethostname()
    remote = {
        r.worker
        for r in records
        if r.state == "running"
        and r.worker
        and not r.worker.startswith(f"{host}:")
        and r.heartbeat_at is not None
        and now - r.heartbeat_at < FRESH_S
    }
    alive = len(local_consumers()) + len(remote)
    running = sum(r.state == "running" for r in records)
    queued = sum(r.state == "queued" for r in records)
    return LabStatus(device, True, alive, running, queued)
