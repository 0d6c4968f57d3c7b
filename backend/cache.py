"""The result cache: heatmaps and metric tables as bytes in diskcache, never pickles.

Keys are plain strings (`heatmap_key`: image sha256 | checkpoint sha256 | method | params | code
version), values are bytes (npz via `arrays_to_bytes`). `SafeBytesDisk` refuses to store anything but
bytes and refuses to read a pickled value or key, so a writable cache dir cannot become code
execution: a planted pickle raises `UnsafeCacheEntry` and is removed, never loaded. Entries are
tagged with their checkpoint's sha256 so deleting a checkpoint can evict them (`evict_tag`). Eviction
past the size limit (and `shrink_by`, the disk budget's) takes the least recently used first.
"""

from __future__ import annotations

import hashlib
import io
import json
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

import diskcache
import numpy as np

from backend.config import REPO_ROOT, get_settings
from backend.errors import UnsafeCacheEntry

CACHE_FORMAT = 1  # bump when the layout of cached values changes
_CODE_DIRS = ("backend/explain",)  # code whose changes invalidate cached heatmaps


class SafeBytesDisk(diskcache.Disk):
    """A diskcache `Disk` that only handles str keys and bytes values: no pickle in either direction."""

    def put(self, key):
        if type(key) is not str:
            raise TypeError(f"cache keys are strings, not {type(key).__name__}")
        return super().put(key)

    def get(self, key, raw):
        if not raw:
            raise UnsafeCacheEntry("The cache holds a pickled key; refused. Delete the cache directory.")
        return super().get(key, raw)

    def store(self, value, read, key=diskcache.core.UNKNOWN):
        if type(value) is not bytes:
            raise TypeError(f"cache values are bytes, not {type(value).__name__}; encode them first")
        return super().store(value, read, key=key)

    def fetch(self, mode, filename, value, read):
        if mode not in (diskcache.core.MODE_RAW, diskcache.core.MODE_BINARY):
            raise UnsafeCacheEntry(
                f"A cache entry is stored as {_MODE_NAMES.get(mode, mode)}, not bytes; it was refused "
                "(not loaded) and removed. If you did not put it there, someone can write to the cache dir."
            )
        data = super().fetch(mode, filename, value, read)
        if type(data) is not bytes:
            raise UnsafeCacheEntry(
                f"A cache entry holds {type(data).__name__}, not bytes; refused and removed."
            )
        return data


_MODE_NAMES = {diskcache.core.MODE_TEXT: "text", diskcache.core.MODE_PICKLE: "a pickle"}


class ResultCache:
    """Bytes in, bytes out, under string keys; the size limit comes from the settings."""

    def __init__(self, directory: str | Path | None = None, size_limit: int | None = None):
        settings = get_settings()
        self.directory = Path(directory or settings.cache_dir)
        limit = int(size_limit if size_limit is not None else settings.cache_size_bytes)
        self._cache = diskcache.Cache(
            str(self.directory), size_limit=limit, disk=SafeBytesDisk, eviction_policy="least-recently-used"
        )

    def get(self, key: str) -> bytes | None:
        """The value, or None on a miss; `UnsafeCacheEntry` (and the entry removed) if it is not bytes."""
        try:
            return self._cache.get(key, default=None)
        except UnsafeCacheEntry:
            self._cache.delete(key)
            raise

    def set(self, key: str, value: bytes, tag: str | None = None) -> None:
        self._cache.set(key, value, tag=tag)

    def delete(self, key: str) -> bool:
        return bool(self._cache.delete(key))

    def evict_tag(self, tag: str) -> int:
        """Remove every entry stored with `tag` (e.g. a deleted checkpoint's sha256); returns how many."""
        return int(self._cache.evict(tag))

    def get_arrays(self, key: str) -> dict[str, np.ndarray] | None:
        data = self.get(key)
        return None if data is None else bytes_to_arrays(data)

    def set_arrays(self, key: str, tag: str | None = None, **arrays: np.ndarray) -> None:
        self.set(key, arrays_to_bytes(**arrays), tag=tag)

    def shrink_by(self, nbytes: int) -> int:
        """Evict least recently used entries until about `nbytes` are freed (the disk budget's first
        resort: every entry can be recomputed); returns the bytes freed."""
        if nbytes <= 0 or len(self._cache) == 0:
            return 0
        before = self.volume()
        limit = self._cache.size_limit
        self._cache.reset("size_limit", max(0, before - int(nbytes)))
        try:
            self._cache.cull(retry=True)
        finally:
            self._cache.reset("size_limit", limit)
        return max(0, before - self.volume())

    def volume(self) -> int:
        """Bytes used on disk (approximate, as diskcache counts it)."""
        return int(self._cache.volume())

    def __len__(self) -> int:
        return len(self._cache)

    def close(self) -> None:
        self._cache.close()

    def __enter__(self) -> ResultCache:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_shared: dict[tuple[str, int], ResultCache] = {}
_shared_lock = threading.Lock()


def shared_cache() -> ResultCache:
    """This process's open cache for the configured directory (diskcache objects are thread-safe).
    Opening one costs tens of milliseconds (it writes its settings); a page run that reads eight cells
    for each of thirty sessions should not pay that per request. Do not close it."""
    settings = get_settings()
    key = (str(settings.cache_dir), int(settings.cache_size_bytes))
    with _shared_lock:
        cache = _shared.get(key)
        if cache is None:
            cache = _shared[key] = ResultCache()
        return cache


def arrays_to_bytes(**arrays: np.ndarray) -> bytes:
    """npz bytes of plain numeric arrays (object arrays are refused: they would need pickle)."""
    for name, array in arrays.items():
        if np.asarray(array).dtype == object:
            raise TypeError(f"array {name!r} has dtype object; only numeric arrays are cached")
    buffer = io.BytesIO()
    np.savez(buffer, **{name: np.asarray(a) for name, a in arrays.items()})
    return buffer.getvalue()


def bytes_to_arrays(data: bytes) -> dict[str, np.ndarray]:
    """Inverse of `arrays_to_bytes`; never unpickles (`allow_pickle=False`)."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            return {name: npz[name] for name in npz.files}
    except (ValueError, OSError) as err:
        raise UnsafeCacheEntry(f"A cache entry is not a plain npz archive ({err}); refused.") from err


@lru_cache(maxsize=1)
def code_version() -> str:
    """A short hash of the explanation code and the cache format: changing either invalidates keys."""
    digest = hashlib.sha256(f"format={CACHE_FORMAT}".encode())
    for folder in _CODE_DIRS:
        for path in sorted((REPO_ROOT / folder).rglob("*.py")):
            digest.update(str(path.relative_to(REPO_ROOT)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def canonical(params: dict[str, Any] | None) -> str:
    """Params as sorted compact JSON, so equal params give equal keys whatever their order."""
    return json.dumps(params or {}, sort_keys=True, separators=(",", ":"), default=str)


def heatmap_key(
    image_sha: str, checkpoint_sha: str, method: str, params: dict[str, Any] | None = None
) -> str:
    """The cache key of one heatmap; tag the entry with `checkpoint_sha` when storing it."""
    return f"heatmap|{image_sha}|{checkpoint_sha}|{method}|{canonical(params)}|{code_version()}"


def table_key(kind: str, checkpoint_sha: str, params: dict[str, Any] | None = None) -> str:
    """The cache key of a metric table (e.g. an FSR table) computed for one checkpoint."""
    return f"table|{kind}|{checkpoint_sha}|{canonical(params)}|{code_version()}"


