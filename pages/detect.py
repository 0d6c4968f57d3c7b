"""Detect: is a checkpoint manipulated? Noise inputs, weight noise, randomisation and a report card."""

from __future__ import annotations

import streamlit as st

from backend.services import detect as svc
from backend.services import take_home
from backend.services.figures import heatmap_figure, line_chart
from backend.services.form_fields import method_fields
from pages import _form as form
from pages._ui import ensure_routed, follow_job, guard, pick_checkpoint, pick_run, session

ensure_routed()

POLL_SECONDS = 1.5

st.title("Detect a manipulated checkpoint")
st.caption(
    "Runs the thesis' detection tests (Pasliev2020 §4) and the randomisation sanity check on a suspect and a "
    "baseline. The report card says which tests flag the suspect and where they do not separate the two."
)

c1, c2 = st.columns(2)
with c1:
    suspect = pick_checkpoint(
        "det_suspect", label="Suspect checkpoint", preselect=st.query_params.get("suspect")
    )
with c2:
    baseline = pick_checkpoint(
        "det_base", label="Baseline (un-manipulated)", preselect=st.query_params.get("baseline")
    )
if suspect is None:
    st.stop()

st.subheader("Settings")
ctx = form.context(suspect)
common = form.render(svc.common_fields(), "det", ctx, columns=3)
method_values = form.render(
    method_fields(common["method"], layer=False), f"det_p_{common['method']}", ctx, columns=4
)
test_values: dict[str, dict] = {}
for test in common["tests"]:
    fields = svc.test_fields(test)
    if fields:
        with st.expander(svc.TEST_LABELS[test], expanded=test == "weight_noise"):
            test_values[test] = form.render(fields, f"det_{test}", ctx, columns=4)

if st.button("Run detection", type="primary", key="det_submit"):
    with guard("Not submitted"):
        config = svc.assemble_config(suspect, baseline, common, method_values, test_values)
        job_id = svc.submit("detect", config, session=session())
        st.session_state["det_job"] = job_id
        st.success(f"Detection job `{job_id}` queued.")


follow_job("det_job", POLL_SECONDS)

st.divider()
st.subheader("Results")
run = pick_run(
    lambda: svc.runs("detect", "suspect", suspect),
    label="Detection run",
    key="det_run",
    empty="No finished detection run for this suspect yet.",
    format_func=svc.run_label,
)
result = run.result or {}
st.download_button(
    "Download report card (HTML)",
    lambda: take_home.detection_report(run),
    file_name=f"detection-{run.id}.html",
    mime="text/html",
    key="det_report",
)
with guard("Results"):
    if result.get("report"):
        compared = result["report"].get("compared_with")
        st.markdown(
            f"**Report card** — {result['report']['summary']}"
            + (f"  \nCompared with {compared}." if compared else "")
        )
        st.dataframe(svc.finding_rows(result), hide_index=True)
    else:
        st.info("No baseline in this run: the numbers below are the suspect's alone (no report card).")
    if svc.noise_rows(result):
        st.markdown("**Noise inputs** — mean pairwise similarity of maps of Gaussian-noise images")
        st.dataframe(svc.noise_rows(result), hide_index=True)
    left, right = st.columns(2)
    for col, key, title in (
        (left, "agreement", "agreement with un-noised predictions"),
        (right, "pcc_to_clean", "heatmap PCC to the un-noised maps"),
    ):
        series = svc.weight_noise_series(result, key)
        if series:
            col.markdown(f"**Weight noise** — {title}")
            col.plotly_chart(line_chart(series, x_title="sigma", y_title=key), key=f"det_wn_{key}")
    ref = svc.weight_noise_series(result, "pcc_to_reference")
    if ref:
        st.markdown(
            "**Weight noise** — heatmap PCC to the reference's maps (does noise undo a manipulation?)"
        )
        st.plotly_chart(line_chart(ref, x_title="sigma", y_title="PCC"), key="det_wn_ref")
    for key in ("ssim", "spearman"):
        series, layers = svc.randomization_series(result, key)
        if series:
            st.markdown(
                f"**Cascading randomisation** — {key} to the original maps (steps: {', '.join(layers)})"
            )
            st.plotly_chart(
                line_chart(series, x_title="layers randomised (top first)", y_title=key),
                key=f"det_rand_{key}",
            )
    maps = svc.load_maps(run.id)
    if maps:
        st.markdown("**Maps** (noise inputs first, then data images)")
        for role in ("baseline", "suspect"):
            for kind in ("noise_maps", "data_maps"):
                stack = maps.get(f"{role}/{kind}")
                if stack is None:
                    continue
                cols = st.columns(len(stack))
                for i, (col, hm) in enumerate(zip(cols, stack)):
                    blank = (hm[..., None].repeat(3, -1) * 0).astype("uint8")
                    col.plotly_chart(
                        heatmap_figure(
                            blank, hm, opacity=1.0, height=140, title=f"{role} {kind.split('_')[0]} {i}"
                        ),
                        key=f"det_map_{role}_{kind}_{i}",
                    )
