"""Composites: which LRP rule each conv/linear layer gets (zennit's idea of a layer map, as a registry)."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from backend.explain.lrp.rules import Epsilon, Rule, ZBox, ZPlus

# (layer, is_first_layer, params) -> rule
Composite = Callable[[nn.Module, bool, dict], Rule]


def epsilon_alpha1beta0(layer: nn.Module, first: bool, params: dict) -> Rule:
    """Heo et al.: epsilon (0.01) on dense layers, alpha1-beta0 (= z+) on convolutions."""
    return Epsilon(params["epsilon"]) if isinstance(layer, nn.Linear) else ZPlus()


def zbox_zplus(layer: nn.Module, first: bool, params: dict) -> Rule:
    """Pasliev: z^beta (box) rule with the normalised input bounds on the first layer, z+ everywhere after."""
    return ZBox(params["low"], params["high"]) if first else ZPlus()


def zplus(layer: nn.Module, first: bool, params: dict) -> Rule:
    """z+ everywhere, dense layers included (the first layer's signed inputs as a+W+ + a-W-, zennit's ZPlus):
    the positive-evidence rule for an MLP on table rows, which have no pixel bounds for z^beta."""
    return ZPlus()


def epsilon(layer: nn.Module, first: bool, params: dict) -> Rule:
    """Epsilon everywhere: conserves relevance exactly on bias-free nets (used to check conservation)."""
    return Epsilon(params["epsilon"])


COMPOSITES: dict[str, Composite] = {
    "epsilon_alpha1beta0": epsilon_alpha1beta0,
    "zbox_zplus": zbox_zplus,
    "zplus": zplus,
    "epsilon": epsilon,
}
