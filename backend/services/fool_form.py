"""The Fool form's services: options from the fooling engine's registries, masks and datasets the user
draws or uploads (kept by `backend.storage` in the shared uploads, where every worker reads them), the
loss target preview, a run-time estimate, submit.

The form only collects values; `FoolConfig.validate` and the job kind decide what is acceptable.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from backend import forms, storage
from backend.access import Session
from backend.config import get_settings
from backend.errors import InvalidConfig
from backend.explain import METHODS, explain
from backend.fool import fields as fool_fields
from backend.fool.config import FoolConfig
from backend.fool.losses import FOOLING_ATTACKS
from backend.fool.masks import MASKS
from backend.fool.presets import PRESETS, defaults_for, get_preset
from backend.forms import FieldSpec
from backend.services import policy
from backend.services.checkpoints import checkpoint, input_size, registry
from backend.services.photos import Photo


def attack_labels() -> dict[str, str]:
    return {name: attack.label for name, attack in FOOLING_ATTACKS.items()}


def method_description(method: str) -> str:
    """The registry's one-sentence note on an explanation method (beside the interpreter choice)."""
    return METHODS[method].description


def attack_description(attack: str) -> str:
    """One sentence on what the attack does (its registry entry says)."""
    return FOOLING_ATTACKS[attack].description


def config_fields() -> list[FieldSpec]:
    """Every FoolConfig setting as a form field (the page draws common ones first, then "advanced")."""
    return fool_fields.config_fields()


def attack_fields(attack: str) -> list[FieldSpec]:
    """The attack's own settings, as it declares them in the registry."""
    return list(FOOLING_ATTACKS[attack].form)


def interpreter_fields(interpreter: str) -> list[FieldSpec]:
    """The interpreter's parameters (its target layer is the config's `layer` field, not one of these)."""
    return METHODS[interpreter].fields(layer=False)


@dataclass
class FormState:
    """A whole fooling config as the form holds it: the config fields' values, the dataset spec, and
    the attack's and the interpreter's own fields' values."""

    config: dict[str, Any]
    dataset: dict[str, Any] | None
    attack: dict[str, Any]
    interpreter: dict[str, Any]


def form_state(config: dict[str, Any]) -> FormState:
    """Split a (partial) fooling config into what each part of the form shows; what it leaves out
    takes FoolConfig's defaults, so a preset fills every field."""
    full = _config_defaults() | dict(config)
    attack = FOOLING_ATTACKS.get(full["attack"])
    if attack is None:
        raise InvalidConfig(f"Unknown attack {full['attack']!r}; choose one of {', '.join(FOOLING_ATTACKS)}.")
    dataset = full.get("dataset")
    params = METHODS[full["interpreter"]].resolve_params(full.get("interpreter_params") or {})
    return FormState(
        config={f.name: full.get(f.name, f.default) for f in config_fields()},
        dataset=dataset,
        attack=attack.form_values(full.get("attack_params") or {}, dataset),
        interpreter=params,
    )


def _config_defaults() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(FoolConfig):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out


def initial_state(card_id: str) -> FormState:
    """The form for a checkpoint with no preset: the defaults of the paper that fooled its kind of
    model (`presets.defaults_for`): Heo2019's for ImageNet networks, never the shapes learning rate."""
    return form_state(defaults_for(registry().card(card_id).architecture))


def preset_state(name: str, dataset: dict[str, Any] | None, card_id: str | None = None) -> FormState:
    """The form a preset fills: every field (the preset's value, else FoolConfig's default); a preset
    without images keeps the form's `dataset`. With `card_id`, class names in the preset (Heo2019's
    fire engine / African elephant) become that checkpoint's indices, because the form's class fields
    hold indices; a checkpoint without them refuses the preset (InvalidConfig, validation's message)
    instead of the field falling back to class 0."""
    cfg = get_preset(name)
    cfg.setdefault("dataset", dataset)
    if card_id is not None:
        attack = FOOLING_ATTACKS[cfg["attack"]]
        classes = registry().card(card_id).classes
        cfg["attack_params"] = attack.resolve_classes(dict(cfg.get("attack_params") or {}), classes)
    return form_state(cfg)


def assemble_config(
    model: str,
    dataset: dict[str, Any] | None,
    config: dict[str, Any],
    attack: dict[str, Any],
    interpreter: dict[str, Any],
) -> dict[str, Any]:
    """The validated fooling config (`InvalidConfig` says what to change) from the form's parts: each
    value checked by its field, the attack's fields turned into its settings and dataset."""
    if dataset is None:
        raise InvalidConfig("Choose the training images first (dataset).")
    values = forms.coerce_all(config_fields(), config)
    chosen = FOOLING_ATTACKS[values["attack"]]
    attack_params, dataset = chosen.form_params(forms.coerce_all(chosen.form, attack), dataset)
    given = {k: v for k, v in interpreter.items() if k in METHODS[values["interpreter"]].params}
    interpreter_params = forms.coerce_all(interpreter_fields(values["interpreter"]), given)
    return build_config(
        values
        | {
            "model": model,
            "dataset": dataset,
            "attack_params": attack_params,
            "interpreter_params": interpreter_params,
        }
    )


