"""Evaluate: a baseline vs a fooled checkpoint on a dataset, as a job; FSR, transfer, accuracy, export."""

from __future__ import annotations

import streamlit as st

from backend.services import evaluate as svc
from backend.services import take_home
from backend.services.figures import histogram_figure, matrix_figure
from pages._ui import ensure_routed, guard, pick_checkpoint, query_list, session

ensure_routed()

st.title("Evaluate fooled checkpoints")

c1, c2 = st.columns(2)
with c1:
    baseline = pick_checkpoint("ev_base", label="Baseline", preselect=st.query_params.get("baseline"))
with c2:
    choices = svc.fooled_choices()
    wanted = [i for i in query_list("fooled") if i in choices]
    fooled = st.multiselect(
        "Fooled checkpoints (one job evaluates them all)",
        list(choices),
        default=wanted or list(choices)[-1:],
        format_func=lambda i: choices[i],
        key="ev_fooled",
    )
if baseline is None or not fooled:
    if not fooled:
        st.info("Pick at least one fooled checkpoint.")
    st.stop()

ds_kind = st.radio(
    "Images",
    ["Held-out split of the fooling run", "Synthetic shapes", "Sample photos", "Folder on the server"],
    horizontal=True,
    key="ev_ds",
)
dataset: dict | None = None
if ds_kind == "Synthetic shapes":
    a, b = st.columns(2)
    dataset = {
        "kind": "shapes",
        "n": int(a.number_input("Images", 8, 100_000, 128, key="ev_n")),
        "size": svc.input_size(baseline),
        "seed": int(b.number_input("Seed", 0, 1_000_000, 123, key="ev_seed")),
    }
elif ds_kind == "Sample photos":
    dataset = {
        "kind": "samples",
        "augment": int(st.number_input("Augmented copies", 1, 256, 4, key="ev_aug")),
        "seed": 0,
    }
elif ds_kind == "Folder on the server":
    dataset = {"kind": "folder", "path": st.text_input("Folder path", key="ev_folder")}
images = st.number_input("At most this many images", 1, 100_000, 128, key="ev_images")
interpreters = st.multiselect(
    "Interpreters to test (transfer)",
    svc.interpreter_names(),
    default=svc.default_interpreters(fooled[0]),
    key="ev_interp",
)

if st.button("Run evaluation", type="primary", key="ev_submit"):
    with guard("Not submitted"):
        job_id = svc.submit(
            svc.build_config(baseline, fooled, dataset, interpreters, images), session=session()
        )
        st.success(f"Evaluation job `{job_id}` queued.")
        st.page_link("pages/jobs.py", label="Watch it in Jobs", query_params={"job": job_id})

st.divider()
st.subheader("Results")
runs = []
with guard("Results"):
    runs = svc.finished_runs(baseline, fooled)
if not runs:
    st.info("No finished evaluation of this pair yet.")
    st.stop()
run = st.selectbox("Evaluation run", runs, format_func=svc.run_label, key="ev_run")
with guard("Results"):
    view = svc.view(run)
    st.markdown("**Fooling success rate per interpreter**")
    st.dataframe(view.fsr_rows, hide_index=True)
    if view.transfer:
        rows, cols, values = view.transfer
        st.plotly_chart(
            matrix_figure(values, rows, cols, title="FSR: measured with (row) × fooled model (column)"),
            key="ev_transfer",
        )
    st.markdown("**Accuracy before / after**")
    st.dataframe(view.accuracy_rows, hide_index=True)
    if view.similarity:
        st.markdown("**Per-image Spearman correlation of the fooled model's maps with the baseline's**")
        st.plotly_chart(
            histogram_figure(view.similarity, x_title="Spearman with the baseline's map"), key="ev_hist"
        )
    d1, d2 = st.columns(2)
    d1.download_button("Export CSV", svc.to_csv(view), file_name=f"evaluation-{run.id}.csv", mime="text/csv")
    d2.download_button(
        "Download report (HTML)",
        lambda: take_home.evaluation_report(run),
        file_name=f"evaluation-{run.id}.html",
        mime="text/html",
        key="ev_report",
    )
