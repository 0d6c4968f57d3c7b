"""Labels follow the checkpoint's classes: folders matched by name / WNID / synonym, never by their order.

Real photos (the sample photos through EfficientNet-Lite0) and the shapes CNN fixture, no mocks.
"""

from __future__ import annotations

import shutil
import zipfile

import pytest
import torch
from PIL import Image

from backend.data.datasets import build_dataset, label_check
from backend.data.labels import imagenet_classes, match_folders, normalize_name
from backend.data.samples import sample_photos
from backend.data.shapes import SHAPE_CLASSES, make_shapes
from backend.errors import InvalidConfig, InvalidDataset
from backend.metrics.evaluate import evaluate, format_report
from backend.models.preprocessing import Preprocessing


def test_imagenet_table_agrees_with_torchvision_names():
    from torchvision.models._meta import _IMAGENET_CATEGORIES

    table = imagenet_classes()
    assert [c.name for c in table] == list(_IMAGENET_CATEGORIES)
    assert table[281].wnid == "n02123045" and "tabby cat" in table[281].synonyms
    assert len({c.wnid for c in table}) == 1000


def test_names_match_case_and_separator_insensitively_and_in_any_order():
    folders = ["Ring", "TRIANGLE", "cross", "circle", "square"]
    mapping = match_folders(folders, SHAPE_CLASSES)
    assert mapping.folders == {"Ring": 4, "TRIANGLE": 2, "cross": 3, "circle": 0, "square": 1}
    assert normalize_name("Tabby_Cat") == normalize_name("tabby-cat") == normalize_name(" tabby  cat")


def test_imagenet_folders_by_wnid_synonym_or_name_and_a_subset_is_fine():
    classes = [c.name for c in imagenet_classes()]
    mapping = match_folders(["n02123045", "Tabby_Cat", "espresso", "Race_Car", "crane"], classes)
    assert mapping.folders == {
        "n02123045": 281,
        "Tabby_Cat": 281,
        "espresso": 967,
        "Race_Car": 751,  # a WordNet synonym of "racer"
        "crane": 517,  # the exact name wins over the bird's synonym "crane" (134, "crane bird")
    }
    assert mapping.how["n02123045"] == "wnid" and mapping.how["Tabby_Cat"] == "synonym"
    # a model whose card lists a few ImageNet classes by name still knows their WNIDs and synonyms
    assert match_folders(["n07920052", "tabby cat"], ["tabby", "espresso"]).folders == {
        "n07920052": 1,
        "tabby cat": 0,
    }


def test_unmatched_folder_is_refused_naming_the_closest_classes():
    with pytest.raises(InvalidDataset, match=r"'circel'.*closest: 0 'circle'"):
        match_folders(["circel", "square"], SHAPE_CLASSES)
    classes = [c.name for c in imagenet_classes()]
    with pytest.raises(InvalidDataset, match=r"'espreso'.*967 'espresso' \(n07920052\)"):
        match_folders(["espreso"], classes)
    with pytest.raises(InvalidDataset, match="class mapping"):
        match_folders(["dog"], SHAPE_CLASSES)


def test_explicit_mapping_overrides_and_is_checked():
    mapping = match_folders(["a", "b", "circle"], SHAPE_CLASSES, {"a": "Triangle", "b": 4})
    assert mapping.folders == {"a": 2, "b": 4, "circle": 0} and mapping.how["a"] == "mapping"
    with pytest.raises(InvalidDataset, match="does not have"):
        match_folders(["a"], SHAPE_CLASSES, {"zz": 1, "a": 0})
    with pytest.raises(InvalidDataset, match=r"index 9; it must be in \[0, 5\)"):
        match_folders(["a"], SHAPE_CLASSES, {"a": 9})


def _shapes_zip(tmp_path, names: dict[int, str], n: int = 60):
    """A zip of class folders holding shapes PNGs; returns (extracted root, the images' true labels)."""
    images, labels, _ = make_shapes(n, 64, seed=123)
    path = tmp_path / "shapes.zip"
    with zipfile.ZipFile(path, "w") as z:
        for i, (img, y) in enumerate(zip(images, labels, strict=True)):
            png = tmp_path / f"{i}.png"
            Image.fromarray((img.permute(1, 2, 0) * 255).round().byte().numpy()).save(png)
            z.write(png, f"set/{names[int(y)]}/{i:03d}.png")
    from backend.data.folders import extract_zip

    return extract_zip(path, tmp_path / "out"), labels


