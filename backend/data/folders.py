"""Image folders and zip uploads: safe extraction, then class-per-folder or unlabelled scanning.

`extract_zip` never trusts the archive: it refuses path traversal (`..`, absolute paths, drive letters),
symlinks, too many files, too many uncompressed bytes and suspicious compression ratios (zip bombs),
counting the bytes actually decompressed rather than the sizes the archive claims.
"""

from __future__ import annotations

import shutil
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from backend.data.images import IMAGE_SUFFIXES
from backend.errors import InvalidDataset, UnsafeArchive

MAX_FILES = 20_000
MAX_TOTAL_BYTES = 2 * 1024**3  # uncompressed
MAX_RATIO = 200  # uncompressed / compressed, per member (images barely compress)
_CHUNK = 1 << 20
_IGNORED_PARTS = ("__MACOSX",)


@dataclass
class ZipReport:
    root: Path
    extracted: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "name: reason"


def _is_hidden(parts: tuple[str, ...]) -> bool:
    return any(p.startswith(".") or p in _IGNORED_PARTS for p in parts)


def _safe_name(name: str) -> PurePosixPath:
    cleaned = name.replace("\\", "/")
    path = PurePosixPath(cleaned)
    if cleaned.startswith("/") or (len(cleaned) > 1 and cleaned[1] == ":") or ".." in path.parts:
        raise UnsafeArchive(f"The archive entry {name!r} points outside the archive (path traversal).")
    return path


def extract_zip_report(src: str | Path | BinaryIO, dest: str | Path) -> ZipReport:
    """Extract the images of a zip into `dest`; what was skipped and why is in the report."""
    dest = Path(dest)
    try:
        archive = zipfile.ZipFile(src)
    except (zipfile.BadZipFile, OSError) as err:
        raise UnsafeArchive(f"The upload is not a readable zip archive: {err}") from err
    with archive:
        members = archive.infolist()
        if len(members) > MAX_FILES:
            raise UnsafeArchive(f"The archive holds {len(members)} entries; the limit is {MAX_FILES}.")
        plan = []
        report = ZipReport(root=dest)
        for info in members:
            rel = _safe_name(info.filename)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise UnsafeArchive(f"The archive entry {info.filename!r} is a symbolic link; refused.")
            if info.is_dir() or _is_hidden(rel.parts):
                continue
            if rel.suffix.lower() not in IMAGE_SUFFIXES:
                report.skipped.append(f"{info.filename}: not an image file")
                continue
            if info.compress_size and info.file_size / info.compress_size > MAX_RATIO:
                raise UnsafeArchive(
                    f"{info.filename!r} expands {info.file_size / info.compress_size:.0f}x (a zip bomb?); "
                    f"the limit is {MAX_RATIO}x."
                )
            plan.append((info, rel))
        if not plan:
            raise UnsafeArchive("The archive holds no images (PNG, JPEG, BMP, GIF, WebP, TIFF).")
        if sum(info.file_size for info, _ in plan) > MAX_TOTAL_BYTES:
            raise UnsafeArchive(f"The archive expands to more than {MAX_TOTAL_BYTES // 1024**3} GiB.")
        dest.mkdir(parents=True, exist_ok=True)
        try:
            total = 0
            for info, rel in plan:
                target = dest.joinpath(*rel.parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                total = _copy_member(archive, info, target, total)
                report.extracted.append(rel.as_posix())
        except BaseException:
            shutil.rmtree(dest, ignore_errors=True)
            raise
    report.root = _single_top_folder(dest)
    return report


def _copy_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, total: int) -> int:
    """Stream one member, counting real decompressed bytes against the declared size and the limits."""
    written = 0
    try:
        with archive.open(info) as src, target.open("wb") as out:
            while block := src.read(_CHUNK):
                written += len(block)
                total += len(block)
                if written > info.file_size or total > MAX_TOTAL_BYTES:
                    raise UnsafeArchive(f"{info.filename!r} expands beyond its declared size (a zip bomb?).")
                out.write(block)
    except (zipfile.BadZipFile, EOFError, zipfile.LargeZipFile, RuntimeError) as err:
        raise UnsafeArchive(f"{info.filename!r} could not be extracted (corrupt/encrypted?): {err}") from err
    return total


def _single_top_folder(dest: Path) -> Path:
    entries = [p for p in dest.iterdir() if not p.name.startswith(".")]
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else dest


def extract_zip(src: str | Path | BinaryIO, dest: str | Path) -> Path:
    """Extract safely and return the dataset root (the single top folder, if the zip has one)."""
    return extract_zip_report(src, dest).root


def _images_in(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file()
        and not p.is_symlink()
        and p.suffix.lower() in IMAGE_SUFFIXES
        and not _is_hidden(p.relative_to(folder).parts)
    )


def scan_folder(root: str | Path) -> tuple[list[tuple[Path, int]], list[str]]:
    """Class-per-folder (sub-folders with images are the classes) or unlabelled (label -1)."""
    root = Path(root)
    if not root.is_dir():
        raise InvalidDataset(f"{root} is not a folder.")
    subdirs = [d for d in sorted(root.iterdir()) if d.is_dir() and not _is_hidden((d.name,))]
    class_dirs = [d for d in subdirs if _images_in(d)]
    if class_dirs:
        classes = [d.name for d in class_dirs]
        items = [(path, label) for label, d in enumerate(class_dirs) for path in _images_in(d)]
        return items, classes
    items = [(path, -1) for path in _images_in(root)]
    if not items:
        raise InvalidDataset(
            f"{root} holds no images. Put images in it (unlabelled) or one sub-folder of images per class."
        )
    return items, []
