"""Decoys: decoy-enhanced saliency (robust to manipulation?) for a checkpoint, against a baseline."""

from __future__ import annotations

import streamlit as st

from backend.services import decoys as svc
from backend.services import detect as runs_svc
from backend.services.figures import heatmap_figure
from backend.services.form_fields import method_fields
from pages import _form as form
from pages._ui import ensure_routed, follow_job, guard, pick_checkpoint, pick_run, session

ensure_routed()

POLL_SECONDS = 1.5

st.title("Decoy-enhanced saliency")
st.caption(
    "Decoys (Decoys) change one patch of the image as much as possible while the model's early-layer "
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

st.subheader("Settings")
ctx = form.context(ckpt)
common = form.render(svc.common_fields(), "dec", ctx, columns=4)
method = common["method"]
method_values = form.render(method_fields(method, layer=False), f"dec_p_{method}", ctx, columns=4)
decoy_fields = svc.decoy_fields()
decoy_values = form.render([f for f in decoy_fields if not f.advanced], "dec", ctx, columns=4)
attack_values = form.render([f for f in svc.ATTACK_FIELDS if not f.advanced], "dec_attack", ctx, columns=4)
with st.expander("Advanced decoy and attack settings"):
    decoy_values |= form.render([f for f in decoy_fields if f.advanced], "dec", ctx, columns=4)
    attack_values |= form.render([f for f in svc.ATTACK_FIELDS if f.advanced], "dec_attack", ctx, columns=4)

if st.button("Run decoys", type="primary", key="dec_submit"):
    with guard("Not submitted"):
        config = svc.assemble_config(ckpt, baseline, common, method_values, decoy_values, attack_values)
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
