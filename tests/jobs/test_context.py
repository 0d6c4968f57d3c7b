"""The JobContext a kind receives: metric history, ETA, artifacts, and writes that stop counting once
the attempt is no longer the running one."""

from __future__ import annotations

import json

import pytest

from backend import jobs
from backend.jobs.context import RunnerContext
from backend.jobs.records import JobRecord
from backend.jobs.stores import open_store
from backend.progress import Progress


@pytest.fixture
def ctx(lab) -> RunnerContext:
    store = open_store()
    store.create(JobRecord(id="job-1", kind="selftest", config={}, state="running", attempts=1))
    return RunnerContext(store, "job-1", attempt=1, device="cpu")


def test_progress_keeps_every_metric_and_estimates_eta(ctx, monkeypatch):
    clock = iter([10.0, 12.0, 14.0, 16.0, 18.0])
    monkeypatch.setattr("backend.jobs.context.time.monotonic", lambda: next(clock))
    ctx._t0 = 10.0
    ctx.progress(Progress(1, 5, None, {"loss": 0.9, "acc": 0.5}))
    ctx.progress(Progress(3, 5, "half way", {"loss": 0.4}))
    record = jobs.get("job-1")
    assert record.series("loss") == ([1, 3], [0.9, 0.4]) and record.series("acc") == ([1], [0.5])
    assert record.progress.step == 3 and record.progress.message == "half way"
    # 0.4 of the work took 4 s since the first report -> 0.4 left takes about 4 s
    assert record.progress.eta_s == pytest.approx(4.0)
    assert record.progress.fraction == pytest.approx(0.6) and record.progress.total == 5


def test_artifacts_data_bytes_and_files(ctx, tmp_path):
    ctx.add_artifact("checkpoint", "ckpt-123", label="fooled model")
    ctx.add_artifact("table", {"fsr": {"lrp": 0.9}})
    ctx.add_artifact("image", b"\x89PNG...", label="heatmap.png")
    outside = tmp_path / "report.csv"
    outside.write_text("a,b\n1,2\n")
    ctx.add_artifact("file", outside)
    with pytest.raises(TypeError):
        ctx.add_artifact("table", {"not": object()})
    arts = jobs.artifacts("job-1")
    assert [(a.kind, a.value) for a in arts[:2]] == [
        ("checkpoint", "ckpt-123"),
        ("table", {"fsr": {"lrp": 0.9}}),
    ]
    assert arts[2].file.read_bytes() == b"\x89PNG..." and arts[2].file.parent == ctx.artifacts_dir
    assert arts[3].file.read_text() == "a,b\n1,2\n" and arts[3].file.parent == ctx.artifacts_dir
    json.dumps([a.value for a in arts])


def test_a_superseded_attempt_cannot_change_the_record(ctx):
    jobs.cancel("job-1")
    ctx.progress(Progress(9, 10, "too late"))
    record = jobs.get("job-1")
    assert record.state == "cancelled" and record.progress.step is None
    ctx.log("line\nsecond")
    assert [line.split(" ", 1)[1] for line in jobs.logs("job-1")][-2:] == ["line", "second"]
