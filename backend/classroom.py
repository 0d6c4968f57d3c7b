"""Classroom limits: per-session job quotas, per-session upload totals, and the folders students may use.

The presenter changes them from the app; they live in `<data>/classroom.json` (plain JSON, written
atomically), so every server process and a restart see the same limits. Defaults fit a 2-core laptop:
two jobs at a time per student, shapes-scale jobs only (checkpoints whose input is at most 64 px), and
no folder on the server until the presenter allows one (or FOOLING_LAB_FOLDER_ROOTS names some).

This module only says what the limits are and measures a request against them; `services.policy`
applies them to a session.
"""

from __future__ import annotations

import io
import json
import os
import socket
import threading
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from backend.config import get_settings
from backend.errors import InvalidConfig, InvalidDataset, NotAllowed, QuotaExceeded

# Config keys that name checkpoints, in any job kind's config (fool: model; evaluate: baseline, fooled;
# detect: suspect, baseline, reference; decoys: checkpoint, baseline; tabular: model, suspect, without;
# defend: model; defend_evaluate: base, defended, reference).
CHECKPOINT_KEYS = (
    "model",
    "baseline",
    "fooled",
    "suspect",
    "reference",
    "checkpoint",
    "without",
    "base",
    "defended",
)


@dataclass
class Quota:
    """What one student session may launch. `max_input_size` keeps students to small models: a fooling
    run on a 224 px ImageNet model takes the laptop for minutes per step."""

    max_active_jobs: int = 2  # queued + running at once
    max_jobs: int = 20  # submitted in all (per session name, as long as the job store keeps them)
    max_input_size: int = 64  # px; the shapes models are 32-64
    max_images: int = 2048  # dataset sizes and images evaluated
    max_steps: int = 1000  # optimisation steps (fool) or epochs x 5 (tables)
    max_upload_bytes: int = 64 * 1024**2  # all of one session's uploads together

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Quota:
        known = {f.name for f in fields(cls)}
        out = cls(**{k: int(v) for k, v in data.items() if k in known})
        for name in known:
            if getattr(out, name) < 0:
                raise InvalidConfig(f"Quota {name} cannot be negative.")
        return out


@dataclass
class ClassroomSettings:
    quota: Quota = field(default_factory=Quota)
    folder_roots: list[str] = field(default_factory=list)  # added by the presenter in the app

    def to_dict(self) -> dict[str, Any]:
        return {"quota": asdict(self.quota), "folder_roots": list(self.folder_roots)}


def load() -> ClassroomSettings:
    """The presenter's settings (defaults when none were saved)."""
    path = get_settings().classroom_file
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return ClassroomSettings()
    except (OSError, ValueError) as err:
        raise InvalidConfig(f"{path} is not readable JSON ({err}); delete it to get the defaults.") from err
    roots = [str(p) for p in data.get("folder_roots") or []]
    return ClassroomSettings(Quota.from_dict(data.get("quota") or {}), roots)


def save(settings: ClassroomSettings) -> None:
    from backend.storage import write_atomic

    write_atomic(get_settings().classroom_file, json.dumps(settings.to_dict(), indent=1).encode())


# ---- folders on the server ------------------------------------------------------------------------------
def allowed_roots() -> list[Path]:
    """Folders under which students may name a dataset folder: the setting's and the presenter's."""
    roots = [*get_settings().folder_roots, *(Path(p) for p in load().folder_roots)]
    out: list[Path] = []
    for root in roots:
        real = Path(os.path.realpath(root))
        if real.is_dir() and real not in out:
            out.append(real)
    return out


def check_folder(path: str | Path, *, restricted: bool) -> Path:
    """The real path of a "folder on the server" dataset. `restricted` (a student): it must lie under
    an allowed root, after following every symlink, and no symlink inside it may lead outside that root.
    `InvalidDataset` for a missing folder, `NotAllowed` for one outside the roots."""
    text = str(path).strip()
    if not text:
        raise InvalidDataset("Type the folder's path on the server.")
    given = Path(text).expanduser()
    real = Path(os.path.realpath(given))
    if not real.is_dir():
        raise InvalidDataset(f"There is no folder {text!r} on the server.")
    if not restricted:
        return real
    roots = allowed_roots()
    if not roots:
        raise NotAllowed(
            "Folders on the server are switched off for students; upload a zip instead, or ask the "
            "presenter to allow a folder."
        )
    root = next((r for r in roots if real == r or r in real.parents), None)
    if root is None:
        where = "the symlink leads outside the allowed folders" if real != given.absolute() else "it is not"
        raise NotAllowed(
            f"{text!r} is not under a folder the presenter allowed ({where}); allowed: "
            + ", ".join(str(r) for r in roots)
        )
    for base, dirs, files in os.walk(real):
        for name in (*dirs, *files):
            entry = Path(base) / name
            if entry.is_symlink():
                target = Path(os.path.realpath(entry))
                if not (target == root or root in target.parents):
                    raise NotAllowed(
                        f"{entry.relative_to(real)} in {text!r} is a symlink leading outside the allowed "
                        "folders; refused."
                    )
    return real


