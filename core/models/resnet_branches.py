"""Multi-branch ResNet (torch, no torchvision): one residual backbone per 2-D input, fused into a Gaussian head.

Backbone (He et al. 2016, the seed's ResNet-18 when ``width=64, blocks=(2, 2, 2, 2)``): a 3x3 stem convolution
(stride chosen from the input size, see :func:`stem_stride`), ``len(blocks)`` stages of basic residual blocks
(two 3x3 conv + batch norm, identity or 1x1 projection shortcut) with ``width * 2**k`` channels and stride 2
between stages, then global average pooling. Every branch therefore accepts its own input size; the feature
vectors of all branches (plus optional scalar side inputs) are concatenated and mapped by an MLP head to a
mean and a log-variance per target (a diagonal Gaussian posterior in normalized target units).

Shapes: each branch takes ``(B, C_k, H_k, W_k)``; the network returns ``(mean, log_var)`` each ``(B, p)``.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch import nn

__all__ = ["BasicBlock", "ResNetBackbone", "MultiBranchResNet", "stem_stride"]

LOG_VAR_MIN, LOG_VAR_MAX = -14.0, 6.0


def stem_stride(size: int, stage1_max: int = 64) -> int:
    """Stride (a power of 2) of the stem for a ``size``-pixel input: the smallest that brings the first residual
    stage to <= ``stage1_max`` pixels (e.g. 300 px -> 4 with the default 64; 48 px -> 1, or 2 with 32).

    So a 300x300 image and a 48x48 map cost comparable compute; a smaller ``stage1_max`` is the CPU setting.
    """
    s = 1
    while size / s > stage1_max and s < 64:
        s *= 2
    return s


class BasicBlock(nn.Module):
    """Residual block: conv3x3-BN-ReLU-conv3x3-BN + shortcut, then ReLU. (B, c_in, H, W) -> (B, c_out, H/s, W/s)."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.act = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.act(out + self.shortcut(x))


class ResNetBackbone(nn.Module):
    """ResNet feature extractor for one input: (B, in_channels, H, W) -> (B, out_dim) after global average pooling.

    ``width`` is the channel count of the first stage (64 in ResNet-18); ``blocks`` the number of basic blocks per
    stage ((2, 2, 2, 2) is ResNet-18: 1 stem conv + 16 block convs + the head layer); ``size`` the input side in
    pixels and ``stage1_max`` the largest first-stage map side (together they set the stem stride).
    """

    def __init__(self, in_channels: int, size: int, width: int = 64, blocks: Sequence[int] = (2, 2, 2, 2),
                 stage1_max: int = 64) -> None:
        super().__init__()
        s = stem_stride(size, stage1_max)
        stem: list[nn.Module] = [nn.Conv2d(in_channels, width, 3, stride=min(s, 2), padding=1, bias=False),
                                 nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
        if s >= 4:               # ResNet's stride-2 max pool after the stride-2 stem (more pooling for huge inputs)
            stem.append(nn.MaxPool2d(3 if s == 4 else s // 2, stride=s // 2, padding=1 if s == 4 else 0))
        self.stem = nn.Sequential(*stem)
        layers: list[nn.Module] = []
        c = width
        for k, n in enumerate(blocks):
            c_out = width * 2 ** k
            for b in range(n):
                layers.append(BasicBlock(c, c_out, stride=2 if (k > 0 and b == 0) else 1))
                c = c_out
        self.layers = nn.Sequential(*layers)
        self.out_dim = c
        self.pool = nn.AdaptiveAvgPool2d(1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        for m in self.modules():     # zero-init the last BN of each block: every block starts as the identity
            if isinstance(m, BasicBlock):
                nn.init.zeros_(m.bn2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.layers(self.stem(x))).flatten(1)


class MultiBranchResNet(nn.Module):
    """One :class:`ResNetBackbone` per branch, features concatenated (+ scalars) -> MLP -> (mean, log_var).

    ``branches`` maps a branch name to ``(in_channels, size)``; ``n_scalars`` side inputs (e.g. log pixel scale in
    kpc) join the pooled features; ``n_out`` targets. ``forward(inputs, scalars)`` takes a dict name ->
    (B, C, H, W) with every branch present, and ``scalars`` (B, n_scalars) (or None when n_scalars == 0).
    """

    def __init__(self, branches: Mapping[str, tuple[int, int]], n_out: int, *, width: int = 64,
                 blocks: Sequence[int] = (2, 2, 2, 2), n_scalars: int = 0, hidden: int = 128,
                 dropout: float = 0.0, stage1_max: int = 64) -> None:
        super().__init__()
        if not branches:
            raise ValueError("MultiBranchResNet needs at least one branch")
        self.names = tuple(branches)
        self.backbones = nn.ModuleDict({k: ResNetBackbone(c, s, width, blocks, stage1_max) for k, (c, s) in branches.items()})
        feat = sum(b.out_dim for b in self.backbones.values()) + n_scalars
        self.n_scalars = n_scalars
        self.n_out = n_out
        self.head = nn.Sequential(nn.Linear(feat, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
                                  nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, 2 * n_out))

    def features(self, inputs: Mapping[str, torch.Tensor], scalars: torch.Tensor | None = None) -> torch.Tensor:
        """Concatenated pooled features (B, F) of every branch (+ scalars)."""
        parts = [self.backbones[k](inputs[k]) for k in self.names]
        if self.n_scalars:
            parts.append(scalars)
        return torch.cat(parts, dim=1)

    def forward(self, inputs: Mapping[str, torch.Tensor],
                scalars: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.head(self.features(inputs, scalars))
        mean, log_var = out[:, :self.n_out], out[:, self.n_out:]
        return mean, log_var.clamp(LOG_VAR_MIN, LOG_VAR_MAX)
