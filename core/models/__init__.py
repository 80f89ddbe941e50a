"""Model families and the model registry (``task/name`` -> :class:`ModelSpec`). Imports stay lazy."""

from core.models.base import MODELS, ModelSpec, PosteriorModel, build_model, get_model_spec, register_model

__all__ = ["MODELS", "ModelSpec", "PosteriorModel", "build_model", "get_model_spec", "register_model",
           "models_for_task"]

register_model(ModelSpec(
    "vae_hmc", "halo_mass", "Conditional beta-VAE likelihood + NUTS",
    "core.models.vae:VaeHmcModel", "core.models.vae:VaeHmcConfig",
    "A conditional beta-VAE learns p(x | log Mh, z); NumPyro NUTS samples p(log Mh, z | x) under the training "
    "prior. Missing features are marginalized (dropped from the Gaussian likelihood)."))
register_model(ModelSpec(
    "flow", "halo_mass", "Amortized normalizing flow (zuko)",
    "core.models.flows:FlowModel", "core.models.flows:FlowConfig",
    "A conditional neural spline flow q(log Mh | x) trained by maximum likelihood; posterior samples in one pass."))
register_model(ModelSpec(
    "exact", "halo_mass", "Exact posterior (simulator)",
    "core.models.baselines:ExactModel", "core.models.baselines:ExactConfig",
    "The Bayes-optimal posterior of the catalogue simulator by quadrature (only for simulated data).",
    kind="baseline", needs_simulator=True))
register_model(ModelSpec(
    "shmr", "halo_mass", "SHMR inversion",
    "core.models.baselines:ShmrModel", "core.models.baselines:ShmrConfig",
    "Inverts the stellar-to-halo-mass relation with its scatter and the halo-mass prior, using log M* only.",
    kind="baseline"))
register_model(ModelSpec(
    "lightgbm", "halo_mass", "LightGBM point + quantiles",
    "core.models.gbdt:LightGBMModel", "core.models.gbdt:LightGBMConfig",
    "Gradient-boosted trees: a point estimate plus quantile models that define the predictive distribution.",
    kind="baseline"))


def models_for_task(task: str) -> list[ModelSpec]:
    prefix = task + "/"
    return [s for k, s in MODELS.items() if k.startswith(prefix)]

register_model(ModelSpec(
    "cvae_flow", "exsitu_map", "cVAE + conditional latent flow (U-Net skips)",
    "core.models.exsitu:ExsituMapModel", "core.models.exsitu:ExsituMapConfig",
    "A conditional VAE over ex-situ fraction maps whose condition encoder (a CNN over the observable maps) feeds "
    "U-Net skips into encoder and decoder; a zuko flow on the latent, conditioned on the condition embedding, "
    "is trained on encoder outputs. Inference modes: flow (default), prior, reconstruction (lower bound)."))
register_model(ModelSpec(
    "mean_map", "exsitu_map", "Mean-map baseline (per radius)",
    "core.models.exsitu_baselines:MeanMapModel", "core.models.exsitu_baselines:MeanMapConfig",
    "Ignores the observables: per-pixel predictive distribution = the training distribution of f_ex at the same "
    "radius from the map centre (galaxy pixels).", kind="baseline"))

register_model(ModelSpec(
    "resnet", "central_mass", "Multi-branch ResNet (Gaussian head)",
    "core.models.central_mass:CentralResNetModel", "core.models.central_mass:ResNetConfig",
    "One ResNet backbone per input (image, g-r, v, sigma; each at its own size) fused into a head that outputs a "
    "calibrated Gaussian mean and variance per target, trained by negative log-likelihood."))
register_model(ModelSpec(
    "lightgbm", "central_mass", "LightGBM on summary statistics",
    "core.models.central_gbdt:CentralLightGBMModel", "core.models.central_gbdt:CentralLightGBMConfig",
    "Absolute magnitude, g-r, Sersic n, axis ratio, sigma_e, lambda_Re and R_e measured from the maps; LightGBM "
    "(num_leaves 5, 500 rounds) point + quantile models per target; gain importance.", kind="baseline"))
register_model(ModelSpec(
    "powerlaw", "central_mass", "Power law in luminosity",
    "core.models.powerlaw:PowerLawModel", "core.models.powerlaw:PowerLawConfig",
    "log y = a + b log L_r per target with Gaussian residual scatter (the seed's M*-L test).", kind="baseline"))
