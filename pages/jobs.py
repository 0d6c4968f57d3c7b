"""Jobs: every job with its state; the selected one polls live (progress, ETA, curves, log tail)."""

from __future__ import annotations

import streamlit as st

from backend import jobs
from backend.services import job_follow, policy
from backend.services import jobs_view as view
from backend.services.figures import line_chart
from pages._ui import ensure_routed, guard, session

ensure_routed()

POLL_SECONDS = 1.0

st.title("Jobs")
me = session()
whose = st.segmented_control(
    "Show", ["Mine", "Everyone's"], default="Everyone's", key="jobs_whose", label_visibility="collapsed"
)
owner = me.name if whose == "Mine" else None

records = []
with guard("Job list"):
    records = jobs.list_jobs(limit=200, owner=owner)
if not records:
    st.info("No jobs yet: submit one on the Fool or Evaluate page.")
    st.stop()

active = any(not r.done for r in records)


@st.fragment(run_every=POLL_SECONDS if active else None)
def live_panel() -> None:
    with guard("Jobs"):
        current = jobs.list_jobs(limit=200, owner=owner)
        st.dataframe([view.table_row(r) for r in current], hide_index=True, key="jobs_table")
        ids = [r.id for r in current]
        wanted = st.query_params.get("job")
        index = ids.index(wanted) if wanted in ids else 0
        job_id = st.selectbox(
            "Job",
            ids,
            index=index,
            format_func=lambda i: f"{i} · {next(r for r in current if r.id == i).kind}",
            key="jobs_pick",
        )
        detail(job_id)
        if active and all(r.done for r in current):
            st.rerun()  # everything finished: one full rerun turns the polling off


def detail(job_id: str) -> None:
    status = job_follow.status(job_id)
    record = status.record
    st.subheader(f"{record.kind} job `{record.id}` — {record.state}")
    st.progress(status.fraction, text=status.text)
    if status.waiting:
        st.info(status.waiting, icon=":material/hourglass_empty:")
    if record.error:
        st.error(record.error)
    elif record.progress.message:
        st.caption(record.progress.message)

    groups = view.curve_groups(view.loss_series(job_follow.history(st.session_state, job_id)))
    for col, (title, series) in zip(st.columns(max(1, len(groups))), groups.items()):
        col.markdown(f"**{title}**")
        col.plotly_chart(line_chart(series, x_title="step", y_title=""), key=f"curves_{job_id}_{title}")

    st.caption(f"Submitted by {record.owner or 'the lab'}")
    b1, b2, _ = st.columns([1, 1, 4])
    mine = policy.may_cancel(me, record)  # the service layer refuses the others' too; here they are hidden
    if mine and b1.button("Cancel", disabled=record.done, key=f"cancel_{job_id}"):
        with guard("Cancel"):
            job_follow.cancel(job_id, session=me)
            st.toast(f"Cancelled {job_id}")
            st.rerun()
    if mine and b2.button("Retry", disabled=not record.done, key=f"retry_{job_id}"):
        with guard("Retry"):
            new_id = job_follow.retry(job_id, session=me)
            st.query_params["job"] = new_id
            st.toast(f"Retried as {new_id}")
            st.rerun()

    made = view.checkpoint_ids(jobs.artifacts(job_id), record.result)
    if made:
        to_inspect = view.inspect_link_ids(record, made)
        st.page_link(
            "pages/inspect.py",
            label="Open in Inspect",
            icon=":material/image_search:",
            query_params={"ckpt": ",".join(to_inspect)},
        )
        st.page_link(
            "pages/evaluate.py",
            label="Evaluate",
            icon=":material/analytics:",
            query_params={"baseline": to_inspect[0], "fooled": made[-1]},
        )
    with st.expander("Config"):
        st.json(record.config)
    st.caption("Log (last 40 lines)")
    st.code("\n".join(jobs.logs(job_id, tail=40)) or "(empty)", language=None)


live_panel()
