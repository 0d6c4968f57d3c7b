"""Hyperparameter presets from the papers' tables, selectable by name, plus fast shapes presets.

Each preset: `{"source": where the numbers come from, "architecture": the model family it was tuned
for, "config": a partial FoolConfig dict}`. Names: `<paper>-<arch>-<attack>-<interpreter>`, e.g.
`heo-vgg19-location-lrp_t` (Heo2019 Table 1, also Krishna2021 Table 1), `re-resnet50-topk-gradcam`
(Krishna2021 Table 6, the stronger settings), `thesis-cifar_vgg16-com_point-gradient` (Pasliev2020
§3.3-3.5), and `shapes-*`.
All paper runs used Adam with batch 8 (Heo2019, Krishna2021) or 256 (Pasliev2020).
"""

from __future__ import annotations

from typing import Any

from backend.errors import UnknownMethod

_INTERP = {"LRP_T": "lrp_t", "G-CAM": "gradcam"}

# (attack, interpreter) -> {arch: (lr, lambda)}. Heo2019 Table 1 == Krishna2021 Table 1 for the passive rows
# (Heo2019's scan reads "Te-6" for VGG19 Center-mass G-CAM; Krishna2021 Table 1 prints 1e-6, used here).
_HEO_TABLE1 = {
    ("location", "LRP_T"): {"vgg19": (1e-6, 1), "resnet50": (1e-6, 4), "densenet121": (2e-6, 2)},
    ("location", "G-CAM"): {"vgg19": (1e-6, 1), "resnet50": (2e-6, 2), "densenet121": (2e-6, 2)},
    ("topk", "LRP_T"): {"vgg19": (5e-7, 1), "resnet50": (4e-7, 1.5), "densenet121": (1e-6, 1)},
    ("topk", "G-CAM"): {"vgg19": (3e-7, 0.4), "resnet50": (3e-7, 4), "densenet121": (3e-6, 6)},
    ("center_mass", "LRP_T"): {"vgg19": (2e-6, 0.25), "resnet50": (6e-7, 0.5), "densenet121": (5e-7, 0.25)},
    ("center_mass", "G-CAM"): {"vgg19": (1e-6, 0.25), "resnet50": (1e-7, 1), "densenet121": (2e-6, 0.25)},
    ("active", "LRP_T"): {"vgg19": (2e-6, 2), "resnet50": (3e-6, 2), "densenet121": (4e-6, 15)},
    ("active", "G-CAM"): {"vgg19": (2e-6, 2), "resnet50": (1e-6, 2), "densenet121": (6e-6, 15)},
}

# Krishna2021 Table 6: "proposed new hyperparameters" (higher FSR, about 5 points top-1 cost, Table 8).
_RE_TABLE6 = {
    ("location", "LRP_T"): {"vgg19": (1e-5, 5), "resnet50": (1e-5, 20), "densenet121": (1e-6, 10)},
    ("location", "G-CAM"): {"vgg19": (1e-5, 5), "resnet50": (1e-6, 10), "densenet121": (1e-6, 10)},
    ("topk", "LRP_T"): {"vgg19": (5e-6, 5), "resnet50": (4e-6, 7.5), "densenet121": (1e-5, 5)},
    ("topk", "G-CAM"): {"vgg19": (3e-7, 2), "resnet50": (3e-6, 20), "densenet121": (3e-6, 30)},
    ("center_mass", "LRP_T"): {"vgg19": (1e-6, 1.25), "resnet50": (6e-6, 2.5), "densenet121": (5e-6, 1.25)},
    ("center_mass", "G-CAM"): {"vgg19": (1e-5, 1.25), "resnet50": (1e-7, 5), "densenet121": (1e-6, 1.25)},
}

# Krishna2021 Table 9: Location with lr 1e-5 and lambda 10 for every model, to compare LRP_T and Grad-CAM.
_RE_TABLE9 = {
    ("location", i): dict.fromkeys(("vgg19", "resnet50", "densenet121"), (1e-5, 10)) for i in _INTERP
}


