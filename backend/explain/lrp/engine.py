"""The LRP engine: forward hooks that swap each layer's output for its rule's modified forward.

Forward hooks only change forward values, so the whole heatmap is ordinary autograd and can be
differentiated again (no backward hooks). Two modes:

* single (create_graph=False): the rule's constants are detached; one pass, cheapest.
* packed (create_graph=True): the batch runs twice side by side from the first rule layer on; the first
  half is the plain forward and supplies the rule's constants (differentiable w.r.t. the weights, with
  no path to the input leaf), the second half carries the LRP input-gradient: its layers return the
  plain value and, in the backward, the rule's transposed map written in differentiable ops
  (`rules.apply_rule_packed`). Second derivatives are then exact, and neither half's backward runs on
  the zeros the other half receives (`rules._Pack`).

With `start_after=layer` (LRP_T) only the layers that run after `layer` get rules, and in packed mode the
batch is doubled at that layer's output instead of at the input: the layers below run once, as in a
plain forward, which is what makes LRP_T about as cheap as Grad-CAM inside a fooling loss.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from backend.explain.lrp.canonizers import BATCHNORMS, layer_fn, layer_vjp, layout, merged_params
from backend.explain.lrp.composites import COMPOSITES
from backend.explain.lrp.rules import (
    Packing,
    Rule,
    apply_pass,
    apply_pass_packed,
    apply_rule,
    apply_rule_packed,
    pack,
)

# Elementwise layers that get the Pass rule. ReLU and LeakyReLU are absent on purpose: their gradient
# already passes relevance unchanged (f(a) / a == f'(a)), so a hook would only cost time.
ACTIVATIONS = (
    nn.ReLU6,
    nn.Softplus,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.GELU,
    nn.SiLU,
    nn.Hardswish,
    nn.Hardtanh,
    nn.Sigmoid,
    nn.Tanh,
    nn.Mish,
)


@dataclass
class LayerStart:
    """What `lrp_rules(start_after=layer)` records: `activation` is the layer's output (B, ...), and
    `carrier` the tensor to take the LRP gradient against (the activation itself in a single pass, the
    second half's own view of it in the packed pass)."""

    activation: torch.Tensor | None = None
    carrier: torch.Tensor | None = None
    packing: Packing = field(default_factory=Packing)


class _Hooks:
    """Builds the hook closures for one model and one composite; `packed` is fixed per context.

    `open` is False while the forward is still below the `start_after` layer: the hooks then leave
    outputs alone. In packed mode a hooked module runs on the plain half of the batch only (a forward
    pre-hook keeps both halves aside). An input that is not doubled yet (the first layer of an input
    heatmap) is split as (its detached value, itself): the plain half then has no path back to the
    input leaf, so the heatmap's gradient never walks through the plain forward.
    """

    def __init__(self, packed: bool, gated: bool, batch: int) -> None:
        self.packed = packed
        self.gated = gated
        self.batch = batch
        self.open = not gated
        self.inputs: dict[nn.Module, Any] = {}
        self.start = LayerStart()

    def reset(self, module, inputs) -> None:
        self.open = not self.gated
        self.inputs.clear()

    def begin(self, module, inputs, output):
        """The `start_after` layer finished: rules apply from here; packed mode doubles the batch here."""
        self.open = True
        self.start.activation = output
        if not self.packed:
            self.start.carrier = output
            return None
        self.start.carrier = output.view_as(output)
        return pack(output, self.start.carrier, self.start.packing)

    def _params(self, layer: nn.Module, bn: nn.Module | None):
        w, b = merged_params(layer, bn)
        if not self.packed:  # constants only: no weight graph needed for an input-gradient
            w, b = w.detach(), (None if b is None else b.detach())
        return w, b

    def halves(self, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(plain half, carrier half) of a packed-mode input."""
        if a.shape[0] == 2 * self.batch:
            plain, carrier = a.chunk(2)
            return plain, carrier
        return a.detach(), a

    def halve(self, module, inputs):
        """Packed pre-hook: keep both halves for the rule, run the module on the plain half."""
        if not self.open:
            return None
        self.inputs[module] = self.halves(inputs[0])
        return (self.inputs[module][0], *inputs[1:])

    def store_input(self, module, inputs, output) -> None:
        if self.open:
            self.inputs[module] = inputs[0]

    def _rule(self, rule: Rule, layer: nn.Module, w, b, a, output):
        if not self.packed:
            return apply_rule(rule, layer_fn(layer), w, b, a, output)
        fn, vjp = layer_fn(layer), layer_vjp(layer)
        return apply_rule_packed(rule, fn, vjp, w, b, *a, output, self.start.packing)

    def layer(self, rule: Rule):
        def hook(module, inputs, output):
            if not self.open:
                return None
            w, b = self._params(module, None)
            a = self.inputs.pop(module) if self.packed else inputs[0]
            return self._rule(rule, module, w, b, a, output)

        return hook

    def merged(self, layer: nn.Module, rule: Rule):
        def hook(module, inputs, output):
            if not self.open:
                return None
            if layer not in self.inputs:  # its layer ran below `start_after`: the norm alone, Pass rule
                return self._pass(inputs[0], output)
            w, b = self._params(layer, module)
            return self._rule(rule, layer, w, b, self.inputs.pop(layer), output)

        return hook

    def _pass(self, a: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
        """Pass rule on a norm that ran on the whole (doubled) input."""
        if not self.packed:
            return apply_pass(a, output)
        a_a, a_b = self.halves(a)
        return apply_pass_packed(a_a, a_b, output[: a_a.shape[0]], self.start.packing)

    def passthrough(self, module, inputs, output):
        if not self.open:
            return None
        if not self.packed:
            return apply_pass(inputs[0], output)
        return apply_pass_packed(*self.inputs.pop(module), output, self.start.packing)


@contextmanager
def lrp_rules(
    model: nn.Module,
    sample: torch.Tensor,
    composite: str,
    params: dict,
    packed: bool,
    start_after: nn.Module | None = None,
) -> Iterator[LayerStart]:
    """Attach the composite's rules (BatchNorm folded in) for the block; everything is undone afterwards."""
    lay = layout(model, sample)
    choose = COMPOSITES[composite]
    hooks = _Hooks(packed, gated=start_after is not None, batch=sample.shape[0])
    handles = []
    inplace = [m for m in model.modules() if getattr(m, "inplace", False) is True]
    merged_norms = set(lay.bn_of.values())
    try:
        for m in inplace:
            m.inplace = False
        for layer in lay.order:
            rule = choose(layer, layer is lay.first, params)
            bn = lay.bn_of.get(layer)
            if packed:
                handles.append(layer.register_forward_pre_hook(hooks.halve))
            if bn is None:
                handles.append(layer.register_forward_hook(hooks.layer(rule)))
            else:
                if not packed:
                    handles.append(layer.register_forward_hook(hooks.store_input))
                handles.append(bn.register_forward_hook(hooks.merged(layer, rule)))
        for m in model.modules():
            unmerged_norm = isinstance(m, BATCHNORMS) and m not in merged_norms
            if isinstance(m, ACTIVATIONS) or unmerged_norm:
                if packed:
                    handles.append(m.register_forward_pre_hook(hooks.halve))
                handles.append(m.register_forward_hook(hooks.passthrough))
        if start_after is not None:  # registered last: the layer's own rule hooks still see it closed
            handles.append(model.register_forward_pre_hook(hooks.reset))
            handles.append(start_after.register_forward_hook(hooks.begin))
        yield hooks.start
    finally:
        for h in handles:
            h.remove()
        for m in inplace:
            m.inplace = True
        hooks.inputs.clear()


def input_relevance(
    model: nn.Module,
    x: torch.Tensor,
    score_fn,
    composite: str,
    params: dict,
    create_graph: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(relevance (B, C, H, W), logits): R = x * dS/dx under the composite, S = score_fn(logits)."""
    leaf = x.detach().requires_grad_(True)
    with lrp_rules(model, x, composite, params, packed=create_graph) as start:
        logits = lrp_logits = model(leaf)  # packed: the first layer doubles the batch (see _Hooks)
    if create_graph:
        logits, lrp_logits = logits.chunk(2)
    with start.packing.heatmap():
        (g,) = torch.autograd.grad(score_fn(lrp_logits), [leaf], create_graph=create_graph)
    return leaf * g, logits
