"""Measure defended models against their base: "does the defence stop the fooling?" and how faithful
the explanations are (job kind `defend_evaluate`, `python -m backend defend evaluate`).

Sections (`config["sections"]`):
- `accuracy`: clean accuracy, agreement with the base, accuracy under a PGD attack, the mean input-
  gradient norm, the alignment metric |<x, g>| / ||g|| (Zeng2021 Fig. 4), and per method the mean
  Spearman / Pearson correlation of each model's maps with the base's;
- `fooling`: the same fooling preset run on the base and on every defended model: FSR, the steps it
  took to reach `reach` FSR, top-1 before and after (the table no paper has);
- `input_attacks`: the Decoys paper's input attacks (top-k, target region, mass centre) on a few
  images: top-k intersection and Spearman of the attacked map with the original, per model;
- `alignment`: the alignment metric against each PGD model's training epsilon (the base at 0);
- `road`: ROAD accuracy after removing 20/40/60/80% of pixels by each method (MoRF and LeRF);
- `roar`: ROAR (retrains a fresh model per method and fraction: minutes; not in the default sections).
"""

from __future__ import annotations

import copy
from statistics import fmean
from typing import Any

import torch

from backend.config import get_settings
from backend.defend.checkpoint import Loaded, open_model
from backend.defend.gradients import gradient_norm, pixel_gradient
from backend.defend.pgd import robust_accuracy
from backend.detect.inputs import merged
from backend.errors import InvalidConfig
from backend.metrics import faithfulness, similarity
from backend.metrics.alignment import alignment
from backend.progress import Progress, ProgressFn, report, within

SECTIONS = ("accuracy", "fooling", "input_attacks", "alignment", "road", "roar")
DEFAULT_SECTIONS = ["accuracy", "fooling", "input_attacks", "alignment", "road"]
RANDOM = "random"

DEFAULTS: dict[str, Any] = {
    "base": None,
    "defended": [],
    "sections": DEFAULT_SECTIONS,
    "dataset": {"kind": "shapes", "n": 128, "seed": 99},  # held-out images of every section but fooling
    "images": 128,
    "methods": [RANDOM, "gradient", "lrp"],  # rankings for ROAD / ROAR; maps compared in `accuracy`
    "attack": {"norm": "linf", "epsilon": 8 / 255, "step_size": 2 / 255, "iterations": 10},
    "fooling": {
        "preset": "shapes-location-gradcam",
        "steps": 300,
        "val_every": 50,
        "val_size": 128,
        "reach": 0.5,
    },
    "input_attacks": {
        "attacks": ["topk", "target_region", "mass_center"],
        "images": 8,
        "method": "gradient",
        "epsilon": 8 / 255,
        "steps": 10,
        "step_size": 2 / 255,
    },
    "road": {"fractions": list(faithfulness.FRACTIONS), "orders": ["morf", "lerf"], "noise": 0.01},
    "roar": {
        "fractions": list(faithfulness.FRACTIONS),
        "n_train": 4096,
        "epochs": 10,
        "batch_size": 64,
        "lr": 4e-3,
    },
    "seed": 0,
    "batch_size": 64,
}


def normalize_config(config: dict[str, Any], registry=None) -> dict[str, Any]:
    """Defaults filled in, checkpoints and choices checked (`InvalidConfig` says what to change)."""
    from backend.decoys.attacks import INPUT_ATTACKS
    from backend.errors import CheckpointNotFound
    from backend.explain import METHODS
    from backend.models.registry import Registry

    cfg = merged(DEFAULTS, config)
    registry = registry or Registry()
    if not cfg["base"]:
        raise InvalidConfig("defend evaluate needs base: the id of the undefended checkpoint.")
    cfg["defended"] = [cfg["defended"]] if isinstance(cfg["defended"], str) else list(cfg["defended"])
    for cid in [cfg["base"], *cfg["defended"]]:
        try:
            registry.card(cid)
        except CheckpointNotFound as err:
            raise InvalidConfig(f"Unknown checkpoint {cid!r}: {err}") from err
    bad = [s for s in cfg["sections"] if s not in SECTIONS]
    if bad or not cfg["sections"]:
        raise InvalidConfig(f"Unknown section(s) {bad}; choose among {', '.join(SECTIONS)}.")
    bad = [m for m in cfg["methods"] if m != RANDOM and m not in METHODS]
    if bad:
        raise InvalidConfig(f"Unknown method(s) {bad}; choose among random, {', '.join(METHODS)}.")
    bad = [a for a in cfg["input_attacks"]["attacks"] if a not in INPUT_ATTACKS]
    if bad:
        raise InvalidConfig(f"Unknown input attack(s) {bad}; choose among {', '.join(INPUT_ATTACKS)}.")
    if int(cfg["images"]) < 2:
        raise InvalidConfig("images must be >= 2.")
    for key in ("road", "roar"):
        fr = cfg[key]["fractions"]
        if not fr or any(not 0 < float(f) < 1 for f in fr):
            raise InvalidConfig(f"{key} fractions must lie in (0, 1), e.g. [0.2, 0.4, 0.6, 0.8].")
    if not 0 < float(cfg["fooling"]["reach"]) <= 1:
        raise InvalidConfig("fooling.reach (the FSR whose steps are counted) must lie in (0, 1].")
    return cfg


