"""Draw registry-declared form fields (`backend.forms.FieldSpec`) as Streamlit widgets.

One widget per field kind; every widget's key is `<prefix>_<field name>` (sub-keys for the composite
kinds: a point's `_r`/`_c`, a mask's `_mode`, `_preset`, ...). `set_values` writes values into those
keys (call it before the widgets are drawn: in a callback or at the top of a run), so a preset fills
the form; `render` draws the fields and returns their raw values (the services check them with
`FieldSpec.coerce`). Pages never special-case an attack or a method: they hand this their fields.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import streamlit as st

from pages._ui import guard

if TYPE_CHECKING:  # the fields are the services' values; the page only reads their attributes
    import numpy as np

    from backend.forms import FieldSpec, FormContext

MASK_MODES = ("Preset", "Draw", "Draw a rectangle", "Upload", "Path on the server")


def key(prefix: str, name: str) -> str:
    return f"{prefix}_{name}"


def context(card_id: str) -> FormContext:
    """The checkpoint's form context (classes, layers, size); stops the page with the reason if it
    cannot be read."""
    from backend.services.form_fields import form_context

    ctx = None
    with guard("Checkpoint"):
        ctx = form_context(card_id)
    if ctx is None:
        st.stop()
    return ctx


def set_values(prefix: str, fields: Iterable[FieldSpec], values: dict[str, Any]) -> None:
    """Put `values` into the fields' widgets (only names present in `values`)."""
    for f in fields:
        if f.name in values:
            for sub, state in _widget_state(f, values[f.name]).items():
                st.session_state[key(prefix, sub)] = state


def _widget_state(f: FieldSpec, value: Any) -> dict[str, Any]:
    if f.kind == "point":
        row, col = (float(v) for v in (value or (0.0, 0.0)))
        return {f"{f.name}_r": row, f"{f.name}_c": col}
    if f.kind == "mask":
        from backend.services.fool_form import mask_presets

        if value is None or (isinstance(value, str) and value in mask_presets()):
            return {f"{f.name}_mode": "Preset", f"{f.name}_preset": value}
        return {f"{f.name}_mode": "Path on the server", f"{f.name}_path": str(value)}
    if f.kind == "json":
        return {f.name: "" if value is None else json.dumps(value)}
    if f.kind in ("list", "names"):
        return {f.name: ", ".join(str(v) for v in value or [])}
    if f.kind == "text":
        return {f.name: "" if value is None else str(value)}
    if f.kind == "int" and value is not None:
        return {f.name: int(value)}
    if f.kind == "float" and value is not None:
        return {f.name: float(value)}
    return {f.name: value}


def initial(prefix: str, name: str, value: Any) -> dict[str, Any]:
    """The widget's default only while its key has no state (a preset's value is not overridden)."""
    return {} if key(prefix, name) in st.session_state else {"value": value}


def _index(prefix: str, name: str, options: Sequence[Any], default: Any) -> dict[str, Any]:
    """A selectbox's default position, only while its key has no state."""
    if key(prefix, name) in st.session_state:
        return {}
    return {"index": options.index(default) if default in options else (0 if options else None)}


def render(
    fields: Sequence[FieldSpec],
    prefix: str,
    ctx: FormContext,
    *,
    columns: int = 3,
    picture: Callable[[], np.ndarray] | None = None,
) -> dict[str, Any]:
    """Draw `fields` in rows of `columns` (wide kinds get a row each); returns name -> raw value."""
    values: dict[str, Any] = {}
    narrow = [f for f in fields if f.kind not in ("mask", "point", "json")]
    for start in range(0, len(narrow), columns):
        cols = st.columns(columns)
        for col, f in zip(cols, narrow[start : start + columns]):
            with col:
                values[f.name] = _widget(f, prefix, ctx)
    for f in fields:
        if f.kind == "mask":
            values[f.name] = _mask(f, prefix, ctx, picture)
        elif f.kind == "point":
            values[f.name] = _point(f, prefix)
        elif f.kind == "json":
            text = st.text_area(f.title, help=f.help or None, key=key(prefix, f.name), height=68)
            values[f.name] = text
    return values


