"""LightGBM baseline: an L2 point model plus one quantile model per level, turned into a predictive distribution.

For every target the model trains one gradient-boosted regressor with the L2 objective (the point estimate,
``Posterior.info["point"]``) and one with the pinball (quantile) objective per level in
``LightGBMConfig.quantiles``, each with early stopping on the validation set.

Predictive distribution: the predicted quantiles are sorted per object (which removes quantile crossing), and
samples are drawn by inverse-transform sampling of the piecewise-linear quantile function through the knots
``(tau_k, Q_k)``. Beyond the extreme levels the quantile function is extended **linearly** with the slope of its
outermost segment down to ``tau = 0`` and up to ``tau = 1``, i.e. each tail carries its missing mass
(``tau_1`` below, ``1 - tau_K`` above) as a uniform density equal to that of the adjacent segment. The tails are
therefore bounded and light; with the default extreme levels 0.025/0.975 this only affects the outer 5% of draws.

Any subset of the inputs: LightGBM routes a NaN value down the default branch that each split learns. Trained on
complete rows only, that branch is an implicit imputation learned from no missing data at all; so the training
set is augmented with ``mask_copies`` copies of its rows in which random subsets of the inputs are set to NaN
(``core.models.base.random_input_mask``), and the validation set (early stopping) mixes complete rows and masked
rows the same way. The trees then learn q(y | x_S) for any subset S, and at prediction time a galaxy with NaN
inputs (or a table without some input columns) runs with the inputs it has. Checkpoints written before masks
(``input_masks`` absent from the state) still **refuse** rows with NaN features with a clear :class:`GPSError`.

Warm start: ``fit(..., warm_start=True)`` continues boosting every point and quantile model from the boosters held
(LightGBM ``init_model``), with early stopping on the validation set; a model keeps its starting trees when no new
round improves its validation metric.

State: each booster is kept in LightGBM's own text format (``Booster.model_to_string``) under JSON-able string keys
of the extra state (the checkpoint writer stores long strings as text files); nothing is pickled.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from core.config import Config, param
from core.data.catalog import CatalogData
from core.errors import GPSError
from core.inference.posterior import Posterior
from core.inference.prior_reweight import (PRIOR_NOTE, PriorReweighting, check_prior_choice, draw_from_cell_masses,
                                          prior_param)
from core.models.base import (PosteriorModel, check_missing, random_input_mask, refuse_missing,
                              require_warm_state)

__all__ = ["LightGBMConfig", "LightGBMModel", "quantile_function_samples"]

DEFAULT_QUANTILES = (0.025, 0.05, 0.1, 0.16, 0.25, 0.5, 0.75, 0.84, 0.9, 0.95, 0.975)


@dataclass(frozen=True)
class LightGBMConfig(Config):
    """Settings of the LightGBM point + quantile baseline."""

    num_leaves: int = param(31, help="Maximum leaves per tree", min=2, max=4096)
    n_estimators: int = param(1000, help="Maximum boosting rounds per model (early stopping picks fewer)",
                              min=1, max=100000)
    learning_rate: float = param(0.05, help="Shrinkage per boosting round", min=1e-4, max=1.0)
    min_child_samples: int = param(20, help="Minimum objects per leaf", min=1, max=100000)
    quantiles: tuple[float, ...] = param(DEFAULT_QUANTILES, help="Quantile levels, one model each (in (0, 1))")
    early_stopping_rounds: int = param(50, help="Stop a model after this many rounds without validation gain",
                                       min=1, max=10000)
    val_fraction: float = param(0.1, help="Validation fraction when no validation set is given", min=0.01, max=0.5)
    num_threads: int = param(1, help="CPU threads used by LightGBM (more only pays on large, idle machines: its "
                             "OpenMP threads spin and slow down ~8x on a busy 2-core box)", min=1, max=256,
                             advanced=True)
    report_every: int = param(25, help="Progress report every this many rounds", min=1, max=10000, advanced=True)
    seed: int = param(0, help="Random seed (LightGBM seed and validation split)", min=0)
    input_masks: bool = param(True, help="Train on copies of the rows with randomly hidden (NaN) inputs so that "
                              "any subset of the inputs runs")
    mask_copies: int = param(1, help="Masked copies of the training rows added to the complete rows", min=1,
                             max=20, advanced=True)
    mask_full_fraction: float = param(0.5, help="Validation rows that keep all their inputs (the others are "
                                      "masked like the training copies)", min=0.0, max=1.0, advanced=True)
    mask_keep_low: float = param(0.3, help="Masked rows keep each input with a probability drawn between this "
                                 "and mask_keep_high", min=0.0, max=1.0, advanced=True)
    mask_keep_high: float = param(0.9, help="Upper end of the keep probability of masked rows", min=0.0, max=1.0,
                                  advanced=True)
    prior: str = prior_param()

    def validate(self) -> None:
        check_prior_choice(self.prior, "LightGBMConfig")
        q = self.quantiles
        if len(q) < 2 or any(not 0.0 < a < 1.0 for a in q) or len(set(q)) != len(q):
            raise GPSError("quantile levels must be at least two distinct numbers strictly between 0 and 1",
                           source="LightGBMConfig", field="quantiles", expected="e.g. [0.05, 0.5, 0.95]",
                           found=repr(q))


class LightGBMModel(PriorReweighting, PosteriorModel):
    """Gradient-boosted point estimate plus quantile models, for any subset of the inputs (NaN = missing)."""

    name = "lightgbm"
    config_cls = LightGBMConfig
    missing_policy = "amortize"

    def __init__(self, config: LightGBMConfig, features: Sequence[str], targets: Sequence[str],
                 units: dict[str, str] | None = None) -> None:
        super().__init__(config, features, targets, units)
        self.levels = tuple(sorted(self.config.quantiles))
        self.boosters: dict[str, Any] = {}     # "t{j}_point" / "t{j}_q{level}" -> lightgbm.Booster
        self._set_masked(self.config.input_masks)

    # -- training ----------------------------------------------------------------------------------
    def fit(self, train: CatalogData, val: CatalogData | None = None, *, callbacks: Sequence[Callable] = (),
            stop: threading.Event | None = None, device: str | None = None, warm_start: bool = False) -> dict:
        """Train the point and quantile models (early stopping on ``val`` or a seeded hold-out of ``train``).

        ``callbacks`` receive a :class:`core.inference.training.EpochReport` every ``report_every`` rounds, with
        ``epoch`` counting rounds over all models and ``val_loss`` the current model's validation metric
        (``train_loss`` is NaN: the training loss is not evaluated). When ``stop`` is set (or a callback raises
        ``StopRequested``) the current model keeps its best iteration and every remaining model is trained for a
        single round, so the result is usable but marked ``stopped_reason="stopped by user"``. ``device`` is
        ignored (CPU). ``warm_start=True`` continues boosting from the boosters held (``init_model``).
        """
        import lightgbm as lgb

        c = self.config
        if warm_start:
            require_warm_state(self, bool(self.boosters))
        else:
            self._set_masked(c.input_masks)
        x, y = self._xy(train, "training data")
        self._set_prior_correction(train)
        rng = np.random.default_rng(c.seed)
        if val is None:
            perm = rng.permutation(len(x))
            n_val = max(1, int(round(c.val_fraction * len(x))))
            x, y, xv, yv = x[perm[n_val:]], y[perm[n_val:]], x[perm[:n_val]], y[perm[:n_val]]
        else:
            xv, yv = self._xy(val, "validation data")
        if self.masked:
            x, y = self._with_masked_copies(x, y, rng)
            keep = random_input_mask(len(xv), xv.shape[1], rng, full_fraction=c.mask_full_fraction,
                                     keep_low=c.mask_keep_low, keep_high=c.mask_keep_high)
            xv = np.where(keep, xv, np.nan)
        init = dict(self.boosters) if warm_start else {}
        jobs = [(j, "point", None) for j in range(len(self.targets))]
        jobs += [(j, f"q{a:g}", a) for j in range(len(self.targets)) for a in self.levels]
        total = len(jobs) * c.n_estimators
        state = {"stopped": False, "offset": 0, "t0": time.perf_counter()}
        hist: dict[str, Any] = {"models": {}, "epochs": [], "stopped_reason": "", "n_train": int(len(x)),
                                "n_val": int(len(xv))}
        self.boosters = {}
        datasets: dict[int, tuple] = {}
        for j, kind, alpha in jobs:
            if j not in datasets:
                dtr = lgb.Dataset(x, label=y[:, j], feature_name=_safe_names(self.features), free_raw_data=False,
                                  params={"verbose": -1, "num_threads": c.num_threads})
                datasets[j] = (dtr, lgb.Dataset(xv, label=yv[:, j], reference=dtr, free_raw_data=False))
            dtr, dva = datasets[j]
            params = self._params(alpha)
            rounds = 1 if state["stopped"] else c.n_estimators
            key = f"t{j}_{kind}"
            start = init[key].current_iteration() if key in init else 0
            tracker = _Tracker(c.early_stopping_rounds, c.report_every, callbacks, stop, state, total,
                               key, hist, begin=start)
            if key in init:     # the starting trees' validation score: new rounds must beat it to be kept
                tracker.best_score = _val_metric(init[key].predict(xv, num_threads=c.num_threads), yv[:, j], alpha)
                tracker.best_iter = start - 1
            booster = lgb.train(params, dtr, num_boost_round=rounds, valid_sets=[dva], valid_names=["val"],
                                callbacks=[tracker], init_model=init.get(key))
            best = min(tracker.best_iter + 1, booster.current_iteration())
            self.boosters[key] = lgb.Booster(model_str=booster.model_to_string(num_iteration=best))
            hist["models"][key] = {"best_iteration": int(best), "best_val": tracker.best_score,
                                   "metric": "l2" if alpha is None else "quantile"}
            if key in init:
                hist["models"][key]["start_iteration"] = int(start)
            state["offset"] += c.n_estimators
        hist["seconds"] = time.perf_counter() - state["t0"]
        hist["stopped_reason"] = "stopped by user" if state["stopped"] else "early stopping / round limit"
        hist["device"] = "cpu"
        hist["input_masks"] = self.masked
        if self.prior_grid is not None:
            hist["prior"] = PRIOR_NOTE
        if warm_start:
            hist["warm_start"] = True
        self.history = hist
        return hist

    # -- inference ---------------------------------------------------------------------------------
    def posterior(self, data: CatalogData, *, n_samples: int = 1000, seed: int = 0, device: str | None = None,
                  progress: Callable[[int, int], None] | None = None) -> Posterior:
        """Samples (n, n_samples, p) from the sorted-quantile distribution; ``info`` holds ``point`` (n, p) and
        ``quantile_levels`` / ``quantiles`` (n, K, p), the sorted predicted quantiles."""
        x = self._checked_inputs(data)
        point = self.predict_point(x)
        q = self.predict_quantiles(x)
        rng = np.random.default_rng(seed)
        if self.prior_grid is not None:    # proposal-trained: reweighted to the physical prior on its grid
            samples = self._reweighted_samples(q[:, :, 0], n_samples, rng)[..., None]
            point = samples.mean(axis=1)
            q = np.moveaxis(np.quantile(samples, self.levels, axis=1), 0, 1)
        else:
            samples = np.stack([quantile_function_samples(self.levels, q[:, :, j], n_samples, rng)
                                for j in range(len(self.targets))], axis=-1)
        if progress is not None:
            progress(len(x), len(x))
        return Posterior(params=self.targets, units=self.param_units(), samples=samples, method=self.name,
                         info={"point": point, "quantile_levels": list(self.levels), "quantiles": q,
                               "n_samples": n_samples, "seed": seed})

    def _reweighted_samples(self, q: np.ndarray, n_samples: int, rng: np.random.Generator) -> np.ndarray:
        """Draws (n, n_samples) of the sorted-quantile distribution times the prior ratio on the grid: cell masses
        from its CDF on the grid (all mass beyond the grid: the end cell on that side)."""
        g, lr = self.prior_grid, self.prior_log_ratio
        knots_t, knots_q = _quantile_knots(self.levels, q)
        cdf = np.empty((len(q), g.size))
        for i in range(len(q)):
            cdf[i] = np.interp(g, knots_q[i], knots_t)
        mass = np.diff(cdf, axis=1) * np.exp(0.5 * (lr[1:] + lr[:-1]) - lr.max())
        empty = ~(mass.sum(axis=1) > 0)
        mass[empty] = 0.0
        mass[empty, np.where(q[empty, q.shape[1] // 2] < g[0], 0, g.size - 2)] = 1.0
        out = np.empty((len(q), n_samples))
        draw_from_cell_masses(mass, g, rng, out)
        return out

    def predict_point(self, x: np.ndarray) -> np.ndarray:
        """L2 point estimates (n, p) for complete inputs ``x`` (n, d) in the model's feature order."""
        self._require_trained()
        return np.stack([self.boosters[f"t{j}_point"].predict(x, num_threads=self.config.num_threads)
                         for j in range(len(self.targets))], axis=1)

    def predict_quantiles(self, x: np.ndarray) -> np.ndarray:
        """Predicted quantiles (n, K, p) at ``self.levels``, sorted along K per object (no crossing)."""
        self._require_trained()
        out = np.stack([np.stack([self.boosters[f"t{j}_q{a:g}"].predict(x, num_threads=self.config.num_threads)
                                  for a in self.levels], axis=1) for j in range(len(self.targets))], axis=-1)
        return np.sort(out, axis=1)

    def feature_importance(self, kind: str = "gain", target: int = 0) -> dict[str, float]:
        """Importance of each feature in the point model of target ``target``: ``"gain"`` (total loss reduction
        of the splits on it) or ``"split"`` (number of splits)."""
        if kind not in ("gain", "split"):
            raise GPSError("unknown importance kind", source="LightGBMModel", field="kind",
                           expected="gain | split", found=repr(kind))
        self._require_trained()
        vals = self.boosters[f"t{target}_point"].feature_importance(importance_type=kind)
        return {f: float(v) for f, v in zip(self.features, vals)}

    # -- state -------------------------------------------------------------------------------------
    def get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        self._require_trained()
        extra: dict[str, Any] = {"levels": list(self.levels), "features": list(self.features),
                                 "targets": list(self.targets), "history": self.history,
                                 "boosters": sorted(self.boosters), "input_masks": self.masked}
        for key, b in self.boosters.items():
            extra[f"lgb_{key}"] = b.model_to_string()
        return self._prior_tensors(), extra

    def set_state(self, tensors: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        import lightgbm as lgb

        levels = tuple(float(a) for a in extra.get("levels", ()))
        if levels != self.levels:
            raise GPSError("checkpoint quantile levels do not match the configuration", source="LightGBMModel",
                           field="levels", expected=repr(self.levels), found=repr(levels))
        boosters = {}
        for key in extra.get("boosters", ()):
            text = extra.get(f"lgb_{key}")
            if not isinstance(text, str):
                raise GPSError("checkpoint lacks a LightGBM model", source="LightGBMModel", field=f"lgb_{key}",
                               expected="LightGBM model text", found=type(text).__name__)
            try:
                boosters[key] = lgb.Booster(model_str=text)
            except lgb.basic.LightGBMError as err:
                raise GPSError("corrupt LightGBM model text", source="LightGBMModel", field=f"lgb_{key}",
                               expected="text written by Booster.model_to_string", found=str(err)[:200]) from None
        needed = {f"t{j}_point" for j in range(len(self.targets))}
        needed |= {f"t{j}_q{a:g}" for j in range(len(self.targets)) for a in self.levels}
        if set(boosters) != needed:
            raise GPSError("checkpoint has the wrong set of LightGBM models", source="LightGBMModel",
                           field="boosters", expected=", ".join(sorted(needed)), found=", ".join(sorted(boosters)))
        self.boosters = boosters
        self.history = dict(extra.get("history", {}))
        self._set_masked(bool(extra.get("input_masks", False)))    # checkpoints before masks refuse NaN inputs
        self._load_prior_tensors(tensors)

    # -- private -----------------------------------------------------------------------------------
    def _params(self, alpha: float | None) -> dict:
        c = self.config
        p = {"objective": "regression" if alpha is None else "quantile", "metric": "l2" if alpha is None
             else "quantile", "num_leaves": c.num_leaves, "learning_rate": c.learning_rate,
             "min_child_samples": c.min_child_samples, "num_threads": c.num_threads, "seed": c.seed,
             "deterministic": True, "force_row_wise": True, "verbose": -1}
        if alpha is not None:
            p["alpha"] = float(alpha)
        return p

    def _require_trained(self) -> None:
        if not self.boosters:
            raise GPSError("the LightGBM model has not been trained or loaded", source="LightGBMModel",
                           expected="fit() or a checkpoint", found="untrained model")

    def _set_masked(self, masked: bool) -> None:
        self.masked = bool(masked)
        self.missing_policy = "amortize" if self.masked else "refuse"

    def _with_masked_copies(self, x: np.ndarray, y: np.ndarray, rng: np.random.Generator):
        """The training rows followed by ``mask_copies`` copies with random inputs set to NaN."""
        c = self.config
        xs, ys = [x], [y]
        for _ in range(c.mask_copies):
            keep = random_input_mask(len(x), x.shape[1], rng, full_fraction=0.0, keep_low=c.mask_keep_low,
                                     keep_high=c.mask_keep_high)
            xs.append(np.where(keep, x, np.nan))
            ys.append(y)
        return np.concatenate(xs), np.concatenate(ys)

    def _checked_inputs(self, data: CatalogData) -> np.ndarray:
        x = self.inputs(data)
        src = str(data.meta.get("file") or data.meta.get("source") or "input data")
        if self.masked:
            check_missing(x, self.features, self.name, source=src)        # inf raises; NaN = missing
        else:
            refuse_missing(x, self.features, self.name, source=src)
        return x

    def _xy(self, data: CatalogData, what: str) -> tuple[np.ndarray, np.ndarray]:
        x = self._checked_inputs(data)
        src = str(data.meta.get("file") or data.meta.get("source") or what)
        missing = [t for t in self.targets if t not in data.targets]
        if data.y is None or missing:
            raise GPSError(f"{what} have no target column", source=src, field=", ".join(missing or self.targets),
                           expected="target column(s) " + ", ".join(self.targets),
                           found=", ".join(data.targets) or "none")
        y = data.y[:, [data.targets.index(t) for t in self.targets]]
        bad = ~np.isfinite(y)
        if bad.any():
            i, j = np.argwhere(bad)[0]
            raise GPSError(f"non-finite target value in row {i}", source=src, field=self.targets[j],
                           expected="finite numbers", found=str(y[i, j]))
        if len(x) < 2:
            raise GPSError(f"{what} are too small to train on", source=src, expected=">= 2 rows", found=str(len(x)))
        return x, y


def _val_metric(pred: np.ndarray, y: np.ndarray, alpha: float | None) -> float:
    """LightGBM's validation metric: mean squared error (l2) or mean pinball loss at level ``alpha``."""
    r = y - pred
    if alpha is None:
        return float(np.mean(r ** 2))
    return float(np.mean(np.maximum(alpha * r, (alpha - 1.0) * r)))


def _quantile_knots(levels: Sequence[float], quantiles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Knots (K + 2,), (n, K + 2) of the piecewise-linear quantile function with its linear tails to 0 and 1."""
    tau = np.asarray(levels, dtype=float)
    q = np.sort(np.asarray(quantiles, dtype=float), axis=1)
    lo_slope = (q[:, 1] - q[:, 0]) / (tau[1] - tau[0])
    hi_slope = (q[:, -1] - q[:, -2]) / (tau[-1] - tau[-2])
    knots_t = np.concatenate([[0.0], tau, [1.0]])
    knots_q = np.concatenate([(q[:, 0] - tau[0] * lo_slope)[:, None], q,
                              (q[:, -1] + (1.0 - tau[-1]) * hi_slope)[:, None]], axis=1)
    return knots_t, knots_q


def quantile_function_samples(levels: Sequence[float], quantiles: np.ndarray, n_samples: int,
                              rng: np.random.Generator) -> np.ndarray:
    """Inverse-transform draws (n, n_samples) from sorted quantiles ``quantiles`` (n, K) at ``levels`` (K,).

    Linear interpolation of the quantile function between the knots, linear extrapolation with the outermost
    slopes to tau = 0 and tau = 1 (uniform tails; see the module docstring).
    """
    knots_t, knots_q = _quantile_knots(levels, quantiles)
    u = rng.random((knots_q.shape[0], n_samples))
    k = np.clip(np.searchsorted(knots_t, u, side="right") - 1, 0, knots_t.size - 2)
    t0, t1 = knots_t[k], knots_t[k + 1]
    q0 = np.take_along_axis(knots_q, k, axis=1)
    q1 = np.take_along_axis(knots_q, k + 1, axis=1)
    return q0 + (u - t0) / (t1 - t0) * (q1 - q0)


# -------------------------------------------------------------------------------------------------
class _Tracker:
    """LightGBM callback: early stopping on the first validation metric, progress reports and the stop flag."""

    order = 30

    def __init__(self, patience: int, every: int, callbacks: Sequence[Callable], stop: threading.Event | None,
                 state: dict, total: int, name: str, hist: dict, begin: int = 0) -> None:
        self.patience, self.every, self.callbacks, self.stop = patience, every, callbacks, stop
        self.begin = begin      # rounds already in the starting model (warm start): reports count new rounds
        self.state, self.total, self.name, self.hist = state, total, name, hist
        self.best_score = math.inf
        self.best_iter = 0
        self.best_list: list = []

    def __call__(self, env) -> None:
        import lightgbm as lgb

        from core.inference.training import EpochReport, StopRequested

        res = env.evaluation_result_list[0]
        score = float(res[2])
        if not math.isfinite(self.best_score) or score < self.best_score - 1e-12 * abs(self.best_score):
            self.best_score, self.best_iter, self.best_list = score, env.iteration, list(env.evaluation_result_list)
        it = env.iteration - self.begin
        best = self.best_iter - self.begin
        last = env.iteration + 1 >= env.end_iteration or it - best >= self.patience
        user_stop = self.stop is not None and self.stop.is_set()
        if (it + 1) % self.every == 0 or last or user_stop:
            elapsed = time.perf_counter() - self.state["t0"]
            rep = EpochReport(self.state["offset"] + it + 1, self.total, float("nan"), score, self.best_score,
                              self.state["offset"] + best + 1, float(env.params.get("learning_rate", 0)),
                              elapsed, {"model": self.name, "round": it + 1, "metric": res[1]})
            self.hist["epochs"].append({"epoch": rep.epoch, "model": self.name, "round": it + 1,
                                        "val_loss": score, "seconds": elapsed})
            try:
                for cb in self.callbacks:
                    cb(rep)
            except StopRequested:
                user_stop = True
        if user_stop:
            self.state["stopped"] = True
        if user_stop or it - best >= self.patience:
            raise lgb.callback.EarlyStopException(self.best_iter, self.best_list)


def _safe_names(features: Sequence[str]) -> list[str]:
    """LightGBM rejects some characters in feature names (JSON specials); map them to '_'."""
    bad = set('[]{}",:')
    return ["".join("_" if ch in bad or ch.isspace() else ch for ch in f) for f in features]
