"""Plotly figures for the pages: one builder per kind of chart, so every page draws heatmaps the same way."""

from __future__ import annotations

import base64
import functools
import io
from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from PIL import Image
from plotly.colors import sample_colorscale

SIGNED_SCALE = "RdBu_r"
COLOR_MAPS = ("Inferno", "Viridis", "Hot", "Jet", "Greys", "RdBu_r")


def display_heatmap(heatmap: np.ndarray, *, signed: bool) -> tuple[np.ndarray, float, float]:
    """Scale a heatmap for display: signed maps keep their sign around 0, absolute maps use |h|.

    Returns the map and the colour range (zmin, zmax); a flat map gets a non-empty range.
    """
    h = np.asarray(heatmap, dtype=np.float32)
    if signed:
        bound = float(np.abs(h).max()) or 1.0
        return h, -bound, bound
    h = np.abs(h)
    top = float(h.max()) or 1.0
    return h, 0.0, top


LEVELS = 100  # a displayed map is sent as whole percent of its largest |value| (1 byte per pixel)


def heatmap_levels(heatmap: np.ndarray, *, signed: bool) -> tuple[np.ndarray, float]:
    """The map as int8 percent of its largest |value| (-100..100 signed, 0..100 absolute) and that
    largest value. One byte per pixel keeps a rerun's payload small; 1 % steps are finer than a colour
    scale shows, and the hover still reads as a share of the map's maximum."""
    hm, _, bound = display_heatmap(heatmap, signed=signed)
    levels = np.clip(np.rint(hm / bound * LEVELS), -LEVELS, LEVELS).astype(np.int8)
    return levels, bound


