"""Architectures build with their explanation layer; torchvision-style weights load from the hub cache."""

import pytest
import torch

from backend.errors import IncompatibleCheckpoint, InvalidConfig, MissingWeights
from backend.models import zoo


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("FOOLING_LAB_TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    return tmp_path / "hub" / "checkpoints"


@pytest.mark.parametrize("arch", ["efficientnet_lite0", "cifar_vgg16", "shapes_cnn", "vgg16", "resnet50"])
def test_build_tags_model(arch):
    model = zoo.build(arch)
    assert model.arch == arch
    assert model.default_target_layer in dict(model.named_modules())
    size = zoo.spec(arch).preprocessing.size
    with torch.no_grad():
        out = model(torch.zeros(1, 3, size, size))
    assert out.shape == (1, zoo.spec(arch).num_classes)


def test_cifar_vgg16_gradcam_layer_is_2x2():
    model = zoo.build("cifar_vgg16")
    seen = {}
    layer = dict(model.named_modules())[model.default_target_layer]
    handle = layer.register_forward_hook(lambda m, i, o: seen.update(shape=o.shape))
    try:
        model(torch.zeros(1, 3, 32, 32))
    finally:
        handle.remove()
    assert seen["shape"] == (1, 512, 2, 2)
    assert sum(isinstance(m, torch.nn.Conv2d) for m in model.modules()) == 13
    assert sum(isinstance(m, torch.nn.Linear) for m in model.modules()) == 3


def test_densenet121_loads_published_key_format_from_hub_cache(torch_home):
    torch.manual_seed(0)
    source = zoo.build("densenet121")
    # torchvision's published file uses the old `norm.1` key style
    old = {
        k.replace("norm1", "norm.1").replace("conv2", "conv.2"): v
        for k, v in source.state_dict().items()
        if not k.endswith("num_batches_tracked")  # the published file predates the counter
    }
    assert any(".norm.1." in k for k in old)
    torch.save(old, torch_home / "densenet121-a639ec97.pth")
    loaded = zoo.load_pretrained("densenet121")
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(loaded(x), source.eval()(x))


def test_cifar_vgg16_from_named_file_wrapped(tmp_path):
    source = zoo.build("cifar_vgg16")
    path = tmp_path / "mine.pt"
    torch.save({"state_dict": source.state_dict(), "epoch": 3}, path)
    loaded = zoo.load_pretrained("cifar_vgg16", path)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(x), source(x))


MISSING = [("vgg16", "vgg16-397923af.pth"), ("resnet50", "resnet50-0676ba61.pth")]


@pytest.mark.parametrize("arch,file", MISSING)
def test_missing_weights_message_names_path(torch_home, arch, file):
    with pytest.raises(MissingWeights) as err:
        zoo.load_pretrained(arch)
    assert str(torch_home / file) in str(err.value)
    assert "download.pytorch.org" in str(err.value)


def test_wrong_weights_and_unknown_arch(tmp_path):
    path = tmp_path / "w.pt"
    torch.save(zoo.build("shapes_cnn").state_dict(), path)
    with pytest.raises(IncompatibleCheckpoint, match="missing"):
        zoo.load_pretrained("cifar_vgg16", path)
    with pytest.raises(InvalidConfig, match="known"):
        zoo.build("alexnet")
    with pytest.raises(MissingWeights, match="python -m backend train"):
        zoo.load_pretrained("shapes_cnn")