def _images(cfg, loaded: Loaded, device) -> tuple[torch.Tensor, torch.Tensor]:
    from backend.detect.inputs import load_images

    spec = dict(cfg["dataset"])
    if spec.get("kind") == "shapes":
        spec.setdefault("size", loaded.input_size)
    x, y = load_images(spec, loaded, int(cfg["images"]), device)
    keep = y >= 0
    if not keep.any():
        raise InvalidConfig("The evaluation images are unlabelled; choose a labelled dataset.")
    return x[keep], y[keep]


def _maps(model, x, y, method: str, batch: int, seed: int) -> torch.Tensor:
    """|map| (B, H, W) per image, or random scores for the reference ranking."""
    from backend.explain import explain

    if method == RANDOM:
        return faithfulness.random_scores((len(x), *x.shape[-2:]), seed)
    out = [
        explain(model, x[i : i + batch], y[i : i + batch], method).heatmap.detach().abs()
        for i in range(0, len(x), batch)
    ]
    return torch.cat(out).cpu()


def _accuracy(model, x, y, batch: int) -> tuple[float, torch.Tensor]:
    with torch.no_grad():
        pred = torch.cat([model(x[i : i + batch]).argmax(1) for i in range(0, len(x), batch)])
    return float((pred == y).float().mean()), pred


def _describe(loaded: Loaded, role: str) -> dict[str, Any]:
    cfg = loaded.card.config or {}
    return {
        "id": loaded.card.id,
        "name": loaded.card.name,
        "role": role,
        "defence": cfg.get("defence") if loaded.card.kind == "defended" else None,
        "params": cfg.get("params", {}) if loaded.card.kind == "defended" else {},
    }


def accuracy_section(models: list[Loaded], x, y, cfg) -> tuple[dict, dict]:
    """(per model: clean, agreement, robust, grad_norm, alignment; per model and method: map similarity)."""
    base = models[0]
    bs = int(cfg["batch_size"])
    _, base_pred = _accuracy(base.model, x, y, bs)
    methods = [m for m in cfg["methods"] if m != RANDOM]
    base_maps = {m: _maps(base.model, x, y, m, bs, cfg["seed"]) for m in methods}
    rows, sims = {}, {}
    for loaded in models:
        m = loaded.model
        clean, pred = _accuracy(m, x, y, bs)
        torch.manual_seed(cfg["seed"])
        x01 = loaded.preprocessing.denormalize(x)
        grads = torch.cat(
            [
                pixel_gradient(m, x[i : i + bs], y[i : i + bs], loaded.preprocessing, create_graph=False)
                for i in range(0, len(x), bs)
            ]
        )
        rows[loaded.card.id] = {
            "clean": clean,
            "agreement": float((pred == base_pred).float().mean()),
            "robust": robust_accuracy(m, x, y, loaded.preprocessing, batch_size=bs, **cfg["attack"]),
            "grad_norm": gradient_norm(m, x, y, loaded.preprocessing, bs),
            "alignment": float(alignment(x01, grads).mean()),
        }
        if loaded is not base:
            sims[loaded.card.id] = {}
            for method in methods:
                h = _maps(m, x, y, method, bs, cfg["seed"])
                sims[loaded.card.id][method] = {
                    "spearman": float(similarity.spearman(base_maps[method], h).mean()),
                    "pearson": float(similarity.pearson(base_maps[method], h).mean()),
                }
    return rows, sims


