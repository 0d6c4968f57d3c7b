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
from torch.autograd.function import once_differentiable

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


CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


def layer_fn(layer: nn.Module):
    """The layer's own operation with explicit parameters (padding, stride, groups kept)."""
    if isinstance(layer, nn.Linear):
        return F.linear
    return layer._conv_forward


def _conv_backward(s, a, w, geometry, mask):
    stride, padding, dilation, groups = geometry
    zeros = [0] * (w.dim() - 2)
    return torch.ops.aten.convolution_backward(
        s, a, w, None, stride, padding, dilation, False, zeros, groups, mask
    )


class _ConvTransposed(torch.autograd.Function):
    """W^T s for a convolution (its input-gradient map), with a backward made of the cheap kernels.

    PyTorch's generic double backward of a convolution takes the weight part as a convolution over
    batch-transposed tensors (a kernel as large as the feature map), several times slower on a CPU than
    the weight-gradient kernel used here: d<gg, W^T s>/dW is the weight-gradient of conv(gg, W) at `s`.
    """

    @staticmethod
    def forward(ctx, s, w, shape, geometry):
        ctx.save_for_backward(s, w)
        ctx.geometry = geometry
        probe = s.new_empty(shape)  # only its shape is read (an expanded view would be copied)
        return _conv_backward(s, probe, w.to(s.dtype), geometry, (True, False, False))[0]

    @staticmethod
    @once_differentiable
    def backward(ctx, gg):
        s, w = ctx.saved_tensors
        wc = w.to(s.dtype)  # the heatmap may run in half precision (autocast) against float weights
        stride, padding, dilation, groups = ctx.geometry
        conv = (F.conv1d, F.conv2d, F.conv3d)[w.dim() - 3]
        gs = gw = None
        if ctx.needs_input_grad[0]:
            gs = conv(gg.to(s.dtype), wc, None, stride, padding, dilation, groups)
        if ctx.needs_input_grad[1]:
            gw = _conv_backward(s, gg.to(s.dtype), wc, ctx.geometry, (False, True, False))[1].to(w.dtype)
        return gs, gw, None, None


def layer_vjp(layer: nn.Module):
    """`(s, w, shape) -> W^T s`: the input-gradient of the layer's linear map for weight `w`, without its
    forward. Differentiable w.r.t. `w` and `s`, so the packed LRP pass can take it inside a backward. It
    runs in `s`'s dtype: a backward runs outside autocast, where half and float tensors do not mix."""
    if isinstance(layer, nn.Linear):
        return lambda s, w, shape: s.matmul(w.to(s.dtype))
    if isinstance(layer, CONVS) and layer.padding_mode == "zeros" and not isinstance(layer.padding, str):
        geometry = (layer.stride, layer.padding, layer.dilation, layer.groups)
        return lambda s, w, shape: _ConvTransposed.apply(s, w, shape, geometry)
    fn = layer_fn(layer)

    def generic_vjp(s: torch.Tensor, w: torch.Tensor, shape: torch.Size) -> torch.Tensor:
        probe = s.new_zeros(shape, requires_grad=True)  # the map is linear: any point gives W^T s
        with torch.enable_grad():
            (g,) = torch.autograd.grad(fn(probe, w.to(s.dtype), None), [probe], s, create_graph=True)
        return g

    return generic_vjp
