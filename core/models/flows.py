"""Amortized conditional normalizing flow q(log Mh | x) (zuko neural spline flow) with a fast compiled sampler.

The flow is a zuko ``NSF(features=1, context=d)``: a stack of monotonic rational-quadratic splines on the
standardized target whose parameters are MLP functions of the standardized inputs. It is trained by maximum
likelihood (mean negative log density of the training targets) through :func:`core.inference.training.fit_module`.

Missing features: the flow is amortized over complete input vectors, so a galaxy with a NaN feature is
**refused** with a clear :class:`GPSError` (never imputed). Train the flow on the features that are present,
or use ``vae_hmc``/``exact``, which marginalize a missing feature.

Fast sampling: for a 1-D target every spline's parameters depend only on the galaxy's inputs (the autoregressive
mask removes the target from the hyper-network input), so the hyper-networks run once per galaxy (torch) and the
inverse splines are applied to all draws of all galaxies in one compiled JAX kernel (``_sample_kernel``). This is
exact: the same spline formulas as zuko, checked against ``zuko`` in ``tests/test_flow.py``.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from core.config import Config, param
from core.data.catalog import CatalogData
from core.errors import GPSError
from core.inference.posterior import Posterior
from core.inference.training import TrainConfig
from core.models.base import set_torch_state, PosteriorModel, refuse_missing

__all__ = ["FlowConfig", "FlowModel"]

_BOUND = 5.0  # zuko's spline (co)domain [-5, 5] in standardized units; identity outside


@dataclass(frozen=True)
class FlowConfig(Config):
    """Settings of the conditional neural spline flow."""

    transforms: int = param(3, help="Number of spline transforms", min=1, max=12)
    bins: int = param(8, help="Spline bins per transform", min=2, max=64)
    hidden: tuple[int, ...] = param((128, 128), help="Hidden layer widths of each hyper-network")
    train: TrainConfig = field(default=TrainConfig(epochs=300, batch_size=512, lr=1e-3, patience=20),
                               metadata={"help": "Optimisation settings"})
    sample_chunk: int = param(8192, help="Galaxies per sampling chunk (memory vs speed)", min=1,
                              max=1 << 20, advanced=True)

    def validate(self) -> None:
        if not self.hidden or any(h < 1 for h in self.hidden):
            raise GPSError("hidden layer widths must be positive integers", source="FlowConfig", field="hidden",
                           expected="e.g. [128, 128]", found=repr(self.hidden))


class FlowModel(PosteriorModel):
    """Amortized flow posterior q(y | x) for one scalar target (e.g. log Mh). Refuses NaN features."""

    name = "flow"
    config_cls = FlowConfig
    missing_policy = "refuse"

    def __init__(self, config: FlowConfig, features: Sequence[str], targets: Sequence[str],
                 units: dict[str, str] | None = None) -> None:
        super().__init__(config, features, targets, units)
        if len(self.targets) != 1:
            raise GPSError("the flow model infers exactly one scalar target", source="FlowModel",
                           field="targets", expected="1 target", found=str(len(self.targets)))
        self.flow = None
        self.x_mean: np.ndarray | None = None
        self.x_std: np.ndarray | None = None
        self.y_mean = 0.0
        self.y_std = 1.0

    # -- training ----------------------------------------------------------------------------------
    def fit(self, train: CatalogData, val: CatalogData | None = None, *, callbacks: Sequence[Callable] = (),
            stop: threading.Event | None = None, device: str | None = None) -> dict:
        """Maximum-likelihood training on ``train`` (complete rows only; NaN rows raise). Returns the history."""
        from core.inference.training import fit_module

        x, y = self._xy(train)
        self.x_mean, self.x_std = x.mean(axis=0), x.std(axis=0)
        self.x_std = np.where(self.x_std > 0, self.x_std, 1.0)
        self.y_mean, self.y_std = float(y.mean()), float(y.std() or 1.0)
        self.flow = self._build()
        tr = (self._xs(x), self._ys(y))
        va = None
        if val is not None:
            xv, yv = self._xy(val)
            va = (self._xs(xv), self._ys(yv))
        hist = fit_module(self.flow, _nll, tr, va, self.config.train, callbacks=callbacks, stop=stop,
                          device=device)
        self.flow.to("cpu").eval()
        self.history = hist.to_dict()
        return self.history

    # -- inference ---------------------------------------------------------------------------------
    def posterior(self, data: CatalogData, *, n_samples: int = 1000, seed: int = 0, device: str | None = None,
                  progress: Callable[[int, int], None] | None = None) -> Posterior:
        """Draws (n, n_samples, 1) of the target in physical units, sampled exactly from the trained flow."""
        x = self._checked_inputs(data)
        samples = self.sample(x, n_samples, seed=seed, progress=progress)
        return Posterior(params=self.targets, units=self.param_units(), samples=samples[..., None],
                         method=self.name, info={"n_samples": n_samples, "seed": seed})

    def sample(self, x: np.ndarray, n_samples: int, *, seed: int = 0,
               progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        """Raw fast sampler: ``x`` (n, d) complete inputs in physical units -> draws (n, n_samples) float64."""
        import jax

        self._require_trained()
        n = len(x)
        out = np.empty((n, n_samples), dtype=np.float64)
        chunk = self.config.sample_chunk
        key = jax.random.PRNGKey(seed)
        for start in range(0, n, chunk):
            sl = slice(start, min(start + chunk, n))
            m = sl.stop - sl.start
            xb = x[sl] if m == chunk else _pad_rows(x[sl], min(chunk, _bucket(m)))   # few compiled shapes
            knots = self._knots(xb)
            key, sub = jax.random.split(key)
            ys = np.asarray(_sample_kernel(knots, sub, n_samples))[:m]
            np.multiply(ys, self.y_std, out=out[sl])
            out[sl] += self.y_mean
            if progress is not None:
                progress(sl.stop, n)
        return out

    def log_prob(self, y_grid: np.ndarray, x: np.ndarray) -> np.ndarray:
        """log q(y | x) in 1/[target unit] for ``y_grid`` (g,) or (n, g) and inputs ``x`` (n, d): shape (n, g)."""
        self._require_trained()
        x = np.asarray(x, dtype=float)
        refuse_missing(x, self.features, self.name)
        y_grid = np.asarray(y_grid, dtype=np.float64)
        ys = (np.broadcast_to(y_grid, (len(x), y_grid.shape[-1])) - self.y_mean) / self.y_std
        knots = self._knots(x)
        lp = np.asarray(_log_prob_kernel(knots, ys.astype(np.float32)), dtype=np.float64)
        return lp - math.log(self.y_std)

    # -- state -------------------------------------------------------------------------------------
    def get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        self._require_trained()
        tensors = {f"flow.{k}": v.detach().cpu().numpy() for k, v in self.flow.state_dict().items()}
        tensors["x_mean"], tensors["x_std"] = self.x_mean.copy(), self.x_std.copy()
        extra = {"y_mean": self.y_mean, "y_std": self.y_std, "features": list(self.features),
                 "history": self.history}
        return tensors, extra

    def set_state(self, tensors: dict[str, np.ndarray], extra: dict[str, Any]) -> None:

        self.flow = self._build()
        set_torch_state(self.flow, tensors, "flow.", "flow", self.config)
        self.x_mean = np.asarray(tensors["x_mean"], dtype=np.float64)
        self.x_std = np.asarray(tensors["x_std"], dtype=np.float64)
        self.y_mean, self.y_std = float(extra["y_mean"]), float(extra["y_std"])
        self.history = dict(extra.get("history", {}))

    # -- private -----------------------------------------------------------------------------------
    def _build(self):
        import torch
        import zuko

        torch.manual_seed(self.config.train.seed)
        c = self.config
        return zuko.flows.NSF(features=1, context=len(self.features), transforms=c.transforms, bins=c.bins,
                              hidden_features=list(c.hidden))

    def _require_trained(self) -> None:
        if self.flow is None:
            raise GPSError("the flow model has not been trained or loaded", source="FlowModel",
                           expected="fit() or a checkpoint", found="untrained model")

    def _xy(self, data: CatalogData) -> tuple[np.ndarray, np.ndarray]:
        x = self._checked_inputs(data)
        if data.y is None:
            raise GPSError("training data have no target column", source=str(data.meta.get("file", "data")),
                           field=self.targets[0], expected="a target column", found="none")
        y = data.y[:, list(data.targets).index(self.targets[0])]
        if not np.isfinite(y).all():
            i = int(np.flatnonzero(~np.isfinite(y))[0])
            raise GPSError(f"non-finite target value in row {i}", source=str(data.meta.get("file", "data")),
                           field=self.targets[0], expected="finite numbers", found=str(y[i]))
        return x, y

    def _checked_inputs(self, data: CatalogData) -> np.ndarray:
        x = self.inputs(data)
        src = str(data.meta.get("file") or data.meta.get("source") or "input data")
        refuse_missing(x, self.features, self.name, source=src)
        return x

    def _xs(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.x_mean) / self.x_std).astype(np.float32)

    def _ys(self, y: np.ndarray) -> np.ndarray:
        return ((y - self.y_mean) / self.y_std).astype(np.float32)[:, None]

    def _knots(self, x: np.ndarray) -> tuple[np.ndarray, ...]:
        """Spline knots per galaxy and transform: (horizontal, vertical, derivatives), each (T, n, K+1)."""
        import torch

        c = torch.as_tensor(self._xs(np.asarray(x, dtype=float)))
        hs, vs, ds = [], [], []
        with torch.no_grad():
            for t in self.flow.transform.transforms:
                phi = t.hyper(c)            # zuko ElementWiseTransform: 1-D target, parameters from context only
                w, h, d = phi.split([self.config.bins, self.config.bins, self.config.bins - 1], dim=-1)
                spline = t.univariate(w, h, d)
                hs.append(spline.horizontal)
                vs.append(spline.vertical)
                ds.append(spline.derivatives)
        return tuple(torch.stack(a).numpy() for a in (hs, vs, ds))


def _bucket(m: int) -> int:
    """Smallest power of two >= m (at least 64): pads odd-sized chunks so JAX compiles few shapes."""
    return max(64, 1 << (m - 1).bit_length())


def _pad_rows(x: np.ndarray, size: int) -> np.ndarray:
    """Repeat the last row of ``x`` (m, d) up to ``size`` rows (the padded draws are discarded)."""
    return np.concatenate([x, np.repeat(x[-1:], size - len(x), axis=0)]) if size > len(x) else x


def _nll(module, x, y):
    return -module(x).log_prob(y).mean()


def _gather(table, k):
    """table (n, K+1), k (n, S) int -> (n, S)."""
    import jax.numpy as jnp

    return jnp.take_along_axis(table, k, axis=1)


def _bin(hor, ver, der, k):
    import jax.numpy as jnp

    bins = hor.shape[-1] - 1
    mask = (k >= 0) & (k < bins)
    k = jnp.clip(k, 0, bins - 1)
    x0, x1 = _gather(hor, k), _gather(hor, k + 1)
    y0, y1 = _gather(ver, k), _gather(ver, k + 1)
    d0, d1 = _gather(der, k), _gather(der, k + 1)
    return mask, x0, x1, y0, y1, d0, d1, (y1 - y0) / (x1 - x0)


def _rqs_inverse(y, hor, ver, der):
    """Inverse monotonic RQS (same formulas as zuko.transforms.MonotonicRQSTransform._inverse)."""
    import jax.numpy as jnp

    k = jnp.sum(ver[:, None, :] < y[..., None], axis=-1) - 1
    mask, x0, x1, y0, y1, d0, d1, s = _bin(hor, ver, der, k)
    y_ = jnp.where(mask, y - y0, 0.0)
    a = (y1 - y0) * (s - d0) + y_ * (d0 + d1 - 2 * s)
    b = (y1 - y0) * d0 - y_ * (d0 + d1 - 2 * s)
    c = -s * y_
    z = 2 * c / (-b - jnp.sqrt(jnp.maximum(b * b - 4 * a * c, 0.0)))
    return jnp.where(mask, x0 + z * (x1 - x0), y)


def _rqs_forward(x, hor, ver, der):
    """Forward RQS and log|dy/dx| (zuko.transforms.MonotonicRQSTransform.call_and_ladj)."""
    import jax.numpy as jnp

    k = jnp.sum(hor[:, None, :] < x[..., None], axis=-1) - 1
    mask, x0, x1, y0, y1, d0, d1, s = _bin(hor, ver, der, k)
    z = jnp.where(mask, (x - x0) / (x1 - x0), 0.0)
    den = s + (d0 + d1 - 2 * s) * z * (1 - z)
    y = y0 + (y1 - y0) * (s * z ** 2 + d0 * z * (1 - z)) / den
    jac = s ** 2 * (2 * s * z * (1 - z) + d0 * (1 - z) ** 2 + d1 * z ** 2) / den ** 2
    return jnp.where(mask, y, x), jnp.where(mask, jnp.log(jac), 0.0)


def _jit_kernels():
    import jax
    import jax.numpy as jnp

    def sample(knots, key, n_samples):
        hor, ver, der = knots
        y = jax.random.normal(key, (hor.shape[1], n_samples), dtype=jnp.float32)
        for t in range(hor.shape[0] - 1, -1, -1):        # zuko composes f_T o ... o f_1; sample = inverses
            y = _rqs_inverse(y, hor[t], ver[t], der[t])
        return y

    def log_prob(knots, y):
        hor, ver, der = knots
        ladj = jnp.zeros_like(y)
        for t in range(hor.shape[0]):
            y, la = _rqs_forward(y, hor[t], ver[t], der[t])
            ladj = ladj + la
        return -0.5 * y ** 2 - 0.5 * math.log(2 * math.pi) + ladj

    return jax.jit(sample, static_argnums=2), jax.jit(log_prob)


_KERNELS: list = []


def _sample_kernel(knots, key, n_samples):
    if not _KERNELS:
        _KERNELS.extend(_jit_kernels())
    return _KERNELS[0](knots, key, n_samples)


def _log_prob_kernel(knots, y):
    if not _KERNELS:
        _KERNELS.extend(_jit_kernels())
    return _KERNELS[1](knots, y)
