"""The small surface that the app pages and the CLI call: data, models, inference, evaluation, export.

Pages stay thin: widgets -> a config -> one call here -> figures from ``core.viz``. Nothing here imports
streamlit; long calls accept ``progress``/``callbacks`` and a ``stop`` event so the UI never freezes. Every
task-specific step goes through the task's :class:`~core.tasks.base.Task` object (data adapter, defaults, writer)
and every model-specific one through its registered capability flags: no task or model names here.
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from core.config import Config
from core.errors import GPSError
from core.data.access import MAX_UPLOAD_BYTES, read_data, read_table, split, suggest_mapping, table_to_catalog
from core.inference import bundled as _bundled
from core.inference.checkpoints import checkpoint_bytes, load_checkpoint, save_checkpoint
from core.tasks import TASKS, Capabilities, Task, TaskSpec, get_task, get_task_obj
from core.tasks.base import get_model_spec, models_for_task

__all__ = [
    "list_tasks",
    "list_models",
    "model_config_class",
    "capabilities",
    "task_obj",
    "simulate",
    "demo_data",
    "prior_caveat",
    "read_table",
    "read_data",
    "prepare",
    "suggest_mapping",
    "table_to_catalog",
    "split",
    "train",
    "checkpoint_bytes",
    "save_checkpoint",
    "load_checkpoint",
    "bundled_checkpoints",
    "load_bundled",
    "posterior",
    "exact_posterior",
    "refine_hmc",
    "posterior_predictive",
    "feature_importance",
    "evaluate",
    "export_posterior",
    "provenance_of",
    "MAX_UPLOAD_BYTES",
    "CHECKPOINT_DIR",
]

CHECKPOINT_DIR = _bundled.CHECKPOINT_DIR


# --------------------------------------------------------------------------------------------------- tasks
def list_tasks() -> list[TaskSpec]:
    return [TASKS.get(n) for n in TASKS.names()]


def task_obj(task: str) -> Task:
    """The :class:`Task` of ``task`` (data adapter, defaults, writer, benchmark)."""
    return get_task_obj(task)


def list_models(task: str, kind: str | None = None):
    """Model specs registered for ``task`` (``kind``: "model" | "baseline" | None for all)."""
    return [s for s in models_for_task(task) if kind is None or s.kind == kind]


def model_config_class(task: str, model: str) -> type[Config]:
    return get_model_spec(task, model).config_class()


def capabilities(model) -> Capabilities:
    """The registered capability flags of a built or loaded ``model``."""
    return get_model_spec(model.task_name, model.name).capabilities


# --------------------------------------------------------------------------------------------------- data
def simulate(task: str, n: int, seed: int = 0, config: dict | Config | None = None, use_cache: bool = True):
    """Simulate ``n`` objects for ``task`` with its default simulator, in the task's data container (map tasks give
    every galaxy's projections). Cached by config hash outside the repo."""
    from core.data.simulators import SIMULATORS

    spec = SIMULATORS.get(get_task(task).simulator)
    cfg = config if isinstance(config, spec.config_cls) else spec.config_cls.from_dict(config or {})
    if n < 1:
        raise GPSError("number of objects must be positive", field="n", expected=">= 1", found=str(n))
    return get_task_obj(task).data.simulate(n, seed, cfg, use_cache)


def demo_data(task: str):
    """The bundled demo set: a fixed simulated sample (same seed for every user)."""
    d = get_task_obj(task).defaults
    return simulate(task, d.demo_size, d.demo_seed)


def prepare(model, data):
    """``data`` as ``model`` runs on it: its inputs selected and (maps) regridded onto its grid; a GPSError names
    the inputs a file lacks and the bundled models that can run on it. Idempotent: prepared data come back as they
    are (so a page that prepares once never prepares, or notes, twice)."""
    key = [model.task_name, model.name, list(model.features), model.config.to_json(), str(model.card.get("created"))]
    meta = getattr(data, "meta", None)
    if isinstance(meta, dict) and meta.get("prepared_for") == key:
        return data
    out = get_task_obj(model.task_name).data.prepare(model, data)
    if out is not data and isinstance(getattr(out, "meta", None), dict):
        out.meta["prepared_for"] = key
    return out