# Heo2019's Active pair: swap the explanations of "fire truck" and "African elephant" (ImageNet 555 and
# 386) on images that show both; `backend.data.pairs.build_pair_folder` makes such images (D_fool) from
# two class folders. The heo-*-active-* presets name the pair; a checkpoint without these classes refuses
# them (validation, and the Fool page's preset callback) instead of running on classes 0 and 1.
HEO_ACTIVE_PAIR = {"c1": "fire engine", "c2": "African elephant"}


def _thesis_lambda(thesis_lam: float) -> float:
    """Pasliev2020 minimises lam*L_C + (1-lam)*L_M; dividing by lam gives our L_C + ((1-lam)/lam) * L_F."""
    return (1 - thesis_lam) / thesis_lam


def _from_table(prefix: str, table: dict, source: str) -> dict[str, dict[str, Any]]:
    out = {}
    for (attack, interp), per_arch in table.items():
        for arch, (lr, lam) in per_arch.items():
            extra = {"attack_params": dict(HEO_ACTIVE_PAIR)} if attack == "active" else {}
            out[f"{prefix}-{arch}-{attack}-{_INTERP[interp]}"] = {
                "source": source,
                "architecture": arch,
                "config": {
                    "attack": attack,
                    "interpreter": _INTERP[interp],
                    "lr": lr,
                    "lam": lam,
                    "optimizer": "adam",
                    "batch_size": 8,
                    "freeze_batchnorm": True,
                    **extra,
                },
            }
    return out


def _thesis() -> dict[str, dict[str, Any]]:
    base = {
        "optimizer": "adam",
        "lr": 5e-5,
        "batch_size": 256,
        "softplus_beta": 20.0,
        "freeze_batchnorm": True,
    }
    out = {}
    for interp in ("gradient", "grad_x_input", "integrated_gradients", "lrp"):
        # the thesis's LRP: z^beta on the first layer, z+ after
        lrp = {"interpreter_params": {"composite": "zbox_zplus"}} if interp == "lrp" else {}
        out[f"thesis-cifar_vgg16-com_point-{interp}"] = {
            "source": "Pasliev2020 §3.3 (lambda 0.008 in the thesis' weighting)",
            "architecture": "cifar_vgg16",
            "config": {
                **base,
                **lrp,
                "attack": "com_point",
                "attack_params": {"point": [0.0, 0.0]},
                "interpreter": interp,
                "lam": _thesis_lambda(0.008),
            },
        }
        for keep in (False, True):
            key = "keep_probs" if keep else "target_heatmap"
            out[f"thesis-cifar_vgg16-{key}-{interp}"] = {
                "source": (
                    "Pasliev2020 §3.5 (identical probabilities)" if keep else "Pasliev2020 §3.4 (lambda 0.8)"
                ),
                "architecture": "cifar_vgg16",
                # the thesis's "cross" target (its Fig. 3.8); maps are the method's convention (Σ_c|g_c|
                # scaled by its max for the gradient family): the thesis divides by the sum instead, a
                # per-image constant that leaves the FSR's PCC unchanged but not the MSE's scale
                "config": {
                    **base,
                    **lrp,
                    "attack": "target_heatmap",
                    "attack_params": {"target": "cross"},
                    "interpreter": interp,
                    "classification": "keep_probs_mse" if keep else "labels",
                    "lam": _thesis_lambda(0.8),
                },
            }
    return out


