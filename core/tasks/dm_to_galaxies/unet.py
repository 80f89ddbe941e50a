"""R2U-Net (Alom et al. 2018) for 2-D maps and 3-D grids, with an Inception-style block option.

Convolutions pad circularly (the simulated boxes are periodic). A recurrent residual block (RRCNN) maps the input
to ``ch`` channels with a 1x1 conv, applies ``n_rec`` recurrent conv units twice (x1 = f(x); x1 = f(x + x1) ...)
and adds the residual. The "inception" block instead concatenates 1, 3 and 5 (dilated 3) kernels. An optional
embedding vector (time for diffusion, or cosmology/HOD parameters) is added per channel in every block (FiLM bias).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

__all__ = ["UNet", "count_parameters", "one_cycle"]


def one_cycle(opt: torch.optim.Optimizer, lr: float, steps: int) -> torch.optim.lr_scheduler.OneCycleLR:
    """One-cycle LR schedule over ``steps``; warm-up >= 2 steps (torch divides by zero when it is exactly 1)."""
    steps = max(int(steps), 1)
    pct = min(max(0.1, 2.0 / steps), 0.9)
    return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=pct)


def _conv(dim: int, cin: int, cout: int, k: int = 3, dilation: int = 1) -> nn.Module:
    cls = nn.Conv2d if dim == 2 else nn.Conv3d
    return cls(cin, cout, k, padding=dilation * (k // 2), dilation=dilation, padding_mode="circular")


def _norm(ch: int) -> nn.Module:
    """GroupNorm with up to 8 groups; the group count must divide the channels (base 12 -> 4 groups)."""
    return nn.GroupNorm(math.gcd(8, ch), ch)


class _Recurrent(nn.Module):
    def __init__(self, dim: int, ch: int, n_rec: int) -> None:
        super().__init__()
        self.n_rec = n_rec
        self.f = nn.Sequential(_conv(dim, ch, ch), _norm(ch), nn.SiLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.f(x)
        for _ in range(self.n_rec):
            x1 = self.f(x + x1)
        return x1


class _Block(nn.Module):
    """RRCNN block (or Inception block) with an optional per-channel embedding bias."""

    def __init__(self, dim: int, cin: int, cout: int, kind: str, n_rec: int, emb: int) -> None:
        super().__init__()
        self.dim = dim
        self.inp = _conv(dim, cin, cout, k=1)
        if kind == "r2":
            self.body = nn.Sequential(_Recurrent(dim, cout, n_rec), _Recurrent(dim, cout, n_rec))
        else:
            b = max(cout // 4, 1)
            self.branches = nn.ModuleList(
                [
                    _conv(dim, cout, b, k=1),
                    _conv(dim, cout, b, k=3),
                    _conv(dim, cout, b, k=3, dilation=2),
                    _conv(dim, cout, cout - 3 * b, k=5),
                ]
            )
            self.body = nn.Sequential(_norm(cout), nn.SiLU())
        self.kind = kind
        self.emb = nn.Linear(emb, cout) if emb else None

    def forward(self, x: torch.Tensor, e: torch.Tensor | None) -> torch.Tensor:
        x = self.inp(x)
        if self.emb is not None and e is not None:
            x = x + self.emb(e).view(x.shape[0], -1, *([1] * self.dim))
        if self.kind == "r2":
            return x + self.body(x)
        return x + self.body(torch.cat([b(x) for b in self.branches], 1))


class UNet(nn.Module):
    """U-Net over (B, c_in, *grid) -> (B, c_out, *grid); grid sides must be divisible by 2**depth."""

    def __init__(
        self,
        dim: int = 2,
        c_in: int = 1,
        c_out: int = 1,
        base: int = 16,
        depth: int = 2,
        kind: Literal["r2", "inception"] = "r2",
        n_rec: int = 2,
        emb: int = 0,
    ) -> None:
        super().__init__()
        self.dim, self.depth = dim, depth
        chs = [base * 2**i for i in range(depth + 1)]
        self.down = nn.ModuleList()
        cin = c_in
        for c in chs:
            self.down.append(_Block(dim, cin, c, kind, n_rec, emb))
            cin = c
        self.pool = nn.MaxPool2d(2) if dim == 2 else nn.MaxPool3d(2)
        self.up = nn.ModuleList()
        self.upconv = nn.ModuleList()
        for c_hi, c_lo in zip(chs[::-1][:-1], chs[::-1][1:]):
            tcls = nn.ConvTranspose2d if dim == 2 else nn.ConvTranspose3d
            self.upconv.append(tcls(c_hi, c_lo, 2, stride=2))
            self.up.append(_Block(dim, 2 * c_lo, c_lo, kind, n_rec, emb))
        self.out = _conv(dim, chs[0], c_out, k=1)

    def forward(self, x: torch.Tensor, e: torch.Tensor | None = None) -> torch.Tensor:
        skips = []
        for i, blk in enumerate(self.down):
            x = blk(x, e)
            if i < self.depth:
                skips.append(x)
                x = self.pool(x)
        for upc, blk, s in zip(self.upconv, self.up, skips[::-1]):
            x = blk(torch.cat([upc(x), s], 1), e)
        return self.out(x)


def count_parameters(model: nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))
