"""Fool: a form for every attack, option and preset of the fooling engine; submit -> a job id."""

from __future__ import annotations

import streamlit as st

from backend.errors import InvalidConfig
from backend.services import fool_form as svc
from backend.services.checkpoints import registry
from backend.services.figures import drawing_figure, heatmap_figure
from backend.services.mask_draw import selection_mask
from pages._ui import ensure_routed, guard, pick_checkpoint, session

ensure_routed()

st.title("Fool an explanation")

# Widget keys that a preset may set: config field -> session key.
PRESET_KEYS = {
    "attack": "f_attack",
    "interpreter": "f_interp",
    "lam": "f_lam",
    "lr": "f_lr",
    "steps": "f_steps",
    "batch_size": "f_batch",
    "classification": "f_cls",
    "softplus_beta": "f_beta",
    "freeze_classifier": "f_freeze",
}


def apply_preset() -> None:
    name = st.session_state.get("f_preset")
    if not name or name == "(none)":
        return
    cfg = svc.preset(name)
    for field, key in PRESET_KEYS.items():
        if field in cfg and cfg[field] is not None:
            st.session_state[key] = cfg[field]
    st.session_state["f_use_beta"] = cfg.get("softplus_beta") is not None
    st.session_state["f_preset_params"] = cfg.get("attack_params", {})
    if cfg.get("dataset", {}).get("kind") == "shapes":
        st.session_state["f_ds_kind"] = "Synthetic shapes"
        st.session_state["f_shapes_n"] = int(cfg["dataset"].get("n", 256))
        if "pair_fraction" in cfg["dataset"]:
            st.session_state["f_pair_share"] = float(cfg["dataset"]["pair_fraction"])


base = pick_checkpoint("f_base", label="Base checkpoint", preselect=st.query_params.get("base"))
if base is None:
    st.stop()
card = registry().card(base)
size = svc.input_size(base)
st.caption(f"{card.architecture}, {card.num_classes} classes, input {size}x{size}")

st.selectbox(
    "Preset (from the papers' tables, or tuned for the shapes CNN)",
    ["(none)", *svc.presets_for(card.architecture)],
    key="f_preset",
    on_change=apply_preset,
)
if st.session_state.get("f_preset", "(none)") != "(none)":
    st.caption(f"Source: {svc.preset_source(st.session_state['f_preset'])}")

# ---- dataset -------------------------------------------------------------------------------------
st.subheader("Training images")
ds_kind = st.radio(
    "Dataset",
    ["Synthetic shapes", "Sample photos", "Upload a zip", "Folder on the server"],
    horizontal=True,
    key="f_ds_kind",
)
dataset: dict | None = None
if ds_kind == "Synthetic shapes":
    c1, c2 = st.columns(2)
    n = c1.number_input("Images", 8, 100_000, 256, key="f_shapes_n")
    seed = c2.number_input("Seed", 0, 1_000_000, 1, key="f_shapes_seed")
    dataset = {"kind": "shapes", "n": int(n), "size": size, "seed": int(seed)}
elif ds_kind == "Sample photos":
    c1, c2 = st.columns(2)
    aug = c1.number_input("Augmented copies per photo", 1, 256, 16, key="f_aug")
    seed = c2.number_input("Seed", 0, 1_000_000, 0, key="f_aug_seed")
    dataset = {"kind": "samples", "augment": int(aug), "seed": int(seed)}
elif ds_kind == "Upload a zip":
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
        dataset = {"kind": "folder", "path": path}

