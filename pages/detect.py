"""Detect: is a checkpoint manipulated? Noise inputs, weight noise, randomisation and a report card."""

from __future__ import annotations

import streamlit as st

from backend.detect import view as svc
from backend.errors import InvalidConfig
from backend.explain import METHODS
from backend.services import take_home
from backend.services.figures import heatmap_figure, line_chart
from backend.services.fool_form import input_size
from pages._ui import follow_job, guard, pick_checkpoint, pick_run, session

POLL_SECONDS = 1.5

st.title("Detect a manipulated checkpoint")
st.caption(
    "Runs the thesis' detection tests (002 §4) and the randomisation sanity check on a suspect and a "
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

with st.form("det_form"):
    a, b, c = st.columns(3)
    method = a.selectbox("Explanation method", list(METHODS), key="det_method")
    tests = b.multiselect(
        "Tests",
        ["noise_inputs", "weight_noise", "randomization", "reference"],
        default=["noise_inputs", "weight_noise", "randomization", "reference"],
        key="det_tests",
    )
    images = c.number_input("Images (shapes data)", 2, 512, 32, key="det_images")
    d, e, f = st.columns(3)
    sigmas = d.text_input("Weight-noise sigmas", "0, 0.005, 0.01, 0.02, 0.05", key="det_sigmas")
    seeds = e.number_input("Seeds per sigma", 1, 10, 3, key="det_seeds")
    mode = f.radio("Noise", ["additive", "multiplicative"], horizontal=True, key="det_mode")
    g, h = st.columns(2)
    noise_n = g.number_input("Noise images", 2, 256, 16, key="det_noise_n")
    select = h.text_input("Only parameters starting with (comma-separated; empty = all)", key="det_select")
    submitted = st.form_submit_button("Run detection", type="primary", key="det_submit")

if submitted:
    with guard("Not submitted"):
        try:
            sigma_list = [float(s) for s in sigmas.replace(";", ",").split(",") if s.strip()]
        except ValueError:
            raise InvalidConfig("Sigmas must be numbers separated by commas, e.g. 0, 0.01, 0.02.") from None
        size = input_size(suspect)
        config = svc.build_config(
            suspect=suspect,
            baseline=baseline if baseline != suspect else None,
            method=method,
            tests=tests,
            images=int(images),
            dataset={"kind": "shapes", "n": int(images), "size": size, "seed": 123},
            noise_inputs={"n": int(noise_n)},
            weight_noise={
                "sigmas": sigma_list,
                "seeds": list(range(int(seeds))),
                "mode": mode,
                "select": [p.strip() for p in select.split(",") if p.strip()] or None,
            },
        )
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
        st.markdown(f"**Report card** — {result['report']['summary']}")
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
