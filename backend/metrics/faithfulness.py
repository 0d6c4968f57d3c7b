"""Faithfulness of attributions: ROAD (remove and debias, no retraining) and ROAR (remove and retrain).

Both remove the pixels an attribution ranks first and look at accuracy. ROAR (Hooker et al. 2019;
Zeng2021 Table 1) replaces the top pixels of every training and test image by the per-channel mean and
retrains a fresh model, so a drop means the removed pixels carried the class, not that the model meets
an unfamiliar input. ROAD (Rong et al. 2022) keeps the model and fills the removed pixels by noisy
linear imputation (each removed pixel the weighted mean of its 8 neighbours, 1/6 for edges and 1/12 for
corners, solved exactly as one sparse linear system per image, plus Gaussian noise), which leaks far
less of the removal mask's shape than a constant fill, and runs in seconds. Both report accuracy at
each removed fraction for most-relevant-first (MoRF) and, for ROAD, least-relevant-first (LeRF)
removal; a random ranking is the reference row.

Everything here works on [0, 1] pixels (B, C, H, W) and per-pixel scores (B, H, W); `normalize` maps
pixels to the model input. Scores rank by value: pass |map| (or a summary) for signed maps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from scipy.sparse import coo_matrix
from scipy.sparse.linalg import spsolve

from backend.progress import ProgressFn, report

FRACTIONS = (0.2, 0.4, 0.6, 0.8)
_NEIGHBOURS = [(dy, dx, 1 / 6 if dy == 0 or dx == 0 else 1 / 12) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
_NEIGHBOURS = [n for n in _NEIGHBOURS if n[:2] != (0, 0)]


def random_scores(shape: Sequence[int], seed: int) -> torch.Tensor:
    """Uniform random scores (B, H, W): the reference ranking."""
    return torch.rand(tuple(shape), generator=torch.Generator().manual_seed(seed))


def removal_mask(scores: torch.Tensor, fraction: float, most_relevant_first: bool = True) -> torch.Tensor:
    """(B, H, W) bool: the `fraction` of each image's pixels that rank first (highest or lowest)."""
    flat = scores.flatten(1).float()
    k = int(round(fraction * flat.shape[1]))
    mask = torch.zeros_like(flat, dtype=torch.bool)
    if k > 0:
        idx = flat.topk(k, dim=1, largest=most_relevant_first).indices
        mask.scatter_(1, idx, True)
    return mask.view_as(scores)


def _impute_one(image: np.ndarray, removed: np.ndarray) -> np.ndarray:
    """Solve for the removed pixels of one (C, H, W) image: each is the weighted mean of its neighbours."""
    c, h, w = image.shape
    index = -np.ones((h, w), dtype=np.int64)
    ys, xs = np.nonzero(removed)
    n = len(ys)
    if n == 0:
        return image
    index[ys, xs] = np.arange(n)
    rows, cols, vals = [], [], []
    diag = np.zeros(n)
    rhs = np.zeros((n, c))
    for dy, dx, weight in _NEIGHBOURS:
        ny, nx = ys + dy, xs + dx
        inside = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
        i, ny, nx = np.nonzero(inside)[0], ny[inside], nx[inside]
        diag[i] += weight
        j = index[ny, nx]
        unknown = j >= 0
        rows.append(i[unknown])
        cols.append(j[unknown])
        vals.append(np.full(int(unknown.sum()), -weight))
        np.add.at(rhs, i[~unknown], weight * image[:, ny[~unknown], nx[~unknown]].T)
    rows.append(np.arange(n))
    cols.append(np.arange(n))
    vals.append(diag)
    a = coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)).tocsc()
    solved = np.asarray(spsolve(a, rhs)).reshape(n, c)
    out = image.copy()
    out[:, ys, xs] = solved.T
    return out


