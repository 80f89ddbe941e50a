"""``exsitu_map`` model: cVAE (condition encoder + U-Net skips) + conditional latent flow -> posterior f_ex maps.

One trained model answers three inference modes (``mode=`` of :meth:`ExsituMapModel.posterior`):

* ``"flow"`` (default): z ~ q(z | h(c)), the zuko flow trained on encoder samples (the seed's Flow-VAE);
* ``"prior"``: z ~ N(0, I), the plain cVAE;
* ``"reconstruction"``: z ~ q(z | f_true, c), the encoder on the true map (a lower bound; needs the truth).

Per-pixel likelihood (``likelihood``): ``"gaussian"`` (default) f_ex ~ N(sigmoid(m), s^2) with m, s decoded per
pixel, so the loss weighs errors in f_ex units like the pixel MAE it is judged on; draws are clip(sigmoid(m) +
s * eps, 0, 1). ``"logit_normal"``: logit(f_ex) ~ N(m, s^2), draws sigmoid(m + s * eps) (resolves tiny fractions
but spends capacity on them; its posterior mean is pulled to 0.5 where s is large). ``pixel_noise=False`` drops
the per-pixel scatter from the draws (latent uncertainty only). The loss sums over
galaxy pixels only: pixels with input data (``~mask``) and a finite target. Inputs are normalized per channel
with training statistics stored in the state; masked pixels are zeroed and the mask is an input channel.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Sequence

import numpy as np

from core.config import Config, param
from core.errors import GPSError
from core.inference.posterior_maps import MapPosterior, MapPosteriorBuilder
from core.inference.training import TrainConfig
from core.models.base import set_torch_state, PosteriorModel
from core.models.exsitu_data import MapArrays, grouped_val_split, map_arrays

__all__ = ["ExsituMapConfig", "ExsituMapModel", "MODES", "gpu_config"]

MODES = ("flow", "prior", "reconstruction")
TARGET = "f_ex"


DECODES_PER_STEP = 400
"""Most maps decoded per inference step (objects x draws): each step reports progress, where an app job can be
cancelled or pause for another session's click, so a step must stay short (about a second on one CPU core) at any
number of draws; 400 decodes is the 8 objects x 50 draws the batch size was tuned on."""


@dataclass(frozen=True)
class ExsituMapConfig(Config):
    """Settings of the cVAE + latent-flow ex-situ map model (CPU default: 64x64, thin widths)."""

    map_size: int = param(64, help="Map side in pixels the model works on (inputs are regridded to it)",
                          min=16, max=512, step=16)
    widths: tuple[int, ...] = param((8, 16, 32, 64), help="Channels per resolution level (condition encoder and "
                                                          "decoder; the encoder uses enc_scale x these)")
    stem_stride: int = param(2, help="1: convolve at full resolution; 2: first layer halves the resolution "
                                     "(4x cheaper; the decoder output is upsampled bilinearly)", min=1, max=2)
    enc_scale: float = param(0.5, help="Encoder widths relative to the condition encoder", min=0.125, max=2.0,
                             advanced=True)
    latent: int = param(16, help="Latent dimension of the cVAE", min=1, max=256)
    embed: int = param(64, help="Condition embedding size (the flow's context)", min=4, max=1024)
    beta: float = param(0.5, help="Weight of the KL term relative to the summed per-pixel log-likelihood",
                        min=0.0, max=100.0)
    recon_sigma: float = param(0.05, help="Scale [f_ex units] of the fixed-scale reconstruction term that fits the "
                                          "decoder mean (gaussian likelihood; 0 = plain learned-scale NLL). Smaller "
                                          "= the latent carries more detail", min=0.0, max=1.0)
    free_bits: float = param(0.25, help="KL free bits per latent dimension [nats]: keeps the latent in use (0 = "
                                        "plain KL)", min=0.0, max=10.0)
    kl_warmup: int = param(5, help="Epochs over which the KL weight rises linearly from 0 to beta (keeps the "
                                   "decoder from ignoring the latent early on)", min=0, max=1000)
    flow_transforms: int = param(3, help="Spline transforms of the latent flow", min=1, max=12)
    flow_hidden: tuple[int, ...] = param((128, 128), help="Hidden widths of the flow's hyper-networks")
    flow_bins: int = param(8, help="Spline bins of the latent flow", min=2, max=64, advanced=True)
    flow_draws: int = param(4, help="Encoder draws per training map for the flow's training set", min=1, max=64,
                            advanced=True)
    likelihood: Literal["gaussian", "logit_normal"] = param(
        "gaussian", help="Per-pixel likelihood: gaussian in f_ex (clipped draws; matches the pixel MAE) or "
                         "logit_normal (resolves tiny fractions)")
    calibrate: bool = param(True, help="Fit a temperature on the per-pixel scatter of the flow-mode draws so that "
                                       "the central 68% intervals cover 68% of the validation galaxy pixels "
                                       "(undoes the over-confidence of a well-fitted decoder)")
    pixel_noise: bool = param(True, help="Posterior draws include the per-pixel logit-normal scatter (else only "
                                         "the latent uncertainty)")
    train: TrainConfig = field(default=TrainConfig(epochs=80, batch_size=32, lr=2e-3, patience=12),
                               metadata={"help": "Optimisation of the cVAE"})
    flow_train: TrainConfig = field(default=TrainConfig(epochs=400, batch_size=256, lr=1e-3, patience=25),
                                    metadata={"help": "Optimisation of the latent flow (after the cVAE)"})
    batch_objects: int = param(8, help="Most objects per inference batch (memory: batch x samples x H x W); a batch "
                                       "also decodes at most 400 maps in all",
                               min=1, max=4096, advanced=True)

    def validate(self) -> None:
        name = type(self).__name__
        if not self.widths or any(w < 1 for w in self.widths):
            raise GPSError("widths must be positive integers", source=name, field="widths", found=repr(self.widths))
        div = self.stem_stride * 2 ** (len(self.widths) - 1)
        if self.map_size % div or self.map_size // div < 2:
            raise GPSError("map_size must be divisible by stem_stride x 2^(levels - 1) with >= 2 pixels left",
                           source=name, field="map_size", expected=f"a multiple of {div} >= {2 * div}",
                           found=str(self.map_size))
        if not self.flow_hidden or any(h < 1 for h in self.flow_hidden):
            raise GPSError("flow hidden widths must be positive", source=name, field="flow_hidden",
                           found=repr(self.flow_hidden))


def gpu_config(**changes: Any) -> ExsituMapConfig:
    """The GPU setting: 128x128 maps (the seed's size), full-resolution convolutions, wider levels."""
    base = dict(map_size=128, widths=(32, 64, 96, 128), stem_stride=1, latent=32, embed=128,
                train=TrainConfig(epochs=200, batch_size=64, lr=1e-3, patience=20).to_dict())
    base.update(changes)
    return ExsituMapConfig.from_dict(base)


class ExsituMapModel(PosteriorModel):
    """Posterior f_ex maps from observable maps; ``features`` are the input channel names (any subset)."""

    name = "cvae_flow"
    config_cls = ExsituMapConfig
    missing_policy = "refuse"

    def __init__(self, config: ExsituMapConfig, features: Sequence[str], targets: Sequence[str] = (TARGET,),
                 units: dict[str, str] | None = None) -> None:
        super().__init__(config, features, targets or (TARGET,), units)
        if not self.features:
            raise GPSError("the model needs at least one input channel", source="ExsituMapModel", field="features")
        self.net = None
        self.noise_scale = 1.0            # calibration temperature of the per-pixel scatter (fit() sets it)
        self.x_mean: np.ndarray | None = None
        self.x_std: np.ndarray | None = None

    # -- training ----------------------------------------------------------------------------------------
    def fit(self, train, val=None, *, callbacks: Sequence[Callable] = (), stop: threading.Event | None = None,
            device: str | None = None) -> dict:
        """Train the cVAE (negative beta-ELBO on galaxy pixels), then the latent flow on encoder draws.

        ``train``/``val``: MapStack or simulator MapSet with the model's channels and an ``f_ex`` target map.
        Returns the history {"cvae": ..., "flow": ..., "device": ...}.
        """

        from core.inference.training import fit_module

        tr = self._arrays(train, need_truth=True, drop_empty=True)
        dropped = tr.dropped
        if val is not None:
            va = self._arrays(val, need_truth=True, drop_empty=True)
            dropped += va.dropped
        else:   # hold out whole galaxies (all projections together) for early stopping
            tr, va = grouped_val_split(tr, self.config.train.val_fraction, self.config.train.seed)
        self.x_mean, self.x_std = _channel_stats(tr)
        self.net = self._build()
        cvae_params = [p for n, p in self.net.named_parameters() if not n.startswith("flow.")]
        gens: dict = {}
        warm = self.config.kl_warmup
        beta = [float(self.config.beta) * (1.0 / (warm + 1) if warm else 1.0)]

        def elbo(module, x, m, f, w):
            b = beta[0] if module.training else float(self.config.beta)   # validation always at the full beta
            return module.elbo_loss(x, m, f, w, b, _generator(gens, x.device, self.config.train.seed),
                                    likelihood=self.config.likelihood, free_bits=self.config.free_bits,
                                    recon_sigma=self.config.recon_sigma)

        def anneal(report) -> None:       # KL warm-up: beta * min(1, (epoch + 2) / (warm + 1)) for the next epoch
            beta[0] = float(self.config.beta) * min(1.0, (report.epoch + 2) / (warm + 1)) if warm else beta[0]

        h_cvae = fit_module(self.net, elbo, self._tensors(tr), None if va is None else self._tensors(va),
                            self.config.train, callbacks=[anneal, *callbacks], stop=stop, device=device,
                            params=cvae_params)
        if stop is not None and stop.is_set():
            h_flow = {"stopped_reason": "skipped: training stopped by user"}
        else:
            h_flow = self._fit_flow(tr, va, callbacks, stop, h_cvae.device).to_dict()
        self.noise_scale = 1.0
        calib = None
        if self.config.calibrate and self.config.pixel_noise and va is not None and not (stop and stop.is_set()):
            calib = self._calibrate(va, h_cvae.device)
            self.noise_scale = calib["noise_scale"]
        self.net.to("cpu").eval()
        self.history = {"cvae": h_cvae.to_dict(), "flow": h_flow, "device": h_cvae.device, "calibration": calib,
                        "seconds": h_cvae.seconds + float(h_flow.get("seconds", 0.0)),
                        "n_train": len(tr.x), "n_val": 0 if va is None else len(va.x),
                        "dropped_all_masked": dropped}
        return self.history

    def _fit_flow(self, tr: MapArrays, va: MapArrays | None, callbacks, stop, device):
        from core.inference.training import fit_module

        import torch

        k = self.config.flow_draws
        sets = [self._encoder_outputs(a, device) for a in ((tr,) if va is None else (tr, va))]
        h_std = sets[0][0].std(axis=0)
        self.net.h_mean.copy_(torch.as_tensor(sets[0][0].mean(axis=0)))
        self.net.h_std.copy_(torch.as_tensor(np.where(h_std > 1e-6, h_std, 1.0)))
        hm, hs = sets[0][0].mean(axis=0), np.where(h_std > 1e-6, h_std, 1.0)
        sets = [((s[0] - hm) / hs, s[1], s[2]) for s in sets]     # the flow module sees standardized h
        sets = [tuple(np.repeat(t, k, axis=0) for t in s) for s in sets]
        gens: dict = {}
        seed = self.config.flow_train.seed + 1

        def nll(flow, h, mu, logvar):
            import torch
            eps = torch.randn(mu.shape, generator=_generator(gens, mu.device, seed), device=mu.device)
            return -flow(h).log_prob(mu + torch.exp(0.5 * logvar) * eps).mean()

        return fit_module(self.net.flow, nll, sets[0], sets[1] if len(sets) > 1 else None, self.config.flow_train,
                          callbacks=callbacks, stop=stop, device=device)

    # -- inference -----------------------------------------------------------------------------------------
    def posterior(self, data, *, n_samples: int = 100, seed: int = 0, device: str | None = None,
                  progress: Callable[[int, int], None] | None = None, mode: Literal["flow", "prior",
                                                                                    "reconstruction"] = "flow",
                  thresholds: Sequence[float] = (0.5,), keep_samples: int = 0) -> MapPosterior:
        """Posterior f_ex maps of every object in ``data`` from ``n_samples`` draws (streamed summaries)."""
        import torch

        from core.device import resolve_device

        self._require_trained()
        if mode not in MODES:
            raise GPSError("unknown inference mode", source=self.name, field="mode", expected=" | ".join(MODES),
                           found=repr(mode))
        arr = self._arrays(data, need_truth=(mode == "reconstruction"))
        dev = resolve_device(device)
        net = self.net.to(dev).eval()
        gen = torch.Generator().manual_seed(int(seed))
        n, size = len(arr.x), self.config.map_size
        builder = MapPosteriorBuilder(n, (size, size), thresholds, keep_samples)
        xs, ms, fs, _ = self._tensors(arr)
        bo = max(1, min(self.config.batch_objects, DECODES_PER_STEP // max(1, int(n_samples))))
        with torch.no_grad():
            for start in range(0, n, bo):
                sl = slice(start, min(start + bo, n))
                draws = self._draw(net, xs[sl].to(dev), ms[sl].to(dev), None if fs is None else fs[sl].to(dev),
                                   n_samples, mode, gen, dev)
                builder.add(start, draws)
                if progress is not None:
                    progress(sl.stop, n)
        self.net.to("cpu")
        return builder.finish(target=TARGET, unit="", mask=arr.mask, method=f"{self.name}:{mode}",
                              truth=arr.f_ex, ids=arr.ids,
                              info={"mode": mode, "seed": seed, "channels": list(self.features),
                                    "pixel_noise": self.config.pixel_noise, "source": arr.source})

    def _draw(self, net, x, m, f, n_samples: int, mode: str, gen, dev) -> np.ndarray:
        """Draws (b, S, H, W) in [0, 1] for one batch of objects."""
        import torch

        from core.models.cvae_maps import pixel_draws

        mean, log_s = self._decode(net, x, m, f, n_samples, mode, gen, dev)
        noise = torch.randn(mean.shape, generator=gen).to(dev) * self.noise_scale if self.config.pixel_noise else None
        out = pixel_draws(mean, log_s, noise, self.config.likelihood)
        out = out.reshape(n_samples, x.shape[0], *mean.shape[1:]).transpose(0, 1)
        return out.cpu().numpy()

    def _decode(self, net, x, m, f, n_samples: int, mode: str, gen, dev):
        """Decoder outputs (S * b, H, W) mean and log-scale for ``n_samples`` latent draws of each object."""
        import torch

        b = x.shape[0]
        feats, h = net.condition(x, m)
        eps = torch.randn((n_samples, b, self.config.latent), generator=gen).to(dev)
        if mode == "prior":
            z = eps
        elif mode == "flow":
            z = net.latent_flow(h).transform.inv(eps)
        else:
            mu, logvar = net.encode(f, m, feats, h)
            z = mu + torch.exp(0.5 * logvar) * eps
        rep = lambda t: t.unsqueeze(0).expand(n_samples, *t.shape).reshape(n_samples * b, *t.shape[1:])  # noqa: E731
        return net.decode(z.reshape(n_samples * b, -1), [rep(t) for t in feats], rep(h))

    def _calibrate(self, va: MapArrays, device, n_maps: int = 192, n_draws: int = 24) -> dict:
        """Noise temperature t (bisection) such that q16-q84 of flow-mode draws with pixel scatter x t cover 68% of
        the galaxy pixels of up to ``n_maps`` validation maps (fixed draws: coverage is monotone in t)."""
        import torch

        from core.models.cvae_maps import pixel_draws

        sel = np.linspace(0, len(va.x) - 1, min(n_maps, len(va.x))).astype(int)
        a = va.subset(sel)
        xs, ms, fs, ws = self._tensors(a)
        net = self.net.to(device).eval()
        gen = torch.Generator().manual_seed(int(self.config.flow_train.seed) + 7)
        parts = []
        with torch.no_grad():
            for s0 in range(0, len(sel), 8):
                sl = slice(s0, s0 + 8)
                mean, log_s = self._decode(net, xs[sl].to(device), ms[sl].to(device), None, n_draws, "flow", gen,
                                           device)
                parts.append((mean.cpu(), log_s.cpu(), torch.randn(mean.shape, generator=gen), xs[sl].shape[0]))
        truth, w = fs.numpy(), ws.numpy() > 0

        def coverage(t: float) -> float:
            hits, total = 0, 0
            for (mean, log_s, noise, b), s0 in zip(parts, range(0, len(sel), 8)):
                d = pixel_draws(mean, log_s, noise * t, self.config.likelihood).reshape(n_draws, b, *mean.shape[1:])
                lo, hi = np.percentile(d.numpy(), [16, 84], axis=0)
                tt, ww = truth[s0:s0 + b], w[s0:s0 + b]
                hits += int(((tt >= lo) & (tt <= hi) & ww).sum())
                total += int(ww.sum())
            return hits / max(total, 1)

        before, lo_t, hi_t = coverage(1.0), 0.05, 20.0
        for _ in range(14):
            mid = (lo_t * hi_t) ** 0.5
            lo_t, hi_t = (mid, hi_t) if coverage(mid) < 0.68 else (lo_t, mid)
        t = float((lo_t * hi_t) ** 0.5)
        return {"noise_scale": t, "coverage_68_before": before, "coverage_68_after": coverage(t),
                "n_maps": int(len(sel)), "n_draws": n_draws}

    # -- state ---------------------------------------------------------------------------------------------
    def get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        self._require_trained()
        tensors = {f"net.{k}": v.detach().cpu().numpy() for k, v in self.net.state_dict().items()}
        tensors["x_mean"], tensors["x_std"] = self.x_mean.copy(), self.x_std.copy()
        tensors["noise_scale"] = np.array([self.noise_scale], dtype=np.float32)
        return tensors, {"channels": list(self.features), "target": TARGET, "modes": list(MODES),
                         "likelihood": self.config.likelihood, "history": self.history}

    def set_state(self, tensors: dict[str, np.ndarray], extra: dict[str, Any]) -> None:

        self.net = self._build()
        set_torch_state(self.net, tensors, "net.", "cvae_flow", self.config)
        self.x_mean = np.asarray(tensors["x_mean"], dtype=np.float32)
        self.x_std = np.asarray(tensors["x_std"], dtype=np.float32)
        self.noise_scale = float(np.asarray(tensors.get("noise_scale", [1.0])).ravel()[0])   # older: uncalibrated
        self.history = dict(extra.get("history", {}))

    # -- private -------------------------------------------------------------------------------------------
    def _build(self):
        import torch

        from core.models.cvae_maps import CVAEMaps

        torch.manual_seed(self.config.train.seed)   # weight init only (training noise uses explicit generators)
        c = self.config
        return CVAEMaps(len(self.features), c.map_size, widths=c.widths, latent=c.latent, embed=c.embed,
                        enc_scale=c.enc_scale, flow_transforms=c.flow_transforms, flow_hidden=c.flow_hidden,
                        flow_bins=c.flow_bins, stem_stride=c.stem_stride)

    def _require_trained(self) -> None:
        if self.net is None:
            raise GPSError("the exsitu_map model has not been trained or loaded", source=self.name,
                           expected="fit() or a checkpoint", found="untrained model")

    def _arrays(self, data, need_truth: bool, drop_empty: bool = False) -> MapArrays:
        return map_arrays(data, self.features, self.config.map_size, need_truth=need_truth, model=self.name,
                          drop_empty=drop_empty)

    def _tensors(self, a: MapArrays):
        """(x normalized and masked-zeroed, mask, f_ex or None, loss weight) as torch tensors."""
        import torch

        x = (a.x - self.x_mean[None, :, None, None]) / self.x_std[None, :, None, None]
        x = np.where(a.mask[:, None], 0.0, x).astype(np.float32)
        out = [torch.from_numpy(x), torch.from_numpy(a.mask)]
        if a.f_ex is None:
            return out + [None, None]
        f = np.nan_to_num(a.f_ex, nan=0.0).astype(np.float32)
        return out + [torch.from_numpy(np.clip(f, 0.0, 1.0)), torch.from_numpy(a.weight.astype(np.float32))]

    def _encoder_outputs(self, a: MapArrays, device) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Condition embeddings h (N, E) and encoder (mu, logvar) (N, latent) of the training maps."""
        import torch

        x, m, f, _ = self._tensors(a)
        net = self.net.to(device).eval()
        hs, mus, lvs = [], [], []
        with torch.no_grad():
            for s in range(0, len(x), 256):
                sl = slice(s, s + 256)
                feats, h = net.condition(x[sl].to(device), m[sl].to(device))
                mu, lv = net.encode(f[sl].to(device), m[sl].to(device), feats, h)
                hs.append(h.cpu().numpy()), mus.append(mu.cpu().numpy()), lvs.append(lv.cpu().numpy())
        return np.concatenate(hs), np.concatenate(mus), np.concatenate(lvs)


def _channel_stats(a: MapArrays) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std over unmasked training pixels: (C,), (C,) float32."""
    good = ~a.mask
    mean, std = [], []
    for c in range(a.x.shape[1]):
        v = a.x[:, c][good].astype(np.float64)
        mean.append(v.mean() if v.size else 0.0)
        s = v.std() if v.size else 1.0
        std.append(s if s > 0 else 1.0)
    return np.asarray(mean, np.float32), np.asarray(std, np.float32)


def _generator(cache: dict, device, seed: int):
    """One explicit torch.Generator per device (training noise never touches the global RNG)."""
    import torch

    key = str(device)
    if key not in cache:
        cache[key] = torch.Generator(device=device).manual_seed(int(seed))
    return cache[key]
