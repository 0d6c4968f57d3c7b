"""The "decoys" job kind: decoy-enhanced saliency for a checkpoint over a few images, its fidelity and
its sensitivity to input attacks, and (given a baseline) whether the enhanced map of a fooled model is
closer to the baseline's original explanation than the raw map is."""

from __future__ import annotations

import io
from dataclasses import fields
from statistics import fmean

import numpy as np
import torch

from backend.decoys.attacks import INPUT_ATTACKS, attack_input
from backend.decoys.enhanced import GENERATORS, enhanced_saliency, saliency_maps, visualize
from backend.decoys.generate import DecoySettings
from backend.decoys.metrics import fidelity, sensitivity
from backend.decoys.options import attack_defaults
from backend.detect.inputs import (
    check_checkpoint,
    check_method,
    load_images,
    merged,
    open_checkpoint,
    own_dataset,
)
from backend.errors import InvalidConfig
from backend.jobs.kinds import JobContext, JobKind, register_kind
from backend.metrics import similarity
from backend.progress import Progress, ProgressFn, report, within

DEFAULTS: dict = {
    "checkpoint": None,
    "baseline": None,  # the un-manipulated model whose original explanations are the yardstick
    "method": "gradient",
    "params": {},
    "generator": "optimize",
    "dataset": None,  # None: the checkpoint's own kind of images (detect.inputs.own_dataset)
    "images": 4,
    "decoys": {},  # DecoySettings fields
    "attacks": [],  # any of INPUT_ATTACKS: perturb the input, compare S_S raw vs decoy-enhanced
    "attack": attack_defaults(),  # the input attacks' settings, as backend.decoys.options declares
}


def decoy_settings(values: dict) -> DecoySettings:
    """The job config's `decoys` dict as checked `DecoySettings` (`InvalidConfig` names what is wrong)."""
    known = {f.name for f in fields(DecoySettings)}
    unknown = set(values) - known
    if unknown:
        raise InvalidConfig(f"Unknown decoy settings {sorted(unknown)}; known: {sorted(known)}.")
    values = {**values, "signs": tuple(values["signs"])} if "signs" in values else values
    return DecoySettings(**values).validate()


def _validate(config: dict) -> dict:
    cfg = merged(DEFAULTS, config)
    cfg["checkpoint"] = check_checkpoint(cfg["checkpoint"], "checkpoint")
    if cfg["baseline"] is not None:
        cfg["baseline"] = check_checkpoint(cfg["baseline"], "baseline")
    check_method(cfg["method"])
    if cfg["generator"] not in GENERATORS:
        raise InvalidConfig(f"Decoy generator must be one of {sorted(GENERATORS)}.")
    bad = [a for a in cfg["attacks"] if a not in INPUT_ATTACKS]
    if bad:
        raise InvalidConfig(f"Unknown input attacks {bad}; choose among {sorted(INPUT_ATTACKS)}.")
    if int(cfg["images"]) < 1:
        raise InvalidConfig("Use at least one image.")
    settings = decoy_settings(cfg["decoys"])
    cfg["dataset"] = own_dataset(cfg["checkpoint"], cfg["dataset"], int(cfg["images"]), 321)
    size = cfg["dataset"].get("size") if isinstance(cfg["dataset"], dict) else None
    if size is not None and settings.patch > int(size):
        raise InvalidConfig(f"Decoy patch size {settings.patch} is larger than the {size} px images.")
    return cfg


def _pcc(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(similarity.pearson(a[None], b[None])[0])


def _npz(arrays: dict[str, torch.Tensor]) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **{k: v.detach().cpu().numpy().astype(np.float32) for k, v in arrays.items()})
    return buf.getvalue()


