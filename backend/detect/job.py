"""The "detect" job kind: run the detection tests on a suspect (and a baseline) checkpoint, build the
report card, and publish the numbers for the Detect page's charts."""

from __future__ import annotations

import io

import numpy as np
import torch

from backend.detect.heatmaps import predictions, scaled_heatmaps
from backend.detect.inputs import (
    check_checkpoint,
    check_method,
    load_images,
    merged,
    open_checkpoint,
    own_dataset,
)
from backend.detect.noise_inputs import noise_input_test
from backend.detect.options import TESTS, test_defaults
from backend.detect.randomization import cascading_randomization
from backend.detect.reference import similarity_report
from backend.detect.references import reference_for, save_reference
from backend.detect.report import report_card
from backend.detect.weight_noise import MODES, weight_noise_sweep
from backend.errors import InvalidConfig
from backend.jobs.kinds import JobContext, JobKind, register_kind
from backend.progress import Progress, ProgressFn, report, within

DEFAULTS: dict = {
    "suspect": None,
    "baseline": None,  # the un-manipulated checkpoint the suspect is compared with
    "reference": None,  # for the similarity report; defaults to the baseline
    "method": "gradient",
    "params": {},
    "tests": list(TESTS),
    "dataset": None,  # None: the suspect's own kind of images (detect.inputs.own_dataset)
    "images": 32,
    # keep the suspect's results as the clean reference of its architecture and method (detect.references):
    # a later card without a clean twin compares with them
    "save_reference": False,
    **test_defaults(),  # noise_inputs, weight_noise, randomization: as backend.detect.options declares
}


def _validate(config: dict) -> dict:
    cfg = merged(DEFAULTS, config)
    cfg["suspect"] = check_checkpoint(cfg["suspect"], "suspect")
    for role in ("baseline", "reference"):
        if cfg[role] is not None:
            cfg[role] = check_checkpoint(cfg[role], role)
    cfg["reference"] = cfg["reference"] or cfg["baseline"]
    cfg["dataset"] = own_dataset(cfg["suspect"], cfg["dataset"], int(cfg["images"]), 123)
    check_method(cfg["method"])
    bad = [t for t in cfg["tests"] if t not in TESTS]
    if bad or not cfg["tests"]:
        raise InvalidConfig(f"Choose tests among {list(TESTS)} (got {cfg['tests']}).")
    wn = cfg["weight_noise"]
    if wn["mode"] not in MODES:
        raise InvalidConfig(f"Weight-noise mode must be one of {MODES}.")
    if not wn["sigmas"] or any(float(s) < 0 for s in wn["sigmas"]) or not wn["seeds"]:
        raise InvalidConfig("Weight noise needs sigmas >= 0 and at least one seed.")
    if int(cfg["noise_inputs"]["n"]) < 2 or int(cfg["images"]) < 1 or int(cfg["randomization"]["images"]) < 1:
        raise InvalidConfig("Use at least 2 noise inputs and at least 1 image.")
    return cfg


def _card(results: dict, scard, cfg: dict) -> dict | None:
    """The report card against the clean twin, else against the architecture's clean reference numbers
    (`detect.references`), saying which it used; None when there is neither (the card says how to get one)."""
    if "baseline" in results:
        card = report_card(results["baseline"], results["suspect"])
        return {**card, "compared_with": f"the clean twin {cfg['baseline']}"}
    ref = reference_for(scard.architecture, cfg["method"])
    if ref is None:
        return {
            "findings": [],
            "flagged_by": [],
            "compared_with": None,
            "summary": f"No clean twin and no reference numbers for {scard.architecture} / {cfg['method']}: "
            "give a baseline, or run this job once on a clean checkpoint of that architecture with "
            "save_reference=true.",
        }
    card = report_card(ref["results"], results["suspect"])
    return {**card, "compared_with": f"reference numbers: {ref['source']}"}


def _maps_npz(maps: dict[str, torch.Tensor]) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **{k: v.cpu().numpy().astype(np.float32) for k, v in maps.items()})
    return buf.getvalue()


