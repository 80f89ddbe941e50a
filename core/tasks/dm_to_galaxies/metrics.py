"""Galaxy-field metrics (section 4.7): voxel classification, counts, power spectra, one-point PDF.

Conventions: ``prob`` is P(N >= 1) per voxel, ``counts`` are galaxy counts, all arrays (n_fields, *grid).
Power spectra use ``powerbox.get_power`` on delta = N / N_bar - 1 (N_bar = mean count of that field) with linear
k bins of width 2 pi / L from 2 pi / L to k_Nyq / 2 (k in h/Mpc, P in (Mpc/h)^dim); T(k) and r(k) are ratios of
spectra summed over all test fields (so each k bin pools all fields' modes). Compare like with like: samples with
samples (T -> 1, r < 1 from shot noise), means with means (T < 1).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "classification_metrics",
    "pr_curve",
    "pr_auc",
    "threshold_for_recall",
    "threshold_for_best_f1",
    "precision_at_recall",
    "poisson_deviance",
    "total_count_error",
    "k_bins",
    "power_spectrum",
    "transfer_and_correlation",
    "pk_summary",
    "one_point_pdf",
    "field_metrics",
]


def classification_metrics(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Accuracy (report only), balanced accuracy, precision, recall, F1 and MCC of boolean predictions."""
    p = np.asarray(pred, bool).ravel()
    t = np.asarray(truth, bool).ravel()
    tp = float(np.sum(p & t))
    fp = float(np.sum(p & ~t))
    fn = float(np.sum(~p & t))
    tn = float(np.sum(~p & ~t))
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    spec = tn / (tn + fp) if tn + fp else 0.0
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    den = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    mcc = (tp * tn - fp * fn) / den if den else 0.0
    return {
        "accuracy": (tp + tn) / max(p.size, 1),
        "balanced_accuracy": 0.5 * (rec + spec),
        "precision": prec,
        "recall": rec,
        "f1": f1,
        "mcc": float(mcc),
    }


