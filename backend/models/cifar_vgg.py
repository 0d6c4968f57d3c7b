"""VGG16 for 32 px CIFAR-10 inputs, as in the thesis (Pasliev2020): 13 convolutions, 5 pools, 3 dense layers.

Module names follow torchvision's VGG (`features.N`, `classifier.N`), so the last convolution is
`features.28` here too; at 32 px its map is 2x2, as the thesis notes for Grad-CAM.
"""

from __future__ import annotations

import torch
from torch import nn

VGG16_CFG: tuple[int | str, ...] = (
    64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M",
)  # fmt: skip


class CifarVGG16(nn.Module):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_ch = 3
        for v in VGG16_CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                layers += [nn.Conv2d(in_ch, int(v), 3, padding=1), nn.ReLU()]
                in_ch = int(v)
        self.features = nn.Sequential(*layers)
        self.flatten = nn.Flatten()
        self.classifier = nn.Sequential(
            nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.flatten(self.features(x)))
