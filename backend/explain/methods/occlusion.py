"""Occlusion: the drop of the target logit when a patch is filled, averaged over the patches covering a pixel.

Patch positions follow captum's Occlusion (starts 0, s, 2s, ... up to the last one that still overlaps,
clipped at the border); all occluded copies of the batch run `batch_size` images at a time.

On tabular rows (B, F) it is feature ablation (captum's FeatureAblation): each group of columns
(`groups`, default every column alone; a one-hot attribute is one group) is set to `fill` (a number or
one value per column) at once, and every column of the group gets the drop of the target logit.
"""

from __future__ import annotations

import math

import torch

from backend.errors import InvalidConfig
from backend.explain.call import ExplainCall
from backend.explain.groups import check_groups
from backend.explain.registry import MethodSpec, register_method


def _starts(size: int, patch: int, stride: int) -> list[int]:
    return [k * stride for k in range(math.ceil(max(size - patch, 0) / stride) + 1)]


def window_masks(height: int, width: int, patch: int, stride: int, device) -> torch.Tensor:
    """(P, H, W) float masks, 1 inside each patch position."""
    masks = []
    for top in _starts(height, patch, stride):
        for left in _starts(width, patch, stride):
            m = torch.zeros(height, width, device=device)
            m[top : top + patch, left : left + patch] = 1
            masks.append(m)
    return torch.stack(masks)


@torch.no_grad()
def compute(call: ExplainCall):
    if call.x.dim() == 2:
        return _ablate_groups(call)
    if call.params["groups"] is not None:
        raise InvalidConfig("occlusion groups are feature groups of tabular rows; images take patch/stride")
    patch, stride = int(call.params["patch"]), int(call.params["stride"])
    if patch < 1 or not 1 <= stride <= patch:
        raise InvalidConfig(f"occlusion needs patch >= 1 and 1 <= stride <= patch (got {patch}, {stride})")
    x = call.x.detach()
    b, _, h, w = x.shape
    logits = call.model(x)
    target = call.targets(logits)
    base = logits.gather(1, target[:, None])[:, 0]
    masks = window_masks(h, w, patch, stride, x.device).to(x.dtype)
    per_chunk = max(1, int(call.params["batch_size"]) // b)
    drops = []
    for start in range(0, masks.shape[0], per_chunk):
        m = masks[start : start + per_chunk, None, None]  # (p, 1, 1, H, W)
        occluded = x * (1 - m) + float(call.params["fill"]) * m  # (p, B, C, H, W)
        out = call.model(occluded.reshape(-1, *x.shape[1:]))
        scores = out.gather(1, target.repeat(m.shape[0])[:, None]).view(m.shape[0], b)
        drops.append(base[None] - scores)
        call.report(start + m.shape[0], masks.shape[0])
    drop = torch.cat(drops)  # (P, B)
    total = torch.einsum("pb,phw->bhw", drop, masks)
    heat = total / masks.sum(0).clamp_min(1)
    return heat[:, None], heat, logits


def _ablate_groups(call: ExplainCall):
    """Rows: each group filled in turn; the (B, F) map holds each group's drop on its columns."""
    x = call.x.detach()
    b, f = x.shape
    groups = check_groups(call.params["groups"], f)
    fill = torch.as_tensor(call.params["fill"], dtype=x.dtype, device=x.device)
    if fill.dim() > 1 or (fill.dim() == 1 and fill.numel() != f):
        raise InvalidConfig(f"occlusion fill must be a number or {f} values (one per column)")
    logits = call.model(x)
    target = call.targets(logits)
    base = logits.gather(1, target[:, None])[:, 0]
    masks = torch.zeros(len(groups), f, dtype=x.dtype, device=x.device)
    for g, cols in enumerate(groups):
        masks[g, cols] = 1
    per_chunk = max(1, int(call.params["batch_size"]) // b)
    drops = []
    for start in range(0, len(groups), per_chunk):
        m = masks[start : start + per_chunk, None]  # (p, 1, F)
        out = call.model((x * (1 - m) + fill * m).reshape(-1, f))
        scores = out.gather(1, target.repeat(m.shape[0])[:, None]).view(m.shape[0], b)
        drops.append(base[None] - scores)
        call.report(start + m.shape[0], len(groups))
    heat = torch.einsum("gb,gf->bf", torch.cat(drops), masks)
    return heat, heat, logits


register_method(
    MethodSpec(
        name="occlusion",
        label="Occlusion",
        differentiable=False,
        layer_based=False,
        params={"patch": 16, "stride": 8, "fill": 0.0, "batch_size": 64, "groups": None},
        cost="heavy",
        description="How much the target logit drops when each patch is covered (fill in normalised units); "
        "on rows, when each feature (a one-hot group at once) is set to fill.",
        inputs=("image", "tabular"),
        form={
            "patch": {"label": "Patch (pixels)", "min": 1},
            "stride": {"label": "Stride (pixels)", "min": 1},
            "fill": {"help": "The value a covered patch takes, in normalised units (0 = the mean)."},
            "batch_size": {"label": "Batch size", "min": 1, "advanced": True},
            "groups": {
                "kind": "json",
                "help": "Table rows only: column-index lists ablated together (empty = each column).",
                "advanced": True,
            },
        },
    )
)(compute)
