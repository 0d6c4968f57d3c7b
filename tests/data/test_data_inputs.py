"""Data loading under attack and edge cases: zips, odd images, and the synthetic shapes' guarantees."""

from __future__ import annotations

import io
import stat
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from backend.data.folders import MAX_RATIO, extract_zip, extract_zip_report, scan_folder
from backend.data.images import MAX_SIDE, load_image
from backend.data.shapes import SHAPE_CLASSES, make_shape_pairs, make_shapes
from backend.errors import InvalidDataset, InvalidImage, UnsafeArchive


def _png(color=(200, 10, 10), size=(8, 8), mode="RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, color if mode == "RGB" else 7).save(buf, "PNG")
    return buf.getvalue()


def _zip(entries: dict[str, bytes], symlink: str | None = None) -> io.BytesIO:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries.items():
            z.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            z.writestr(info, "/etc/passwd")
    buf.seek(0)
    return buf


def test_class_folder_zip_extracts_and_scans_with_labels(tmp_path):
    root = extract_zip(
        _zip({"set/cat/a.png": _png(), "set/dog/b.png": _png(), "set/notes.txt": b"x"}), tmp_path / "out"
    )
    items, classes = scan_folder(root)
    assert classes == ["cat", "dog"]
    assert sorted(label for _, label in items) == [0, 1]


@pytest.mark.parametrize("name", ["../evil.png", "/abs/evil.png", "C:/evil.png", "a/../../evil.png"])
def test_path_traversal_is_refused_and_nothing_written_outside(tmp_path, name):
    with pytest.raises(UnsafeArchive, match="outside"):
        extract_zip(_zip({name: _png()}), tmp_path / "out")
    assert not (tmp_path / "evil.png").exists()


def test_symlink_entry_is_refused(tmp_path):
    with pytest.raises(UnsafeArchive, match="symbolic link"):
        extract_zip(_zip({"a.png": _png()}, symlink="link.png"), tmp_path / "out")


def test_zip_bomb_ratio_is_refused(tmp_path):
    bomb = b"\0" * (MAX_RATIO * 4096)  # compresses far beyond the allowed ratio
    with pytest.raises(UnsafeArchive, match="zip bomb"):
        extract_zip(_zip({"bomb.png": bomb}), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_random_bytes_and_imageless_archives_are_refused(tmp_path):
    with pytest.raises(UnsafeArchive, match="not a readable zip"):
        extract_zip(io.BytesIO(np.random.default_rng(0).bytes(4096)), tmp_path / "a")
    with pytest.raises(UnsafeArchive, match="no images"):
        extract_zip(_zip({"readme.txt": b"hello"}), tmp_path / "b")
    report = extract_zip_report(_zip({"x.png": _png(), "y.csv": b"1,2"}), tmp_path / "c")
    assert report.extracted == ["x.png"] and any("y.csv" in s for s in report.skipped)


def test_empty_folder_is_an_invalid_dataset(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidDataset):
        scan_folder(tmp_path / "empty")


def test_odd_images_load_as_rgb_and_bad_ones_get_a_message():
    assert load_image(_png(mode="P")).mode == "RGB"  # palette
    assert load_image(_png(mode="L")).mode == "RGB"  # grayscale
    rgba = io.BytesIO()
    Image.new("RGBA", (5, 5), (1, 2, 3, 0)).save(rgba, "PNG")
    assert load_image(rgba.getvalue()).size == (5, 5)
    with pytest.raises(InvalidImage, match="empty"):
        load_image(b"")
    with pytest.raises(InvalidImage, match="not an image"):
        load_image(b"definitely not an image")
    with pytest.raises(InvalidImage):
        load_image(_png(size=(64, 64))[:60])  # truncated


def test_large_photo_is_downscaled_not_refused():
    buf = io.BytesIO()
    Image.new("RGB", (6000, 4000), (10, 200, 30)).save(buf, "JPEG", quality=50)
    img = load_image(buf.getvalue())
    assert max(img.size) <= MAX_SIDE and img.size[0] > img.size[1]


def test_shapes_are_deterministic_and_masks_mark_the_object():
    x1, y1, m1 = make_shapes(200, 48, seed=5)
    x2, y2, m2 = make_shapes(200, 48, seed=5)
    x3, _, _ = make_shapes(200, 48, seed=6)
    assert torch.equal(x1, x2) and torch.equal(y1, y2) and torch.equal(m1, m2)
    assert not torch.equal(x1, x3)
    assert x1.shape == (200, 3, 48, 48) and 0 <= float(x1.min()) and float(x1.max()) <= 1
    assert set(y1.tolist()) == set(range(len(SHAPE_CLASSES)))
    cover = m1.flatten(1).float().mean(1)
    assert bool((cover > 0.01).all()) and bool((cover < 0.6).all())
    # objects are not always centred: mask centres spread over the image
    ys = (m1.float() * torch.arange(48).view(1, 48, 1)).sum((1, 2)) / m1.sum((1, 2))
    assert float(ys.std()) > 4


def test_shape_pairs_hold_one_object_of_each_class_in_opposite_halves():
    images, masks = make_shape_pairs(64, 64, seed=3, classes=(2, 4))
    again, _ = make_shape_pairs(64, 64, seed=3, classes=(2, 4))
    assert torch.equal(images, again) and images.shape == (64, 3, 64, 64) and masks.shape == (64, 2, 64, 64)
    assert not (masks[:, 0] & masks[:, 1]).any()
    assert bool((masks.flatten(2).float().mean(2) > 0.01).all())
    cols = torch.arange(64).float()
    cx = (masks.float().sum(2) * cols).sum(2) / masks.float().sum((2, 3))  # (n, 2) column centres
    assert bool(((cx[:, 0] < 32) != (cx[:, 1] < 32)).all())  # one object per half
    assert 0.2 < float((cx[:, 0] < 32).float().mean()) < 0.8  # c1 on either side
    with pytest.raises(InvalidDataset, match="different"):
        make_shape_pairs(4, 64, classes=(1, 1))


def test_shapes_spec_with_pairs_mixes_unlabelled_two_object_images():
    from backend.data.datasets import build_dataset, validate_spec
    from backend.models.preprocessing import Preprocessing

    pre = Preprocessing(32, None, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    ds = build_dataset({"kind": "shapes", "n": 40, "seed": 2, "pair": [0, 3], "pair_fraction": 0.25}, pre)
    labels = [ds[i][1] for i in range(len(ds))]
    assert len(ds) == 40 and labels.count(-1) == 10 and -1 in labels[:20] and -1 in labels[20:]
    single = build_dataset({"kind": "shapes", "n": 40, "seed": 2}, pre)
    assert all(ds[i][0].shape == single[i][0].shape == (3, 32, 32) for i in (0, 39))
    for bad, match in (
        ({"pair": [0, 0]}, "different"),
        ({"pair": [0, 9]}, "different"),
        ({"pair": [0, 1], "pair_fraction": 0}, "pair_fraction"),
        ({"pair_fraction": 0.5}, "needs 'pair'"),
    ):
        with pytest.raises(InvalidDataset, match=match):
            validate_spec({"kind": "shapes", **bad})
