"""LRP_T: LRP relevance at the target layer (A * dS/dA under the rules), summed over channels, upsampled."""

from backend.explain.methods.lrp import LRP_CHOICES, LRP_FORM, LRP_PARAMS, with_bounds
from backend.explain.methods.templates import LayerMethod
from backend.explain.registry import MethodSpec, register_method


class LRPT(LayerMethod):
    lrp = True

    def __call__(self, call):
        call.params = with_bounds(call)
        return super().__call__(call)

    def layer_map(self, call, activation, grad):
        return (activation * grad).sum(1)


register_method(
    MethodSpec(
        name="lrp_t",
        label="LRP_T",
        differentiable=True,
        layer_based=True,
        params={**LRP_PARAMS, "upsample": "bilinear"},
        cost="fast",
        description="LRP stopped at the target layer, summed over channels and upsampled.",
        choices={**LRP_CHOICES, "upsample": ("bilinear", "nearest", "bicubic")},
        form=LRP_FORM,
    )
)(LRPT())
