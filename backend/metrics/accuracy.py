"""Classification numbers before vs after fooling: top-k accuracy, agreement, per-class accuracy,
and how far the fooled model's probabilities moved (Pasliev2020 §3.5)."""

from __future__ import annotations

import torch


def topk_accuracy(logits: torch.Tensor, labels: torch.Tensor, k: int = 1) -> float:
    """Share of labelled images (label >= 0) whose label is among the top-k logits; NaN if none."""
    keep = labels >= 0
    if not keep.any():
        return float("nan")
    k = min(k, logits.shape[1])
    top = logits[keep].topk(k, dim=1).indices
    return (top == labels[keep, None]).any(1).double().mean().item()


def agreement(logits: torch.Tensor, original_logits: torch.Tensor) -> float:
    """Share of images on which both models predict the same class."""
    return (logits.argmax(1) == original_logits.argmax(1)).double().mean().item()


def per_class_accuracy(logits: torch.Tensor, labels: torch.Tensor, classes: list[int]) -> dict[int, float]:
    """Top-1 accuracy on the images of each given class (NaN when the class has no images)."""
    pred = logits.argmax(1)
    out = {}
    for c in classes:
        sel = labels == c
        out[c] = (pred[sel] == c).double().mean().item() if sel.any() else float("nan")
    return out


def probability_mse(logits: torch.Tensor, original_logits: torch.Tensor) -> float:
    """Mean over images and classes of the squared difference of softmax probabilities."""
    return (logits.softmax(1) - original_logits.softmax(1)).pow(2).mean().item()
