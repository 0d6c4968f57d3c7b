"""The three take-home reports, as self-contained HTML (`backend.reports`): an Inspect comparison, an
evaluation, and a detection report card. Pages offer each as a download button; what goes in is what
the page shows, in words a student can reread at home.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from backend.jobs.records import JobRecord
from backend.reports import Figure, Section, line_svg, matrix_png, png_bytes, render


def _tile(rgb: np.ndarray, size: int = 200) -> bytes:
    from PIL import Image

    img = Image.fromarray(np.asarray(rgb, dtype=np.uint8))
    if img.width < size:
        img = img.resize((size, size * img.height // img.width), Image.Resampling.NEAREST)
    return png_bytes(np.asarray(img))


def inspect_report(
    photo_name: str,
    grid: Mapping,
    methods: Sequence[str],
    columns: Sequence[tuple[str, str]],
    sims: Mapping,
    *,
    opacity: float = 0.6,
    colorscale: str = "Inferno",
    signed: bool = False,
) -> bytes:
    """The Inspect grid of one photo: every (method, checkpoint) heatmap over the photo, the top
    predictions per checkpoint, and each map's similarity to the baseline's."""
    from backend.services.inspect import blend, method_label

    baseline = columns[0][0]
    first = {cid: next((grid[(m, cid)] for m in methods if (m, cid) in grid), None) for cid, _ in columns}
    preds = [
        {"checkpoint": name, **{f"top {i + 1}": f"{c} ({p:.1%})" for i, (c, p) in enumerate(cell.top[:3])}}
        for cid, name in columns
        if (cell := first[cid]) is not None
    ]
    sections = [
        Section(
            "What you are looking at",
            [
                f"The image '{photo_name}' explained by {len(methods)} method(s) for {len(columns)} "
                f"checkpoint(s); the first, {columns[0][1]}, is the baseline. A fooled checkpoint keeps "
                "its predictions (the table) while its heatmaps move: compare each row with the baseline's.",
                "Similarity to the baseline: Spearman rank correlation, SSIM and the overlap of the top 10% "
                "pixels (1 = the same map).",
            ],
            tables=[("Predictions", preds)],
        )
    ]
    rows = []
    for m in methods:
        figs = []
        for cid, name in columns:
            cell = grid.get((m, cid))
            if cell is None:
                continue
            rgb = blend(
                cell.image, cell.shown(signed=signed), opacity=opacity, colorscale=colorscale, signed=signed
            )
            sim = sims.get((m, cid))
            note = "baseline" if cid == baseline else ""
            if sim is not None:
                note = f"Spearman {sim['spearman']:.2f} · SSIM {sim['ssim']:.2f} · top-10% {sim['topk']:.2f}"
                rows.append(
                    {
                        "method": method_label(m),
                        "checkpoint": name,
                        **{k: round(v, 3) for k, v in sim.items()},
                    }
                )
            figs.append(Figure(f"{name} — {note}", png=_tile(rgb), width=200))
        sections.append(Section(method_label(m), [_note(m)], figures=figs))
    if rows:
        sections.append(Section("Similarity to the baseline", tables=[("", rows)]))
    return render(f"Fooling Lab — {photo_name}", "Baseline vs fooled explanations, side by side", sections)


def _note(method: str) -> str:
    from backend.explain import METHODS

    spec = METHODS.get(method)
    return spec.description if spec is not None and spec.description else ""


def evaluation_report(record: JobRecord, view=None) -> bytes:
    """An evaluation job: FSR per interpreter and fooled model, the transfer matrix, accuracy (`view`:
    its `evaluate.EvalView`, read from the job's report file when None)."""
    from backend.services import evaluate

    view = evaluate.view(record) if view is None else view
    cfg = record.config
    sections = [
        Section(
            "What was measured",
            [
                f"Baseline {cfg.get('baseline')} against fooled checkpoint(s) "
                f"{', '.join(cfg.get('fooled') or [])} on at most {cfg.get('images')} images. The fooling "
                "success rate (FSR) is the share of images whose explanation lies in the attack's success "
                "range (Krishna2021 eq. 6); a method other than the one fooled shows whether the "
                "manipulation transfers.",
            ],
            tables=[("Fooling success rate per interpreter", view.fsr_rows)],
        )
    ]
    if view.transfer:
        rows, cols, values = view.transfer
        sections.append(
            Section(
                "Transfer matrix",
                ["Rows: the method the FSR is measured with; columns: the fooled model."],
                figures=[
                    Figure(
                        "FSR: measured with (row) × fooled model (column)", png=matrix_png(values, rows, cols)
                    )
                ],
            )
        )
    sections.append(Section("Accuracy before and after", tables=[("", view.accuracy_rows)]))
    if view.similarity:
        means = [
            {"maps": name, "mean Spearman with the baseline": float(np.mean(v)), "images": len(v)}
            for name, v in view.similarity.items()
        ]
        sections.append(Section("How far the maps moved", tables=[("", means)]))
    return render(f"Fooling Lab — evaluation {record.id}", _when(record), sections)


def detection_report(record: JobRecord, maps: Mapping[str, np.ndarray] | None = None) -> bytes:
    """A detect job's report card: the findings, noise inputs, weight noise and randomisation curves,
    and the maps it saved (`maps`: read from the job's artifact when None)."""
    from backend.services import detect as view

    result = record.result or {}
    report = result.get("report") or {}
    cfg = record.config
    sections = [
        Section(
            "Report card",
            [
                f"Suspect {cfg.get('suspect')} against baseline {cfg.get('baseline') or '(none)'}, "
                f"explained with {cfg.get('method')}. "
                + report.get("summary", "No baseline in this run: no report card."),
            ],
            tables=[("Findings", view.finding_rows(result))],
        )
    ]
    if view.noise_rows(result):
        sections.append(
            Section(
                "Noise inputs",
                [
                    "Mean pairwise similarity of maps of Gaussian-noise images: a fooled model's are alike "
                    "(Pasliev2020 §4)."
                ],
                tables=[("", view.noise_rows(result))],
            )
        )
    charts = []
    for key, title in (
        ("agreement", "agreement with un-noised predictions"),
        ("pcc_to_clean", "PCC to un-noised maps"),
    ):
        series = view.weight_noise_series(result, key)
        if series:
            charts.append(
                Figure(f"Weight noise — {title}", svg=line_svg(series, x_title="sigma", y_title=key))
            )
    for key in ("ssim", "spearman"):
        series, _ = view.randomization_series(result, key)
        if series:
            charts.append(
                Figure(
                    f"Cascading randomisation — {key}",
                    svg=line_svg(series, x_title="layers randomised", y_title=key),
                )
            )
    if charts:
        sections.append(Section("Curves", figures=charts))
    maps = view.load_maps(record.id) if maps is None else maps
    figs = []
    for name, stack in maps.items():
        for i, hm in enumerate(np.asarray(stack)[:4]):
            figs.append(Figure(f"{name} {i}", png=_tile(_grey(hm), 120), width=120))
    if figs:
        sections.append(Section("Maps", ["Noise inputs first, then data images."], figures=figs))
    return render(f"Fooling Lab — detection {record.id}", _when(record), sections)


def _grey(heatmap: np.ndarray) -> np.ndarray:
    from backend.services.figures import colorize

    h = np.abs(np.asarray(heatmap, dtype=np.float32))
    while h.ndim > 2:
        h = h.sum(0)
    return colorize(h, colorscale="Inferno", signed=False).astype(np.uint8)


def _when(record: JobRecord) -> str:
    import time

    return "finished " + time.strftime(
        "%Y-%m-%d %H:%M", time.localtime(record.finished_at or record.submitted_at)
    )
