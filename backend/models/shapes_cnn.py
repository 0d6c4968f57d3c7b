"""The small CNN for the synthetic shapes data: fast on a CPU, Grad-CAM layer at 1/8 resolution.

Five 3x3 convolutions (ReLU modules, no BatchNorm, so LRP needs no canonizer); the last one
(`features.11`) is the explanation layer: 8x8 at 64 px, with a ~46 px receptive field.
"""

from __future__ import annotations

import torch
from torch import nn

TARGET_LAYER = "features.11"


class ShapesCNN(nn.Module):
    def __init__(self, num_classes: int = 5, width: int = 16) -> None:
        super().__init__()
        w = width
        self.features = nn.Sequential(
            nn.Conv2d(3, w, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(w, 2 * w, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(2 * w, 2 * w, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(2 * w, 4 * w, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(4 * w, 4 * w, 3, padding=1),
            nn.ReLU(),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.classifier = nn.Linear(4 * w, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.flatten(self.pool(self.features(x))))