# ---- uploads per session ---------------------------------------------------------------------------------
_uploaded: dict[str, int] = {}
_uploaded_lock = threading.Lock()


def count_upload(name: str, size: int, limit: int | None) -> None:
    """Add `size` to the session's upload total (this server process's count); `QuotaExceeded` when it
    would pass `limit` (None: no per-session limit, the presenter)."""
    with _uploaded_lock:
        total = _uploaded.get(name, 0) + int(size)
        if limit is not None and total > limit:
            raise QuotaExceeded(
                f"Your uploads would total {total / 1024**2:.1f} MB; a session may upload "
                f"{limit / 1024**2:.0f} MB in all. Ask the presenter for more."
            )
        _uploaded[name] = total


# ---- job quotas -----------------------------------------------------------------------------------------
def checkpoint_ids(config: dict) -> list[str]:
    """Every checkpoint id a job config names."""
    out: list[str] = []
    for key in CHECKPOINT_KEYS:
        value = config.get(key)
        for item in value if isinstance(value, list | tuple) else [value]:
            if isinstance(item, str) and item and item not in out:
                out.append(item)
    return out


def job_size(config: dict) -> dict[str, int]:
    """The sizes a quota limits, read generically from any kind's config: images (dataset `n`,
    `images`, `noise_inputs`), steps (`steps`, `epochs` x 5), and the largest input size of the named
    checkpoints."""
    from backend.models.registry import Registry

    dataset = config.get("dataset") if isinstance(config.get("dataset"), dict) else {}
    images = [config.get("images"), dataset.get("n"), config.get("noise_inputs")]
    steps = [config.get("steps"), 5 * int(config.get("epochs") or 0)]
    reg = Registry()
    sizes = []
    for cid in checkpoint_ids(config):
        try:
            checkpoint = reg.get(cid)
        except Exception:  # an unknown id: the kind's validation says so
            continue
        if checkpoint.modality == "image":
            sizes.append(checkpoint.input_size)
    return {
        "images": max((int(v) for v in images if isinstance(v, int | float)), default=0),
        "steps": max((int(v) for v in steps if isinstance(v, int | float)), default=0),
        "input_size": max(sizes, default=0),
    }


def check_job(kind: str, config: dict, *, owner: str, quota: Quota, active: int, total: int) -> None:
    """`QuotaExceeded` naming the limit a student's job would pass (`active`/`total`: their jobs now)."""
    if active >= quota.max_active_jobs:
        raise QuotaExceeded(
            f"You have {active} job(s) queued or running; a student may run {quota.max_active_jobs} at "
            "once. Wait for one to finish (or cancel it in Jobs)."
        )
    if total >= quota.max_jobs:
        raise QuotaExceeded(f"You have submitted {total} jobs; a student may submit {quota.max_jobs} in all.")
    size = job_size(config)
    if size["input_size"] > quota.max_input_size:
        raise QuotaExceeded(
            f"This {kind} job uses a checkpoint with {size['input_size']} px inputs; students may run jobs "
            f"on models up to {quota.max_input_size} px (the shapes models). The presenter can run it."
        )
    if size["images"] > quota.max_images:
        raise QuotaExceeded(
            f"This {kind} job asks for {size['images']} images; a student may use up to {quota.max_images}."
        )
    if size["steps"] > quota.max_steps:
        raise QuotaExceeded(
            f"This {kind} job asks for {size['steps']} steps; a student may run up to {quota.max_steps}."
        )


# ---- the address students open ----------------------------------------------------------------------
def lan_address() -> str:
    """This machine's address on the local network (the interface a default route would use; no
    packet is sent), else its hostname's, else loopback."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("10.255.255.255", 1))
            address = s.getsockname()[0]
            if address and not address.startswith("0."):
                return address
    except OSError:
        pass
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"


def classroom_url(port: int, address: str | None = None) -> str:
    return f"http://{address or lan_address()}:{int(port)}"


def qr_png(text: str, scale: int = 8) -> bytes:
    """A QR code of `text` as PNG bytes (segno: pure Python, no network)."""
    import segno

    buf = io.BytesIO()
    segno.make(text, error="m").save(buf, kind="png", scale=scale, border=2)
    return buf.getvalue()
