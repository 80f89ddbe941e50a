"""Network of the ``exsitu_map`` model: a conditional VAE over f_ex maps with U-Net skips + a latent flow.

Shapes (B = batch, C = observable channels, H = W = map size, L = number of resolution levels):

* **Condition encoder** ``CondEncoder``: input (B, C + 2, H, W) = the normalized observable maps (masked pixels
  zeroed) + the mask channel (1 = no data) + a fixed radius channel (distance from the map centre in units of the
  map half-width). Returns one feature map per level, ``feats[l]`` (B, w_l, H / 2^l, W / 2^l), and an embedding
  ``h`` (B, embed) of the deepest level (the flow's context).
* **Encoder** q(z | f, c): the target map (f_ex, masked pixels zeroed, + the mask) goes down the same levels; at
  every level the condition features are concatenated (skip connections into the encoder). Returns
  (mu, logvar), each (B, latent).
* **Decoder** p(f | z, c): [z, h] -> a (w_L, H / 2^L, W / 2^L) seed map, upsampled level by level with the
  condition features concatenated at each level (U-Net skips into the decoder) and a linear function of z added
  after every level (a short latent path, so the decoder cannot rely on the skips alone). Returns per-pixel
  (m, log_s), each (B, H, W). Likelihood ``"gaussian"`` (default): f ~ N(sigmoid(m), s^2) in linear units
  (matches the pixel MAE the model is judged on; draws are clipped to [0, 1]); ``"logit_normal"``:
  logit(f) ~ N(m, s^2) (resolves tiny fractions, but spends capacity on them).
* **Latent flow** ``flow``: a zuko neural spline flow q(z | h) trained after the cVAE on encoder samples.

No BatchNorm (GroupNorm instead): training the flow with the cVAE frozen never changes cVAE statistics.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

__all__ = ["CVAEMaps", "radius_channel", "gaussian_nll", "logit_normal_nll", "kl_standard_normal", "pixel_draws"]

_EPS = 1e-4   # f_ex is clipped to [_EPS, 1 - _EPS] before the logit
_MIN_S = 2e-3  # floor of the per-pixel scale of the Gaussian likelihood [f_ex units]


class CVAEMaps(nn.Module):
    """Conditional VAE with a condition-encoder CNN, U-Net skips into encoder and decoder, and a latent flow.

    ``n_channels`` observable channels; ``map_size`` H = W (divisible by 2^(len(widths) - 1));
    ``widths`` condition/decoder channels per level (encoder uses ``enc_scale`` x these); ``latent`` dim of z;
    ``embed`` dim of the condition embedding h; ``flow_transforms``/``flow_hidden`` size the zuko NSF q(z | h).
    """

    def __init__(self, n_channels: int, map_size: int, widths: Sequence[int] = (16, 32, 48, 64), latent: int = 16,
                 embed: int = 64, enc_scale: float = 0.5, flow_transforms: int = 3,
                 flow_hidden: Sequence[int] = (128, 128), flow_bins: int = 8, stem_stride: int = 1) -> None:
        super().__init__()
        import zuko

        self.n_channels, self.map_size, self.latent, self.embed = n_channels, map_size, latent, embed
        widths = tuple(int(w) for w in widths)
        self.widths = widths
        n_lev = len(widths)
        if stem_stride not in (1, 2):
            raise ValueError("stem_stride must be 1 or 2")
        self.stem_stride = stem_stride
        self.low = map_size // (stem_stride * 2 ** (n_lev - 1))
        if self.low * stem_stride * 2 ** (n_lev - 1) != map_size or self.low < 2:
            raise ValueError(f"map_size {map_size} must be divisible by {stem_stride} x 2^{n_lev - 1} with >= 2 "
                             "pixels left")
        ew = tuple(max(4, int(round(w * enc_scale))) for w in widths)
        # condition encoder
        self.cond_in = _stem(n_channels + 2, widths[0], stem_stride)
        self.cond_down = nn.ModuleList([_down(widths[i], widths[i + 1]) for i in range(n_lev - 1)])
        self.cond_embed = nn.Sequential(nn.Flatten(), nn.Linear(widths[-1] * self.low ** 2, embed), nn.SiLU(),
                                        nn.Linear(embed, embed))
        # encoder q(z | f, c): skips from the condition features at every level
        self.enc_stem = _stem(2, ew[0], stem_stride) if stem_stride > 1 else nn.Identity()
        self.enc_in = _block((ew[0] if stem_stride > 1 else 2) + widths[0], ew[0])
        self.enc_down = nn.ModuleList([_down(ew[i], ew[i + 1], extra=widths[i + 1]) for i in range(n_lev - 1)])
        self.enc_head = nn.Sequential(nn.Flatten(), nn.Linear(ew[-1] * self.low ** 2 + embed, 2 * embed),
                                      nn.SiLU(), nn.Linear(2 * embed, 2 * latent))
        # decoder p(f | z, c)
        self.dec_seed = nn.Sequential(nn.Linear(latent + embed, 2 * embed), nn.SiLU(),
                                      nn.Linear(2 * embed, widths[-1] * self.low ** 2))
        self.dec_low = _block(2 * widths[-1], widths[-1])
        self.dec_up = nn.ModuleList([_up(widths[i + 1], widths[i], skip=widths[i]) for i in range(n_lev - 2, -1, -1)])
        self.dec_out = nn.Conv2d(widths[0], 2, kernel_size=1)
        # z is also added (as a per-channel shift) after every decoder level: a short path from the latent to
        # each scale, so the decoder cannot settle on the condition skips alone (posterior collapse)
        self.dec_z = nn.ModuleList([nn.Linear(latent, widths[-1])] +
                                   [nn.Linear(latent, widths[i]) for i in range(n_lev - 2, -1, -1)])
        self.flow = zuko.flows.NSF(features=latent, context=embed, transforms=flow_transforms, bins=flow_bins,
                                   hidden_features=list(flow_hidden))
        self.register_buffer("radius", radius_channel(map_size), persistent=False)
        # standardization of the flow's context h (set from training embeddings before the flow is trained)
        self.register_buffer("h_mean", torch.zeros(embed))
        self.register_buffer("h_std", torch.ones(embed))

    # -- parts ---------------------------------------------------------------------------------------------
    def condition(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """x (B, C, H, W) normalized with masked pixels zeroed, mask (B, H, W) bool -> (feats per level, h (B, E))."""
        m = mask.to(x.dtype)[:, None]
        r = self.radius.to(x.dtype).expand(x.shape[0], 1, -1, -1)
        f = self.cond_in(torch.cat([x * (1 - m), m, r], dim=1))
        feats = [f]
        for down in self.cond_down:
            f = down(f)
            feats.append(f)
        return feats, self.cond_embed(f)

    def encode(self, f_map: torch.Tensor, mask: torch.Tensor, feats: list[torch.Tensor],
               h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """f_map (B, H, W) in [0, 1] (fed as logit(f) / 4) -> (mu, logvar) each (B, latent)."""
        m = mask.to(f_map.dtype)[:, None]
        fc = f_map[:, None].clamp(_EPS, 1 - _EPS)
        y = 0.25 * (torch.log(fc) - torch.log1p(-fc)) * (1 - m)    # logit(f) / 4: resolves small f_ex
        e = self.enc_in(torch.cat([self.enc_stem(torch.cat([y, m], dim=1)), feats[0]], dim=1))
        for i, down in enumerate(self.enc_down):
            e = down(e, feats[i + 1])
        out = self.enc_head(torch.cat([e.flatten(1), h], dim=1))
        mu, logvar = out.chunk(2, dim=1)
        return mu, logvar.clamp(-12.0, 6.0)

    def decode(self, z: torch.Tensor, feats: list[torch.Tensor], h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z (B, latent) -> per-pixel logit-normal (m, log_s), each (B, H, W)."""
        b = z.shape[0]
        d = self.dec_seed(torch.cat([z, h], dim=1)).view(b, self.widths[-1], self.low, self.low)
        d = self.dec_low(torch.cat([d, feats[-1]], dim=1)) + self.dec_z[0](z)[:, :, None, None]
        for j, up in enumerate(self.dec_up):
            d = up(d, feats[len(feats) - 2 - j]) + self.dec_z[j + 1](z)[:, :, None, None]
        out = self.dec_out(d)
        if self.stem_stride > 1:
            out = nn.functional.interpolate(out, scale_factor=self.stem_stride, mode="bilinear", align_corners=False)
        return out[:, 0], out[:, 1].clamp(-7.0, 3.0)

    def latent_flow(self, h: torch.Tensor):
        """The conditional latent distribution q(z | h) (zuko) with h standardized by the stored statistics."""
        return self.flow((h - self.h_mean) / self.h_std)

    # -- training loss ---------------------------------------------------------------------------------------
    def elbo_loss(self, x: torch.Tensor, mask: torch.Tensor, f_map: torch.Tensor, weight: torch.Tensor,
                  beta: float, generator: torch.Generator | None = None,
                  likelihood: str = "gaussian", free_bits: float = 0.0, recon_sigma: float = 0.0) -> torch.Tensor:
        """Negative beta-ELBO per map averaged over the batch, divided by H*W.

        ``weight`` (B, H, W) is 1 on the pixels that enter the likelihood (galaxy pixels with data), else 0.
        ``recon_sigma`` > 0 (gaussian only): the decoder mean is fitted by a fixed-scale Gaussian term
        (f - mu)^2 / (2 recon_sigma^2) and the per-pixel scale s by the Gaussian NLL with mu detached, so a
        large learned s never mutes the gradient of the mean (and of the latent). ``free_bits`` > 0 replaces the KL by sum_d max(batch-mean KL_d, free_bits) (Kingma et al. 2016): the
        decoder cannot profit from ignoring the latent (posterior collapse behind the U-Net skips).
        """
        feats, h = self.condition(x, mask)
        mu, logvar = self.encode(f_map, mask, feats, h)
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        z = mu + torch.exp(0.5 * logvar) * eps
        m, log_s = self.decode(z, feats, h)
        if likelihood == "gaussian" and recon_sigma > 0:
            # mean: fixed-scale Gaussian term (its weight against the KL is set by recon_sigma, and a learned
            # scale cannot mute the gradient of the mean); scale: NLL with the mean detached (calibration only)
            pix = 0.5 * ((f_map - torch.sigmoid(m)) / recon_sigma) ** 2 + gaussian_nll(f_map, m.detach(), log_s)
        else:
            pix = (gaussian_nll if likelihood == "gaussian" else logit_normal_nll)(f_map, m, log_s)
        nll = (pix * weight).sum(dim=(1, 2))
        kl_dim = 0.5 * (mu ** 2 + logvar.exp() - 1 - logvar)          # (B, latent)
        if free_bits > 0:   # "free bits": no pressure below free_bits nats per latent dimension (batch mean)
            kl = torch.clamp(kl_dim.mean(dim=0), min=free_bits).sum()
        else:
            kl = kl_dim.sum(dim=1).mean()
        return (nll.mean() + beta * kl) / (f_map.shape[-1] * f_map.shape[-2])