def _widget(f: FieldSpec, prefix: str, ctx: FormContext) -> Any:
    k, help_ = key(prefix, f.name), f.help or None
    if f.kind in ("int", "float"):
        number = int if f.kind == "int" else float
        limits = {
            name: number(v)
            for name, v in (("min_value", f.min), ("max_value", f.max), ("step", f.step))
            if v is not None
        }
        default = None if f.default is None else number(f.default)
        return st.number_input(
            f.title, **limits, **initial(prefix, f.name, default), format=f.format, help=help_, key=k
        )
    if f.kind == "bool":
        return st.checkbox(f.title, **initial(prefix, f.name, bool(f.default)), help=help_, key=k)
    if f.kind == "choice":
        options = [*([None] if f.optional else []), *f.choices]
        return st.selectbox(
            f.title,
            options,
            **_index(prefix, f.name, options, f.default),
            format_func=f.label_of,
            help=help_,
            key=k,
        )
    if f.kind == "layer":
        options = [None, *ctx.layers]
        return st.selectbox(
            f.title,
            options,
            format_func=lambda v: f"default ({ctx.default_layer})" if v is None else v,
            help=help_,
            key=k,
        )
    if f.kind == "class":
        options = list(range(len(ctx.classes)))
        return st.selectbox(
            f.title,
            options,
            **_index(prefix, f.name, options, f.default),
            format_func=lambda i: f"{i}: {ctx.classes[i]}",
            help=help_,
            key=k,
        )
    if f.kind == "multi":
        return st.multiselect(
            f.title,
            list(f.choices),
            **({} if k in st.session_state else {"default": list(f.default or [])}),
            format_func=f.label_of,
            help=help_,
            key=k,
        )
    if f.kind in ("list", "names"):
        return st.text_input(
            f.title, **initial(prefix, f.name, ", ".join(map(str, f.default or []))), help=help_, key=k
        )
    return st.text_input(f.title, **initial(prefix, f.name, f.default or ""), help=help_, key=k)


def _point(f: FieldSpec, prefix: str) -> list[float]:
    row, col = (float(v) for v in (f.default or (0.0, 0.0)))
    c1, c2 = st.columns(2)
    return [
        c1.slider(
            f"{f.title}: row (fraction)",
            0.0,
            1.0,
            **initial(prefix, f"{f.name}_r", row),
            key=key(prefix, f"{f.name}_r"),
            help=f.help or None,
        ),
        c2.slider(
            f"{f.title}: column (fraction)",
            0.0,
            1.0,
            **initial(prefix, f"{f.name}_c", col),
            key=key(prefix, f"{f.name}_c"),
        ),
    ]


def _mask(f: FieldSpec, prefix: str, ctx: FormContext, picture: Callable[[], np.ndarray] | None) -> Any:
    """A map: a preset, drawn with the lasso / a rectangle, uploaded, or a file on the server."""
    from backend.services import fool_form as svc
    from backend.services.figures import drawing_figure
    from backend.services.mask_draw import selection_mask

    size = ctx.size
    mode = st.radio(
        f.title, MASK_MODES, horizontal=True, help=f.help or None, key=key(prefix, f"{f.name}_mode")
    )
    if mode == "Preset":
        presets = svc.mask_presets()
        index = (
            {"index": None}
            if f.default not in presets
            else _index(prefix, f"{f.name}_preset", presets, f.default)
        )
        return st.selectbox(
            f"{f.title}: preset",
            presets,
            **({} if key(prefix, f"{f.name}_preset") in st.session_state else index),
            placeholder="Choose a preset",
            key=key(prefix, f"{f.name}_preset"),
        )
    if mode == "Draw":
        st.caption(
            "Circle the region with the lasso (or pick the box tool in the chart's toolbar); several "
            "shapes add up. Double-click the image to start over."
        )
        with guard("Drawing"):
            if picture is None:
                st.info("Nothing to draw on here.")
                return None
            event = st.plotly_chart(
                drawing_figure(picture()),
                key=key(prefix, f"{f.name}_draw"),
                on_select="rerun",
                selection_mode=("lasso", "box"),
                config={"displayModeBar": True, "modeBarButtonsToRemove": ["toImage"]},
            )
            mask = selection_mask(size, event.selection if event else None)
            if mask is None:
                st.info(f"Nothing drawn yet: {f.title.lower()} is needed.", icon=":material/gesture:")
                return None
            st.caption(
                f"Drawn {f.title.lower()}: {int(mask.sum())} of {size * size} pixels ({mask.mean():.0%})."
            )
            return svc.save_array(mask, f.name)
    if mode == "Draw a rectangle":
        rows = st.slider(
            "Rows (fraction of the image)", 0.0, 1.0, (0.0, 0.25), 0.01, key=key(prefix, f"{f.name}_rows")
        )
        cols = st.slider(
            "Columns (fraction of the image)", 0.0, 1.0, (0.0, 0.25), 0.01, key=key(prefix, f"{f.name}_cols")
        )
        with guard(f.title):
            return svc.save_array(svc.rectangle_mask(size, rows, cols), f.name)
        return None
    if mode == "Upload":
        up = st.file_uploader(
            f"{f.title} image (white = 1)",
            type=["png", "jpg", "jpeg", "webp"],
            key=key(prefix, f"{f.name}_up"),
        )
        if up is not None:
            with guard(f"'{up.name}'"):
                return svc.save_array(svc.image_to_map(up.getvalue(), size), f.name)
        return None
    path = st.text_input(f"{f.title}: .npy or image path on the server", key=key(prefix, f"{f.name}_path"))
    return path or None
