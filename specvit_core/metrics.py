"""Regression metrics of the paper (Section 5.1), bootstrap intervals (Appendix I), stratified tables, and the
calibration of predicted Gaussian uncertainties (interval coverage, reliability curve, sharpness).

Residuals are ``y_pred - y_true`` throughout, so a positive ``bias`` means the model over-predicts.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd
from scipy.stats import median_abs_deviation, norm

# Stellar types of Tables 5 and 8: giants log g < 2.5, subgiants 2.5 <= log g <= 4.0, dwarfs log g > 4.0.
GIANT_MAX_LOGG = 2.5
DWARF_MIN_LOGG = 4.0
STELLAR_TYPES = ("giant", "subgiant", "dwarf")
MAD_TO_SIGMA = 1.4826  # Gaussian sigma per median absolute deviation
# Central intervals of +-1 and +-2 sigma of a Gaussian: probability 0.6827 ("68%") and 0.9545 ("95%").
COVERAGE_LEVELS = {"coverage_68": float(2 * norm.cdf(1) - 1), "coverage_95": float(2 * norm.cdf(2) - 1)}
RELIABILITY_LEVELS = tuple(np.round(np.arange(0.05, 0.951, 0.05), 2))  # the levels of a reliability diagram


def check_arrays(ndim: int | None = None, dtype=None, **arrays) -> tuple[np.ndarray, ...]:
    """Finite, non-empty arrays of one common length (first axis), named in the errors by their keywords.

    Parameters
    ----------
    ndim : int, optional
        Required number of dimensions of every array (any when None).
    dtype : numpy dtype, optional
        Convert the arrays to this type (e.g. ``float``); None keeps their own.
    **arrays : array_like
        The arrays, by name; the first one sets the length the others must have.

    Returns
    -------
    tuple of ndarray
        The arrays, in keyword order.

    Raises
    ------
    ValueError
        An array with another number of dimensions than ``ndim``, empty, with NaN/inf values, or of another length
        than the first.
    """
    unit, length = ("sample", "the same length as") if ndim == 1 else ("row", "as many rows as")
    out = []
    for name, a in arrays.items():
        a = np.asarray(a, dtype=dtype)
        if ndim is not None and a.ndim != ndim:
            raise ValueError(f"{name} must be {ndim}-D; got shape {a.shape}")
        if a.size == 0:
            raise ValueError(f"{name} is empty; it needs at least one {unit}")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{name} contains {np.count_nonzero(~np.isfinite(a))} NaN/inf values; all must be finite")
        if out and len(a) != len(out[0]):
            raise ValueError(f"{name} must have {length} {next(iter(arrays))}; got {len(a)} and {len(out[0])}")
        out.append(a)
    return tuple(out)


def _check(**arrays) -> tuple[np.ndarray, ...]:
    """Finite, non-empty 1-D float arrays of one common length (:func:`check_arrays` for the metrics)."""
    return check_arrays(ndim=1, dtype=float, **arrays)


def r2(y_true, y_pred) -> float:
    """Coefficient of determination ``1 - SS_res / SS_tot`` (sklearn's ``r2_score``).

    Parameters
    ----------
    y_true, y_pred : array_like, shape (n,)
        Labels and predictions.

    Returns
    -------
    float
        R^2; NaN when ``y_true`` is constant (undefined, where sklearn would return 0 or 1).

    Raises
    ------
    ValueError
        If the inputs are empty, not 1-D, of different lengths, or not finite.
    """
    y_true, y_pred = _check(y_true=y_true, y_pred=y_pred)
    ss_tot = np.sum((y_true - y_true.mean()) ** 2)
    return float(1.0 - np.sum((y_pred - y_true) ** 2) / ss_tot) if ss_tot > 0 else float("nan")


def mae(y_true, y_pred) -> float:
    """Mean absolute error ``mean(|y_pred - y_true|)``.

    Parameters
    ----------
    y_true, y_pred : array_like, shape (n,)
        Labels and predictions.

    Returns
    -------
    float
        MAE, in the units of the label.

    Raises
    ------
    ValueError
        If the inputs are empty, not 1-D, of different lengths, or not finite.
    """
    y_true, y_pred = _check(y_true=y_true, y_pred=y_pred)
    return float(np.mean(np.abs(y_pred - y_true)))


def rmse(y_true, y_pred) -> float:
    """Root-mean-square error ``sqrt(mean((y_pred - y_true)^2))`` (Table 9).

    Parameters
    ----------
    y_true, y_pred : array_like, shape (n,)
        Labels and predictions.

    Returns
    -------
    float
        RMSE, in the units of the label.

    Raises
    ------
    ValueError
        If the inputs are empty, not 1-D, of different lengths, or not finite.
    """
    y_true, y_pred = _check(y_true=y_true, y_pred=y_pred)
    return float(np.sqrt(np.mean((y_pred - y_true) ** 2)))


def sigma_robust(y_true, y_pred) -> float:
    """Robust scatter ``1.4826 x MAD(y_pred - y_true)``; equals the standard deviation for Gaussian residuals.

    Parameters
    ----------
    y_true, y_pred : array_like, shape (n,)
        Labels and predictions.

    Returns
    -------
    float
        Robust scatter, in the units of the label.

    Raises
    ------
    ValueError
        If the inputs are empty, not 1-D, of different lengths, or not finite.
    """
    y_true, y_pred = _check(y_true=y_true, y_pred=y_pred)
    return float(median_abs_deviation(y_pred - y_true, scale="normal"))


def bias(y_true, y_pred) -> float:
    """Mean residual ``mean(y_pred - y_true)``.

    Parameters
    ----------
    y_true, y_pred : array_like, shape (n,)
        Labels and predictions.

    Returns
    -------
    float
        Bias, in the units of the label; positive when the model over-predicts.

    Raises
    ------
    ValueError
        If the inputs are empty, not 1-D, of different lengths, or not finite.
    """
    y_true, y_pred = _check(y_true=y_true, y_pred=y_pred)
    return float(np.mean(y_pred - y_true))


METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "r2": r2, "mae": mae, "rmse": rmse, "sigma_robust": sigma_robust, "bias": bias,
}


def regression_metrics(y_true, y_pred) -> dict[str, float]:
    """Every metric of :data:`METRICS` plus the sample count ``n``.

    Parameters
    ----------
    y_true, y_pred : array_like, shape (n,)
        Labels and predictions.

    Returns
    -------
    dict
        ``{"n": int, "r2": ..., "mae": ..., "rmse": ..., "sigma_robust": ..., "bias": ...}``.

    Raises
    ------
    ValueError
        As :func:`r2`.
    """
    y_true, y_pred = _check(y_true=y_true, y_pred=y_pred)
    return {"n": int(y_true.size), **{name: fn(y_true, y_pred) for name, fn in METRICS.items()}}


def _check_sigma(**arrays) -> tuple[np.ndarray, ...]:
    """:func:`_check` of the arrays, the last of which, ``sigma``, must be > 0 (a predicted 1-sigma uncertainty)."""
    checked = _check(**arrays)
    sigma = checked[-1]
    if np.any(sigma <= 0):
        raise ValueError(f"sigma must be > 0 for every sample (a predicted 1-sigma uncertainty); {np.sum(sigma <= 0)} "
                         f"of {sigma.size} are <= 0 (smallest {sigma.min():.6g})")
    return checked


def _check_levels(levels) -> np.ndarray:
    """The probability levels as a float array, refusing any outside the open interval (0, 1)."""
    levels = np.asarray(levels, dtype=float)
    if levels.size == 0 or not np.all((levels > 0) & (levels < 1)):
        raise ValueError(f"levels must be probabilities strictly between 0 and 1; got {levels.tolist()}")
    return levels


def interval_coverage(y_true, y_pred, sigma, levels) -> np.ndarray:
    """Observed coverage of central Gaussian intervals: the fraction of samples with ``|y_pred - y_true| <= z sigma``,
    ``z = Phi^-1((1 + level) / 2)`` (z = 1 for level 0.6827, 2 for 0.9545).

    Parameters
    ----------
    y_true, y_pred, sigma : array_like, shape (n,)
        Labels, predictions and their predicted 1-sigma uncertainties (> 0).
    levels : float or array_like
        Nominal probability of each interval, strictly between 0 and 1.

    Returns
    -------
    ndarray, shape of ``levels``
        Fraction of the samples inside each interval; equal to ``levels`` within the binomial error
        ``sqrt(level (1 - level) / n)`` when the sigma are calibrated and the residuals Gaussian.

    Raises
    ------
    ValueError
        Bad arrays (as :func:`r2`), a sigma <= 0, or a level outside (0, 1).
    """
    y_true, y_pred, sigma = _check_sigma(y_true=y_true, y_pred=y_pred, sigma=sigma)
    levels = _check_levels(levels)
    normalized = np.sort(np.abs(y_pred - y_true) / sigma)
    return np.searchsorted(normalized, norm.ppf((1 + levels) / 2), side="right") / normalized.size


def reliability_curve(y_true, y_pred, sigma, levels=RELIABILITY_LEVELS) -> pd.DataFrame:
    """Expected against observed coverage of central Gaussian intervals over a range of levels (reliability diagram).

    Parameters
    ----------
    y_true, y_pred, sigma : array_like, shape (n,)
        Labels, predictions and their predicted 1-sigma uncertainties (> 0).
    levels : array_like
        Nominal probabilities, strictly between 0 and 1 (default 0.05, 0.10, ..., 0.95).

    Returns
    -------
    pandas.DataFrame
        One row per level: ``expected`` (the level), ``observed`` (:func:`interval_coverage`) and ``binomial_se``
        (``sqrt(expected (1 - expected) / n)``, the scatter of ``observed`` for calibrated sigma). Observed below
        expected: the sigma are too small (overconfident); above: too large.

    Raises
    ------
    ValueError
        As :func:`interval_coverage`.
    """
    observed = interval_coverage(y_true, y_pred, sigma, levels)
    expected = _check_levels(levels).ravel()
    return pd.DataFrame({"expected": expected, "observed": observed.ravel(),
                         "binomial_se": np.sqrt(expected * (1 - expected) / len(np.asarray(y_true)))})


def sharpness(sigma) -> float:
    """Root-mean-square predicted sigma: how narrow the predicted intervals are, to set beside the residual scatter.

    Parameters
    ----------
    sigma : array_like, shape (n,)
        Predicted 1-sigma uncertainties (> 0).

    Returns
    -------
    float
        ``sqrt(mean(sigma^2))``, in the units of the label; equals the RMSE when the sigma are calibrated.

    Raises
    ------
    ValueError
        Empty, non-finite or non-positive sigma.
    """
    (sigma,) = _check_sigma(sigma=sigma)
    return float(np.sqrt(np.mean(sigma**2)))


def gaussian_nll_score(y_true, y_pred, sigma) -> float:
    """Mean negative log-likelihood of the labels under ``N(y_pred, sigma^2)``, per sample (nats).

    Parameters
    ----------
    y_true, y_pred, sigma : array_like, shape (n,)
        Labels, predictions and their predicted 1-sigma uncertainties (> 0).

    Returns
    -------
    float
        ``mean(0.5 log(2 pi sigma^2) + (y_pred - y_true)^2 / (2 sigma^2))``; lower is better, and it rewards sharp
        sigma only where they are also calibrated.

    Raises
    ------
    ValueError
        As :func:`interval_coverage`.
    """
    y_true, y_pred, sigma = _check_sigma(y_true=y_true, y_pred=y_pred, sigma=sigma)
    return float(np.mean(0.5 * np.log(2 * np.pi * sigma**2) + 0.5 * ((y_pred - y_true) / sigma) ** 2))


def uncertainty_metrics(y_true, y_pred, sigma) -> dict[str, float]:
    """Calibration and sharpness of predicted Gaussian uncertainties.

    Parameters
    ----------
    y_true, y_pred, sigma : array_like, shape (n,)
        Labels, predictions and their predicted 1-sigma uncertainties (> 0).

    Returns
    -------
    dict
        ``coverage_68`` and ``coverage_95`` (observed coverage of the +-1 and +-2 sigma intervals, nominal 0.6827
        and 0.9545; :data:`COVERAGE_LEVELS`), ``sharpness`` (RMS sigma), ``sigma_median`` and ``nll``
        (:func:`gaussian_nll_score`).

    Raises
    ------
    ValueError
        As :func:`interval_coverage`.
    """
    coverage = interval_coverage(y_true, y_pred, sigma, list(COVERAGE_LEVELS.values()))
    return {**dict(zip(COVERAGE_LEVELS, coverage.tolist())), "sharpness": sharpness(sigma),
            "sigma_median": float(np.median(sigma)), "nll": gaussian_nll_score(y_true, y_pred, sigma)}


def _resolve_metric(metric) -> Callable:
    if callable(metric):
        return metric
    if metric not in METRICS:
        raise ValueError(f"Unknown metric {metric!r}; valid metrics are: {', '.join(METRICS)} (or a callable)")
    return METRICS[metric]


def _percentile_summary(value: float, dist: np.ndarray, ci: float) -> dict[str, float]:
    low, high = np.quantile(dist, [(1 - ci) / 2, (1 + ci) / 2])
    return {"value": value, "low": float(low), "high": float(high), "se": float(np.std(dist, ddof=1))}


def _bootstrap(y_true: np.ndarray, preds: list[np.ndarray], stat: Callable, n_boot: int, ci: float,
               seed) -> np.ndarray:
    """``stat(y_true[i], *[p[i] for p in preds])`` over ``n_boot`` resamples ``i`` of the test set."""
    if not 0 < ci < 1:
        raise ValueError(f"ci, {ci}, must lie strictly between 0 and 1")
    if n_boot < 2:
        raise ValueError(f"n_boot, {n_boot}, must be at least 2")
    rng = np.random.default_rng(seed)
    n = y_true.size
    out = np.empty(n_boot)
    for b in range(n_boot):
        i = rng.integers(0, n, n)
        out[b] = stat(y_true[i], *(p[i] for p in preds))
    return out


def bootstrap_ci(y_true, y_pred, metric="r2", n_boot: int = 1000, ci: float = 0.95, seed=0) -> dict[str, float]:
    """Percentile bootstrap confidence interval of one metric (Appendix I.1).

    Parameters
    ----------
    y_true, y_pred : array_like, shape (n,)
        Labels and predictions.
    metric : str or callable
        A name of :data:`METRICS` or ``f(y_true, y_pred) -> float``.
    n_boot : int
        Number of resamples B (the paper uses 1000).
    ci : float
        Central coverage of the interval.
    seed : int or numpy.random.Generator
        Seed of the resampling.

    Returns
    -------
    dict
        ``value`` (metric on the full set), ``low``, ``high`` (percentile interval), ``se`` (std of the
        bootstrap distribution).

    Raises
    ------
    ValueError
        Bad inputs (as :func:`r2`), an unknown metric, ``n_boot < 2`` or ``ci`` outside (0, 1).
    """
    y_true, y_pred = _check(y_true=y_true, y_pred=y_pred)
    fn = _resolve_metric(metric)
    dist = _bootstrap(y_true, [y_pred], fn, n_boot, ci, seed)
    return _percentile_summary(fn(y_true, y_pred), dist, ci)


def paired_bootstrap(y_true, pred_a, pred_b, metric="r2", n_boot: int = 1000, ci: float = 0.95,
                     seed=0) -> dict[str, float]:
    """Paired bootstrap of ``metric(a) - metric(b)`` on the same test set, with a one-sided p-value (eq. I.1).

    Both models are scored on the same resampled indices, so their shared test-set noise cancels.

    Parameters
    ----------
    y_true, pred_a, pred_b : array_like, shape (n,)
        Labels and the predictions of models A and B for the same objects.
    metric, n_boot, ci, seed
        As :func:`bootstrap_ci`.

    Returns
    -------
    dict
        ``value``, ``low``, ``high``, ``se`` of the difference, and ``p_value`` = fraction of resamples with
        difference <= 0 (small when A is better for a higher-is-better metric such as R^2; for an error
        metric such as MAE pass the models in the other order).

    Raises
    ------
    ValueError
        As :func:`bootstrap_ci`.
    """
    y_true, pred_a, pred_b = _check(y_true=y_true, pred_a=pred_a, pred_b=pred_b)
    fn = _resolve_metric(metric)

    def delta(t, a, b):
        return fn(t, a) - fn(t, b)

    dist = _bootstrap(y_true, [pred_a, pred_b], delta, n_boot, ci, seed)
    return {**_percentile_summary(delta(y_true, pred_a, pred_b), dist, ci), "p_value": float(np.mean(dist <= 0))}


def stratified_metrics(y_true, y_pred, strata: dict[str, np.ndarray]) -> pd.DataFrame:
    """One row of :func:`regression_metrics` per stratum, with ``frac`` (share of all samples), ``label_std`` and an
    ``all`` row.

    A stratum's R^2 is ``1 - (rmse / label_std)^2`` with the spread of its own labels: in a narrow stratum (a
    stellar type, a bin of log g) ``label_std`` is small and R^2 falls far below the overall R^2 at the same
    errors, so MAE and sigma_robust are the numbers to compare between strata.

    Parameters
    ----------
    y_true, y_pred : array_like, shape (n,)
        Labels and predictions.
    strata : dict of str -> boolean array, shape (n,)
        Row name -> membership mask, in row order.

    Returns
    -------
    pandas.DataFrame
        Index ``stratum``; columns ``n, frac``, the metrics and ``label_std`` (standard deviation of ``y_true`` in
        the stratum). An empty stratum gives ``n = 0`` and NaN metrics.

    Raises
    ------
    ValueError
        Bad inputs (as :func:`r2`) or a mask that is not boolean of length n.
    """
    y_true, y_pred = _check(y_true=y_true, y_pred=y_pred)
    if "all" in strata:
        raise ValueError("strata must not contain a stratum named 'all'; that row is added for the whole set")
    rows = {}
    for name, mask in {**strata, "all": np.ones(y_true.size, bool)}.items():
        mask = np.asarray(mask)
        if mask.dtype != bool or mask.shape != y_true.shape:
            raise ValueError(f"mask of stratum {name!r} must be boolean of shape {y_true.shape}; "
                             f"got {mask.dtype} of shape {mask.shape}")
        empty = {"n": 0, **dict.fromkeys(METRICS, np.nan)}  # explicit row, never a made-up number
        row = regression_metrics(y_true[mask], y_pred[mask]) if mask.any() else empty
        spread = float(np.std(y_true[mask])) if mask.any() else np.nan
        rows[name] = {"n": row["n"], "frac": row["n"] / y_true.size, **row, "label_std": spread}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("stratum")


def stellar_type(logg) -> np.ndarray:
    """The stellar type of each log g, with the thresholds of Tables 5 and 8.

    Parameters
    ----------
    logg : array_like
        Surface gravities, dex.

    Returns
    -------
    ndarray of str
        ``"giant"`` (log g < 2.5), ``"subgiant"`` (2.5 <= log g <= 4.0) or ``"dwarf"`` (log g > 4.0).

    Raises
    ------
    ValueError
        If a value is not finite.
    """
    logg = np.asarray(logg, dtype=float)
    if not np.all(np.isfinite(logg)):
        raise ValueError("log g must be finite")
    return np.where(logg < GIANT_MAX_LOGG, "giant", np.where(logg > DWARF_MIN_LOGG, "dwarf", "subgiant"))


def metrics_by_stellar_type(y_true, y_pred, logg=None) -> pd.DataFrame:
    """Table 5/8 stratification: giants (log g < 2.5), subgiants (2.5-4.0, inclusive), dwarfs (log g > 4.0).

    Parameters
    ----------
    y_true, y_pred : array_like, shape (n,)
        Labels and predictions.
    logg : array_like, shape (n,), optional
        True log g used to assign the type; defaults to ``y_true`` (when the target is log g).

    Returns
    -------
    pandas.DataFrame
        As :func:`stratified_metrics`, rows ``giants, subgiants, dwarfs, all``.

    Raises
    ------
    ValueError
        As :func:`stratified_metrics`, or ``logg`` not finite / of the wrong length.
    """
    _, logg = _check(y_true=y_true, logg=y_true if logg is None else logg)
    giants, dwarfs = logg < GIANT_MAX_LOGG, logg > DWARF_MIN_LOGG
    return stratified_metrics(y_true, y_pred, {"giants": giants, "subgiants": ~giants & ~dwarfs, "dwarfs": dwarfs})


def metrics_by_bins(y_true, y_pred, values, edges) -> pd.DataFrame:
    """Metrics per bin of a per-object quantity (e.g. magnitude): bins ``[e_i, e_i+1)``, the last one closed.

    Parameters
    ----------
    y_true, y_pred : array_like, shape (n,)
        Labels and predictions.
    values : array_like, shape (n,)
        The quantity that defines the bins (magnitude, SNR, ...).
    edges : array_like, shape (k + 1,)
        Strictly increasing bin edges that must cover every value.

    Returns
    -------
    pandas.DataFrame
        As :func:`stratified_metrics`, rows named ``"[lo, hi)"`` plus ``lo`` and ``hi`` columns.

    Raises
    ------
    ValueError
        As :func:`stratified_metrics`; fewer than 2 or non-increasing edges; values outside the edges.
    """
    _, values = _check(y_true=y_true, values=values)
    edges = np.asarray(edges, dtype=float)
    if edges.ndim != 1 or edges.size < 2 or not np.all(np.diff(edges) > 0):
        raise ValueError(f"edges must be a strictly increasing 1-D array of at least 2 values; got {edges}")
    outside = (values < edges[0]) | (values > edges[-1])
    if outside.any():
        raise ValueError(f"{outside.sum()} values lie outside the edges [{edges[0]}, {edges[-1]}]; "
                         "every object must fall in a bin")
    which = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, edges.size - 2)
    fmt = "{:g}" if len({f"{e:g}" for e in edges}) == edges.size else "{!r}"  # short labels unless they collide
    strata = {f"[{fmt.format(lo)}, {fmt.format(hi)}{']' if k == edges.size - 2 else ')'}": which == k
              for k, (lo, hi) in enumerate(zip(edges[:-1], edges[1:]))}
    table = stratified_metrics(y_true, y_pred, strata)
    table.insert(0, "lo", [*edges[:-1], edges[0]])
    table.insert(1, "hi", [*edges[1:], edges[-1]])
    return table


def metrics_by_quantile(y_true, y_pred, values, n_bins: int = 4) -> pd.DataFrame:
    """Metrics per quantile bin of a per-object quantity (e.g. SNR quartiles).

    Parameters
    ----------
    y_true, y_pred, values : array_like, shape (n,)
        Labels, predictions and the quantity that defines the bins.
    n_bins : int
        Number of equal-count bins.

    Returns
    -------
    pandas.DataFrame
        As :func:`metrics_by_bins` with the empirical quantiles of ``values`` as edges.

    Raises
    ------
    ValueError
        As :func:`metrics_by_bins`; ``n_bins < 1``; ties that make two quantile edges equal.
    """
    if n_bins < 1:
        raise ValueError(f"n_bins, {n_bins}, must be at least 1")
    _, values = _check(y_true=y_true, values=values)
    return metrics_by_bins(y_true, y_pred, values, np.quantile(values, np.linspace(0, 1, n_bins + 1)))