def radius_channel(size: int) -> torch.Tensor:
    """(1, 1, size, size) distance of each pixel centre from the map centre, in units of the half-width."""
    c = (torch.arange(size, dtype=torch.float32) - (size - 1) / 2) / (size / 2)
    return torch.sqrt(c[None, :] ** 2 + c[:, None] ** 2)[None, None]


def logit_normal_nll(f: torch.Tensor, m: torch.Tensor, log_s: torch.Tensor) -> torch.Tensor:
    """Per-pixel negative log density of f in (0, 1) under logit(f) ~ N(m, exp(log_s)^2) (incl. the Jacobian)."""
    fc = f.clamp(_EPS, 1 - _EPS)
    y = torch.log(fc) - torch.log1p(-fc)
    return 0.5 * ((y - m) * torch.exp(-log_s)) ** 2 + log_s + 0.5 * math.log(2 * math.pi) + torch.log(fc) \
        + torch.log1p(-fc)


def gaussian_nll(f: torch.Tensor, m: torch.Tensor, log_s: torch.Tensor) -> torch.Tensor:
    """Per-pixel negative log density of f under N(sigmoid(m), s^2) in linear f units, s = exp(log_s) (floor
    ``_MIN_S``): the decoder mean stays in [0, 1] and the loss weighs errors as the pixel MAE/RMSE do."""
    s = torch.exp(log_s) + _MIN_S
    return 0.5 * ((f - torch.sigmoid(m)) / s) ** 2 + torch.log(s) + 0.5 * math.log(2 * math.pi)


