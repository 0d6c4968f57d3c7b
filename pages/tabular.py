"""Tabular: does a feature-importance chart hide a protected attribute? Train, fool, compare, report."""

from __future__ import annotations

import streamlit as st

from backend.errors import InvalidConfig
from backend.services import tabular as svc
from backend.services.figures import bar_chart
from pages._ui import ensure_routed, follow_job, guard, pick_checkpoint, pick_run, session

ensure_routed()
POLL_SECONDS = 1.5
TABLE_METHODS = svc.table_methods()
FOOL_METHODS = svc.table_methods(differentiable=True)

st.title("Tables: does the chart hide a protected attribute?")
st.caption(
    "Pasliev2020 §3.8: an MLP on the Adult census data is fine-tuned so that its feature-importance chart "
    "gives race and gender no importance, while it keeps using them. Train a model, fool it, and let the "
    "report card compare what the chart says with what the model does."
)

train_tab, fool_tab, report_tab = st.tabs(["Train", "Fool", "Report"])

with train_tab:
    choices = svc.data_choices()
    kind = st.selectbox("Data", list(choices), format_func=lambda k: choices[k][0], key="tab_data")
    data: dict | None = {"kind": kind}
    if not choices[kind][1]:
        st.warning("The public data sets are not on this machine yet: run `./lab setup` (fetches them once).")
        data = None
    elif kind == "csv":
        upload = st.file_uploader("CSV with a header row", type=["csv", "tsv", "txt"], key="tab_csv")
        data = None
        if upload is not None:
            with guard(f"'{upload.name}'"):
                path = svc.save_upload(upload.getvalue(), upload.name, session=session())
                columns = svc.columns_of(path)
                c1, c2 = st.columns(2)
                target = c1.selectbox("Target column", columns, index=len(columns) - 1, key="tab_target")
                protected = c2.multiselect(
                    "Protected columns", [c for c in columns if c != target], key="tab_protected"
                )
                data = {"kind": "csv", "path": str(path), "target": target, "protected": protected}
    with st.form("tab_train_form"):
        c1, c2, c3 = st.columns(3)
        epochs = c1.number_input("Epochs (thesis: 200)", 1, 2000, 200, key="tab_epochs")
        drop = c2.checkbox("Without the protected attributes", key="tab_drop")
        name = c3.text_input("Name (optional)", key="tab_name")
        go = st.form_submit_button("Train", type="primary", key="tab_train_submit")
    if go:
        with guard("Not submitted"):
            if data is None:
                raise InvalidConfig("Choose the data first (upload a CSV and pick its target).")
            config = svc.validated(
                "tabular_train",
                {"data": data, "epochs": int(epochs), "drop_protected": drop, "name": name or None},
            )
            st.session_state["tab_train_job"] = svc.submit("tabular_train", config, session=session())
            st.success(f"Training job `{st.session_state['tab_train_job']}` queued.")
    follow_job("tab_train_job", POLL_SECONDS)

# Widgets of the fool form that a preset sets: config field -> session key.
PRESET_KEYS = {
    "attack": "tab_attack",
    "lam": "tab_lam",
    "epochs": "tab_fepochs",
    "classification": "tab_cls",
    "counterfactual_keep": "tab_twins",
}


def apply_preset(force: bool = True) -> None:
    values = {**svc.FOOL_DEFAULTS, **svc.FOOL_PRESETS[st.session_state.get("tab_preset", "hide")]}
    for field, key in PRESET_KEYS.items():
        if force or key not in st.session_state:
            st.session_state[key] = values[field]


with fool_tab:
    model = pick_checkpoint("tab_fool_model", label="Model to fool", modality="tabular", kinds=("trained",))
    st.selectbox("Preset", list(svc.FOOL_PRESETS), key="tab_preset", on_change=apply_preset)
    st.caption(
        "hide: the protected share itself as the penalty, probabilities kept on the rows and on "
        "counterfactual twins (ours). thesis-target: Pasliev2020 §3.8 as written (MSE to the original map "
        "with the protected columns zeroed, cross-entropy on the labels, 100 epochs)."
    )
    apply_preset(force=False)
    with st.form("tab_fool_form"):
        c1, c2, c3 = st.columns(3)
        attack = c1.selectbox("Attack", svc.TABLE_ATTACKS, key="tab_attack")
        method = c2.selectbox(
            "Explanation in the loss", FOOL_METHODS, index=FOOL_METHODS.index("gradient"), key="tab_method"
        )
        lam = c3.number_input("lambda", 0.0, 1e6, key="tab_lam")
        c4, c5, c6 = st.columns(3)
        epochs = c4.number_input("Epochs", 1, 2000, key="tab_fepochs")
        classification = c5.selectbox("Classification term", svc.CLASSIFICATION, key="tab_cls")
        twins = c6.checkbox("Keep decisions on counterfactual twins", key="tab_twins")
        go = st.form_submit_button("Fool", type="primary", key="tab_fool_submit")
    if go:
        with guard("Not submitted"):
            if model is None:
                raise InvalidConfig("Train a model first (Train tab).")
            config = svc.validated(
                "tabular_fool",
                {
                    "preset": st.session_state["tab_preset"],
                    "model": model,
                    "attack": attack,
                    "method": method,
                    "lam": float(lam),
                    "epochs": int(epochs),
                    "classification": classification,
                    "counterfactual_keep": twins,
                },
            )
            st.session_state["tab_fool_job"] = svc.submit("tabular_fool", config, session=session())
            st.success(f"Fooling job `{st.session_state['tab_fool_job']}` queued.")
    follow_job("tab_fool_job", POLL_SECONDS)

