"""Bounded progress history on the real SQLite and Redis stores: a 100,000-step job keeps at most
`history.LIMIT` points, its means and newest points exact, and a poller fetches only what changed."""

from __future__ import annotations

import json
import math
import random
from dataclasses import asdict

import pytest

from backend import jobs
from backend.jobs import history
from backend.jobs.records import HistoryPoint, JobRecord
from backend.jobs.stores import open_store

VAL_EVERY = 50


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def store(request, lab):
    if request.param == "redis":
        lab.setenv("FOOLING_LAB_QUEUE_URL", request.getfixturevalue("redis_url"))
    return open_store()


def report(step: int) -> HistoryPoint:
    """A fooling run's report: a loss every step, a validation metric every 50th."""
    metrics = {"loss": 1.0 / step + 0.01 * math.sin(step)}
    if step % VAL_EVERY == 0:
        metrics["val_fsr"] = step / 100_000
    return HistoryPoint(step=step, time=float(step), metrics=metrics)


def fill(store, job_id: str, steps: int, chunk: int = 2000) -> None:
    store.create(JobRecord(id=job_id, kind="selftest", config={}, state="running", attempts=1))
    for start in range(1, steps + 1, chunk):
        store.extend_history(job_id, [report(s) for s in range(start, min(start + chunk, steps + 1))])


def stored_bytes(points: list[HistoryPoint]) -> int:
    return len(json.dumps([asdict(p) for p in points]))


def test_a_100000_step_history_is_bounded_exact_where_it_matters_and_loads_like_a_short_one(store):
    n = 100_000
    fill(store, "long", n)
    fill(store, "short", 100)
    long, short = store.get("long").history, store.get("short").history
    assert len(short) == 100 and all(p.count == 1 for p in short)  # below the limit nothing is merged
    assert history.KEEP_EXACT < len(long) <= history.LIMIT
    assert sum(p.count for p in long) == n  # every report is in some point
    # the newest reports are kept as reported
    assert [(p.step, p.metrics, p.count) for p in long[-history.KEEP_EXACT :]] == [
        (s, report(s).metrics, 1) for s in range(n - history.KEEP_EXACT + 1, n + 1)
    ]
    # merging keeps every series' mean, including the sparse validation series
    for name, expected in (
        ("loss", sum(report(s).metrics["loss"] for s in range(1, n + 1))),
        ("val_fsr", sum(s / 100_000 for s in range(VAL_EVERY, n + 1, VAL_EVERY))),
    ):
        assert sum(p.metrics[name] * p.weight(name) for p in long if name in p.metrics) == pytest.approx(
            expected
        )
    assert sum(p.weight("val_fsr") for p in long if "val_fsr" in p.metrics) == n // VAL_EVERY
    # the chart still covers the whole run at one resolution: merged points of equal span, in step order
    merged = [p for p in long if p.count > 1]
    span = max(p.count for p in merged)
    assert long[0].step <= span and sum(p.count == span for p in merged) >= 0.9 * len(merged)
    assert [p.step for p in long] == sorted(p.step for p in long)
    # a load of the long job is one bounded read: points at most LIMIT, bytes per point like the short job's
    assert len(long) / len(short) <= history.LIMIT / 100
    assert stored_bytes(long) / len(long) <= 2.0 * stored_bytes(short) / len(short)
    print(
        f"\nhistory of {n} steps: {len(long)} points, {stored_bytes(long)} bytes "
        f"(100 steps: {len(short)} points, {stored_bytes(short)} bytes); merged span {span}"
    )
    # a poll after the first load costs the same for both: only the new point comes back
    for job_id, step in (("long", n + 1), ("short", 101)):
        cursor = store.history_since(job_id).cursor
        store.add_history(job_id, report(step))
        delta = store.history_since(job_id, cursor)
        assert (delta.reset, [p.step for p in delta.points]) == (False, [step])


def test_a_poller_following_deltas_always_has_the_stored_history(store):
    """Appends of random sizes cross several merges; after every poll, what the poller has put together
    from the deltas equals what the store holds (and `get` returns)."""
    rng = random.Random(0)
    store.create(JobRecord(id="j", kind="selftest", config={}, state="running", attempts=1))
    seen: list[HistoryPoint] = []
    cursor, resets, step = None, 0, 0
    while step < 4 * history.LIMIT:
        size = rng.choice([1, 3, 40, 400])
        store.extend_history("j", [report(s) for s in range(step + 1, step + size + 1)])
        step += size
        delta = store.history_since("j", cursor)
        seen = delta.points if delta.reset else seen + delta.points
        resets += delta.reset
        cursor = delta.cursor
        assert seen == store.get("j").history
        assert cursor.length == len(seen)
    assert resets >= 3  # the first poll, and again after merges


def test_the_facade_follows_a_job_with_a_cursor(lab):
    job_id = jobs.submit("selftest", {})
    open_store().extend_history(job_id, [report(s) for s in range(1, 4)])
    first = jobs.history_since(job_id)
    assert first.reset and [p.step for p in first.points] == [1, 2, 3]
    assert jobs.history_since(job_id, first.cursor).points == []
    assert jobs.get(job_id, history=False).history == []


def test_compact_leaves_short_histories_alone_and_bounds_long_ones():
    points = [report(s) for s in range(1, history.LIMIT + 1)]
    assert history.compact(points) is points
    kept = history.compact([*points, report(history.LIMIT + 1)])
    assert history.KEEP_EXACT < len(kept) <= history.ROOM + history.KEEP_EXACT
    assert sum(p.count for p in kept) == history.LIMIT + 1
