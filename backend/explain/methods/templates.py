"""Two templates (pytorch-grad-cam style): a variant overrides one step and inherits the rest.

* `InputGradientMethod`: input points -> batched gradients of the target logit -> `combine`.
  Gradient, Gradient x Input, Integrated Gradients and SmoothGrad differ only in `points`/`combine`.
* `LayerMethod`: target-layer activation A and dS/dA (plain, or under the LRP rules) -> `layer_map`.
  Gradient_T, Grad-CAM and LRP_T differ only in `layer_map` (and LRP_T in its backward).
"""

from __future__ import annotations

import torch

from backend.errors import InvalidConfig
from backend.explain.call import ExplainCall
from backend.explain.context import capture
from backend.explain.lrp.engine import lrp_rules

Result = tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]  # native, heatmap, logits (None: lazy)


class InputGradientMethod:
    """Template over gradients w.r.t. the input; heatmap = native summed over channels (rows: native)."""

    def points(self, call: ExplainCall) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(points (S*B, ...) as S groups of the batch, weights (S,)); None = the input itself."""
        return None

    def combine(self, call: ExplainCall, grads: torch.Tensor) -> torch.Tensor:
        """Native (B, C, H, W) map from the weighted gradient sum over the points."""
        return grads

    def __call__(self, call: ExplainCall) -> Result:
        path = self.points(call)
        if path is None:
            leaf = call.x.detach().requires_grad_(True)
            logits = call.model(leaf)
            (grads,) = call.grad(call.score(logits, call.targets(logits)), [leaf])
        else:
            # the logits of x itself are needed only to pick the predicted class, or for a fooling loss
            need_logits = call.target is None or call.create_graph
            logits = self._logits(call) if need_logits else None
            if logits is not None:
                call.targets(logits)  # resolve on x itself, before the path points' logits are seen
            grads = self._path_gradients(call, *path)
        native = self.combine(call, grads)
        return native, channel_sum(native), logits

    @staticmethod
    def _logits(call: ExplainCall) -> torch.Tensor:
        with torch.set_grad_enabled(call.create_graph):
            return call.model(call.x)

    @staticmethod
    def _path_gradients(call: ExplainCall, points: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """sum_s weights[s] * dS/dx at points[s], computed `batch_size` images at a time."""
        b = call.batch
        chunk = max(b, int(call.params["batch_size"]) // b * b)  # whole groups per chunk
        total = torch.zeros_like(call.x)
        for start in range(0, points.shape[0], chunk):
            leaf = points[start : start + chunk].detach().requires_grad_(True)
            logits = call.model(leaf)
            (g,) = call.grad(call.score(logits, call.targets(logits)), [leaf])
            w = weights[start // b : start // b + leaf.shape[0] // b].to(g)
            total = total + (g.view(-1, *call.x.shape) * w.view(-1, *[1] * call.x.dim())).sum(0)
            call.report(min(start + chunk, points.shape[0]) // b, points.shape[0] // b)
        return total


def channel_sum(native: torch.Tensor) -> torch.Tensor:
    """An image map (B, C, H, W) summed over channels; a row map (B, F) is already one value per column."""
    return native.sum(1) if native.dim() == 4 else native


class LayerMethod:
    """Template over the target layer's activation A and its (LRP-)gradient G; native = layer_map(A, G)."""

    lrp = False

    def layer_map(self, call: ExplainCall, activation: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, call: ExplainCall) -> Result:
        if self.lrp:
            return self._lrp_call(call)
        leaf = call.x.detach().requires_grad_(True)
        with capture(call.layer) as cap:
            logits = call.model(leaf)
        act = self._check(cap.output)
        (grad,) = call.grad(call.score(logits, call.targets(logits)), [act])
        native = self.layer_map(call, act, grad)
        return native, call.upsample(native), logits

    def _lrp_call(self, call: ExplainCall) -> Result:
        """Rules only above the target layer; with create_graph the batch is doubled there (see engine)."""
        packed, params = call.create_graph, call.params
        leaf = call.x.detach().requires_grad_(True)  # the layer output needs grad even with frozen weights
        rules = lrp_rules(call.model, call.x, params["composite"], params, packed, start_after=call.layer)
        with rules as start:
            logits = call.model(leaf)
        self._check(start.activation)
        lrp_logits = logits
        if packed:
            logits, lrp_logits = logits.chunk(2)
        with start.packing.heatmap():
            (grad,) = call.grad(call.score(lrp_logits, call.targets(logits)), [start.carrier])
        native = self.layer_map(call, start.activation, grad)
        return native, call.upsample(native), logits

    @staticmethod
    def _check(act: torch.Tensor | None) -> torch.Tensor:
        if act is None or act.dim() != 4:
            raise InvalidConfig("the target layer must output a (B, C, h, w) feature map; pick a conv layer")
        return act