def fooling_section(models: list[Loaded], cfg, registry, progress: ProgressFn | None) -> dict:
    """The fooling preset on every model: FSR, steps to reach `reach`, top-1 before / after."""
    from backend.fool.config import FoolConfig
    from backend.fool.data import load_fooling_data
    from backend.fool.presets import resolve_config
    from backend.fool.trainer import run_fooling

    settings = dict(cfg["fooling"])
    reach = float(settings.pop("reach"))
    rows = {}
    for n, loaded in enumerate(models):
        fool_cfg = resolve_config(
            {**settings, "model": loaded.card.id, "name": f"{loaded.card.name} fooled (defence test)"}
        )
        fc = FoolConfig.from_dict(fool_cfg).validate(registry)
        data = load_fooling_data(fc, loaded, next(loaded.model.parameters()).device)
        before, _ = _accuracy(
            loaded.model, data.val_x[data.val_y >= 0], data.val_y[data.val_y >= 0], int(cfg["batch_size"])
        )
        curve: list[tuple[int, float]] = []

        def seen(p: Progress, curve=curve, name=loaded.card.name, n=n) -> None:
            if "val_fsr" in p.metrics:
                curve.append((int(p.done), float(p.metrics["val_fsr"])))
            if "loss" in p.metrics and p.done % 50 == 0:
                report(progress, n + p.fraction, len(models), f"fooling {name}: step {p.done}/{p.total}")

        card = run_fooling(fc, progress=seen, registry=registry)
        reached = next((s for s, f in curve if f >= reach), None)
        rows[loaded.card.id] = {
            "fooled": card.id,
            "fsr": card.metrics["val_fsr"],
            "steps_to_reach": reached,
            "reach": reach,
            "top1_before": before,
            "top1_after": card.metrics["val_accuracy"],
            "top1_cost": before - card.metrics["val_accuracy"],
            "curve": curve,
        }
        fsr = rows[loaded.card.id]["fsr"]
        report(progress, n + 1, len(models), f"fooled {n + 1}/{len(models)}: FSR {100 * fsr:.1f}%")
    return {"preset": cfg["fooling"]["preset"], "steps": fc.steps, "rows": rows}


def input_attack_section(models: list[Loaded], x, y, cfg) -> dict:
    """Top-k intersection and Spearman of the attacked map with the original, per model and attack."""
    from backend.decoys.attacks import attack_input
    from backend.explain import explain

    ia = cfg["input_attacks"]
    n = min(int(ia["images"]), len(x))
    out = {}
    for loaded in models:
        pre, m = loaded.preprocessing, loaded.model
        x01 = pre.denormalize(x[:n]).clamp(0, 1)
        h0 = explain(m, pre.normalize(x01), y[:n], ia["method"]).heatmap.detach().abs()
        out[loaded.card.id] = {}
        for attack in ia["attacks"]:
            torch.manual_seed(cfg["seed"])
            adv = torch.stack(
                [
                    attack_input(
                        m,
                        x01[i],
                        pre.normalize,
                        attack,
                        ia["method"],
                        ia["epsilon"],
                        ia["steps"],
                        ia["step_size"],
                    )
                    for i in range(n)
                ]
            )
            h1 = explain(m, pre.normalize(adv), y[:n], ia["method"]).heatmap.detach().abs()
            out[loaded.card.id][attack] = {
                "topk_intersection": float(similarity.topk_intersection(h0, h1).mean()),
                "spearman": float(similarity.spearman(h0, h1).mean()),
            }
    return out


def alignment_section(models: list[Loaded], accuracy: dict) -> dict:
    """The alignment metric against epsilon: the base at 0, every PGD model at its training radius."""
    points = []
    for loaded in models:
        d = _describe(loaded, "")
        if loaded is models[0] or d["defence"] in ("pgd_l2", "pgd_linf"):
            points.append(
                {
                    "id": loaded.card.id,
                    "norm": {"pgd_l2": "l2", "pgd_linf": "linf"}.get(d["defence"] or "", "none"),
                    "epsilon": float(d["params"].get("epsilon", 0.0)),
                    "alignment": accuracy[loaded.card.id]["alignment"],
                }
            )
    return {"points": sorted(points, key=lambda p: (p["norm"], p["epsilon"]))}


def road_section(models: list[Loaded], x, y, cfg) -> dict:
    out = {}
    for loaded in models:
        pre = loaded.preprocessing
        scores = {
            m: _maps(loaded.model, x, y, m, int(cfg["batch_size"]), cfg["seed"]) for m in cfg["methods"]
        }
        out[loaded.card.id] = faithfulness.road(
            loaded.model,
            pre.denormalize(x).clamp(0, 1),
            y,
            pre.normalize,
            scores,
            fractions=cfg["road"]["fractions"],
            orders=cfg["road"]["orders"],
            noise=cfg["road"]["noise"],
            seed=cfg["seed"],
            batch_size=int(cfg["batch_size"]),
        )
    return out


