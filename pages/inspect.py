"""Inspect: heatmaps of up to four checkpoints side by side (methods as rows, checkpoints as columns).

The page computes the grid (through the cache) in a full run; drawing it is a fragment, so a
display-only change (opacity, colour map, sign, resolution, the compare slider) reruns just the
drawing and never touches the models, the cache or the similarity numbers again. The cells are
drawn as images (`services.inspect.cell_png`, memoised), and one cell at a time becomes an interactive
chart on demand: eight Plotly charts cost about half a second to lay out on every redraw.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from backend.services import inspect as svc
from backend.services import take_home
from backend.services.checkpoints import lineage_text
from backend.services.figures import COLOR_MAPS, heatmap_figure
from backend.services.form_fields import form_context, method_fields
from backend.services.photos import Photo, read_photo, sample_photos, synthetic_photos
from pages import _form as form
from pages._ui import ensure_routed, guard, pick_checkpoints, query_list

ensure_routed()

PLOT_CONFIG = {"displayModeBar": False}


@st.cache_resource(show_spinner=False, max_entries=4)
def _sample_photos() -> list[Photo]:
    return sample_photos()


@st.cache_resource(show_spinner=False, max_entries=8)
def _synthetic_photos(seed: int) -> list[Photo]:
    return synthetic_photos(n=6, seed=seed)


def cell_progress(slot, label: str) -> Callable:
    """A progress callback (`backend.progress` protocol: one `Progress`) drawing a heavy cell's own bar
    in `slot` (at most ~50 updates per cell)."""
    shown = [-1.0]

    def report(p) -> None:
        if p.fraction - shown[0] >= 0.02 or p.done >= p.total:
            shown[0] = p.fraction
            slot.progress(p.fraction, text=f"{label}: {p.done}/{p.total}")

    return report


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
        photos = _sample_photos()
else:
    with guard("Synthetic shapes"):
        photos = _synthetic_photos(int(st.number_input("Seed", 0, 10_000, 0, key="inspect_seed")))

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
    ctx = None
    with guard("Checkpoint"):
        ctx = form_context(ckpts[0]) if ckpts else None
    for m in methods if ctx is not None else []:
        fields = method_fields(m)
        if fields:
            st.caption(svc.method_label(m))
            params[m] = form.render(fields, f"p_{m}", ctx, columns=4)

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
bar = st.progress(0.0, text="Computing heatmaps…")
slots: list = []


def start_cell(done: int, total: int, label: str, heavy: bool) -> Callable[[int, int], None] | None:
    """Move the grid's bar on; a heavy cell gets its own bar until the next cell starts."""
    for slot in slots:
        slot.empty()
    slots.clear()
    bar.progress(done / max(total, 1), text=f"{label}{' (heavy)' if heavy else ''}…")
    if not heavy:
        return None
    slots.append(st.empty())
    return cell_progress(slots[-1], label)


run = svc.GridRun({}, {}, [], 0.0)
with guard("Grid"):
    run = svc.compute_grid(photo, ckpts, methods, params, on_cell=start_cell)
for slot in slots:
    slot.empty()
bar.empty()
for message in run.errors:
    st.error(message, icon=":material/error:")
cards, grid, elapsed = run.cards, run.cells, run.seconds
ckpts = [c for c in ckpts if c in cards]
if not ckpts:
    st.stop()
hits = sum(c.cached for c in grid.values())
shared = sum(c.shared for c in grid.values())  # computed once for several sessions asking at once
st.caption(
    f"Grid ready: {len(grid)} cells in {elapsed:.2f} s ({hits} from cache"
    + (f", {shared} shared with other sessions)" if shared else ")")
)
baseline = ckpts[0]
sims: dict[tuple[str, str], dict[str, float]] = {}
with guard("Similarity"):
    sims = svc.grid_similarities(grid, baseline)