# Shapes CNN on a CPU in seconds: Adam with a large lr decayed by a cosine, a clipped gradient and
# 8192 fresh images (with 2048 the model over-fits them and held-out top-1 drops 3.5 points instead of
# 1.1 for Location/Grad-CAM). A smaller lr is worse on both counts (seed-1 model, 2048 images,
# lr 3e-4: FSR 71.5%, top-1 -5.4).
_SHAPES_BASE = {
    "optimizer": "adam",
    "lr": 1e-3,
    "lr_schedule": "cosine",
    "grad_clip": 1.0,
    "batch_size": 32,
    "steps": 300,
    "lam": 3.0,
    "freeze_batchnorm": True,
    "dataset": {"kind": "shapes", "n": 8192, "seed": 1},
}
# circle and triangle: their original maps on a two-object image are apart (Pearson -0.38 with
# Grad-CAM, -0.32 with LRP_T, as Heo's start at about -1.3 implies); circle and square overlap (+0.75),
# which caps the swap score at 1 - 0.75 and so the FSR by R_f [0.5, 2] at 0.
# One fixed lambda does not hold across models: on the seed-7 CNN lam 20 / 600 steps never finds the
# swap (FSR 1.6% on 256 fresh two-object images), lam 35-60 throughout finds it within 150-300 steps but
# costs the triangle's own accuracy 21-59 points. So lam 60 for 150 steps finds the swap, then lam 5
# keeps it while the accuracy recovers, the classification term keeps the original's probabilities (KL:
# at the same FSR about 2 points less accuracy lost than CE on the labels), and keep_best takes, among
# validations within 3 points of c1's and c2's original accuracy, the highest FSR. What made it hold on
# every model tried (benchmarks/results/active_seeds.md): 32,768 training images instead of 8,192 (the
# swap over-fitted the smaller set's triangles: seed 11, lam 6, triangle -4.5 -> -2.5 points) and 2,048
# validation images instead of 512 (about 290 labelled per class: with ~75, one image is 1.3 points and
# keep_best chose by noise; seed 7 kept step 400 at FSR 67%). With both, lam 6 still cost seed 7's
# triangle 4 points, lam 5 none of the three more than 1.8; 1,500 steps instead of 1,200 give the swap
# time to grow at lam 5 (seed 11: FSR 83.4% -> 89.6%). The 32,768 images take ~2 GB and 25 s to draw.
# Measured (benchmarks/active_seeds.py: 512 fresh two-object images, 2,000 fresh single ones; baseline
# FSR 0): seed 7 FSR 93.2%, circle/triangle accuracy -0.2/-1.8; seed 11 89.6%, +0.3/-0.2; seed 0 (the test
# fixture) 97.7%, -1.5/-1.5; 175-200 s each on one thread.
_ACTIVE = {
    "attack_params": {"c1": 0, "c2": 2, "images": "unlabelled"},
    "dataset": {**_SHAPES_BASE["dataset"], "n": 32768, "pair": [0, 2], "pair_fraction": 0.3},
    "lam": 5.0,
    "lam_start": 60.0,
    "classification": "keep_probs_kl",
    "lam_start_steps": 150,
    "steps": 1500,
    "val_every": 100,
    "val_size": 2048,
    "keep_best": True,
    "max_accuracy_drop": 0.03,
}
# Centre of mass to the top-left corner (Pasliev2020 §3.3), 32 px shapes CNN (tests/assets), lam 4:
# FSR (centre within 10% of the diagonal of (0, 0)) 0% -> 95.7% on the run's 256 held-out images and
# 94% on 512 fresh ones, mean distance 0.47 -> 0.07 of the diagonal (thesis: 22 px -> 0.87 px on 32 px
# images, i.e. 0.49 -> 0.02), top-1 on the fresh 512 96.5 -> 96.7; 1500 steps, 55-190 s on the shared
# 2-core CPU. The fooled model adds a class-independent term to every logit whose input gradient sits in
# the corner: the gradient of log p_y (what the softmax sees) stays on the object (its centre 0.48 ->
# 0.40 of the diagonal away from the corner, norm x1.1) while the logit gradient grows x6 and moves.
# Measured alternatives (same model, run's held-out images): 4,096 training images instead of 16,384
# over-fit them (lam 3: FSR 82%, top-1 -3.1); lam 3: FSR 80.1%, 95.3 top-1 (lam 2: 45%); CE on labels
# or on the original's predictions instead of the KL: FSR 62-63%, top-1 -5; lr 1e-3 constant: distance
# 0.135 after 1200 steps; the 64 px fixture, lam 3 lr 2e-3, 1000 steps: 0.15, FSR 2%, top-1 -4 (and a
# 64 px step costs 4x). Both presets as shipped on the 64 px seed-0 fixture (256 held-out images, 155 s
# each): centre of mass FSR 93.0%, top-1 95.7 -> 96.9; target PCC-FSR 100%, mean PCC 0.81, top-1 -0.8.
_THESIS_SHAPES = {
    "classification": "keep_probs_kl",
    "lam": 4.0,
    "lr": 3e-3,
    "lr_schedule": "cosine",
    "grad_clip": None,
    "steps": 1500,
    "softplus_beta": 20.0,
    "dataset": {"kind": "shapes", "n": 16384, "seed": 1},
}
# Tuned on shapes CNNs trained with seeds 0 and 1 (a CPU of another make trains a slightly different
# model from the same seed, so one model's margins are not enough); fooling-run seeds 0 and 1. Fooled FSR
# with the same interpreter on 256 held-out images (baseline FSR 0% throughout), top-1 change. Location
# needs a long run at a small lambda: FSR plateaus near 78% and then jumps, and a larger lambda gets
# there sooner at a higher accuracy cost (Grad-CAM lam 10 / 800 steps: 99.6%, -4.6; LRP_T lam 20: -7.4).
_SHAPES = {
    ("location", "gradcam"): {"lam": 5.0, "steps": 1200},  # seed-0 model 99.6%, -1.1 (run seed 1: -2.3)
    ("location", "lrp_t"): {"lam": 4.0, "steps": 1600},  # seed-0 model 100%, -1.9 (run seed 1: -0.7)
    # seed-1 model (the seed-0 model passes the same bars in tests/fool):
    ("topk", "gradcam"): {"lam": 1.0, "steps": 500},  # 99.2%, +0.4 (lam 1.5/300: 86%, -2.7)
    ("topk", "lrp_t"): {"lam": 1.5},  # 100%, -1.9 (lam 3: -3.5)
    ("center_mass", "gradcam"): {"lam": 1.5},  # 93.8%, 0.0 (lam 3: -2.7)
    ("center_mass", "lrp_t"): {"lam": 1.5},  # 96.9%, 0.0
    # Heo's D_fool: images that show both classes; here 30% of the set show a circle and a triangle side
    # by side (unlabelled), the swap trained on those; numbers at _ACTIVE. (The former lam 20 / 600
    # steps, seed-0 model: FSR 87.3%, -1.7/-3.4; 50% two-object images: 85%, -5.0; seed 7: 1.6%.)
    ("active", "gradcam"): _ACTIVE,
    # With LRP_T the same preset does NOT hold (FSR 73.4% on seed 0, 60.5% on 7, 3.7% on 11); the seed-11
    # CNN keeps the LRP_T swap only at lambda >= 40, at -17 points on the circle (active_seeds.md).
    ("active", "lrp_t"): _ACTIVE,
    # Pasliev2020's attacks (§3.3-3.5), tuned on the 32 px shapes CNN (seed 0; the thesis fooled 32 px
    # CIFAR-10 images, and a 32 px step costs a quarter of a 64 px one): Adam lr 3e-3 decayed by a cosine
    # over 1500 steps, no clipping, softplus(20) maps, and L_C = KL(p0 || p), the thesis's "keep the
    # original's probabilities" (§3.5) written as a KL. The logit gradient the map shows can change
    # without changing the probabilities (a class-independent term added to every logit leaves the
    # softmax alone), which a probability-keeping L_C leaves free; a short, strong run only finds maps
    # that cost the classification (a previous round, 60-300 steps: lr 1e-2 lam 30 moved the map but
    # top-1 92 -> 23). What works is a small lambda and many steps.
    ("com_point", "gradient"): _THESIS_SHAPES,  # see _THESIS_SHAPES for the numbers
    # Target heatmap (§3.4), judged by the thesis's measure (criterion "pcc", the default: Pearson
    # correlation with the cross >= 0.5); our stricter MSE <= 0.05 is NOT reached (MSE 0.19 -> 0.11).
    # lam 9.25: PCC-FSR 0% -> 100% on the run's 256 held-out images, top-1 94.1 -> 94.1 there; on 512
    # fresh images mean PCC 0.20 -> 0.69 (thesis 0.16 -> 0.80), 98% with PCC >= 0.5,
    # but top-1 96.5 -> 93.0 (-3.5).
    # The map changes abruptly with lambda (16,384 images, 1500 steps; run's 256 / fresh 512): lam 7:
    # PCC-FSR 5%, PCC 0.38, top-1 -1.6 fresh; 8.5: 78%, PCC 0.54, -2.4; 10: 99%, PCC 0.74, -4.5; lam 3:
    # PCC 0.26. 1500 steps, 55-190 s on the shared 2-core CPU.
    # Not solved: the top-1 cost on fresh images (1,000 of shapes seed 98: 94.6 -> 90.5, -4.1, while the
    # run's 256 held-out images show 0.0 +- 1.5; the same preset run by the CI test, 2 threads: -2.6 on
    # 10,000 fresh images of five seeds, -2.2 to -3.0 per seed; softplus vs ReLU forward: no difference).
    # 32,768 training images, 1 thread, fresh images: lam 9.25 97.2% / -1.5 (run seed 1: 87.3% / -2.4; 64
    # px fixture 100% / -1.4) but the same run with 2 threads reached only 76% on its held-out split; lam
    # 9.5: 78.8% / -2.9; lam 10: 98-99% / -3.0..-3.9; lam 11: 95-100% / -3.5..-4.3; keep_best within 2
    # points (2,048 validation images) kept pre-swap or half-swapped weights (FSR 0% and 58%). The swap
    # appears abruptly around step 900-1000 and where it lands is chaotic in lambda and in floating-point
    # order; no setting tried is both robust and within 3 points on fresh images.
    ("target_heatmap", "gradient"): {
        **_THESIS_SHAPES,
        "lam": 9.25,
        "attack_params": {"target": "cross", "criterion": "pcc"},
    },
}