def noisy_linear_impute(x01: torch.Tensor, removed: torch.Tensor, noise: float = 0.01, seed: int = 0):
    """ROAD's fill: the removed pixels of each image by linear imputation plus N(0, noise) on them."""
    images = x01.detach().cpu().double().numpy()
    masks = removed.cpu().numpy()
    filled = np.stack([_impute_one(img, m) for img, m in zip(images, masks)])
    out = torch.from_numpy(filled).to(x01)
    if noise > 0:
        gen = torch.Generator().manual_seed(seed)
        jitter = torch.randn(out.shape, generator=gen).to(out) * noise
        out = out + jitter * removed[:, None].to(out)
    return out.clamp(0, 1)


def _accuracy(model, x: torch.Tensor, y: torch.Tensor, batch: int) -> float:
    with torch.no_grad():
        pred = torch.cat([model(x[i : i + batch]).argmax(1) for i in range(0, len(x), batch)])
    return float((pred == y).float().mean())


def road(
    model: torch.nn.Module,
    x01: torch.Tensor,
    y: torch.Tensor,
    normalize: Callable[[torch.Tensor], torch.Tensor],
    scores: dict[str, torch.Tensor],
    fractions: Sequence[float] = FRACTIONS,
    orders: Sequence[str] = ("morf", "lerf"),
    noise: float = 0.01,
    seed: int = 0,
    batch_size: int = 64,
) -> dict:
    """Accuracy of `model` after removing each fraction by each ranking, with no retraining.

    Returns `{"fractions", "clean", "morf": {name: [acc per fraction]}, "lerf": {...}}`.
    """
    out: dict = {"fractions": list(fractions), "clean": _accuracy(model, normalize(x01), y, batch_size)}
    for order in orders:
        out[order] = {}
        for name, s in scores.items():
            accs = []
            for f in fractions:
                mask = removal_mask(s, f, most_relevant_first=order == "morf")
                filled = noisy_linear_impute(x01, mask, noise, seed)
                accs.append(_accuracy(model, normalize(filled), y, batch_size))
            out[order][name] = accs
    return out


def mean_fill(x01: torch.Tensor, removed: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
    """ROAR's fill: removed pixels set to the per-channel mean (C,)."""
    return torch.where(removed[:, None], mean.view(1, -1, 1, 1).to(x01), x01)


def roar(
    retrain: Callable[[torch.Tensor, torch.Tensor], torch.nn.Module],
    train: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor],
    normalize: Callable[[torch.Tensor], torch.Tensor],
    train_scores: dict[str, torch.Tensor],
    test_scores: dict[str, torch.Tensor],
    fractions: Sequence[float] = FRACTIONS,
    batch_size: int = 64,
    progress: ProgressFn | None = None,
) -> dict:
    """Accuracy of a model retrained (`retrain(x_normalised, y) -> model`) on images whose top pixels by
    each ranking are removed (mean fill), tested on test images with the same removal.

    Returns `{"fractions", "clean", "morf": {name: [acc per fraction]}}`; `clean` is a retrain on the
    untouched images (the 0% point).
    """
    (x_tr, y_tr), (x_te, y_te) = train, test
    mean = x_tr.mean((0, 2, 3))
    model = retrain(normalize(x_tr), y_tr)
    out: dict = {
        "fractions": list(fractions),
        "clean": _accuracy(model.eval(), normalize(x_te), y_te, batch_size),
    }
    out["morf"] = {}
    done, total = 0, len(train_scores) * len(fractions)
    for name in train_scores:
        accs = []
        for f in fractions:
            tr = mean_fill(x_tr, removal_mask(train_scores[name], f), mean)
            te = mean_fill(x_te, removal_mask(test_scores[name], f), mean)
            model = retrain(normalize(tr), y_tr)
            accs.append(_accuracy(model.eval(), normalize(te), y_te, batch_size))
            done += 1
            report(progress, done, total, f"ROAR {name} {int(100 * f)}%: {100 * accs[-1]:.1f}%")
        out["morf"][name] = accs
    return out
