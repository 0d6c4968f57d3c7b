"""Heatmaps for the Inspect grid: one cell = (photo, checkpoint, method), computed once, then cached.

A cell is cheap enough to run in the page process; its result goes through `backend.cache` as
plain arrays (no pickle) under `heatmap_key`, tagged with the checkpoint's sha256 so that deleting
the checkpoint evicts them.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

from backend.cache import ResultCache, heatmap_key, shared_cache
from backend.explain import METHODS
from backend.explain.normalize import method_map
from backend.models.preprocessing import Preprocessing
from backend.progress import ProgressFn
from backend.services.checkpoints import checkpoint
from backend.services.figures import colorize
from backend.services.photos import Photo
from backend.singleflight import FLIGHTS

TOP_K = 5
log = logging.getLogger("fooling_lab.inspect")


@dataclass
class Cell:
    """One grid cell: the map at input resolution, the method's native map, the logits.

    `heatmap` is the method's one map convention (`backend.explain.normalize.method_map`, in [0, 1]):
    the map a fooling attack optimises and evaluation and detection measure; `signed_map` is the
    engine's signed channel sum (the "Signed" view)."""

    method: str
    card_id: str
    heatmap: np.ndarray  # (H, W)
    native: np.ndarray  # 2-D, the method's own resolution
    logits: np.ndarray  # (K,)
    image: np.ndarray  # (H, W, 3) uint8, the model's view of the photo
    seconds: float
    cached: bool
    top: list[tuple[str, float]] = field(default_factory=list)
    key: str = ""  # the cache key: identifies the cell's content (photo, checkpoint, method, params)
    shared: bool = False  # computed once for several sessions that asked at the same time (not by us)
    signed_map: np.ndarray | None = None  # (H, W), the engine's signed heatmap

    def shown(self, *, signed: bool = False, native: bool = False) -> np.ndarray:
        """What the page draws: the native map, the signed engine map, or (default) the method's map."""
        if native:
            return self.native
        return self.signed_map if signed and self.signed_map is not None else self.heatmap


def method_names(cost: str | None = None) -> list[str]:
    """Registered explanation methods, optionally only the "fast" or the "heavy" ones."""
    return [name for name, spec in METHODS.items() if cost is None or spec.cost == cost]


def method_label(name: str) -> str:
    return METHODS[name].label


def resolved_params(method: str, params: dict | None = None) -> dict:
    """The method's defaults overlaid with the user's choices (this dict is part of the cache key)."""
    merged = dict(METHODS[method].params)
    merged.update(params or {})
    return merged


class _Memo:
    """A small thread-safe LRU of results that depend only on their key (a cell's cache key, a photo's
    sha256): what a redraw of a cached grid would otherwise recompute for every session."""

    def __init__(self, size: int):
        self.size, self._items, self._lock = size, OrderedDict(), threading.Lock()

    def get(self, key):
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        return None

    def put(self, key, value):
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value


_INPUTS = _Memo(64)  # (photo sha256, preprocessing) -> (x, view)
_SIMILARITIES = _Memo(4096)  # (baseline cell key, cell key) -> similarity numbers
_TILES = _Memo(512)  # (cell key, display options) -> PNG, ~50 kB each


