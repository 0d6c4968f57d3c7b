"""The report card: each test's number for the baseline and the suspect, a threshold derived from the
baseline's own numbers, whether the suspect is flagged, and an honest line when a test does not
separate the two.

Thresholds (documented here and shown on the card):
- noise inputs: flag when the suspect's mean pairwise PCC exceeds the baseline's by half the remaining
  gap to identical maps: t = b + (1 - b) / 2 (the thesis: 0.975 fooled vs 0.233 baseline).
- weight noise: flag when the suspect's curve (agreement, heatmap PCC to its un-noised maps) leaves
  the baseline's by more than twice the baseline's own spread over seeds plus a floor (0.05 agreement,
  0.10 PCC), on average over sigma. The thesis found no separation here (Fig. 4.4).
- randomisation: flag when the suspect's mean SSIM over the cascade differs from the baseline's by more
  than max(0.1, (1 - baseline's final SSIM) / 4). It is a sanity check of the method, not a detector.
- reference: flag when the suspect's PCC to the reference's maps falls below half the PCC the baseline
  keeps with its own maps under the smallest weight noise (0.5 when that was not measured).
"""

from __future__ import annotations

from statistics import fmean


def finding(test, measure, baseline, suspect, threshold, flagged, rule) -> dict:
    """One row of a report card: what was measured for both, the threshold, the verdict."""
    verdict = (
        f"flags the suspect ({suspect:.3f} vs baseline {baseline:.3f}; threshold {threshold:.3f})"
        if flagged
        else f"does not separate suspect ({suspect:.3f}) from baseline ({baseline:.3f}); "
        f"threshold {threshold:.3f} not crossed"
    )
    return {
        "test": test,
        "measure": measure,
        "baseline": baseline,
        "suspect": suspect,
        "threshold": threshold,
        "flagged": bool(flagged),
        "rule": rule,
        "verdict": verdict,
    }


def noise_input_finding(baseline: dict, suspect: dict) -> dict:
    b, s = baseline["pcc_mean"], suspect["pcc_mean"]
    t = b + (1 - b) / 2
    return finding(
        "noise_inputs", "mean pairwise PCC of noise-input maps", b, s, t, s > t, "t = b + (1 - b) / 2"
    )


def weight_noise_findings(baseline: dict, suspect: dict) -> list[dict]:
    out = []
    for key, floor in (("agreement", 0.05), ("pcc_to_clean", 0.10)):
        bc, sc = baseline["curve"], suspect["curve"]
        gap = fmean(abs(x - y) for x, y in zip(bc[key], sc[key]))
        t = 2 * fmean(bc[key + "_spread"]) + floor
        out.append(
            finding(
                f"weight_noise/{key}",
                f"mean |suspect - baseline| of {key} over sigma",
                0.0,
                gap,
                t,
                gap > t,
                f"t = 2 x baseline spread over seeds + {floor}",
            )
        )
    return out


def randomization_finding(baseline: dict, suspect: dict) -> dict:
    bs = [s["ssim"] for s in baseline["steps"][1:]]
    ss = [s["ssim"] for s in suspect["steps"][1:]]
    b, s = fmean(bs), fmean(ss)
    t = max(0.1, (1 - bs[-1]) / 4)
    return finding(
        "randomization",
        "mean SSIM to the original maps over the cascade (|suspect - baseline| vs t)",
        b,
        s,
        t,
        abs(s - b) > t,
        "t = max(0.1, (1 - baseline final SSIM) / 4)",
    )


def reference_finding(report: dict, baseline_noise: dict | None) -> dict:
    if baseline_noise is not None:
        curve = baseline_noise["curve"]
        i = min(range(len(curve["sigma"])), key=lambda k: (curve["sigma"][k] == 0, curve["sigma"][k]))
        t = 0.5 * curve["pcc_to_clean"][i]
    else:
        t = 0.5
    s = report["pearson"]
    return finding(
        "reference",
        "mean PCC of the suspect's maps to the reference's",
        1.0,
        s,
        t,
        s < t,
        "t = 0.5 x baseline self-PCC",
    )


def report_card(baseline: dict, suspect: dict) -> dict:
    """Compare what was measured for both checkpoints; `summary` lists the tests that flag the suspect."""
    findings = []
    if "noise_inputs" in baseline and "noise_inputs" in suspect:
        findings.append(noise_input_finding(baseline["noise_inputs"], suspect["noise_inputs"]))
    if "weight_noise" in baseline and "weight_noise" in suspect:
        findings.extend(weight_noise_findings(baseline["weight_noise"], suspect["weight_noise"]))
    if "randomization" in baseline and "randomization" in suspect:
        findings.append(randomization_finding(baseline["randomization"], suspect["randomization"]))
    if "reference" in suspect:
        findings.append(reference_finding(suspect["reference"], baseline.get("weight_noise")))
    flagged = [f["test"] for f in findings if f["flagged"]]
    quiet = [f["test"] for f in findings if not f["flagged"]]
    summary = (f"Flagged by: {', '.join(flagged)}." if flagged else "No test flags the suspect.") + (
        f" Not separated by: {', '.join(quiet)}." if quiet else ""
    )
    return {"findings": findings, "flagged_by": flagged, "summary": summary}
