"""Models of the halo_mass task with their capability flags (the model classes live in ``core.models``)."""

from __future__ import annotations

from core.models.base import ModelSpec
from core.tasks.base import Capabilities

MODELS = (
    ModelSpec(
        "vae_hmc",
        "halo_mass",
        "Conditional beta-VAE likelihood + NUTS",
        "core.models.vae:VaeHmcModel",
        "core.models.vae:VaeHmcConfig",
        "A conditional beta-VAE learns p(x | log Mh, z); NumPyro NUTS samples p(log Mh, z | x) under the training "
        "prior. Missing features are marginalized (dropped from the Gaussian likelihood).",
        capabilities=Capabilities(slow=True, hmc_refine=True, posterior_predictive=True, any_subset=True),
        smoke_config={"latent_dim": 2, "hidden": 16, "train": {"epochs": 2}, "chains": 2, "warmup": 20, "draws": 20},
    ),
    ModelSpec(
        "flow",
        "halo_mass",
        "Amortized normalizing flow (zuko)",
        "core.models.flows:FlowModel",
        "core.models.flows:FlowConfig",
        "A conditional neural spline flow q(log Mh | x) trained by maximum likelihood on randomly hidden inputs, so "
        "any subset of the inputs runs (NaN = missing); posterior samples in one pass.",
        capabilities=Capabilities(any_subset=True),
        smoke_config={"hidden": [16], "transforms": 1, "train": {"epochs": 2}},
    ),
    ModelSpec(
        "exact",
        "halo_mass",
        "Exact posterior (simulator)",
        "core.models.baselines:ExactModel",
        "core.models.baselines:ExactConfig",
        "The Bayes-optimal posterior of the catalogue simulator by quadrature (only for simulated data).",
        kind="baseline",
        needs_simulator=True,
        capabilities=Capabilities(exact=True, any_subset=True),
    ),
    ModelSpec(
        "shmr",
        "halo_mass",
        "SHMR inversion",
        "core.models.baselines:ShmrModel",
        "core.models.baselines:ShmrConfig",
        "Inverts the stellar-to-halo-mass relation with its scatter and the halo-mass prior, using log M* only.",
        kind="baseline",
    ),
    ModelSpec(
        "lightgbm",
        "halo_mass",
        "LightGBM point + quantiles",
        "core.models.gbdt:LightGBMModel",
        "core.models.gbdt:LightGBMConfig",
        "Gradient-boosted trees: a point estimate plus quantile models that define the predictive distribution; "
        "trained on copies of the rows with randomly hidden (NaN) inputs, so any subset of the inputs runs.",
        kind="baseline",
        capabilities=Capabilities(feature_importance=True, any_subset=True),
        smoke_config={"n_estimators": 20},
    ),
)
