"""Fool: every setting of a fooling run as a form built from the registries; submit -> a job id.

The attack's and the interpreter's fields come from their registry entries, FoolConfig's from its
fields (`backend.fool.fields`); this page only lays them out. A preset fills every field (and says
what it set); without one the form starts from the defaults of the paper that fooled the
checkpoint's kind of model.
"""

from __future__ import annotations

import json

import streamlit as st

from backend.services import fool_form as svc
from backend.services.figures import heatmap_figure
from backend.services.form_fields import batch_text
from pages import _form as form
from pages._ui import ensure_routed, guard, pick_checkpoint, session

ensure_routed()

NO_PRESET = "(none)"
DATASET_KINDS = {
    "shapes": "Synthetic shapes",
    "samples": "Sample photos",
    "upload": "Upload a zip",
    "folder": "Folder on the server",
}

st.title("Fool an explanation")

base = pick_checkpoint("f_base", label="Base checkpoint", preselect=st.query_params.get("base"))
if base is None:
    st.stop()
ctx = form.context(base)
st.caption(f"{ctx.architecture}, {len(ctx.classes)} classes, input {ctx.size}x{ctx.size}")
FIELDS = svc.config_fields()


def set_dataset(spec: dict | None) -> None:
    """Put a dataset spec into the dataset widgets; keys they do not show ride along unchanged."""
    if not spec:
        return
    kind = spec.get("kind")
    shown = {
        "shapes": ("n", "seed", "pair", "pair_fraction"),
        "samples": ("augment", "seed"),
        "folder": ("path",),
    }.get(kind, ())
    if kind not in DATASET_KINDS:
        return
    st.session_state["f_ds_kind"] = DATASET_KINDS[kind]
    for name, value in {
        "f_shapes_n": spec.get("n") if kind == "shapes" else None,
        "f_shapes_seed": spec.get("seed") if kind == "shapes" else None,
        "f_aug": spec.get("augment") if kind == "samples" else None,
        "f_aug_seed": spec.get("seed") if kind == "samples" else None,
        "f_folder": spec.get("path") if kind == "folder" else None,
    }.items():
        if value is not None:
            st.session_state[name] = value
    st.session_state["f_ds_extra"] = {k: v for k, v in spec.items() if k not in shown}


def apply_state(state: svc.FormState) -> None:
    """Fill every widget from a whole config (a preset's, or the architecture's defaults)."""
    form.set_values("f", FIELDS, state.config)
    attack, interpreter = state.config["attack"], state.config["interpreter"]
    form.set_values(f"f_ap_{attack}", svc.attack_fields(attack), state.attack)
    form.set_values(f"f_ip_{interpreter}", svc.interpreter_fields(interpreter), state.interpreter)
    set_dataset(state.dataset)


def apply_preset() -> None:
    name = st.session_state.get("f_preset", NO_PRESET)
    st.session_state["f_refused"] = None
    with guard(f"Preset {name}"):
        if name == NO_PRESET:
            apply_state(svc.initial_state(base))
        else:
            st.session_state["f_refused"] = name  # until it fits: Submit must not send the old form
            apply_state(svc.preset_state(name, st.session_state.get("f_dataset"), base))
            st.session_state["f_refused"] = None


# A new checkpoint without a preset starts from its architecture's paper defaults.
if st.session_state.get("f_for") != base:
    first = "f_for" not in st.session_state
    st.session_state["f_for"] = base
    if first or st.session_state.get("f_preset", NO_PRESET) == NO_PRESET:
        with guard("Defaults"):
            apply_state(svc.initial_state(base))

preset = st.selectbox(
    "Preset (from the papers' tables, or tuned for the shapes CNN)",
    [NO_PRESET, *svc.presets_for(ctx.architecture)],
    key="f_preset",
    on_change=apply_preset,
)
if preset != NO_PRESET:
    with st.expander(f"What the preset set · {svc.preset_source(preset)}"):
        st.dataframe(svc.preset_rows(preset), hide_index=True)
        st.caption("Every other field has FoolConfig's default; change any of them below.")
else:
    st.caption(
        f"No preset: the form starts from the defaults for {ctx.architecture} "
        f"({svc.defaults_source(ctx.architecture)})."
    )