def test_zip_in_another_folder_order_gives_the_models_own_accuracy(tmp_path, shapes_model):
    from backend.models.registry import Registry

    model, card = shapes_model
    names = {0: "Circle", 1: "square", 2: "TRI_angle", 3: "cross", 4: "ring"}
    root, labels = _shapes_zip(tmp_path, names)
    spec = {"kind": "folder", "path": str(root), "class_map": {"TRI_angle": "triangle"}}
    pre = Preprocessing.from_dict(card.preprocessing)
    ds = build_dataset(spec, pre, card.classes)
    # same images, the model's own indices, in the dataset's (sorted-path) order
    by_path = {f"{i:03d}.png": int(y) for i, y in enumerate(labels)}
    own = torch.tensor([by_path[p.name] for p, _ in ds.items])
    assert [y for _, y in ds.items] == own.tolist()
    x = torch.stack([ds[i][0] for i in range(len(ds))])
    with torch.no_grad():
        expected = float((model(x).argmax(1) == own).float().mean())
    report = evaluate({"baseline": card.id, "dataset": spec, "images": 1000}, registry=Registry())
    assert report["accuracy"]["baseline"]["top1"] == pytest.approx(expected)
    assert expected > 0.8  # and folder order would have been wrong: cross, ring, square, triangle moved
    text = format_report(report)
    assert "Images: 60 from folder" in text and "TRI_angle -> 2 triangle (mapping)" in text


def test_unmatched_zip_folder_is_refused_before_the_job_starts(tmp_path, shapes_model):
    from backend.fool.config import FoolConfig
    from backend.models.registry import Registry

    _, card = shapes_model
    root, _ = _shapes_zip(tmp_path, {0: "circle", 1: "square", 2: "triangel", 3: "cross", 4: "ring"}, n=10)
    spec = {"kind": "folder", "path": str(root)}
    with pytest.raises(InvalidConfig, match=r"'triangel'.*closest: 2 'triangle'"):
        FoolConfig.from_dict({"model": card.id, "dataset": spec}).validate(Registry())
    with pytest.raises(InvalidConfig, match="triangel"):
        evaluate({"baseline": card.id, "dataset": spec}, registry=Registry())


def test_sample_photos_are_labelled_only_for_models_with_their_classes(shapes_model):
    from backend.fool.config import FoolConfig
    from backend.models import zoo
    from backend.models.registry import Registry

    _, card = shapes_model
    imagenet = zoo.spec("efficientnet_lite0").classes()
    assert label_check({"kind": "samples"}, imagenet)["labelled"]
    assert not label_check({"kind": "samples"}, card.classes)["labelled"]
    pre = Preprocessing.from_dict(card.preprocessing)
    assert set(build_dataset({"kind": "samples"}, pre, card.classes).labels) == {-1}
    config = {"model": card.id, "dataset": {"kind": "samples"}, "classification": "labels"}
    with pytest.raises(InvalidConfig, match="None of these images carries a label"):
        FoolConfig.from_dict(config).validate(Registry())
    FoolConfig.from_dict({**config, "classification": "keep_probs_kl"}).validate(Registry())


# chelsea, coffee and rocket: the labelled sample photos, as a user would sort them
_BY_WNID = {"chelsea": "n02123045", "coffee": "n07920052", "rocket": "n03773504"}
_BY_NAME = {"chelsea": "tabby cat", "coffee": "Espresso", "rocket": "missile"}


