"""Models: the checkpoint registry — cards, lineage tree, metrics; upload, rename, delete."""

from __future__ import annotations

import streamlit as st

from backend.services import job_follow, model_cards, policy
from backend.services import models as svc
from backend.services.checkpoints import list_cards
from backend.services.figures import tree_figure
from backend.services.form_fields import batch_text
from pages._form import render
from pages._ui import ensure_routed, follow_job, guard, is_presenter, session

ensure_routed()

st.title("Models")
presenter = is_presenter()
if not presenter:
    st.caption("Uploading, renaming and deleting checkpoints is for the presenter (sidebar: passphrase).")

if presenter:
    with st.expander("Classroom: disk, quotas, folders", icon=":material/school:"):
        with guard("Classroom"):
            used = policy.usage(session())
            st.progress(min(used.fraction, 1.0), text=f"Disk budget: {used.fraction:.0%} used")
            st.dataframe(used.rows(), hide_index=True)
            if st.button("Clear the result cache", key="cls_clear"):
                freed = policy.clear_cache(session())
                st.success(f"Cleared {freed / 1024**2:.1f} MB of cached heatmaps.")
            quota = policy.quota(session())
            with st.form("cls_quota"):
                st.markdown("**Student quota** (per session)")
                q1, q2, q3 = st.columns(3)
                values = {
                    "max_active_jobs": q1.number_input("Jobs at once", 0, 100, quota.max_active_jobs),
                    "max_jobs": q2.number_input("Jobs in all", 0, 10_000, quota.max_jobs),
                    "max_input_size": q3.number_input(
                        "Largest model input (px)", 0, 1024, quota.max_input_size
                    ),
                    "max_images": q1.number_input("Images per job", 0, 1_000_000, quota.max_images),
                    "max_steps": q2.number_input("Steps per job", 0, 1_000_000, quota.max_steps),
                    "max_upload_bytes": 1024**2
                    * q3.number_input(
                        "Uploads per session (MB)", 0, 100_000, quota.max_upload_bytes // 1024**2
                    ),
                }
                if st.form_submit_button("Save quota"):
                    with guard("Quota"):
                        policy.set_quota(session(), {k: int(v) for k, v in values.items()})
                        st.success("Saved: every student session uses it from its next submit.")
            st.markdown(
                "**Folders students may use** (datasets on this machine; symlinks leading out are refused)"
            )
            roots = policy.allowed_folders(session())
            st.caption(", ".join(f"`{r}`" for r in roots) or "none")
            folder = st.text_input("Allow a folder", key="cls_folder")
            if st.button("Allow", key="cls_allow") and folder:
                with guard("Folder"):
                    policy.allow_folder(session(), folder)
                    st.rerun()
            if roots:
                gone = st.selectbox("Stop allowing a folder", roots, key="cls_unfolder", format_func=str)
                if st.button("Remove", key="cls_disallow"):
                    with guard("Folder"):
                        policy.disallow_folder(session(), str(gone))
                        st.rerun()

    with st.expander("Upload a checkpoint", icon=":material/upload:"):
        with st.form("upload_form", clear_on_submit=False):
            f = st.file_uploader(
                "State dict (.safetensors, or a weights-only .pt)",
                type=["safetensors", "pt", "pth"],
                key="up_file",
            )
            arch = st.selectbox("Architecture", svc.architectures(), key="up_arch")
            up_name = st.text_input("Name", key="up_name")
            classes_text = st.text_input("Class names, comma-separated (optional)", key="up_classes")
            sent = st.form_submit_button("Upload", key="up_submit")
        if sent:
            with guard("Upload refused"):
                if f is None:
                    raise svc.InvalidConfig("Choose a checkpoint file to upload.")
                classes = [c.strip() for c in classes_text.split(",") if c.strip()] or None
                new = svc.upload(
                    f.getvalue(), f.name, architecture=arch, name=up_name, classes=classes, session=session()
                )
                st.success(f"Registered {new.name} ({new.id}).")

    with st.expander("Train the shapes CNN", icon=":material/model_training:"):
        values = render(svc.train_fields(), "tr", svc.form_context(), columns=4)
        st.caption(batch_text(values))
        if st.button("Train", key="tr_submit", type="primary"):
            with guard("Not submitted"):
                config = svc.build_train_config(values)
                st.session_state["tr_job"] = job_follow.submit("train", config, session=session())
                st.success(f"Training job `{st.session_state['tr_job']}` queued.")
        follow_job("tr_job", 1.5)

cards = []
with guard("Registry"):
    cards = list_cards(None)
if not cards:
    st.info("No checkpoints yet. The Demo page seeds the shapes model; or upload one above.")
    st.stop()

st.subheader("Lineage")
ids, labels, parents = svc.lineage_tree(cards)
st.plotly_chart(tree_figure(ids, labels, parents), key="lineage", config={"displayModeBar": False})

st.subheader("Checkpoints")
for card in cards:
    story = model_cards.story(card, cards)
    with st.container(border=True):
        top = st.columns([5, 1, 1])
        top[0].markdown(f"**{story.title}** · `{card.id}`  \n{story.origin}  \n{story.what}")
        top[1].page_link("pages/inspect.py", label="Inspect", query_params={"ckpt": card.id})
        top[2].page_link("pages/fool.py", label="Fool it", query_params={"base": card.id})
        if story.how:
            st.markdown(
                ("**How it was fooled**" if card.kind == "fooled" else "**How it was made**")
                + "\n"
                + "\n".join(f"- {line}" for line in story.how)
            )
        if story.numbers:
            st.dataframe(story.numbers, hide_index=True)
        if len(story.lineage) > 1 or story.children:
            st.caption("Lineage: " + " → ".join(c.name for c in story.lineage))
        with st.expander("Lineage graph, raw card" + (", rename, delete" if presenter else "")):
            ids, labels, parents = model_cards.lineage_graph(story)
            st.plotly_chart(
                tree_figure(ids, labels, parents), key=f"lineage_{card.id}", config={"displayModeBar": False}
            )
            st.json(svc.card_summary(card) | {"config": card.config, "metrics": card.metrics}, expanded=False)
            if not presenter:
                continue
            c1, c2 = st.columns(2)
            new_name = c1.text_input("New name", card.name, key=f"rn_{card.id}")
            if c1.button("Rename", key=f"rnb_{card.id}"):
                with guard("Rename"):
                    svc.rename(card.id, new_name, session=session())
                    st.rerun()
            sure = c2.checkbox("Yes, delete this checkpoint and its cached heatmaps", key=f"del_ok_{card.id}")
            if c2.button("Delete", disabled=not sure, key=f"del_{card.id}"):
                with guard("Delete"):
                    svc.delete(card.id, session=session())
                    st.rerun()
