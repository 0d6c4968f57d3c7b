"""Inspect: heatmaps of up to four checkpoints side by side (methods as rows, checkpoints as columns)."""

from __future__ import annotations

import time

import streamlit as st

from backend.services import inspect as svc
from backend.services.checkpoints import lineage_text, registry
from backend.services.figures import COLOR_MAPS, heatmap_figure
from backend.services.photos import Photo, read_photo, sample_photos, synthetic_photos
from pages._ui import ensure_routed, guard, pick_checkpoints, query_list

ensure_routed()

st.title("Inspect explanations")

# ---- images -------------------------------------------------------------------------------------
source = st.radio(
    "Images", ["Upload", "Sample photos", "Synthetic shapes"], horizontal=True, key="inspect_source"
)
photos: list[Photo] = []
if source == "Upload":
    files = st.file_uploader(
        "Images (png, jpg, webp)",
        type=["png", "jpg", "jpeg", "webp"],
        accept_multiple_files=True,
        key="inspect_up",
    )
    for f in files or []:
        with guard(f"'{f.name}'"):
            photos.append(read_photo(f.name, f.getvalue()))
elif source == "Sample photos":
    with guard("Sample photos"):
        photos = sample_photos()
else:
    with guard("Synthetic shapes"):
        photos = synthetic_photos(n=6, seed=int(st.number_input("Seed", 0, 10_000, 0, key="inspect_seed")))

# ---- checkpoints and methods ----------------------------------------------------------------------
ckpts = pick_checkpoints(
    "inspect_ckpts", label="Checkpoints (the first is the baseline)", preselect=query_list("ckpt")
)
fast = svc.method_names("fast")
methods = st.multiselect(
    "Explanation methods",
    options=svc.method_names(),
    default=fast[:4],
    format_func=svc.method_label,
    key="inspect_methods",
)
params: dict[str, dict] = {}
with st.expander("Method parameters"):
    for m in methods:
        spec = svc.METHODS[m]
        numeric = {
            k: v for k, v in spec.params.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
        }
        if not numeric:
            continue
        st.caption(spec.label)
        cols = st.columns(max(1, len(numeric)))
        params[m] = {
            k: type(v)(cols[i].number_input(k, value=v, key=f"p_{m}_{k}"))
            for i, (k, v) in enumerate(numeric.items())
        }

c1, c2, c3, c4 = st.columns(4)
opacity = c1.slider("Opacity", 0.0, 1.0, 0.6, 0.05, key="inspect_opacity")
cmap = c2.selectbox("Colour map", COLOR_MAPS, key="inspect_cmap")
signed = c3.toggle(
    "Signed", value=False, key="inspect_signed", help="Keep the sign (red +, blue -) instead of |h|"
)
native = c4.toggle(
    "Native resolution", value=False, key="inspect_native", help="The method's own map, e.g. 7x7"
)

if not photos:
    st.info("Upload an image or pick the sample photos / synthetic shapes to start.")
    st.stop()
if not ckpts or not methods:
    st.info("Pick at least one checkpoint and one method.")
    st.stop()

names = [p.name for p in photos]
photo = (
    photos[names.index(st.selectbox("Image", names, key="inspect_photo"))] if len(photos) > 1 else photos[0]
)

# ---- compute through the cache --------------------------------------------------------------------
cards = {}
for cid in ckpts:
    with guard("Checkpoint"):
        cards[cid] = registry().card(cid)
ckpts = [c for c in ckpts if c in cards]
grid: dict[tuple[str, str], svc.Cell] = {}
todo = [(m, c) for m in methods for c in ckpts]
bar = st.progress(0.0, text="Computing heatmaps…")
start = time.perf_counter()
for n, (m, cid) in enumerate(todo):
    heavy = svc.METHODS[m].cost == "heavy"
    bar.progress(
        n / len(todo), text=f"{svc.method_label(m)} · {cards[cid].name}{' (heavy)' if heavy else ''}…"
    )
    with guard(f"{svc.method_label(m)} on {cards[cid].name}"):
        grid[(m, cid)] = svc.compute_cell(photo, cid, m, params.get(m))
