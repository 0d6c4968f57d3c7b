"""Paths, queue URL and device, read from the environment each call (so tests can point them anywhere).

Environment variables (all optional):
  FOOLING_LAB_DATA        data directory (job store, queue db, cache, uploads); default <repo>/.lab_data
  FOOLING_LAB_MODELS      checkpoint registry; default <repo>/models_cache
  FOOLING_LAB_ARTIFACTS   job artifacts, shared by all workers and the app; default <data>/artifacts
  FOOLING_LAB_QUEUE_URL   e.g. redis://127.0.0.1:6379/0; unset -> SQLite queue in the data directory
  FOOLING_LAB_DEVICE      cpu | cuda | cuda:1 ...; default cuda when available, else cpu
  FOOLING_LAB_CACHE_BYTES size limit of the result cache; default 2 GiB
  FOOLING_LAB_ON_CRASH    fail | requeue: what a restart does with a job whose worker died; default fail
  FOOLING_LAB_TORCH_HOME  where torchvision weights are looked up; default torch's hub dir
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
ASSETS_DIR = REPO_ROOT / "assets"


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    models_dir: Path
    artifacts_dir: Path
    queue_url: str | None
    device_setting: str | None  # FOOLING_LAB_DEVICE as given; None = choose when first asked
    cache_size_bytes: int
    on_crash: str
    torch_home: Path | None

    @property
    def device(self) -> str:
        """The torch device; resolved lazily so reading settings never imports torch."""
        return self.device_setting or _default_device()

    @property
    def cache_dir(self) -> Path:
        return self.data_dir / "cache"

    @property
    def jobs_db(self) -> Path:
        return self.data_dir / "jobs.sqlite3"

    @property
    def queue_db(self) -> Path:
        return self.data_dir / "queue.sqlite3"

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"


def _default_device() -> str:
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except Exception:  # pragma: no cover - torch missing is a setup error reported elsewhere
        return "cpu"


def get_settings() -> Settings:
    env = os.environ
    data_dir = Path(env.get("FOOLING_LAB_DATA", REPO_ROOT / ".lab_data"))
    on_crash = env.get("FOOLING_LAB_ON_CRASH", "fail")
    if on_crash not in ("fail", "requeue"):
        raise ValueError(f"FOOLING_LAB_ON_CRASH must be 'fail' or 'requeue', not {on_crash!r}")
    torch_home = env.get("FOOLING_LAB_TORCH_HOME")
    return Settings(
        data_dir=data_dir,
        models_dir=Path(env.get("FOOLING_LAB_MODELS", REPO_ROOT / "models_cache")),
        artifacts_dir=Path(env.get("FOOLING_LAB_ARTIFACTS", data_dir / "artifacts")),
        queue_url=env.get("FOOLING_LAB_QUEUE_URL") or None,
        device_setting=env.get("FOOLING_LAB_DEVICE") or None,
        cache_size_bytes=int(env.get("FOOLING_LAB_CACHE_BYTES", 2 * 1024**3)),
        on_crash=on_crash,
        torch_home=Path(torch_home) if torch_home else None,
    )
