"""Presets carry the papers' numbers; the CLI's --set parser."""

from __future__ import annotations

import pytest

from backend.cli.fool import apply_sets
from backend.errors import InvalidConfig, UnknownMethod
from backend.fool.presets import PRESETS, get_preset


def test_paper_tables_are_transcribed():
    assert get_preset("heo-vgg19-location-lrp_t") | {} == get_preset("heo-vgg19-location-lrp_t")
    p = get_preset("heo-resnet50-location-lrp_t")
    assert (p["lr"], p["lam"], p["batch_size"]) == (1e-6, 4, 8)
    p = get_preset("heo-densenet121-active-gradcam")  # Heo2019 Table 1
    assert (p["lr"], p["lam"]) == (6e-6, 15)
    p = get_preset("re-densenet121-topk-gradcam")  # Krishna2021 Table 6
    assert (p["lr"], p["lam"]) == (3e-6, 30)
    p = get_preset("thesis-cifar_vgg16-com_point-gradient")  # Pasliev2020: 0.008 L_C + 0.992 L_M
    assert p["lam"] == pytest.approx(0.992 / 0.008) and p["softplus_beta"] == 20
    assert sum(1 for n in PRESETS if n.startswith("heo-")) == 24


def test_unknown_preset():
    with pytest.raises(UnknownMethod, match="Unknown preset"):
        get_preset("heo-vgg99-location-lrp_t")


def test_set_overrides_parse_json_and_dotted_keys():
    cfg = apply_sets(
        {"attack_params": {"k": 0.1}}, ["lr=0.01", "attack_params.k=0.2", "name=my run", "steps=null"]
    )
    assert cfg == {"attack_params": {"k": 0.2}, "lr": 0.01, "name": "my run", "steps": None}
    with pytest.raises(InvalidConfig, match="key=value"):
        apply_sets({}, ["lr"])


def test_thesis_presets_run_on_a_cifar_vgg16_trained_on_shapes_or_are_refused(isolated_lab):
    """Every thesis preset validates on a CIFAR VGG16 with the shapes' classes at 32 px (what `train
    --architecture cifar_vgg16 --size 32` makes: no CIFAR-10 here); a CIFAR-10-class model without a
    dataset is refused before anything runs, saying what to provide."""
    from backend.data.shapes import SHAPE_CLASSES
    from backend.fool.config import FoolConfig
    from backend.fool.presets import resolve_config
    from backend.models import zoo
    from backend.models.preprocessing import Preprocessing
    from backend.models.registry import Registry
    from backend.models.train_config import validate_config

    trained = validate_config({"architecture": "cifar_vgg16", "size": 32})
    assert trained["name"] == "CIFAR VGG16 on 32 px shapes"
    with pytest.raises(InvalidConfig, match="architecture must be one of"):
        validate_config({"architecture": "resnet50"})
    registry = Registry()
    model = zoo.build("cifar_vgg16", 5)
    pre = Preprocessing(32, None, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    card = registry.save(
        model, name=trained["name"], architecture="cifar_vgg16", classes=list(SHAPE_CLASSES),
        preprocessing=pre, kind="trained", config=trained,
    )  # fmt: skip
    thesis = [n for n in PRESETS if n.startswith("thesis-")]
    for name in thesis:
        cfg = FoolConfig.from_dict(resolve_config({"preset": name, "model": card.id})).validate(registry)
        assert cfg.dataset["kind"] == "shapes", name
        if cfg.attack == "target_heatmap":
            assert cfg.attack_params["target"] == "cross", name
        if cfg.interpreter == "lrp":
            assert cfg.interpreter_params["composite"] == "zbox_zplus", name
    spec = zoo.spec("cifar_vgg16")
    cifar = registry.save(
        model, name="cifar", architecture="cifar_vgg16", classes=spec.classes(),
        preprocessing=spec.preprocessing, kind="uploaded",
    )  # fmt: skip
    with pytest.raises(InvalidConfig, match="CIFAR-10 images, which this machine does not have"):
        resolve_config({"preset": thesis[0], "model": cifar.id})
