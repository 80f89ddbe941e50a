"""Vectorized NumPyro NUTS over many independent small posteriors (one per galaxy) and convergence diagnostics.

:func:`run_nuts` runs NumPyro's functional NUTS (``numpyro.infer.hmc.hmc``: ``init_kernel``/``sample_kernel``
with step-size and diagonal mass-matrix window adaptation) for ``chains`` chains of every galaxy, vectorized with
``jax.vmap`` over chains and galaxies and compiled once per batch shape; galaxies are processed in batches
(the last batch padded, so only one shape is compiled). The potential is given as a generator
``potential_fn_gen(*per_galaxy_data) -> potential_fn(theta)`` with ``theta`` a flat vector (dim,).

Diagnostics follow Vehtari et al. (2021, Bayesian Analysis 16, 667): rank-normalized split R-hat (maximum of the
bulk and the folded "tail" R-hat) and the bulk effective sample size (Geyer's initial monotone sequence, via
``numpyro.diagnostics.effective_sample_size`` on the rank-normalized split chains).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

__all__ = ["NutsSettings", "NutsResult", "run_nuts", "split_rhat", "rank_normalized_rhat", "ess_bulk"]


@dataclass(frozen=True)
class NutsSettings:
    """Sampler settings (see ``VaeHmcConfig`` for the user-facing versions with bounds and help)."""

    chains: int = 4
    warmup: int = 500
    draws: int = 500
    target_accept: float = 0.8
    max_tree_depth: int = 8
    batch_size: int = 256


@dataclass
class NutsResult:
    """``samples`` (n, chains, draws, dim); per galaxy ``divergences`` (n,) post-warmup count, ``accept`` (n,)
    mean acceptance probability, ``steps`` (n,) mean leapfrog steps per draw, ``step_size`` (n, chains)."""

    samples: np.ndarray
    divergences: np.ndarray
    accept: np.ndarray
    steps: np.ndarray
    step_size: np.ndarray
    seconds: float = 0.0
    info: dict = field(default_factory=dict)


def run_nuts(potential_fn_gen: Callable, data: Sequence[np.ndarray], init: np.ndarray, settings: NutsSettings, *,
             shared: tuple = (), seed: int = 0, progress: Callable[[int, int], None] | None = None) -> NutsResult:
    """Sample every galaxy's posterior with NUTS.

    ``potential_fn_gen(*shared, *per_galaxy) -> potential_fn(theta)``. ``shared``: pytrees common to all galaxies
    (e.g. network weights; passed as arguments, so one compiled sampler serves every model of the same shapes).
    ``data``: per-galaxy arrays, each (n, ...), passed for one galaxy (leading axis removed). ``init``: initial
    positions (n, chains, dim). Returns a :class:`NutsResult`. Compiled samplers are cached per
    (``potential_fn_gen``, settings): pass a module-level function to reuse them.
    """
    import jax
    import jax.numpy as jnp

    init = np.asarray(init, dtype=np.float32)
    n, chains, dim = init.shape
    if chains != settings.chains:
        raise ValueError(f"init has {chains} chains, settings ask for {settings.chains}")
    data = [np.asarray(d, dtype=np.float32) for d in data]
    bs = min(settings.batch_size, _bucket(n))
    fn = _compiled(potential_fn_gen, settings, len(shared))
    key = jax.random.PRNGKey(seed)
    samples = np.empty((n, chains, settings.draws, dim), dtype=np.float32)
    div = np.empty(n, dtype=np.int64)
    acc = np.empty(n)
    steps = np.empty(n)
    eps = np.empty((n, chains))
    t0 = time.perf_counter()
    for start in range(0, n, bs):
        stop = min(start + bs, n)
        m = stop - start
        idx = np.r_[np.arange(start, stop), np.full(bs - m, stop - 1)]   # pad with the last galaxy
        key, sub = jax.random.split(key)
        keys = jax.random.split(sub, bs * chains).reshape(bs, chains, -1)
        out = fn(jnp.asarray(init[idx]), keys, shared, *[jnp.asarray(d[idx]) for d in data])
        z, d_, a_, s_, e_ = (np.asarray(o)[:m] for o in out)
        samples[start:stop], div[start:stop] = z, d_.sum(axis=1)
        acc[start:stop], steps[start:stop], eps[start:stop] = a_.mean(axis=1), s_.mean(axis=1), e_
        if progress is not None:
            progress(stop, n)
    return NutsResult(samples, div, acc, steps, eps, seconds=time.perf_counter() - t0,
                      info={"batch_size": bs, **settings.__dict__})


def split_rhat(x: np.ndarray) -> np.ndarray:
    """Split R-hat (Gelman et al. BDA3) of draws ``x`` (n, chains, draws) -> (n,). No rank normalization."""
    x = np.asarray(x, dtype=np.float64)
    half = x.shape[2] // 2
    s = np.concatenate([x[:, :, :half], x[:, :, x.shape[2] - half:]], axis=1)   # (n, 2c, half)
    w = s.var(axis=2, ddof=1).mean(axis=1)
    b_over_n = s.mean(axis=2).var(axis=1, ddof=1)
    var_plus = (half - 1) / half * w + b_over_n
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.sqrt(var_plus / w)
    return np.where(w > 0, r, np.inf)


def rank_normalized_rhat(x: np.ndarray) -> np.ndarray:
    """Vehtari et al. (2021) R-hat: max(bulk, folded tail) of rank-normalized split chains. ``x`` (n, c, s)."""
    x = np.asarray(x, dtype=np.float64)
    bulk = split_rhat(_rank_normalize(x))
    med = np.median(x.reshape(len(x), -1), axis=1)[:, None, None]
    tail = split_rhat(_rank_normalize(np.abs(x - med)))
    return np.maximum(bulk, tail)


def ess_bulk(x: np.ndarray) -> np.ndarray:
    """Bulk effective sample size of draws ``x`` (n, chains, draws) -> (n,)."""
    from numpyro.diagnostics import effective_sample_size

    x = np.asarray(x, dtype=np.float64)
    half = x.shape[2] // 2
    s = np.concatenate([x[:, :, :half], x[:, :, x.shape[2] - half:]], axis=1)
    z = _rank_normalize(s)
    return np.asarray(effective_sample_size(np.moveaxis(z, 0, -1)), dtype=np.float64)


# ---------------------------------------------------------------------------------------------------
def _rank_normalize(x: np.ndarray) -> np.ndarray:
    """Normal scores of the pooled ranks per galaxy: Phi^-1((r - 3/8) / (S + 1/4)). ``x`` (n, c, s)."""
    from scipy.special import ndtri

    n = x.shape[0]
    flat = x.reshape(n, -1)
    ranks = np.empty_like(flat)
    order = np.argsort(flat, axis=1, kind="stable")
    np.put_along_axis(ranks, order, np.arange(1, flat.shape[1] + 1, dtype=np.float64)[None], axis=1)
    return ndtri((ranks - 0.375) / (flat.shape[1] + 0.25)).reshape(x.shape)


def _bucket(m: int) -> int:
    return max(8, 1 << (m - 1).bit_length())


_CACHE: dict = {}


def _compiled(potential_fn_gen: Callable, s: NutsSettings, n_shared: int):
    """jit(vmap over galaxies (vmap over chains (one chain))) -> (draws, divergences, accept, steps, step size)."""
    key = (potential_fn_gen, s, n_shared)
    if key in _CACHE:
        return _CACHE[key]
    import jax
    from jax import lax
    from numpyro.infer.hmc import hmc

    from core.device import jax_compilation_cache

    jax_compilation_cache()

    init_kernel, sample_kernel = hmc(potential_fn_gen=potential_fn_gen, algo="NUTS")

    def one_chain(theta0, rng_key, *args):
        state = init_kernel(theta0, num_warmup=s.warmup, target_accept_prob=s.target_accept,
                            max_tree_depth=s.max_tree_depth, model_args=args, rng_key=rng_key)

        def warm(st, _):
            return sample_kernel(st, model_args=args), None

        def draw(st, _):
            st = sample_kernel(st, model_args=args)
            return st, (st.z, st.diverging, st.accept_prob, st.num_steps)

        state, _ = lax.scan(warm, state, None, length=s.warmup)
        state, (z, diverging, accept, steps) = lax.scan(draw, state, None, length=s.draws)
        return z, diverging.sum(), accept.mean(), steps.mean(), state.adapt_state.step_size

    def batched(theta0, keys, shared, *args):
        chain_axes = (0, 0) + (None,) * (n_shared + len(args))
        per_galaxy = jax.vmap(one_chain, in_axes=chain_axes)
        galaxy_axes = (0, 0) + (None,) * n_shared + (0,) * len(args)
        return jax.vmap(per_galaxy, in_axes=galaxy_axes)(theta0, keys, *shared, *args)

    fn = jax.jit(batched)
    if len(_CACHE) > 16:
        _CACHE.clear()
    _CACHE[key] = fn
    return fn
