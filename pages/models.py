"""Models: the checkpoint registry — cards, lineage tree, metrics; upload, rename, delete."""

from __future__ import annotations

import streamlit as st

from backend.services import models as svc
from backend.services.checkpoints import list_cards
from backend.services.figures import tree_figure
from pages._ui import ensure_routed, guard, is_presenter, session

ensure_routed()

st.title("Models")
presenter = is_presenter()
if not presenter:
    st.caption("Uploading, renaming and deleting checkpoints is for the presenter (sidebar: passphrase).")

if presenter:
    with st.expander("Upload a checkpoint", icon=":material/upload:"):
        with st.form("upload_form", clear_on_submit=False):
            f = st.file_uploader(
                "State dict (.safetensors, or a weights-only .pt)", type=["safetensors", "pt", "pth"]
            )
            arch = st.selectbox("Architecture", svc.architectures())
            up_name = st.text_input("Name")
            classes_text = st.text_input("Class names, comma-separated (optional)")
            sent = st.form_submit_button("Upload")
        if sent:
            with guard("Upload refused"):
                if f is None:
                    raise svc.InvalidConfig("Choose a checkpoint file to upload.")
                classes = [c.strip() for c in classes_text.split(",") if c.strip()] or None
                new = svc.upload(
                    f.getvalue(), f.name, architecture=arch, name=up_name, classes=classes, session=session()
                )
                st.success(f"Registered {new.name} ({new.id}).")

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
    with st.container(border=True):
        top = st.columns([3, 2, 2, 2])
        top[0].markdown(f"**{card.name}**  \n`{card.id}` · {card.kind} · {card.architecture}")
        top[1].page_link("pages/inspect.py", label="Inspect", query_params={"ckpt": card.id})
        top[2].page_link("pages/fool.py", label="Fool it", query_params={"base": card.id})
        if card.metrics:
            top[3].dataframe(
                {"metric": list(card.metrics), "value": [svc.metric_text(v) for v in card.metrics.values()]},
                hide_index=True,
            )
        with st.expander("Card, rename, delete" if presenter else "Card"):
            st.json(svc.card_summary(card) | {"config": card.config})
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
