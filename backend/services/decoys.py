"""The Decoys page's services: its form's fields (declared in `backend.decoys.options`), build a decoys
job, and lay out its numbers and maps."""

from __future__ import annotations

from typing import Any

import numpy as np

from backend import forms
from backend.decoys import options
from backend.forms import FieldSpec

ATTACK_FIELDS = options.ATTACK_FIELDS


def common_fields() -> tuple[FieldSpec, ...]:
    """Method, generator, images and input attacks."""
    return options.common_fields()


def decoy_fields() -> list[FieldSpec]:
    """The decoy generator's settings (`DecoySettings`)."""
    return options.decoy_fields()


def assemble_config(
    checkpoint: str,
    baseline: str | None,
    common: dict[str, Any],
    method_values: dict[str, Any],
    decoy_values: dict[str, Any],
    attack_values: dict[str, Any],
) -> dict:
    """The validated decoys config from the form's raw values (`InvalidConfig` names a bad field)."""
    from backend.services.form_fields import run_values

    decoys = forms.coerce_all(decoy_fields(), decoy_values)
    if isinstance(decoys.get("layer"), str) and decoys["layer"].isdigit():
        decoys["layer"] = int(decoys["layer"])  # an index into the model's layers
    return build_config(
        checkpoint=checkpoint,
        baseline=baseline if baseline != checkpoint else None,
        decoys=decoys,
        attack=forms.coerce_all(ATTACK_FIELDS, attack_values),
        **run_values(checkpoint, common_fields(), common, method_values, seed=321),
    )


def build_config(**values) -> dict:
    """The decoys job's config from the form, validated by the job kind (`InvalidConfig` says why)."""
    from backend.jobs.kinds import get_kind

    return get_kind("decoys").validate({k: v for k, v in values.items() if v is not None})


def image_rows(result: dict) -> list[dict]:
    """One row per image: constraint check, fidelity raw vs enhanced, closeness to the baseline."""
    return [
        {"image": i, **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()}}
        for i, r in enumerate(result.get("rows", []))
    ]


def summary_rows(summary: dict) -> list[dict]:
    """The summary as (measure, value) rows, values as text: one table column holds numbers, yes/no
    and counts, which Arrow cannot put in one typed column."""

    def text(v) -> str:
        if isinstance(v, bool):
            return "yes" if v else "no"
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    return [{"measure": k, "value": text(v)} for k, v in summary.items()]


def panels(maps: dict[str, np.ndarray], index: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(title, image HxWx3 uint8, map HxW) for one image: raw, decoy-enhanced, the baseline's raw."""
    img = maps.get(f"{index}/image")
    if img is None:
        return []
    rgb = (np.clip(img.transpose(1, 2, 0), 0, 1) * 255).astype(np.uint8)
    titles = {
        "raw": "raw saliency",
        "enhanced": "decoy-enhanced (Z)",
        "baseline_raw": "baseline's raw saliency",
    }
    out = [(title, rgb, maps[f"{index}/{key}"]) for key, title in titles.items() if f"{index}/{key}" in maps]
    for key in sorted(
        k for k in maps if k.startswith(f"{index}/") and k.endswith("/enhanced") and k.count("/") == 2
    ):
        attack = key.split("/")[1]
        adv = (np.clip(maps[f"{index}/{attack}/image"].transpose(1, 2, 0), 0, 1) * 255).astype(np.uint8)
        out.append((f"{attack}: raw", adv, maps[f"{index}/{attack}/raw"]))
        out.append((f"{attack}: enhanced", adv, maps[key]))
    return out
