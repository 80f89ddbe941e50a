"""The seed's two-phase model: an R2U-Net (or Inception) occupancy classifier, then an R2U-Net count regressor.

Phase 1 trains the classifier on log10(rho / rho_bar) with weighted binary cross-entropy (positive weight
``pos_weight``, "auto" = sqrt(n_empty / n_occupied)) so false negatives cost more. Its probability is calibrated
back by the logit shift -ln(pos_weight) (the weighted-CE optimum is the true logit + ln w). The operating
threshold is set on the validation fields for recall ``target_recall`` (the seed's 0.95), held with confidence
``recall_confidence`` (the highest threshold whose Clopper-Pearson lower bound on the validation recall reaches the
target), so the recall on new fields falls short of the target about 10% of the time, not half of it.
Phase 2 trains the regressor with a Poisson likelihood on the voxels the classifier keeps (prob >= threshold);
the expected count is the regressor's rate there and the training mean count of the dropped voxels elsewhere.
Training augments with the symmetries of a periodic box (random rolls, flips, axis swaps).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Literal, Sequence

import numpy as np

from core.config import Config, param
from core.errors import GPSError
from core.models.base import PosteriorModel
from core.tasks.dm_to_galaxies.data import FieldData, FieldPosterior

__all__ = ["TwoPhaseConfig", "TwoPhaseModel", "standardize", "augment", "torch_state", "load_torch_state"]


@dataclass(frozen=True)
class TwoPhaseConfig(Config):
    block: Literal["r2", "inception"] = param("r2", help="Classifier block: R2U-Net or Inception-style")
    base: int = param(8, help="Channels of the first U-Net level", min=2, max=256)
    depth: int = param(2, help="U-Net levels below the top (grid must divide by 2**depth)", min=1, max=5)
    n_rec: int = param(1, help="Recurrent steps per R2 unit", min=0, max=4)
    steps: int = param(600, help="Classifier optimisation steps", min=1, max=1_000_000)
    reg_steps: int = param(300, help="Regressor optimisation steps", min=0, max=1_000_000)
    batch: int = param(8, help="Fields per batch", min=1, max=512)
    lr: float = param(2e-3, help="Adam learning rate", min=1e-6, max=1.0)
    pos_weight: float = param(
        0.0, help="Weight of occupied voxels in the CE loss (0 = auto sqrt(neg/pos))", min=0.0, max=1e6
    )
    target_recall: float = param(0.95, help="Recall of the operating point (set on validation)", min=0.01, max=1.0)
    recall_confidence: float = param(
        0.9,
        help="Confidence that the recall on new fields reaches target_recall (0: recall on validation only)",
        min=0.0,
        max=0.999,
    )
    seed: int = param(0, help="Initialisation and batch seed")


class TwoPhaseModel(PosteriorModel):
    name: ClassVar[str] = "two_phase"
    config_cls: ClassVar[type[Config]] = TwoPhaseConfig

    def __init__(self, *a: Any, **k: Any) -> None:
        super().__init__(*a, **k)
        self.clf = self.reg = None
        self.norm = (0.0, 1.0)
        self.dim = 2
        self.threshold = 0.5
        self.log_w = 0.0
        self.rest_rate = 0.0

    # -- training --------------------------------------------------------------------------------------------
    def fit(
        self,
        train: FieldData,
        val: FieldData | None = None,
        *,
        callbacks: Sequence[Callable] = (),
        stop: threading.Event | None = None,
        device: str | None = None,
    ) -> dict:
        import torch

        from core.device import resolve_device

        if train.galaxies is None:
            raise GPSError("training needs the true galaxy fields", field="galaxies", expected="counts", found="none")
        cfg = self.config
        dev = resolve_device(device)
        torch.manual_seed(cfg.seed)
        rng = np.random.default_rng(cfg.seed)
        self.dim = train.dim
        logd = np.log10(train.dm)
        self.norm = (float(logd.mean()), float(logd.std()))
        x = standardize(train.dm, self.norm)
        occ = (train.galaxies > 0).astype(np.float32)
        frac = float(occ.mean())
        w = cfg.pos_weight or math.sqrt((1 - frac) / max(frac, 1e-6))
        self.log_w = math.log(w)
        self.clf = self._net().to(dev)
        t0 = time.perf_counter()
        hist_c = _train(
            self.clf,
            x,
            occ,
            cfg.steps,
            cfg,
            rng,
            dev,
            stop,
            callbacks,
            "classifier",
            lambda out, y: torch.nn.functional.binary_cross_entropy_with_logits(
                out, y, pos_weight=torch.tensor(w, device=out.device)
            ),
        )
        val = val if val is not None and val.galaxies is not None else train
        from core.tasks.dm_to_galaxies.metrics import threshold_for_recall

        self.threshold = threshold_for_recall(
            self._prob(val.dm, dev), val.galaxies > 0, cfg.target_recall, cfg.recall_confidence
        )
        # phase 2: regressor on kept voxels (Poisson likelihood), mask from the classifier on the training fields
        keep = (self._prob(train.dm, dev) >= self.threshold).astype(np.float32)
        counts = train.galaxies.astype(np.float32)
        self.rest_rate = float((counts * (1 - keep)).sum() / max((1 - keep).sum(), 1.0))
        self.reg = self._net().to(dev)
        y2 = np.stack([counts, keep], 1)
        hist_r = _train(
            self.reg,
            x,
            y2,
            cfg.reg_steps,
            cfg,
            rng,
            dev,
            stop,
            callbacks,
            "regressor",
            lambda out, y: (
                (torch.nn.functional.poisson_nll_loss(out, y[:, :1], log_input=True, reduction="none") * y[:, 1:]).sum()
                / y[:, 1:].sum().clamp(min=1.0)
            ),
        )
        self.history = {
            "classifier_loss": hist_c,
            "regressor_loss": hist_r,
            "threshold": self.threshold,
            "pos_weight": w,
            "train_seconds": time.perf_counter() - t0,
            "device": str(dev),
            "kept_fraction_train": float(keep.mean()),
        }
        return self.history

    # -- inference -------------------------------------------------------------------------------------------
    def posterior(
        self,
        data: FieldData,
        *,
        n_samples: int = 0,
        seed: int = 0,
        device: str | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> FieldPosterior:
        from core.device import resolve_device

        if self.clf is None:
            raise GPSError("the two-phase model is not trained", expected="fit() or a checkpoint")
        if data.dim != self.dim:
            raise GPSError(
                f"the model was trained on {self.dim}-D fields",
                field="dm",
                expected=f"{self.dim}-D",
                found=f"{data.dim}-D",
            )
        dev = resolve_device(device)
        prob = self._prob(data.dm, dev)
        rate = np.exp(_predict(self.reg, standardize(data.dm, self.norm), dev))
        expected = np.where(prob >= self.threshold, rate, self.rest_rate).astype(np.float32)
        samples = None
        if n_samples > 0:
            samples = (
                np.random.default_rng(seed)
                .poisson(expected[:, None], size=(len(expected), n_samples) + expected.shape[1:])
                .astype(np.int32)
            )
        return FieldPosterior(prob, expected, samples, self.threshold, self.name)

    def get_state(self):
        return (
            {
                **{f"clf.{k}": v for k, v in torch_state(self.clf).items()},
                **{f"reg.{k}": v for k, v in torch_state(self.reg).items()},
            },
            {
                "norm": list(self.norm),
                "dim": self.dim,
                "threshold": self.threshold,
                "log_w": self.log_w,
                "rest_rate": self.rest_rate,
            },
        )

    def set_state(self, tensors, extra):
        self.norm, self.dim = tuple(extra["norm"]), int(extra["dim"])
        self.threshold, self.log_w, self.rest_rate = extra["threshold"], extra["log_w"], extra["rest_rate"]
        self.clf, self.reg = self._net(), self._net()
        load_torch_state(self.clf, {k[4:]: v for k, v in tensors.items() if k.startswith("clf.")})
        load_torch_state(self.reg, {k[4:]: v for k, v in tensors.items() if k.startswith("reg.")})

    def _net(self):
        from core.tasks.dm_to_galaxies.unet import UNet

        c = self.config
        return UNet(dim=self.dim, base=c.base, depth=c.depth, kind=c.block, n_rec=c.n_rec)

    def _prob(self, dm: np.ndarray, dev) -> np.ndarray:
        logit = _predict(self.clf, standardize(dm, self.norm), dev) - self.log_w
        return (1.0 / (1.0 + np.exp(-logit))).astype(np.float32)


# ---------------------------------------------------------------------------------------------------------------
def standardize(dm: np.ndarray, norm: tuple[float, float]) -> np.ndarray:
    """(log10 rho - mean) / std as float32 with a channel axis: (n, 1, *grid)."""
    return ((np.log10(np.asarray(dm, np.float64)) - norm[0]) / norm[1]).astype(np.float32)[:, None]


def augment(arrays: Sequence[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """The same random periodic roll, flips and axis permutation applied to every (B, C, *grid) array."""
    dim = arrays[0].ndim - 2
    axes = tuple(range(2, 2 + dim))
    shift = tuple(int(s) for s in rng.integers(0, arrays[0].shape[2], dim))
    flips = [a for a in axes if rng.random() < 0.5]
    perm = (0, 1) + tuple(2 + p for p in rng.permutation(dim))
    out = []
    for a in arrays:
        a = np.roll(a, shift, axis=axes)
        if flips:
            a = np.flip(a, axis=flips)
        out.append(np.ascontiguousarray(a.transpose(perm)))
    return out


def _train(net, x, y, steps, cfg, rng, dev, stop, callbacks, label, loss_fn) -> list[float]:
    import torch

    from core.tasks.dm_to_galaxies.unet import one_cycle

    y = y if y.ndim == x.ndim else y[:, None]
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    sched = one_cycle(opt, cfg.lr, steps)
    hist, run = [], []
    net.train()
    for step in range(steps):
        if stop is not None and stop.is_set():
            break
        idx = rng.choice(len(x), size=min(cfg.batch, len(x)), replace=False)
        xb, yb = augment([x[idx], y[idx]], rng)
        out = net(torch.from_numpy(xb).to(dev))
        loss = loss_fn(out, torch.from_numpy(yb).to(dev))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        run.append(loss.item())
        if (step + 1) % 50 == 0 or step == steps - 1:
            hist.append(float(np.mean(run)))
            run = []
            for cb in callbacks:
                cb({"phase": label, "step": step + 1, "steps": steps, "loss": hist[-1]})
    net.eval()
    return hist


def _predict(net, x: np.ndarray, dev, batch: int = 16) -> np.ndarray:
    import torch

    out = []
    with torch.inference_mode():
        for i in range(0, len(x), batch):
            out.append(net(torch.from_numpy(x[i : i + batch]).to(dev))[:, 0].float().cpu().numpy())
    return np.concatenate(out).astype(np.float64)


def torch_state(net) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy() for k, v in net.state_dict().items()}


def load_torch_state(net, tensors: dict[str, np.ndarray]) -> None:
    import torch

    net.load_state_dict({k: torch.from_numpy(np.asarray(v).copy()) for k, v in tensors.items()})
