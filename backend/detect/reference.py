"""With a reference model (e.g. the un-manipulated parent): how far the suspect's heatmaps are from it.

Every heatmap similarity of the metrics module, per image, averaged over the data set.
"""

from __future__ import annotations

import torch

from backend.metrics import similarity


def similarity_report(suspect_maps: torch.Tensor, reference_maps: torch.Tensor) -> dict[str, float]:
    """Mean of each `similarity.SIMILARITIES` measure between two (B, H, W) batches of [0, 1] maps."""
    report = {}
    for name, fn in similarity.SIMILARITIES.items():
        kwargs = {"data_range": 1.0} if name == "ssim" else {}
        report[name] = float(fn(suspect_maps, reference_maps, **kwargs).mean())
    return report
