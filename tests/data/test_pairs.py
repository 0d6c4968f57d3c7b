"""Heo2019's Active pair: the presets swap fire truck and African elephant on every architecture, and the
D_fool builder makes images that show both classes (side by side or pasted), reproducibly."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from backend.data.datasets import build_dataset
from backend.data.pairs import build_pair_folder
from backend.errors import InvalidDataset
from backend.fool.presets import HEO_ACTIVE_PAIR, PRESETS
from backend.models.preprocessing import Preprocessing
from backend.models.zoo import imagenet_classes


def test_heos_active_pair_names_imagenet_classes():
    classes = imagenet_classes()
    assert classes.index(HEO_ACTIVE_PAIR["c1"]) == 555 and classes.index(HEO_ACTIVE_PAIR["c2"]) == 386
    active = [n for n in PRESETS if n.startswith("heo-") and "-active-" in n]
    assert len(active) == 6
    assert all(PRESETS[n]["config"]["attack_params"] == HEO_ACTIVE_PAIR for n in active)


@pytest.fixture(scope="module")
def two_classes(tmp_path_factory):
    root = tmp_path_factory.mktemp("classes")
    for name, colour in (("truck", (255, 0, 0)), ("elephant", (0, 0, 255))):
        (root / name).mkdir()
        for i in range(3):
            Image.new("RGB", (60 + 10 * i, 50), colour).save(root / name / f"{i}.png")
    return root / "truck", root / "elephant"


def _red_blue(path) -> tuple[float, float]:
    a = np.asarray(Image.open(path), dtype=float)
    return float((a[..., 0] > 200).mean()), float((a[..., 2] > 200).mean())


@pytest.mark.parametrize("mode", ["side_by_side", "paste"])
def test_the_builder_shows_both_classes_in_every_image(two_classes, tmp_path, mode):
    out = build_pair_folder(*two_classes, tmp_path / mode, n=6, size=64, seed=1, mode=mode)
    files = sorted(out.glob("*.jpg"))
    assert len(files) == 6
    for f in files:
        red, blue = _red_blue(f)
        assert Image.open(f).size == (64, 64)
        if mode == "side_by_side":
            assert red == pytest.approx(0.5, abs=0.05) and blue == pytest.approx(0.5, abs=0.05)
        else:
            assert 0.1 < blue < 0.45 and red > 0.5  # the elephant pasted onto the truck photo
    again = build_pair_folder(*two_classes, tmp_path / "again", n=6, size=64, seed=1, mode=mode)
    assert [p.read_bytes() for p in sorted(again.glob("*.jpg"))] == [p.read_bytes() for p in files]
    ds = build_dataset({"kind": "folder", "path": str(out), "unlabelled": True}, Preprocessing(32, None))
    assert len(ds) == 6 and ds[0][1] == -1  # Active's "unlabelled" images


def test_the_builder_refuses_an_empty_class_folder(two_classes, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidDataset, match="holds no images"):
        build_pair_folder(two_classes[0], tmp_path / "empty", tmp_path / "out", n=2)


def test_the_pairs_command_writes_d_fool_and_names_its_dataset_spec(two_classes, tmp_path, capsys):
    import json

    from backend.__main__ import main

    out = tmp_path / "dfool"
    args = ["pairs", *map(str, two_classes), str(out), "--n", "3", "--size", "48", "--mode", "paste"]
    assert main(args) == 0
    spec = json.loads(capsys.readouterr().out.split("dataset spec: ", 1)[1])
    assert spec == {"kind": "folder", "path": str(out.resolve()), "unlabelled": True}
    assert sorted(p.name for p in out.iterdir()) == ["pair-00000.jpg", "pair-00001.jpg", "pair-00002.jpg"]
    assert Image.open(out / "pair-00000.jpg").size == (48, 48)
    assert main(["pairs", str(two_classes[0]), str(tmp_path / "none"), str(tmp_path / "x")]) == 2