@functools.lru_cache(maxsize=64)
def _png_uri(raw: bytes, shape: tuple[int, ...]) -> str:
    buf = io.BytesIO()
    Image.fromarray(np.frombuffer(raw, dtype=np.uint8).reshape(shape)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def png_data_uri(image: np.ndarray) -> str:
    """An RGB uint8 image as a PNG data URI (cached: every cell of a grid shows the same photo)."""
    img = np.ascontiguousarray(np.asarray(image, dtype=np.uint8))
    return _png_uri(img.tobytes(), img.shape)


def heatmap_figure(
    image: np.ndarray,
    heatmap: np.ndarray,
    *,
    opacity: float = 0.6,
    colorscale: str = "Inferno",
    signed: bool = False,
    title: str | None = None,
    height: int = 260,
    split: int | None = None,
) -> go.Figure:
    """An interactive heatmap over the image: the photo below (one PNG), the map above with `opacity`.

    A native map smaller than the image is stretched over it (plotly places cells by x0/dx). The map
    travels as int8 percent levels (`heatmap_levels`); `split` draws a white vertical line before
    that image column (the compare view).
    """
    img = np.asarray(image)
    h_img, w_img = img.shape[:2]
    levels, bound = heatmap_levels(heatmap, signed=signed)
    dy, dx = h_img / levels.shape[0], w_img / levels.shape[1]
    sign = "|h|" if not signed else "h"
    hover = f"x %{{x:.0f}}, y %{{y:.0f}}: %{{z}}% of max {sign} ({bound:.3g})<extra></extra>"
    layout: dict = {
        "height": height,
        "margin": {"l": 0, "r": 0, "t": 28 if title else 0, "b": 0},
        "xaxis": {"visible": False, "range": [-0.5, w_img - 0.5]},
        "yaxis": {"visible": False, "range": [h_img - 0.5, -0.5], "scaleanchor": "x"},
    }
    if title:
        layout["title"] = {"text": title, "font": {"size": 13}}
    if split is not None:
        x = split - 0.5
        line = {"color": "white", "width": 2}
        layout["shapes"] = [
            {"type": "line", "x0": x, "x1": x, "y0": 0, "y1": 1, "yref": "paper", "line": line}
        ]
    spec = {
        "data": [
            {"type": "image", "source": png_data_uri(img), "hoverinfo": "skip"},
            {
                "type": "heatmap",
                "z": levels,
                "x0": dx / 2 - 0.5,
                "dx": dx,
                "y0": dy / 2 - 0.5,
                "dy": dy,
                "colorscale": SIGNED_SCALE if signed else colorscale,
                "zmin": -LEVELS if signed else 0,
                "zmax": LEVELS,
                "opacity": opacity,
                "showscale": False,
                "hovertemplate": hover,
            },
        ],
        "layout": layout,
    }
    return go.Figure(spec)


def drawing_figure(image: np.ndarray, *, height: int = 360, grid: int = 32) -> go.Figure:
    """The image to draw a mask on with plotly's lasso / box select (x = column, y = row).

    Selection tools need a selectable trace, so an invisible `grid` x `grid` lattice of points covers
    the image; only the selection's outline is used (`backend.services.mask_draw`).
    """
    img = np.asarray(image)
    h_img, w_img = img.shape[:2]
    xs = np.linspace(0, w_img - 1, min(grid, w_img))
    ys = np.linspace(0, h_img - 1, min(grid, h_img))
    gx, gy = np.meshgrid(xs, ys)
    spec = {
        "data": [
            {"type": "image", "source": png_data_uri(img), "hoverinfo": "skip"},
            {
                "type": "scatter",
                "x": gx.ravel().astype(np.float32),
                "y": gy.ravel().astype(np.float32),
                "mode": "markers",
                "marker": {"size": 4, "opacity": 0},
                "hoverinfo": "skip",
                "showlegend": False,
            },
        ],
        "layout": {
            "height": height,
            "dragmode": "lasso",
            "margin": {"l": 0, "r": 0, "t": 0, "b": 0},
            "xaxis": {"visible": False, "range": [-0.5, w_img - 0.5], "fixedrange": True},
            "yaxis": {"visible": False, "range": [h_img - 0.5, -0.5], "scaleanchor": "x", "fixedrange": True},
        },
    }
    return go.Figure(spec)


def colorize(heatmap: np.ndarray, *, colorscale: str = "Inferno", signed: bool = False) -> np.ndarray:
    """RGB uint8 (H, W, 3) rendering of a heatmap with a plotly colour scale (for PNG export)."""
    hm, zmin, zmax = display_heatmap(heatmap, signed=signed)
    unit = np.clip((hm - zmin) / max(zmax - zmin, 1e-12), 0.0, 1.0)
    lut_points = np.linspace(0.0, 1.0, 256)
    lut = sample_colorscale(SIGNED_SCALE if signed else colorscale, list(lut_points), colortype="tuple")
    lut_arr = np.clip(np.round(np.asarray(lut, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)
    return lut_arr[np.round(unit * 255).astype(np.int64)]


def line_chart(
    series: Mapping[str, Sequence[tuple[float, float]]], *, x_title: str, y_title: str
) -> go.Figure:
    """One line per named series of (x, y) points, e.g. the loss terms of a running job. Every series
    is named in the legend (also when it is the only one), and a series of one point (a validation
    run once) shows as a marker: a line of one point draws nothing."""
    fig = go.Figure()
    for name, points in series.items():
        if not points:
            continue
        xs, ys = zip(*points)
        mode = "lines+markers" if len(points) < 2 else "lines"
        fig.add_trace(
            go.Scatter(x=list(xs), y=list(ys), mode=mode, name=name, showlegend=True, marker=dict(size=9))
        )
    fig.update_layout(
        height=280,
        margin=dict(l=10, r=10, t=10, b=10),
        xaxis_title=x_title,
        yaxis_title=y_title,
        showlegend=True,
        legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0),
    )
    return fig


def bar_chart(
    series: Mapping[str, Mapping[str, float]],
    *,
    y_title: str,
    highlight: Sequence[str] = (),
    height: int = 300,
) -> go.Figure:
    """Grouped bars: one trace per named series over the same categories (e.g. feature importance of a
    baseline and a fooled model); `highlight` categories get a marked tick label."""
    fig = go.Figure()
    for name, values in series.items():
        fig.add_trace(go.Bar(x=list(values), y=list(values.values()), name=name))
    fig.update_layout(
        barmode="group", height=height, margin=dict(l=10, r=10, t=10, b=10), yaxis_title=y_title
    )
    marked = set(highlight)
    categories = list(next(iter(series.values()), {}))
    fig.update_xaxes(
        tickvals=categories, ticktext=[f"<b>{c} (protected)</b>" if c in marked else c for c in categories]
    )
    return fig


def matrix_figure(
    values: Sequence[Sequence[float]], rows: Sequence[str], cols: Sequence[str], *, title: str = ""
) -> go.Figure:
    """An annotated matrix heatmap (e.g. FSR when fooling one interpreter and testing another)."""
    z = np.asarray(values, dtype=np.float64)
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=list(cols),
            y=list(rows),
            colorscale="Blues",
            zmin=0.0,
            zmax=max(1.0, float(np.nanmax(z)) if z.size else 1.0),
            text=[[f"{v:.2f}" for v in row] for row in z],
            texttemplate="%{text}",
            hovertemplate="%{y} -> %{x}: %{z:.3f}<extra></extra>",
        )
    )
    fig.update_layout(height=80 + 40 * len(rows), margin=dict(l=10, r=10, t=30, b=10), title=title)
    fig.update_yaxes(autorange="reversed")
    return fig


