"""Batched heatmap similarity: one value per image pair, all torch, so they run on the GPU too.

Every function takes two heatmap batches `a, b` of shape (B, H, W) (a single (H, W) map is broadcast
against a batch, e.g. a target heatmap) and returns a float tensor (B,). These are the measures the
thesis (Pasliev2020 §3.4) and the papers report: MSE, Pearson (PCC), SSIM, Spearman rank correlation, top-k
intersection and the distance between centres of mass.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_EPS = 1e-12


def _pair(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Promote both to float (B, H, W) with the same batch size (broadcasting a single map)."""
    a, b = a.float(), b.float()
    if a.dim() == 2:
        a = a.unsqueeze(0)
    if b.dim() == 2:
        b = b.unsqueeze(0)
    if a.dim() != 3 or b.dim() != 3 or a.shape[-2:] != b.shape[-2:]:
        raise ValueError(
            f"heatmaps must be (B, H, W) of equal size, got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    batch = max(a.shape[0], b.shape[0])
    return a.expand(batch, -1, -1), b.expand(batch, -1, -1)


def mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean squared error per image."""
    a, b = _pair(a, b)
    return (a - b).pow(2).flatten(1).mean(1)


def pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pearson correlation per image (0 where one map is constant)."""
    a, b = _pair(a, b)
    a = a.flatten(1) - a.flatten(1).mean(1, keepdim=True)
    b = b.flatten(1) - b.flatten(1).mean(1, keepdim=True)
    denom = a.norm(dim=1) * b.norm(dim=1)
    return torch.where(denom > _EPS, (a * b).sum(1) / denom.clamp_min(_EPS), torch.zeros_like(denom))


def _ranks(x: torch.Tensor) -> torch.Tensor:
    """Average ranks (ties share the mean rank, as scipy.stats.rankdata does) along dim 1."""
    n = x.shape[1]
    sorted_x, order = x.sort(dim=1, stable=True)
    positions = torch.arange(n, dtype=x.dtype, device=x.device).expand_as(x)
    # Group equal values: a new group starts where the sorted value changes.
    new_group = torch.ones_like(sorted_x, dtype=torch.bool)
    new_group[:, 1:] = sorted_x[:, 1:] != sorted_x[:, :-1]
    group_id = new_group.long().cumsum(1) - 1
    sums = torch.zeros_like(x).scatter_add_(1, group_id, positions)
    counts = torch.zeros_like(x).scatter_add_(1, group_id, torch.ones_like(x))
    mean_rank = sums.gather(1, group_id) / counts.gather(1, group_id)
    ranks = torch.empty_like(x)
    ranks.scatter_(1, order, mean_rank + 1.0)
    return ranks


def spearman(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Spearman rank correlation per image: Pearson of the (tie-averaged) ranks."""
    a, b = _pair(a, b)
    ra = _ranks(a.flatten(1).double())
    rb = _ranks(b.flatten(1).double())
    h, w = a.shape[-2:]
    return pearson(ra.view(-1, h, w), rb.view(-1, h, w)).float()


def _gaussian_window(size: int, sigma: float, device, dtype) -> torch.Tensor:
    coords = torch.arange(size, device=device, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    return torch.outer(g, g)


def ssim(
    a: torch.Tensor,
    b: torch.Tensor,
    *,
    data_range: float | None = None,
    win_size: int = 7,
    gaussian: bool = False,
    sigma: float = 1.5,
) -> torch.Tensor:
    """Structural similarity per image, the skimage `structural_similarity` definition.

    Defaults match skimage's (7x7 uniform window, K1=0.01, K2=0.03, sample covariance, mean over the
    valid region). `data_range=None` uses the pair's joint max - min, as heatmaps have no fixed range.
    """
    a, b = _pair(a, b)
    a = a.double().unsqueeze(1)
    b = b.double().unsqueeze(1)
    if data_range is None:
        both = torch.cat([a.flatten(1), b.flatten(1)], 1)
        rng = (both.max(1).values - both.min(1).values).clamp_min(_EPS).view(-1, 1, 1, 1)
    else:
        rng = torch.full((a.shape[0], 1, 1, 1), float(data_range), dtype=a.dtype, device=a.device)
    if gaussian:
        win_size = 2 * int(3.5 * sigma + 0.5) + 1
        window = _gaussian_window(win_size, sigma, a.device, a.dtype)
    else:
        window = torch.full((win_size, win_size), 1.0 / win_size**2, dtype=a.dtype, device=a.device)
    if min(a.shape[-2:]) < win_size:
        raise ValueError(f"SSIM needs heatmaps of at least {win_size}x{win_size} pixels")
    kernel = window.view(1, 1, win_size, win_size)
    n = win_size**2
    cov_norm = n / (n - 1)
    mu_a, mu_b = F.conv2d(a, kernel), F.conv2d(b, kernel)
    var_a = cov_norm * (F.conv2d(a * a, kernel) - mu_a**2)
    var_b = cov_norm * (F.conv2d(b * b, kernel) - mu_b**2)
    cov = cov_norm * (F.conv2d(a * b, kernel) - mu_a * mu_b)
    c1, c2 = (0.01 * rng) ** 2, (0.03 * rng) ** 2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return s.flatten(1).mean(1).float()


def topk_mask(h: torch.Tensor, fraction: float) -> torch.Tensor:
    """Boolean (B, H, W): the `fraction` of pixels with the highest values of each map."""
    if h.dim() == 2:
        h = h.unsqueeze(0)
    flat = h.flatten(1)
    k = max(1, int(round(fraction * flat.shape[1])))
    idx = flat.topk(k, dim=1).indices
    mask = torch.zeros_like(flat, dtype=torch.bool).scatter_(1, idx, True)
    return mask.view_as(h)


def topk_intersection(a: torch.Tensor, b: torch.Tensor, fraction: float = 0.1) -> torch.Tensor:
    """Share of the top-`fraction` pixels of `a` that are also top-`fraction` pixels of `b` (0..1)."""
    a, b = _pair(a, b)
    ma, mb = topk_mask(a, fraction), topk_mask(b, fraction)
    return (ma & mb).flatten(1).sum(1).float() / ma.flatten(1).sum(1).float()


def center_of_mass(h: torch.Tensor) -> torch.Tensor:
    """(B, 2) centre of mass (row, col) in pixels of non-negative maps; differentiable.

    Negative values are clipped at 0 (a mass cannot be negative); an all-zero map has its centre in
    the middle of the image.
    """
    if h.dim() == 2:
        h = h.unsqueeze(0)
    h = h.clamp_min(0)
    height, width = h.shape[-2:]
    rows = torch.arange(height, dtype=h.dtype, device=h.device)
    cols = torch.arange(width, dtype=h.dtype, device=h.device)
    mass = h.flatten(1).sum(1)
    safe = mass.clamp_min(_EPS)
    r = (h.sum(2) * rows).sum(1) / safe
    c = (h.sum(1) * cols).sum(1) / safe
    middle_r = torch.full_like(r, (height - 1) / 2)
    middle_c = torch.full_like(c, (width - 1) / 2)
    empty = mass <= _EPS
    return torch.stack([torch.where(empty, middle_r, r), torch.where(empty, middle_c, c)], 1)


def com_distance(a: torch.Tensor, b: torch.Tensor, *, norm: str = "l2") -> torch.Tensor:
    """Distance in pixels between the centres of mass of `a` and `b` ('l2' Euclidean or 'l1')."""
    a, b = _pair(a, b)
    diff = center_of_mass(a) - center_of_mass(b)
    if norm == "l1":
        return diff.abs().sum(1)
    if norm == "l2":
        return diff.norm(dim=1)
    raise ValueError(f"norm must be 'l1' or 'l2', not {norm!r}")


SIMILARITIES = {
    "mse": mse,
    "pearson": pearson,
    "ssim": ssim,
    "spearman": spearman,
    "topk_intersection": topk_intersection,
    "com_distance": com_distance,
}
