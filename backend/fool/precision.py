"""Mixed precision for a fooling run: fp16 autocast with a GradScaler on CUDA, bf16 autocast on the CPU.

fp16 keeps 10 mantissa bits and a narrow range, so its loss needs scaling; bf16 keeps float32's range
with 7 mantissa bits, so it needs no scaler but rounds coarsely. Inside a fooling loss the heatmap is
itself a gradient, and a map that is a small difference of large numbers (LRP's relevance ratios, a
gradient summed over many paths) can lose its meaning at 7 bits. `BF16_REFUSED` lists the interpreters
whose maps bf16 breaks, measured by tests/fool/test_precision.py (map correlation with float32 below
REQUIRED_PCC); a run asking for them in bf16 is refused with a message instead of fooling noise.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass

import torch

from backend.errors import InvalidConfig

# Interpreters whose create_graph maps under CPU bf16 autocast correlate with the float32 maps below
# REQUIRED_PCC on some image (tests/fool/test_precision.py measures each method on 8 shapes images and
# keeps this true). Measured: Grad-CAM min 0.00 / mean 0.63 (a channel-weighted sum that cancels at 7
# bits; one map collapses to zero); Gradient 0.97, Gradient x Input 0.975, Gradient_T 0.98, IG 0.997,
# SmoothGrad 0.997, LRP and LRP_T 1.000.
BF16_REFUSED: frozenset[str] = frozenset({"gradcam"})
REQUIRED_PCC = 0.9


@dataclass(frozen=True)
class Precision:
    """The autocast dtype of a run on one device type (None: full float32)."""

    device_type: str
    dtype: torch.dtype | None = None

    @property
    def name(self) -> str:
        return {None: "float32", torch.float16: "fp16", torch.bfloat16: "bf16"}[self.dtype]

    def autocast(self) -> AbstractContextManager:
        return torch.autocast(
            self.device_type, dtype=self.dtype or torch.float32, enabled=self.dtype is not None
        )

    def scaler(self) -> torch.amp.GradScaler:
        """A GradScaler that is active for fp16 only (bf16 and float32 need no loss scaling)."""
        device = "cuda" if self.device_type == "cuda" else "cpu"
        return torch.amp.GradScaler(device, enabled=self.dtype == torch.float16)


def precision_for(device: torch.device | str, mixed: bool, interpreter: str | None = None) -> Precision:
    """fp16 on CUDA, bf16 on the CPU when `mixed`; refuses bf16 for the interpreters it breaks."""
    kind = torch.device(device).type
    if not mixed:
        return Precision(kind)
    if kind == "cuda":
        return Precision(kind, torch.float16)
    if kind == "cpu":
        if interpreter in BF16_REFUSED:
            raise InvalidConfig(
                f"mixed_precision on the CPU runs in bf16, and bf16 breaks {interpreter!r} maps (their "
                f"correlation with float32 maps falls below {REQUIRED_PCC}); switch mixed_precision off "
                f"for {interpreter!r} or run on a GPU (fp16)."
            )
        return Precision(kind, torch.bfloat16)
    raise InvalidConfig(f"mixed_precision is supported on CUDA (fp16) and the CPU (bf16), not on {kind!r}.")


def map_agreement(
    model: torch.nn.Module, x: torch.Tensor, target: torch.Tensor, method: str, precision: Precision
) -> tuple[float, bool]:
    """(lowest per-image PCC between the method's create_graph maps under `precision` and in float32,
    whether the second-order gradients of the reduced-precision map are finite): the measurement behind
    BF16_REFUSED, shared by the test and benchmarks/gpu_fp16_check.py."""
    from backend.explain import explain

    full = explain(model, x, target, method, create_graph=True).heatmap.float()
    with precision.autocast():
        half = explain(model, x, target, method, create_graph=True).heatmap.float()
    params = [p for p in model.parameters() if p.requires_grad]
    grads = torch.autograd.grad(half.pow(2).sum(), params, allow_unused=True)
    finite = all(g is None or bool(torch.isfinite(g).all()) for g in grads)
    a = full.flatten(1) - full.flatten(1).mean(1, keepdim=True)
    b = half.flatten(1) - half.flatten(1).mean(1, keepdim=True)
    pcc = (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1)).clamp_min(1e-12)
    return float(pcc.min()), finite
