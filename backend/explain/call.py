"""One explain call's inputs and the helpers every method shares (forward, target, score, upsample)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from backend.errors import InvalidConfig
from backend.progress import ProgressFn, report

Target = int | torch.Tensor | None


@dataclass
class ExplainCall:
    """Everything a method's `compute` needs; `target` is resolved to a LongTensor (B,) lazily."""

    model: nn.Module
    x: torch.Tensor
    target: Target
    create_graph: bool
    layer: nn.Module | None
    params: dict[str, Any]
    progress: ProgressFn | None = None
    _resolved: torch.Tensor | None = field(default=None, init=False, repr=False)

    @property
    def batch(self) -> int:
        return self.x.shape[0]

    def targets(self, logits: torch.Tensor) -> torch.Tensor:
        """The requested classes as (B,) longs, resolved once; None means each image's predicted class."""
        if self._resolved is None:
            if self.target is None:
                self._resolved = logits.detach().argmax(1)
            else:
                self._resolved = resolve_target(self.target, self.batch, logits.shape[1], logits.device)
        return self._resolved

    @property
    def resolved_target(self) -> torch.Tensor | None:
        """The (B,) classes once a forward has resolved them; None before."""
        return self._resolved

    def score(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Sum over the batch of each row's target logit (samples are independent in eval mode)."""
        reps = logits.shape[0] // target.shape[0]
        return logits.gather(1, target.repeat(reps)[:, None]).sum()

    def grad(self, output: torch.Tensor, inputs: list[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """d output / d inputs, keeping the graph (to the weights) when the caller asked for it."""
        return torch.autograd.grad(output, inputs, create_graph=self.create_graph)

    def report(self, done: int, total: int) -> None:
        """Tell the caller how many of a heavy method's `total` work units (points, windows) are done."""
        report(self.progress, done, total)

    def finish(self, t: torch.Tensor) -> torch.Tensor:
        """Detach results unless they must stay differentiable."""
        return t if self.create_graph else t.detach()

    def upsample(self, native: torch.Tensor) -> torch.Tensor:
        """(B, h, w) -> (B, H, W) at input resolution (bilinear, the method's `upsample` param)."""
        mode = self.params.get("upsample", "bilinear")
        size = self.x.shape[-2:]
        extra = {"align_corners": False} if mode in ("bilinear", "bicubic") else {}
        return F.interpolate(native[:, None], size=size, mode=mode, **extra)[:, 0]


def resolve_target(target: Target, batch: int, classes: int, device: torch.device) -> torch.Tensor:
    """Validate an int / (B,) tensor target against the batch and the number of classes."""
    if isinstance(target, int) and not isinstance(target, bool):
        t = torch.full((batch,), target, dtype=torch.long, device=device)
    elif isinstance(target, torch.Tensor) and target.dtype in (torch.int32, torch.int64):
        t = target.to(device=device, dtype=torch.long).reshape(-1)
        if t.numel() == 1:
            t = t.expand(batch).clone()
        if t.numel() != batch:
            raise InvalidConfig(f"target has {t.numel()} entries but the batch has {batch} images")
    else:
        raise InvalidConfig(f"target must be None, an int or a tensor of class indices, not {target!r}")
    if t.min() < 0 or t.max() >= classes:
        raise InvalidConfig(f"target class out of range: the model has {classes} classes (0..{classes - 1})")
    return t
