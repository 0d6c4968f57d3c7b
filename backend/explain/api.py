"""The one entry point: `explain(model, x, target, method, ...) -> Explanation`, batched, any method."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from backend.errors import InvalidConfig
from backend.explain import methods  # noqa: F401  (registers every method)
from backend.explain.call import ExplainCall, Target
from backend.explain.context import eval_mode, softplus
from backend.explain.layers import resolve_layer
from backend.explain.registry import METHODS, get_method
from backend.progress import ProgressFn


@dataclass
class Explanation:
    """heatmap (B, H, W) at input resolution (or (B, F) for rows); native: the method's own map; logits
    (B, K) of the forward.

    With `create_graph=True` all three stay attached to the model's weights (for a fooling loss). A
    path method (IG, SmoothGrad) asked about a given target never needs the logits of `x` itself; then
    they are computed on first access (one extra forward, in the same eval/softplus mode), so an
    attribution-only caller pays what captum does. That only happens without `create_graph`.
    """

    heatmap: torch.Tensor
    native: torch.Tensor
    target: torch.Tensor
    method: str
    _logits: torch.Tensor | None = field(default=None, repr=False)
    _forward: Callable[[], torch.Tensor] | None = field(default=None, repr=False)

    @property
    def logits(self) -> torch.Tensor:
        if self._logits is None:
            assert self._forward is not None
            self._logits, self._forward = self._forward(), None
        return self._logits

    def guarded(self, lock: AbstractContextManager) -> Explanation:
        """Make the deferred logits forward (if any) run under `lock`: the model's own, when the model
        is shared (`backend.models.checkpoint.Checkpoint.explain`)."""
        forward = self._forward
        if forward is not None:

            def locked() -> torch.Tensor:
                with lock:
                    return forward()

            self._forward = locked
        return self


def explain(
    model: nn.Module,
    x: torch.Tensor,
    target: Target = None,
    method: str = "gradient",
    *,
    create_graph: bool = False,
    softplus_beta: float | None = None,
    layer: str | None = None,
    progress: ProgressFn | None = None,
    train_mode: bool = False,
    **params: Any,
) -> Explanation:
    """Explain `target` (None = predicted class) for the normalised batch `x` (B, C, H, W) with `method`.

    Tabular rows `x` (B, F) (standardised / one-hot, as `backend.tabular.preprocessing` builds them) go
    through the same call for the methods whose `MethodSpec.inputs` include "tabular"; their heatmap is
    then (B, F), one value per input column (`backend.explain.groups` sums one-hot groups).

    Gradients are enabled for the call even inside `torch.no_grad()`. The model runs in eval mode
    (running BatchNorm statistics, no dropout); its modules, hooks and train/eval flags are exactly as
    before afterwards; `train_mode=True` runs the model in whatever mode it is in instead (a fooling run
    with `freeze_batchnorm=False` then trains on batch statistics). `progress(Progress(done, total))`
    (`backend.progress`) is called as a heavy method (IG, SmoothGrad, Occlusion) works through its
    points or windows, so a page can show a real progress bar.
    """
    spec = get_method(method)
    resolved = spec.resolve_params(params)
    if create_graph and not spec.differentiable:
        raise InvalidConfig(f"{spec.label} is not differentiable; it cannot be used with create_graph=True")
    kind = input_kind(x)
    if kind not in spec.inputs:
        raise InvalidConfig(
            f"{spec.label} explains {' and '.join(spec.inputs)} inputs only, not {kind} {tuple(x.shape)}; "
            f"for {kind} inputs use one of: {', '.join(n for n, s in METHODS.items() if kind in s.inputs)}"
        )
    if softplus_beta is not None and softplus_beta <= 0:
        raise InvalidConfig(f"softplus_beta must be positive, got {softplus_beta}")
    if spec.layer_based:
        resolve_layer(model, layer)  # fail early, before touching the model
    with eval_mode(model, keep=train_mode), softplus(model, softplus_beta), torch.enable_grad():
        target_layer = resolve_layer(model, layer) if spec.layer_based else None  # may be a swapped ReLU
        call = ExplainCall(model, x, target, create_graph, target_layer, resolved, progress)
        try:
            native, heatmap, logits = spec.compute(call)
        except RuntimeError as err:  # shape/channel mismatches surface as torch RuntimeErrors
            raise InvalidConfig(
                f"the model could not run on this input {tuple(x.shape)}; check the image size and "
                f"channels ({str(err).splitlines()[0]})"
            ) from err
    if logits is None:  # the method did not need them: computed when someone asks
        return Explanation(
            heatmap=call.finish(heatmap),
            native=call.finish(native),
            target=call.resolved_target,
            method=method,
            _forward=lambda: _forward_logits(model, x, softplus_beta),
        )
    return Explanation(
        heatmap=call.finish(heatmap),
        native=call.finish(native),
        target=call.targets(logits),
        method=method,
        _logits=call.finish(logits),
    )


def input_kind(x: object) -> str:
    """ "image" for a float (B, C, H, W) batch, "tabular" for float (B, F) rows; else `InvalidConfig`."""
    if isinstance(x, torch.Tensor) and x.is_floating_point() and x.dim() in (2, 4):
        return "image" if x.dim() == 4 else "tabular"
    shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
    raise InvalidConfig(f"explain needs a float image batch (B, C, H, W) or float rows (B, F), got {shape}")


def _forward_logits(model: nn.Module, x: torch.Tensor, softplus_beta: float | None) -> torch.Tensor:
    with eval_mode(model), softplus(model, softplus_beta), torch.no_grad():
        return model(x)