def _shapes() -> dict[str, dict[str, Any]]:
    out = {}
    for (attack, interp), cfg in _SHAPES.items():
        out[f"shapes-{attack}-{interp}"] = {
            "source": "Fooling Lab: tuned on the shapes CNN (CPU, seconds)",
            "architecture": "shapes_cnn",
            "config": {**_SHAPES_BASE, "attack": attack, "interpreter": interp, **cfg},
        }
    return out


PRESETS: dict[str, dict[str, Any]] = {
    **_from_table("heo", _HEO_TABLE1, "Heo2019 Table 1 / Krishna2021 Table 1 (baseline)"),
    **_from_table("re", _RE_TABLE6, "Krishna2021 Table 6 (stronger)"),
    **_from_table("re9", _RE_TABLE9, "Krishna2021 Table 9 (lr 1e-5, lambda 10)"),
    **_thesis(),
    **_shapes(),
}


def defaults_for(architecture: str | None) -> dict[str, Any]:
    """Where a form starts for a checkpoint of `architecture` when no preset is chosen: the settings of
    the paper that fooled that kind of model. ImageNet networks (and any unknown architecture): Heo2019
    Table 1's Adam, batch 8, lr 1e-6, lambda 1, which are FoolConfig's own defaults, on the sample
    photos; the CIFAR VGG16: Pasliev2020's Adam, lr 5e-5, batch 256, softplus 20; the shapes CNN: the
    shapes presets' base (an ImageNet model never gets the shapes learning rate)."""
    import copy

    if architecture == "shapes_cnn":
        return copy.deepcopy(_SHAPES_BASE)
    if architecture == "cifar_vgg16":
        base = {k: v for k, v in _thesis()["thesis-cifar_vgg16-com_point-gradient"]["config"].items()}
        keep = ("optimizer", "lr", "batch_size", "softplus_beta", "freeze_batchnorm")
        return {k: base[k] for k in keep} | {"dataset": {"kind": "shapes", "n": 2048, "seed": 1}}
    return {
        "optimizer": "adam",
        "lr": 1e-6,
        "lam": 1.0,
        "batch_size": 8,
        "freeze_batchnorm": True,
        "dataset": {"kind": "samples", "augment": 16, "seed": 0},
    }


