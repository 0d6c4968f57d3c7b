"""Submit-time validation, queue-down errors, compare-and-set and the stale-heartbeat sweep, on the real
SQLite and Redis stores (no consumer needed)."""

from __future__ import annotations

import socket
import sys

import pytest

from backend import jobs
from backend.errors import InvalidConfig, JobNotFound, QueueUnavailable, UnknownMethod
from backend.jobs.queue import get_huey
from backend.jobs.records import JobRecord, now
from backend.jobs.recovery import sweep
from backend.jobs.stores import open_store


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def store(request, lab):
    if request.param == "redis":
        lab.setenv("FOOLING_LAB_QUEUE_URL", request.getfixturevalue("redis_url"))
    return open_store()


@pytest.mark.parametrize(
    "config, needle",
    [
        ({"steps": -1}, "'steps'"),
        ({"sleep_s": "soon"}, "'sleep_s'"),
        ({"fail": "maybe"}, "'fail'"),
        ({"colour": 3}, "unknown option"),
    ],
)
def test_invalid_config_is_refused_and_nothing_is_queued(lab, config, needle):
    with pytest.raises(InvalidConfig, match=needle):
        jobs.submit("selftest", config)
    with pytest.raises(UnknownMethod, match="known kinds: .*selftest"):
        jobs.submit("no-such-kind", {})
    huey, _ = get_huey()
    assert jobs.list_jobs() == [] and huey.pending_count() == 0


def test_submit_to_a_down_redis_raises_queue_unavailable(lab):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    lab.setenv("FOOLING_LAB_QUEUE_URL", f"redis://127.0.0.1:{port}/0")
    with pytest.raises(QueueUnavailable, match="Redis"):
        jobs.submit("selftest", {})


def test_submit_records_a_queued_job_and_facade_stays_light(lab):
    job_id = jobs.submit("selftest", {"seed": 3})
    record = jobs.get(job_id)
    assert (record.state, record.kind, record.attempts) == ("queued", "selftest", 0)
    assert record.config == {
        "seed": 3,
        "steps": 0,
        "sleep_s": 0.0,
        "fail": None,
        "probe_torch": True,
        "payload_bytes": 0,
        "devices": 1,
    }  # the normalised config is what runs
    assert get_huey()[0].pending_count() == 1
    assert jobs.logs(job_id) == [] and jobs.artifacts(job_id) == []
    with pytest.raises(JobNotFound):
        jobs.get("selftest-000000000000")
    with pytest.raises(InvalidConfig, match="only a failed or cancelled"):
        jobs.retry(job_id)


def test_facade_and_submit_do_not_import_torch(lab):
    import subprocess

    code = (
        "import sys, backend.jobs as jobs; print('torch' in sys.modules, 'huey' in sys.modules);"
        "jobs.submit('selftest', {}); print('torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=lab.env
    )
    assert out.stdout.split() == ["False", "False", "False"]  # the page process stays light


def test_claim_is_compare_and_set(store):
    store.create(JobRecord(id="j1", kind="selftest", config={}))
    assert store.transition("j1", ["queued"], "running", attempt=0, attempts=1)
    assert not store.transition("j1", ["queued"], "running", attempt=0, attempts=1)  # a second delivery
    assert not store.transition("j1", ["running"], "succeeded", attempt=0)  # a stale attempt
    assert store.transition("j1", ["running"], "succeeded", attempt=1, result={"x": [1, 2]})
    record = store.get("j1")
    assert (record.state, record.attempts, record.result) == ("succeeded", 1, {"x": [1, 2]})
    with pytest.raises(ValueError, match="not job record fields"):
        store.transition("j1", ["succeeded"], nonsense=1)


def test_sweep_recovers_jobs_with_stale_heartbeats_only(store, lab):
    fresh = JobRecord(
        id="fresh",
        kind="selftest",
        config={},
        state="running",
        attempts=1,
        worker="other-host:1",
        heartbeat_at=now(),
    )
    stale = JobRecord(
        id="stale",
        kind="selftest",
        config={},
        state="running",
        attempts=1,
        worker="other-host:2",
        heartbeat_at=now() - 60,
    )
    for record in (fresh, stale):
        store.create(record)
    assert sweep(store) == {"stale": "failed"}
    assert store.get("fresh").state == "running"
    failed = store.get("stale")
    assert failed.state == "failed" and "stopped sending heartbeats" in failed.error
    assert sweep(store) == {}  # recovered once, however often swept


def test_retry_waits_for_a_live_runner_but_not_for_a_dead_consumer(lab, monkeypatch):
    monkeypatch.setattr(jobs, "RETRY_WAIT_S", 0.3)
    store = open_store()
    for job_id, beat in (("alive", now()), ("orphan", now() - 60)):
        store.create(
            JobRecord(
                id=job_id,
                kind="selftest",
                config={},
                state="cancelled",
                attempts=1,
                runner_pid=999_999,
                heartbeat_at=beat,
            )
        )
    with pytest.raises(InvalidConfig, match="still stopping"):
        jobs.retry("alive")  # its supervisor is still stopping the runner: never two runs at once
    assert jobs.retry("orphan") == "orphan"  # its consumer is dead (stale heartbeat): safe to re-run
    assert jobs.get("orphan").state == "queued" and get_huey()[0].pending_count() == 1


def test_records_keep_their_owner_and_list_filters_by_it(store):
    for job_id, owner in (("a", "ada"), ("b", "bob"), ("c", None)):
        store.create(JobRecord(id=job_id, kind="selftest", config={}, owner=owner))
    assert [r.id for r in store.list(owner="ada")] == ["a"]
    assert (store.get("b").owner, store.get("c").owner) == ("bob", None)
    assert {r.id for r in store.list()} == {"a", "b", "c"}
    assert [r.id for r in store.list(state="queued", kind="selftest", owner="bob")] == ["b"]
