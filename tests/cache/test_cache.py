"""The result cache: bytes only, pickles refused (not executed), size limit, tag eviction, stable keys."""

from __future__ import annotations

import io
import os

import diskcache
import numpy as np
import pytest

from backend.cache import (
    ResultCache,
    arrays_to_bytes,
    bytes_to_arrays,
    code_version,
    heatmap_key,
    table_key,
)
from backend.errors import UnsafeCacheEntry


class Exploit:
    """Unpickling this creates a directory: proof that a pickle was executed."""

    def __init__(self, marker: str, pad: int = 0):
        self.marker, self.pad = marker, pad

    def __reduce__(self):
        return (os.makedirs, (self.marker,) if not self.pad else (self.marker, 0o777, "x" * self.pad))


@pytest.fixture
def cache(tmp_path):
    with ResultCache(tmp_path / "cache", size_limit=10 * 1024**2) as c:
        yield c


def test_bytes_and_arrays_round_trip_across_instances(cache, tmp_path):
    heat = np.random.default_rng(0).random((2, 32, 32), dtype=np.float32)
    cache.set_arrays("k", heatmap=heat, logits=np.arange(4.0))
    cache.set("raw", b"\x00\x01")
    with ResultCache(tmp_path / "cache") as again:
        back = again.get_arrays("k")
        assert back["heatmap"].dtype == np.float32 and np.array_equal(back["heatmap"], heat)
        assert np.array_equal(back["logits"], np.arange(4.0))
        assert again.get("raw") == b"\x00\x01" and again.get("missing") is None


def test_only_bytes_values_and_string_keys_are_stored(cache):
    for value in ("text", 3, {"a": 1}, np.zeros(3)):
        with pytest.raises(TypeError, match="bytes"):
            cache.set("k", value)
    with pytest.raises(TypeError, match="strings"):
        cache.set(("tuple", "key"), b"x")
    with pytest.raises(TypeError, match="object"):
        arrays_to_bytes(a=np.array([{"x": 1}], dtype=object))


@pytest.mark.parametrize("pad", [0, 100_000], ids=["pickle-in-db", "pickle-in-file"])
def test_planted_pickle_is_refused_not_executed(cache, tmp_path, pad):
    marker = tmp_path / "pwned"
    with diskcache.Cache(str(cache.directory)) as attacker:  # the stock Disk pickles
        attacker.set("victim", Exploit(str(marker), pad))
    with pytest.raises(UnsafeCacheEntry, match="pickle"):
        cache.get("victim")
    assert not marker.exists()
    assert cache.get("victim") is None  # refused entries are removed, so the result is recomputed


def test_planted_object_array_in_npz_is_refused(cache, tmp_path):
    buffer = io.BytesIO()
    np.savez(buffer, a=np.array([Exploit(str(tmp_path / "pwned"))], dtype=object))
    cache.set("npz", buffer.getvalue())
    with pytest.raises(UnsafeCacheEntry, match="npz"):
        cache.get_arrays("npz")
    assert not (tmp_path / "pwned").exists()
    with pytest.raises(UnsafeCacheEntry):
        bytes_to_arrays(b"not an npz")


def test_evict_tag_removes_only_that_checkpoints_entries(cache):
    for i in range(3):
        cache.set(f"a{i}", b"a", tag="sha-a")
        cache.set(f"b{i}", b"b", tag="sha-b")
    assert cache.evict_tag("sha-a") == 3
    assert [cache.get(f"a{i}") for i in range(3)] == [None] * 3
    assert [cache.get(f"b{i}") for i in range(3)] == [b"b"] * 3


def test_size_limit_bounds_the_cache(tmp_path):
    limit = 512 * 1024
    with ResultCache(tmp_path / "small", size_limit=limit) as cache:
        blob = os.urandom(40 * 1024)
        for i in range(60):
            cache.set(f"k{i}", blob)
        assert cache.volume() <= limit + 2 * len(blob) + 64 * 1024  # culling lags by a set or two
        assert len(cache) < 60 and cache.get("k59") == blob  # the newest stays


def test_size_limit_defaults_to_settings(monkeypatch, tmp_path):
    monkeypatch.setenv("FOOLING_LAB_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("FOOLING_LAB_CACHE_BYTES", "123456")
    with ResultCache() as cache:
        assert cache.directory == tmp_path / "data" / "cache"
        assert cache._cache.size_limit == 123456


def test_heatmap_keys_are_stable_and_specific():
    base = heatmap_key("img", "ckpt", "lrp", {"composite": "zbox_zplus", "beta": 1.0})
    assert base == heatmap_key("img", "ckpt", "lrp", {"beta": 1.0, "composite": "zbox_zplus"})
    variants = {
        heatmap_key("img2", "ckpt", "lrp", {"composite": "zbox_zplus", "beta": 1.0}),
        heatmap_key("img", "ckpt2", "lrp", {"composite": "zbox_zplus", "beta": 1.0}),
        heatmap_key("img", "ckpt", "gradcam", {"composite": "zbox_zplus", "beta": 1.0}),
        heatmap_key("img", "ckpt", "lrp", {"composite": "zbox_zplus", "beta": 2.0}),
        table_key("fsr", "ckpt", {"composite": "zbox_zplus", "beta": 1.0}),
    }
    assert base not in variants and len(variants) == 5
    assert base.endswith(code_version()) and len(code_version()) == 12
