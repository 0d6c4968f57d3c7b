"""Weight-noise test (Pasliev2020 §4.2, Fig. 4.4): perturb the weights, watch accuracy and the heatmaps.

Noise N(0, sigma) is added to (or, multiplicatively, scaled into) all or selected parameters, over a
sweep of sigma and several seeds. Per sigma: accuracy (or agreement with the un-noised predictions),
the similarity of the heatmaps to the un-noised model's, and, given reference maps (the baseline's),
the similarity to those: if noise undid a manipulation, a suspect's maps would move toward them.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn

from backend.detect.heatmaps import predictions, scaled_heatmaps
from backend.errors import InvalidConfig
from backend.metrics import similarity
from backend.progress import ProgressFn, report

MODES = ("additive", "multiplicative")


def noisy_copy(
    model: nn.Module, sigma: float, seed: int, mode: str = "additive", select: Sequence[str] | None = None
) -> nn.Module:
    """A deep copy of `model` with seeded Gaussian noise on the parameters whose names start with `select`.

    additive: w + N(0, sigma); multiplicative: w * (1 + N(0, sigma)). The original is untouched.
    """
    if mode not in MODES:
        raise InvalidConfig(f"Weight-noise mode must be one of {MODES}, not {mode!r}.")
    if sigma < 0:
        raise InvalidConfig(f"Noise sigma must be >= 0 (got {sigma}).")
    noisy = copy.deepcopy(model)
    names = [name for name, _ in noisy.named_parameters()]
    chosen = [n for n in names if select is None or any(n.startswith(p) for p in select)]
    if not chosen:
        raise InvalidConfig(
            f"No parameter name starts with {list(select or [])}; names start with {names[:6]}."
        )
    g = torch.Generator().manual_seed(seed)
    params = dict(noisy.named_parameters())
    with torch.no_grad():
        for name in chosen:
            p = params[name]
            noise = (torch.randn(p.shape, generator=g) * sigma).to(p.device, p.dtype)
            p.add_(noise if mode == "additive" else p * noise)
    return noisy


def weight_noise_sweep(
    model: nn.Module,
    x: torch.Tensor,
    labels: torch.Tensor | None,
    sigmas: Sequence[float],
    seeds: Sequence[int],
    method: str = "gradient",
    mode: str = "additive",
    select: Sequence[str] | None = None,
    reference_maps: torch.Tensor | None = None,
    progress: ProgressFn | None = None,
    **params,
) -> dict:
    """Per sigma (mean and spread over seeds): accuracy, agreement, heatmap PCC to clean / to reference."""
    if not sigmas or not seeds:
        raise InvalidConfig("The weight-noise sweep needs at least one sigma and one seed.")
    clean_pred = predictions(model, x)
    clean_maps = scaled_heatmaps(model, x, clean_pred, method, **params)
    has_labels = labels is not None and bool((labels >= 0).all())
    rows = []
    total = len(sigmas) * len(seeds)
    for k, (sigma, seed) in enumerate((s, d) for s in sigmas for d in seeds):
        noisy = noisy_copy(model, float(sigma), int(seed), mode, select)
        pred = predictions(noisy, x)
        maps = scaled_heatmaps(noisy, x, clean_pred, method, **params)
        row = {
            "sigma": float(sigma),
            "seed": int(seed),
            "agreement": float((pred == clean_pred).float().mean()),
            "accuracy": float((pred == labels).float().mean()) if has_labels else None,
            "pcc_to_clean": float(similarity.pearson(maps, clean_maps).mean()),
        }
        if reference_maps is not None:
            row["pcc_to_reference"] = float(similarity.pearson(maps, reference_maps).mean())
        rows.append(row)
        report(progress, k + 1, total, f"sigma {float(sigma):g}, seed {int(seed)}")
    return {"method": method, "mode": mode, "rows": rows, "curve": summarise(rows)}


def summarise(rows: list[dict]) -> dict[str, list]:
    """Columns per sigma: mean and (max - min) spread over seeds for every measured quantity."""
    sigmas = sorted({r["sigma"] for r in rows})
    keys = [k for k in rows[0] if k not in ("sigma", "seed") and rows[0][k] is not None]
    curve: dict[str, list] = {"sigma": sigmas}
    for key in keys:
        values = [[r[key] for r in rows if r["sigma"] == s] for s in sigmas]
        curve[key] = [sum(v) / len(v) for v in values]
        curve[key + "_spread"] = [max(v) - min(v) for v in values]
    return curve
