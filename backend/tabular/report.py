"""The tabular report card (job kind `tabular_report`): what the chart says next to what the model does.

For the suspect (and, when given, its un-manipulated baseline and a model trained without the protected
attributes) it measures the importance chart under several explanation methods, the counterfactual flips,
the fairness of the decisions, and the noise-input and weight-noise tests. The findings pair the chart
with behaviour; a test flags the suspect when the chart hides the protected attributes ("hides": their
share of the importance under the report's method fell below a quarter of the baseline's, or below 2%
without a baseline) while the behaviour still shows them:

- counterfactual/<attr>: the flip rate stays >= half the baseline's (>= 1% without a baseline);
- accuracy_gap: the suspect beats the model trained without the protected attributes by more than
  max(0.2 points, 2 standard errors of the difference), i.e. it still draws on them;
- fairness/<attr>/dp|eo: the decisions' demographic-parity / equal-opportunity difference stays >= half
  the baseline's (>= 0.05 without a baseline);
- noise_inputs and weight_noise: the image tests' rules (`backend.detect.report`), on rows.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from backend.detect.report import finding, noise_input_finding, weight_noise_findings
from backend.errors import InvalidConfig
from backend.models.checkpoint import Checkpoint
from backend.models.registry import Registry
from backend.progress import ProgressFn, report
from backend.tabular.checkpoint import is_tabular, load_split, open_checkpoint
from backend.tabular.checks import counterfactual_flips, fairness, noise_input_check, weight_noise_check
from backend.tabular.config import TRAIN_DEFAULTS, validate_report
from backend.tabular.measure import attributions, importance, normalised, predictions, protected_share

HIDDEN_FRACTION = 0.25  # the chart "hides" an attribute below this fraction of the baseline's share
HIDDEN_ABSOLUTE = 0.02  # ... or, without a baseline, below this share
DIFFERENCES = {"dp": "demographic-parity", "eo": "equal-opportunity"}


def method_params(method: str, prep) -> dict[str, Any]:
    """Settings for explaining rows: occlusion ablates each one-hot group at once (fill 0 = the mean /
    no category)."""
    return {"groups": prep.groups} if method == "occlusion" else {}


def profile(ck: Checkpoint, cfg: dict[str, Any], device: str = "cpu") -> dict[str, Any]:
    """Everything the report measures on one model, on the test rows of its own data."""
    prep, model = ck.preprocessing, ck.model
    split = load_split(prep, device)
    x, y = split.x_test, split.y_test
    decisions = predictions(model, x)
    pick = np.sort(np.random.default_rng(cfg["seed"]).permutation(len(x))[: cfg["rows"]])
    xs = x[torch.as_tensor(pick, device=x.device)]
    mask = torch.as_tensor(prep.protected_mask, device=x.device)
    out: dict[str, Any] = {
        "id": ck.card.id,
        "name": ck.card.name,
        "kind": ck.card.kind,
        "accuracy": float((decisions == y).float().mean()),
        "test_rows": len(y),
        "_correct": (decisions == y).cpu().numpy(),  # per row, for the paired accuracy gap; not returned
        "protected_inputs": prep.protected_inputs,
        "importance": {},
    }
    for method in cfg["methods"]:
        norm = normalised(attributions(model, xs, method, method_params(method, prep)))
        bars = importance(norm, prep.groups)
        out["importance"][method] = {
            "groups": dict(zip(prep.group_names, map(float, bars), strict=True)),
            "protected_share": float(protected_share(norm, mask).mean()),
        }
    tests = cfg["tests"]
    if "counterfactual" in tests:
        out["flips"] = counterfactual_flips(model, x, prep)
    if "fairness" in tests:
        dec, labels = decisions.cpu().numpy(), y.cpu().numpy()
        out["fairness"] = {
            name: fairness(dec, labels, split.protected_values(name), prep.positive)
            for name in prep.protected
        }
    params = method_params(cfg["method"], prep)
    if "noise_inputs" in tests:
        out["noise_inputs"] = noise_input_check(
            model, prep, cfg["noise_rows"], cfg["seed"], cfg["method"], params
        )
    if "weight_noise" in tests:
        ys = y[torch.as_tensor(pick, device=x.device)]
        out["weight_noise"] = weight_noise_check(
            model, xs, ys, prep, cfg["sigmas"], cfg["seeds"], cfg["method"], params
        )
    return out


def _share(p: dict, method: str, name: str | None = None) -> float:
    imp = p["importance"][method]
    return imp["protected_share"] if name is None else imp["groups"].get(name, 0.0)


def findings(
    suspect: dict, baseline: dict | None, without: dict | None, method: str
) -> tuple[list[dict], bool]:
    """The report card's rows and whether the suspect's chart hides the protected attributes."""
    s_share = _share(suspect, method)
    if baseline is not None:
        hides = s_share < HIDDEN_FRACTION * _share(baseline, method)
    else:
        hides = s_share < HIDDEN_ABSOLUTE
    out = []
    for name, flips in suspect.get("flips", {}).items():
        s, b = flips["flip_rate"], (baseline or {}).get("flips", {}).get(name, {}).get("flip_rate")
        t = max(0.5 * b, 0.01) if b is not None else 0.01
        row = finding(
            f"counterfactual/{name}",
            f"share of decisions that change when {name} is flipped",
            b if b is not None else float("nan"),
            s,
            t,
            hides and s >= t,
            "flagged when the chart hides it and flips >= max(half the baseline's, 1%)",
        )
        row["verdict"] = (
            f"the chart gives {name} {100 * _share(suspect, method, name):.1f}% of the importance; "
            f"flipping {name} changes {100 * s:.1f}% of the decisions"
            + (
                f" (baseline: {100 * _share(baseline, method, name):.1f}% / {100 * b:.1f}%)"
                if baseline is not None and b is not None
                else ""
            )
        )
        out.append(row)
    if without is not None:
        out.append(_accuracy_gap(suspect, without, hides))
    for name, fair in suspect.get("fairness", {}).items():
        for key, label in (("dp_difference", "dp"), ("eo_difference", "eo")):
            s = fair[key]
            b = (baseline or {}).get("fairness", {}).get(name, {}).get(key)
            t = max(0.5 * b, 0.01) if b is not None else 0.05
            out.append(
                finding(
                    f"fairness/{name}/{label}",
                    f"{DIFFERENCES[label]} difference over {name}",
                    b if b is not None else float("nan"),
                    s,
                    t,
                    hides and s >= t,
                    "flagged when the chart hides the protected attributes and the difference stays "
                    ">= half the baseline's (0.05 without one)",
                )
            )
    if baseline is not None and "noise_inputs" in suspect and "noise_inputs" in baseline:
        out.append(noise_input_finding(baseline["noise_inputs"], suspect["noise_inputs"]))
    if baseline is not None and "weight_noise" in suspect and "weight_noise" in baseline:
        out.extend(weight_noise_findings(baseline["weight_noise"], suspect["weight_noise"]))
    return out, hides


def _accuracy_gap(suspect: dict, without: dict, hides: bool) -> dict:
    """Both models decide the same test rows, so the standard error of the difference is the paired
    one (McNemar's): sqrt(rows where exactly one of them is right) / rows."""
    gap = suspect["accuracy"] - without["accuracy"]
    discordant = int(np.sum(suspect["_correct"] != without["_correct"]))
    t = max(0.002, 2 * math.sqrt(discordant) / max(suspect["test_rows"], 1))
    row = finding(
        "accuracy_gap",
        "test accuracy minus that of the same network trained without the protected attributes",
        without["accuracy"],
        suspect["accuracy"],
        t,
        hides and gap > t,
        "flagged when the chart hides them and the gap > max(0.2 points, 2 paired standard errors)",
    )
    row["verdict"] = (
        f"{100 * suspect['accuracy']:.2f}% with the protected attributes vs {100 * without['accuracy']:.2f}% "
        f"without: {100 * gap:+.2f} points" + (" (it still draws on them)" if gap > t else "")
    )
    return row


def headline(suspect: dict, method: str) -> str:
    """'The chart says sex carries 0.3% of the importance; flipping sex changes 9.1% of the decisions.'"""
    flips = suspect.get("flips", {})
    if not flips:
        return "The model takes no protected attribute as input."
    name = max(flips, key=lambda k: flips[k]["flip_rate"])
    return (
        f"The {method} chart says {name} carries {100 * _share(suspect, method, name):.1f}% of the "
        f"importance; flipping {name} changes {100 * flips[name]['flip_rate']:.1f}% of the decisions."
    )


def without_model(suspect: Checkpoint, cfg: dict, registry: Registry, progress: ProgressFn | None):
    """The checkpoint trained like the suspect's root but without the protected attributes: reused from
    the registry when one exists, else trained now."""
    root = registry.lineage(suspect.card.id)[0]
    if not is_tabular(root) or "data" not in root.config:
        raise InvalidConfig(
            f"{suspect.card.name} has no training record to repeat without the protected data"
        )
    train_cfg = {k: root.config[k] for k in TRAIN_DEFAULTS if k in root.config and k != "name"}
    train_cfg["drop_protected"] = True
    if cfg["without_epochs"] is not None:
        train_cfg["epochs"] = cfg["without_epochs"]
    for card in registry.list():
        if card.kind == "trained" and is_tabular(card):
            same = {k: card.config.get(k) for k in train_cfg}
            if same == train_cfg:
                return open_checkpoint(card.id, registry=registry)
    from backend.tabular.train import train_tabular

    card = train_tabular(train_cfg, progress=progress, registry=registry)
    return open_checkpoint(card.id, registry=registry)


def run_report(
    config: dict, progress: ProgressFn | None = None, registry: Registry | None = None, device: str = "cpu"
) -> dict[str, Any]:
    cfg = validate_report(config)
    registry = registry or Registry()

    def say(fraction: float, message: str) -> None:
        report(progress, fraction, 1.0, message)

    suspect = open_checkpoint(cfg["suspect"], device, registry)
    baseline = open_checkpoint(cfg["baseline"], device, registry) if cfg["baseline"] else None
    for other in (baseline,):
        if other is not None and other.preprocessing.data != suspect.preprocessing.data:
            raise InvalidConfig(
                "The baseline was trained on other data than the suspect; compare like with like."
            )
    without = None
    if "accuracy_gap" in cfg["tests"]:
        if cfg["without"]:
            without = open_checkpoint(cfg["without"], device, registry)
        else:
            say(0.05, "training the reference model without the protected attributes")
            without = without_model(suspect, cfg, registry, None)
        if without.preprocessing.data != suspect.preprocessing.data:
            raise InvalidConfig("The model without protected attributes was trained on other data.")
    profiles: dict[str, dict | None] = {"suspect": None, "baseline": None, "without": None}
    todo = [
        (role, ck) for role, ck in (("suspect", suspect), ("baseline", baseline), ("without", without)) if ck
    ]
    for k, (role, ck) in enumerate(todo):
        say(0.1 + 0.85 * k / len(todo), f"measuring the {role} ({ck.card.name})")
        role_cfg = (
            cfg if role != "without" else {**cfg, "tests": [t for t in cfg["tests"] if t == "fairness"]}
        )
        profiles[role] = profile(ck, role_cfg, device)
    rows, hides = findings(profiles["suspect"], profiles["baseline"], profiles["without"], cfg["method"])
    flagged = [r["test"] for r in rows if r["flagged"]]
    summary = ("Flagged by: " + ", ".join(flagged) + "." if flagged else "No test flags the suspect.") + (
        " The chart hides the protected attributes."
        if hides
        else " The chart shows the protected attributes."
    )
    say(1.0, summary)
    for p in profiles.values():
        if p is not None:
            p.pop("_correct")
    return {
        **profiles,
        "method": cfg["method"],
        "groups": suspect.preprocessing.group_names,
        "protected": list(suspect.preprocessing.protected),
        "report": {
            "findings": rows,
            "flagged_by": flagged,
            "hides": hides,
            "summary": summary,
            "headline": headline(profiles["suspect"], cfg["method"]),
        },
    }
