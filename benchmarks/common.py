"""Timing helpers shared by the benchmarks: interleaved median timing, machine description, tables.

Interleaving (A, B, C, A, B, C, ...) rather than timing A's runs then B's keeps a shared machine's
changing load from favouring whichever contender ran in the quiet minute.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch


def sync(device: str | torch.device) -> None:
    """Wait for queued GPU work so wall-clock times are real (no-op on the CPU)."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def time_interleaved(
    contenders: dict[str, Callable[[], object]], *, repeats: int = 5, warmup: int = 1, device: str = "cpu"
) -> dict[str, float]:
    """Median seconds per call of each contender, measured round-robin after `warmup` calls each.

    The round's order rotates, so no contender always runs first (right after another one freed its
    memory): on a 2-core CPU that position alone moved a 3.5 s Integrated Gradients call by ~20%.
    """
    for fn in contenders.values():
        for _ in range(warmup):
            fn()
    sync(device)
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    names = list(contenders)
    for r in range(repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            start = time.perf_counter()
            contenders[name]()
            sync(device)
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in samples.items()}


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (platform's guess elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_description(device: str = "cpu") -> str:
    """One line: CPU model, cores, torch version, threads, device (GPU name), and the load average."""
    parts = [
        f"CPU: {cpu_model()}",
        f"{os.cpu_count()} cores",
        f"torch {torch.__version__}",
        f"{torch.get_num_threads()} torch threads",
        f"device {device}",
    ]
    if torch.device(device).type == "cuda":
        parts.append(torch.cuda.get_device_name(torch.device(device)))
    if hasattr(os, "getloadavg"):
        parts.append("load average at the end {:.1f} / {:.1f} / {:.1f}".format(*os.getloadavg()))
    return ", ".join(parts)


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub-flavoured markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
