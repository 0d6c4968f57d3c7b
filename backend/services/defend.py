"""The Defend page's services: the defences' settings for the form, configs validated by the job kinds,
submit, finished runs, and a run's result as tables and chart series."""

from __future__ import annotations

import time
from typing import Any

from backend.jobs.records import JobRecord
from backend.services.checkpoints import registry


def defences() -> dict[str, str]:
    """Defence name -> label, in registry order."""
    from backend.defend.defences import DEFENCES

    return {name: d.label for name, d in DEFENCES.items()}


def defence_info(name: str) -> dict[str, Any]:
    """A defence's source, description, whether it needs a reference model, and its settings
    (`backend.defend.params.describe`: default, minimum, maximum, choices, help per parameter)."""
    from backend.defend.defences import get_defence
    from backend.defend.params import describe

    d = get_defence(name)
    return {
        "label": d.label,
        "source": d.source,
        "description": d.description,
        "needs_reference": d.needs_reference,
        "params": describe(d.params),
    }


def fields(defence: str, base: str) -> list:
    """The defence's settings as form fields (`backend.forms.FieldSpec`); a reference checkpoint is a
    choice among the PGD-l2 models (`reference_choices`) when there are any."""
    from dataclasses import replace

    from backend.defend.defences import get_defence

    out = []
    for name, param in get_defence(defence).params.items():
        f = param.field(name)
        if name == "reference" and (refs := reference_choices(base)):
            labels = {c.id: c.name for c in registry().list() if c.id in refs}
            f = replace(f, kind="choice", choices=tuple(refs), labels=labels, default=refs[0], optional=False)
        out.append(f)
    return out


def run_fields(batch_size: int | None = None) -> list:
    """Batch size (the global batch), devices and device: how the defence's steps run
    (`backend.devices.run_fields`; the default batch is DefendConfig's)."""
    from backend.defend.config import DefendConfig
    from backend.devices import run_fields as fields_of_run

    return fields_of_run(batch_size or DefendConfig.batch_size)


def form_context(base: str):
    from backend.forms import FormContext

    checkpoint = registry().get(base)  # its card and sizes; the weights are not loaded
    size = checkpoint.input_size if checkpoint.modality == "image" else 0
    return FormContext(classes=checkpoint.classes, size=size)


def presets(defence: str | None = None) -> dict[str, str]:
    """Preset name -> source, the shapes presets first; only those of `defence` when given."""
    from backend.defend.presets import PRESETS

    names = [n for n, p in PRESETS.items() if defence is None or p["config"]["defence"] == defence]
    names.sort(key=lambda n: (not n.startswith("shapes-"), n))
    return {n: PRESETS[n]["source"] for n in names}


def preset_config(name: str) -> dict[str, Any]:
    from backend.defend.presets import get_preset

    return get_preset(name)


def reference_choices(base: str) -> list[str]:
    """Checkpoints that can serve as the alignment's robust reference: PGD-l2 children of `base` first,
    then any other PGD-l2 model."""
    cards = [c for c in registry().list() if c.kind == "defended" and c.config.get("defence") == "pgd_l2"]
    cards.sort(key=lambda c: (c.parent != base, c.created_at))
    return [c.id for c in cards]


def defended_children(base: str) -> list[str]:
    """Defended checkpoints whose parent is `base`, oldest first."""
    cards = [c for c in registry().list() if c.kind == "defended" and c.parent == base]
    return [c.id for c in sorted(cards, key=lambda c: c.created_at)]


def build_train_config(
    model: str, defence: str, params: dict, preset: str | None = None, run: dict | None = None, **settings
) -> dict:
    """The `defend` job's config (preset, then the form's raw values coerced by their fields: the
    defence's `params`, the `run` settings of `run_fields`), validated by the job kind (`InvalidConfig`
    says what to change)."""
    from backend.forms import coerce_all
    from backend.jobs.kinds import get_kind

    values = coerce_all(fields(defence, model), params)
    config: dict[str, Any] = {"preset": preset} if preset else {}
    config.update({"model": model, "defence": defence, "params": values})
    if run:
        config.update({k: v for k, v in coerce_all(run_fields(), run).items() if v is not None})
    config.update({k: v for k, v in settings.items() if v is not None})
    return get_kind("defend").validate(config)


def build_evaluate_config(base: str, defended: list[str], **settings) -> dict:
    """The `defend_evaluate` job's config, validated."""
    from backend.jobs.kinds import get_kind

    config = {
        "base": base,
        "defended": list(defended),
        **{k: v for k, v in settings.items() if v is not None},
    }
    return get_kind("defend_evaluate").validate(config)


