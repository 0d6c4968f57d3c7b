"""The small CNN for the synthetic shapes data: fast on a CPU, explanation layer at 1/8 resolution.

Strided 3x3 convolutions with BatchNorm and ReLU modules; global *max* pooling, because the object
covers a small part of a cluttered image (averaging would drown it in background features). The last
conv stage (`features.14`, its ReLU output) is the Grad-CAM / LRP_T layer: 8x8 at 64 px, ~39 px
receptive field.
"""

from __future__ import annotations

import torch
from torch import nn

TARGET_LAYER = "features.14"


def _stage(c_in: int, c_out: int, stride: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]


class ShapesCNN(nn.Module):
    def __init__(self, num_classes: int = 5, width: int = 12) -> None:
        super().__init__()
        w = width
        self.features = nn.Sequential(
            *_stage(3, w, 2),
            *_stage(w, 2 * w, 2),
            *_stage(2 * w, 2 * w, 1),
            *_stage(2 * w, 4 * w, 2),
            *_stage(4 * w, 4 * w, 1),
        )
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.flatten = nn.Flatten()
        self.classifier = nn.Linear(4 * w, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.flatten(self.pool(self.features(x))))
