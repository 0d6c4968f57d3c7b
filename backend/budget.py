"""The disk budget: uploads, the result cache and job artifacts together stay under
`settings.disk_budget_bytes`, so a class cannot fill the laptop's disk.

`make_room(needed)` evicts, least recently used first: the result cache before anything else (every
entry can be recomputed), then uploaded files and finished jobs' artifact folders. It never touches a
checkpoint (the models dir is not in the budget), a queued or running job's artifacts, an upload that
such a job's config names, or anything used in the last `RECENT_S` seconds (a mask drawn on the Fool
form is stored before the job that reads it is submitted). When that is not enough it raises
`DiskBudgetExceeded`, which the submit or upload reports to the person as a refusal.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from backend.config import get_settings
from backend.errors import DiskBudgetExceeded

RECENT_S = 3600.0  # files used within this long are kept: a form may be about to submit them
_lock = threading.Lock()  # one eviction at a time in this process


@dataclass(frozen=True)
class Usage:
    """Bytes used per part, and the budget they share."""

    uploads: int
    cache: int
    artifacts: int
    budget: int

    @property
    def total(self) -> int:
        return self.uploads + self.cache + self.artifacts

    @property
    def fraction(self) -> float:
        return self.total / self.budget if self.budget else 1.0

    def rows(self) -> list[dict]:
        """The usage panel's table (MB)."""
        mb = 1024**2
        return [
            {"part": "uploads", "MB": round(self.uploads / mb, 1)},
            {"part": "result cache", "MB": round(self.cache / mb, 1)},
            {"part": "job artifacts", "MB": round(self.artifacts / mb, 1)},
            {"part": "total", "MB": round(self.total / mb, 1)},
            {"part": "budget", "MB": round(self.budget / mb, 1)},
        ]


@dataclass
class Eviction:
    """What `make_room` removed."""

    freed: int = 0
    removed: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Item:
    path: Path
    size: int
    used_at: float  # the newest access or modification under it


def _walk_size(path: Path) -> tuple[int, float]:
    """(bytes, newest access/modification time) of a file or a folder tree; symlinks are not followed."""
    if path.is_symlink() or path.is_file():
        st = path.lstat()
        return st.st_size, max(st.st_atime, st.st_mtime)
    size, newest = 0, 0.0
    for base, _, files in os.walk(path):
        newest = max(newest, os.lstat(base).st_mtime)
        for name in files:
            try:
                st = os.lstat(os.path.join(base, name))
            except FileNotFoundError:
                continue
            size += st.st_size
            newest = max(newest, st.st_atime, st.st_mtime)
    return size, newest


def _tree_size(root: Path) -> int:
    return _walk_size(root)[0] if root.exists() else 0


def usage() -> Usage:
    from backend.cache import ResultCache

    settings = get_settings()
    with ResultCache() as cache:
        cache_bytes = cache.volume()
    return Usage(
        uploads=_tree_size(settings.uploads_dir),
        cache=cache_bytes,
        artifacts=_tree_size(settings.artifacts_dir),
        budget=settings.disk_budget_bytes,
    )


def _strings(value) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _strings(v)


def _upload_item(path: Path, uploads: Path) -> Path | None:
    """The evictable unit a path under uploads/ belongs to: `<kind>/<name>` (a dataset's extracted
    folder `datasets/<hash>`)."""
    try:
        rel = Path(os.path.abspath(path)).relative_to(uploads)
    except ValueError:
        return None
    return uploads / Path(*rel.parts[:2]) if len(rel.parts) >= 2 else None


def protected() -> set[Path]:
    """Artifact folders of queued/running jobs and the uploads their configs name."""
    from backend import jobs

    settings = get_settings()
    uploads = Path(os.path.abspath(settings.uploads_dir))
    keep: set[Path] = set()
    for state in ("queued", "running"):
        for record in jobs.list_jobs(state=state, limit=10_000):
            keep.add(Path(os.path.abspath(settings.artifacts_dir / record.id)))
            for text in _strings(record.config):
                item = _upload_item(Path(text), uploads)
                if item is not None:
                    keep.add(item)
                    if item.parent.name == "datasets":
                        keep.add(item.with_suffix(".zip"))  # the zip an extracted folder came from
    return keep


def _candidates(keep: set[Path], now: float) -> list[_Item]:
    settings = get_settings()
    uploads = Path(os.path.abspath(settings.uploads_dir))
    artifacts = Path(os.path.abspath(settings.artifacts_dir))
    paths = [p for kind in _children(uploads) if kind.is_dir() for p in _children(kind)]
    paths += list(_children(artifacts))
    items = []
    for path in paths:
        if path in keep or path.name.startswith("."):
            continue
        size, used = _walk_size(path)
        if now - used >= RECENT_S:
            items.append(_Item(path, size, used))
    return sorted(items, key=lambda i: i.used_at)


def _children(folder: Path) -> list[Path]:
    try:
        return sorted(folder.iterdir())
    except FileNotFoundError:
        return []


def make_room(needed: int = 0, *, what: str = "this") -> Eviction:
    """Evict until uploads + cache + artifacts + `needed` bytes fit the budget; `DiskBudgetExceeded`
    (saying what is using the space) when it cannot."""
    from backend.cache import ResultCache

    with _lock:
        out = Eviction()
        now_used = usage()
        over = now_used.total + int(needed) - now_used.budget
        if over <= 0:
            return out
        with ResultCache() as cache:
            freed = cache.shrink_by(over)
        out.freed += freed
        if freed:
            out.removed.append(f"result cache: {freed / 1024**2:.1f} MB")
        over -= freed
        if over > 0:
            for item in _candidates(protected(), time.time()):
                if over <= 0:
                    break
                if item.path.is_dir() and not item.path.is_symlink():
                    shutil.rmtree(item.path, ignore_errors=True)
                else:
                    item.path.unlink(missing_ok=True)
                over -= item.size
                out.freed += item.size
                out.removed.append(str(item.path))
        if over > 0:
            now_used = usage()
            raise DiskBudgetExceeded(
                f"The lab's disk budget is full: {what} needs {needed / 1024**2:.1f} MB, and uploads "
                f"({now_used.uploads / 1024**2:.0f} MB), cache ({now_used.cache / 1024**2:.0f} MB) and job "
                f"artifacts ({now_used.artifacts / 1024**2:.0f} MB) already use "
                f"{now_used.total / 1024**2:.0f} of {now_used.budget / 1024**2:.0f} MB; what is left is in "
                "use by running jobs or was used in the last hour. Ask the presenter to free space."
            )
        return out
