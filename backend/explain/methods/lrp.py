"""LRP at the input: relevance R = x * dS/dx under a composite of rules (see backend.explain.lrp)."""

from __future__ import annotations

import torch

from backend.errors import InvalidConfig
from backend.explain.call import ExplainCall
from backend.explain.lrp.composites import COMPOSITES
from backend.explain.lrp.engine import input_relevance
from backend.explain.methods.templates import channel_sum
from backend.explain.registry import MethodSpec, register_method
from backend.models.input_range import IMAGENET_RANGE, InputRange

LRP_PARAMS = {"composite": "epsilon_alpha1beta0", "epsilon": 0.01, "low": None, "high": None}
LRP_CHOICES = {"composite": tuple(COMPOSITES)}
LRP_FORM = {
    "composite": {
        "label": "Composite",
        "labels": {
            "epsilon_alpha1beta0": "epsilon / alpha1-beta0 (Heo2019)",
            "zbox_zplus": "z^beta first layer + z+ (Pasliev2020)",
            "zplus": "z+ everywhere",
            "epsilon": "epsilon everywhere",
        },
    },
    "epsilon": {"min": 0.0, "format": "%.4f"},
    "low": {"help": "z^beta's lowest input value (normalised units); empty = from the checkpoint."},
    "high": {"help": "z^beta's highest input value (normalised units); empty = from the checkpoint."},
}


def input_range(model) -> InputRange:
    """The model's input bounds: its checkpoint's (`model.input_range`, stamped by the checkpoint handle
    when it loads the model), else ImageNet's for a bare model no checkpoint describes."""
    found = getattr(model, "input_range", None)
    return found if isinstance(found, InputRange) else IMAGENET_RANGE


def with_bounds(call: ExplainCall) -> dict:
    """Params with `low`/`high` as (1, C, 1, 1) tensors: the lowest and highest input value per channel
    (given, or the model's `input_range`).

    Rows (B, F) take the epsilon and z+ composites. z^beta is refused there: in the gradient-times-input
    form its bound terms reach an input through `a * (l / a)`, which loses them where a == 0, and a
    one-hot row is mostly zeros (images have almost no exact zeros).
    """
    params = dict(call.params)
    if call.x.dim() == 2:
        if params["composite"] == "zbox_zplus":
            raise InvalidConfig(
                "LRP z^beta is for images; on table rows (one-hot zeros) use the zplus or epsilon composite"
            )
        return params
    if params["low"] is None or params["high"] is None:
        low, high = input_range(call.model).tensors(call.x)
        params["low"] = low if params["low"] is None else params["low"]
        params["high"] = high if params["high"] is None else params["high"]
    for key in ("low", "high"):
        value = torch.as_tensor(params[key], dtype=call.x.dtype, device=call.x.device)
        params[key] = value.view(1, -1, 1, 1) if value.dim() == 1 else value
    return params


def compute(call: ExplainCall):
    params = with_bounds(call)
    native, logits = input_relevance(
        call.model,
        call.x,
        lambda logits: call.score(logits, call.targets(logits)),
        params["composite"],
        params,
        call.create_graph,
    )
    return native, channel_sum(native), logits


register_method(
    MethodSpec(
        name="lrp",
        label="LRP",
        differentiable=True,
        layer_based=False,
        params=LRP_PARAMS,
        cost="fast",
        description="Layer-wise relevance propagation; composites: Heo et al.'s epsilon/alpha1-beta0 "
        "(default), Pasliev's z^beta first layer + z+, z+ everywhere, epsilon everywhere.",
        choices=LRP_CHOICES,
        form=LRP_FORM,
        inputs=("image", "tabular"),
    )
)(compute)
