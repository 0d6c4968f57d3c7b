"""The Fool form's services: options from the fooling engine's registries, masks and datasets the user
draws or uploads (kept by `backend.storage` in the shared uploads, where every worker reads them), the
loss target preview, a run-time estimate, submit.

The form only collects values; `FoolConfig.validate` and the job kind decide what is acceptable.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from backend import storage
from backend.access import Session
from backend.config import get_settings
from backend.errors import InvalidConfig
from backend.explain import METHODS, explain
from backend.fool.config import CLASSIFICATION_TERMS, FoolConfig
from backend.fool.losses import ATTACKS
from backend.fool.masks import MASKS
from backend.fool.presets import PRESETS, get_preset
from backend.services import policy
from backend.services.checkpoints import load_model, registry
from backend.services.photos import Photo


def attack_labels() -> dict[str, str]:
    return {name: attack.label for name, attack in ATTACKS.items()}


def attack_defaults(attack: str) -> dict:
    return dict(ATTACKS[attack].defaults)


def active_image_choices() -> dict[str, str]:
    """Active fooling's `images` settings with what each means to a user."""
    return {
        "labelled": "Images labelled c1 or c2",
        "unlabelled": "Unlabelled images (the shapes set's two-object images)",
        "all": "All images",
    }


def interpreters() -> list[str]:
    """Methods that can drive a fooling loss (differentiable ones)."""
    return [name for name, spec in METHODS.items() if spec.differentiable]


def method_label(name: str) -> str:
    return METHODS[name].label


def classification_terms() -> tuple[str, ...]:
    return CLASSIFICATION_TERMS


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


def input_size(card_id: str) -> int:
    """The square input side of a checkpoint (masks and targets are drawn at this size)."""
    pre = registry().card(card_id).preprocessing or {}
    return int(pre.get("size", 224))


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
    """A validated fooling config (raises `InvalidConfig` with the reason) from the form's values."""
    cfg = FoolConfig.from_dict({k: v for k, v in values.items() if v is not None or k in ("steps",)})
    return cfg.validate(registry()).to_dict()


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

    model, card = load_model(card_id)
    size = input_size(card_id)
    cfg = ATTACKS[attack].setup(dict(attack_params), size, card.num_classes)
    x, view = model_input(photo, card.preprocessing)
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
    original = explain(model, x, None, interpreter).heatmap.detach().clamp_min(0)
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


def model_view(card_id: str, photo: Photo) -> np.ndarray:
    """The photo as the checkpoint sees it (its input size), uint8 (H, W, 3): what a mask is drawn on."""
    from backend.services.inspect import model_input

    return model_input(photo, registry().card(card_id).preprocessing)[1]


def preview_photo(dataset: dict | None, size: int) -> Photo:
    """One image to preview the target on: a sample photo for the samples set, else a shapes image."""
    from backend.services.photos import sample_photos, synthetic_photos

    if dataset and dataset.get("kind") == "samples":
        photos = sample_photos()
        if photos:
            return photos[0]
    seed = int(dataset.get("seed", 0)) if dataset else 0
    return synthetic_photos(1, size=size, seed=seed)[0]


def dataset_size(spec: dict, preprocessing: dict) -> int:
    """Number of training images the spec yields (after the validation split is taken off later)."""
    from backend.data.datasets import build_dataset
    from backend.models.preprocessing import Preprocessing

    return len(build_dataset(spec, Preprocessing.from_dict(preprocessing)))


_estimates: dict[tuple, float] = {}


def seconds_per_step(
    card_id: str, interpreter: str, batch_size: int, softplus_beta: float | None = None
) -> float:
    """Measured on this machine: one differentiable explanation plus the backward pass through it."""
    model, card = load_model(card_id)
    key = (card.id, card.sha256, interpreter, int(batch_size), softplus_beta, get_settings().device)
    if key not in _estimates:
        size = input_size(card_id)
        x = torch.randn(int(batch_size), 3, size, size, device=next(model.parameters()).device)
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
