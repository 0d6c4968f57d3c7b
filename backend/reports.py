"""Take-home reports: one self-contained HTML file (images embedded, no external requests).

After class a student downloads the comparison, the evaluation or the detection report card and opens
it anywhere, offline: images are `data:` PNGs, charts are inline SVG, styles are inline, and a
Content-Security-Policy forbids the file from loading anything at all. Every text is escaped. The
services build the parts (`Figure`, tables, paragraphs); this module only lays them out.
"""

from __future__ import annotations

import base64
import html
import io
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
PALETTE = ("#c2410c", "#1d4ed8", "#15803d", "#7e22ce", "#b91c1c", "#0f766e", "#a16207", "#be185d")
STYLE = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem auto;max-width:1100px;
color:#1f2937;padding:0 1rem}h1{margin-bottom:.2rem}.sub{color:#6b7280;margin-top:0}
h2{border-bottom:1px solid #e5e7eb;padding-bottom:.2rem;margin-top:2rem}
table{border-collapse:collapse;margin:.6rem 0;font-size:.9rem}th,td{border:1px solid #e5e7eb;
padding:.25rem .5rem;text-align:left}th{background:#f9fafb}.figs{display:flex;flex-wrap:wrap;gap:.8rem}
figure{margin:0;text-align:center}figcaption{font-size:.8rem;color:#374151;max-width:260px}
img{image-rendering:auto;border:1px solid #e5e7eb}.foot{color:#9ca3af;font-size:.8rem;margin-top:3rem}
"""


@dataclass
class Figure:
    """One picture: a PNG (embedded as a data URI) or an inline SVG, with its caption."""

    caption: str
    png: bytes | None = None
    svg: str | None = None
    width: int | None = None  # display width in px (PNG); None = natural size


@dataclass
class Section:
    heading: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[tuple[str, Sequence[Mapping]]] = field(default_factory=list)  # (title, rows)
    figures: list[Figure] = field(default_factory=list)


def png_bytes(rgb: np.ndarray) -> bytes:
    """A (H, W, 3) uint8 array as PNG bytes."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(rgb, dtype=np.uint8)).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def _cell(value) -> str:
    if isinstance(value, float):
        return "—" if math.isnan(value) else f"{value:.4g}"
    return html.escape(str(value))


def table_html(rows: Sequence[Mapping]) -> str:
    if not rows:
        return "<p><em>(no rows)</em></p>"
    cols: list[str] = []
    for row in rows:
        cols.extend(k for k in row if k not in cols)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{_cell(r.get(c, ''))}</td>" for c in cols) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def figure_html(fig: Figure) -> str:
    if fig.png is not None:
        uri = "data:image/png;base64," + base64.b64encode(fig.png).decode()
        width = f' width="{int(fig.width)}"' if fig.width else ""
        body = f'<img src="{uri}" alt="{html.escape(fig.caption)}"{width}>'
    else:
        body = fig.svg or ""
    return f"<figure>{body}<figcaption>{html.escape(fig.caption)}</figcaption></figure>"


def render(title: str, subtitle: str, sections: Sequence[Section]) -> bytes:
    """The whole report as UTF-8 HTML bytes (a download button's payload)."""
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<meta http-equiv='Content-Security-Policy' content=\"{CSP}\">",
        f"<meta name='viewport' content='width=device-width'><title>{html.escape(title)}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1><p class='sub'>{html.escape(subtitle)}</p>",
    ]
    for sec in sections:
        parts.append(f"<section><h2>{html.escape(sec.heading)}</h2>")
        parts += [f"<p>{html.escape(p)}</p>" for p in sec.paragraphs]
        for name, rows in sec.tables:
            parts.append((f"<h3>{html.escape(name)}</h3>" if name else "") + table_html(rows))
        if sec.figures:
            parts.append("<div class='figs'>" + "".join(figure_html(f) for f in sec.figures) + "</div>")
        parts.append("</section>")
    when = time.strftime("%Y-%m-%d %H:%M")
    parts.append(f"<p class='foot'>Fooling Lab · {when} · a self-contained file: it loads nothing.</p>")
    parts.append("</body></html>")
    return "".join(parts).encode("utf-8")


def _lerp(a: tuple[int, int, int], b: tuple[int, int, int], t: float) -> tuple[int, int, int]:
    return tuple(int(round(x + (y - x) * t)) for x, y in zip(a, b))  # type: ignore[return-value]


def matrix_png(
    values: Sequence[Sequence[float]], rows: Sequence[str], cols: Sequence[str], *, cell: int = 70
) -> bytes:
    """A heatmap of a matrix in [0, 1] (e.g. the FSR transfer matrix) with its numbers, as PNG."""
    from PIL import Image, ImageDraw

    side, head = 150, 40
    img = Image.new("RGB", (side + cell * len(cols), head + cell * len(rows)), "white")
    draw = ImageDraw.Draw(img)
    for j, name in enumerate(cols):
        draw.text((side + j * cell + 3, 4), str(name)[:11], fill="black")
        draw.text((side + j * cell + 3, 18), str(name)[11:22], fill="black")
    for i, name in enumerate(rows):
        draw.text((4, head + i * cell + cell // 2 - 6), str(name)[:24], fill="black")
        for j in range(len(cols)):
            v = values[i][j]
            x0, y0 = side + j * cell, head + i * cell
            if v is None or (isinstance(v, float) and math.isnan(v)):
                draw.rectangle([x0, y0, x0 + cell - 2, y0 + cell - 2], fill="#f3f4f6")
                continue
            t = min(max(float(v), 0.0), 1.0)
            draw.rectangle(
                [x0, y0, x0 + cell - 2, y0 + cell - 2], fill=_lerp((255, 247, 237), (194, 65, 12), t)
            )
            draw.text(
                (x0 + cell // 2 - 14, y0 + cell // 2 - 6),
                f"{100 * t:.0f}%",
                fill="white" if t > 0.55 else "black",
            )
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def line_svg(
    series: Mapping[str, Sequence[tuple[float, float]]],
    *,
    x_title: str,
    y_title: str,
    width: int = 460,
    height: int = 260,
) -> str:
    """Named lines (a one-point series as a dot) with axes and a legend, as inline SVG."""
    pts = [p for s in series.values() for p in s]
    if not pts:
        return ""
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y0, y1 = min(ys), max(ys) if max(ys) > min(ys) else min(ys) + 1
    left, right, top, bottom = 50, 10, 10 + 16 * len(series), 36

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * (width - left - right)

    def sy(y: float) -> float:
        return height - bottom - (y - y0) / (y1 - y0) * (height - top - bottom)

    out = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' font-size='11'>"]
    base = height - bottom
    out.append(f"<line x1='{left}' y1='{base}' x2='{width - right}' y2='{base}' stroke='#555'/>")
    out.append(f"<line x1='{left}' y1='{top}' x2='{left}' y2='{height - bottom}' stroke='#555'/>")
    for v, anchor in ((y0, "end"), (y1, "end")):
        out.append(f"<text x='{left - 4}' y='{sy(v) + 4:.1f}' text-anchor='{anchor}'>{v:.3g}</text>")
    for v in (x0, x1):
        out.append(f"<text x='{sx(v):.1f}' y='{height - bottom + 14}' text-anchor='middle'>{v:.3g}</text>")
    middle = (left + width) / 2
    out.append(f"<text x='{middle:.0f}' y='{height - 4}' text-anchor='middle'>{html.escape(x_title)}</text>")
    out.append(
        f"<text x='12' y='{(top + height - bottom) / 2:.0f}' text-anchor='middle' "
        f"transform='rotate(-90 12 {(top + height - bottom) / 2:.0f})'>{html.escape(y_title)}</text>"
    )
    for k, (name, points) in enumerate(series.items()):
        colour = PALETTE[k % len(PALETTE)]
        coords = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in points)
        if len(points) > 1:
            out.append(f"<polyline fill='none' stroke='{colour}' stroke-width='2' points='{coords}'/>")
        out += [f"<circle cx='{sx(x):.1f}' cy='{sy(y):.1f}' r='3' fill='{colour}'/>" for x, y in points]
        out.append(f"<rect x='{left + 6}' y='{4 + 16 * k}' width='10' height='10' fill='{colour}'/>")
        out.append(f"<text x='{left + 20}' y='{13 + 16 * k}'>{html.escape(str(name))}</text>")
    out.append("</svg>")
    return "".join(out)
