"""Misspecification per object: how typical a row's observed inputs are under the model's training distribution.

One mechanism for every catalogue task and model (tables whose container has a 2-D feature matrix ``x``):

* at training time a **reference sample** of the training inputs (up to :data:`N_REFERENCE` complete rows, in the
  model's feature order, standardised by their own mean and standard deviation) is kept with the model
  (:func:`attach_reference`; ``model.typicality``) and stored in the checkpoint as ``typicality.safetensors`` plus
  JSON meta (``metadata.json:typicality``; never a pickle). Checkpoints without one (older bundled files) get one
  from the simulator configuration in their provenance, simulated through the task's adapter (cached by
  configuration hash outside the repository, :mod:`core.data.cache`);
* the score of a row is a **k-NN conformal p-value**: with ``d(x)`` the distance from x to its k-th nearest
  reference row and ``d_i`` the leave-one-out k-th-neighbour distance of reference row i (to the other reference
  rows), ``p = (1 + #{i: d_i >= d(x)}) / (N + 1)``. For a row drawn from the training distribution, p is (up to
  the N vs N-1 neighbour asymmetry) uniform on (0, 1]; an input far from everything the model was trained on gets
  p ~ 1/(N+1). Distances use only the row's **observed** inputs (NaN = missing): the reference distances are
  computed over the same inputs, so rows with different missing inputs are each scored in their own space (no
  rescaling by the number of inputs is needed: both sides of the comparison live in the same dimensions);
* ``atypical`` flags ``p < alpha`` (:data:`ALPHA` = 0.01: 1% of typical rows are flagged by chance).

The scores go into the posterior's per-row diagnostics (``typicality_p``, ``atypical``), so the Posterior table,
the Export files and the CLI ``predict`` output carry them through one path (:func:`annotate`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "ALPHA",
    "K_NEIGHBOURS",
    "N_REFERENCE",
    "Reference",
    "build_reference",
    "attach_reference",
    "reference_for",
    "typicality_p",
    "annotate",
    "summary",
    "scores_by_typicality",
    "DESCRIPTION",
]

ALPHA = 0.01
K_NEIGHBOURS = 10
N_REFERENCE = 4000
DESCRIPTION = (
    "typicality_p: k-NN conformal p-value of the row's observed inputs under the model's training inputs "
    f"(k={K_NEIGHBOURS}, standardised, missing inputs left out; ~U(0,1) for rows like the training set); "
    f"atypical = 1 when typicality_p < {ALPHA:g}"
)


@dataclass
class Reference:
    """Standardised reference rows ``z`` (N, d) of ``features``; ``center``/``scale`` map raw inputs to z."""

    z: np.ndarray
    features: tuple[str, ...]
    center: np.ndarray
    scale: np.ndarray
    k: int = K_NEIGHBOURS
    source: str = "training data"
    _trees: dict = field(default_factory=dict, repr=False)

    @property
    def n(self) -> int:
        return int(self.z.shape[0])

    def meta(self) -> dict[str, Any]:
        """JSON part (stored as ``metadata.json:typicality``)."""
        return {
            "features": list(self.features),
            "center": [float(v) for v in self.center],
            "scale": [float(v) for v in self.scale],
            "k": int(self.k),
            "n": self.n,
            "source": self.source,
            "alpha": ALPHA,
        }

    @classmethod
    def from_stored(cls, z: np.ndarray, meta: dict) -> "Reference":
        z = np.asarray(z, dtype=np.float64)
        feats = tuple(meta["features"])
        if z.ndim != 2 or z.shape[1] != len(feats) or not np.isfinite(z).all():
            raise ValueError(f"reference of shape {z.shape} does not fit {len(feats)} features")
        return cls(
            z=z,
            features=feats,
            center=np.asarray(meta["center"], float),
            scale=np.asarray(meta["scale"], float),
            k=int(meta.get("k", K_NEIGHBOURS)),
            source=str(meta.get("source", "training data")),
        )

    def _space(self, dims: tuple[int, ...]):
        """KD-tree of the reference over ``dims`` and the sorted leave-one-out k-th-neighbour distances."""
        if dims not in self._trees:
            from scipy.spatial import cKDTree

            r = self.z[:, list(dims)]
            tree = cKDTree(r)
            k = min(self.k, self.n - 1)
            d_loo = tree.query(r, k=k + 1)[0][:, -1]  # the first neighbour is the row itself
            self._trees[dims] = (tree, np.sort(d_loo), k)
        return self._trees[dims]


def _matrix(data, features) -> np.ndarray | None:
    """Inputs of ``data`` in the order ``features`` (NaN for an input the data lack); None for non-tables."""
    x = getattr(data, "x", None)
    have = getattr(data, "features", None)
    if not isinstance(x, np.ndarray) or x.ndim != 2 or have is None:
        return None
    out = np.full((x.shape[0], len(features)), np.nan)
    for j, f in enumerate(features):
        if f in have:
            out[:, j] = x[:, list(have).index(f)]
    return out


def build_reference(data, features, *, n: int = N_REFERENCE, seed: int = 0, source: str = "training data"):
    """A :class:`Reference` of up to ``n`` complete rows of ``data`` (None when fewer than 2k+2 rows are complete
    or the data are not a table)."""
    x = _matrix(data, tuple(features))
    if x is None:
        return None
    x = x[np.isfinite(x).all(axis=1)]
    if len(x) < 2 * K_NEIGHBOURS + 2:
        return None
    if len(x) > n:
        x = x[np.sort(np.random.default_rng(seed).choice(len(x), n, replace=False))]
    center, scale = x.mean(axis=0), x.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    return Reference(z=(x - center) / scale, features=tuple(features), center=center, scale=scale, source=source)


def attach_reference(model, data, *, source: str = "training data") -> None:
    """Keep a reference sample of ``data`` (the training inputs) with ``model`` (saved with its checkpoint)."""
    ref = build_reference(data, model.features, source=source)
    if ref is not None:
        model.typicality = ref


_SIM_REFS: dict = {}


def reference_for(model):
    """The model's stored reference, else one simulated from the configuration in its training provenance (cached
    in memory and, for the simulation, on disk by configuration hash); None when neither exists."""
    ref = getattr(model, "typicality", None)
    if ref is not None:
        return ref
    prov = (getattr(model, "card", None) or {}).get("provenance") or {}
    sim, cfg = prov.get("simulator"), prov.get("config")
    if prov.get("source") != "simulator" or not sim or not isinstance(cfg, dict):
        return None
    key = (model.task_name, sim, repr(sorted(cfg.items())), tuple(model.features))
    if key not in _SIM_REFS:
        from core.data.simulators import SIMULATORS
        from core.tasks import get_task_obj

        try:
            spec = SIMULATORS.get(sim)
            data = get_task_obj(model.task_name).data.simulate(N_REFERENCE, 20231, spec.config_cls.from_dict(cfg), True)
        except Exception:  # noqa: BLE001 - a provenance this version cannot re-simulate: no score, not an error
            _SIM_REFS[key] = None
        else:
            _SIM_REFS[key] = build_reference(data, model.features, source=f"simulated ({sim}, training config)")
    ref = _SIM_REFS[key]
    if ref is not None:
        model.typicality = ref
    return ref


def typicality_p(ref: Reference, x: np.ndarray, chunk: int = 20000) -> np.ndarray:
    """p-values (n,) of the rows of ``x`` (n, d) in ``ref.features`` order; NaN where no input is observed."""
    x = np.asarray(x, dtype=np.float64)
    z = (x - ref.center) / ref.scale
    obs = np.isfinite(z)
    p = np.full(len(z), np.nan)
    patterns, inverse = np.unique(obs, axis=0, return_inverse=True)
    for g, pat in enumerate(patterns):
        dims = tuple(int(i) for i in np.flatnonzero(pat))
        if not dims:
            continue
        tree, d_loo, k = ref._space(dims)
        rows = np.flatnonzero(inverse.ravel() == g)
        for s in range(0, len(rows), chunk):
            r = rows[s : s + chunk]
            d = tree.query(z[np.ix_(r, dims)], k=k)[0]
            d = d[:, -1] if d.ndim == 2 else d
            n_ge = len(d_loo) - np.searchsorted(d_loo, d, side="left")
            p[r] = (1.0 + n_ge) / (len(d_loo) + 1.0)
    return p


def annotate(model, data, post, *, alpha: float = ALPHA):
    """Add ``typicality_p`` and ``atypical`` to ``post.diagnostics`` (and a note to ``post.info``) for the rows of
    ``data`` under ``model``'s reference; ``post`` unchanged for data that are not a table or a model without one."""
    ref = reference_for(model)
    x = None if ref is None else _matrix(data, ref.features)
    if x is None or len(x) != getattr(post, "n", -1):
        return post
    p = typicality_p(ref, x)
    post.diagnostics["typicality_p"] = p
    post.diagnostics["atypical"] = (p < alpha).astype(np.int8)  # NaN (nothing observed) is not flagged
    post.info["typicality"] = {"alpha": alpha, "k": ref.k, "n_reference": ref.n, "source": ref.source}
    return post