def kl_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) summed over the latent dimensions: (B,)."""
    return 0.5 * (mu ** 2 + logvar.exp() - 1 - logvar).sum(dim=1)


# ---------------------------------------------------------------------------------------------------------
def _groups(c: int) -> int:
    for g in (8, 4, 2):
        if c % g == 0:
            return g
    return 1


def _stem(cin: int, cout: int, stride: int) -> nn.Module:
    if stride == 1:
        return _block(cin, cout)
    return nn.Sequential(nn.Conv2d(cin, cout, 2 * stride, stride=stride, padding=stride // 2), nn.SiLU(),
                         _block(cout, cout))


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.GroupNorm(_groups(cout), cout), nn.SiLU(),
                         nn.Conv2d(cout, cout, 3, padding=1), nn.GroupNorm(_groups(cout), cout), nn.SiLU())


class _down(nn.Module):
    """Stride-2 conv to the next level, then a conv block; ``extra`` skip channels are concatenated first."""

    def __init__(self, cin: int, cout: int, extra: int = 0) -> None:
        super().__init__()
        self.pool = nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.SiLU())
        self.block = _block(cout + extra, cout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        x = self.pool(x)
        return self.block(torch.cat([x, skip], dim=1) if skip is not None else x)


class _up(nn.Module):
    """Nearest x2 upsample + conv, concatenate the skip features, conv block."""

    def __init__(self, cin: int, cout: int, skip: int) -> None:
        super().__init__()
        self.up = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cin, cout, 3, padding=1),
                                nn.SiLU())
        self.block = _block(cout + skip, cout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.block(torch.cat([self.up(x), skip], dim=1))


def pixel_draws(m: torch.Tensor, log_s: torch.Tensor, noise: torch.Tensor | None, likelihood: str) -> torch.Tensor:
    """Per-pixel draws in [0, 1] from the decoder output; ``noise`` standard normal like m (None: the centre)."""
    if likelihood == "gaussian":
        mu = torch.sigmoid(m)
        return mu if noise is None else (mu + (torch.exp(log_s) + _MIN_S) * noise).clamp(0.0, 1.0)
    return torch.sigmoid(m if noise is None else m + torch.exp(log_s) * noise)
