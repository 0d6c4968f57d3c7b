"""Plotly figures for the pages: one builder per kind of chart, so every page draws heatmaps the same way."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
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


def heatmap_figure(
    image: np.ndarray,
    heatmap: np.ndarray,
    *,
    opacity: float = 0.6,
    colorscale: str = "Inferno",
    signed: bool = False,
    title: str | None = None,
    height: int = 260,
) -> go.Figure:
    """An interactive heatmap over the image: the photo below, the map above with `opacity`.

    A native map smaller than the image is stretched over it (plotly places cells by x0/dx).
    """
    img = np.asarray(image)
    h_img, w_img = img.shape[:2]
    hm, zmin, zmax = display_heatmap(heatmap, signed=signed)
    dy, dx = h_img / hm.shape[0], w_img / hm.shape[1]
    fig = go.Figure()
    fig.add_trace(go.Image(z=img, hoverinfo="skip"))
    fig.add_trace(
        go.Heatmap(
            z=hm,
            x0=dx / 2 - 0.5,
            dx=dx,
            y0=dy / 2 - 0.5,
            dy=dy,
            colorscale=SIGNED_SCALE if signed else colorscale,
            zmin=zmin,
            zmax=zmax,
            opacity=opacity,
            showscale=False,
            hovertemplate="x %{x:.0f}, y %{y:.0f}: %{z:.3g}<extra></extra>",
        )
    )
    fig.update_xaxes(visible=False, range=[-0.5, w_img - 0.5])
    fig.update_yaxes(visible=False, range=[h_img - 0.5, -0.5], scaleanchor="x")
    fig.update_layout(
        height=height,
        margin=dict(l=0, r=0, t=28 if title else 0, b=0),
        title=dict(text=title, font=dict(size=13)) if title else None,
    )
    return fig


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
    """One line per named series of (x, y) points, e.g. the loss terms of a running job."""
    fig = go.Figure()
    for name, points in series.items():
        if not points:
            continue
        xs, ys = zip(*points)
        fig.add_trace(go.Scatter(x=list(xs), y=list(ys), mode="lines", name=name))
    fig.update_layout(
        height=280, margin=dict(l=10, r=10, t=10, b=10), xaxis_title=x_title, yaxis_title=y_title
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


def tree_figure(ids: Sequence[str], labels: Sequence[str], parents: Sequence[str]) -> go.Figure:
    """A lineage tree (icicle): every checkpoint under the checkpoint it was fine-tuned from."""
    fig = go.Figure(
        go.Icicle(ids=list(ids), labels=list(labels), parents=list(parents), tiling=dict(orientation="h"))
    )
    fig.update_layout(height=120 + 30 * len(ids), margin=dict(l=0, r=0, t=0, b=0))
    return fig
