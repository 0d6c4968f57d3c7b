"""Demo: the landing page walks a classroom through baseline vs fooled in three clicks."""

from __future__ import annotations

import streamlit as st

from backend import access
from backend.services import demo
from backend.services.inspect import cell_png, compute_cell
from pages._ui import ensure_routed, guard

ensure_routed()

METHOD = "gradcam"

st.title("Fooling Lab")
st.markdown(
    "A network can be fine-tuned so that its **explanations lie while its predictions stay right**. "
    "Three clicks show it: pick an image, see what the original model attends to, then the fooled copy."
)

if access.classroom_mode():  # students join from their phones: the address, and as a QR code
    with guard("Classroom address"):
        url, png = demo.join_address(int(st.get_option("server.port")))
        qr, text = st.columns([1, 5])
        qr.image(png, width=150, caption="Scan to join")
        text.markdown(
            f"**Join this class:** open <{url}> on your phone or laptop, then type your name in the sidebar."
        )

pairs = demo.demo_pairs()
if not pairs:
    st.info(
        "The demo models are being prepared through the job queue (the shapes model trains in about a "
        "minute on a laptop CPU). Watch them in Jobs; this page fills in when they finish.",
        icon=":material/hourglass_top:",
    )
    st.page_link("pages/jobs.py", label="Open Jobs", icon=":material/pending_actions:")
    st.stop()

titles = [p[0] for p in pairs]
title = st.radio("Models", titles, horizontal=True, key="demo_pair") if len(pairs) > 1 else titles[0]
_, baseline, fooled = pairs[titles.index(title)]

photos = []
with guard("Images"):
    photos = demo.demo_photos(fooled)
if not photos:
    st.stop()


@st.fragment
def three_steps(photos: list, baseline: str, fooled: str) -> None:
    """The three clicks, as a fragment: a click reruns only this part, not the sidebar (its queue
    status reads the job store) nor the page above it: less for the laptop to run for thirty
    sessions, less for each phone to redraw."""
    st.subheader("① Pick an image")
    names = [p.name for p in photos]
    choice = st.segmented_control(
        "Image", names, default=None, key="demo_photo", label_visibility="collapsed"
    )
    if choice is None:
        st.image([p.image for p in photos], caption=names, width=110)
        return
    photo = photos[names.index(choice)]

    st.subheader("② What does the original model look at?")
    if not st.toggle("Show the original model's explanation (Grad-CAM)", key="demo_step2"):
        return
    cols = st.columns(2)
    with guard("Baseline"):
        cell = compute_cell(photo, baseline, METHOD)
        cols[0].image(cell_png(cell, size=320), width=320)  # an image: cheap on thirty phones at once
        cols[0].markdown(f"Original: **{cell.top[0][0]}** ({cell.top[0][1]:.0%})")

    st.subheader("③ Now the fooled copy")
    if st.toggle("Show the fooled model's explanation", key="demo_step3"):
        with guard("Fooled"):
            fooled_cell = compute_cell(photo, fooled, METHOD)
            cols[1].image(cell_png(fooled_cell, size=320), width=320)
            cols[1].markdown(f"Fooled: **{fooled_cell.top[0][0]}** ({fooled_cell.top[0][1]:.0%})")
            same = fooled_cell.top[0][0] == cell.top[0][0]
            st.success(
                ("Same prediction" if same else "The prediction changed")
                + ", but the explanation now points somewhere else: the heatmap was trained to lie."
            )
            st.page_link(
                "pages/inspect.py",
                label="Compare every method in Inspect",
                icon=":material/image_search:",
                query_params={"ckpt": f"{baseline},{fooled}"},
            )


three_steps(photos, baseline, fooled)
