"""Decoy-enhanced saliency (Decoys, Eq. 3): Z = max - min over the decoys' saliency maps, any method.

The saliency method sees every decoy (and the input, a trivially valid decoy) the same way and explains
the input's predicted class. Input-resolution methods keep their per-channel map; layer-resolution
methods (Grad-CAM, LRP_T) contribute their upsampled heatmap.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from backend.decoys.generate import DecoySet, DecoySettings, Normalize, blur_decoys, optimise_decoys
from backend.errors import InvalidConfig
from backend.progress import ProgressFn

GENERATORS = {"optimize": optimise_decoys, "blur": blur_decoys}


def saliency_maps(
    model: nn.Module,
    images: torch.Tensor,
    normalize: Normalize,
    target: int,
    method: str,
    batch_size: int = 32,
    **params,
) -> torch.Tensor:
    """Saliency of `images` (n, C, H, W) in [0, 1] for class `target`: (n, C, H, W) or (n, 1, H, W)."""
    from backend.explain import explain

    maps = []
    for chunk in images.split(batch_size):
        ex = explain(model, normalize(chunk), torch.full((len(chunk),), target), method, **params)
        native = ex.native
        if native is not None and native.dim() == 4 and native.shape[-2:] == chunk.shape[-2:]:
            maps.append(native.detach())
        else:
            maps.append(ex.heatmap.detach()[:, None])
    return torch.cat(maps)


def decoy_range(maps: torch.Tensor) -> torch.Tensor:
    """Z_j = max_i E(x~_i)_j - min_i E(x~_i)_j over the first axis (Eq. 3); >= 0, 0 where all agree."""
    if maps.shape[0] < 1:
        raise InvalidConfig("Decoy-enhanced saliency needs at least one decoy map.")
    return maps.amax(0) - maps.amin(0)


def visualize(saliency: torch.Tensor, percentile: float = 95.0) -> torch.Tensor:
    """The paper's heatmap (§4.1): |.|, max over channels, winsorise at the percentile, scale to [0, 1].

    Accepts (C, H, W) or (H, W); returns (H, W). A constant map becomes all zeros.
    """
    s = saliency.abs()
    if s.dim() == 3:
        s = s.amax(0)
    cap = torch.quantile(s.flatten().float(), percentile / 100.0)
    s = s.clamp(max=float(cap))
    lo, hi = s.min(), s.max()
    if float(hi - lo) <= 0:
        return torch.zeros_like(s, dtype=torch.float32)
    return ((s - lo) / (hi - lo)).float()


@dataclass
class EnhancedSaliency:
    """One image's raw and decoy-enhanced saliency, each as the paper's [0, 1] heatmap, and the decoys."""

    target: int
    raw: torch.Tensor  # (H, W) visualised E(x)
    enhanced: torch.Tensor  # (H, W) visualised Z
    z: torch.Tensor  # Z before visualisation, (C, H, W) or (1, H, W)
    decoys: DecoySet


def enhanced_saliency(
    model: nn.Module,
    x: torch.Tensor,
    normalize: Normalize,
    method: str = "gradient",
    settings: DecoySettings = DecoySettings(),
    generator: str = "optimize",
    target: int | None = None,
    progress: ProgressFn | None = None,
    **params,
) -> EnhancedSaliency:
    """Decoys of `x` (C, H, W) in [0, 1], their saliency maps, and Z; `target` defaults to the prediction."""
    if generator not in GENERATORS:
        raise InvalidConfig(f"Unknown decoy generator {generator!r}; choose one of {sorted(GENERATORS)}.")
    if target is None:
        with torch.no_grad():
            target = int(model(normalize(x[None])).argmax(1))
    if generator == "optimize":
        decoys = optimise_decoys(model, x, normalize, settings, progress=progress)
    else:
        decoys = blur_decoys(model, x, normalize, settings)
    population = torch.cat([x[None], decoys.decoys])  # the input is a valid decoy too
    maps = saliency_maps(model, population, normalize, target, method, **params)
    z = decoy_range(maps)
    return EnhancedSaliency(target, visualize(maps[0]), visualize(z), z, decoys)
