"""Fooling Success Rate (Krishna2021 eq. 6; Heo2019 §4): the share of images whose test loss t_i lies in R_f.

The per-image test losses t_i are defined by each attack (`backend.fool.losses.Attack.test_loss`):
Location -> loss (3), Top-k -> loss (4) as a mean over the original top-k pixels, Center-mass -> the L1
shift (5) divided by the image diagonal, Active -> the correlation-swap score in [-2, 2].
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from backend.errors import UnknownMethod

# Closed intervals from Heo2019 §4 / Krishna2021 §4.2. `com_point` and `target_heatmap` are not in the papers:
# their intervals are ours (for the target heatmap, by default a threshold on the thesis's PCC), stated here
# so an FSR can be reported for every attack.
RF: dict[str, tuple[float, float]] = {
    "location": (0.0, 0.2),
    "topk": (0.0, 0.3),
    "center_mass": (0.1, 1.0),
    "active": (0.5, 2.0),
    # centre of mass within 10% of the image diagonal of the chosen point
    "com_point": (0.0, 0.1),
    # the target heatmap judged as the thesis measures it (Pasliev2020 Table 3.2, Pearson correlation
    # with the target): t_i = 1 - PCC, so PCC >= 0.5 (the attack's default `criterion`, "pcc")
    "target_heatmap_pcc": (0.0, 0.5),
    # ours, stricter (`criterion` "mse"): min-max-normalised heatmap within 0.05 MSE of the target
    "target_heatmap": (0.0, 0.05),
    # tables (both tabular attacks): the protected attributes' share of the row's |attribution| at most 2%
    "protected_share": (0.0, 0.02),
}


def in_rf(test_losses: torch.Tensor | Sequence[float], attack: str) -> torch.Tensor:
    """Boolean per image: is t_i inside R_f of `attack` (both ends included)."""
    if attack not in RF:
        raise UnknownMethod(f"No FSR interval for attack {attack!r}; known: {', '.join(sorted(RF))}")
    low, high = RF[attack]
    t = torch.as_tensor(test_losses, dtype=torch.float64).flatten()
    return (t >= low) & (t <= high)


def fsr(test_losses: torch.Tensor | Sequence[float], attack: str) -> float:
    """FSR in [0, 1] (multiply by 100 for the papers' percentages); NaN for no images."""
    hits = in_rf(test_losses, attack)
    if hits.numel() == 0:
        return float("nan")
    return hits.double().mean().item()