def roar_section(models: list[Loaded], cfg, progress: ProgressFn | None) -> dict:
    """ROAR per model: its maps rank the pixels; a fresh network of the same architecture is retrained."""
    from backend.data.shapes import make_shapes
    from backend.models import zoo

    rc = cfg["roar"]
    out = {}
    for i, loaded in enumerate(models):
        card, pre = loaded.card, loaded.preprocessing
        size = loaded.input_size
        device = next(loaded.model.parameters()).device
        x_tr, y_tr, _ = make_shapes(int(rc["n_train"]), size, cfg["seed"] + 11)
        x_te, y_te, _ = make_shapes(int(cfg["images"]), size, cfg["seed"] + 12)
        x_tr, y_tr, x_te, y_te = x_tr.to(device), y_tr.to(device), x_te.to(device), y_te.to(device)
        bs = int(cfg["batch_size"])

        def retrain(xn, yn, card=card, device=device):
            """A fresh network of the card's architecture, trained as `train_shapes` does (Adam with a
            one-cycle schedule, half of each batch mirrored). On untouched shapes: 2048 images x 4 epochs
            52% without schedule and mirroring, 66% with them; 4096 x 10 (the defaults) 97.7%."""
            torch.manual_seed(cfg["seed"])
            net = zoo.build(card.architecture, card.num_classes, **(card.arch_options or {})).to(device)
            bsz, epochs = int(rc["batch_size"]), int(rc["epochs"])
            opt = torch.optim.Adam(net.parameters(), lr=float(rc["lr"]))
            sched = torch.optim.lr_scheduler.OneCycleLR(
                opt, float(rc["lr"]), total_steps=epochs * -(-len(xn) // bsz)
            )
            g = torch.Generator().manual_seed(cfg["seed"])
            for _ in range(epochs):
                net.train()
                order = torch.randperm(len(xn), generator=g)
                for i in range(0, len(xn), bsz):
                    idx = order[i : i + bsz]
                    flip = (torch.rand(len(idx), generator=g) < 0.5).to(device).view(-1, 1, 1, 1)
                    xb = torch.where(flip, xn[idx].flip(-1), xn[idx])
                    loss = torch.nn.functional.cross_entropy(net(xb), yn[idx])
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    sched.step()
            return net.eval()

        train_scores = {
            m: _maps(loaded.model, pre.normalize(x_tr), y_tr, m, bs, cfg["seed"] + 1) for m in cfg["methods"]
        }
        test_scores = {
            m: _maps(loaded.model, pre.normalize(x_te), y_te, m, bs, cfg["seed"] + 2) for m in cfg["methods"]
        }
        out[card.id] = faithfulness.roar(
            retrain,
            (x_tr, y_tr),
            (x_te, y_te),
            pre.normalize,
            {k: v.to(device) for k, v in train_scores.items()},
            {k: v.to(device) for k, v in test_scores.items()},
            fractions=rc["fractions"],
            batch_size=bs,
            progress=within(progress, i / len(models), (i + 1) / len(models), f"{card.name}: "),
        )
    return out


def evaluate_defences(
    config: dict[str, Any], progress: ProgressFn | None = None, registry=None
) -> dict[str, Any]:
    """Run the chosen sections; `progress` (`backend.progress`) hears as they advance. Returns the
    result."""
    from backend.models.registry import Registry

    registry = registry or Registry()
    cfg = normalize_config(config, registry)
    device = torch.device(get_settings().device)
    models = [open_model(cfg["base"], device, registry)]
    models += [open_model(cid, device, registry) for cid in cfg["defended"]]
    sections = [s for s in SECTIONS if s in cfg["sections"]]
    if "alignment" in sections and "accuracy" not in sections:
        sections.insert(0, "accuracy")

    x, y = _images(cfg, models[0], device)
    result: dict[str, Any] = {
        "config": copy.deepcopy(cfg),
        "models": [_describe(m, "base" if i == 0 else "defended") for i, m in enumerate(models)],
        "images": int(len(x)),
    }
    for k, section in enumerate(sections):
        part = within(progress, k / len(sections), min((k + 1) / len(sections), 0.999))
        report(part, 0, 1, f"{section}…")
        if section == "accuracy":
            result["accuracy"], result["similarity"] = accuracy_section(models, x, y, cfg)
        elif section == "fooling":
            result["fooling"] = fooling_section(models, cfg, registry, part)
        elif section == "input_attacks":
            result["input_attacks"] = input_attack_section(models, x, y, cfg)
        elif section == "alignment":
            result["alignment"] = alignment_section(models, result["accuracy"])
        elif section == "road":
            result["road"] = road_section(models, x, y, cfg)
        elif section == "roar":
            result["roar"] = roar_section(models, cfg, part)
    report(progress, 1.0, 1.0, "done")
    return result


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}"


