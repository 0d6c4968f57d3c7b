"""The small CNN for the synthetic shapes data: fast on a CPU, explanation layer at 1/8 resolution.

Strided 3x3 convolutions with BatchNorm and ReLU modules, a small spatial head (1x1 convolution +
ReLU, the per-cell counterpart of the papers' VGG fully connected layers), global *average* pooling and
one linear layer. The last conv stage (`features.17`, its ReLU output) is the Grad-CAM / LRP_T layer.

Why this shape: average pooling keeps the explanation layer's relevance spatial, every 8x8 cell reaches
the logit in proportion to its evidence, so fooling can move LRP_T and Grad-CAM maps anywhere. (Global
max pooling, used before, passed LRP relevance through one cell per channel, and Location fooling of
LRP_T could not succeed.) The nonlinear head keeps LRP_T distinct from Grad-CAM: with only pooling and
a linear layer after the target layer, both would be the same class-activation map. Averaging dilutes
the small object among background cells, so a second stride-1 stage at 8x8 (receptive field ~55 px:
the object and its context) keeps the held-out accuracy of the max-pooled net (~97%).
"""

from __future__ import annotations

import torch
from torch import nn

TARGET_LAYER = "features.17"


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
            *_stage(4 * w, 4 * w, 1),
        )
        self.head = nn.Sequential(nn.Conv2d(4 * w, 4 * w, 1), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.classifier = nn.Linear(4 * w, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.flatten(self.pool(self.head(self.features(x)))))