def method_label(name: str) -> str:
    return METHODS[name].label


def mask_presets() -> list[str]:
    return list(MASKS)


def presets_for(architecture: str | None) -> list[str]:
    """Preset names, those tuned for `architecture` first."""
    names = list(PRESETS)
    return sorted(names, key=lambda n: (PRESETS[n].get("architecture") != architecture, n))


def preset(name: str) -> dict:
    """The preset's partial config (a copy)."""
    return get_preset(name)


def preset_source(name: str) -> str:
    return str(PRESETS[name].get("source", ""))


def preset_rows(name: str) -> list[dict[str, str]]:
    """What a preset sets, one row per setting (nested settings as JSON), for the form to show."""
    return [
        {"setting": k, "value": v if isinstance(v, str) else json.dumps(v)}
        for k, v in get_preset(name).items()
    ]


def defaults_source(architecture: str | None) -> str:
    """Whose defaults `initial_state` uses for an architecture, in words."""
    if architecture == "shapes_cnn":
        return "the shapes presets' base, tuned on the shapes CNN"
    if architecture == "cifar_vgg16":
        return "Pasliev2020's CIFAR settings"
    return "Heo2019 Table 1's ImageNet settings"


def save_array(array: np.ndarray, prefix: str) -> str:
    """Store a mask / target as .npy in the shared uploads (content-addressed) and return its path."""
    return str(storage.store_array(array, prefix))


def rectangle_mask(size: int, rows: tuple[float, float], cols: tuple[float, float]) -> np.ndarray:
    """1 inside the rectangle (fractions of the image, [start, end)), 0 elsewhere."""
    m = np.zeros((size, size), dtype=np.float32)
    r0, r1 = (int(round(v * size)) for v in rows)
    c0, c1 = (int(round(v * size)) for v in cols)
    if r1 <= r0 or c1 <= c0:
        raise InvalidConfig("The drawn rectangle is empty: make its end larger than its start.")
    m[r0:r1, c0:c1] = 1.0
    return m


def image_to_map(data: bytes, size: int) -> np.ndarray:
    """An uploaded mask / target image (any format load_image accepts) as a (size, size) map in [0, 1]."""
    from PIL import Image

    from backend.data.images import load_image

    img = load_image(data).convert("L").resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(img, dtype=np.float32) / 255.0


def save_dataset_zip(data: bytes, filename: str, *, session: Session | None = None) -> dict:
    """Store an uploaded zip in the shared uploads and extract it safely; returns a folder dataset spec
    (`UnsafeArchive`, naming `filename`). The session's upload quota and the disk budget come first."""
    from backend.errors import UnsafeArchive

    policy.check_upload(session, len(data), filename)
    try:
        return {"kind": "folder", "path": str(storage.store_dataset_zip(data))}
    except UnsafeArchive as err:
        raise UnsafeArchive(f"'{filename}': {err}") from err


def folder_dataset(path: str, *, session: Session | None = None) -> dict:
    """A "folder on the server" dataset spec, if the session may use that folder (`NotAllowed`)."""
    return {"kind": "folder", "path": str(policy.check_folder(session, path))}


def build_config(values: dict) -> dict:
    """A validated fooling config (raises `InvalidConfig` with the reason) from a config dict."""
    return FoolConfig.from_dict(values).validate(registry()).to_dict()


def submit(config: dict, *, session: Session | None = None) -> str:
    """Queue the fooling job for `session`; returns its id (`QueueUnavailable` when the queue is down,
    `QuotaExceeded` past a student's quota)."""
    from backend.services import job_follow

    return job_follow.submit("fool", config, session=session)


@dataclass
class TargetPreview:
    image: np.ndarray  # (H, W, 3) uint8: the model's view of the photo
    target: np.ndarray  # (H, W): what the loss pushes the explanation towards (or away from)
    caption: str