# ---- the grid (a fragment: display changes rerun only this) ---------------------------------------
@st.fragment
def show_grid(
    photo_name: str,
    cards: dict,
    ckpts: list[str],
    methods: list[str],
    grid: dict[tuple[str, str], svc.Cell],
    sims: dict[tuple[str, str], dict[str, float]],
) -> None:
    baseline = ckpts[0]
    c1, c2, c3, c4 = st.columns(4)
    opacity = c1.slider("Opacity", 0.0, 1.0, 0.6, 0.05, key="inspect_opacity")
    cmap = c2.selectbox("Colour map", COLOR_MAPS, key="inspect_cmap")
    signed = c3.toggle(
        "Signed",
        value=False,
        key="inspect_signed",
        help="The engine's signed map (red +, blue -), not the method's map (what attacks optimise)",
    )
    native = c4.toggle(
        "Native resolution", value=False, key="inspect_native", help="The method's own map, e.g. 7x7"
    )

    rows: list[dict] = []
    head = st.columns(len(ckpts))
    for col, cid in zip(head, ckpts):
        card = cards[cid]
        col.markdown(f"**{card.name}** · {card.kind}" + (" · baseline" if cid == baseline else ""))
        col.caption(lineage_text(card))
        first = next((grid[(m, cid)] for m in methods if (m, cid) in grid), None)
        if first is not None:
            col.markdown("  \n".join(f"{i + 1}. {name} · {p:.1%}" for i, (name, p) in enumerate(first.top)))

    # Cells are images (drawn once per display setting, shared between sessions); one cell at a time
    # becomes an interactive chart on demand, for hovering values.
    for m in methods:
        st.markdown(f"##### {svc.method_label(m)}")
        if svc.METHODS[m].description:
            st.caption(svc.METHODS[m].description)
        cols = st.columns(len(ckpts))
        for col, cid in zip(cols, ckpts):
            cell = grid.get((m, cid))
            if cell is None:
                continue
            col.image(
                svc.cell_png(cell, opacity=opacity, colorscale=cmap, signed=signed, native=native),
                width="stretch",
            )
            row = {"image": photo_name, "method": m, "checkpoint": cards[cid].name, "checkpoint_id": cid}
            row |= {
                "top1": cell.top[0][0],
                "p_top1": round(cell.top[0][1], 4),
                "seconds": round(cell.seconds, 4),
            }
            sim = sims.get((m, cid))
            if sim is not None:
                col.caption(
                    f"vs baseline · Spearman {sim['spearman']:.2f} · SSIM {sim['ssim']:.2f} · "
                    f"top-10% ∩ {sim['topk']:.2f}"
                )
                row |= {k: round(v, 4) for k, v in sim.items()}
            rows.append(row)

    cells = [(m, c) for m in methods for c in ckpts if (m, c) in grid]
    pick = st.selectbox(
        "Interactive view of one cell (hover for values)",
        [None, *cells],
        format_func=lambda mc: "(none)" if mc is None else f"{svc.method_label(mc[0])} · {cards[mc[1]].name}",
        key="inspect_live_cell",
    )
    if pick is not None:
        cell = grid[pick]
        shown = cell.shown(signed=signed, native=native)
        st.plotly_chart(
            heatmap_figure(cell.image, shown, opacity=opacity, colorscale=cmap, signed=signed, height=420),
            key="inspect_live_fig",
            config=PLOT_CONFIG,
        )

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
            png = svc.cell_png(a, opacity=opacity, colorscale=cmap, split=(mixed, cut), size=380)
            st.image(png, width=380)

    # The PNG is drawn only when someone clicks (a callable); the CSV is a few rows.
    columns = [(c, cards[c].name) for c in ckpts]
    d1, d2, d3 = st.columns(3)
    d1.download_button(
        "Download grid (PNG)",
        lambda: svc.grid_png(grid, methods, columns, opacity=opacity, colorscale=cmap, signed=signed),
        file_name=f"grid-{photo_name}.png",
        mime="image/png",
        key="dl_png",
    )
    d2.download_button(
        "Download numbers (CSV)",
        svc.grid_csv(rows),
        file_name=f"grid-{photo_name}.csv",
        mime="text/csv",
        key="dl_csv",
    )
    d3.download_button(
        "Download report (HTML)",
        lambda: take_home.inspect_report(
            photo_name, grid, methods, columns, sims, opacity=opacity, colorscale=cmap, signed=signed
        ),
        file_name=f"comparison-{photo_name}.html",
        mime="text/html",
        key="dl_html",
    )


show_grid(photo.name, cards, ckpts, methods, grid, sims)
