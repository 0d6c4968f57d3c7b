"""Where uploaded files go so that a job on any worker can read them: the one helper pages' services use.

Masks, target maps, dataset zips and checkpoint files a person uploads are written under
`settings.uploads_dir` (`<shared>/uploads` when FOOLING_LAB_SHARED names a directory every machine
mounts at the same path; `<data>/uploads` on a single machine). Files are content-addressed (the same
upload is stored once) and appear whole or not at all (temp file or folder + rename), so a worker never
reads half a file, and a job config can carry the path.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tempfile
from pathlib import Path

from backend.config import get_settings

DIGEST_CHARS = 16


def write_atomic(path: Path, data: bytes) -> Path:
    """Temp file in the same folder + fsync + rename: readers see the old file or the new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:DIGEST_CHARS]


def upload_dir(kind: str) -> Path:
    """`<uploads>/<kind>/` (kind: masks, datasets, checkpoints, ...)."""
    return get_settings().uploads_dir / kind


def store_upload(data: bytes, kind: str, suffix: str, prefix: str = "") -> Path:
    """Keep uploaded bytes under `<uploads>/<kind>/`, named by their hash; returns the path."""
    name = f"{prefix + '-' if prefix else ''}{digest(data)}{suffix}"
    path = upload_dir(kind) / name
    if path.is_file() and path.stat().st_size == len(data):
        return path  # the same bytes are there already
    return write_atomic(path, data)


def store_array(array, prefix: str, kind: str = "masks") -> Path:
    """A mask or target map as a float32 .npy (never pickled) under `<uploads>/<kind>/`."""
    import numpy as np

    buf = io.BytesIO()
    np.save(buf, np.asarray(array, dtype=np.float32), allow_pickle=False)
    return store_upload(buf.getvalue(), kind, ".npy", prefix)


def store_dataset_zip(data: bytes) -> Path:
    """Keep an uploaded zip and extract it safely (`UnsafeArchive`) to `<uploads>/datasets/<hash>/`;
    returns the dataset root (the zip's single top folder, if it has one). The extracted folder appears
    complete or not at all."""
    from backend.data.folders import extract_zip

    key = digest(data)
    root = upload_dir("datasets")
    zip_path = store_upload(data, "datasets", ".zip")
    folder = root / key
    staging = Path(tempfile.mkdtemp(dir=root, prefix=f".{key}."))
    try:
        top = extract_zip(zip_path, staging / "x").relative_to(staging / "x")
        if not folder.is_dir():
            try:
                os.rename(staging / "x", folder)
            except OSError:
                if not folder.is_dir():  # not another upload of the same zip that won the rename
                    raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder / top
