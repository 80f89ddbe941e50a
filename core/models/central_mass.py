"""``central_mass`` model: multi-branch ResNet with a Gaussian (mean, variance) head per target, trained by NLL.

Inputs are any subset of the task inputs (``image`` r-band SB [mag/arcsec2], ``g_r`` [mag], ``vel``/``sigma``
[km/s]), each at its own size. Every input is normalized with training statistics (valid pixels only), masked
pixels are set to 0 and a validity channel is appended; with ``grouping="per_input"`` (the seed) every input has
its own backbone, with ``"per_size"`` (CPU default) inputs of the same size share one multi-channel backbone (half
the CPU cost).
With ``use_scale`` the log10 pixel size in kpc of every branch joins the pooled features (surface brightness and
velocities only give a luminosity and a mass once the physical scale is known).

Training: Adam(W) + cosine schedule through :func:`core.inference.training.fit_module` (best validation weights
kept), loss = Gaussian negative log-likelihood per target in standardized target units. Augmentation (training
batches only, seeded generator): random rot90/flips applied identically to every branch and v -> -v.

Calibration: after training, one variance temperature per target multiplies the predicted variances, fitted on
the validation set: ``calibrate="coverage"`` (default) sets T_j to the 68.27th percentile of |y - mu|/sigma, so
the central 68% intervals cover 68% of the validation objects (robust to a few outliers, which otherwise inflate
every interval); ``"nll"`` uses T_j^2 = mean z^2 (the NLL-optimal global rescaling). Stored with the model. The posterior is the diagonal Gaussian N(mu, T^2 sigma^2) per object.

Domain check: per-object medians of every input, the pixel scales and the redshift dimming are compared with the
training range (0.5-99.5 percentiles widened by 10% of their span); ``Posterior.info["outside_domain"]`` flags objects outside it (with reasons).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Sequence

import numpy as np

from core.config import Config, param
from core.data.central_data import CentralMassData
from core.errors import GPSError
from core.inference.posterior import Posterior
from core.inference.training import TrainConfig
from core.models.base import set_torch_state, PosteriorModel

__all__ = ["ResNetConfig", "CentralResNetModel"]


@dataclass(frozen=True)
class ResNetConfig(Config):
    """Settings of the multi-branch ResNet (CPU default: narrow; ``gpu_default()`` is the seed's ResNet-18)."""

    width: int = param(16, help="Channels of the first residual stage (ResNet-18: 64)", min=2, max=256)
    blocks: tuple[int, ...] = param((1, 1, 1, 1), help="Basic blocks per stage (ResNet-18: 2, 2, 2, 2)")
    stage1_max: int = param(16, help="Largest first-stage map side; sets the stem stride per input (GPU: 64)",
                            min=8, max=512)
    grouping: Literal["per_input", "per_size"] = param(
        "per_size", help="One backbone per input (seed; GPU default) or one per input size, inputs of that size "
                         "stacked as channels (image + g-r, v + sigma: half the cost; CPU default)")
    hidden: int = param(128, help="Width of the fusion MLP head", min=8, max=4096)
    dropout: float = param(0.1, help="Dropout in the head", min=0.0, max=0.9)
    use_scale: bool = param(True, help="Feed log10 pixel size [kpc] of each branch to the head")
    use_redshift: bool = param(True, help="Feed the (1+z)^4 surface-brightness dimming [mag] (extra['redshift'])")
    flux_sum: bool = param(True, help="Feed log10 of the summed linear r-band luminosity of the unmasked image "
                                      "pixels to the head (convolutions of log surface brightness cannot add light)")
    augment: bool = param(True, help="Random rot90/flip (all branches alike) and v -> -v during training")
    calibrate: Literal["coverage", "nll", "off"] = param(
        "coverage", help="Per-target variance temperature fitted on the validation set: match the 68% coverage "
                         "(robust to outliers), the NLL-optimal mean z^2, or none")
    batch_eval: int = param(256, help="Objects per inference batch", min=1, max=65536, advanced=True)
    train: TrainConfig = field(default=TrainConfig(epochs=30, batch_size=32, lr=1e-3, weight_decay=1e-4,
                                                   schedule="cosine", patience=1000),
                               metadata={"help": "Optimisation settings (seed: Adam, cosine, best val epoch)"})

    def validate(self) -> None:
        if not self.blocks or any(b < 1 for b in self.blocks) or len(self.blocks) > 6:
            raise GPSError("blocks must list 1-6 stages with at least one block each", source="ResNetConfig",
                           field="blocks", expected="e.g. [2, 2, 2, 2]", found=repr(self.blocks))

    @classmethod
    def gpu_default(cls) -> "ResNetConfig":
        """The seed's ResNet-18 branches (width 64, 2-2-2-2 blocks), batch 40, lr 1e-4, 200 epochs."""
        return cls(width=64, blocks=(2, 2, 2, 2), stage1_max=64, hidden=256, grouping="per_input",
                   train=TrainConfig(epochs=200, batch_size=40, lr=1e-4, schedule="cosine", patience=1000))


class CentralResNetModel(PosteriorModel):
    """Multi-branch ResNet posterior N(mu, sigma^2) per target from images and kinematic maps."""

    name = "resnet"
    config_cls = ResNetConfig
    missing_policy = "refuse"

    def __init__(self, config: ResNetConfig, features: Sequence[str], targets: Sequence[str],
                 units: dict[str, str] | None = None) -> None:
        super().__init__(config, features, targets, units)
        self.net = None
        self.norm: dict[str, Any] = {}

    # -- training ----------------------------------------------------------------------------------
    def fit(self, train: CentralMassData, val: CentralMassData | None = None, *, callbacks: Sequence[Callable] = (),
            stop: threading.Event | None = None, device: str | None = None) -> dict:
        """Train on ``train`` (validation: ``val`` or a seeded grouped hold-out). Returns the history dict."""
        import torch

        from core.data.central_data import grouped_indices
        from core.inference.training import fit_module

        c = self.config
        train.require(self.features, self.name)
        if val is None:
            tr_idx, va_idx = grouped_indices(train.galaxy_id, (1 - c.train.val_fraction, c.train.val_fraction),
                                             seed=c.train.seed)
            train, val = train.subset(tr_idx), train.subset(va_idx)
        val.require(self.features, self.name)
        y, yv = train.target_array(self.targets), val.target_array(self.targets)
        self.norm = _fit_norm(train, self.features, y)
        self.net = self._build(train.sizes())
        self.norm["scale"] = {g: self.norm["scale_by_input"][ks[0]] for g, ks in self.norm["groups"].items()}
        gen = torch.Generator().manual_seed(c.train.seed + 1)
        loss = _make_loss(self, gen)
        hist = fit_module(self.net, loss, self._tensors(train, y), self._tensors(val, yv), c.train,
                          callbacks=callbacks, stop=stop, device=device)
        self.net.to("cpu").eval()
        self.norm["var_scale"] = [1.0] * len(self.targets)
        if c.calibrate != "off":
            mu, sd = self._predict_std(val)
            z = np.abs(yv - mu) / sd
            t2 = np.mean(z ** 2, axis=0) if c.calibrate == "nll" else np.quantile(z, 0.6827, axis=0) ** 2
            self.norm["var_scale"] = [float(v) for v in t2]
        self.history = hist.to_dict()
        self.history["var_scale"] = list(self.norm["var_scale"])
        return self.history

    # -- inference ---------------------------------------------------------------------------------
    def posterior(self, data: CentralMassData, *, n_samples: int = 1000, seed: int = 0, device: str | None = None,
                  progress: Callable[[int, int], None] | None = None) -> Posterior:
        """Gaussian draws (n, n_samples, p); ``info`` has ``mean``/``std`` (n, p), ``outside_domain`` (n,) bool and
        ``domain_notes`` (one string per object, "" when inside the training domain)."""
        mu, sd = self.predict(data, progress=progress)
        rng = np.random.default_rng(seed)
        samples = mu[:, None, :] + sd[:, None, :] * rng.standard_normal((len(mu), n_samples, mu.shape[1]))
        notes = _domain_notes(self.norm, data, self.features)
        return Posterior(params=self.targets, units=self.param_units(), samples=samples, method=self.name,
                         info={"mean": mu, "std": sd, "n_samples": n_samples, "seed": seed,
                               "outside_domain": np.array([bool(s) for s in notes]), "domain_notes": notes})

    def predict(self, data: CentralMassData, progress: Callable[[int, int], None] | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
        """Calibrated posterior mean and standard deviation (n, p) in target units (dex)."""
        mu, sd = self._predict_std(data, progress)
        return mu, sd * np.sqrt(np.asarray(self.norm.get("var_scale", 1.0)))

    # -- state -------------------------------------------------------------------------------------
    def get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        self._require_trained()
        tensors = {f"net.{k}": v.detach().cpu().numpy() for k, v in self.net.state_dict().items()}
        return tensors, {"norm": self.norm, "features": list(self.features), "history": self.history}

    def set_state(self, tensors: dict[str, np.ndarray], extra: dict[str, Any]) -> None:

        self.norm = dict(extra["norm"])
        self.net = self._build({k: tuple(v) for k, v in self.norm["sizes"].items()})
        set_torch_state(self.net, tensors, "net.", "ResNet", self.config)
        self.history = dict(extra.get("history", {}))

    # -- private -----------------------------------------------------------------------------------
    def _groups(self, sizes: dict[str, tuple[int, int]]) -> dict[str, list[str]]:
        if self.config.grouping == "per_input":
            return {k: [k] for k in self.features}
        out: dict[str, list[str]] = {}
        for k in self.features:
            out.setdefault("x".join(map(str, sizes[k])), []).append(k)
        return out

    def _build(self, sizes: dict[str, tuple[int, int]]):
        import torch

        from core.models.resnet_branches import MultiBranchResNet

        c = self.config
        torch.manual_seed(c.train.seed)
        groups = self._groups(sizes)
        self.norm["sizes"] = {k: list(sizes[k]) for k in self.features}
        self.norm["groups"] = groups
        branches = {g: (2 * len(ks), max(sizes[ks[0]])) for g, ks in groups.items()}
        return MultiBranchResNet(branches, len(self.targets), width=c.width, blocks=c.blocks,
                                 n_scalars=(len(groups) if c.use_scale else 0) + int(c.use_redshift)
                                 + int(self._use_flux_sum()),
                                 hidden=c.hidden, dropout=c.dropout,
                                 stage1_max=c.stage1_max)

    def _arrays(self, data: CentralMassData) -> tuple[list[np.ndarray], np.ndarray]:
        """Branch arrays (n, 2*k, H, W) float32 in group order and scalars (n, n_groups) float32."""
        data.require(self.features, self.name)
        sizes = self.norm["sizes"]
        branch, scal = [], []
        for g, ks in self.norm["groups"].items():
            planes = []
            for k in ks:
                if list(data.maps[k].shape[1:]) != list(sizes[k]):
                    raise GPSError("input map size differs from training (regrid it first)", source=data.source,
                                   field=k, expected="x".join(map(str, sizes[k])),
                                   found="x".join(map(str, data.maps[k].shape[1:])))
                m, s = self.norm["pix"][k]
                valid = ~data.masks[k]
                planes += [np.where(valid, (data.maps[k] - m) / s, 0.0).astype(np.float32), valid.astype(np.float32)]
            branch.append(np.stack(planes, axis=1))
            px = data.pixel_kpc[ks[0]]
            if self.config.use_scale and not np.all(np.isfinite(px) & (px > 0)):
                raise GPSError("pixel size in kpc unknown (needs the redshift and the angular pixel size)",
                               source=data.source, field=f"pixel_kpc[{ks[0]}]", expected="positive numbers",
                               found=str(px[~(np.isfinite(px) & (px > 0))][:3]))
            m, s = self.norm["scale"][g]
            if self.config.use_scale:
                scal.append((np.log10(np.where(px > 0, px, 1.0)) - m) / s)
        if self.config.use_redshift:
            scal.append((_dimming(data) - self.norm["dimming"][0]) / self.norm["dimming"][1])
        if self._use_flux_sum():
            scal.append((_log_flux_sum(data) - self.norm["flux_sum"][0]) / self.norm["flux_sum"][1])
        if not scal:
            return branch, np.zeros((len(data), 0), np.float32)
        return branch, np.stack(scal, axis=1).astype(np.float32)

    def _tensors(self, data: CentralMassData, y: np.ndarray) -> list[np.ndarray]:
        branch, scal = self._arrays(data)
        ys = ((y - np.asarray(self.norm["y_mean"])) / np.asarray(self.norm["y_std"])).astype(np.float32)
        return branch + [scal, ys]

    def _predict_std(self, data: CentralMassData, progress: Callable[[int, int], None] | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
        import torch

        self._require_trained()
        branch, scal = self._arrays(data)
        names = list(self.norm["groups"])
        n, bs = len(data), self.config.batch_eval
        mu, lv = np.empty((n, len(self.targets))), np.empty((n, len(self.targets)))
        self.net.eval()
        with torch.no_grad():
            for a in range(0, n, bs):
                x = {g: torch.from_numpy(b[a:a + bs]) for g, b in zip(names, branch)}
                m, v = self.net(x, torch.from_numpy(scal[a:a + bs]))
                mu[a:a + bs], lv[a:a + bs] = m.numpy(), v.numpy()
                if progress is not None:
                    progress(min(a + bs, n), n)
        ym, ys = np.asarray(self.norm["y_mean"]), np.asarray(self.norm["y_std"])
        return mu * ys + ym, np.exp(0.5 * lv) * ys

    def _use_flux_sum(self) -> bool:
        return self.config.flux_sum and "image" in self.features

    def _require_trained(self) -> None:
        if self.net is None:
            raise GPSError("the ResNet model has not been trained or loaded", source="CentralResNetModel",
                           expected="fit() or a checkpoint", found="untrained model")


# -------------------------------------------------------------------------------------------------
def _fit_norm(data: CentralMassData, features: Sequence[str], y: np.ndarray) -> dict[str, Any]:
    """Training statistics: per-input pixel mean/std (valid pixels; vel centred on 0), log pixel-scale mean/std,
    target mean/std and the per-object domain ranges."""
    pix, dom = {}, {}
    for k in features:
        vals = data.maps[k][~data.masks[k]]
        if vals.size == 0:
            raise GPSError("every training pixel is masked", source=data.source, field=k)
        m = 0.0 if k == "vel" else float(np.mean(vals))
        s = float(np.sqrt(np.mean((vals - m) ** 2))) or 1.0
        pix[k] = [m, s]
        med = _object_medians(data, k)
        lpx = np.log10(data.pixel_kpc[k])
        dom[k] = _range(med)
        dom[f"log_pixel_kpc:{k}"] = _range(lpx)
    scale = {}
    for k in features:   # per input; _build maps them to branches (first input of each group)
        lp = np.log10(np.where(data.pixel_kpc[k] > 0, data.pixel_kpc[k], 1.0))
        st = float(np.std(lp)) if np.all(np.isfinite(lp)) else 1.0
        scale[k] = [float(np.nanmean(lp)) if np.any(np.isfinite(lp)) else 0.0, st if st > 0 else 1.0]
    ys = y.std(axis=0)
    if "image" in features:
        fs = _log_flux_sum(data)
        norm_fs = [float(np.mean(fs)), float(np.std(fs)) or 1.0]
    else:
        norm_fs = [0.0, 1.0]
    dim = _dimming(data)
    dom["dimming_mag"] = _range(dim)
    return {"dimming": [float(dim.mean()), float(dim.std()) or 1.0], "flux_sum": norm_fs,
            "pix": pix, "scale_by_input": scale, "y_mean": [float(v) for v in y.mean(axis=0)],
            "y_std": [float(v) if v > 0 else 1.0 for v in ys], "domain": dom}


def _range(v: np.ndarray) -> list[float]:
    """Training range of a per-object quantity: 0.5-99.5 percentiles widened by 10% of their span each side."""
    lo, hi = float(np.nanpercentile(v, 0.5)), float(np.nanpercentile(v, 99.5))
    return [lo - 0.1 * (hi - lo), hi + 0.1 * (hi - lo)]


def _dimming(data: CentralMassData) -> np.ndarray:
    """Surface-brightness dimming 10 log10(1 + z) [mag] per object (redshift from ``extra``; GPSError if absent)."""
    z = data.extra.get("redshift")
    if z is None or not np.all(np.isfinite(z)):
        raise GPSError("redshift unknown (needed for the surface-brightness dimming)", source=data.source,
                       field="redshift", expected="finite redshift per object", found="absent or NaN")
    return 10.0 * np.log10(1.0 + np.asarray(z, dtype=float))


def _log_flux_sum(data: CentralMassData) -> np.ndarray:
    """log10 of the summed r-band luminosity [Lsun] of the unmasked image pixels (dimming removed), per object."""
    from core.data.summary_stats import luminosity_map

    dim = _dimming(data) / 10.0
    z = 10.0 ** dim - 1.0
    with np.errstate(over="ignore"):
        lum = luminosity_map(data.maps["image"], data.pixel_kpc["image"][:, None, None], z[:, None, None])
    lum = np.where(data.masks["image"] | ~np.isfinite(lum), 0.0, lum)
    return np.log10(np.maximum(lum.reshape(len(data), -1).sum(axis=1), 1e-30))


def _object_medians(data: CentralMassData, k: str) -> np.ndarray:
    v = np.where(data.masks[k], np.nan, data.maps[k]).reshape(len(data), -1)
    if k == "vel":
        v = np.abs(v)
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmedian(v, axis=1)


def _domain_notes(norm: dict, data: CentralMassData, features: Sequence[str]) -> list[str]:
    notes = [[] for _ in range(len(data))]
    for k in features:
        for key, vals in ((k, _object_medians(data, k)), (f"log_pixel_kpc:{k}", np.log10(data.pixel_kpc[k]))):
            lo, hi = norm["domain"][key]
            for i in np.flatnonzero(~((vals >= lo) & (vals <= hi))):
                notes[i].append(f"{key} {vals[i]:.3g} outside training range [{lo:.3g}, {hi:.3g}]")
    if "dimming_mag" in norm["domain"]:
        lo, hi = norm["domain"]["dimming_mag"]
        for i, v in enumerate(_dimming(data)):
            if not lo - 1e-9 <= v <= hi + 1e-9:
                notes[i].append(f"redshift dimming {v:.3g} mag outside training range [{lo:.3g}, {hi:.3g}]")
    return ["; ".join(n) for n in notes]


def _make_loss(model: CentralResNetModel, gen) -> Callable:
    """Gaussian NLL in standardized units; training-mode batches are augmented (seeded ``gen``)."""
    import torch

    names = list(model.norm["groups"])
    vel_planes = {g: [2 * i for i, k in enumerate(ks) if k == "vel"] for g, ks in model.norm["groups"].items()}
    augment = model.config.augment

    def loss(net, *batch):
        *branch, scal, y = batch
        x = dict(zip(names, branch))
        if augment and net.training:
            k = int(torch.randint(0, 4, (1,), generator=gen))
            flip = bool(torch.randint(0, 2, (1,), generator=gen))
            sign = (torch.randint(0, 2, (len(y), 1, 1, 1), generator=gen) * 2 - 1).to(y.device, y.dtype)
            for g in names:
                t = torch.rot90(x[g], k, dims=(2, 3))
                t = torch.flip(t, dims=(3,)) if flip else t
                if vel_planes[g]:
                    t = t.clone()
                    for p in vel_planes[g]:
                        t[:, p:p + 1] = t[:, p:p + 1] * sign
                x[g] = t
        mu, lv = net(x, scal)
        return (0.5 * (lv + (y - mu) ** 2 * torch.exp(-lv))).mean()

    return loss

