"""`explain()` on table rows (B, F): the same methods as for images, checked against captum and zennit in
float64, grouped by one-hot feature, and differentiable in the weights (create_graph)."""

from __future__ import annotations

import copy

import pytest
import torch
from captum.attr import FeatureAblation, InputXGradient, IntegratedGradients, Saliency
from zennit.attribution import Gradient
from zennit.composites import LayerMapComposite, layer_map_base
from zennit.rules import Epsilon, ZPlus
from zennit.types import Linear

from backend.errors import InvalidConfig
from backend.explain import METHODS, explain
from backend.explain.groups import group_attributions, group_index
from backend.models import zoo
from tests.explain.conftest import assert_second_derivatives

GROUPS = [[0], [1], [2, 3, 4], [5], [6, 7]]  # two numbers, a 3-way one-hot, a number, a protected pair
PROTECTED = torch.tensor([False] * 6 + [True] * 2)


@pytest.fixture(scope="module")
def mlp():
    torch.manual_seed(0)
    return zoo.build("tabular_mlp", 3, in_features=8, hidden=[16, 12]).double().eval()


@pytest.fixture(scope="module")
def rows():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(6, 8, generator=g, dtype=torch.float64)
    x[:, 2:5] = torch.nn.functional.one_hot(torch.randint(3, (6,), generator=g), 3).double()
    x[:, 6:8] = torch.nn.functional.one_hot(torch.randint(2, (6,), generator=g), 2).double()
    return x


def close(ours: torch.Tensor, ref: torch.Tensor) -> bool:
    ref = ref.detach()
    assert ref.abs().max() > 0
    return torch.allclose(ours, ref.to(ours), rtol=1e-7, atol=1e-10 * float(ref.abs().max()))


def test_the_table_methods_are_declared():
    table = {n for n, s in METHODS.items() if "tabular" in s.inputs}
    assert table == {"gradient", "grad_x_input", "integrated_gradients", "smoothgrad", "lrp", "occlusion"}
    assert all("image" in s.inputs for s in METHODS.values())


def test_gradient_gxi_and_ig_equal_captum(mlp, rows):
    target = torch.tensor([0, 1, 2, 0, 1, 2])
    g = explain(mlp, rows, target, "gradient")
    assert g.heatmap.shape == (6, 8) and close(
        g.heatmap, Saliency(mlp).attribute(rows, target=target, abs=False)
    )
    assert close(
        explain(mlp, rows, target, "grad_x_input").heatmap, InputXGradient(mlp).attribute(rows, target=target)
    )
    ours = explain(mlp, rows, 1, "integrated_gradients", steps=20, batch_size=30)
    ref = IntegratedGradients(mlp).attribute(
        rows, baselines=0.0, target=1, n_steps=20, method="riemann_middle"
    )
    assert close(ours.heatmap, ref) and close(ours.native, ref)


def test_occlusion_ablates_one_hot_groups_together_as_captum_feature_ablation(mlp, rows):
    ours = explain(mlp, rows, 2, "occlusion", groups=GROUPS, fill=0.0, batch_size=7)
    mask = group_index(GROUPS, 8)[None]
    assert close(
        ours.heatmap, FeatureAblation(mlp).attribute(rows, baselines=0.0, target=2, feature_mask=mask)
    )
    assert torch.equal(ours.heatmap[:, 2], ours.heatmap[:, 4])  # a group shares its drop
    fill = torch.linspace(-1, 1, 8, dtype=torch.float64)
    per_column = explain(mlp, rows, 0, "occlusion", fill=fill.tolist())
    assert close(per_column.heatmap, FeatureAblation(mlp).attribute(rows, baselines=fill[None], target=0))


def zennit_relevance(model, x, target, composite):
    with Gradient(model=model, composite=composite) as attributor:
        out = model(x)
        _, relevance = attributor(x, torch.nn.functional.one_hot(target, out.shape[1]).to(out) * out)
    return relevance


@pytest.mark.parametrize("composite", ["epsilon", "zplus", "epsilon_alpha1beta0"])
def test_lrp_on_rows_equals_zennit(mlp, rows, composite):
    """epsilon / z+ on every dense layer (Heo's default composite is epsilon on dense layers)."""
    ours = explain(mlp, rows, None, "lrp", composite=composite)
    rule = ZPlus() if composite == "zplus" else Epsilon(epsilon=0.01)
    ref_composite = LayerMapComposite(layer_map=layer_map_base(stabilizer=1e-30) + [(Linear, rule)])
    ref = zennit_relevance(mlp, rows, ours.target, ref_composite)
    assert torch.allclose(ours.heatmap, ref, rtol=1e-6, atol=1e-9 * float(ref.abs().max()))


