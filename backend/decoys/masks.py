"""Patch masks that tile an image, one decoy per mask (Decoys §3.1: every patch covered at least once)."""

from __future__ import annotations

import torch

from backend.errors import InvalidConfig


def _starts(length: int, patch: int, stride: int) -> list[int]:
    starts = list(range(0, length - patch + 1, stride))
    if starts[-1] + patch < length:  # the last patch is flush with the border so nothing is left uncovered
        starts.append(length - patch)
    return starts


def patch_masks(height: int, width: int, patch: int, stride: int) -> torch.Tensor:
    """Boolean masks (n, H, W), one square `patch` x `patch` window per position, stepping by `stride`.

    The union covers every pixel even when the stride does not divide the image size.
    """
    if patch < 1 or stride < 1:
        raise InvalidConfig(f"Decoy patch size and stride must be >= 1 (got patch={patch}, stride={stride}).")
    if patch > min(height, width):
        raise InvalidConfig(f"Decoy patch size {patch} is larger than the image ({height}x{width}).")
    rows, cols = _starts(height, patch, stride), _starts(width, patch, stride)
    masks = torch.zeros(len(rows) * len(cols), height, width, dtype=torch.bool)
    for i, (r, c) in enumerate((r, c) for r in rows for c in cols):
        masks[i, r : r + patch, c : c + patch] = True
    return masks