def sections() -> dict[str, str]:
    from backend.defend.evaluate import DEFAULT_SECTIONS, SECTIONS

    labels = {
        "accuracy": "Clean / robust accuracy, gradient norm, alignment, map similarity",
        "fooling": "Does the defence stop the fooling? (runs the fooling preset on every model)",
        "input_attacks": "Input attacks on explanations (top-k, target region, mass centre)",
        "alignment": "Alignment metric against epsilon",
        "road": "ROAD (remove, impute, no retraining: seconds)",
        "roar": "ROAR (remove and retrain: minutes)",
    }
    return {s: labels[s] + ("" if s in DEFAULT_SECTIONS else " — not by default") for s in SECTIONS}


def submit(kind: str, config: dict, *, session=None) -> str:
    """Queue a defend / defend_evaluate job for `session` (quota and disk budget: `services.policy`)."""
    from backend.services import job_follow

    return job_follow.submit(kind, config, session=session)


def runs(base: str | None = None) -> list[JobRecord]:
    """Succeeded `defend_evaluate` jobs (of `base` when given), newest first."""
    from backend import jobs

    records = jobs.list_jobs(state="succeeded", kind="defend_evaluate", limit=200)
    records = [r for r in records if base is None or r.config.get("base") == base]
    return sorted(records, key=lambda r: r.submitted_at, reverse=True)


def run_label(record: JobRecord) -> str:
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(record.finished_at or record.submitted_at))
    n = len(record.config.get("defended", []))
    return f"{when} · {record.id} · {n} defended · {', '.join(record.config.get('sections', []))}"


def result(record: JobRecord) -> dict[str, Any]:
    """The run's whole result (the JSON file it published)."""
    from backend.services.evaluate import full_report

    return full_report(record)


def _name(result: dict, cid: str) -> str:
    m = next(m for m in result["models"] if m["id"] == cid)
    return m["defence"] or "base"


def accuracy_rows(result: dict) -> list[dict]:
    rows = []
    for cid, r in result.get("accuracy", {}).items():
        sims = result.get("similarity", {}).get(cid, {})
        rows.append(
            {
                "model": _name(result, cid),
                "clean %": round(100 * r["clean"], 1),
                "agreement %": round(100 * r["agreement"], 1),
                "under PGD %": round(100 * r["robust"], 1),
                "gradient norm": round(r["grad_norm"], 3),
                "alignment": round(r["alignment"], 3),
                **{f"{m} Spearman vs base": round(v["spearman"], 3) for m, v in sims.items()},
            }
        )
    return rows


def fooling_rows(result: dict) -> list[dict]:
    f = result.get("fooling")
    if not f:
        return []
    return [
        {
            "model": _name(result, cid),
            "FSR %": round(100 * r["fsr"], 1),
            f"steps to FSR {round(100 * r['reach'])}%": r["steps_to_reach"],
            "top-1 before %": round(100 * r["top1_before"], 1),
            "top-1 after %": round(100 * r["top1_after"], 1),
            "top-1 cost (points)": round(100 * r["top1_cost"], 1),
            "fooled checkpoint": r["fooled"],
        }
        for cid, r in f["rows"].items()
    ]


def fooling_curves(result: dict) -> dict[str, list[tuple[float, float]]]:
    f = result.get("fooling") or {"rows": {}}
    return {_name(result, cid): [(s, 100 * v) for s, v in r["curve"]] for cid, r in f["rows"].items()}


def input_attack_rows(result: dict) -> list[dict]:
    rows = []
    for cid, per in result.get("input_attacks", {}).items():
        for attack, v in per.items():
            rows.append(
                {
                    "model": _name(result, cid),
                    "attack": attack,
                    "top-k intersection": round(v["topk_intersection"], 3),
                    "Spearman": round(v["spearman"], 3),
                }
            )
    return rows


def alignment_series(result: dict) -> dict[str, list[tuple[float, float]]]:
    """(epsilon, alignment) per norm; the base (epsilon 0) starts every line."""
    points = (result.get("alignment") or {}).get("points", [])
    base = [(0.0, p["alignment"]) for p in points if p["norm"] == "none"]
    out = {}
    for norm in ("l2", "linf"):
        pts = [(p["epsilon"], p["alignment"]) for p in points if p["norm"] == norm]
        if pts:
            out[f"PGD-{norm}"] = base + sorted(pts)
    return out


def removal_series(
    result: dict, key: str, order: str = "morf"
) -> dict[str, dict[str, list[tuple[float, float]]]]:
    """Per model: per method, (removed %, accuracy %) with the clean accuracy at 0% (ROAD or ROAR)."""
    out = {}
    for cid, r in result.get(key, {}).items():
        out[_name(result, cid)] = {
            method: [(0.0, 100 * r["clean"])] + [(100 * f, 100 * a) for f, a in zip(r["fractions"], accs)]
            for method, accs in r.get(order, {}).items()
        }
    return out
