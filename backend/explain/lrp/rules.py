"""LRP rules as *modified forwards* on plain autograd, so the heatmap stays differentiable in the weights.

Notation: a layer maps input `a` to `z = f(a; W, b)`. Relevance at any tensor t is `t * dS/dt`, the
gradient-times-input formulation; a rule only changes the gradient that flows from `z` to `a`, by
replacing the layer's output with

    out = rho(a) * c + (z - rho(a) * c)|const,    c = z / stabilize(rho(a))|const

whose value is exactly `z` but whose input-gradient is `rho'^T (g * z / rho(a))`, i.e. relevance
`R_a = a * rho'^T (R_z / rho(a))` -- the rule's LRP step. `rho` is the rule's modified forward
(z itself for epsilon; positive weights and inputs for z+; the box bounds for z^beta). "const" means
"held fixed for the input-gradient": detached in a single pass, or taken from a parallel no-input-grad
copy of the batch in the packed (create_graph) pass, so second derivatives w.r.t. the weights stay exact.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

LayerFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]


class _Relay(torch.autograd.Function):
    """Single-pass shortcut: the value of `value`, the input-gradient of `carrier * scale`.

    Equal to `carrier * scale + (value - carrier * scale)|detached` but with one copy in the forward and
    one multiply in the backward instead of four elementwise passes over a large activation: the LRP
    hooks run on every layer, so on a depthwise net (Lite0) these passes are most of LRP's overhead.
    `scale` is a callable run in the backward, so its temporaries never live through the forward.
    Not twice differentiable: the packed (create_graph) mode uses the explicit formula.
    """

    @staticmethod
    def forward(ctx, value: torch.Tensor, carrier: torch.Tensor, scale) -> torch.Tensor:
        ctx.scale = scale
        return value.clone()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return None, grad * ctx.scale(), None


def relay(value: torch.Tensor, carrier: torch.Tensor, scale) -> torch.Tensor:
    return _Relay.apply(value.detach(), carrier, scale)


def stabilize(z: torch.Tensor, eps: float) -> torch.Tensor:
    """z + eps * sign(z), with sign(0) = +1 (zennit's convention)."""
    return z + eps * ((z == 0).to(z) + z.sign())


def _pos(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else t.clamp(min=0)


def _neg(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else t.clamp(max=0)


class Rule:
    """A rule says how to compute rho(a) and how much to stabilise its denominator."""

    eps: float = 1e-6

    def stabilize(self, rho: torch.Tensor) -> torch.Tensor:
        return stabilize(rho, self.eps)

    def modified(
        self, fn: LayerFn, a: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None
    ) -> torch.Tensor | None:
        """rho(a); None means rho(a) = z (the layer's own output is reused, no extra pass)."""
        return None

    def modified_value(
        self, fn: LayerFn, a: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, z: torch.Tensor
    ) -> torch.Tensor:
        """rho(a) where no input-gradient is taken (the packed pass's constant half); `z` = fn(a, w, b)."""
        rho = self.modified(fn, a, w, b)
        return z if rho is None else rho


@dataclass
class Epsilon(Rule):
    """LRP-epsilon: R_a = a * W^T (R_z / (z + eps sign z)); the bias absorbs its share."""

    eps: float = 0.01


class ZPlus(Rule):
    """z+ / alpha1-beta0: only positive contributions a+W+ + a-W- (+ b+), as zennit's ZPlus/AlphaBeta(1,0)."""

    def stabilize(self, rho: torch.Tensor) -> torch.Tensor:
        return rho + self.eps  # rho >= 0, so this equals the general sign-aware form at one op

    def modified(self, fn, a, w, b):
        if not bool(a.detach().amin() < 0):  # after a ReLU: a+ = a, and the a- term vanishes
            return fn(a, w.clamp(min=0), _pos(b))
        return fn(a.clamp(min=0), w.clamp(min=0), _pos(b)) + fn(a.clamp(max=0), w.clamp(max=0), None)


class ZBox(Rule):
    """z^beta / box rule for the first layer: rho = aW + b - (lW+ + b+) - (hW- + b-), l/h the input bounds.

    The bound terms' relevance (-l W+^T s, -h W-^T s) is routed to the input pixels through `a * (l / a)`:
    `f(routed - routed|detached)` is zero in value (the layer is linear without its bias) and carries
    exactly that gradient, while the terms' value is the exact `f(l)` (so padded borders match zennit's),
    computed on one image: the bounds are the same for every image. Pixels that are exactly 0 keep only
    their own `a W^T s` share.
    """

    def __init__(self, low: torch.Tensor, high: torch.Tensor) -> None:
        self.low, self.high = low, high

    def _bounds(self, a, w, b):
        """((bound, W part, b part) for l and h), each bound as one image of a's shape unless it is given
        per image."""

        def image(bound: torch.Tensor) -> torch.Tensor:
            bound = bound.to(a)
            per_image = bound.dim() == a.dim() and bound.shape[0] > 1
            return bound.expand(a.shape if per_image else (1, *a.shape[1:]))

        return (
            (image(self.low), w.clamp(min=0), _pos(b)),
            (image(self.high), w.clamp(max=0), _neg(b)),
        )

    def modified(self, fn, a, w, b):
        out = fn(a, w, b)
        for bound, w_part, b_part in self._bounds(a, w, b):
            routed = a * _ratio(bound, a.detach())
            out = out - fn(routed - routed.detach(), w_part, None) - fn(bound, w_part, b_part)
        return out

    def modified_value(self, fn, a, w, b, z):
        for bound, w_part, b_part in self._bounds(a, w, b):
            z = z - fn(bound, w_part, b_part)
        return z


def apply_rule(
    rule: Rule,
    fn: LayerFn,
    w: torch.Tensor,
    b: torch.Tensor | None,
    a: torch.Tensor,
    z: torch.Tensor,
    packed: bool,
) -> torch.Tensor:
    """Replace the layer output `z` by the rule's modified forward (see the module docstring)."""
    if not packed:
        rho = rule.modified(fn, a, w, b)
        zc = z.detach()
        if rho is None:  # rho = z: z / stabilize(z) == |z| / (|z| + eps), also at z == 0
            return relay(z, z, lambda: _shrink(zc, rule.eps))
        return relay(z, rho, lambda: zc / rule.stabilize(rho.detach()))
    # packed: `z` is the layer's output on the first half only, `a` the whole doubled input
    n = a.shape[0] // 2
    a_a, a_b, z_a = a[:n], a[n:], z
    rho_a = rule.modified_value(fn, a_a, w, b, z_a)
    rho_b = rule.modified(fn, a_b, w, b)
    rho_b = fn(a_b, w, b) if rho_b is None else rho_b
    c = z_a / rule.stabilize(rho_a)
    return torch.cat([z_a, rho_b * c + (z_a - rho_a * c)])


def _ratio(out: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """out / a, with a == 0 read as 1 (its relevance a * ... is 0 either way): three elementwise passes."""
    return out / (a + (a == 0).to(a))


def _shrink(z: torch.Tensor, eps: float) -> torch.Tensor:
    """z / stabilize(z, eps) as |z| / (|z| + eps): equal for z != 0, and 0 at z == 0 either way."""
    m = z.abs()
    return m / (m + eps)


def apply_pass(a: torch.Tensor, out: torch.Tensor, packed: bool) -> torch.Tensor:
    """Pass rule for elementwise layers (activations, unmerged BatchNorm): relevance passes unchanged."""
    if not packed:
        ac, oc = a.detach(), out.detach()
        # out / a, read as 0 where a == 0 (the relevance a * g is 0 there, and the layer below zeroes it)
        return relay(out, a, lambda: torch.nan_to_num_(oc / ac, nan=0.0, posinf=0.0, neginf=0.0))
    n = a.shape[0] // 2  # packed: `out` is the output on the first half only
    a_a, a_b, out_a = a[:n], a[n:], out
    ratio = _ratio(out_a, a_a)
    return torch.cat([out_a, a_b * ratio + (out_a - a_a * ratio)])
