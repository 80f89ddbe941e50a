"""Pure-JAX forward pass of the VAE decoder from exported torch weights (for NumPyro's likelihood).

The torch decoder (``core.models.vae._CVAE``) is an MLP ``[y, z] -> hidden (SiLU) ... -> out`` plus a learned
per-feature ``log_sigma``. :func:`export_decoder` turns its weights into a dict of float32 numpy arrays
(``dec.{i}.weight`` (out, in), ``dec.{i}.bias`` (out,), ``log_sigma`` (d,)); :func:`decoder_apply` evaluates the
same function in JAX. ``tests/test_vae_hmc.py`` checks the two against each other to 1e-5.
"""

from __future__ import annotations

import numpy as np

__all__ = ["export_decoder", "decoder_apply", "gaussian_nll"]


def export_decoder(module) -> dict[str, np.ndarray]:
    """Weights of a torch ``_CVAE``'s decoder as float32 numpy arrays (keys ``dec.{i}.weight/bias``, ``log_sigma``)."""
    import torch

    out: dict[str, np.ndarray] = {}
    linears = [m for m in module.dec if isinstance(m, torch.nn.Linear)]
    for i, lin in enumerate(linears):
        out[f"dec.{i}.weight"] = lin.weight.detach().cpu().numpy().astype(np.float32)
        out[f"dec.{i}.bias"] = lin.bias.detach().cpu().numpy().astype(np.float32)
    out["log_sigma"] = module.log_sigma.detach().cpu().numpy().astype(np.float32)
    return out


def decoder_apply(params: dict, y, z, heteroscedastic: bool = False):
    """Decoder mean and log sigma of the standardized features.

    ``y`` (...,) standardized target, ``z`` (..., k) latent -> ``(mean (..., d), log_sigma (..., d))``.
    """
    import jax
    import jax.numpy as jnp

    h = jnp.concatenate([jnp.asarray(y)[..., None], jnp.asarray(z)], axis=-1)
    n_layers = sum(1 for k in params if k.startswith("dec.") and k.endswith(".weight"))
    for i in range(n_layers):
        h = h @ params[f"dec.{i}.weight"].T + params[f"dec.{i}.bias"]
        if i < n_layers - 1:
            h = jax.nn.silu(h)
    log_sigma = jnp.broadcast_to(params["log_sigma"], h.shape[:-1] + params["log_sigma"].shape)
    if heteroscedastic:
        d = params["log_sigma"].shape[0]
        mean, extra = h[..., :d], h[..., d:]
        return mean, log_sigma + _soft_clip(extra)
    return h, log_sigma


def gaussian_nll(x, mask, mean, log_sigma):
    """Negative log likelihood summed over observed features: ``x``, ``mask`` (..., d) -> (...,)."""
    import jax.numpy as jnp

    r = (x - mean) * jnp.exp(-log_sigma)
    return jnp.sum(mask * (0.5 * r * r + log_sigma + 0.5 * np.log(2 * np.pi)), axis=-1)


def _soft_clip(v, limit: float = 3.0):
    """Smoothly bound a log-sigma correction to (-limit, limit) (same as the torch side)."""
    import jax.numpy as jnp

    return limit * jnp.tanh(v / limit)
