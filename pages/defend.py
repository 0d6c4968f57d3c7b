"""Defend: train a defence on a checkpoint, then measure whether it stops the fooling and how faithful
its explanations are (ROAD / ROAR). Logic lives in backend/services/defend.py."""

from __future__ import annotations

import streamlit as st

from backend.services import defend as svc
from backend.services.figures import line_chart
from backend.services.form_fields import batch_text
from pages._form import render, set_values
from pages._ui import ensure_routed, follow_job, guard, pick_checkpoint, pick_run, session

ensure_routed()
POLL_SECONDS = 1.5

st.title("Defend a model's explanations")
st.caption(
    "Robust training (PGD l2 / l-infinity), defensive distillation, Jacobian regularisation, robust "
    "attribution alignment (Zeng2021) and ATEX (Tang2022). Then: does the defence stop the lab's own "
    "fooling, and which explanations are faithful at all?"
)

base = pick_checkpoint("def_base", label="Model to defend (the base)", preselect=st.query_params.get("base"))
if base is None:
    st.stop()

train_tab, measure_tab, results_tab = st.tabs(["Train a defence", "Measure", "Results"])

with train_tab:
    names = svc.defences()
    defence = st.selectbox("Defence", list(names), format_func=names.get, key="def_defence")
    info = svc.defence_info(defence)
    st.caption(f"{info['description']} Source: {info['source']}.")
    preset_names = svc.presets(defence)
    prefix = f"def_p_{defence}"
    form_fields = svc.fields(defence, base)

    run_fields = svc.run_fields()

    def apply_preset() -> None:
        chosen = st.session_state.get(f"def_preset_{defence}")
        if chosen:
            config = svc.preset_config(chosen)
            set_values(prefix, form_fields, config.get("params", {}))
            set_values("def_run", run_fields, config)
            st.session_state.update(
                {k: config[c] for k, c in (("def_steps", "steps"), ("def_lr", "lr")) if c in config}
            )

    st.selectbox(
        "Preset (fills the form)",
        [None, *preset_names],
        format_func=lambda n: "(none)" if n is None else n,
        key=f"def_preset_{defence}",
        on_change=apply_preset,
    )
    preset = st.session_state.get(f"def_preset_{defence}")
    run = render(run_fields, "def_run", svc.form_context(base))
    st.caption(batch_text(run))
    with st.form("def_train"):
        values = render(form_fields, prefix, svc.form_context(base))
        a, b, c = st.columns(3)
        steps = a.number_input("Steps", 1, 100_000, 200, key="def_steps")
        lr = b.number_input("Learning rate", 1e-7, 1.0, 1e-3, format="%.1e", key="def_lr")
        name = c.text_input("Name of the defended checkpoint (optional)", key="def_name")
        submitted = st.form_submit_button("Train the defence", type="primary", key="def_train_submit")
    if submitted:
        with guard("Not submitted"):
            config = svc.build_train_config(
                base, defence, values, preset, run, steps=int(steps), lr=float(lr), name=name or None
            )
            st.session_state["def_job"] = svc.submit("defend", config, session=session())
            st.success(f"Defence job `{st.session_state['def_job']}` queued.")
    follow_job("def_job", POLL_SECONDS)

with measure_tab:
    children = svc.defended_children(base)
    with st.form("def_measure"):
        defended = st.multiselect("Defended models", children, default=children[-6:], key="def_defended")
        sections = svc.sections()
        chosen = st.multiselect(
            "Measurements",
            list(sections),
            default=[s for s, t in sections.items() if "not by default" not in t],
            format_func=sections.get,
            key="def_sections",
        )
        a, b, c = st.columns(3)
        images = a.number_input("Images", 2, 10_000, 128, key="def_images")
        fool_steps = b.number_input("Fooling steps", 1, 100_000, 300, key="def_fool_steps")
        methods = c.multiselect(
            "Rankings for ROAD / ROAR",
            ["random", "gradient", "lrp", "gradcam", "grad_x_input"],
            default=["random", "gradient", "lrp"],
            key="def_methods",
        )
        go = st.form_submit_button("Measure", type="primary", key="def_measure_submit")
    if go:
        with guard("Not submitted"):
            config = svc.build_evaluate_config(
                base,
                defended,
                sections=chosen,
                images=int(images),
                methods=methods,
                fooling={"steps": int(fool_steps)},
            )
            st.session_state["def_eval_job"] = svc.submit("defend_evaluate", config, session=session())
            st.success(f"Measurement job `{st.session_state['def_eval_job']}` queued.")
    follow_job("def_eval_job", POLL_SECONDS)

with results_tab:
    run = pick_run(
        lambda: svc.runs(base),
        label="Measurement run",
        key="def_run",
        empty="No finished measurement of this base yet.",
        format_func=svc.run_label,
    )
    with guard("Results"):
        result = svc.result(run)
        if rows := svc.fooling_rows(result):
            st.markdown(f"**Does the defence stop the fooling?** Preset `{result['fooling']['preset']}`")
            st.dataframe(rows, hide_index=True)
            st.plotly_chart(
                line_chart(svc.fooling_curves(result), x_title="fooling step", y_title="FSR %"),
                key="def_fool_curve",
            )
        if rows := svc.accuracy_rows(result):
            st.markdown("**Accuracy, gradient norm, alignment, maps vs the base**")
            st.dataframe(rows, hide_index=True)
        if rows := svc.input_attack_rows(result):
            st.markdown("**Input attacks on explanations** (1 = the attack did not move the map)")
            st.dataframe(rows, hide_index=True)
        if series := svc.alignment_series(result):
            st.markdown("**Alignment |<x, g>| / ||g|| against the PGD epsilon** (Zeng2021 Fig. 4)")
            st.plotly_chart(line_chart(series, x_title="epsilon", y_title="alignment"), key="def_align")
        for key, title in (("road", "ROAD"), ("roar", "ROAR")):
            for model, series in svc.removal_series(result, key).items():
                st.markdown(f"**{title}, {model}**: accuracy after removing the most relevant pixels")
                st.plotly_chart(
                    line_chart(series, x_title="removed %", y_title="accuracy %"), key=f"{key}_{model}"
                )