# ---- dataset -------------------------------------------------------------------------------------
st.subheader("Training images")
kinds = list(DATASET_KINDS.values())
ds_label = st.radio("Dataset", kinds, horizontal=True, key="f_ds_kind")
ds_kind = next(k for k, v in DATASET_KINDS.items() if v == ds_label)
dataset: dict | None = None
if ds_kind == "shapes":
    c1, c2 = st.columns(2)
    n = c1.number_input("Images", 8, 100_000, **form.initial("f", "shapes_n", 256), key="f_shapes_n")
    seed = c2.number_input("Seed", 0, 1_000_000, **form.initial("f", "shapes_seed", 1), key="f_shapes_seed")
    dataset = {"kind": "shapes", "n": int(n), "seed": int(seed)}
elif ds_kind == "samples":
    c1, c2 = st.columns(2)
    aug = c1.number_input("Augmented copies per photo", 1, 256, **form.initial("f", "aug", 16), key="f_aug")
    seed = c2.number_input("Seed", 0, 1_000_000, **form.initial("f", "aug_seed", 0), key="f_aug_seed")
    dataset = {"kind": "samples", "augment": int(aug), "seed": int(seed)}
elif ds_kind == "upload":
    z = st.file_uploader(
        "Zip of images (one folder per class, or flat = unlabelled)", type=["zip"], key="f_zip"
    )
    if z is not None:
        with guard(f"'{z.name}'"):
            dataset = svc.save_dataset_zip(z.getvalue(), z.name, session=session())
            st.success(f"Extracted to {dataset['path']}")
else:
    path = st.text_input("Folder path", key="f_folder")
    if path:
        with guard("Folder"):
            dataset = svc.folder_dataset(path, session=session())
extra = st.session_state.get("f_ds_extra") or {}
if dataset is not None and extra.get("kind", dataset["kind"]) == dataset["kind"]:
    dataset = {**extra, **dataset}
st.session_state["f_dataset"] = dataset

# ---- attack and interpreter ----------------------------------------------------------------------
st.subheader("Attack")
by_name = {f.name: f for f in FIELDS}
values = form.render([by_name["attack"], by_name["interpreter"]], "f", ctx, columns=2)
attack, interpreter = values["attack"], values["interpreter"]
st.caption(f"**{svc.attack_labels()[attack]}**: {svc.attack_description(attack)}")
st.caption(f"**{svc.method_label(interpreter)}**: {svc.method_description(interpreter)}")


def picture():
    return svc.model_view(base, svc.preview_photo(dataset, ctx.size))


attack_values = form.render(svc.attack_fields(attack), f"f_ap_{attack}", ctx, picture=picture)

# ---- optimisation (common), then everything else -------------------------------------------------
st.subheader("Optimisation")
common = [f for f in FIELDS if not f.advanced and f.name not in values]
values |= form.render(common, "f", ctx, columns=4)
with st.expander("Advanced: interpreter parameters, layer, normalisation, optimizer, schedule, ..."):
    interp_fields = svc.interpreter_fields(interpreter)
    if interp_fields:
        st.markdown(f"**{svc.method_label(interpreter)} parameters**")
    interpreter_values = form.render(interp_fields, f"f_ip_{interpreter}", ctx, columns=4)
    st.markdown("**Run**")
    values |= form.render([f for f in FIELDS if f.advanced], "f", ctx, columns=4)
st.caption(batch_text(values))


def config() -> dict:
    return svc.assemble_config(base, dataset, values, attack_values, interpreter_values)


# ---- preview and estimate ------------------------------------------------------------------------
with st.expander("Preview the loss's target on one image"):
    with guard("Preview"):
        pv = svc.preview_form_target(base, dataset, attack, attack_values, interpreter)
        if pv is None:
            st.caption("Nothing to preview until the attack's map is chosen.")
        else:
            st.plotly_chart(heatmap_figure(pv.image, pv.target, opacity=0.55, height=300), key="f_preview")
            st.caption(pv.caption)

if st.button("Estimate run time on this machine", key="f_estimate"):
    with guard("Estimate"):
        secs = svc.estimate_for(config())
        st.info(f"About {secs:.0f} s on `{ctx.architecture}` here (one measured step x steps).")

if st.button("Submit fooling job", type="primary", key="f_submit"):
    with guard("Not submitted"):
        if refused := st.session_state.get("f_refused"):
            svc.preset_state(refused, None, base)  # says again why this checkpoint refuses the preset
        submitted = config()
        job_id = svc.submit(submitted, session=session())
        st.success(f"Job `{job_id}` queued.")
        with st.expander("The submitted config"):
            st.code(json.dumps(submitted, indent=2), language="json")
        st.page_link(
            "pages/jobs.py",
            label="Watch it in Jobs",
            icon=":material/pending_actions:",
            query_params={"job": job_id},
        )