def histogram_figure(samples: Mapping[str, Sequence[float]], *, x_title: str) -> go.Figure:
    """Overlaid histograms, one per named sample (e.g. per-image similarity per interpreter)."""
    fig = go.Figure()
    for name, values in samples.items():
        fig.add_trace(go.Histogram(x=list(values), name=name, opacity=0.6, nbinsx=30))
    fig.update_layout(barmode="overlay", height=280, margin=dict(l=10, r=10, t=10, b=10), xaxis_title=x_title)
    return fig


def tree_layout(ids: Sequence[str], parents: Sequence[str]) -> dict[str, tuple[int, int]]:
    """(depth, row) per node: children to the right of their parent, rows in depth-first order."""
    children: dict[str, list[str]] = {}
    for node, parent in zip(ids, parents):
        children.setdefault(parent or "", []).append(node)
    place: dict[str, tuple[int, int]] = {}

    def visit(node: str, depth: int) -> None:
        place[node] = (depth, len(place))
        for child in children.get(node, []):
            visit(child, depth + 1)

    for root in children.get("", []):
        visit(root, 0)
    return place


def tree_figure(ids: Sequence[str], labels: Sequence[str], parents: Sequence[str]) -> go.Figure:
    """A lineage tree: every checkpoint to the right of the checkpoint it was fine-tuned from."""
    place = tree_layout(ids, parents)
    text = dict(zip(ids, labels))
    fig = go.Figure()
    for node, parent in zip(ids, parents):
        if parent and parent in place:
            (x0, y0), (x1, y1) = place[parent], place[node]
            fig.add_trace(
                go.Scatter(
                    x=[x0, x0, x1], y=[y0, y1, y1], mode="lines", line=dict(color="#999"), hoverinfo="skip"
                )
            )
    nodes = [n for n in ids if n in place]
    fig.add_trace(
        go.Scatter(
            x=[place[n][0] for n in nodes],
            y=[place[n][1] for n in nodes],
            mode="markers+text",
            text=[text[n] for n in nodes],
            textposition="middle right",
            marker=dict(size=12, color="#c2410c"),
            hovertext=list(nodes),
            hoverinfo="text",
        )
    )
    depth = max((d for d, _ in place.values()), default=0)
    fig.update_xaxes(visible=False, range=[-0.2, depth + 1.5])
    fig.update_yaxes(visible=False, autorange="reversed")
    fig.update_layout(showlegend=False, height=80 + 36 * len(nodes), margin=dict(l=10, r=10, t=10, b=10))
    return fig