# --------------------------------------------------------------------------------------------------- models
def train(
    task: str,
    model: str,
    data,
    config: dict | Config | None = None,
    *,
    features: Sequence[str] | None = None,
    val=None,
    callbacks: Sequence[Callable] = (),
    stop: threading.Event | None = None,
    device: str | None = None,
):
    """Build and train a model on ``data`` (its features, or the ``features`` subset); returns the model."""
    from core.inference.sanity import training_sets
    from core.models import build_model

    t = get_task(task)
    data, val = training_sets(data, val, t.target_names)  # rows refused by validation are never trained on
    feats = tuple(features) if features else tuple(f for f in t.input_names if f in data.features)
    if not feats:
        raise GPSError(
            "no input features to train on", expected=", ".join(t.input_names), found=", ".join(data.features)
        )
    units = data.units if isinstance(data.units, dict) else dict(zip(data.features, data.units))
    m = build_model(task, model, config, feats, t.target_names, units)
    m.history = (
        m.fit(
            data.select_features(feats),
            None if val is None else val.select_features(feats),
            callbacks=callbacks,
            stop=stop,
            device=device,
        )
        or {}
    )
    m.card = {"provenance": provenance_of(data), "device": m.history.get("device", "cpu")}
    from core.data.ood import distribution_of

    dist = distribution_of(data, feats)  # per-input quantiles: the upload checks compare against these
    if dist:
        m.card["input_distribution"] = dist
    return m


def prior_caveat(model, data) -> str | None:
    """A warning when ``data`` were drawn from a proposal (e.g. flat in log Mh) but ``model`` gives posteriors under
    the physical prior: scores on such data are not calibration tests (None when nothing to say)."""
    from core.data.simulators import prior_correction

    corr = prior_correction(data)
    if corr is None or not getattr(model, "physical_prior", False):
        return None
    phys = ", ".join(f"{k}={v}" for k, v in corr["physical"].items())
    return (
        f"These objects were simulated from a proposal prior, but the model's posteriors use the physical prior "
        f"({phys}): coverage and bias here are not calibration tests. Simulate data with {phys} to evaluate it."
    )


def provenance_of(data) -> dict:
    """Training-data provenance stored in a checkpoint (JSON-able meta, size, fingerprint)."""
    prov = {k: v for k, v in data.meta.items() if isinstance(v, (str, int, float, bool, dict, list))}
    prov.pop("prepared_for", None)
    prov["n_objects"] = len(data)
    prov["fingerprint"] = data.fingerprint()
    return prov


def bundled_checkpoints(task: str | None = None) -> list[dict]:
    """Metadata of the checkpoints shipped in :data:`CHECKPOINT_DIR` (path, task, model, test metrics)."""
    return _bundled.bundled_checkpoints(task, CHECKPOINT_DIR)


def load_bundled(task: str, model: str | None = None, data=None):
    """Load a bundled checkpoint of ``task``: of ``model``, or the task's models in their default order. With
    ``data``, the first whose inputs ``data`` has (e.g. the kinematics-only ex-situ model for a MaNGA DAP file that
    has no age or metallicity maps); when none fits, the default one (its :func:`prepare` then says what is missing).
    """
    items = bundled_checkpoints(task)
    if not items:
        raise GPSError(f"no bundled checkpoint for task {task!r}", source=str(CHECKPOINT_DIR))
    order = list(get_task(task).methods)
    if model is not None:
        items = [i for i in items if i["model"] == model]
        if not items:
            raise GPSError(f"no bundled checkpoint for model {model!r}", source=str(CHECKPOINT_DIR))
    items.sort(
        key=lambda i: (
            order.index(i["model"]) if i["model"] in order else 99,
            -len(i["metadata"].get("features") or ()),
            i["file"],
        )
    )
    if data is not None:
        have = set(data.features)
        fits = [i for i in items if set(i["metadata"].get("features") or ()) <= have]
        items = fits or items
    return load_checkpoint(items[0]["path"], expected_task=task)


