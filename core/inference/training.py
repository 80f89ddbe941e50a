"""The one training loop: mini-batches, Adam, LR schedule, early stopping, best weights, callbacks, stop.

Every torch model (VAE, flow, cVAE, ResNet, ...) trains through :func:`fit_module`. It keeps the weights of the
best validation epoch and restores them at the end, whatever ended training (patience, epoch limit, time limit or
a user's stop request through ``stop``, a ``threading.Event``). Callbacks receive an :class:`EpochReport` after
every epoch (the app draws live loss curves from them; the CLI prints a progress bar).
"""

from __future__ import annotations

import copy
import math
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Literal, Sequence

import numpy as np

from core.config import Config, param

__all__ = ["TrainConfig", "EpochReport", "History", "fit_module", "StopRequested"]


@dataclass(frozen=True)
class TrainConfig(Config):
    """Optimisation settings shared by all torch models."""

    epochs: int = param(200, help="Maximum number of passes over the training set", min=1, max=100000)
    batch_size: int = param(512, help="Mini-batch size", min=1, max=1 << 20)
    lr: float = param(2e-3, help="Adam learning rate", min=1e-6, max=1.0)
    weight_decay: float = param(0.0, help="AdamW weight decay", min=0.0, max=1.0, advanced=True)
    schedule: Literal["cosine", "plateau", "constant"] = param(
        "plateau", help="Learning-rate schedule: cosine decay, halve on plateau, or constant")
    patience: int = param(15, help="Early stopping: epochs without validation improvement", min=1, max=10000)
    max_minutes: float = param(0.0, help="Wall-clock limit in minutes (0 = none)", min=0.0, max=10000.0)
    grad_clip: float = param(5.0, help="Gradient-norm clip (0 = off)", min=0.0, max=1e6, advanced=True)
    val_fraction: float = param(0.1, help="Validation fraction when no validation set is given",
                                min=0.01, max=0.5)
    seed: int = param(0, help="Random seed (weights init, batching)", min=0)
    device: str = param("auto", help="auto | cpu | cuda | cuda:N | mps")


@dataclass
class EpochReport:
    epoch: int
    epochs: int
    train_loss: float
    val_loss: float
    best_val_loss: float
    best_epoch: int
    lr: float
    elapsed: float
    extra: dict = field(default_factory=dict)


@dataclass
class History:
    epochs: list[dict] = field(default_factory=list)
    best_epoch: int = -1
    best_val_loss: float = math.inf
    stopped_reason: str = ""
    seconds: float = 0.0
    device: str = "cpu"

    def to_dict(self) -> dict:
        return asdict(self)


class StopRequested(Exception):
    """Raised inside callbacks to end training early (best weights are still restored)."""


Callback = Callable[[EpochReport], None]


def fit_module(module, loss_fn: Callable, train: Sequence, val: Sequence | None, cfg: TrainConfig, *,
               callbacks: Sequence[Callback] = (), stop: threading.Event | None = None,
               device=None, params=None) -> History:
    """Train ``module`` to minimise ``loss_fn(module, *batch) -> scalar tensor`` (mean over the batch).

    ``train``/``val`` are sequences of equal-length tensors or arrays (they are moved to ``device``); when ``val``
    is None, ``cfg.val_fraction`` of ``train`` is held out. Returns the :class:`History`; ``module`` holds the best
    validation weights on return.
    """
    import torch

    from core.device import resolve_device

    device = torch.device(device) if device is not None else resolve_device(cfg.device)
    gen = torch.Generator().manual_seed(cfg.seed)
    train = [torch.as_tensor(np.asarray(t) if not torch.is_tensor(t) else t) for t in train]
    n = len(train[0])
    if val is None:
        perm = torch.randperm(n, generator=gen)
        n_val = max(1, int(round(cfg.val_fraction * n)))
        vi, ti = perm[:n_val], perm[n_val:]
        val = [t[vi] for t in train]
        train = [t[ti] for t in train]
    else:
        val = [torch.as_tensor(np.asarray(t) if not torch.is_tensor(t) else t) for t in val]
    train = [_to(t, device) for t in train]
    val = [_to(t, device) for t in val]
    n = len(train[0])

    module.to(device)
    params = list(params) if params is not None else [p for p in module.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
    elif cfg.schedule == "plateau":
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=max(1, cfg.patience // 3))
    else:
        sched = None

    hist = History(device=str(device))
    best_state = copy.deepcopy(module.state_dict())
    t0 = time.perf_counter()
    bad = 0
    bs = min(cfg.batch_size, n)
    for epoch in range(cfg.epochs):
        module.train()
        perm = torch.randperm(n, generator=gen).to(device)
        tot, cnt = 0.0, 0
        for start in range(0, n - bs + 1 if n >= bs else 1, bs):
            idx = perm[start:start + bs]
            loss = loss_fn(module, *[t[idx] for t in train])
            if not torch.isfinite(loss):
                hist.stopped_reason = f"non-finite training loss at epoch {epoch}"
                break
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            opt.step()
            tot += float(loss.detach()) * len(idx)
            cnt += len(idx)
        if hist.stopped_reason:
            break
        val_loss = evaluate_loss(module, loss_fn, val, bs)
        train_loss = tot / max(cnt, 1)
        if sched is not None:
            sched.step(val_loss) if cfg.schedule == "plateau" else sched.step()
        # (inf - 1e-6*inf is NaN: the first finite validation loss must always count as an improvement)
        improved = math.isfinite(val_loss) and (not math.isfinite(hist.best_val_loss) or
                                                val_loss < hist.best_val_loss - 1e-6 * abs(hist.best_val_loss))
        if improved:
            hist.best_val_loss, hist.best_epoch, bad = val_loss, epoch, 0
            best_state = copy.deepcopy(module.state_dict())
        else:
            bad += 1
        elapsed = time.perf_counter() - t0
        lr = opt.param_groups[0]["lr"]
        hist.epochs.append({"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss, "lr": lr,
                            "seconds": elapsed})
        report = EpochReport(epoch, cfg.epochs, train_loss, val_loss, hist.best_val_loss, hist.best_epoch, lr,
                             elapsed)
        try:
            for cb in callbacks:
                cb(report)
        except StopRequested:
            hist.stopped_reason = "stopped by callback"
            break
        if stop is not None and stop.is_set():
            hist.stopped_reason = "stopped by user"
            break
        if bad >= cfg.patience:
            hist.stopped_reason = f"early stopping (no improvement for {cfg.patience} epochs)"
            break
        if cfg.max_minutes > 0 and elapsed > 60 * cfg.max_minutes:
            hist.stopped_reason = f"time limit ({cfg.max_minutes:g} min)"
            break
    else:
        hist.stopped_reason = "epoch limit"
    module.load_state_dict(best_state)
    module.eval()
    hist.seconds = time.perf_counter() - t0
    return hist


def evaluate_loss(module, loss_fn: Callable, data: Sequence, batch_size: int) -> float:
    """Mean loss over ``data`` in eval mode without gradients."""
    import torch

    module.eval()
    n = len(data[0])
    tot = 0.0
    with torch.no_grad():
        for start in range(0, n, batch_size):
            sl = slice(start, start + batch_size)
            batch = [t[sl] for t in data]
            tot += float(loss_fn(module, *batch)) * len(batch[0])
    return tot / max(n, 1)


def _to(t, device):
    import torch

    if t.dtype == torch.float64:
        t = t.float()
    return t.to(device)
