"""Galaxy Posterior Studio engine: simulators, readers, models, inference and metrics (no UI code)."""

__version__ = "0.1.0"