# ---- attack --------------------------------------------------------------------------------------
st.subheader("Attack")
labels = svc.attack_labels()
c1, c2 = st.columns(2)
attack = c1.selectbox("Attack", list(labels), format_func=labels.get, key="f_attack")
interps = svc.interpreters()
interpreter = c2.selectbox(
    "Interpreter in the loss",
    interps,
    index=interps.index("gradcam") if "gradcam" in interps else 0,
    format_func=svc.method_label,
    key="f_interp",
)
preset_params = st.session_state.get("f_preset_params", {})
attack_params: dict = {}
if attack == "location":
    mode = st.radio(
        "Mask", ["Preset", "Draw", "Draw a rectangle", "Upload"], horizontal=True, key="f_mask_mode"
    )
    if mode == "Preset":
        attack_params["mask"] = st.selectbox("Mask preset", svc.mask_presets(), key="f_mask_preset")
    elif mode == "Draw":
        st.caption(
            "Circle the region the explanation should move to with the lasso (or pick the box tool "
            "in the chart's toolbar); several shapes add up. Double-click the image to start over."
        )
        with guard("Drawing"):
            picture = svc.preview_photo(dataset, size)
            event = st.plotly_chart(
                drawing_figure(svc.model_view(base, picture)),
                key="f_mask_draw",
                on_select="rerun",
                selection_mode=("lasso", "box"),
                config={"displayModeBar": True, "modeBarButtonsToRemove": ["toImage"]},
            )
            mask = selection_mask(size, event.selection if event else None)
            if mask is None:
                st.info("Nothing drawn yet: the job needs a mask.", icon=":material/gesture:")
            else:
                attack_params["mask"] = svc.save_array(mask, "mask")
                st.caption(f"Drawn mask: {int(mask.sum())} of {size * size} pixels ({mask.mean():.0%}).")
    elif mode == "Draw a rectangle":
        r = st.slider("Rows (fraction of the image)", 0.0, 1.0, (0.0, 0.25), 0.01, key="f_rect_rows")
        c = st.slider("Columns (fraction of the image)", 0.0, 1.0, (0.0, 0.25), 0.01, key="f_rect_cols")
        with guard("Mask"):
            attack_params["mask"] = svc.save_array(svc.rectangle_mask(size, r, c), "mask")
    else:
        up = st.file_uploader(
            "Mask image (white = highlight)", type=["png", "jpg", "jpeg", "webp"], key="f_mask_up"
        )
        if up is not None:
            with guard(f"'{up.name}'"):
                attack_params["mask"] = svc.save_array(svc.image_to_map(up.getvalue(), size), "mask")
elif attack == "topk":
    attack_params["k"] = st.slider(
        "k (share of top pixels)", 0.01, 0.5, float(preset_params.get("k", 0.1)), key="f_k"
    )
elif attack == "com_point":
    pr, pc = preset_params.get("point", [0.0, 0.0])
    c1, c2 = st.columns(2)
    attack_params["point"] = [
        c1.slider("Row (fraction)", 0.0, 1.0, float(pr), key="f_pt_r"),
        c2.slider("Column (fraction)", 0.0, 1.0, float(pc), key="f_pt_c"),
    ]
elif attack == "target_heatmap":
    up = st.file_uploader(
        "Target heatmap (image or .npy-free PNG)", type=["png", "jpg", "jpeg", "webp"], key="f_target"
    )
    if up is not None:
        with guard(f"'{up.name}'"):
            attack_params["target"] = svc.save_array(svc.image_to_map(up.getvalue(), size), "target")
    else:
        attack_params["target"] = st.selectbox(
            "…or a preset target", svc.mask_presets(), key="f_target_preset"
        )
elif attack == "active":
    c1, c2, c3 = st.columns(3)
    classes = list(range(card.num_classes))
    name_of = lambda i: card.classes[i] if i < len(card.classes) else str(i)  # noqa: E731
    attack_params["c1"] = c1.selectbox("Class c1", classes, index=0, format_func=name_of, key="f_c1")
    attack_params["c2"] = c2.selectbox(
        "Class c2", classes, index=min(1, len(classes) - 1), format_func=name_of, key="f_c2"
    )
    if dataset is not None and dataset.get("kind") == "shapes":
        share = c3.slider(
            "Two-object images (c1 and c2 side by side)", 0.0, 1.0, 0.5, 0.05, key="f_pair_share"
        )
        if share > 0:
            dataset = {**dataset, "pair": [attack_params["c1"], attack_params["c2"]], "pair_fraction": share}
    fool_on = svc.active_image_choices()
    default = "unlabelled" if dataset is not None and dataset.get("pair") else "labelled"
    attack_params["images"] = st.selectbox(
        "Images the swap is trained and measured on (Heo's D_fool)",
        list(fool_on),
        index=list(fool_on).index(preset_params.get("images", default)),
        format_func=fool_on.get,
        key="f_active_images",
    )

