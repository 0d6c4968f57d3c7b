"""Job-kind lookup imports only the module that declares the kind (the page process stays torch-free)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from backend.errors import UnknownMethod
from backend.jobs.kinds import JOB_KINDS, declared_kinds, get_kind, kind_index, load_kinds
from tests.ui.helpers import ROOT

SUBMIT_TRAIN = """
import json, sys
from backend import jobs
job_id = jobs.submit("train", {"seed": 3, "epochs": 1})
record = jobs.get(job_id)
print(json.dumps({"id": job_id, "state": record.state, "module": record.module,
                  "torch": "torch" in sys.modules,
                  "areas": sorted(m for m in sys.modules if m.endswith(".job"))}))
"""


def test_submitting_a_train_job_does_not_import_torch(tmp_path):
    env = dict(os.environ) | {
        "FOOLING_LAB_DATA": str(tmp_path / "data"),
        "FOOLING_LAB_MODELS": str(tmp_path / "models"),
        "FOOLING_LAB_SEED_DEMO": "0",
    }
    env.pop("FOOLING_LAB_QUEUE_URL", None)
    out = subprocess.run(
        [sys.executable, "-c", SUBMIT_TRAIN], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["state"] == "queued" and seen["id"].startswith("train-")
    assert seen["module"] == "backend.models.job"
    assert seen["torch"] is False
    assert seen["areas"] == ["backend.models.job"]


def test_the_source_index_names_the_module_that_registers_each_kind():
    index = kind_index()
    assert {"train", "fool", "evaluate", "detect", "decoys", "selftest"} <= set(index)
    load_kinds()
    assert set(index) == set(JOB_KINDS)
    for name, module in index.items():
        assert type(JOB_KINDS[name]).__module__ == module


def test_declared_kinds_reads_only_decorated_classes_with_a_literal_name():
    source = """
@register_kind
class A(JobKind):
    name = "alpha"
class B(JobKind):
    name = "not-registered"
@register_kind
class C(JobKind):
    title = "no name"
"""
    assert declared_kinds(source) == ["alpha"]


def test_an_unknown_kind_names_the_known_ones():
    with pytest.raises(UnknownMethod, match="known kinds: .*train"):
        get_kind("no-such-kind")