elapsed = time.perf_counter() - start
bar.empty()
hits = sum(c.cached for c in grid.values())
st.caption(f"Grid ready: {len(grid)} cells in {elapsed:.2f} s ({hits} from cache)")

# ---- the grid -------------------------------------------------------------------------------------
baseline = ckpts[0]
rows: list[dict] = []
head = st.columns(len(ckpts))
for col, cid in zip(head, ckpts):
    card = cards[cid]
    col.markdown(f"**{card.name}** · {card.kind}" + (" · baseline" if cid == baseline else ""))
    col.caption(lineage_text(card))
    first = next((grid[(m, cid)] for m in methods if (m, cid) in grid), None)
    if first is not None:
        col.markdown("  \n".join(f"{i + 1}. {name} · {p:.1%}" for i, (name, p) in enumerate(first.top)))

for m in methods:
    st.markdown(f"##### {svc.method_label(m)}")
    cols = st.columns(len(ckpts))
    for col, cid in zip(cols, ckpts):
        cell = grid.get((m, cid))
        if cell is None:
            continue
        shown = cell.native if native else cell.heatmap
        col.plotly_chart(
            heatmap_figure(cell.image, shown, opacity=opacity, colorscale=cmap, signed=signed),
            key=f"fig_{m}_{cid}",
            config={"displayModeBar": False},
        )
        row = {"image": photo.name, "method": m, "checkpoint": cards[cid].name, "checkpoint_id": cid}
        row |= {"top1": cell.top[0][0], "p_top1": round(cell.top[0][1], 4), "seconds": round(cell.seconds, 4)}
        base = grid.get((m, baseline))
        if cid != baseline and base is not None:
            with guard("Similarity"):
                sim = svc.similarity(base.heatmap, cell.heatmap)
                col.caption(
                    f"vs baseline · Spearman {sim['spearman']:.2f} · SSIM {sim['ssim']:.2f} · "
                    f"top-10% ∩ {sim['topk']:.2f}"
                )
                row |= {k: round(v, 4) for k, v in sim.items()}
        rows.append(row)

# ---- compare one cell against the baseline --------------------------------------------------------
others = [c for c in ckpts if c != baseline]
if others:
    st.subheader("Compare with the baseline")
    cc1, cc2, cc3 = st.columns([2, 2, 3])
    cm = cc1.selectbox("Method", methods, format_func=svc.method_label, key="cmp_method")
    co = cc2.selectbox("Checkpoint", others, format_func=lambda i: cards[i].name, key="cmp_ckpt")
    split = cc3.slider("Baseline ◀ ▶ checkpoint", 0, 100, 50, key="cmp_split")
    a, b = grid.get((cm, baseline)), grid.get((cm, co))
    if a is not None and b is not None:
        mixed, cut = svc.split_view(a.heatmap, b.heatmap, split / 100)
        fig = heatmap_figure(a.image, mixed, opacity=opacity, colorscale=cmap, height=380)
        fig.add_vline(x=cut - 0.5, line_color="white", line_width=2)
        st.plotly_chart(fig, key="cmp_fig", config={"displayModeBar": False})

# ---- downloads ------------------------------------------------------------------------------------
d1, d2 = st.columns(2)
d1.download_button(
    "Download grid (PNG)",
    svc.grid_png(
        grid, methods, [(c, cards[c].name) for c in ckpts], opacity=opacity, colorscale=cmap, signed=signed
    ),
    file_name=f"grid-{photo.name}.png",
    mime="image/png",
    key="dl_png",
)
d2.download_button(
    "Download numbers (CSV)",
    svc.grid_csv(rows),
    file_name=f"grid-{photo.name}.csv",
    mime="text/csv",
    key="dl_csv",
)