# ---- optimisation --------------------------------------------------------------------------------
st.subheader("Optimisation")
c1, c2, c3, c4 = st.columns(4)
lam = c1.number_input("lambda (fooling weight)", 0.0, 1e6, 10.0, key="f_lam")
lr = c2.number_input("Learning rate", 0.0, 1.0, 2e-3, format="%.2e", key="f_lr")
steps = c3.number_input("Steps", 1, 1_000_000, 120, key="f_steps")
batch = c4.number_input("Batch size", 1, 4096, 32, key="f_batch")
c1, c2, c3, c4 = st.columns(4)
classification = c1.selectbox("Classification term", svc.classification_terms(), key="f_cls")
freeze = c2.checkbox("Freeze the classifier", False, key="f_freeze")
first_n = c3.number_input("Train only the first N layers (0 = all)", 0, 1000, 0, key="f_first_n")
use_beta = c4.checkbox("Softplus instead of ReLU", False, key="f_use_beta")
beta = st.number_input("softplus beta", 0.0, 1000.0, 20.0, key="f_beta") if use_beta else None
c1, c2 = st.columns(2)
val_every = c1.number_input(
    "Validate every N steps (0 = only at the end)", 0, 1_000_000, 0, key="f_val_every"
)
keep_best = c2.checkbox(
    "Keep the best validated weights",
    False,
    key="f_keep_best",
    help="End with the weights of the validation with the highest FSR (then agreement), not the last "
    "step's: some attacks peak and fall back. Needs periodic validation.",
)
name = st.text_input("Name of the fooled checkpoint", f"{card.name}-{attack}-{interpreter}", key="f_name")

values = {
    "model": base,
    "dataset": dataset,
    "attack": attack,
    "attack_params": attack_params,
    "interpreter": interpreter,
    "lam": float(lam),
    "lr": float(lr),
    "steps": int(steps),
    "batch_size": int(batch),
    "classification": classification,
    "freeze_classifier": bool(freeze),
    "train_first_n": int(first_n) or None,
    "softplus_beta": float(beta) if beta is not None else None,
    "val_every": int(val_every),
    "keep_best": bool(keep_best),
    "name": name or None,
}

# ---- preview and estimate ------------------------------------------------------------------------
with st.expander("Preview the loss's target on one image"):
    with guard("Preview"):
        photo = svc.preview_photo(dataset, size)
        pv = svc.preview_target(base, attack, attack_params, interpreter, photo)
        st.plotly_chart(heatmap_figure(pv.image, pv.target, opacity=0.55, height=300), key="f_preview")
        st.caption(pv.caption)

if st.button("Estimate run time on this machine", key="f_estimate"):
    with guard("Estimate"):
        config = svc.build_config(values)
        secs = svc.estimate_seconds(config, svc.dataset_size(config["dataset"], card.preprocessing))
        st.info(
            f"About {secs:.0f} s on `{registry().card(base).architecture}` here (one measured step x steps)."
        )

if st.button("Submit fooling job", type="primary", key="f_submit"):
    with guard("Not submitted"):
        if dataset is None:
            raise InvalidConfig("Choose the training images first (dataset).")
        if attack == "location" and "mask" not in attack_params:
            raise InvalidConfig("Draw or upload the mask first (or pick a preset mask).")
        job_id = svc.submit(svc.build_config(values), session=session())
        st.success(f"Job `{job_id}` queued.")
        st.page_link(
            "pages/jobs.py",
            label="Watch it in Jobs",
            icon=":material/pending_actions:",
            query_params={"job": job_id},
        )