# --------------------------------------------------------------------------------------------------- inference
def posterior(
    model,
    data,
    *,
    n_samples: int = 1000,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    device: str | None = None,
    **options,
):
    """Posterior of every object of ``data`` under ``model`` (a :class:`Posterior`, or a ``MapPosterior`` for map
    targets). ``data`` is first put in the form the model runs on (:func:`prepare`, a no-op on prepared data);
    ``options`` go to the model (e.g. ``mode="prior"`` for a model whose capabilities list inference modes). Rows
    refused by validation come back masked with their reason, and non-finite draws are never returned as results.
    """
    from core.inference.sanity import checked_posterior

    return checked_posterior(
        model, prepare(model, data), n_samples=n_samples, seed=seed, progress=progress, device=device, **options
    )


def exact_posterior(data):
    """The simulator's exact posterior when ``data`` were simulated with a simulator that has one, else None."""
    from core.data.simulators import exact_posterior as _exact

    return _exact(data)


def refine_hmc(model, data, *, seed: int = 0, progress=None):
    """NUTS for the objects of ``data`` (models with the ``hmc_refine`` capability): samples, R-hat, ESS,
    divergences, chains (every post-warm-up draw)."""
    if not capabilities(model).hmc_refine:
        raise GPSError(f"the {model.name!r} model has no HMC refinement", expected="a model with NUTS refinement")
    return model.posterior(data, n_samples=None, seed=seed, progress=progress)


def posterior_predictive(model, data, post, n: int = 200, seed: int = 0) -> np.ndarray:
    """Observables replicated from the posterior: (n_objects, n, d) in the model's feature order."""
    if not capabilities(model).posterior_predictive:
        raise GPSError(
            f"the {model.name!r} model has no generative likelihood for predictive checks",
            expected="a model with a generative likelihood",
        )
    return model.posterior_predictive(data, post, n, seed)


def feature_importance(model) -> dict | None:
    """Gain importance of a model with the ``feature_importance`` capability (name -> gain, or target -> that),
    else None."""
    return model.feature_importance(kind="gain") if capabilities(model).feature_importance else None


# --------------------------------------------------------------------------------------------------- evaluation
def evaluate(post, data, exact=None, bin_edges: Sequence[float] | None = None) -> dict[str, Any]:
    """Scores of ``post`` against the truth in ``data`` (:func:`core.metrics.evaluate.evaluate`)."""
    from core.metrics.evaluate import evaluate as _evaluate

    return _evaluate(post, data, exact, bin_edges)


# --------------------------------------------------------------------------------------------------- export
def export_posterior(
    post,
    data,
    fmt: str = "csv",
    *,
    task: str,
    include_samples: bool = False,
    n_samples: int = 1000,
    provenance: dict | None = None,
) -> bytes:
    """Posterior summaries (+ samples) with units and provenance as CSV, FITS or HDF5 bytes, written by the task's
    result writer (map posteriors: FITS / HDF5 on the model grid of the prepared ``data``, as ``predict`` does)."""
    writer = get_task_obj(task).writer
    if fmt not in writer.formats:
        raise GPSError(
            f"{task} posteriors are written as {writer.what}",
            field="format",
            expected=" | ".join(writer.formats),
            found=fmt,
        )
    with tempfile.TemporaryDirectory(prefix="gps-export-") as tmp:
        path = Path(tmp) / f"posterior.{fmt}"
        writer(
            post, data, str(path), fmt, provenance=provenance or {}, save_samples=include_samples, n_samples=n_samples
        )
        return path.read_bytes()
