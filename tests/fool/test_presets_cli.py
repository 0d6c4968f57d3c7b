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
    p = get_preset("heo-densenet121-active-gradcam")  # 000 Table 1
    assert (p["lr"], p["lam"]) == (6e-6, 15)
    p = get_preset("re-densenet121-topk-gradcam")  # 001 Table 6
    assert (p["lr"], p["lam"]) == (3e-6, 30)
    p = get_preset("thesis-cifar_vgg16-com_point-gradient")  # 002: 0.008 L_C + 0.992 L_M
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
