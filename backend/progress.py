"""One progress protocol for everything that takes a while: `progress(Progress(done, total, ...))`.

explain (IG points, SmoothGrad samples, Occlusion windows), the fooling trainer (steps), evaluate,
the detection tests, decoys, the tabular tools and a job's `ctx.progress` all call a `ProgressFn`
with one `Progress`, so a job kind hands `ctx.progress` straight down and a page turns any of them
into a bar the same way. Count whole units with ints (`done=3, total=10`: a job records `done` as
the step of its metric history); report a share of the work with floats (`done=0.4`, total 1.0).
No imports from the rest of the backend, so every module may use it without a circle.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Progress:
    """`done` of `total` units; `message` for a person; `metrics` (name -> number) for live curves;
    `extra`: the producer's own record for callers that need more than numbers (the fooling trainer's
    per-step info: its validation dict, a data-parallel run's `rank_pids`)."""

    done: float
    total: float = 1.0
    message: str | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def fraction(self) -> float:
        """done / total, clamped to [0, 1] (0 for an empty total)."""
        if not self.total:
            return 0.0
        return min(max(float(self.done) / float(self.total), 0.0), 1.0)

    @property
    def step(self) -> int | None:
        """`done` when it counts whole units (an int), else None."""
        return self.done if isinstance(self.done, int) and not isinstance(self.done, bool) else None


ProgressFn = Callable[[Progress], None]


def report(
    progress: ProgressFn | None,
    done: float,
    total: float = 1.0,
    message: str | None = None,
    metrics: Mapping[str, float] | None = None,
) -> None:
    """Call `progress` (if any) with one `Progress`: the line every reporter writes."""
    if progress is not None:
        progress(Progress(done, total, message, dict(metrics or {})))


def within(progress: ProgressFn | None, start: float, end: float, prefix: str = "") -> ProgressFn | None:
    """A sub-task's reports placed in [start, end] of the parent's work (fractions of it), its messages
    after `prefix`; metrics pass through. None stays None, so a caller that wants no reports pays
    nothing."""
    if progress is None:
        return None

    def scaled(p: Progress) -> None:
        message = prefix + p.message if p.message else prefix or None
        progress(Progress(start + (end - start) * p.fraction, 1.0, message, p.metrics))

    return scaled


def print_progress(p: Progress) -> None:
    """The commands' reporter: `[ 40%] message` on stderr (stdout stays for the command's result)."""
    print(f"[{p.fraction:4.0%}] {p.message or ''}", file=sys.stderr, flush=True)