def preview_target(
    card_id: str, attack: str, attack_params: dict, interpreter: str, photo: Photo
) -> TargetPreview:
    """What the loss aims at, on one image: the mask, the target map, or the original map it moves off."""
    from backend.metrics.similarity import center_of_mass, topk_mask
    from backend.services.inspect import model_input

    ckpt = checkpoint(card_id)
    size = ckpt.input_size
    cfg = FOOLING_ATTACKS[attack].setup(dict(attack_params), size, ckpt.num_classes)
    x, view = model_input(photo, ckpt.image_preprocessing)
    if "mask_tensor" in cfg:
        return TargetPreview(
            view, cfg["mask_tensor"].numpy(), "Location: the explanation is pushed onto this mask"
        )
    if "target_tensor" in cfg:
        return TargetPreview(
            view, cfg["target_tensor"].numpy(), "Target heatmap the explanation should match"
        )
    if "point_px" in cfg:
        target = np.zeros((size, size), dtype=np.float32)
        r, c = (int(v) for v in cfg["point_px"].round().tolist())
        target[max(r - 2, 0) : r + 3, max(c - 2, 0) : c + 3] = 1.0
        return TargetPreview(view, target, f"The centre of mass is pulled to row {r}, column {c}")
    original = ckpt.explain(x.to(ckpt.device), None, interpreter).heatmap.detach().cpu().clamp_min(0)
    if attack == "topk":
        mask = topk_mask(original, cfg["k"])[0].float().numpy()
        return TargetPreview(
            view, mask, f"Top-{cfg['k']:.0%} pixels of the original {interpreter}: to be emptied"
        )
    com = center_of_mass(original)[0].tolist()
    return TargetPreview(
        view,
        original[0].numpy(),
        f"Original {interpreter} map, centre of mass at ({com[0]:.0f}, {com[1]:.0f}): to be moved away",
    )


def preview_form_target(
    card_id: str, dataset: dict | None, attack: str, attack_values: dict[str, Any], interpreter: str
) -> TargetPreview | None:
    """`preview_target` for the form's raw values of the attack's fields, on one training image; None
    while a map the attack needs (a mask, a target) is not chosen yet."""
    chosen = FOOLING_ATTACKS[attack]
    if any(f.kind == "mask" and attack_values.get(f.name) is None for f in chosen.form):
        return None
    params, _ = chosen.form_params(forms.coerce_all(chosen.form, attack_values), dataset)
    return preview_target(card_id, attack, params, interpreter, preview_photo(dataset, input_size(card_id)))


def estimate_for(config: dict) -> float:
    """`estimate_seconds` of a validated config on its own training images."""
    card = registry().card(config["model"])
    return estimate_seconds(config, dataset_size(config["dataset"], card.id))


def model_view(card_id: str, photo: Photo) -> np.ndarray:
    """The photo as the checkpoint sees it (its input size), uint8 (H, W, 3): what a mask is drawn on."""
    from backend.services.inspect import model_input

    return model_input(photo, checkpoint(card_id).image_preprocessing)[1]


def preview_photo(dataset: dict | None, size: int) -> Photo:
    """One image to preview the target on: a sample photo for the samples set, else a shapes image."""
    from backend.services.photos import sample_photos, synthetic_photos

    if dataset and dataset.get("kind") == "samples":
        photos = sample_photos()
        if photos:
            return photos[0]
    seed = int(dataset.get("seed", 0)) if dataset else 0
    return synthetic_photos(1, size=size, seed=seed)[0]


def dataset_size(spec: dict, card_id: str) -> int:
    """Number of training images the spec yields for a checkpoint (before the validation split)."""
    from backend.data.datasets import build_dataset

    return len(build_dataset(spec, checkpoint(card_id).image_preprocessing))


_estimates: dict[tuple, float] = {}


def seconds_per_step(
    card_id: str, interpreter: str, batch_size: int, softplus_beta: float | None = None
) -> float:
    """Measured on this machine: one differentiable explanation plus the backward pass through it."""
    ckpt = checkpoint(card_id)
    key = (ckpt.id, ckpt.sha256, interpreter, int(batch_size), softplus_beta, get_settings().device)
    if key not in _estimates:
        x = torch.randn(int(batch_size), *ckpt.input_shape, device=ckpt.device)
        with ckpt.using() as model:  # the backward leaves gradients on the shared model: clear them inside
            start = time.perf_counter()
            exp = explain(model, x, None, interpreter, create_graph=True, softplus_beta=softplus_beta)
            (exp.heatmap.pow(2).mean() + exp.logits.logsumexp(1).mean()).backward()
            model.zero_grad(set_to_none=True)
            _estimates[key] = time.perf_counter() - start
    return _estimates[key]


def estimate_seconds(config: dict, n_train: int) -> float:
    """Run time of the whole job: measured step time x steps, plus one evaluation pass (~1/3 step each)."""
    cfg = FoolConfig.from_dict(config)
    step = seconds_per_step(cfg.model, cfg.interpreter, cfg.batch_size, cfg.softplus_beta)
    steps = cfg.total_steps(n_train)
    return step * steps + step / 3 * max(1, round(n_train * cfg.val_fraction / cfg.batch_size))