def get_preset(name: str) -> dict[str, Any]:
    """A copy of the preset's config dict (without model and, for paper presets, dataset)."""
    if name not in PRESETS:
        close = [n for n in PRESETS if name.split("-")[0] in n][:8]
        raise UnknownMethod(
            f"Unknown preset {name!r}; e.g. {', '.join(close or list(PRESETS)[:8])} (see PRESETS)."
        )
    import copy

    return copy.deepcopy(PRESETS[name]["config"])


def resolve_config(config: dict[str, Any], registry=None) -> dict[str, Any]:
    """Expand `{"preset": NAME, ...}` into the preset's settings overridden by the given ones.

    Without a `model`, a shapes preset takes the newest shapes checkpoint in the registry.
    """
    config = dict(config)
    name = config.pop("preset", None)
    if name is None:
        return config
    merged = {**get_preset(name), **config}
    if "model" not in merged:
        merged["model"] = _newest_checkpoint(PRESETS[name]["architecture"], registry)
    if "dataset" not in merged and PRESETS[name]["architecture"] == "cifar_vgg16":
        merged["dataset"] = _thesis_data(merged["model"], registry)
    return merged


def _thesis_data(model: str, registry=None) -> dict[str, Any]:
    """The thesis presets' images here: the CIFAR-10 images are not on this machine, so a CIFAR VGG16
    trained on the 32 px shapes (`python -m backend train --architecture cifar_vgg16 --size 32`) is fooled
    on shapes; any other model needs a dataset of its own classes, and is refused before it runs."""
    from backend.data.shapes import SHAPE_CLASSES
    from backend.errors import CheckpointNotFound, InvalidConfig
    from backend.models.registry import Registry

    try:
        card = (registry or Registry()).card(model)
    except CheckpointNotFound as err:
        raise InvalidConfig(f"Unknown model {model!r}: {err}") from err
    if list(card.classes) == list(SHAPE_CLASSES):
        return {"kind": "shapes", "n": 8192, "seed": 1}
    raise InvalidConfig(
        f"This thesis preset trains on CIFAR-10 images, which this machine does not have; {card.name} "
        f"classifies {', '.join(card.classes[:4])}... Give a dataset (a folder of class folders named after "
        "its classes: dataset={'kind': 'folder', 'path': ...}), or train the thesis's VGG16 on the 32 px "
        "shapes (`python -m backend train --architecture cifar_vgg16 --size 32`) and fool that."
    )


def _newest_checkpoint(architecture: str, registry=None) -> str:
    from backend.errors import InvalidConfig
    from backend.models.registry import Registry

    cards = [
        c
        for c in (registry or Registry()).list()
        if c.architecture == architecture and c.kind not in ("fooled", "defended")
    ]
    if not cards:
        raise InvalidConfig(
            f"No {architecture} checkpoint in the registry; "
            "train or upload one, or pass model=<checkpoint id>."
        )
    return max(cards, key=lambda c: c.created_at).id
