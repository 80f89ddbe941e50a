"""The seed's multi-modal VAE for photo-z (Grishin et al. 2025), trained in three separate, resumable stages.

Stages (each its own :func:`core.inference.training.fit_module` run, loss curve in ``history["stages"][name]``;
:meth:`MmvaeModel.fit` skips stages already trained unless ``restart`` names them, so a stopped run resumes):

1. ``spectral`` — a VAE on the galaxies' noiseless spectra (latent 16). The seed is vague about the "spectrum";
   we use the observed-frame spectro-photometry of the simulated galaxy: 32 contiguous top-hat bands 3000-11000 A
   (asinh AB magnitudes, standardized), computed from the same templates as the photometry, so the latent
   carries redshift, population and amplitude. Gaussian decoder with a fixed width ``recon_mag`` (a learned width
   let the VAE explain the spectra with 2 of 16 active dimensions and lose the redshift); beta-ELBO.
2. ``photometry`` — the photometry encoder q(l | x) (x = r, four colours, log10 of the five magnitude errors,
   standardized), a diagonal Gaussian, trained *into that latent* with the spectral networks frozen, by the
   forward KL E_s KL(q_spec(l | s) || q(l | x)) (maximum likelihood of the spectral latents, i.e. NPE on the
   latent; mass-covering, so q(l | x) keeps the latent's posterior spread). The seed is vague here; the
   cross-modal ELBO through the frozen decoder (E_q log p(s | l) - KL(q || prior)) is mode-seeking and makes
   q(l | x) over-confident, so the frozen spectral decoder's reconstruction from q(l | x) is only *reported*
   (``recon_from_photometry`` in the stage history).
3. ``parameters`` — the parameter decoder p(theta | l), theta = (z, log10 age, log M*, [Z/H], A_V), a diagonal
   Gaussian (a conditional density, not a point), trained with the photometry encoder frozen by the likelihood of
   the posterior the model samples: -log (1/K) sum_k p(theta | l_k), l_k ~ q(l | x), K = ``param_draws`` (8).
   One draw per galaxy (K = 1, E_q[-log p(theta | l)]) fits each component to the whole blur of q and made the
   mixture too wide: on the quick benchmark's mocks sigma_NMAD 1.29x the exact posterior's with K = 1, 1.21x
   with K = 8, 1.22x with K = 32 (KL to exact 0.25, 0.22, 0.25).
   (A log-normal in z was tried: it biased the medians by -0.006 in dz/(1+z).) The model's density lives on
   the prior's support, the box the training parameters span (a galaxy far from the training photometry would
   otherwise get draws at any z; on real SDSS photometry some did, mean CRPS 383): z and log M* (continuous
   priors) are drawn from the mixture truncated to it, age, [Z/H] and A_V (template-grid values, atoms at the
   grid's ends) are clipped to it, so mass beyond an end stays on that end (truncating them instead dropped
   the 95% coverage of [Z/H] and A_V from 0.97 / 0.95 to 0.50: half the truths sit on a grid end).
   :meth:`MmvaeModel.pz_grid` renormalizes on its grid.

Posterior: l_s ~ q(l | x) (S draws), theta ~ p(theta | l_s): p(z | x) is the mixture of the S Gaussians (also
given exactly on a grid by :meth:`MmvaeModel.pz_grid`). A calibration temperature T multiplies the latent and the
decoder standard deviations; it is fitted by bisection on validation data so that the 68% central interval of z
covers 68% (as the other models' temperatures). Mock training only (it needs the simulator's spectra).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from core.config import Config, param
from core.data.catalog import CatalogData
from core.errors import GPSError
from core.inference.posterior import Posterior
from core.inference.training import TrainConfig
from core.models.base import PosteriorModel
from core.tasks.photoz.models.common import INPUTS, design

__all__ = ["MmvaeConfig", "MmvaeModel", "STAGES", "spectra_for"]

STAGES = ("spectral", "photometry", "parameters")
PARAMS = ("z", "age", "log_mstar", "met", "av")
CONTINUOUS = ("z", "log_mstar")  # continuous prior; age, [Z/H] and A_V live on the template grid


@dataclass(frozen=True)
class MmvaeConfig(Config):
    """Settings of the staged multi-modal VAE."""

    latent: int = param(16, help="Latent dimension (the seed's 16)", min=2, max=128)
    hidden: int = param(128, help="Hidden width of every MLP", min=8, max=2048)
    beta: float = param(1.0, help="KL weight of the spectral VAE", min=0.0, max=10.0)
    recon_mag: float = param(0.02, help="Width of the spectral decoder's Gaussian [mag]", min=1e-4, max=1.0)
    n_spec_bands: int = param(32, help="Top-hat bands of the noiseless spectrum", min=8, max=256)
    spectral: TrainConfig = field(
        default=TrainConfig(epochs=40, batch_size=256, lr=2e-3, patience=6), metadata={"help": "Stage 1 optimisation"}
    )
    photometry: TrainConfig = field(
        default=TrainConfig(epochs=40, batch_size=256, lr=2e-3, patience=6), metadata={"help": "Stage 2 optimisation"}
    )
    parameters: TrainConfig = field(
        default=TrainConfig(epochs=40, batch_size=256, lr=2e-3, patience=6), metadata={"help": "Stage 3 optimisation"}
    )
    latent_draws: int = param(32, help="Latent draws per galaxy for p(z)", min=1, max=4096)
    param_draws: int = param(
        8,
        help="Latent draws per galaxy in the parameter stage's loss: -log mean_k p(theta | l_k), l_k ~ q(l | x) "
        "(the likelihood of the posterior the model samples; 1 = one draw, E_q[-log p(theta | l)])",
        min=1,
        max=256,
    )
    calibrate: bool = param(True, help="Fit the temperature on validation data")


def spectra_for(data: CatalogData, n_bands: int = 32) -> np.ndarray:
    """Noiseless top-hat spectro-photometry (n, n_bands) [asinh AB mag] of simulated galaxies."""
    from core.tasks.photoz.simulator import PhotozSimConfig, asinh_mag
    from core.tasks.photoz.templates import template_grid, tophat_bands

    if not {"tmpl", "logm_formed"} <= set(data.extra) or data.y is None:
        raise GPSError(
            "the mmvae trains on simulated galaxies (it needs their noiseless spectra)",
            source=str(data.meta.get("file", "data")),
            field="tmpl",
            expected="data from core.tasks.photoz.simulator.simulate",
            found="a catalogue without them",
        )
    cfg = PhotozSimConfig.from_dict(data.meta.get("config") or {})
    grid = template_grid(tophat_bands(n_bands), cfg.z_grid, sfh=cfg.sfh, av_grid=cfg.av_grid, age_fracs=cfg.age_fracs)
    f = grid.interp(data.extra["tmpl"].astype(int), data.y[:, 0]) * 10 ** (data.extra["logm_formed"] - 10)[:, None]
    return asinh_mag(f, 1e-3)


class MmvaeModel(PosteriorModel):
    name = "mmvae"
    config_cls = MmvaeConfig
    missing_policy = "refuse"
    floor_file_errors = True  # real files: errors + the calibration floor (core.tasks.photoz.spec prepare)

    def __init__(
        self,
        config: MmvaeConfig,
        features: Sequence[str] = INPUTS,
        targets: Sequence[str] = PARAMS,
        units: dict[str, str] | None = None,
    ) -> None:
        super().__init__(
            config,
            features,
            PARAMS,
            units or {"z": "", "age": "Gyr", "log_mstar": "dex(solMass)", "met": "dex", "av": "mag"},
        )
        self.nets = None
        self.norm: dict[str, np.ndarray] = {}
        self.done: list[str] = []
        self.temperature = 1.0
        self.history = {"stages": {}}

    # -- training ----------------------------------------------------------------------------------
    def fit(
        self,
        train: CatalogData,
        val: CatalogData | None = None,
        *,
        callbacks: Sequence[Callable] = (),
        stop: threading.Event | None = None,
        device: str | None = None,
        stages: Sequence[str] = STAGES,
        restart: Sequence[str] = (),
    ) -> dict:
        """Run the requested stages in order, skipping those already trained (unless in ``restart``)."""
        from core.inference.training import fit_module

        tr = self._arrays(train, fit_norm=self.nets is None)
        va = self._arrays(val) if val is not None else None
        if self.nets is None:
            self.nets = _build(self.config, tr["x"].shape[1], tr["s"].shape[1])
            self._set_recon_width()
        for stage in STAGES:
            if stage not in stages or (stage in self.done and stage not in restart):
                continue
            module, loss, keys, trainable = _stage(self.nets, stage, self.config)
            tcfg = getattr(self.config, stage)
            ids = {id(p) for p in trainable}
            for p in self.nets.parameters():
                p.requires_grad_(id(p) in ids)
            h = fit_module(
                module,
                loss,
                [tr[k] for k in keys],
                None if va is None else [va[k] for k in keys],
                tcfg,
                callbacks=callbacks,
                stop=stop,
                device=device,
                params=trainable,
            )
            self.nets.to("cpu").eval()
            for p in self.nets.parameters():
                p.requires_grad_(True)
            self.history["stages"][stage] = h.to_dict()
            if stage == "photometry":
                self.history["stages"][stage]["recon_from_photometry"] = self._recon_photometry(va or tr)
            self.done = [s for s in STAGES if s in self.done or s == stage]
            if h.stopped_reason in ("stopped by user", "stopped by callback"):
                break
        if "parameters" in self.done and self.config.calibrate and va is not None:
            self.temperature = self._fit_temperature(val)
        self.history["temperature"] = self.temperature
        return self.history

    def _set_recon_width(self) -> None:
        import torch

        with torch.no_grad():
            self.nets.spec_logsd.copy_(torch.as_tensor(np.log(self.config.recon_mag / self.norm["s_std"])))

    def _recon_photometry(self, arr: dict[str, np.ndarray]) -> float:
        """Mean |spectrum - spectral decoder(mean of q(l | x))| [mag] on ``arr`` (a diagnostic of stage 2)."""
        import torch

        with torch.no_grad():
            m = self.nets.phot(torch.as_tensor(arr["x"][:4096])).chunk(2, dim=-1)[0]
            d = (self.nets.spec_dec(m).numpy() - arr["s"][:4096]) * self.norm["s_std"]
        return float(np.mean(np.abs(d)))

    def _fit_temperature(self, val: CatalogData) -> float:
        z = val.y[:, 0]
        lo, hi = 0.3, 3.0
        for _ in range(14):
            mid = np.sqrt(lo * hi)
            s = self._draw(val, 200, seed=123, temperature=mid)[..., 0]
            ok = np.isfinite(s).all(axis=1)
            q = np.quantile(s[ok], [0.16, 0.84], axis=1)
            cov = np.mean((z[ok] >= q[0]) & (z[ok] <= q[1]))
            lo, hi = (mid, hi) if cov < 0.68 else (lo, mid)
        return float(np.sqrt(lo * hi))

    # -- inference ---------------------------------------------------------------------------------
    def posterior(
        self,
        data: CatalogData,
        *,
        n_samples: int = 1000,
        seed: int = 0,
        device: str | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> Posterior:
        """Joint draws (n, n_samples, 5) of (z, age [Gyr], log M*, [Z/H], A_V); flagged galaxies invalid."""
        s = self._draw(data, n_samples, seed=seed, temperature=self.temperature)
        ok = np.isfinite(s).all(axis=(1, 2))
        if progress is not None:
            progress(len(data), len(data))
        return Posterior(
            params=PARAMS,
            units=self.param_units(),
            samples=s,
            valid=ok,
            method=self.name,
            info={"temperature": self.temperature, "n_samples": n_samples, "seed": seed},
        )

    def pz_grid(self, data: CatalogData, grid: np.ndarray, n_latent: int | None = None, seed: int = 0) -> np.ndarray:
        """p(z | x) (n, g) on ``grid``: the mixture over ``n_latent`` latent draws of the decoder's Gaussians
        (each widened in quadrature by half a grid step, renormalized on the grid)."""
        import torch

        mu, sd, ok = self._z_mixture(data, n_latent or self.config.latent_draws, seed, self.temperature)
        g = torch.as_tensor(np.asarray(grid, np.float32))
        # components narrower than the grid cannot be represented on it: widen each in quadrature by half a step
        sd = np.sqrt(sd**2 + (0.5 * float(np.median(np.diff(grid)))) ** 2).astype(np.float32)
        out = np.full((len(data), len(grid)), np.nan)
        with torch.no_grad():
            for a in range(0, len(mu), 2048):
                m, s = torch.as_tensor(mu[a : a + 2048]), torch.as_tensor(sd[a : a + 2048])
                p = torch.exp(-0.5 * ((g[None, None] - m[..., None]) / s[..., None]) ** 2) / s[..., None]
                p = p.mean(1) / np.sqrt(2 * np.pi)
                p = p / torch.clamp(torch.trapezoid(p, g, dim=1), min=1e-30)[:, None]  # cut z < 0 / off-grid
                out[np.flatnonzero(ok)[a : a + 2048]] = p.numpy()
        return out

    # -- state -------------------------------------------------------------------------------------
    def get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        if self.nets is None:
            raise GPSError("the mmvae has not been trained", source="MmvaeModel", expected="fit()", found="untrained")
        t = {f"nets.{k}": v.detach().cpu().numpy() for k, v in self.nets.state_dict().items()}
        t.update({f"norm.{k}": v for k, v in self.norm.items()})
        return t, {"done": self.done, "temperature": self.temperature, "history": self.history}

    def set_state(self, tensors: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        import torch

        self.norm = {k[5:]: np.asarray(v) for k, v in tensors.items() if k.startswith("norm.")}
        self.nets = _build(self.config, self.norm["x_mean"].size, self.norm["s_mean"].size)
        self.nets.load_state_dict(
            {k[5:]: torch.as_tensor(np.asarray(v)) for k, v in tensors.items() if k.startswith("nets.")}
        )
        self.nets.eval()
        self.done, self.temperature = list(extra["done"]), float(extra["temperature"])
        self.history = dict(extra.get("history", {"stages": {}}))

    # -- private -----------------------------------------------------------------------------------
    def _arrays(self, data: CatalogData, fit_norm: bool = False) -> dict[str, np.ndarray]:
        x, ok = design(data, with_errors=True)
        s = spectra_for(data, self.config.n_spec_bands)
        th = _theta(data.y)
        ok &= np.isfinite(s).all(axis=1) & np.isfinite(th).all(axis=1)
        x, s, th = x[ok], s[ok], th[ok]
        if fit_norm:
            for k, v in (("x", x), ("s", s), ("t", th)):
                self.norm[f"{k}_mean"], self.norm[f"{k}_std"] = v.mean(0), np.where(v.std(0) > 0, v.std(0), 1.0)
            # the prior's support as the training set spans it: posterior draws are truncated to it
            self.norm["t_lo"], self.norm["t_hi"] = th.min(0), th.max(0)
        f = lambda k, v: ((v - self.norm[f"{k}_mean"]) / self.norm[f"{k}_std"]).astype(np.float32)  # noqa: E731
        return {"x": f("x", x), "s": f("s", s), "t": f("t", th)}

    def _z_mixture(self, data: CatalogData, n_latent: int, seed: int, temperature: float):
        mu, sd, ok = self._decode(data, n_latent, seed, temperature)
        return mu[..., 0], sd[..., 0], ok

    def _decode(self, data: CatalogData, n_latent: int, seed: int, temperature: float):
        import torch

        if "parameters" not in self.done:
            raise GPSError(
                "the mmvae has not finished training",
                source="MmvaeModel",
                field="stages",
                expected=", ".join(STAGES),
                found=", ".join(self.done) or "none",
            )
        x, ok = design(data, with_errors=True)
        xs = torch.as_tensor(((x[ok] - self.norm["x_mean"]) / self.norm["x_std"]).astype(np.float32))
        gen = torch.Generator().manual_seed(seed)
        mus, sds = [], []
        with torch.no_grad():
            for a in range(0, len(xs), 4096):
                m, logv = self.nets.phot(xs[a : a + 4096]).chunk(2, dim=-1)
                eps = torch.randn((len(m), n_latent, m.shape[1]), generator=gen)
                lat = m[:, None] + temperature * torch.exp(0.5 * logv)[:, None] * eps
                pm, plog = self.nets.par(lat).chunk(2, dim=-1)
                # inputs far outside the training set (real photometry many sigma off the mocks) can drive the
                # decoder to |mean| ~ 1e5 with zero width, i.e. NaN draws: bound both (standardized units)
                pm, plog = pm.clamp(-50.0, 50.0), plog.clamp(-12.0, 4.0)
                mus.append(pm.numpy())
                sds.append((temperature * torch.exp(plog)).numpy())
        t_mean, t_std = self.norm["t_mean"], self.norm["t_std"]
        mu = np.concatenate(mus) * t_std + t_mean if mus else np.zeros((0, n_latent, 5))
        sd = np.concatenate(sds) * t_std if sds else np.zeros((0, n_latent, 5))
        return mu, sd, ok

    def _draw(self, data: CatalogData, n_samples: int, seed: int, temperature: float) -> np.ndarray:
        n_lat = min(n_samples, self.config.latent_draws)
        mu, sd, ok = self._decode(data, n_lat, seed, temperature)
        lo, hi = self._support()
        cont = np.array([p in CONTINUOUS for p in PARAMS])
        # continuous-prior parameters: the mixture truncated to the support; template-grid parameters (their prior
        # has atoms at the ends of the grid): mass beyond an end is that end's atom, so they are clipped
        draws = _truncated_mixture_draws(
            mu, sd, np.where(cont, lo, -np.inf), np.where(cont, hi, np.inf), n_samples, np.random.default_rng(seed)
        )
        draws = np.clip(draws, lo, hi)
        draws[..., 1] = 10 ** draws[..., 1]  # log10 age -> Gyr
        out = np.full((len(data), n_samples, 5), np.nan)
        out[ok] = draws
        return out

    def _support(self) -> tuple[np.ndarray, np.ndarray]:
        """Bounds of theta (z, log10 age, log M*, [Z/H], A_V) that posterior draws keep to: the training set's range
        (checkpoints written before it was stored: z >= 1e-4 and log10 age in [-2, 1.3] only)."""
        if "t_lo" in self.norm:
            return np.asarray(self.norm["t_lo"], float), np.asarray(self.norm["t_hi"], float)
        return np.array([1e-4, -2.0, -np.inf, -np.inf, -np.inf]), np.array([np.inf, 1.3, np.inf, np.inf, np.inf])


def _truncated_mixture_draws(
    mu: np.ndarray, sd: np.ndarray, lo: np.ndarray, hi: np.ndarray, n_samples: int, rng: np.random.Generator
) -> np.ndarray:
    """Draws (n, n_samples, p) from the equal-weight mixture of diagonal Gaussians ``mu, sd`` (n, k, p) restricted
    to the box [lo, hi] (p,): the mixture density times the box indicator, renormalized (what rejection sampling
    would give). A component is picked with probability proportional to its mass inside the box, then each
    coordinate is drawn from its truncated normal by the inverse CDF (in the tail nearer the mean, so it stays
    accurate far from the box). A galaxy whose every component lies (numerically) outside the box gets its
    component means moved to the nearest point of the box."""
    from scipy.special import ndtr, ndtri

    n, k, p = mu.shape
    a, b = (lo - mu) / sd, (hi - mu) / sd  # (n, k, p) standardized bounds
    flip = a > 0  # box above the mean: work in the mirrored tail
    a2, b2 = np.where(flip, -b, a), np.where(flip, -a, b)  # a2 <= 0 or mirrored so Phi(a2) is small
    fa, fb = ndtr(a2), ndtr(b2)
    mass = np.clip(fb - fa, 0.0, 1.0)
    logw = np.log(np.maximum(mass, 1e-300)).sum(-1)  # log mass of each component in the box (n, k)
    top = logw.max(1, keepdims=True)
    dead = top[:, 0] < np.log(1e-12)
    w = np.exp(logw - top)
    w[dead] = 1.0
    cw = np.cumsum(w, axis=1)
    cw = cw / cw[:, -1:]
    rows = np.arange(n)[:, None]
    u = rng.random((n, n_samples))
    pick = np.searchsorted((cw + rows).ravel(), (u + rows).ravel(), side="right").reshape(n, n_samples) - rows * k
    pick = np.clip(pick, 0, k - 1)
    g = lambda v: np.take_along_axis(v, pick[..., None], axis=1)  # noqa: E731
    m, s, fa_, fb_, fl = g(mu), g(sd), g(fa), g(fb), g(flip)
    v = fa_ + rng.random(m.shape) * (fb_ - fa_)
    e = ndtri(np.clip(v, 1e-300, 1 - 1e-16))
    x = m + s * np.where(fl, -e, e)
    x = np.clip(x, lo, hi)  # round-off at the edges
    if dead.any():  # nothing inside the box: nearest point of it
        x[dead] = np.clip(m[dead], lo, hi)
    return x


def _theta(y: np.ndarray | None) -> np.ndarray:
    if y is None or y.shape[1] != 5:
        raise GPSError(
            "the mmvae trains on simulated galaxies with all five parameters",
            field="targets",
            expected=", ".join(PARAMS),
            found=str(None if y is None else y.shape[1]),
        )
    t = y.copy()
    t[:, 1] = np.log10(t[:, 1])
    return t


def _build(cfg: MmvaeConfig, n_x: int, n_s: int):
    import torch
    from torch import nn

    torch.manual_seed(cfg.spectral.seed)
    h, d = cfg.hidden, cfg.latent

    def mlp(i, o):
        return nn.Sequential(nn.Linear(i, h), nn.SiLU(), nn.Linear(h, h), nn.SiLU(), nn.Linear(h, o))

    nets = nn.Module()
    nets.spec_enc, nets.spec_dec, nets.phot, nets.par = mlp(n_s, 2 * d), mlp(d, n_s), mlp(n_x, 2 * d), mlp(d, 10)
    nets.spec_logsd = nn.Parameter(torch.full((n_s,), -2.0))
    return nets


def _stage(nets, stage: str, cfg: MmvaeConfig):
    """(module, loss_fn, batch keys, trainable parameters) of one stage; other parts are frozen."""
    import torch

    def recon(s, lat):
        sd = torch.exp(nets.spec_logsd)
        return (0.5 * ((nets.spec_dec(lat) - s) / sd) ** 2 + nets.spec_logsd).sum(-1)

    def kl(m, logv):
        return 0.5 * (m**2 + torch.exp(logv) - 1 - logv).sum(-1)

    def sample(m, logv):
        return m + torch.exp(0.5 * logv) * torch.randn_like(m)

    if stage == "spectral":

        def loss(mod, s):
            m, logv = mod.spec_enc(s).chunk(2, dim=-1)
            return (recon(s, sample(m, logv)) + cfg.beta * kl(m, logv)).mean()

        trainable = list(nets.spec_enc.parameters()) + list(nets.spec_dec.parameters())
        return nets, loss, ("s",), trainable
    if stage == "photometry":

        def loss(mod, x, s):
            with torch.no_grad():
                ms, logvs = mod.spec_enc(s).chunk(2, dim=-1)
            m, logv = mod.phot(x).chunk(2, dim=-1)
            # KL(N(ms, vs) || N(m, v)) per dimension, summed
            return 0.5 * (logv - logvs + (torch.exp(logvs) + (ms - m) ** 2) / torch.exp(logv) - 1).sum(-1).mean()

        return nets, loss, ("x", "s"), list(nets.phot.parameters())

    k = cfg.param_draws

    def loss(mod, x, t):
        with torch.no_grad():
            m, logv = mod.phot(x).chunk(2, dim=-1)
        if k == 1:
            pm, plog = mod.par(sample(m, logv)).chunk(2, dim=-1)
            return (0.5 * ((t - pm) / torch.exp(plog)) ** 2 + plog).sum(-1).mean()
        # mixture likelihood over k latent draws: -log mean_k p(theta | l_k), l_k ~ q(l | x)
        lat = m[:, None] + torch.exp(0.5 * logv)[:, None] * torch.randn((len(m), k, m.shape[1]), device=m.device)
        pm, plog = mod.par(lat).chunk(2, dim=-1)
        lp = -(0.5 * ((t[:, None] - pm) / torch.exp(plog)) ** 2 + plog).sum(-1)  # (n, k)
        return -(torch.logsumexp(lp, dim=1) - np.log(k)).mean()

    return nets, loss, ("x", "t"), list(nets.par.parameters())