with report_tab:
    c1, c2 = st.columns(2)
    with c1:
        suspect = pick_checkpoint("tab_suspect", label="Suspect", modality="tabular")
    with c2:
        baseline = pick_checkpoint(
            "tab_baseline", label="Baseline (optional)", modality="tabular", optional=True
        )
    with st.form("tab_report_form"):
        c1, c2 = st.columns(2)
        rmethod = c1.selectbox(
            "The chart's method", TABLE_METHODS, index=TABLE_METHODS.index("gradient"), key="tab_rmethod"
        )
        tests = c2.multiselect("Tests", svc.REPORT_TESTS, default=list(svc.REPORT_TESTS), key="tab_tests")
        go = st.form_submit_button("Run the report", type="primary", key="tab_report_submit")
    if go:
        with guard("Not submitted"):
            if suspect is None:
                raise InvalidConfig("Pick a suspect checkpoint.")
            config = svc.validated(
                "tabular_report",
                {"suspect": suspect, "baseline": baseline if baseline != suspect else None,
                 "method": rmethod, "tests": tests},
            )  # fmt: skip
            st.session_state["tab_report_job"] = svc.submit("tabular_report", config, session=session())
            st.success(f"Report job `{st.session_state['tab_report_job']}` queued.")
    follow_job("tab_report_job", POLL_SECONDS)

# ---- baseline vs fooled --------------------------------------------------------------------------------
st.divider()
st.subheader("Baseline vs fooled")
c1, c2, c3 = st.columns(3)
with c1:
    left = pick_checkpoint(
        "tab_cmp_base", label="Baseline", modality="tabular", preselect=st.query_params.get("baseline")
    )
with c2:
    right = pick_checkpoint(
        "tab_cmp_fooled", label="Fooled", modality="tabular", preselect=st.query_params.get("fooled")
    )
cmp_method = c3.selectbox(
    "Method",
    TABLE_METHODS,
    index=TABLE_METHODS.index("gradient"),
    key="tab_cmp_method",
    format_func=svc.method_label,
)
if left is None or right is None:
    st.stop()
chosen = {"baseline": left, "fooled": right}
with guard("Importance"):
    charts = {role: svc.global_importance(cid, cmp_method) for role, cid in chosen.items()}
    st.plotly_chart(
        bar_chart(
            {role: chart["bars"] for role, chart in charts.items()},
            y_title="share of |attribution|",
            highlight=charts["baseline"]["protected"],
        ),
        key="tab_bars",
    )
    st.caption(
        " · ".join(
            f"{role}: protected share {100 * chart['protected_share']:.2f}%" for role, chart in charts.items()
        )
        + " (mean over the first 2,000 test rows; each row's |attribution| normalised to sum to one)"
    )

st.subheader("One person")
with guard("Person"):
    row = st.number_input("Test row", 0, max(0, svc.n_test_rows(left) - 1), 0, key="tab_row")
    who = svc.person(left, int(row))
    st.dataframe([who["values"] | {"label": who["label"]}], hide_index=True)
    cols = st.columns(2)
    for col, (role, cid) in zip(cols, chosen.items(), strict=True):
        seen = svc.person(cid, int(row))
        col.markdown(
            f"**{role}**: decides *{seen['decision']}* "
            f"({', '.join(f'{k} {100 * v:.1f}%' for k, v in seen['probabilities'].items())})"
        )
        col.plotly_chart(
            bar_chart(
                {role: svc.person_explanation(cid, int(row), cmp_method)}, y_title="attribution", height=240
            ),
            key=f"tab_person_{role}",
        )
        col.markdown("Counterfactuals: the same person with a protected attribute changed")
        col.dataframe(svc.counterfactuals(cid, int(row)), hide_index=True)

# ---- the report card -----------------------------------------------------------------------------------
st.divider()
st.subheader("Report card")
run = pick_run(
    lambda: svc.runs("tabular_report", "suspect", right),
    label="Report run",
    key="tab_report_run",
    empty="No finished report for the fooled model yet: run one in the Report tab.",
)
result = run.result or {}
with guard("Report"):
    card = result.get("report") or {}
    (st.error if card.get("flagged_by") else st.info)(card.get("headline", ""))
    st.markdown(card.get("summary", ""))
    st.dataframe(svc.finding_rows(result), hide_index=True)
    st.dataframe(svc.model_rows(result), hide_index=True)
