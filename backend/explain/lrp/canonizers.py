"""Canonizers: views of the model under which LRP rules are well defined, without editing the model.

* BatchNorm merge: a BatchNorm that directly consumes a conv/linear output is folded into that layer's
  weights for the rule (W' = W * s, b' = (b - mean) * s + beta, s = gamma / sqrt(var + eps)). The fold is
  computed functionally on every call, so nothing has to be undone and the heatmap stays differentiable
  w.r.t. the conv *and* BatchNorm parameters. Unmerged BatchNorms (e.g. DenseNet's pre-activation norms)
  get the Pass rule, as in zennit.
* Residual additions (torchvision's functional `out += identity`, the Lite0 `Add` module) and DenseNet's
  concatenation need no rewrite here: in the gradient-times-input formulation an addition already splits
  relevance in proportion to its inputs (zennit's Norm rule on its Sum module) and a concatenation passes
  each part's relevance to its source. The ResNet test checks this against zennit's ResNetCanonizer.

The pairing is found once per model by a one-image forward that records which tensor each layer produced.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

PARAM_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


@dataclass(frozen=True)
class ModelLayout:
    """Conv/linear layers in execution order and the BatchNorm that follows each (if any)."""

    order: tuple[nn.Module, ...]
    bn_of: dict[nn.Module, nn.Module]

    @property
    def first(self) -> nn.Module:
        return self.order[0]


_LAYOUTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _signature(model: nn.Module) -> tuple[int, ...]:
    return tuple(id(m) for m in model.modules() if isinstance(m, PARAM_LAYERS + BATCHNORMS))


def layout(model: nn.Module, sample: torch.Tensor) -> ModelLayout:
    """The model's layout, traced on `sample[:1]` the first time and cached while its layers stay the same."""
    cached = _LAYOUTS.get(model)
    sig = _signature(model)
    if cached is not None and cached[0] == sig:
        return cached[1]
    order: list[nn.Module] = []
    produced: dict[int, tuple[torch.Tensor, nn.Module]] = {}
    bn_of: dict[nn.Module, nn.Module] = {}

    def on_layer(module, inputs, output):
        if module not in order:
            order.append(module)
        produced[id(output)] = (output, module)

    def on_norm(module, inputs, output):
        hit = produced.get(id(inputs[0]))
        if hit is not None and hit[0] is inputs[0]:
            bn_of[hit[1]] = module

    handles = []
    try:
        for m in model.modules():
            if isinstance(m, PARAM_LAYERS):
                handles.append(m.register_forward_hook(on_layer))
            elif isinstance(m, BATCHNORMS):
                handles.append(m.register_forward_hook(on_norm))
        with torch.no_grad():
            model(sample[:1].detach())
    finally:
        for h in handles:
            h.remove()
    if not order:
        raise ValueError("LRP needs at least one Conv or Linear layer in the model")
    result = ModelLayout(tuple(order), bn_of)
    _LAYOUTS[model] = (sig, result)
    return result


def merged_params(layer: nn.Module, bn: nn.Module | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The layer's (weight, bias) with the following BatchNorm folded in (differentiable)."""
    w, b = layer.weight, layer.bias
    if bn is None:
        return w, b
    scale = torch.rsqrt(bn.running_var + bn.eps)
    if bn.weight is not None:
        scale = bn.weight * scale
    shift = -bn.running_mean * scale
    if b is not None:
        shift = shift + b * scale
    if bn.bias is not None:
        shift = shift + bn.bias
    return w * scale.view(-1, *([1] * (w.dim() - 1))), shift


def layer_fn(layer: nn.Module):
    """The layer's own operation with explicit parameters (padding, stride, groups kept)."""
    if isinstance(layer, nn.Linear):
        return F.linear
    return layer._conv_forward
