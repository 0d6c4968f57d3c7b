"""The checkpoint handle: one answer for sizes and ranges, and explanations of a shared model that
cannot run inside each other (the dashboard shares one model per checkpoint across sessions)."""

from __future__ import annotations

import sys
import threading
from contextlib import contextmanager

import pytest
import torch
from torch import nn

from backend.data.shapes import make_shapes
from backend.errors import IncompatibleCheckpoint
from backend.explain import explain
from backend.models.checkpoint import Checkpoint
from backend.models.input_range import InputRange
from backend.models.registry import Registry

ROUNDS = 60  # explanations per thread and method
LRP = ("lrp", {"composite": "zbox_zplus"})  # forward hooks on every layer, z^beta bounds from the range
SOFTPLUS = ("gradient", {"softplus_beta": 3.0})  # swaps every ReLU for Softplus while it runs


@contextmanager
def fast_switching():
    """Let threads switch every microsecond, so an unguarded race shows within a few calls."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def _inputs(checkpoint: Checkpoint) -> torch.Tensor:
    images, _, _ = make_shapes(2, size=checkpoint.input_size, seed=5)
    return checkpoint.image_preprocessing.normalize(images)


def _race(checkpoint: Checkpoint, x: torch.Tensor, guarded: bool) -> tuple[int, int, list[str]]:
    """Two threads explain the same model ROUNDS times each, one with LRP, one with softplus gradients;
    returns (wrong LRP maps, wrong softplus maps, errors) against single-threaded references.

    `guarded=False` calls the engine on the shared model directly: what every page did before the
    handle, and what shows that the lock is what makes the guarded run right.
    """
    references = {
        name: checkpoint.explain(x, None, name, **params).heatmap.clone() for name, params in (LRP, SOFTPLUS)
    }
    wrong = {LRP[0]: 0, SOFTPLUS[0]: 0}
    errors: list[str] = []
    start = threading.Barrier(2)

    def worker(name: str, params: dict) -> None:
        start.wait()
        for _ in range(ROUNDS):
            try:
                if guarded:
                    heatmap = checkpoint.explain(x, None, name, **params).heatmap
                else:
                    heatmap = explain(checkpoint.model, x, None, name, **params).heatmap
            except Exception as err:  # a hook meeting a swapped module: also a wrong answer
                errors.append(f"{name}: {type(err).__name__}")
                wrong[name] += 1
                continue
            if not torch.allclose(heatmap, references[name], rtol=1e-4, atol=1e-6):
                wrong[name] += 1

    threads = [threading.Thread(target=worker, args=spec) for spec in (LRP, SOFTPLUS)]
    with fast_switching():
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
    assert not any(t.is_alive() for t in threads)
    return wrong[LRP[0]], wrong[SOFTPLUS[0]], errors


def _assert_untouched(model: nn.Module) -> None:
    """No hook left on any module, every ReLU back, every module in eval mode as loaded."""
    for module in model.modules():
        assert not module._forward_hooks and not module._forward_pre_hooks, type(module).__name__
        assert not module._backward_hooks, type(module).__name__
        assert not isinstance(module, nn.Softplus)
        assert not module.training
    assert any(isinstance(m, nn.ReLU) for m in model.modules())


def test_two_threads_explaining_one_checkpoint_get_their_single_threaded_maps(shapes_model):
    _, card = shapes_model
    checkpoint = Registry().get(card.id, device="cpu")
    x = _inputs(checkpoint)
    wrong_lrp, wrong_softplus, errors = _race(checkpoint, x, guarded=True)
    assert (wrong_lrp, wrong_softplus, errors) == (0, 0, [])
    _assert_untouched(checkpoint.model)


def test_without_the_lock_the_same_race_gives_wrong_maps(shapes_model):
    """The hazard the lock removes is real: the same two threads on the bare shared model go wrong."""
    _, card = shapes_model
    checkpoint = Registry().get(card.id, device="cpu")  # its own model: the guarded test's stays clean
    wrong_lrp, wrong_softplus, errors = _race(checkpoint, _inputs(checkpoint), guarded=False)
    print(f"unguarded: {wrong_lrp}/{ROUNDS} LRP maps and {wrong_softplus}/{ROUNDS} softplus maps wrong")
    assert wrong_lrp + wrong_softplus > 0


def test_one_place_answers_size_shape_and_range(shapes_model):
    _, card = shapes_model
    checkpoint = Registry().get(card.id, device="cpu")
    assert not checkpoint.loaded  # the card is read, the weights wait for first use
    assert checkpoint.input_size == 64 and checkpoint.input_shape == (3, 64, 64)
    # shapes preprocessing: mean 0.5, std 0.25, so pixels [0, 1] become [-2, 2]
    assert checkpoint.input_range == InputRange((-2.0,) * 3, (2.0,) * 3)
    assert checkpoint.classes == card.classes and checkpoint.num_classes == len(card.classes)
    assert checkpoint.model.input_range == checkpoint.input_range and checkpoint.loaded


def test_lrp_bounds_come_from_the_checkpoint_not_imagenet(shapes_model):
    """z^beta with the checkpoint's range equals z^beta with those bounds given by hand, and differs
    from the ImageNet bounds a bare model gets."""
    _, card = shapes_model
    checkpoint = Registry().get(card.id, device="cpu")
    x = _inputs(checkpoint)
    own = checkpoint.explain(x, None, "lrp", composite="zbox_zplus").heatmap
    low, high = checkpoint.input_range.tensors(x)
    by_hand = explain(checkpoint.fresh_model(), x, None, "lrp", composite="zbox_zplus", low=low, high=high)
    bare = checkpoint.fresh_model()
    del bare.input_range
    imagenet = explain(bare, x, None, "lrp", composite="zbox_zplus").heatmap
    assert torch.allclose(own, by_hand.heatmap, atol=1e-6)
    assert (own - imagenet).abs().max() > 0.01 * own.abs().max()


def test_a_table_model_has_no_image_size(tmp_path):
    from backend.models import zoo
    from backend.tabular.data import load_table, split_rows, validate_spec
    from backend.tabular.preprocessing import TabularPreprocessing

    spec = validate_spec({"kind": "synthetic", "n": 60, "seed": 0})
    table = load_table(spec)
    train, _ = split_rows(table, spec)
    prep = TabularPreprocessing.fit(table, train, data=spec)
    model = zoo.build("tabular_mlp", 2, in_features=prep.n_features)
    registry = Registry(root=tmp_path)
    card = registry.save(
        model, name="rows", architecture="tabular_mlp", classes=["0", "1"], preprocessing=prep, kind="trained"
    )
    checkpoint = registry.get(card.id, device="cpu")
    assert checkpoint.modality == "tabular" and checkpoint.input_shape == (prep.n_features,)
    assert checkpoint.input_range is None
    with pytest.raises(IncompatibleCheckpoint, match="not images"):
        _ = checkpoint.input_size
