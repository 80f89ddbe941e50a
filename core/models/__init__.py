"""Model families and the model registry (``task/name`` -> :class:`ModelSpec`). Imports stay lazy.

Registrations live in the task packages (``core/tasks/<name>/``), each spec with its capability flags; the registry
fills itself from them on the first lookup.
"""

from core.models.base import (MODELS, ModelSpec, PosteriorModel, build_model, get_model_spec, models_for_task,
                              register_model)

__all__ = ["MODELS", "ModelSpec", "PosteriorModel", "build_model", "get_model_spec", "register_model",
           "models_for_task"]
