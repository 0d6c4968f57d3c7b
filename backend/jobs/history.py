"""Bounded progress history: what both stores keep of a job's metric reports, and how a page follows it.

A job may report metrics at every one of 100,000 steps; the store keeps at most `LIMIT` points per job
(so per series). When a job passes `LIMIT`, its points older than the newest `KEEP_EXACT` are merged
into groups of equal size (a power of two), each into its weighted mean, leaving room for `ROOM` more
reports before the next merge: storage is bounded and the work per report is constant on average.
The newest points are never merged, the means of every series are kept exactly (weights travel in
`HistoryPoint.count` / `counts`), and the whole run stays on the chart.

A page follows a job with a `HistoryCursor` (the compaction `version` and how many points it has): the
store returns only the points after the cursor, or everything (`reset`) when a merge rewrote the past.
"""

from __future__ import annotations

from dataclasses import dataclass

from backend.jobs.records import HistoryPoint

LIMIT = 2000  # points a job's history holds at most
KEEP_EXACT = 500  # the newest points, never merged
ROOM = (LIMIT - KEEP_EXACT) // 2  # merged points after a compaction: as many reports fit before the next


@dataclass(frozen=True)
class HistoryCursor:
    """Where a reader is: the store's compaction `version` and the number of points it has read."""

    version: int = 0
    length: int = 0


@dataclass
class HistoryDelta:
    """Points after a cursor; `reset` means they replace what the reader had (the past was merged)."""

    points: list[HistoryPoint]
    cursor: HistoryCursor
    reset: bool


def delta(points: list[HistoryPoint], version: int, cursor: HistoryCursor | None) -> HistoryDelta:
    """The answer to `history_since` from a store snapshot (`points` from the cursor's length on, unless
    `cursor` is None or of another version: then `points` must be the whole history)."""
    if cursor is None or cursor.version != version:
        return HistoryDelta(points, HistoryCursor(version, len(points)), reset=True)
    return HistoryDelta(points, HistoryCursor(version, cursor.length + len(points)), reset=False)


def needs_compaction(length: int) -> bool:
    return length > LIMIT


def merge(points: list[HistoryPoint]) -> HistoryPoint:
    """One point standing for `points`: every metric's weighted mean, the mean step, the last time."""
    if len(points) == 1:
        return points[0]
    count = sum(p.count for p in points)
    sums: dict[str, float] = {}
    weights: dict[str, int] = {}
    for p in points:
        for name, value in p.metrics.items():
            w = p.weight(name)
            sums[name] = sums.get(name, 0.0) + w * float(value)
            weights[name] = weights.get(name, 0) + w
    stepped = [p for p in points if p.step is not None]
    step = None
    if stepped:
        step = round(sum(p.step * p.count for p in stepped) / sum(p.count for p in stepped))
    counts = {name: w for name, w in weights.items() if w != count}
    return HistoryPoint(
        step=step,
        time=points[-1].time,
        metrics={name: sums[name] / weights[name] for name in sums},
        count=count,
        counts=counts or None,
    )


def _groups(points: list[HistoryPoint], span: int) -> list[list[HistoryPoint]]:
    """Consecutive points in groups of at most `span` reports (greedy, in order)."""
    groups: list[list[HistoryPoint]] = []
    size = span + 1
    for p in points:
        if size + p.count > span:
            groups.append([])
            size = 0
        groups[-1].append(p)
        size += p.count
    return groups


def compact(
    points: list[HistoryPoint], limit: int = LIMIT, keep: int = KEEP_EXACT, room: int | None = None
) -> list[HistoryPoint]:
    """`points` (oldest first) with all but the newest `keep` merged into at most `room` points of equal
    span, if there are more than `limit`; otherwise `points` unchanged."""
    if len(points) <= limit:
        return points
    room = (limit - keep) // 2 if room is None else room
    old, recent = points[:-keep], points[-keep:]
    total = sum(p.count for p in old)
    span = 1
    while span < max(p.count for p in old) or span * room < total:
        span *= 2
    groups = _groups(old, span)
    while len(groups) > room:
        span *= 2
        groups = _groups(old, span)
    return [merge(g) for g in groups] + recent
