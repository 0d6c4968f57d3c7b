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

In the packed pass the second half never computes rho at all: its output is the first half's value, and
its backward is the rule's input-gradient `rho'^T (g * c)` written out with the layer's transposed map
(`Rule.input_grad`), in differentiable ops on the first half's tensors. Per layer that is one transposed
convolution in the heatmap's backward instead of a forward convolution plus its double backward.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

LayerFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]
# (s, w, input shape) -> W^T s, the layer's transposed linear map (canonizers.layer_vjp)
LayerVjp = Callable[[torch.Tensor, torch.Tensor, torch.Size], torch.Tensor]


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


class _Carrier(torch.autograd.Function):
    """Packed pass: the value of `value`, and `back(grad)` as the input-gradient of `carrier`.

    `back` is made of differentiable ops on the plain half's tensors (weights, activations, the rule's
    constants), and a custom Function's backward runs with grad mode on under create_graph, so the
    gradient it returns is differentiable w.r.t. the weights exactly as the spelled-out formula was.
    A missing gradient (`_Pack` drops all-zero ones) skips the work.
    """

    @staticmethod
    def forward(ctx, value: torch.Tensor, carrier: torch.Tensor, back) -> torch.Tensor:
        ctx.back = back
        ctx.set_materialize_grads(False)
        return value  # no copy (unlike `_Relay`): the output only ever goes into `_Pack`'s cat

    @staticmethod
    def backward(ctx, grad: torch.Tensor | None):
        return None, (None if grad is None else ctx.back(grad)), None


def carry(value: torch.Tensor, carrier: torch.Tensor, back) -> torch.Tensor:
    return _Carrier.apply(value.detach(), carrier, back)


@dataclass
class Packing:
    """Which gradient runs through the packed halves. While the heatmap's own gradient runs, the plain
    halves receive only zeros; in any later pass (the training loss) the carried halves do. `_Pack`
    tests only the half that is expected to be zero, and keeps it if it is not (exact either way)."""

    heatmap_pass: bool = False

    @contextmanager
    def heatmap(self) -> Iterator[None]:
        self.heatmap_pass = True
        try:
            yield
        finally:
            self.heatmap_pass = False


class _Pack(torch.autograd.Function):
    """`cat([plain, carried])` whose backward drops a half whose gradient is all zero.

    The halves share one tensor through the layers between rules (ReLU, pooling, additions), so autograd
    sees a path from each half to both: the heatmap's gradient would run the plain forward's backward on
    zeros (and record it), and the training loss's backward would run every carrier on zeros. Dropping
    exactly-zero gradients changes no result and skips both.
    """

    @staticmethod
    def forward(ctx, plain: torch.Tensor, carried: torch.Tensor, packing: Packing) -> torch.Tensor:
        ctx.n, ctx.packing = plain.shape[0], packing
        ctx.set_materialize_grads(False)
        return torch.cat([plain, carried])

    @staticmethod
    def backward(ctx, grad: torch.Tensor | None):
        if grad is None:
            return None, None, None
        plain, carried = grad[: ctx.n], grad[ctx.n :]
        if ctx.packing.heatmap_pass:
            return (None if _all_zero(plain) else plain), carried, None
        return plain, (None if _all_zero(carried) else carried), None


def pack(plain: torch.Tensor, carried: torch.Tensor, packing: Packing) -> torch.Tensor:
    return _Pack.apply(plain, carried, packing)


def _all_zero(grad: torch.Tensor) -> bool:
    low, high = torch.aminmax(grad.detach())  # one pass, no temporary (any() converts to bool first)
    return bool((low == 0) & (high == 0))


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

    def input_grad(
        self,
        vjp: LayerVjp,
        fn: LayerFn,
        a: torch.Tensor,
        w: torch.Tensor,
        b: torch.Tensor | None,
        s: torch.Tensor,
    ) -> torch.Tensor:
        """rho'(a)^T s, differentiable in `w` and `s` (`a` only sets masks and ratios, as in the single
        pass). The default covers rho = z; other rules override it or fall back to autograd on rho."""
        if type(self).modified is Rule.modified:
            return vjp(s, w, a.shape)
        probe = a.detach().to(s.dtype).requires_grad_(True)
        w, b = w.to(s.dtype), (None if b is None else b.to(s.dtype))
        with torch.enable_grad():
            rho = self.modified(fn, probe, w, b)
            (g,) = torch.autograd.grad(rho, [probe], s, create_graph=True)
        return g


@dataclass
class Epsilon(Rule):
    """LRP-epsilon: R_a = a * W^T (R_z / (z + eps sign z)); the bias absorbs its share."""

    eps: float = 0.01


class ZPlus(Rule):
    """z+ / alpha1-beta0: only positive contributions a+W+ + a-W- (+ b+), as zennit's ZPlus/AlphaBeta(1,0)."""

    def stabilize(self, rho: torch.Tensor) -> torch.Tensor:
        return rho + self.eps  # rho >= 0, so this equals the general sign-aware form at one op

    def modified(self, fn, a, w, b):
        if not _signed(a):  # after a ReLU: a+ = a, and the a- term vanishes
            return fn(a, w.clamp(min=0), _pos(b))
        if _ungrouped(a, w):  # one layer call on [a+, a-] with [W+, W-]
            both = torch.cat([a.clamp(min=0), a.clamp(max=0)], 1)
            return fn(both, torch.cat([w.clamp(min=0), w.clamp(max=0)], 1), _pos(b))
        return fn(a.clamp(min=0), w.clamp(min=0), _pos(b)) + fn(a.clamp(max=0), w.clamp(max=0), None)

    def input_grad(self, vjp, fn, a, w, b, s):
        if not _signed(a):
            return vjp(s, w.clamp(min=0), a.shape)
        a = a.detach()  # clamp's gradient: 1 on a >= 0 for a+, on a <= 0 for a-
        up, down = _stacked_vjp(vjp, s, [w.clamp(min=0), w.clamp(max=0)], a)
        return up * (a >= 0).to(s) + down * (a <= 0).to(s)


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

    def input_grad(self, vjp, fn, a, w, b, s):
        """W^T s - (l/a) W+^T s - (h/a) W-^T s = (1 - l/a) W+^T s + (1 - h/a) W-^T s: two maps, not three."""
        (low, w_pos, _), (high, w_neg, _) = self._bounds(a, w, b)
        up, down = _stacked_vjp(vjp, s, [w_pos, w_neg], a)
        a = a.detach()
        return (1 - _ratio(low, a)) * up + (1 - _ratio(high, a)) * down


def _signed(a: torch.Tensor) -> bool:
    """Whether the layer input has negative entries (z+ then needs its a- W- part)."""
    return bool(a.detach().amin() < 0)


def _ungrouped(a: torch.Tensor, w: torch.Tensor) -> bool:
    """Whether every output sees every input channel (no groups), so weights stack along dim 1."""
    return w.shape[1] == a.shape[1]


def _stacked_vjp(vjp: LayerVjp, s: torch.Tensor, weights: list[torch.Tensor], a: torch.Tensor):
    """[W_i^T s for each W_i]: one transposed call on the weights stacked along the input channels
    (one large call is cheaper than several small ones on a 3-channel first layer)."""
    if not _ungrouped(a, weights[0]):
        return [vjp(s, w, a.shape) for w in weights]
    shape = (a.shape[0], a.shape[1] * len(weights), *a.shape[2:])
    return vjp(s, torch.cat(weights, 1), shape).chunk(len(weights), 1)


def apply_rule(
    rule: Rule, fn: LayerFn, w: torch.Tensor, b: torch.Tensor | None, a: torch.Tensor, z: torch.Tensor
) -> torch.Tensor:
    """Single pass: replace the layer output `z` by the rule's modified forward (module docstring)."""
    rho = rule.modified(fn, a, w, b)
    zc = z.detach()
    if rho is None:  # rho = z: z / stabilize(z) == |z| / (|z| + eps), also at z == 0
        return relay(z, z, lambda: _shrink(zc, rule.eps))
    return relay(z, rho, lambda: zc / rule.stabilize(rho.detach()))


def apply_rule_packed(
    rule: Rule,
    fn: LayerFn,
    vjp: LayerVjp,
    w: torch.Tensor,
    b: torch.Tensor | None,
    a_a: torch.Tensor,
    a_b: torch.Tensor,
    z_a: torch.Tensor,
    packing: Packing,
) -> torch.Tensor:
    """Packed pass: `z_a = fn(a_a)` is the plain half's output; returns both halves, the second carrying
    the rule's input-gradient `rho'^T (g * c)` back to `a_b`, c = z / stabilize(rho)."""
    c = z_a / rule.stabilize(rule.modified_value(fn, a_a, w, b, z_a))
    return pack(z_a, carry(z_a, a_b, lambda g: rule.input_grad(vjp, fn, a_a, w, b, g * c)), packing)


def _ratio(out: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """out / a, with a == 0 read as 1 (its relevance a * ... is 0 either way): three elementwise passes."""
    return out / (a + (a == 0).to(a))


def _shrink(z: torch.Tensor, eps: float) -> torch.Tensor:
    """z / stabilize(z, eps) as |z| / (|z| + eps): equal for z != 0, and 0 at z == 0 either way."""
    m = z.abs()
    return m / (m + eps)


def apply_pass(a: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """Pass rule for elementwise layers (activations, unmerged BatchNorm): relevance passes unchanged."""
    ac, oc = a.detach(), out.detach()
    # out / a, read as 0 where a == 0 (the relevance a * g is 0 there, and the layer below zeroes it)
    return relay(out, a, lambda: torch.nan_to_num_(oc / ac, nan=0.0, posinf=0.0, neginf=0.0))


def apply_pass_packed(
    a_a: torch.Tensor, a_b: torch.Tensor, out_a: torch.Tensor, packing: Packing
) -> torch.Tensor:
    """Pass rule, packed: `out_a` is the output on the plain half `a_a`."""
    ratio = _ratio(out_a, a_a)
    return pack(out_a, carry(out_a, a_b, lambda g: g * ratio), packing)
