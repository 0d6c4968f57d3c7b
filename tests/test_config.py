"""Settings from the environment: defaults, the shared directory, and typed errors for bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.config import REPO_ROOT, get_settings
from backend.errors import InvalidConfig


def test_defaults_keep_everything_on_this_machine():
    s = get_settings({})
    assert s.data_dir == REPO_ROOT / ".lab_data" and s.shared_dir is None
    assert s.models_dir == REPO_ROOT / "models_cache"
    assert (s.artifacts_dir, s.uploads_dir) == (s.data_dir / "artifacts", s.data_dir / "uploads")
    assert (s.queue_url, s.on_crash, s.heartbeat_timeout_s, s.store_wait_s) == (None, "fail", 15.0, 300.0)
    assert s.seed_demo is True and s.gpus_setting is None and s.cache_size_bytes == 2 * 1024**3


def test_a_shared_dir_holds_uploads_artifacts_and_models_unless_named_apart(tmp_path):
    s = get_settings(
        {"FOOLING_LAB_DATA": str(tmp_path / "local"), "FOOLING_LAB_SHARED": str(tmp_path / "nfs")}
    )
    assert (s.uploads_dir, s.artifacts_dir, s.models_dir) == tuple(
        tmp_path / "nfs" / d for d in ("uploads", "artifacts", "models")
    )
    assert s.jobs_db.parent == s.cache_dir.parent == tmp_path / "local"  # per machine
    s = get_settings({"FOOLING_LAB_SHARED": str(tmp_path / "nfs"), "FOOLING_LAB_MODELS": "/models"})
    assert s.models_dir == Path("/models") and s.artifacts_dir == tmp_path / "nfs" / "artifacts"


def test_typed_values_and_switches():
    s = get_settings(
        {"FOOLING_LAB_GPUS": "2", "FOOLING_LAB_SEED_DEMO": "0", "FOOLING_LAB_HEARTBEAT_TIMEOUT": "3"}
    )
    assert (s.gpus, s.seed_demo, s.heartbeat_timeout_s) == (2, False, 3.0)


@pytest.mark.parametrize(
    "name, value",
    [
        ("FOOLING_LAB_GPUS", "-1"),
        ("FOOLING_LAB_GPUS", "two"),
        ("FOOLING_LAB_HEARTBEAT_TIMEOUT", "0"),
        ("FOOLING_LAB_CACHE_BYTES", "lots"),
        ("FOOLING_LAB_ON_CRASH", "retry"),
    ],
)
def test_a_bad_value_is_a_typed_error_that_names_the_variable(name, value):
    with pytest.raises(InvalidConfig, match=name):
        get_settings({name: value})