def measure(
    model, x, labels, shape, cfg: dict, reference_maps, progress: ProgressFn | None = None
) -> tuple[dict, dict]:
    """Every selected test on one checkpoint; returns (JSON-able results, a few maps to show).
    `progress` hears after each test (its name as the message) and after the data maps."""
    method, params, tests = cfg["method"], cfg["params"], cfg["tests"]
    out: dict = {}
    shown: dict[str, torch.Tensor] = {}
    stages = [t for t in ("noise_inputs", "weight_noise", "randomization") if t in tests] + ["maps"]

    def done(stage: str) -> None:
        report(progress, stages.index(stage) + 1, len(stages), stage.replace("_", " "))

    if "noise_inputs" in tests:
        ni = cfg["noise_inputs"]
        res = noise_input_test(
            model, shape, int(ni["n"]), int(ni["seed"]), method, float(ni["std"]), **params
        )
        shown["noise_maps"] = res.pop("maps")[:6]
        out["noise_inputs"] = res
        done("noise_inputs")
    if "weight_noise" in tests:
        wn = cfg["weight_noise"]
        out["weight_noise"] = weight_noise_sweep(
            model,
            x,
            labels,
            wn["sigmas"],
            wn["seeds"],
            method,
            wn["mode"],
            wn["select"],
            reference_maps,
            **params,
        )
        done("weight_noise")
    if "randomization" in tests:
        n = int(cfg["randomization"]["images"])
        out["randomization"] = cascading_randomization(
            model, x[:n], method, int(cfg["randomization"]["seed"]), **params
        )
        done("randomization")
    own_maps = scaled_heatmaps(model, x, predictions(model, x), method, **params)
    if reference_maps is not None and "reference" in tests:
        out["reference"] = similarity_report(own_maps, reference_maps)
    shown["data_maps"] = own_maps[:6]
    done("maps")
    return out, shown


@register_kind
class DetectJob(JobKind):
    name = "detect"
    title = "Detect manipulation"

    def validate(self, config: dict) -> dict:
        return _validate(config)

    def run(self, config: dict, ctx: JobContext) -> dict:
        cfg = _validate(config)
        suspect = open_checkpoint(cfg["suspect"], ctx.device)
        scard = suspect.card
        x, labels = load_images(cfg["dataset"], suspect, int(cfg["images"]), ctx.device)
        shape = suspect.input_shape
        roles = [("baseline", cfg["baseline"])] if cfg["baseline"] else []
        roles.append(("suspect", cfg["suspect"]))
        reference_maps = None
        ref_wanted = "reference" in cfg["tests"] and cfg["reference"]
        if ref_wanted:
            ref_model = open_checkpoint(cfg["reference"], ctx.device).model
            reference_maps = scaled_heatmaps(
                ref_model, x, predictions(ref_model, x), cfg["method"], **cfg["params"]
            )
        results: dict = {}
        maps: dict[str, torch.Tensor] = {}
        for i, (role, ckpt) in enumerate(roles):
            model = (suspect if role == "suspect" else open_checkpoint(ckpt, ctx.device)).model

            part = within(ctx.progress, i / len(roles), (i + 1) / len(roles))

            def stage(p: Progress, role=role, part=part) -> None:
                ctx.log(f"{role}: {p.message} done")
                part(Progress(p.done, p.total, f"{role}: {p.message}"))

            ctx.progress(Progress(i / len(roles), 1.0, f"{role}: measuring"))
            results[role], shown = measure(model, x, labels, shape, cfg, reference_maps, stage)
            maps.update({f"{role}/{k}": v for k, v in shown.items()})
        summary = {"config": cfg, "suspect_name": scard.name, **results}
        if cfg["save_reference"]:
            source = f"{scard.name} ({scard.id}), {cfg['images']} images of {cfg['dataset'].get('kind')}"
            save_reference(scard.architecture, cfg["method"], results["suspect"], source)
            ctx.log(f"kept as the {scard.architecture}/{cfg['method']} reference: {source}")
        card = _card(results, scard, cfg)
        if card is not None:
            summary["report"] = card
            ctx.log(card["summary"])
            ctx.add_artifact("report", card, label="Report card")
        ctx.add_artifact("maps", _maps_npz(maps), label="detect_maps.npz")
        ctx.progress(Progress(1.0, 1.0, "done"))
        return summary