def format_result(result: dict[str, Any]) -> str:
    """The tables as text: accuracy, defence vs fooling, input attacks, alignment, ROAD, ROAR."""
    names = {m["id"]: (m["defence"] or "base") for m in result["models"]}
    lines: list[str] = []
    if "accuracy" in result:
        lines += [
            "Accuracy (%), gradient norm, alignment",
            f"{'model':14s}{'clean':>8s}{'agree':>8s}{'robust':>8s}{'|grad|':>9s}{'align':>8s}",
        ]
        for cid, r in result["accuracy"].items():
            lines.append(
                f"{names[cid]:14s}{_pct(r['clean']):>8s}{_pct(r['agreement']):>8s}{_pct(r['robust']):>8s}"
                f"{r['grad_norm']:>9.2f}{r['alignment']:>8.2f}"
            )
        for cid, per in result.get("similarity", {}).items():
            lines.append(
                f"  maps vs base, {names[cid]}: "
                + ", ".join(f"{m} Spearman {v['spearman']:.2f}" for m, v in per.items())
            )
        lines.append("")
    if "fooling" in result:
        f = result["fooling"]
        lines += [
            f"Does the defence stop the fooling? preset {f['preset']}, {f['steps']} steps",
            f"{'model':14s}{'FSR':>8s}{'steps':>8s}{'top-1':>14s}{'cost':>8s}",
        ]
        for cid, r in f["rows"].items():
            steps = "-" if r["steps_to_reach"] is None else str(r["steps_to_reach"])
            lines.append(
                f"{names[cid]:14s}{_pct(r['fsr']):>8s}{steps:>8s}"
                f"{_pct(r['top1_before']) + ' -> ' + _pct(r['top1_after']):>14s}{100 * r['top1_cost']:>8.1f}"
            )
        lines += [
            f"(steps: first validation with FSR >= {_pct(next(iter(f['rows'].values()))['reach'])}%)",
            "",
        ]
    if "input_attacks" in result:
        lines.append("Input attacks on explanations: top-k intersection / Spearman with the original map")
        for cid, per in result["input_attacks"].items():
            lines.append(
                f"{names[cid]:14s}"
                + "  ".join(f"{a} {v['topk_intersection']:.2f}/{v['spearman']:.2f}" for a, v in per.items())
            )
        lines.append("")
    if "alignment" in result:
        lines.append("Alignment |<x, g>| / ||g|| against epsilon")
        lines += [
            f"  {p['norm']:5s} eps {p['epsilon']:.4g}: {p['alignment']:.3f}"
            for p in result["alignment"]["points"]
        ]
        lines.append("")
    for key, title in (("road", "ROAD accuracy (%)"), ("roar", "ROAR accuracy (%)")):
        for cid, r in result.get(key, {}).items():
            head = " ".join(f"{int(100 * f):>5d}%" for f in r["fractions"])
            lines.append(f"{title}, {names[cid]} (clean {_pct(r['clean'])}); removed: {head}")
            for order in ("morf", "lerf"):
                for method, accs in r.get(order, {}).items():
                    lines.append(f"  {order} {method:14s}" + " ".join(f"{_pct(a):>6s}" for a in accs))
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def summary(result: dict[str, Any]) -> dict[str, Any]:
    """A small JSON summary for the job record: FSR and clean accuracy per model."""
    out: dict[str, Any] = {}
    for m in result["models"]:
        row: dict[str, Any] = {"defence": m["defence"] or "base"}
        if "accuracy" in result:
            row["clean"] = result["accuracy"][m["id"]]["clean"]
        if "fooling" in result:
            row["fsr"] = result["fooling"]["rows"][m["id"]]["fsr"]
        out[m["id"]] = row
    if "road" in result:
        out["road_morf_mean"] = {
            cid: {meth: fmean(a) for meth, a in r["morf"].items()} for cid, r in result["road"].items()
        }
    return out
