import pytest
import torch
from PIL import Image

from backend.errors import InvalidConfig
from backend.models.preprocessing import Preprocessing


def test_normalize_round_trip_batched_and_single():
    pre = Preprocessing(32, 40, (0.1, 0.2, 0.3), (0.5, 0.25, 2.0))
    x = torch.rand(4, 3, 32, 32)
    assert torch.allclose(pre.denormalize(pre.normalize(x)), x, atol=1e-6)
    assert torch.allclose(pre.normalize(x[0]), pre.normalize(x)[0])
    assert torch.allclose(pre.normalize(x)[:, 2], (x[:, 2] - 0.3) / 2.0)


def test_to_tensor_resizes_crops_and_normalises():
    pre = Preprocessing(16, 20, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), "bicubic")
    white = Image.new("RGB", (80, 40), (255, 255, 255))
    x = pre.to_tensor(white)
    assert x.shape == (3, 16, 16)
    assert torch.allclose(x, torch.ones_like(x), atol=1e-5)  # (1 - 0.5) / 0.5


def test_dict_round_trip_and_validation():
    pre = Preprocessing(224, 256, (0.4, 0.4, 0.4), (0.2, 0.2, 0.2), "bicubic")
    assert Preprocessing.from_dict(pre.to_dict()) == pre
    with pytest.raises(InvalidConfig, match="interpolation"):
        Preprocessing(interpolation="lanczos9")
    with pytest.raises(InvalidConfig, match="size"):
        Preprocessing(300, 256)
    with pytest.raises(InvalidConfig, match="Unknown"):
        Preprocessing.from_dict({**pre.to_dict(), "gamma": 2})
