"""The fooling penalties L_F (Krishna2021 eqs. 3-5, Heo2019's Active fooling, Pasliev2020 §3.3-3.4)
and L_C.

One class per attack in the registry `FOOLING_ATTACKS`. An attack says which classes it needs explained
(`targets`), what it needs from the frozen original model (`reference`), its training penalty per
image (`loss`) and its test loss t_i for the FSR (`test_loss`, intervals in `backend.metrics.fsr.RF`).
All heatmaps reaching an attack are already normalised (`normalize_heatmap`), as each paper does:
LRP_T and Grad-CAM clipped at 0 and min-max scaled to [0, 1].
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from backend.errors import InvalidConfig
from backend.explain.normalize import method_normalization
from backend.fool.masks import MASKS, load_mask_file, resolve_mask
from backend.forms import FieldSpec
from backend.metrics.similarity import center_of_mass, pearson, topk_mask

# Named normalisation steps of backend.explain.normalize usable before a loss; by default each method's
# one map convention (`backend.explain.normalize.METHOD_MAPS`): Heo et al.'s clip + max-scale for LRP_T /
# Grad-CAM / LRP, the thesis's sum over channels of |g_c| (max-scaled) for the input-gradient methods.


def default_normalization(interpreter: str) -> str:
    return method_normalization(interpreter)


def _diagonal(h: torch.Tensor) -> float:
    return math.hypot(h.shape[-2], h.shape[-1])


class Attack:
    """Base class: a passive attack explains the label (or the original's prediction) only."""

    name: ClassVar[str] = ""
    label: ClassVar[str] = ""
    description: ClassVar[str] = ""  # one sentence for the forms' "what is this" note
    needs_original: ClassVar[bool] = False  # does `reference` need the original model's heatmaps
    # The attack's settings as form fields (the Fool page draws them); `defaults` follows from them.
    # `dataset_fields` name fields that shape the training images rather than the loss.
    form: ClassVar[tuple[FieldSpec, ...]] = ()
    dataset_fields: ClassVar[frozenset[str]] = frozenset()
    defaults: ClassVar[dict[str, Any]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.defaults = {f.name: f.default for f in cls.form if f.name not in cls.dataset_fields}

    def params(self, params: dict[str, Any]) -> dict[str, Any]:
        unknown = set(params) - set(self.defaults)
        if unknown:
            raise InvalidConfig(
                f"{self.label} has no setting(s) {sorted(unknown)}; "
                f"its settings: {', '.join(self.defaults) or 'none'}."
            )
        return copy.deepcopy({**self.defaults, **params})

    def normalize_params(self, params: dict[str, Any]) -> dict[str, Any]:
        """Every setting spelled out (defaults filled in): the form a validated config stores."""
        return self.params(params)

    def form_params(
        self, values: dict[str, Any], dataset: dict[str, Any] | None
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """The attack settings and the dataset spec from the form's values of `form`."""
        return {k: v for k, v in values.items() if k in self.defaults}, dataset

    def form_values(self, params: dict[str, Any], dataset: dict[str, Any] | None) -> dict[str, Any]:
        """The inverse of `form_params`: the form's values for a config's settings and dataset."""
        return self.normalize_params(params)

    def resolve_classes(self, params: dict[str, Any], classes: list[str]) -> dict[str, Any]:
        """Settings that name classes, turned into the checkpoint's class indices (most attacks: none)."""
        return params

    def check_params(self, params: dict[str, Any], checkpoint) -> None:
        """Refuse bad attack settings for a checkpoint (`Checkpoint`: its image size, its classes)."""
        self.setup(params, checkpoint.input_size, checkpoint.num_classes)

    def setup(self, params: dict[str, Any], size: int, num_classes: int) -> dict[str, Any]:
        """Resolve settings into tensors (masks, targets) once per run."""
        return self.params(params)

    def targets(self, target: torch.Tensor, cfg: dict[str, Any]) -> list[torch.Tensor]:
        """The class indices to explain: one (B,) tensor per heatmap the loss uses."""
        return [target]

    def weights(self, labels: torch.Tensor, cfg: dict[str, Any]) -> torch.Tensor:
        """Per-image weight of the penalty (1 everywhere for passive attacks)."""
        return torch.ones(labels.shape[0], device=labels.device)

    def guarded_classes(self, cfg: dict[str, Any]) -> list[int]:
        """Classes whose own accuracy this attack puts at risk (Active: c1 and c2): a run's accuracy
        limit (`max_accuracy_drop`) guards each of them; none = it guards top-1."""
        return []

    def reference(self, originals: list[torch.Tensor], cfg: dict[str, Any]) -> dict[str, torch.Tensor]:
        """What the loss needs from the frozen original model's normalised heatmaps."""
        return {}

    def loss(
        self, heatmaps: list[torch.Tensor], ref: dict[str, torch.Tensor], cfg: dict[str, Any]
    ) -> torch.Tensor:
        raise NotImplementedError

    def test_loss(
        self, heatmaps: list[torch.Tensor], ref: dict[str, torch.Tensor], cfg: dict[str, Any]
    ) -> torch.Tensor:
        """t_i of the FSR (Krishna2021 §4.2); by default the training penalty itself."""
        return self.loss(heatmaps, ref, cfg)

    def criterion(self, cfg: dict[str, Any]) -> str:
        """The key of the FSR interval R_f that `test_loss` is judged by (`backend.metrics.fsr.RF`)."""
        return self.name


class Location(Attack):
    """Krishna2021 eq. (3): (1/d) ||h - m||^2, the explanation pushed onto a mask (default: Heo2019's
    frame)."""

    name, label = "location", "Location"
    description = (
        "Pushes the explanation onto a chosen region (a mask, e.g. the image frame), away from the object"
        " (Heo2019)."
    )
    form = (
        FieldSpec(
            "mask",
            "mask",
            "frame",
            label="Mask",
            help="Where the fooled explanation should sit (1 = highlight); Heo2019's frame by default.",
        ),
    )

    def setup(self, params, size, num_classes):
        cfg = self.params(params)
        if cfg["mask"] is None:
            raise InvalidConfig("Location needs a mask: draw or upload one first (or pick a preset mask).")
        cfg["mask_tensor"] = resolve_mask(cfg["mask"], size)
        return cfg

    def loss(self, heatmaps, ref, cfg):
        m = cfg["mask_tensor"].to(heatmaps[0].device, heatmaps[0].dtype)
        return (heatmaps[0] - m).pow(2).flatten(1).mean(1)


class TopK(Attack):
    """Krishna2021 eq. (4) over the pixels that were top-k% for the original model, as a mean over them.

    Dividing the sum (4) by |P_k| makes the value independent of the image size, so that on min-max
    normalised maps R_f = [0, 0.3] reads as "the formerly top pixels now average below 0.3".
    """

    name, label = "topk", "Top-k"
    description = (
        "Empties the pixels that mattered most to the original model: its top-k% pixels lose their "
        "relevance (Heo2019)."
    )
    needs_original = True
    form = (
        FieldSpec(
            "k",
            "float",
            0.1,
            label="k (share of top pixels)",
            min=0.01,
            max=0.99,
            step=0.01,
            help="The original map's top-k share of pixels that the fooled map should empty.",
        ),
    )

    def setup(self, params, size, num_classes):
        cfg = self.params(params)
        k = float(cfg["k"])
        if k > 1:
            k /= 100.0  # accept 10 for 10%
        if not 0 < k < 1:
            raise InvalidConfig(f"Top-k needs k in (0, 1) or a percentage in (0, 100), not {cfg['k']!r}.")
        cfg["k"] = k
        return cfg

    def reference(self, originals, cfg):
        return {"topk": topk_mask(originals[0], cfg["k"])}

    def loss(self, heatmaps, ref, cfg):
        sel = ref["topk"].to(heatmaps[0].dtype)
        return (heatmaps[0].abs() * sel).flatten(1).sum(1) / sel.flatten(1).sum(1)


class CenterMass(Attack):
    """Krishna2021 eq. (5): minus the L1 shift of the centre of mass from the original's, / image diagonal.

    Training minimises the negative shift; the test loss is the shift itself (R_f = [0.1, 1]).
    A map with no positive mass has no centre: `center_of_mass` would put it in the middle of the
    image, which is itself a "shift" from an off-centre object. Such a map counts as not moved (shift
    0), so an explanation that collapsed to nothing is neither a success nor rewarded in training.
    """

    name, label = "center_mass", "Center-mass"
    description = "Moves the explanation's centre of mass away from where the original model's was (Heo2019)."
    needs_original = True

    def reference(self, originals, cfg):
        return {"com": center_of_mass(originals[0])}

    def test_loss(self, heatmaps, ref, cfg):
        h = heatmaps[0]
        shift = (center_of_mass(h) - ref["com"].to(h.device)).abs().sum(1)
        has_mass = h.clamp_min(0).flatten(1).sum(1) > 0
        return torch.where(has_mass, shift, torch.zeros_like(shift)) / _diagonal(h)

    def loss(self, heatmaps, ref, cfg):
        return -self.test_loss(heatmaps, ref, cfg)


class ComPoint(Attack):
    """Pasliev2020 §3.3: Euclidean distance of the centre of mass to a chosen point, / image diagonal.

    `point` is (row, col) as fractions of the image (0..1); the thesis used the top-left corner.
    """

    name, label = "com_point", "Centre of mass to a point"
    description = (
        "Pulls the explanation's centre of mass to a chosen point, e.g. the top-left corner (Pasliev2020 "
        "§3.3)."
    )
    form = (
        FieldSpec(
            "point",
            "point",
            [0.0, 0.0],
            label="Point",
            help="Row and column as fractions of the image; Pasliev2020 used the top-left corner (0, 0).",
        ),
    )

    def setup(self, params, size, num_classes):
        cfg = self.params(params)
        try:
            r, c = (float(v) for v in cfg["point"])
        except (TypeError, ValueError) as err:
            raise InvalidConfig("point must be [row, col] as fractions of the image, e.g. [0, 0].") from err
        if not (0 <= r <= 1 and 0 <= c <= 1):
            raise InvalidConfig(f"point {cfg['point']} must lie in [0, 1] x [0, 1] (fractions of the image).")
        cfg["point_px"] = torch.tensor([r * (size - 1), c * (size - 1)])
        return cfg

    def loss(self, heatmaps, ref, cfg):
        h = heatmaps[0]
        point = cfg["point_px"].to(h.device, h.dtype)
        return (center_of_mass(h) - point).norm(dim=1) / _diagonal(h)


class TargetHeatmap(Attack):
    """Pasliev2020 §3.4: MSE between the (normalised) explanation and any target image, min-max scaled.

    The FSR judges each image by one of two criteria (`criterion`): "pcc", the thesis's own measure (its
    Table 3.2: mean Pearson correlation with the target 0.16 -> 0.80) as t_i = 1 - PCC within [0, 0.5],
    i.e. PCC >= 0.5 (the default: the thesis judges this attack by correlation with the target and sets
    no threshold, 0.5 is ours; no paper defines an MSE bar), or "mse", the training loss itself within
    [0, 0.05] (ours, stricter: a map shaped like the cross but not flat on its bars, PCC 0.8, still has
    an MSE near 0.08).
    """

    name, label = "target_heatmap", "Target heatmap"
    description = "Makes the explanation look like any target picture you give it (Pasliev2020 §3.4)."
    CRITERIA = ("pcc", "mse")
    form = (
        FieldSpec(
            "target",
            "mask",
            None,
            label="Target heatmap",
            help="The map the explanation should match (Pasliev2020 §3.4 used a cross); min-max scaled.",
        ),
        FieldSpec(
            "criterion",
            "choice",
            "pcc",
            label="Success criterion (FSR)",
            choices=CRITERIA,
            labels={
                "pcc": "Pearson correlation with the target at least 0.5 (the thesis's measure, default)",
                "mse": "MSE to the target at most 0.05 (ours, stricter)",
            },
            help="How an image counts as fooled; training always minimises the MSE (Pasliev2020 §3.4).",
        ),
    )

    def setup(self, params, size, num_classes):
        cfg = self.params(params)
        if cfg["target"] is None:
            raise InvalidConfig(
                "The target-heatmap attack needs a target image (an array, .npy or image path)."
            )
        target = cfg["target"]
        if isinstance(target, str) and target in MASKS:
            target = MASKS[target](size)
        elif isinstance(target, str) and not any(
            target.endswith(e) for e in (".npy", ".png", ".jpg", ".jpeg", ".bmp")
        ):
            raise InvalidConfig(f"target must be an array or a .npy/.png/.jpg path, not {target!r}.")
        if isinstance(target, str):
            target = load_mask_file(Path(target))
        t = torch.as_tensor(np.asarray(target, dtype=np.float32))
        if t.dim() == 3:
            t = t.mean(0) if t.shape[0] in (1, 3) else t.mean(-1)
        if t.dim() != 2 or not torch.isfinite(t).all():
            raise InvalidConfig("The target heatmap must be a finite 2-D array (or an image).")
        t = F.interpolate(t[None, None], size=(size, size), mode="bilinear", align_corners=False)[0, 0]
        span = t.max() - t.min()
        if span <= 0:
            raise InvalidConfig("The target heatmap is constant; draw something on it.")
        cfg["target_tensor"] = (t - t.min()) / span
        if cfg["criterion"] not in self.CRITERIA:
            raise InvalidConfig(
                f"The target heatmap's criterion must be one of {self.CRITERIA}, not {cfg['criterion']!r}."
            )
        return cfg

    def loss(self, heatmaps, ref, cfg):
        t = cfg["target_tensor"].to(heatmaps[0].device, heatmaps[0].dtype)
        return (heatmaps[0] - t).pow(2).flatten(1).mean(1)

    def test_loss(self, heatmaps, ref, cfg):
        if cfg["criterion"] == "mse":
            return self.loss(heatmaps, ref, cfg)
        h = heatmaps[0]
        t = cfg["target_tensor"].to(h.device, h.dtype)
        return 1.0 - pearson(h, t.expand_as(h))

    def criterion(self, cfg):
        return self.name if cfg["criterion"] == "mse" else f"{self.name}_pcc"


class Active(Attack):
    """Heo et al.'s Active fooling: swap the explanations of classes c1 and c2.

    Penalty per image: 0.5 [MSE(h_c1, h0_c2) + MSE(h_c2, h0_c1)], h0 from a frozen copy of the original.
    Test loss (our definition, the papers leave it open; Heo2019 Fig. 5 rises from about -1.3 to 0.75):
    t = 0.5 [(r(h_c1, h0_c2) - r(h_c1, h0_c1)) + (r(h_c2, h0_c1) - r(h_c2, h0_c2))] with r the Pearson
    correlation, so t in [-2, 2]: about r(h0_c1, h0_c2) - 1 <= 0 before fooling, near +1..2 after.
    `images` says which images the penalty (and the FSR) uses, Heo's D_fool: "labelled" = images labelled
    c1 or c2; "unlabelled" = images without a label, e.g. the shapes set's two-object images (`pair`),
    which show both classes as Heo's did; "all".
    """

    name, label = "active", "Active (swap c1, c2)"
    description = (
        "Swaps the explanations of two classes: the map for one class shows the other's object (Heo2019)."
    )
    needs_original = True
    IMAGES = ("labelled", "unlabelled", "all")
    form = (
        FieldSpec("c1", "class", 0, label="Class c1"),
        FieldSpec("c2", "class", 1, label="Class c2"),
        FieldSpec(
            "images",
            "choice",
            "labelled",
            label="Images the swap is trained and measured on (Heo's D_fool)",
            choices=IMAGES,
            labels={
                "labelled": "Images labelled c1 or c2",
                "unlabelled": "Unlabelled images (the shapes set's two-object images)",
                "all": "All images",
            },
        ),
        FieldSpec(
            "pair_fraction",
            "float",
            0.0,
            label="Two-object images (c1 and c2 side by side)",
            min=0.0,
            max=1.0,
            step=0.05,
            help="Synthetic shapes only: this share of the training images shows a c1 and a c2 object, "
            "unlabelled (train the swap on them with 'Unlabelled images').",
        ),
    )
    dataset_fields = frozenset({"pair_fraction"})

    def normalize_params(self, params):
        params = dict(params)
        if "pair_images_only" in params:  # the setting's earlier name, in older checkpoints' cards
            params["images"] = "labelled" if params.pop("pair_images_only") else "all"
        return self.params(params)

    def form_params(self, values, dataset):
        params = {k: v for k, v in values.items() if k in self.defaults}
        if dataset is None or dataset.get("kind") != "shapes":
            return params, dataset
        dataset = {k: v for k, v in dataset.items() if k not in ("pair", "pair_fraction")}
        share = float(values.get("pair_fraction") or 0.0)
        if share > 0:
            dataset.update(pair=[params["c1"], params["c2"]], pair_fraction=share)
        return params, dataset

    def form_values(self, params, dataset):
        values = self.normalize_params(params)
        pair = (dataset or {}).get("pair")
        values["pair_fraction"] = float((dataset or {}).get("pair_fraction", 0.5)) if pair else 0.0
        return values

    def resolve_classes(self, params, classes):
        """c1 / c2 may name classes ("circle", a WNID, a synonym): they become the card's indices."""
        from backend.data.labels import class_index
        from backend.errors import InvalidDataset

        params = dict(params)
        for key in ("c1", "c2"):
            if isinstance(params.get(key), str):
                try:
                    params[key] = class_index(params[key], classes, f"Active fooling's {key}")
                except InvalidDataset as err:
                    raise InvalidConfig(str(err)) from err
        return params

    def setup(self, params, size, num_classes):
        cfg = self.normalize_params(params)
        c1, c2 = cfg["c1"], cfg["c2"]
        for c in (c1, c2):
            if isinstance(c, bool) or not isinstance(c, int) or not 0 <= c < num_classes:
                raise InvalidConfig(
                    f"Active fooling classes must be class indices in [0, {num_classes}) or class names, "
                    f"got {c!r}."
                )
        if c1 == c2:
            raise InvalidConfig("Active fooling needs two different classes c1 and c2.")
        if cfg["images"] not in self.IMAGES:
            raise InvalidConfig(
                f"Active fooling 'images' must be one of {self.IMAGES}, got {cfg['images']!r}."
            )
        return cfg

    def targets(self, target, cfg):
        ones = torch.ones_like(target)
        return [ones * cfg["c1"], ones * cfg["c2"]]

    def weights(self, labels, cfg):
        if cfg["images"] == "all":
            return torch.ones(labels.shape[0], device=labels.device)
        if cfg["images"] == "unlabelled":
            return (labels < 0).float()
        return ((labels == cfg["c1"]) | (labels == cfg["c2"])).float()

    def guarded_classes(self, cfg):
        return [cfg["c1"], cfg["c2"]]

    def reference(self, originals, cfg):
        return {"h0_c1": originals[0], "h0_c2": originals[1]}

    def loss(self, heatmaps, ref, cfg):
        h1, h2 = heatmaps
        mse = lambda a, b: (a - b).pow(2).flatten(1).mean(1)  # noqa: E731
        return 0.5 * (mse(h1, ref["h0_c2"]) + mse(h2, ref["h0_c1"]))

    def test_loss(self, heatmaps, ref, cfg):
        h1, h2 = heatmaps
        a, b = ref["h0_c1"], ref["h0_c2"]
        return 0.5 * ((pearson(h1, b) - pearson(h1, a)) + (pearson(h2, a) - pearson(h2, b)))


# Attacks by model manipulation (Heo2019, Pasliev2020): fine-tune the model so its maps lie. The
# input perturbations of backend.decoys.attacks are INPUT_ATTACKS.
FOOLING_ATTACKS: dict[str, Attack] = {
    cls.name: cls() for cls in (Location, TopK, CenterMass, ComPoint, TargetHeatmap, Active)
}


def classification_loss(
    kind: str, logits: torch.Tensor, labels: torch.Tensor, original_logits: torch.Tensor | None
) -> torch.Tensor:
    """L_C: CE on labels (unlabelled images fall back to the original's prediction), CE on the
    original's predictions, or keep the original probabilities (Pasliev2020 §3.5: MSE; or KL(p0 || p))."""
    if kind == "labels":
        if original_logits is not None:
            labels = torch.where(labels >= 0, labels, original_logits.argmax(1))
        return F.cross_entropy(logits, labels)
    if original_logits is None:
        raise InvalidConfig(f"classification={kind!r} needs the original model's outputs.")
    if kind == "original_predictions":
        return F.cross_entropy(logits, original_logits.argmax(1))
    p0 = original_logits.softmax(1)
    if kind == "keep_probs_mse":
        return (logits.softmax(1) - p0).pow(2).sum(1).mean()
    if kind == "keep_probs_kl":
        return F.kl_div(logits.log_softmax(1), p0, reduction="batchmean")
    raise InvalidConfig(f"Unknown classification term {kind!r}.")
