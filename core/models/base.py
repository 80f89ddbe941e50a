"""The interface every posterior model implements, and the model registry.

A model is built from a frozen config and the list of input features it uses (any subset of the task's inputs,
fixed at training time). It trains with :meth:`PosteriorModel.fit`, answers :meth:`PosteriorModel.posterior`
and exports its learned state as a dict of numpy arrays (safetensors) plus a JSON-able dict (normalization,
LightGBM model text, ...). Checkpoints (``core.inference.checkpoints``) store exactly that state.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Literal, Sequence

import numpy as np

from core.config import Config
from core.data.catalog import CatalogData
from core.errors import GPSError
from core.tasks.base import MODELS, Capabilities, get_model_spec, models_for_task, register_model

__all__ = ["PosteriorModel", "ModelSpec", "MODELS", "get_model_spec", "build_model", "check_missing",
           "models_for_task", "register_model", "set_torch_state", "random_input_mask", "warm_start_error",
           "require_warm_state"]


class PosteriorModel:
    """Base class. Subclasses set ``name``, ``config_cls`` and ``missing_policy`` and implement the methods.

    Warm start: ``fit(train, val, ..., warm_start=True)`` continues from the state the model already holds (set by
    :meth:`set_state` from a checkpoint, or by an earlier ``fit``) instead of re-initialising it, e.g. to
    fine-tune a bundled model on a user's labelled catalogue. A subclass opts in by accepting ``warm_start`` in its
    ``fit``; for every other model ``fit(..., warm_start=True)`` raises a :class:`GPSError` ("model X cannot
    warm-start"; see :attr:`supports_warm_start`).
    """

    name: ClassVar[str] = ""
    config_cls: ClassVar[type[Config]] = Config
    #: what happens to a galaxy with a NaN feature (or a feature column the data lack): "marginalize" (dropped
    #: from the likelihood), "amortize" (the model was trained on randomly hidden inputs and conditions on the
    #: observed ones) or "refuse"
    missing_policy: ClassVar[Literal["marginalize", "amortize", "refuse"]] = "refuse"
    #: True when ``fit`` accepts ``warm_start=True`` (set automatically from the subclass's ``fit`` signature)
    supports_warm_start: ClassVar[bool] = False
    #: True when this trained model gives posteriors under the simulator's physical prior although its training set
    #: was drawn from a proposal (see :func:`core.data.simulators.prior_correction`); held-out scores then need a
    #: test set drawn from the physical prior
    physical_prior: bool = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        fit = cls.__dict__.get("fit")
        if fit is None:
            return
        if "warm_start" in inspect.signature(fit).parameters:
            cls.supports_warm_start = True
            return
        cls.supports_warm_start = False

        @functools.wraps(fit)
        def fit_without_warm_start(self, *args: Any, warm_start: bool = False, **kw: Any):
            if warm_start:
                raise warm_start_error(self)
            return fit(self, *args, **kw)

        cls.fit = fit_without_warm_start

    def __init__(self, config: Config, features: Sequence[str], targets: Sequence[str],
                 units: dict[str, str] | None = None) -> None:
        if not isinstance(config, self.config_cls):
            config = self.config_cls.from_dict(config if isinstance(config, dict) else config.to_dict())
        self.config = config
        self.features = tuple(features)
        self.targets = tuple(targets)
        self.units = dict(units or {})
        self.history: dict = {}
        self.card: dict = {}            # checkpoint metadata once saved/loaded (model card)
        self.task_name: str = getattr(self, "task_name", "") or ""

    # -- to implement ------------------------------------------------------------------------------
    def fit(self, train: CatalogData, val: CatalogData | None = None, *, callbacks: Sequence[Callable] = (),
            stop: threading.Event | None = None, device: str | None = None, warm_start: bool = False) -> dict:
        """Train on ``train`` (features ordered as ``self.features``); return a JSON-able history dict.

        ``warm_start=True`` continues from the weights the model holds (models with ``supports_warm_start``)."""
        raise NotImplementedError

    def posterior(self, data: CatalogData, *, n_samples: int = 1000, seed: int = 0, device: str | None = None,
                  progress: Callable[[int, int], None] | None = None):
        """Return a :class:`core.inference.posterior.Posterior` for every object of ``data``."""
        raise NotImplementedError

    def get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """(arrays for safetensors, JSON-able extra state)."""
        raise NotImplementedError

    def set_state(self, tensors: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        raise NotImplementedError

    # -- shared helpers -----------------------------------------------------------------------------
    def inputs(self, data: CatalogData) -> np.ndarray:
        """Feature matrix in the model's feature order; a clear error if the data lack a feature.

        A model that handles missing values (``missing_policy`` "marginalize" or "amortize") gets the features the
        data lack as NaN columns, as long as the data have at least one of its features."""
        missing = [f for f in self.features if f not in data.features]
        if missing and self.missing_policy != "refuse" and len(missing) < len(self.features):
            have = [f for f in self.features if f in data.features]
            x = np.full((len(data), len(self.features)), np.nan)
            x[:, [self.features.index(f) for f in have]] = data.select_features(have).x
            return x
        if missing:
            src = data.meta.get("file") or data.meta.get("source") or "input data"
            raise GPSError(f"the model {self.name!r} was trained on feature(s) that these data do not have",
                           source=str(src), field=", ".join(missing),
                           expected=", ".join(self.features), found=", ".join(data.features))
        return data.select_features(self.features).x

    def param_units(self) -> tuple[str, ...]:
        return tuple(self.units.get(t, "") for t in self.targets)


def warm_start_error(model: PosteriorModel) -> GPSError:
    """The error for ``fit(..., warm_start=True)`` on a model that cannot continue training."""
    return GPSError(f"model {model.name!r} cannot warm-start: it is always trained from scratch",
                    source=type(model).__name__, field="warm_start",
                    expected="warm_start=False, or a model that can continue training (flow, lightgbm, vae_hmc)",
                    found="warm_start=True")


def require_warm_state(model: PosteriorModel, trained: bool) -> None:
    """Raise when ``warm_start=True`` but the model holds no weights to continue from."""
    if not trained:
        raise GPSError(f"warm start needs a trained model: load a checkpoint into the {model.name!r} model "
                       "(set_state) or fit it first", source=type(model).__name__, field="warm_start",
                       expected="a model with weights", found="untrained model")


def random_input_mask(n: int, d: int, rng: np.random.Generator, *, full_fraction: float, keep_low: float,
                      keep_high: float) -> np.ndarray:
    """Random observed-input mask (n, d) bool for training on any subset of the inputs.

    A fraction ``full_fraction`` of the rows keeps every input; each other row draws a keep probability uniformly
    in [``keep_low``, ``keep_high``] and keeps each input independently with it (so every subset, from one input
    to all of them, is seen in training). Used by the amortized models (flow, LightGBM) to learn q(y | x_S).
    """
    keep_p = rng.uniform(keep_low, keep_high, size=(n, 1))
    mask = rng.random((n, d)) < keep_p
    mask[rng.random(n) < full_fraction] = True
    return mask


def check_missing(x: np.ndarray, features: Sequence[str], model_name: str, source: str = "input data") -> np.ndarray:
    """Validate values: inf is always an error; NaN rows are returned as a mask (caller decides).

    Returns a boolean array (n,) that is True where the row has at least one NaN.
    """
    x = np.asarray(x, dtype=float)
    bad = np.isinf(x)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise GPSError(f"{int(bad.sum())} infinite value(s); first in row {i}", source=source,
                       field=features[j], expected="finite numbers (NaN marks a missing value)",
                       found=str(x[i, j]))
    return np.isnan(x).any(axis=1)


def refuse_missing(x: np.ndarray, features: Sequence[str], model_name: str, source: str = "input data") -> None:
    """Raise a clear error if any row has a NaN: for models that cannot marginalize a missing feature."""
    rows = check_missing(x, features, model_name, source)
    if rows.any():
        i = int(np.flatnonzero(rows)[0])
        cols = [features[j] for j in np.flatnonzero(np.isnan(x[i]))]
        raise GPSError(f"{int(rows.sum())} galaxy(ies) have missing (NaN) features; the {model_name!r} model cannot "
                       f"marginalize them and never imputes. First: row {i}", source=source,
                       field=", ".join(cols),
                       expected="complete rows, or use a model that marginalizes missing features "
                                "(vae_hmc, exact), or train on the features that are present",
                       found="NaN")


@dataclass(frozen=True)
class ModelSpec:
    """Registry entry: ``factory`` is 'module:Class' imported on demand (heavy imports stay lazy)."""

    name: str
    task: str
    title: str
    factory: str
    config_factory: str
    description: str = ""
    kind: Literal["model", "baseline"] = "model"
    needs_simulator: bool = False   # the exact posterior needs the simulator config of the data
    capabilities: Capabilities = field(default_factory=Capabilities)
    smoke_config: dict = field(default_factory=dict)   # seconds-long settings for the contract test (tiny fit)

    def model_class(self) -> type[PosteriorModel]:
        mod, cls = self.factory.split(":")
        return getattr(importlib.import_module(mod), cls)

    def config_class(self) -> type[Config]:
        mod, cls = self.config_factory.split(":")
        return getattr(importlib.import_module(mod), cls)


def build_model(task: str, name: str, config: Config | dict | None, features: Sequence[str],
                targets: Sequence[str], units: dict[str, str] | None = None) -> PosteriorModel:
    spec = get_model_spec(task, name)
    cfg_cls = spec.config_class()
    cfg = config if isinstance(config, cfg_cls) else cfg_cls.from_dict(config or {})
    model = spec.model_class()(cfg, features, targets, units)
    model.task_name = spec.task
    return model


def set_torch_state(module, tensors: dict[str, np.ndarray], prefix: str, source: str, config: Config) -> None:
    """Load the ``prefix``-ed arrays of a checkpoint into a torch ``module`` (then eval mode); a mismatch raises a
    GPSError naming the configuration instead of torch's traceback. The one loader every torch model uses."""
    import torch

    sd = {k[len(prefix):]: torch.as_tensor(np.asarray(v)) for k, v in tensors.items() if k.startswith(prefix)}
    try:
        module.load_state_dict(sd)
    except RuntimeError as err:
        raise GPSError(f"checkpoint weights do not match the {source} configuration", source=source,
                       field="weights", expected=f"{type(config).__name__} {config.to_json()}",
                       found=str(err).splitlines()[0]) from None
    module.eval()