def model_input(photo: Photo, prep: Preprocessing) -> tuple[torch.Tensor, np.ndarray]:
    """The normalised (1, 3, H, W) input and the model's view of the photo as uint8 (H, W, 3)
    (memoised by the photo's sha256 and the preprocessing; treat both as read-only)."""
    key = (getattr(photo, "sha256", None), json.dumps(prep.to_dict(), sort_keys=True, default=str))
    if key[0] is not None and (hit := _INPUTS.get(key)) is not None:
        return hit
    x = prep.to_tensor(photo.image)
    view = (prep.denormalize(x).clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    out = (x.unsqueeze(0), view)
    return _INPUTS.put(key, out) if key[0] is not None else out


def top_predictions(logits: np.ndarray, classes: Sequence[str], k: int = TOP_K) -> list[tuple[str, float]]:
    """The k most probable classes with their softmax probabilities."""
    probs = torch.softmax(torch.as_tensor(logits, dtype=torch.float64), dim=-1).numpy()
    order = np.argsort(-probs)[:k]
    return [(classes[i] if i < len(classes) else str(i), float(probs[i])) for i in order]


def _native_2d(native: torch.Tensor) -> np.ndarray:
    arr = native.detach().float().cpu().numpy()
    while arr.ndim > 2:
        arr = arr.sum(axis=0)
    return arr.astype(np.float32)


def compute_cell(
    photo: Photo,
    card_id: str,
    method: str,
    params: dict | None = None,
    *,
    progress: ProgressFn | None = None,
    cache: ResultCache | None = None,
) -> Cell:
    """The heatmap of `photo` under checkpoint `card_id` and `method`; a cache hit skips the model.

    `progress(Progress(done, total))` (`backend.progress`) follows a heavy method's work (IG points,
    SmoothGrad samples, Occlusion windows) while it computes; a cache hit never calls it. Pass an open
    `cache` to reuse it across a grid's cells. Concurrent calls for the same cell (same cache key)
    compute it once (`backend.singleflight`); the others get it with `shared=True`.
    """
    ckpt = checkpoint(card_id)
    card = ckpt.card
    x, view = model_input(photo, ckpt.image_preprocessing)
    full = resolved_params(method, params)
    key = heatmap_key(photo.sha256, card.sha256, method, full)
    start = time.perf_counter()
    with contextlib.nullcontext(shared_cache() if cache is None else cache) as store:
        arrays = store.get_arrays(key)
        cached, shared = arrays is not None, False
        if arrays is None:

            def compute() -> tuple[dict[str, np.ndarray], bool]:
                again = store.get_arrays(key)  # a leader for this key may have stored it just now
                if again is not None:
                    return again, True
                # sessions share the warm checkpoint: its explain holds the model's lock
                exp = ckpt.explain(x.to(ckpt.device), None, method, progress=progress, **full)
                shown = method_map(exp.heatmap.detach(), exp.native.detach(), method)
                fresh = {
                    "map": shown[0].float().cpu().numpy(),
                    "heatmap": exp.heatmap[0].detach().float().cpu().numpy(),
                    "native": _native_2d(exp.native[0]),
                    "logits": exp.logits[0].detach().float().cpu().numpy(),
                }
                store.set_arrays(key, tag=card.sha256, **fresh)
                return fresh, False

            # Thirty sessions asking for the same cell at once: one computes, the others wait for it.
            outcome = FLIGHTS.do(key, compute)
            (arrays, cached), shared = outcome.value, outcome.shared
    return Cell(
        method=method,
        card_id=card.id,
        heatmap=arrays["map"],
        signed_map=arrays["heatmap"],
        native=arrays["native"],
        logits=arrays["logits"],
        image=view,
        seconds=time.perf_counter() - start,
        cached=cached,
        top=top_predictions(arrays["logits"], card.classes),
        key=key,
        shared=shared,
    )


@dataclass
class GridRun:
    """A computed grid: its cells by (method, checkpoint id), the cards, what failed, how long it took."""

    cells: dict[tuple[str, str], Cell]
    cards: dict[str, Any]
    errors: list[str]
    seconds: float

    @property
    def hits(self) -> int:
        return sum(c.cached for c in self.cells.values())


# before each cell: (cells done, cells in all, "method · checkpoint", heavy?) -> the cell's own progress
CellStart = Callable[[int, int, str, bool], "ProgressFn | None"]


def compute_grid(
    photo: Photo,
    card_ids: Sequence[str],
    methods: Sequence[str],
    params: dict[str, dict[str, Any]] | None = None,
    *,
    on_cell: CellStart | None = None,
) -> GridRun:
    """Every (method, checkpoint) cell of one photo, through one open cache. `params` holds each
    method's raw form values (`form_fields.method_params` checks them); a cell that fails is left out
    and its reason is in `errors` (a person's message), so one bad checkpoint or setting never blanks
    the grid. `on_cell` lets the page draw progress (a heavy cell gets its own callback)."""
    from backend.errors import FoolingLabError
    from backend.services.checkpoints import registry
    from backend.services.form_fields import method_params

    start = time.perf_counter()
    errors: list[str] = []
    cards: dict[str, Any] = {}
    for cid in card_ids:
        try:
            cards[cid] = registry().card(cid)
        except FoolingLabError as err:
            errors.append(f"Checkpoint {cid}: {err}")
    resolved: dict[str, dict[str, Any]] = {}
    for m in methods:
        try:
            resolved[m] = method_params(m, (params or {}).get(m))
        except FoolingLabError as err:
            errors.append(f"{method_label(m)}: {err}")
    todo = [(m, cid) for m in methods if m in resolved for cid in card_ids if cid in cards]
    cells: dict[tuple[str, str], Cell] = {}
    with contextlib.nullcontext(shared_cache()) as cache:
        for n, (m, cid) in enumerate(todo):
            label = f"{method_label(m)} · {cards[cid].name}"
            progress = on_cell(n, len(todo), label, METHODS[m].cost == "heavy") if on_cell else None
            try:
                cells[(m, cid)] = compute_cell(photo, cid, m, resolved[m], progress=progress, cache=cache)
            except FoolingLabError as err:
                errors.append(f"{label}: {err}")
            except Exception as err:  # a bug, not bad input: the other cells still show
                log.exception("unexpected error in cell %s", label)
                errors.append(f"{label}: unexpected {type(err).__name__}: {err}. The server log has details.")
    return GridRun(cells, cards, errors, time.perf_counter() - start)


def similarity(baseline: np.ndarray, other: np.ndarray, k: float = 0.1) -> dict[str, float]:
    """How close a fooled cell's map is to the baseline's: Spearman, SSIM, top-k% intersection."""
    from backend.metrics import similarity as sim

    a = torch.as_tensor(np.abs(baseline), dtype=torch.float32).unsqueeze(0)
    b = torch.as_tensor(np.abs(other), dtype=torch.float32).unsqueeze(0)
    return {
        "spearman": float(sim.spearman(a, b)[0]),
        "ssim": float(sim.ssim(a, b)[0]),
        "topk": float(sim.topk_intersection(a, b, k)[0]),
    }


def grid_similarities(
    grid: dict[tuple[str, str], Cell], baseline: str
) -> dict[tuple[str, str], dict[str, float]]:
    """Similarity of every non-baseline cell to the baseline's cell of the same method (memoised by
    the two cells' cache keys: SSIM and Spearman cost more than reading the cells back)."""
    out = {}
    for (method, card_id), cell in grid.items():
        if card_id == baseline or (method, baseline) not in grid:
            continue
        base = grid[(method, baseline)]
        key = (base.key, cell.key) if base.key and cell.key else None
        sims = _SIMILARITIES.get(key) if key else None
        if sims is None:
            sims = similarity(base.heatmap, cell.heatmap)
            if key:
                _SIMILARITIES.put(key, sims)
        out[(method, card_id)] = dict(sims)
    return out


def split_view(left: np.ndarray, right: np.ndarray, fraction: float) -> tuple[np.ndarray, int]:
    """Left part of one map, right part of the other (each |h| scaled to [0, 1]); returns the cut column."""
    cut = int(round(left.shape[1] * min(max(fraction, 0.0), 1.0)))
    a = np.abs(left) / (float(np.abs(left).max()) or 1.0)
    b = np.abs(right) / (float(np.abs(right).max()) or 1.0)
    return np.concatenate([a[:, :cut], b[:, cut:]], axis=1), cut


def blend(
    view: np.ndarray, heatmap: np.ndarray, *, opacity: float, colorscale: str, signed: bool
) -> np.ndarray:
    """The photo with the coloured heatmap laid over it, as uint8 RGB (for the PNG download)."""
    colour = colorize(heatmap, colorscale=colorscale, signed=signed).astype(np.float32)
    if colour.shape[:2] != view.shape[:2]:
        colour = np.asarray(
            Image.fromarray(colour.astype(np.uint8)).resize(view.shape[1::-1], Image.Resampling.NEAREST),
            dtype=np.float32,
        )
    out = (1 - opacity) * view.astype(np.float32) + opacity * colour
    return np.clip(out, 0, 255).round().astype(np.uint8)


TILE_PX = 256


def cell_png(
    cell: Cell,
    *,
    opacity: float = 0.6,
    colorscale: str = "Inferno",
    signed: bool = False,
    native: bool = False,
    split: tuple[np.ndarray, int] | None = None,
    size: int = TILE_PX,
) -> bytes:
    """One grid cell drawn as a PNG: the coloured map over the model's view of the photo, scaled to
    `size` px (small inputs stay crisp). The Inspect grid shows these instead of eight interactive
    charts (a cached redraw then costs milliseconds, not half a second of chart layout); memoised by
    the cell's cache key and the display options, so thirty sessions showing one cell encode it once.
    `split=(map, cut)` draws `map` (the compare view) with a white line before column `cut`."""
    key = (cell.key, round(opacity, 3), colorscale, signed, native, size, None if split is None else split[1])
    if split is None and cell.key and (hit := _TILES.get(key)) is not None:
        return hit
    heat = split[0] if split is not None else cell.shown(signed=signed, native=native)
    rgb = blend(cell.image, heat, opacity=opacity, colorscale=colorscale, signed=signed)
    img = Image.fromarray(rgb)
    scale = size / max(img.size)
    resample = Image.Resampling.NEAREST if scale >= 2 else Image.Resampling.BILINEAR
    img = img.resize((round(img.width * scale), round(img.height * scale)), resample)
    if split is not None:
        x = round(split[1] * scale)
        ImageDraw.Draw(img).line([(x, 0), (x, img.height)], fill="white", width=2)
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)
    data = buf.getvalue()
    return _TILES.put(key, data) if split is None and cell.key else data


