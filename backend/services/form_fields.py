"""Form fields for the pages: what a checkpoint offers to `layer` / `class` fields, and explanation
methods' parameters (their registry entries declare them) read back from a form's raw values."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from backend import forms
from backend.explain import METHODS
from backend.forms import FieldSpec, FormContext
from backend.services.checkpoints import checkpoint


def form_context(card_id: str) -> FormContext:
    """What a form's checkpoint-dependent fields choose from: class names, layers, input size."""
    from backend.explain.layers import layer_names

    ckpt = checkpoint(card_id)
    card, model = ckpt.card, ckpt.model  # only the module names are read: no lock needed
    classes = [card.classes[i] if i < len(card.classes) else str(i) for i in range(card.num_classes)]
    return FormContext(
        classes=classes,
        layers=layer_names(model),
        default_layer=getattr(model, "default_target_layer", None),
        size=ckpt.input_size if ckpt.modality == "image" else 0,
        architecture=card.architecture,
        name=card.name,
    )


def method_fields(method: str, *, layer: bool = True) -> list[FieldSpec]:
    """The method's parameters as fields; with `layer`, a layer-based method's target layer first."""
    return METHODS[method].fields(layer=layer)


def method_params(method: str, raw: dict[str, Any] | None) -> dict[str, Any]:
    """A form's raw values for `method_fields` as explain() keyword arguments (`InvalidConfig` names a
    bad one); a default target layer is left out, so the model's own is used."""
    fields = [f for f in method_fields(method) if raw is not None and f.name in raw]
    params = forms.coerce_all(fields, raw or {})
    if params.get("layer") is None:
        params.pop("layer", None)
    return params


def run_values(
    card_id: str,
    fields: Sequence[FieldSpec],
    common: dict[str, Any],
    method_values: dict[str, Any],
    seed: int,
) -> dict[str, Any]:
    """A detect / decoys form's shared part as job settings: its `fields` (method, images, ...) checked,
    the method's `params` (at the model's own target layer), and `images` of the checkpoint's own kind
    (`backend.detect.inputs.own_dataset`: shapes for a shapes model, the sample photos for an ImageNet
    one) drawn with `seed`."""
    from backend.detect.inputs import own_dataset

    values = forms.coerce_all(fields, common)
    params = method_params(values["method"], method_values)
    params.pop("layer", None)
    images = int(values["images"])
    dataset = own_dataset(card_id, None, images, seed)
    return values | {"params": params, "images": images, "dataset": dataset}


def batch_text(values: dict) -> str:
    """A form's global batch and what each data-parallel device computes, e.g. "Batch 32 in all: 8 per
    device on 4 devices" (the fool, train and defend forms; the presets keep the paper's global batch)."""
    from backend.devices import batch_text as text

    return text(values.get("batch_size"), values.get("devices"))
