"""What catches a fairwashed model: measurements of its decisions, which a manipulated chart cannot fake.

* Counterfactual flips: set a protected attribute of every row to each other category; the share of
  rows whose decision changes, and how far the favourable class's probability moves.
* Fairness of the decisions: demographic-parity difference (largest gap in the rate of favourable
  decisions between groups) and equal-opportunity difference (largest gap in the true-positive rate).
* Noise inputs (Pasliev2020 §4.1) on rows: numeric columns N(0, 1), each categorical a random category;
  the mean pairwise Pearson correlation of the maps, and the protected share on those rows.
* Weight noise (Pasliev2020 §4.2): agreement, map correlation to the un-noised maps and the protected share as
  Gaussian noise is added to the weights (`backend.detect.weight_noise.noisy_copy`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from backend.detect.weight_noise import noisy_copy, summarise
from backend.metrics import similarity
from backend.progress import ProgressFn, report
from backend.tabular.measure import attributions, normalised, predictions, probabilities, protected_share
from backend.tabular.preprocessing import TabularPreprocessing

MIN_GROUP_ROWS = 30  # groups smaller than this are listed but left out of the differences


def counterfactual_flips(model: nn.Module, x: torch.Tensor, prep: TabularPreprocessing) -> dict[str, dict]:
    """Per protected input: flip rate (decision changes for some other category), mean and max |change
    of the favourable class's probability|, and the flip rate towards each category."""
    p0 = probabilities(model, x)
    d0 = p0.argmax(1)
    out = {}
    for name in prep.protected_inputs:
        cats = prep.column(name).categories
        own = torch.as_tensor(prep.category_index(x, name), device=x.device)
        changed = torch.zeros(len(x), dtype=torch.bool, device=x.device)
        moved = torch.zeros(len(x), dtype=p0.dtype, device=x.device)
        by_category = {}
        for k, cat in enumerate(cats):
            p = probabilities(model, prep.set_category(x, name, cat))
            other = own != k
            flips = (p.argmax(1) != d0) & other
            delta = (p[:, prep.positive] - p0[:, prep.positive]).abs() * other
            changed |= flips
            moved = torch.maximum(moved, delta)
            by_category[cat] = float(flips.sum() / other.sum().clamp_min(1))
        out[name] = {
            "flip_rate": float(changed.float().mean()),
            "mean_abs_dprob": float(moved.mean()),
            "max_abs_dprob": float(moved.max()) if len(moved) else 0.0,
            "by_category": by_category,
        }
    return out


def fairness(decisions: np.ndarray, labels: np.ndarray, groups: np.ndarray, positive: int) -> dict[str, Any]:
    """Demographic-parity and equal-opportunity differences of `decisions` over the values of `groups`."""
    per_group = {}
    for value in sorted(set(groups.tolist())):
        rows = groups == value
        pos = rows & (labels == positive)
        per_group[str(value)] = {
            "rows": int(rows.sum()),
            "selection_rate": float(np.mean(decisions[rows] == positive)),
            "true_positive_rate": float(np.mean(decisions[pos] == positive)) if pos.any() else None,
            "positives": int(pos.sum()),
        }
    sel = [g["selection_rate"] for g in per_group.values() if g["rows"] >= MIN_GROUP_ROWS]
    tpr = [g["true_positive_rate"] for g in per_group.values() if g["positives"] >= MIN_GROUP_ROWS]
    return {
        "dp_difference": max(sel) - min(sel) if len(sel) > 1 else 0.0,
        "eo_difference": max(tpr) - min(tpr) if len(tpr) > 1 else 0.0,
        "groups": per_group,
    }


def noise_rows(prep: TabularPreprocessing, n: int, seed: int) -> torch.Tensor:
    """n rows of noise: N(0, 1) numbers (standardised units), a uniformly random category per group."""
    g = torch.Generator().manual_seed(seed)
    parts = []
    for col in prep.columns:
        if col.kind == "numeric":
            parts.append(torch.randn(n, 1, generator=g))
        else:
            pick = torch.randint(col.width, (n,), generator=g)
            parts.append(torch.nn.functional.one_hot(pick, col.width).float())
    return torch.cat(parts, 1)


def pairwise_pcc(maps: torch.Tensor) -> dict[str, float]:
    """Mean and spread of the Pearson correlation over all distinct pairs of (N, F) maps."""
    i, j = torch.triu_indices(len(maps), len(maps), offset=1)
    pcc = similarity.pearson(maps[i][:, None], maps[j][:, None])  # a row map as a 1 x F image
    return {"pcc_mean": float(pcc.mean()), "pcc_std": float(pcc.std()) if len(pcc) > 1 else 0.0}


def noise_input_check(
    model: nn.Module, prep: TabularPreprocessing, n: int, seed: int, method: str, params: dict | None = None
) -> dict[str, float]:
    x = noise_rows(prep, n, seed).to(next(model.parameters()).device)
    maps = normalised(attributions(model, x, method, params))
    mask = torch.as_tensor(prep.protected_mask, device=x.device)
    return {**pairwise_pcc(maps), "protected_share": float(protected_share(maps, mask).mean()), "n": n}


def weight_noise_check(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    prep: TabularPreprocessing,
    sigmas: Sequence[float],
    seeds: Sequence[int],
    method: str,
    params: dict | None = None,
    progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """Per sigma and seed: accuracy, agreement, map PCC to the clean model's, protected share."""
    clean_pred = predictions(model, x)
    clean = normalised(attributions(model, x, method, params, clean_pred))
    mask = torch.as_tensor(prep.protected_mask, device=x.device)
    rows = []
    pairs = [(float(s), int(d)) for s in sigmas for d in seeds]
    for k, (sigma, seed) in enumerate(pairs):
        noisy = noisy_copy(model, sigma, seed)
        pred = predictions(noisy, x)
        maps = normalised(attributions(noisy, x, method, params, clean_pred))
        rows.append(
            {
                "sigma": sigma,
                "seed": seed,
                "agreement": float((pred == clean_pred).float().mean()),
                "accuracy": float((pred == y).float().mean()),
                "pcc_to_clean": float(similarity.pearson(maps[:, None], clean[:, None]).mean()),
                "protected_share": float(protected_share(maps, mask).mean()),
            }
        )
        report(progress, k + 1, len(pairs))
    return {"method": method, "rows": rows, "curve": summarise(rows)}