def grid_png(
    grid: dict[tuple[str, str], Cell],
    methods: Sequence[str],
    columns: Sequence[tuple[str, str]],
    *,
    opacity: float = 0.6,
    colorscale: str = "Inferno",
    signed: bool = False,
    tile: int = 160,
) -> bytes:
    """The grid (methods as rows, checkpoints as columns) as one PNG with row and column titles."""
    pad, head, side = 4, 18, 110
    img = Image.new("RGB", (side + len(columns) * (tile + pad), head + len(methods) * (tile + pad)), "white")
    draw = ImageDraw.Draw(img)
    for j, (_, title) in enumerate(columns):
        draw.text((side + j * (tile + pad) + 2, 3), title[:26], fill="black")
    for i, method in enumerate(methods):
        draw.text((3, head + i * (tile + pad) + tile // 2), method_label(method)[:17], fill="black")
        for j, (card_id, _) in enumerate(columns):
            cell = grid.get((method, card_id))
            if cell is None:
                continue
            rgb = blend(
                cell.image, cell.shown(signed=signed), opacity=opacity, colorscale=colorscale, signed=signed
            )
            tile_img = Image.fromarray(rgb).resize((tile, tile), Image.Resampling.BILINEAR)
            img.paste(tile_img, (side + j * (tile + pad), head + i * (tile + pad)))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def grid_csv(rows: Sequence[dict]) -> bytes:
    """The numbers behind the grid (predictions, similarity to the baseline, timing) as CSV."""
    if not rows:
        return b""
    fields: list[str] = []
    for row in rows:
        fields.extend(k for k in row if k not in fields)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().encode()