def test_grouped_attributions_sum_each_one_hot_group(mlp, rows):
    a = explain(mlp, rows, 1, "grad_x_input").heatmap
    grouped = group_attributions(a, GROUPS)
    ref = InputXGradient(mlp).attribute(rows, target=1)
    assert (
        grouped.shape == (6, 5)
        and close(grouped[:, 2], ref[:, 2:5].sum(1))
        and close(grouped[:, 0], ref[:, 0])
    )
    assert close(group_attributions(a, GROUPS, absolute=True)[:, 4], ref[:, 6:8].abs().sum(1))
    assert torch.allclose(group_attributions(a, GROUPS).sum(1), a.sum(1))


@pytest.mark.parametrize(
    "method,params",
    [
        ("gradient", {}),
        ("grad_x_input", {}),
        ("integrated_gradients", {"steps": 6}),
        ("smoothgrad", {"n": 4, "sigma": 0.1}),
        ("lrp", {"composite": "epsilon"}),
        ("lrp", {"composite": "zplus"}),
    ],
)
def test_grouped_protected_share_is_differentiable_in_the_weights(mlp, rows, method, params):
    """The quantity the fairwashing attack minimises, checked against central differences."""
    model = copy.deepcopy(mlp).requires_grad_(True)

    def loss(create_graph: bool) -> torch.Tensor:
        h = explain(
            model, rows, torch.tensor([0, 1, 2, 0, 1, 2]), method, create_graph=create_graph, **params
        )
        norm = h.heatmap.abs() / h.heatmap.abs().sum(1, keepdim=True)
        return group_attributions(norm, GROUPS)[:, 4].mean() + (norm * PROTECTED).sum(1).mean()

    weights = [p for n, p in model.named_parameters() if n.endswith("weight")]
    assert_second_derivatives(loss, [weights[0], weights[-1]], rtol=1e-4)


def test_smoothgrad_on_rows_is_the_mean_gradient_at_its_noisy_points(mlp, rows):
    assert close(
        explain(mlp, rows, 1, "smoothgrad", n=3, sigma=0.0).heatmap, explain(mlp, rows, 1, "gradient").heatmap
    )
    sg = explain(mlp, rows, 1, "smoothgrad", n=5, sigma=0.2, seed=3).heatmap
    spread = (rows.max(1).values - rows.min(1).values)[:, None] * 0.2
    noise = torch.randn((5, *rows.shape), generator=torch.Generator().manual_seed(3), dtype=rows.dtype)
    ref = torch.stack([Saliency(mlp).attribute(rows + e * spread, target=1, abs=False) for e in noise]).mean(
        0
    )
    assert close(sg, ref)


def test_rows_get_typed_errors(mlp, rows):
    with pytest.raises(InvalidConfig, match="Grad-CAM explains image inputs only.*use one of: .*gradient"):
        explain(mlp, rows, method="gradcam")
    with pytest.raises(InvalidConfig, match="cover each column once"):
        explain(mlp, rows, method="occlusion", groups=[[0, 1], [1, 2]])
    with pytest.raises(InvalidConfig, match="z.beta is for images"):
        explain(mlp, rows, method="lrp", composite="zbox_zplus")
    with pytest.raises(InvalidConfig, match="one per column"):
        explain(mlp, rows, method="occlusion", fill=[0.0, 1.0])
    with pytest.raises(InvalidConfig, match=r"\(B, C, H, W\) or float rows \(B, F\)"):
        explain(mlp, rows[0])


def test_images_refuse_feature_groups():
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 2, 3), torch.nn.Flatten(), torch.nn.LazyLinear(2))
    images = torch.randn(2, 3, 8, 8)
    net(images)
    with pytest.raises(InvalidConfig, match="groups are feature groups of tabular rows"):
        explain(net, images, method="occlusion", groups=[[0]])


def test_the_model_is_unchanged_after_explaining_rows(mlp, rows):
    before = {k: v.clone() for k, v in mlp.state_dict().items()}
    mlp.train()
    for method in ("gradient", "lrp", "smoothgrad", "occlusion"):
        explain(mlp, rows, None, method, softplus_beta=10.0)
    assert mlp.training and all(torch.equal(v, before[k]) for k, v in mlp.state_dict().items())
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in mlp.modules())
    assert all(isinstance(m, torch.nn.ReLU) for m in mlp.layers if not isinstance(m, torch.nn.Linear))
    mlp.eval()
