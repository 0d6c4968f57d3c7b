"""Decoys: decoy-enhanced saliency (robust to manipulation?) for a checkpoint, against a baseline."""

from __future__ import annotations

import streamlit as st

from backend.decoys import view as svc
from backend.decoys.attacks import ATTACKS
from backend.detect import view as runs_svc
from backend.explain import METHODS
from backend.services.figures import heatmap_figure
from backend.services.fool_form import input_size
from pages._ui import follow_job, guard, pick_checkpoint, pick_run, session

POLL_SECONDS = 1.5

st.title("Decoy-enhanced saliency")
st.caption(
    "Decoys (paper 003) change one patch of the image as much as possible while the model's early-layer "
    "representation stays within epsilon; Z = max - min of the decoys' saliency. Is the enhanced map of "
    "a fooled model closer to the baseline's original explanation than its raw map?"
)

c1, c2 = st.columns(2)
with c1:
    ckpt = pick_checkpoint(
        "dec_ckpt", label="Checkpoint (e.g. fooled)", preselect=st.query_params.get("checkpoint")
    )
with c2:
    baseline = pick_checkpoint("dec_base", label="Baseline", preselect=st.query_params.get("baseline"))
if ckpt is None:
    st.stop()

with st.form("dec_form"):
    a, b, c = st.columns(3)
    method = a.selectbox("Explanation method", list(METHODS), key="dec_method")
    generator = b.radio("Decoys by", ["optimize", "blur"], horizontal=True, key="dec_generator")
    images = c.number_input("Images (shapes data)", 1, 64, 4, key="dec_images")
    d, e, f, g = st.columns(4)
    patch = d.number_input("Patch size", 1, 1024, 8, key="dec_patch")
    stride = e.number_input("Stride", 1, 1024, 8, key="dec_stride")
    rel_eps = f.number_input(
        "epsilon (relative to max |F_l(x)|)", 0.001, 10.0, 0.1, format="%.3f", key="dec_eps"
    )
    steps = g.number_input(
        "Max steps per decoy", 1, 500, 40, key="dec_steps", help="The paper's rule stops a decoy after 3-5."
    )
    attacks = st.multiselect(
        "Input attacks (sensitivity S_S raw vs enhanced)", sorted(ATTACKS), key="dec_attacks"
    )
    submitted = st.form_submit_button("Run decoys", type="primary", key="dec_submit")

if submitted:
    with guard("Not submitted"):
        config = svc.build_config(
            checkpoint=ckpt,
            baseline=baseline if baseline != ckpt else None,
            method=method,
            generator=generator,
            images=int(images),
            dataset={"kind": "shapes", "n": int(images), "size": input_size(ckpt), "seed": 321},
            decoys={
                "patch": int(patch),
                "stride": int(stride),
                "relative_epsilon": float(rel_eps),
                "steps": int(steps),
            },
            attacks=attacks,
        )
        job_id = runs_svc.submit("decoys", config, session=session())
        st.session_state["dec_job"] = job_id
        st.success(f"Decoys job `{job_id}` queued.")


follow_job("dec_job", POLL_SECONDS)

st.divider()
st.subheader("Results")
run = pick_run(
    lambda: runs_svc.runs("decoys", "checkpoint", ckpt),
    label="Decoys run",
    key="dec_run",
    empty="No finished decoys run for this checkpoint yet.",
    format_func=runs_svc.run_label,
)
result = run.result or {}
with guard("Results"):
    summary = result.get("summary", {})
    if "enhanced_closer_to_baseline" in summary:
        st.metric(
            "Enhanced map closer to the baseline's explanation than the raw map",
            summary["enhanced_closer_to_baseline"],
            help="Pearson correlation with the baseline's raw map, per image.",
        )
    st.dataframe(svc.summary_rows(summary), hide_index=True)
    st.dataframe(svc.image_rows(result), hide_index=True)
    maps = runs_svc.load_maps(run.id)
    n = len(result.get("rows", []))
    if maps and n:
        index = st.slider("Image", 0, n - 1, 0) if n > 1 else 0
        panels = svc.panels(maps, index)
        cols = st.columns(min(len(panels), 4))
        for i, (title, img, hm) in enumerate(panels):
            cols[i % len(cols)].plotly_chart(
                heatmap_figure(img, hm, opacity=0.7, title=title, height=220), key=f"dec_panel_{i}"
            )