def summary(post) -> dict[str, Any] | None:
    """``{"n_scored", "n_atypical", "fraction_atypical", "alpha"}`` of an annotated posterior (None otherwise)."""
    p = post.diagnostics.get("typicality_p") if hasattr(post, "diagnostics") else None
    if p is None:
        return None
    p = np.asarray(p, float)
    ok = np.isfinite(p)
    alpha = float((post.info.get("typicality") or {}).get("alpha", ALPHA))
    n_bad = int((p[ok] < alpha).sum())
    return {
        "n_scored": int(ok.sum()),
        "n_atypical": n_bad,
        "fraction_atypical": round(n_bad / max(int(ok.sum()), 1), 4),
        "alpha": alpha,
    }


def scores_by_typicality(post, truth: np.ndarray) -> list[dict[str, Any]]:
    """Scores (n, rmse, bias, coverage_68, coverage_95, crps) of the typical and the atypical rows of an annotated
    posterior against ``truth``; a group with no row is left out."""
    from core.metrics import score_posterior

    flag = np.asarray(post.diagnostics.get("atypical", np.zeros(post.n)), bool)
    t = np.asarray(truth, float).reshape(post.n, -1)
    rows = []
    for name, sel in (("typical", ~flag), ("atypical", flag)):
        idx = np.flatnonzero(sel)
        if idx.size == 0:
            continue
        sc = score_posterior(post.subset(idx), t[idx])
        rows.append(
            {"rows": name, **{k: sc.get(k) for k in ("n", "rmse", "bias", "coverage_68", "coverage_95", "crps")}}
        )
    return rows