def pr_curve(score: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(precision, recall, thresholds) for "score >= threshold", one point per distinct score, descending."""
    s = np.asarray(score, float).ravel()
    t = np.asarray(truth, bool).ravel()
    order = np.argsort(-s, kind="stable")
    s, t = s[order], t[order]
    last = np.r_[np.flatnonzero(np.diff(s) != 0), s.size - 1]  # last index of each tie group
    tp = np.cumsum(t)[last].astype(float)
    pos = max(float(t.sum()), 1.0)
    return tp / (last + 1.0), tp / pos, s[last]


def pr_auc(score: np.ndarray, truth: np.ndarray) -> float:
    """Area under the precision-recall curve (average precision: sum of precision x recall increments)."""
    prec, rec, _ = pr_curve(score, truth)
    return float(np.sum(np.diff(np.r_[0.0, rec]) * prec))


def threshold_for_recall(score: np.ndarray, truth: np.ndarray, recall: float, confidence: float = 0.0) -> float:
    """The highest threshold whose recall ("score >= threshold") reaches ``recall``.

    With ``confidence`` c > 0 the recall that must reach ``recall`` is the one-sided Clopper-Pearson lower bound at
    level c of the recall on these voxels (TP successes out of the positives), so that the recall on new fields
    reaches the target with probability about c instead of about one half. Voxels are treated as independent
    trials; clustered satellites make the true spread somewhat larger.
    """
    _, rec, thr = pr_curve(score, truth)
    if confidence > 0:
        from scipy.stats import beta

        pos = max(int(np.sum(np.asarray(truth, bool))), 1)
        tp = np.rint(rec * pos)
        rec = np.where(tp > 0, beta.ppf(1.0 - confidence, np.maximum(tp, 1.0), pos - tp + 1.0), 0.0)
        rec = np.maximum.accumulate(np.nan_to_num(rec))
    i = int(np.searchsorted(rec, recall, side="left"))
    return float(thr[min(i, len(thr) - 1)])


def threshold_for_best_f1(score: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """(threshold, F1) of the operating point "score >= threshold" with the highest F1 over all distinct scores."""
    prec, rec, thr = pr_curve(score, truth)
    f1 = 2 * prec * rec / np.clip(prec + rec, 1e-12, None)
    i = int(np.argmax(f1))
    return float(thr[i]), float(f1[i])


def precision_at_recall(score: np.ndarray, truth: np.ndarray, recall: float) -> float:
    """Precision of ``score`` at the first operating point whose recall reaches ``recall``."""
    prec, rec, _ = pr_curve(score, truth)
    i = int(np.searchsorted(rec, recall, side="left"))
    return float(prec[min(i, len(prec) - 1)])


def poisson_deviance(mu: np.ndarray, counts: np.ndarray, floor: float = 1e-6) -> float:
    """Mean Poisson deviance per voxel, 2 [y ln(y / mu) - (y - mu)], with mu floored at ``floor``."""
    mu = np.clip(np.asarray(mu, float), floor, None)
    y = np.asarray(counts, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(y > 0, y * np.log(y / mu), 0.0)
    return float(np.mean(2.0 * (term - (y - mu))))


def total_count_error(pred: np.ndarray, counts: np.ndarray) -> float:
    """Relative error of the total galaxy number, (sum pred - sum true) / sum true."""
    tot = float(np.sum(counts))
    return float((np.sum(pred) - tot) / tot) if tot else float("nan")


def k_bins(n_grid: int, box_size: float) -> np.ndarray:
    """Bin edges of width 2 pi / L from 2 pi / L up to k_Nyq / 2 = pi N / (2 L) [h/Mpc]."""
    kf = 2 * np.pi / box_size
    return np.arange(kf, np.pi * n_grid / box_size / 2 + 1e-9, kf)


def power_spectrum(
    field: np.ndarray, box_size: float, other: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(k, P(k)) of delta = N / N_bar - 1 of one field (auto, or cross with ``other``), via powerbox."""
    from powerbox import get_power

    d1 = _delta(field)
    d2 = None if other is None else _delta(other)
    ps = get_power(d1, boxlength=box_size, deltax2=d2, bins=k_bins(field.shape[0], box_size), bins_upto_boxlen=True)
    return np.asarray(ps.bin_centres, float), np.nan_to_num(np.asarray(ps.power, float))


def transfer_and_correlation(pred: np.ndarray, truth: np.ndarray, box_size: float) -> dict[str, np.ndarray]:
    """T(k) = P_pred / P_true and r(k) = P_x / sqrt(P_pred P_true), spectra summed over fields.

    ``pred`` may have an extra samples axis (n, S, *grid): every sample is paired with its field's truth.
    """
    pred = np.asarray(pred, float)
    truth = np.asarray(truth, float)
    if pred.ndim == truth.ndim + 1:
        truth = np.repeat(truth[:, None], pred.shape[1], axis=1).reshape((-1,) + truth.shape[1:])
        pred = pred.reshape((-1,) + pred.shape[2:])
    pp = pt = px = 0.0
    k = np.zeros(0)
    for a, b in zip(pred, truth):
        k, p1 = power_spectrum(a, box_size)
        _, p2 = power_spectrum(b, box_size)
        _, p3 = power_spectrum(a, box_size, other=b)
        pp, pt, px = pp + p1, pt + p2, px + p3
    n = max(len(pred), 1)
    pp, pt, px = np.asarray(pp) / n, np.asarray(pt) / n, np.asarray(px) / n
    with np.errstate(divide="ignore", invalid="ignore"):
        return {"k": k, "p_pred": pp, "p_true": pt, "p_cross": px, "T": pp / pt, "r": px / np.sqrt(pp * pt)}


def pk_summary(pk: dict[str, np.ndarray]) -> dict[str, float]:
    """pk_ratio_mean_abs_dev = mean_k |T(k) - 1| and r_k_mean = mean_k r(k)."""
    return {"pk_ratio_mean_abs_dev": float(np.nanmean(np.abs(pk["T"] - 1.0))), "r_k_mean": float(np.nanmean(pk["r"]))}


def one_point_pdf(counts: np.ndarray, max_count: int = 6) -> np.ndarray:
    """Fraction of voxels with 0, 1, ..., max_count - 1 and >= max_count galaxies (length max_count + 1)."""
    c = np.clip(np.rint(np.asarray(counts)).astype(np.int64).ravel(), 0, max_count)
    return np.bincount(c, minlength=max_count + 1)[: max_count + 1] / max(c.size, 1)


def field_metrics(
    *,
    truth: np.ndarray,
    box_size: float,
    prob: np.ndarray | None = None,
    occupied: np.ndarray | None = None,
    expected: np.ndarray | None = None,
    pk_field: np.ndarray | None = None,
) -> dict[str, float]:
    """The benchmark's metric set for one method.

    ``occupied``: its boolean prediction at its operating point; ``prob``: its score for PR-AUC; ``expected``:
    its expected counts for the Poisson deviance and total count; ``pk_field``: the field(s) it is judged on in
    P(k) (samples (n, S, *grid) for generative methods, a point field otherwise).
    """
    out: dict[str, float] = {}
    occ_true = np.asarray(truth) > 0
    if occupied is not None:
        out.update(classification_metrics(occupied, occ_true))
    if prob is not None:
        out["pr_auc"] = pr_auc(prob, occ_true)
    if expected is not None:
        out["poisson_deviance"] = poisson_deviance(expected, truth)
        out["total_count_error"] = total_count_error(expected, truth)
    if pk_field is not None:
        out.update(pk_summary(transfer_and_correlation(pk_field, truth, box_size)))
    return out


def _delta(field: np.ndarray) -> np.ndarray:
    f = np.asarray(field, float)
    mean = f.mean()
    return f / mean - 1.0 if mean > 0 else np.zeros_like(f)