def _photo_folder(root, names: dict[str, str]):
    for photo, path in sample_photos().items():
        if photo in names:
            (root / names[photo]).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, root / names[photo] / f"{photo}.png")
            with Image.open(path) as im:  # a second view of each: mirrored, the centre 80%
                w, h = im.size
                view = im.transpose(Image.Transpose.FLIP_LEFT_RIGHT).crop(
                    (w // 10, h // 10, w * 9 // 10, h * 9 // 10)
                )
                view.save(root / names[photo] / f"{photo}_view.png")
    return root


@pytest.fixture(scope="module")
def lite0_card():
    from backend.models.registry import Registry

    registry = Registry()
    registry.ensure_builtin()
    return next(c for c in registry.list() if c.architecture == "efficientnet_lite0")


def test_lite0_on_sample_photos_in_folders_named_by_wnid_and_by_name(tmp_path, lite0_card, capsys):
    """The WNID folders through the library; the human-named ones zipped, through the command line."""
    from backend.__main__ import main
    from backend.models.registry import Registry

    root = _photo_folder(tmp_path / "wnid", _BY_WNID)
    spec = {"kind": "folder", "path": str(root)}
    report = evaluate({"baseline": lite0_card.id, "dataset": spec}, registry=Registry())
    top1, top5 = report["accuracy"]["baseline"]["top1"], report["accuracy"]["baseline"]["top5"]
    print(f"Lite0 on the sample photos' folder: top-1 {top1:.3f}, top-5 {top5:.3f}")
    assert report["images"] == report["labelled"] == 6
    assert top5 == 1.0 and top1 >= 4 / 6  # chelsea reads as 'tiger cat' first, tabby in its top 3
    assert "n07920052 -> 967 espresso (wnid)" in format_report(report)

    named = _photo_folder(tmp_path / "named" / "photos", _BY_NAME)
    archive = shutil.make_archive(str(tmp_path / "photos"), "zip", named.parent)
    capsys.readouterr()
    assert main(["evaluate", "--baseline", lite0_card.id, "--dataset", archive]) == 0
    printed = capsys.readouterr().out
    assert "Images: 6 from folder" in printed and "6 labelled" in printed
    assert "tabby cat -> 281 tabby (synonym)" in printed
    assert f"Baseline top-1 {100 * top1:.1f}%, top-5 100.0%" in printed


def test_dataset_specs_and_active_take_class_names(shapes_model):
    from backend.data.datasets import validate_spec
    from backend.fool.config import FoolConfig
    from backend.models.registry import Registry

    _, card = shapes_model
    spec = {"kind": "shapes", "n": 20, "pair": ["Circle", "triangle"]}
    assert validate_spec(spec)["pair"] == [0, 2]
    with pytest.raises(InvalidDataset, match=r"'pair' names 'triangel'.*closest: 2 'triangle'"):
        validate_spec({**spec, "pair": ["circle", "triangel"]})
    cfg = FoolConfig.from_dict(
        {
            "model": card.id,
            "dataset": spec,
            "attack": "active",
            "attack_params": {"c1": "circle", "c2": "TRIANGLE"},
        }
    ).validate(Registry())
    assert (cfg.attack_params["c1"], cfg.attack_params["c2"]) == (0, 2)
    with pytest.raises(InvalidConfig, match="Active fooling's c2 names 'rectangle'"):
        FoolConfig.from_dict(
            {"model": card.id, "dataset": spec, "attack": "active", "attack_params": {"c2": "rectangle"}}
        ).validate(Registry())


def test_detect_and_decoys_use_the_checkpoints_own_kind_of_images(shapes_model, lite0_card):
    from backend.jobs.kinds import get_kind

    _, card = shapes_model
    detect, decoys = get_kind("detect"), get_kind("decoys")
    assert detect.validate({"suspect": lite0_card.id})["dataset"]["kind"] == "samples"
    assert decoys.validate({"checkpoint": lite0_card.id})["dataset"]["kind"] == "samples"
    shapes = detect.validate({"suspect": card.id})["dataset"]
    assert shapes["kind"] == "shapes" and shapes["size"] == 64
    with pytest.raises(InvalidConfig, match="not shapes: test it on its own kind of images"):
        detect.validate({"suspect": lite0_card.id, "dataset": {"kind": "shapes", "n": 4}})


def test_detection_and_decoy_images_come_through_the_loader_workers_unchanged(tmp_path, shapes_model):
    """`detect.inputs.load_images` (detect, decoys, defence measurements) decodes a folder with DataLoader
    workers and gives the dataset's own images and labels, in its order."""
    from backend.data.loader import default_workers
    from backend.detect.inputs import load_images
    from backend.models.registry import Registry

    _, card = shapes_model
    names = {0: "circle", 1: "square", 2: "triangle", 3: "cross", 4: "ring"}
    root, _ = _shapes_zip(tmp_path, names, n=12)
    spec = {"kind": "folder", "path": str(root)}
    checkpoint = Registry().get(card.id, device="cpu")
    ds = build_dataset(spec, checkpoint.image_preprocessing, checkpoint.classes)
    assert default_workers(ds) >= 1  # a folder is decoded by worker processes
    x, y = load_images(spec, checkpoint, 10, "cpu")
    assert x.shape[0] == 10 and torch.equal(x, torch.stack([ds[i][0] for i in range(10)]))
    assert y.tolist() == [ds[i][1] for i in range(10)]
    with pytest.raises(InvalidConfig, match="no images"):
        load_images(spec, checkpoint, 0, "cpu")