def image_row(
    model, x01, pre, cfg, settings, baseline=None, progress: ProgressFn | None = None
) -> tuple[dict, dict]:
    """Raw vs enhanced saliency of one image (C, H, W) in [0, 1], against the baseline's raw map when
    given, and of each attacked copy: (numbers, maps). `cfg` is a validated config; `progress` hears
    after the decoys and after each attack (the stage's name as the message)."""
    method, params = cfg["method"], cfg["params"]
    stages = 1 + len(cfg["attacks"])  # the decoys, then each attack
    reached = iter(range(1, stages + 1))

    def stage(name: str) -> None:
        report(progress, next(reached), stages, name)

    res = enhanced_saliency(model, x01, pre.normalize, method, settings, cfg["generator"], **params)
    d = res.decoys
    row: dict = {
        "target": res.target,
        "decoys": int(d.decoys.shape[0]),
        "trivial_decoys": d.trivial,
        "iterations_per_decoy": d.iterations / max(1, d.decoys.shape[0]),
        "max_linf_over_eps": float(d.linf.max() / d.epsilon),
        "constraint_ok": bool((d.linf <= d.epsilon * (1 + 1e-5)).all()),
        "fidelity_raw": fidelity(model, x01, res.raw, pre.normalize, res.target),
        "fidelity_enhanced": fidelity(model, x01, res.enhanced, pre.normalize, res.target),
    }
    maps = {"image": x01, "raw": res.raw, "enhanced": res.enhanced}
    if baseline is not None:
        base = visualize(saliency_maps(baseline, x01[None], pre.normalize, res.target, method, **params)[0])
        row["pcc_raw_to_baseline"] = _pcc(res.raw, base)
        row["pcc_enhanced_to_baseline"] = _pcc(res.enhanced, base)
        maps["baseline_raw"] = base
    stage("decoys")
    a = cfg["attack"]
    for name in cfg["attacks"]:
        x_hat = attack_input(
            model, x01, pre.normalize, name, method, a["epsilon"], a["steps"], a["step_size"]
        )
        hat = enhanced_saliency(
            model, x_hat, pre.normalize, method, settings, cfg["generator"], res.target, **params
        )
        with torch.no_grad():
            kept = int(model(pre.normalize(x_hat[None])).argmax(1)) == res.target
        row[f"{name}/linf"] = float((x_hat - x01).abs().max())
        row[f"{name}/label_kept"] = kept
        row[f"{name}/ss_raw"] = sensitivity(res.raw, hat.raw, x01, x_hat)
        row[f"{name}/ss_enhanced"] = sensitivity(res.enhanced, hat.enhanced, x01, x_hat)
        maps[f"{name}/image"], maps[f"{name}/raw"], maps[f"{name}/enhanced"] = x_hat, hat.raw, hat.enhanced
        stage(name)
    return row, maps


def summarise(rows: list[dict]) -> dict:
    """Means over images of every number; for the baseline comparison also how often enhanced wins."""
    keys = [k for k, v in rows[0].items() if isinstance(v, float)]
    out: dict = {f"mean_{k}": fmean(r[k] for r in rows) for k in keys}
    out["all_constraints_ok"] = all(r["constraint_ok"] for r in rows)
    for key in [k for k in rows[0] if k.endswith("/label_kept")]:
        out[f"all_{key.replace('/', '_')}"] = all(r[key] for r in rows)
    if "pcc_raw_to_baseline" in rows[0]:
        wins = sum(r["pcc_enhanced_to_baseline"] > r["pcc_raw_to_baseline"] for r in rows)
        out["enhanced_closer_to_baseline"] = f"{wins} of {len(rows)} images"
        out["enhanced_closer_share"] = wins / len(rows)
    return out


@register_kind
class DecoysJob(JobKind):
    name = "decoys"
    title = "Decoy-enhanced saliency"

    def validate(self, config: dict) -> dict:
        return _validate(config)

    def run(self, config: dict, ctx: JobContext) -> dict:
        cfg = _validate(config)
        settings = decoy_settings(cfg["decoys"])
        checkpoint = open_checkpoint(cfg["checkpoint"], ctx.device)
        model, card, pre = checkpoint.model, checkpoint.card, checkpoint.image_preprocessing
        baseline = open_checkpoint(cfg["baseline"], ctx.device).model if cfg["baseline"] else None
        x, _ = load_images(cfg["dataset"], checkpoint, int(cfg["images"]), ctx.device)
        x01 = pre.denormalize(x).clamp(0, 1)
        rows, arrays = [], {}
        n = x01.shape[0]
        for i in range(n):
            part = within(ctx.progress, i / n, (i + 1) / n)

            def stage(p: Progress, i=i, part=part) -> None:
                message = f"image {i + 1}/{n}: {p.message} done"
                ctx.log(message)
                if p.done < p.total:  # the image's last stage is reported below, with its numbers
                    part(Progress(p.done, p.total, message))

            row, maps = image_row(model, x01[i], pre, cfg, settings, baseline, stage)
            rows.append(row)
            arrays.update({f"{i}/{k}": v for k, v in maps.items()})
            ctx.log(
                f"image {i}: " + ", ".join(f"{k}={v:.3g}" for k, v in row.items() if isinstance(v, float))
            )
            metrics = {k: v for k, v in row.items() if isinstance(v, float)}
            ctx.progress(Progress(i + 1, n, f"image {i + 1}/{n} done", metrics))
        summary = {"config": cfg, "checkpoint_name": card.name, "rows": rows, "summary": summarise(rows)}
        ctx.add_artifact("table", summary["summary"], label="Decoy summary")
        ctx.add_artifact("maps", _npz(arrays), label="decoy_maps.npz")
        return summary
