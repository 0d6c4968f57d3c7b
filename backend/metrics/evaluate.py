"""evaluate(config): FSR table, transfer matrix, accuracy table and per-image similarity arrays.

Config: `baseline` (checkpoint id), `fooled` (id or list of ids, each a fooled child with its FoolConfig
in the card), optional `dataset` (default: the very held-out split the trainer validated on),
`interpreters` (FSR measured with each; default the fooled interpreters plus gradient), `images`
(at most this many), `batch_size`. The layout follows Krishna2021 Table 2: rows = interpreter measured,
columns = fooled model (attack / interpreter it was fooled with).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from backend.config import get_settings
from backend.data.datasets import build_dataset
from backend.errors import InvalidConfig
from backend.fool.config import FoolConfig
from backend.fool.data import load_fooling_data, stack
from backend.fool.losses import FOOLING_ATTACKS
from backend.fool.objective import Interpreter, per_image_test_losses
from backend.metrics import accuracy as acc
from backend.metrics.fsr import fsr
from backend.metrics.similarity import SIMILARITIES
from backend.progress import ProgressFn
from backend.progress import report as report_progress

if TYPE_CHECKING:
    from backend.models.checkpoint import Checkpoint

DEFAULTS: dict[str, Any] = {
    "baseline": None,
    "fooled": None,
    "dataset": None,
    "interpreters": None,
    "images": 128,
    "batch_size": 32,
}


def normalize_config(config: dict[str, Any], registry) -> dict[str, Any]:
    """Fill defaults and check the checkpoints exist and are fooled children; raises InvalidConfig."""
    from backend.errors import CheckpointNotFound
    from backend.explain import METHODS

    unknown = set(config) - set(DEFAULTS)
    if unknown:
        raise InvalidConfig(f"Unknown evaluate setting(s) {sorted(unknown)}; known: {', '.join(DEFAULTS)}.")
    cfg = {**DEFAULTS, **config}
    if not cfg["baseline"]:
        raise InvalidConfig("evaluate needs a baseline checkpoint id.")
    if not cfg["fooled"] and cfg["dataset"] is None:
        raise InvalidConfig(
            "Without a fooled checkpoint, evaluate measures the baseline's accuracy on a dataset: give one "
            "(e.g. a folder of class folders named after the model's classes)."
        )
    cfg["fooled"] = [cfg["fooled"]] if isinstance(cfg["fooled"], str) else list(cfg["fooled"] or [])
    for cid in [cfg["baseline"], *cfg["fooled"]]:
        try:
            registry.card(cid)
        except CheckpointNotFound as err:
            raise InvalidConfig(f"Unknown checkpoint {cid!r}: {err}") from err
    for cid in cfg["fooled"]:
        if not registry.card(cid).config.get("attack"):
            raise InvalidConfig(f"Checkpoint {cid} has no fooling config in its card; is it a fooled model?")
    if cfg["interpreters"] is None:
        used = [registry.card(c).config["interpreter"] for c in cfg["fooled"]]
        cfg["interpreters"] = list(dict.fromkeys([*used, "gradient"])) if used else []
    bad = [m for m in cfg["interpreters"] if m not in METHODS]
    if bad:
        raise InvalidConfig(f"Unknown interpreter(s) {bad}; choose among {', '.join(METHODS)}.")
    if int(cfg["images"]) < 1:
        raise InvalidConfig("images must be >= 1.")
    if cfg["dataset"] is not None:
        from backend.data.datasets import label_check
        from backend.errors import InvalidDataset

        try:
            label_check(cfg["dataset"], list(registry.card(cfg["baseline"]).classes))
        except InvalidDataset as err:
            raise InvalidConfig(f"dataset: {err}") from err
    return cfg


def judging_interpreter(fc: FoolConfig, method: str) -> Interpreter:
    """The interpreter that measures `method` on a model fooled with `fc`: the very interpreter of the
    run (parameters, layer, normalisation) when it is the fooled one, else the method's defaults at the
    run's layer; always plain ReLU maps (the run's softplus was a training device)."""
    if method == fc.interpreter:
        return Interpreter(method, dict(fc.interpreter_params), fc.layer, fc.normalization)
    from backend.explain import METHODS

    return Interpreter(method, {}, fc.layer if METHODS[method].layer_based else None)


def _logits(model, x: torch.Tensor, batch: int) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([model(x[i : i + batch]) for i in range(0, len(x), batch)])


def _heatmaps(model, x, labels, interp: Interpreter, batch: int) -> torch.Tensor:
    out = []
    for i in range(0, len(x), batch):
        maps, _ = interp.heatmaps(model, x[i : i + batch], [labels[i : i + batch]], create_graph=False)
        out.append(maps[0].cpu())
    return torch.cat(out)


def evaluate(config: dict[str, Any], progress: ProgressFn | None = None, registry=None) -> dict:
    """Compute the report; `progress(Progress(done, total, message))` after each (model, interpreter)."""
    from backend.models.registry import Registry

    registry = registry or Registry()
    cfg = normalize_config(config, registry)
    device = torch.device(get_settings().device)
    base = registry.get(cfg["baseline"], device=device)
    baseline = base.fresh_model()
    x, labels, source = _images(cfg, base, registry, device)
    bs = int(cfg["batch_size"])
    base_logits = _logits(baseline, x, bs)
    targets = torch.where(labels >= 0, labels, base_logits.argmax(1))
    report: dict[str, Any] = {
        "baseline": cfg["baseline"],
        "images": int(len(x)),
        "labelled": int((labels >= 0).sum()),
        **source,
        "interpreters": cfg["interpreters"],
        "models": [],
        "fsr": {},
        "accuracy": {"baseline": _accuracy_row(base_logits, labels, base_logits)},
        "similarity": {},
    }
    steps = len(cfg["fooled"]) * len(cfg["interpreters"])
    done = 0
    for cid in cfg["fooled"]:
        fooled = registry.get(cid, device=device)
        model, card = fooled.fresh_model(), fooled.card
        fc = FoolConfig.from_dict(card.config)
        attack = FOOLING_ATTACKS[fc.attack]
        attack_cfg = attack.setup(fc.attack_params, x.shape[-1], card.num_classes)
        column = f"{fc.attack}/{fc.interpreter}"
        report["models"].append(
            {"id": cid, "name": card.name, "attack": fc.attack, "interpreter": fc.interpreter}
        )
        logits = _logits(model, x, bs)
        row = _accuracy_row(logits, labels, base_logits)
        if fc.attack == "active":
            row["per_class"] = {
                "baseline": acc.per_class_accuracy(base_logits, labels, [attack_cfg["c1"], attack_cfg["c2"]]),
                "fooled": acc.per_class_accuracy(logits, labels, [attack_cfg["c1"], attack_cfg["c2"]]),
            }
        report["accuracy"][cid] = row
        weights = attack.weights(labels, attack_cfg).bool().cpu()
        if not weights.any():
            report.setdefault("notes", []).append(_no_judged_images(column, fc))
        for method in cfg["interpreters"]:
            interp = judging_interpreter(fc, method)
            kwargs = {"attack": attack, "attack_cfg": attack_cfg, "interpreter": interp, "batch_size": bs}
            t_fooled = per_image_test_losses(model, baseline, x, labels, **kwargs)[weights]
            t_base = per_image_test_losses(baseline, baseline, x, labels, **kwargs)[weights]
            report["fsr"].setdefault(method, {})[column] = {
                "fooled": fsr(t_fooled, attack.criterion(attack_cfg)) if len(t_fooled) else None,
                "baseline": fsr(t_base, attack.criterion(attack_cfg)) if len(t_base) else None,
                "images": int(len(t_fooled)),
                "test_loss_fooled": t_fooled.tolist(),
                "test_loss_baseline": t_base.tolist(),
            }
            h_base = _heatmaps(baseline, x, targets, interp, bs)
            h_fool = _heatmaps(model, x, targets, interp, bs)
            report["similarity"].setdefault(method, {})[column] = {
                name: fn(h_base, h_fool).tolist() for name, fn in SIMILARITIES.items()
            }
            done += 1
            report_progress(progress, done, steps, f"{column}: FSR with {method} done")
    return report


def _images(
    cfg: dict, base: Checkpoint, registry, device
) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    """The evaluation images, their labels (the baseline's class indices) and where they came from."""
    if cfg["dataset"] is None:
        first = FoolConfig.from_dict(registry.card(cfg["fooled"][0]).config)
        data = load_fooling_data(first, base, device)
        x, labels = data.report_x[: cfg["images"]], data.report_y[: cfg["images"]]
        where = f"the first fooled run's held-out images that reported its result ({data.source})"
        return x, labels, {"source": where, "available": int(len(data.report_x)), "mapping": []}
    ds = build_dataset(cfg["dataset"], base.image_preprocessing, base.classes)
    x, labels = stack(ds, cfg["images"], device)
    mapping = getattr(ds, "mapping", None)
    return (
        x,
        labels,
        {
            "source": _describe_spec(cfg["dataset"]),
            "available": len(ds),
            "mapping": mapping.describe() if mapping is not None else [],
        },
    )


def _describe_spec(spec: dict) -> str:
    if spec.get("kind") == "folder":
        return f"folder {spec.get('path')}"
    options = ", ".join(f"{k}={v}" for k, v in spec.items() if k != "kind")
    return f"{spec.get('kind')} ({options})" if options else str(spec.get("kind"))


def _accuracy_row(logits: torch.Tensor, labels: torch.Tensor, base_logits: torch.Tensor) -> dict[str, float]:
    return {
        "top1": acc.topk_accuracy(logits, labels, 1),
        "top5": acc.topk_accuracy(logits, labels, 5),
        "agreement": acc.agreement(logits, base_logits),
        "probability_mse": acc.probability_mse(logits, base_logits),
    }


def _no_judged_images(column: str, fc: FoolConfig) -> str:
    what = {
        "unlabelled": "unlabelled two-object images (a shapes spec with 'pair')",
        "labelled": "images labelled with the two classes",
    }.get(fc.attack_params.get("images", ""), "images the attack is judged on")
    return f"{column}: no FSR: none of these images is one of the {what} the attack is judged on."


def format_report(report: dict) -> str:
    """The three tables as text, laid out as Krishna2021 Tables 2 and 3."""
    cols = [f"{m['attack']}/{m['interpreter']}" for m in report["models"]]
    width = max([14, *(len(c) + 2 for c in cols)])
    lines = _source_lines(report)
    if not cols:
        return "\n".join(lines)
    lines += [f"FSR (%) on {report['images']} images: fooled (baseline)", ""]
    lines.append("measured with".ljust(16) + "".join(c.rjust(width) for c in cols))
    for method, row in report["fsr"].items():
        cells = []
        for c in cols:
            v = row.get(c)
            text = "-" if not v else "n/a" if v["fooled"] is None else f"{100 * v['fooled']:.1f}"
            if v and v["baseline"] is not None:
                text += f" ({100 * v['baseline']:.1f})"
            cells.append(text.rjust(width))
        lines.append(method.ljust(16) + "".join(cells))
    lines += report.get("notes", [])
    lines += [
        "",
        "Accuracy (%)".ljust(16) + "Pretrained".rjust(width) + "".join(c.rjust(width) for c in cols),
    ]
    ids = [m["id"] for m in report["models"]]
    for key in ("top1", "top5", "agreement"):
        row = [report["accuracy"]["baseline"][key], *(report["accuracy"][i][key] for i in ids)]
        lines.append(key.ljust(16) + "".join(_percent(v, "n/a").rjust(width) for v in row))
    lines.append(
        "prob. MSE".ljust(16)
        + "0".rjust(width)
        + "".join(f"{report['accuracy'][i]['probability_mse']:.2e}".rjust(width) for i in ids)
    )
    for i, c in zip(ids, cols, strict=True):
        per = report["accuracy"][i].get("per_class")
        if per:
            pairs = ", ".join(
                f"class {k}: {_percent(per['baseline'][k])} -> {_percent(per['fooled'][k])}"
                for k in per["fooled"]
            )
            lines.append(f"{c} per-class accuracy: {pairs}")
    return "\n".join(lines)


def _source_lines(report: dict) -> list[str]:
    """Which images, how many, how they were labelled, and the baseline's accuracy on them."""
    n, available = report["images"], report.get("available", report["images"])
    cap = f" (the first {n} of {available})" if available > n else ""
    source, labelled = report.get("source", "the dataset"), report.get("labelled", n)
    lines = [f"Images: {n} from {source}{cap}, {labelled} labelled"]
    mapping = report.get("mapping") or []
    if mapping:
        lines.append("Class folders -> the model's classes:")
        lines += [f"  {line}" for line in mapping]
    base = report["accuracy"]["baseline"]
    top1, top5 = (_percent(base[k], "n/a (no labelled images)", "%") for k in ("top1", "top5"))
    lines.append(f"Baseline top-1 {top1}, top-5 {top5}")
    return [*lines, ""]


def _percent(value: float, none: str = "n/a (no labelled image of it)", unit: str = "") -> str:
    """An accuracy in %, or `none` for NaN: no labelled image (of that class), e.g. only two-object
    images."""
    return none if value != value else f"{100 * value:.1f}{unit}"
