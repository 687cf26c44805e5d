"""Fisher information, Schur-complement Cramer-Rao bounds and the R^2 ceiling (Section 5.1.4, Appendices C, J).

Everything is batched over leading axes: ``J`` is ``(..., n_pix, n_params)`` (e.g. one Jacobian per grid point)
and ``sigma`` is the per-pixel noise, broadcastable to ``J.shape[:-1]``.

Marginalization solves with the nuisance block of the *correlation* form of the Fisher matrix (unit diagonal),
so the result does not depend on the parameter units (K versus dex). A nuisance block that is singular or
numerically so (condition number above ``MAX_NUISANCE_COND``) raises a ValueError instead of returning a bound
from a pseudo-inverse: it means a nuisance parameter (combination) is not constrained by the spectrum, and the
Jacobian (step sizes, parameter set) should be fixed rather than the bound trusted.

The per-star ceiling (:func:`split_crlb`, :func:`star_ceiling`, :func:`ceiling_summary`) sets the bound of every
spectrum of a dataset split, at its own labels and noise, beside a run's prediction of it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from . import paper
from .config import LABEL_RANGES
from .data import read_labels, read_manifest
from .files import atomic_path
from .metrics import STELLAR_TYPES, r2, stellar_type
from .noise import MEDIAN_CONDITIONS, median_normalize, observe
from .spectra.templates import AXES, TemplateGrid

MAX_NUISANCE_COND = 1e12


def fisher_matrix(J, sigma) -> np.ndarray:
    """Fisher matrix ``I = J^T Sigma^-1 J`` for independent Gaussian pixel noise (eq. J.2).

    Parameters
    ----------
    J : array_like, shape (..., n_pix, n_params)
        Jacobian of the spectrum with respect to the parameters.
    sigma : array_like, shape broadcastable to (..., n_pix)
        Per-pixel noise standard deviation (the diagonal of Sigma is ``sigma**2``), positive and finite.

    Returns
    -------
    numpy.ndarray, shape (..., n_params, n_params)
        Symmetric Fisher matrices, in units of 1 / (parameter_i parameter_j).

    Raises
    ------
    ValueError
        If ``J`` has fewer than 2 dimensions or non-finite entries, or ``sigma`` does not broadcast to
        ``J.shape[:-1]`` or is not positive and finite.
    """
    J = np.asarray(J, dtype=float)
    sigma = np.asarray(sigma, dtype=float)
    if J.ndim < 2:
        raise ValueError(f"J must have shape (..., n_pix, n_params); got shape {J.shape}")
    if not np.all(np.isfinite(J)):
        raise ValueError(f"J contains {np.count_nonzero(~np.isfinite(J))} NaN/inf values; all must be finite")
    try:
        sigma = np.broadcast_to(sigma, J.shape[:-1])
    except ValueError:
        raise ValueError(f"sigma of shape {sigma.shape} must broadcast to J.shape[:-1] = {J.shape[:-1]}") from None
    if not np.all(np.isfinite(sigma) & (sigma > 0)):
        raise ValueError("sigma must be positive and finite in every pixel; "
                         f"got min {np.nanmin(sigma)} and {np.count_nonzero(~np.isfinite(sigma))} NaN/inf values")
    whitened = J / sigma[..., None]  # (..., n_pix, n_params)
    return np.swapaxes(whitened, -1, -2) @ whitened


def _information_and_decay(J, sigma, index: int) -> tuple[np.ndarray, np.ndarray]:
    """``(I_gg, rho)`` with ``rho = (I_gg - I_gn I_nn^-1 I_ng) / I_gg`` (eq. J.4 over I_gg)."""
    info = fisher_matrix(J, sigma)
    n_params = info.shape[-1]
    if not (isinstance(index, (int, np.integer)) and 0 <= index < n_params):
        raise ValueError(f"index, {index!r}, must be an integer in [0, {n_params}) (the number of parameters)")
    diag = np.diagonal(info, axis1=-2, axis2=-1)  # (..., n_params)
    if np.any(diag <= 0):
        empty = sorted(set(np.nonzero(diag <= 0)[-1].tolist()))
        raise ValueError(f"parameters {empty} have zero Fisher information (all-zero Jacobian columns); "
                         "every parameter must change the spectrum")
    scale = np.sqrt(diag)
    corr = info / (scale[..., :, None] * scale[..., None, :])  # unit diagonal: unit-free conditioning
    nuisance = [k for k in range(n_params) if k != index]
    if not nuisance:
        return diag[..., index], np.ones(diag.shape[:-1])
    c = corr[..., nuisance, index]  # (..., n_nuis)
    block = corr[..., nuisance, :][..., :, nuisance]  # (..., n_nuis, n_nuis)
    cond = np.linalg.cond(block)
    if not np.all(cond < MAX_NUISANCE_COND):
        raise ValueError(f"the nuisance block of the Fisher matrix is singular (condition number up to "
                         f"{np.max(cond):.3g} > {MAX_NUISANCE_COND:.0e}): nuisance parameters {nuisance} are "
                         "degenerate with each other")
    explained = np.sum(c * np.linalg.solve(block, c[..., None])[..., 0], axis=-1)
    # Rounding can push 1 - explained a hair below 0 when index is degenerate with the nuisances (bound = inf).
    return diag[..., index], np.clip(1.0 - explained, 0.0, 1.0)


def conditional_crlb(J, sigma, index: int) -> np.ndarray:
    """Variance bound ``1 / I_gg`` of parameter ``index`` when all other parameters are known.

    Parameters
    ----------
    J, sigma
        As :func:`fisher_matrix`.
    index : int
        Position of the parameter of interest (e.g. log g) along the last axis of ``J``.

    Returns
    -------
    numpy.ndarray, shape (...)
        Variance bound, in the parameter's units squared (e.g. dex^2 for log g).

    Raises
    ------
    ValueError
        As :func:`fisher_matrix`; ``index`` out of range; a parameter with zero information; a singular
        nuisance block.
    """
    info_gg, _ = _information_and_decay(J, sigma, index)
    return 1.0 / info_gg


def marginal_crlb(J, sigma, index: int) -> np.ndarray:
    """Variance bound of parameter ``index`` marginalized over the others (Schur complement, eq. J.4).

    ``1 / (I_gg - I_gn I_nn^-1 I_ng)``, equal to ``[I^-1]_gg``.

    Parameters
    ----------
    J, sigma
        As :func:`fisher_matrix`.
    index : int
        Position of the parameter of interest along the last axis of ``J``.

    Returns
    -------
    numpy.ndarray, shape (...)
        Variance bound, in the parameter's units squared; ``inf`` when the parameter is exactly degenerate with
        the nuisance parameters.

    Raises
    ------
    ValueError
        As :func:`conditional_crlb`.
    """
    info_gg, rho = _information_and_decay(J, sigma, index)
    with np.errstate(divide="ignore"):
        return 1.0 / (info_gg * rho)


def schur_decay(J, sigma, index: int) -> np.ndarray:
    """Fraction ``rho`` of the parameter's information kept after marginalization (Appendix J.3).

    ``rho = conditional_crlb / marginal_crlb`` in [0, 1]; 1 when the parameter is orthogonal to the nuisances
    (in the noise-weighted metric), 0 when it is degenerate with them. Independent of sigma scaling and of
    parameter units.

    Parameters
    ----------
    J, sigma
        As :func:`fisher_matrix`.
    index : int
        Position of the parameter of interest along the last axis of ``J``.

    Returns
    -------
    numpy.ndarray, shape (...)
        ``rho`` in [0, 1].

    Raises
    ------
    ValueError
        As :func:`conditional_crlb`.
    """
    return _information_and_decay(J, sigma, index)[1]


def r2_ceiling(crlb, label_variance) -> np.ndarray:
    """R^2 ceiling ``1 - CRLB / Var(y)`` clipped to [0, 1] (eq. J.5).

    Parameters
    ----------
    crlb : array_like
        Variance bounds (non-negative; ``inf`` gives 0).
    label_variance : float
        Variance of the label over the training distribution, positive.

    Returns
    -------
    numpy.ndarray, shape of ``crlb``
        Largest R^2 an unbiased estimator can reach.

    Raises
    ------
    ValueError
        If ``label_variance`` is not positive and finite, or ``crlb`` has NaN or negative values.
    """
    crlb = np.asarray(crlb, dtype=float)
    if not (np.isfinite(label_variance) and label_variance > 0):
        raise ValueError(f"label_variance, {label_variance}, must be positive and finite")
    if np.any(np.isnan(crlb) | (crlb < 0)):
        raise ValueError("crlb must be non-negative and not NaN; "
                         f"got {np.count_nonzero(np.isnan(crlb) | (crlb < 0))} bad values")
    return np.clip(1.0 - crlb / label_variance, 0.0, 1.0)


def jacobian_central_difference(model: Callable[[np.ndarray], np.ndarray], params, steps) -> np.ndarray:
    """Jacobian of a vectorized forward model by central differences along each parameter axis (eq. J.1).

    Parameters
    ----------
    model : callable
        Maps parameters of shape (M, n_params) to spectra of shape (M, n_pix); called once per parameter
        with M = 2N.
    params : array_like, shape (N, n_params)
        Points at which to differentiate.
    steps : array_like, shape (n_params,)
        Half-width ``Delta theta_k`` of the difference along each parameter (the grid spacing in the paper),
        positive.

    Returns
    -------
    numpy.ndarray, shape (N, n_pix, n_params)
        ``(f(theta + h_k e_k) - f(theta - h_k e_k)) / (2 h_k)``; exact for models quadratic in the parameters.

    Raises
    ------
    ValueError
        If ``params`` is not 2-D, ``steps`` is not positive with one value per parameter, or the model's
        output is not (2N, n_pix).
    """
    params = np.asarray(params, dtype=float)
    steps = np.asarray(steps, dtype=float)
    if params.ndim != 2:
        raise ValueError(f"params must have shape (N, n_params); got shape {params.shape}")
    n, n_params = params.shape
    if steps.shape != (n_params,) or not np.all(np.isfinite(steps) & (steps > 0)):
        raise ValueError(f"steps must hold {n_params} positive finite values (one per parameter); got {steps}")
    columns = []
    for k in range(n_params):
        shift = np.zeros(n_params)
        shift[k] = steps[k]
        spectra = np.asarray(model(np.concatenate([params + shift, params - shift])), dtype=float)
        if spectra.ndim != 2 or spectra.shape[0] != 2 * n:
            raise ValueError(f"model must map params (M, n_params) to spectra (M, n_pix); for M = {2 * n} "
                             f"it returned shape {spectra.shape}")
        columns.append((spectra[:n] - spectra[n:]) / (2 * steps[k]))  # (N, n_pix)
    return np.stack(columns, axis=-1)


# --------------------------------------------------------------------------------------------------------------
# The ceiling of the simulated spectra (Table 13, Figure 1 right, appendix J): Jacobians on the regular label grid
# of the median-normalized spectra the networks see, sigma from the simulator's noise model at fixed conditions.

#: Magnitudes of the ceiling table: the paper's Table 13 bins and the SNR sweep of Figure 1 (right).
MAGNITUDES = (18.0, 19.0, 20.0, 20.5, 21.0, 21.5, 22.0, 22.5, 23.0)
#: The Jacobian methods. The ceiling grid is the label box of the training data (``config.LABEL_RANGES``,
#: appendix J.1) and its conditions are fixed at ``noise.MEDIAN_CONDITIONS``.
METHODS = ("finite_difference", "exact")
LOGG = AXES.index("log_g")


def ceiling_axes(grid: TemplateGrid, ranges: dict | None = None, stride: int = 1) -> dict:
    """Nodes of ``grid`` inside ``ranges``, every ``stride``-th along each axis.

    Parameters
    ----------
    grid : TemplateGrid
        The template grid.
    ranges : dict, optional
        Label name -> (min, max) (default ``config.LABEL_RANGES``, the box of appendix J.1).
    stride : int
        Keep every ``stride``-th node.

    Returns
    -------
    dict of str -> ndarray
        Label name -> node values inside the range.

    Raises
    ------
    ValueError
        If ``stride`` is not a positive integer or a range holds no node of the grid.
    """
    if not (isinstance(stride, (int, np.integer)) and stride >= 1):
        raise ValueError(f"stride, {stride!r}, must be a positive integer")
    out = {}
    for name, (lo, hi) in (ranges or LABEL_RANGES).items():
        nodes = grid.axes[name][(grid.axes[name] >= lo - 1e-9) & (grid.axes[name] <= hi + 1e-9)]
        if nodes.size == 0:
            raise ValueError(f"the {name} range ({lo:g}, {hi:g}) holds no node of the grid {grid.bounds[name]}")
        out[name] = nodes[::stride]
    return out


def node_labels(axes: dict) -> np.ndarray:
    """All label triples of a regular grid.

    Parameters
    ----------
    axes : dict of str -> array_like
        Node values of ``T_eff``, ``log_g`` and ``M_H``.

    Returns
    -------
    ndarray, shape (n_T * n_g * n_M, 3)
        Columns in ``AXES`` order; T_eff varies slowest, M_H fastest.
    """
    return np.stack(np.meshgrid(*(axes[a] for a in AXES), indexing="ij"), axis=-1).reshape(-1, 3)


def _node_index(grid: TemplateGrid, axes: dict) -> tuple[np.ndarray, ...]:
    """Indices into the grid's node axes of every point of ``node_labels(axes)``."""
    idx = [np.searchsorted(grid.axes[a], axes[a]) for a in AXES]
    for a, i in zip(AXES, idx):
        if not np.allclose(grid.axes[a][np.minimum(i, len(grid.axes[a]) - 1)], axes[a]):
            raise ValueError(f"the {a} values {axes[a]} are not all nodes of the grid")
    return tuple(m.ravel() for m in np.meshgrid(*idx, indexing="ij"))


def normalized_grid(grid: TemplateGrid) -> TemplateGrid:
    """The grid of median-normalized node spectra x = f / median(f) (float64), the input the networks see.

    Its cubic-spline interpolant is the forward model of the ceiling. Normalizing the interpolated spectrum instead
    gives the same spectra at the nodes, but the derivative of a median jumps from pixel to pixel (it is that of
    the median pixel), so its exact Jacobian is not a smooth function of the labels.

    Parameters
    ----------
    grid : TemplateGrid
        The template grid (flux in erg/s/cm^2/A).

    Returns
    -------
    TemplateGrid
        Same axes and wavelengths; flux and continuum divided by each node's median flux (dimensionless), and
        ``meta["normalization"] = "median"``.
    """
    flux = grid.flux.astype(np.float64)
    median = np.median(flux, axis=-1, keepdims=True)
    return TemplateGrid(axes=grid.axes, wave=grid.wave, flux=flux / median, continuum=grid.continuum / median,
                        source=grid.source, meta={**grid.meta, "normalization": "median"})


def normalized_jacobian(grid: TemplateGrid, axes: dict, method: str = "finite_difference") -> tuple[np.ndarray, ...]:
    """Median-normalized templates x at the nodes ``axes`` of ``grid`` and their Jacobian dx/dtheta.

    ``"finite_difference"`` differences the normalized node spectra along the grid axes (eq. J.1, with the grid
    spacing as step; second-order one-sided at the edges of the template grid, ``numpy.gradient``); ``"exact"``
    differentiates the cubic-spline interpolant of the normalized nodes (see :func:`normalized_grid`).

    Parameters
    ----------
    grid : TemplateGrid
        The template grid (not normalized).
    axes : dict
        Node values per axis (from :func:`ceiling_axes`).
    method : {"finite_difference", "exact"}
        How the Jacobian is computed.

    Returns
    -------
    labels : ndarray, shape (N, 3)
        The node labels, in ``node_labels(axes)`` order.
    x : ndarray, float64, shape (N, n_pix)
        Median-normalized templates.
    J : ndarray, float64, shape (N, n_pix, 3)
        dx / d(T_eff, log g, [M/H]), per K and per dex.

    Raises
    ------
    ValueError
        For an unknown method or axis values that are not grid nodes.
    """
    if method not in METHODS:
        raise ValueError(f"method, {method!r}, must be one of {METHODS}")
    index, labels, norm = _node_index(grid, axes), node_labels(axes), normalized_grid(grid)
    if method == "exact":
        return labels, norm.flux[index], norm.jacobian(labels)
    grads = np.gradient(norm.flux, *(grid.axes[a] for a in AXES), axis=(0, 1, 2), edge_order=2)
    return labels, norm.flux[index], np.stack([g[index] for g in grads], axis=-1)


def normalized_sigma(grid: TemplateGrid, axes: dict, mag: float, conditions: dict | None = None,
                     **exposure) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel sigma of the median-normalized spectra at the grid nodes, and their SNR, at one magnitude.

    The templates are observed with ``noise.observe`` and normalized as the training data
    (``noise.median_normalize``).

    Parameters
    ----------
    grid : TemplateGrid
        The template grid.
    axes : dict
        Node values per axis (from :func:`ceiling_axes`).
    mag : float
        i-band magnitude.
    conditions : dict, optional
        Fixed observing conditions (default ``noise.MEDIAN_CONDITIONS``).
    **exposure
        ``n_exposures``, ``exposure_time`` of ``noise.observe`` (default 12 x 900 s).

    Returns
    -------
    sigma : ndarray, shape (N, n_pix)
        1-sigma uncertainty of the normalized flux, in ``node_labels(axes)`` order.
    snr : ndarray, shape (N,)
        Median of flux / sigma per spectrum.

    Raises
    ------
    ValueError
        Axis values that are not grid nodes, or conditions outside ``noise.PHYSICAL_BOUNDS``.
    """
    templates = grid.flux[_node_index(grid, axes)]
    cond = conditions or MEDIAN_CONDITIONS
    flux, sigma = observe(grid.wave, templates, np.full(len(templates), float(mag)), cond, **exposure)
    _, sigma_x, _ = median_normalize(flux, sigma)
    return sigma_x, np.median(flux / sigma, axis=-1)


def ceiling_points(grid: TemplateGrid, mags=MAGNITUDES, axes: dict | None = None, method: str = "finite_difference",
                   conditions: dict | None = None, label_variance: float | None = None) -> pd.DataFrame:
    """Point-wise log g bound at every node of the ceiling grid and every magnitude (eqs. J.2-J.5).

    Parameters
    ----------
    grid : TemplateGrid
        The template grid.
    mags : sequence of float
        i-band magnitudes.
    axes : dict, optional
        Nodes of the ceiling grid (default ``ceiling_axes(grid)``).
    method : {"finite_difference", "exact"}
        How the Jacobian is computed (see :func:`normalized_jacobian`).
    conditions : dict, optional
        Fixed observing conditions (default ``noise.MEDIAN_CONDITIONS``).
    label_variance : float, optional
        Var(log g) of the training labels; default that of a uniform distribution over the log g nodes' range.

    Returns
    -------
    pandas.DataFrame
        One row per (mag, node): ``mag, T_eff, log_g, M_H, snr, crlb`` (marginal variance bound, dex^2),
        ``sigma_logg`` (its square root), ``rho`` (Schur decay factor) and ``r2_max``.

    Raises
    ------
    ValueError
        As :func:`normalized_jacobian`, :func:`normalized_sigma` and :func:`marginal_crlb` (a singular nuisance
        block).
    """
    axes = axes or ceiling_axes(grid)
    labels, _, jac = normalized_jacobian(grid, axes, method)
    lo, hi = axes["log_g"][0], axes["log_g"][-1]
    var = label_variance if label_variance is not None else (hi - lo) ** 2 / 12.0
    frames = []
    for mag in mags:
        sigma, snr = normalized_sigma(grid, axes, mag, conditions)
        crlb = marginal_crlb(jac, sigma, LOGG)
        frames.append(pd.DataFrame({"mag": float(mag), **dict(zip(AXES, labels.T)), "snr": snr, "crlb": crlb,
                                    "sigma_logg": np.sqrt(crlb), "rho": schur_decay(jac, sigma, LOGG),
                                    "r2_max": r2_ceiling(crlb, var)}))
    return pd.concat(frames, ignore_index=True)


def ceiling_table(points: pd.DataFrame) -> pd.DataFrame:
    """Table 13's ceiling columns: per magnitude the median SNR, the median and 10/90 percentiles of R^2_max over
    the grid, the median Schur decay factor, and the paper's SNR, 3D and 5D medians (``paper``).

    Parameters
    ----------
    points : pandas.DataFrame
        From :func:`ceiling_points`.

    Returns
    -------
    pandas.DataFrame
        One row per magnitude: ``mag, snr, r2_max_median, r2_max_p10, r2_max_p90, rho_median, paper_snr,
        paper_r2_max_3d, paper_r2_max_5d`` (NaN where the paper gives no value).
    """
    grouped = points.groupby("mag")
    table = pd.DataFrame({
        "snr": grouped.snr.median(),
        "r2_max_median": grouped.r2_max.median(),
        "r2_max_p10": grouped.r2_max.quantile(0.1),
        "r2_max_p90": grouped.r2_max.quantile(0.9),
        "rho_median": grouped.rho.median(),
        "paper_snr": [paper.SNR_BY_MAG.get(m, np.nan) for m in grouped.groups],
        "paper_r2_max_3d": [paper.CEILING_3D.get(m, np.nan) for m in grouped.groups],
        "paper_r2_max_5d": [paper.CEILING_5D.get(m, np.nan) for m in grouped.groups],
    })
    return table.reset_index()


def ceiling_map(points: pd.DataFrame, mag: float, value: str = "r2_max") -> pd.DataFrame:
    """Median of ``value`` over [M/H] on the (log g rows, T_eff columns) plane at one magnitude.

    Parameters
    ----------
    points : pandas.DataFrame
        From :func:`ceiling_points`.
    mag : float
        One of the magnitudes of ``points``.
    value : str
        A column of ``points``.

    Returns
    -------
    pandas.DataFrame
        Index ``log_g``, columns ``T_eff``: the median of ``value`` over [M/H].

    Raises
    ------
    ValueError
        If ``mag`` is not a magnitude of ``points``.
    KeyError
        If ``value`` is not a column of ``points``.
    """
    at_mag = points[np.isclose(points.mag, mag)]
    if at_mag.empty:
        raise ValueError(f"mag, {mag}, is not one of the magnitudes of points: {sorted(map(float, points.mag.unique()))}")
    return at_mag.pivot_table(index="log_g", columns="T_eff", values=value, aggfunc="median")


def jacobian_mismatch(jac_a, jac_b, sigma) -> np.ndarray:
    """Noise-weighted relative difference ``|(J_a - J_b) / sigma| / |J_b / sigma|`` per point and parameter.

    Parameters
    ----------
    jac_a, jac_b : array (N, n_pix, n_params)
        Two Jacobians of the same spectra (``jac_b`` the reference).
    sigma : array (N, n_pix)
        Per-pixel noise.

    Returns
    -------
    numpy.ndarray, shape (N, n_params)
        Relative difference (0: identical).
    """
    wa, wb = np.asarray(jac_a) / sigma[..., None], np.asarray(jac_b) / sigma[..., None]
    return np.linalg.norm(wa - wb, axis=-2) / np.linalg.norm(wb, axis=-2)


def pointwise_crlb(grid: TemplateGrid, labels, mags, conditions: dict, chunk: int = 512) -> np.ndarray:
    """Marginal log g bound (dex^2) of individual spectra at their labels, magnitudes and observing conditions
    (e.g. a test set's ``params``), from the exact Jacobian of :func:`normalized_grid`: the envelope of Figure 12.

    Parameters
    ----------
    grid : TemplateGrid
        The template grid.
    labels : array_like, shape (N, 3)
        (T_eff, log g, [M/H]) inside the grid.
    mags : array_like, shape (N,)
        i-band magnitudes.
    conditions : dict of str -> array (N,)
        Observing conditions (keys of ``noise.TABLE2``).
    chunk : int
        Spectra per step (each holds a float64 Jacobian of ``n_pix x 3`` values: bounds the memory).

    Returns
    -------
    numpy.ndarray, shape (N,)
        Marginal variance bound of log g, dex^2.

    Raises
    ------
    ValueError
        Labels outside the grid, ``mags`` or conditions neither scalar nor one per spectrum, conditions outside
        ``noise.PHYSICAL_BOUNDS``, ``chunk`` not a positive integer, or a singular nuisance block.
    """
    labels = grid.check_labels(labels)
    if not (isinstance(chunk, (int, np.integer)) and chunk >= 1):
        raise ValueError(f"chunk, {chunk!r}, must be a positive integer")
    mags = _per_star("mags", mags, len(labels))
    conditions = {k: _per_star(f"conditions[{k!r}]", v, len(labels)) for k, v in conditions.items()}
    norm = normalized_grid(grid)
    out = np.empty(len(labels))
    for start in range(0, len(labels), chunk):
        part = slice(start, start + chunk)
        flux, sigma = observe(grid.wave, grid.interpolate(labels[part], np.float64), mags[part],
                              {k: v[part] for k, v in conditions.items()})
        out[part] = marginal_crlb(norm.jacobian(labels[part]), median_normalize(flux, sigma)[1], LOGG)
    return out


def _per_star(name: str, value, n: int) -> np.ndarray:
    """``value`` as float64 of shape (n,): one value per spectrum, or a scalar repeated."""
    try:
        return np.broadcast_to(np.asarray(value, dtype=float), (n,))
    except ValueError:
        raise ValueError(f"{name} of shape {np.shape(value)} must be a scalar or hold one value per spectrum "
                         f"({n})") from None


# --------------------------------------------------------------------------------------------------------------
# The per-star ceiling: the bound of every spectrum of a split at its own labels and noise, beside the predictions.

#: A residual within ``INFORMATION_LIMITED_K`` sigma_CRLB is "information-limited". For an efficient unbiased
#: estimator the residual is N(0, CRLB), so 95.4% of its stars fall within 2 sigma (1 sigma would call 32% of the
#: stars of a perfect estimator "model-limited"); a star beyond it is hard to explain by the noise of its spectrum.
INFORMATION_LIMITED_K = 2.0
LIMITS = ("information-limited", "model-limited")


def crlb_path(dataset_dir, split: str = "test") -> Path:
    """Where :func:`split_crlb` caches the bounds of a split: ``<dataset_dir>/crlb_<split>.csv``.

    Parameters
    ----------
    dataset_dir : str or Path
    split : {"train", "val", "test"}

    Returns
    -------
    Path
    """
    return Path(dataset_dir) / f"crlb_{split}.csv"


def split_crlb(dataset_dir, grid: TemplateGrid, split: str = "test") -> pd.DataFrame:
    """The log g bound of every spectrum of a dataset split, computed once (:func:`pointwise_crlb`) and cached.

    The cache ``crlb_path(dataset_dir, split)`` holds one row per spectrum in the split's order (column ``row``) and
    is written atomically; a missing file is computed anew (delete it to recompute). A simulated dataset rebuilt
    with ``overwrite`` replaces its folder, cache included.

    Parameters
    ----------
    dataset_dir : str or Path
        Dataset folder (:mod:`specvit_core.data`).
    grid : TemplateGrid
        The template grid the dataset was simulated from.
    split : {"train", "val", "test"}
        The split.

    Returns
    -------
    pandas.DataFrame
        Index ``row`` (position in the split); columns ``T_eff, log_g, M_H, mag`` (from the split's ``params``),
        ``crlb`` (marginal variance bound of log g, dex^2) and ``sigma_crlb`` (its square root, dex).

    Raises
    ------
    ValueError
        A grid other than the one the dataset's manifest records; a cached file whose rows, labels or magnitudes
        differ from the split's (the message names the file); labels outside the grid; as :func:`data.read_labels`.
    RuntimeError
        The test split inside :func:`data.lock_test_split` (during training).
    """
    made_with = read_manifest(dataset_dir, required=False).get("grid_meta", grid.meta)
    if made_with != grid.meta:
        raise ValueError(f"the dataset {str(dataset_dir)!r} was simulated from another template grid than the one "
                         "given; the bound must be computed with the grid that made its spectra")
    columns = [*AXES, "mag", *MEDIAN_CONDITIONS]
    params = pd.DataFrame(read_labels(dataset_dir, split, columns), columns=columns)  # without the spectra
    stars = params[[*AXES, "mag"]].rename_axis("row")
    path = crlb_path(dataset_dir, split)
    if path.is_file():
        cached = pd.read_csv(path, index_col="row")
        _check_same_stars(cached, stars, f"the cached bounds {str(path)!r}", f"the {split} split of "
                          f"{str(dataset_dir)!r}", "; delete the file to recompute it")
        return cached
    conditions = {k: params[k].to_numpy() for k in MEDIAN_CONDITIONS}
    crlb = pointwise_crlb(grid, stars[list(AXES)].to_numpy(), stars.mag.to_numpy(), conditions)
    table = stars.assign(crlb=crlb, sigma_crlb=np.sqrt(crlb))
    with atomic_path(path) as tmp:
        table.to_csv(tmp)
    return table


def _check_same_stars(table: pd.DataFrame, stars: pd.DataFrame, what: str, reference: str, advice: str) -> None:
    """Raise a ValueError naming ``what`` unless ``table`` has the rows, labels and magnitudes of ``stars``."""
    columns = [*AXES, "mag"]
    if len(table) != len(stars) or not set(columns) <= set(table.columns):
        raise ValueError(f"{what} holds {len(table)} rows with columns {list(table.columns)}, but {reference} has "
                         f"{len(stars)} spectra with {columns}: they are not of the same spectra{advice}")
    differ = ~np.all(np.isclose(table[columns].to_numpy(float), stars[columns].to_numpy(float), rtol=1e-9,
                                atol=1e-9), axis=1)
    if differ.any():
        raise ValueError(f"{what} differs from {reference} in the labels or magnitude of {int(differ.sum())} of "
                         f"{len(stars)} rows (first row {int(np.flatnonzero(differ)[0])}): they are not of the same "
                         f"spectra in the same order{advice}")


def star_ceiling(predictions: pd.DataFrame, crlb: pd.DataFrame, k: float = INFORMATION_LIMITED_K) -> pd.DataFrame:
    """A run's log g predictions with the per-star bound beside each: z-score and information/model limit.

    Parameters
    ----------
    predictions : pandas.DataFrame
        From :func:`specvit_core.runs.read_predictions`, one row per spectrum of the split in its order (read
        template fits with ``successful_only=False``: their failed fits are dropped here, after the rows are
        matched): ``true``, ``pred`` of log g and the labels ``T_eff, log_g, M_H`` and ``mag``.
    crlb : pandas.DataFrame
        :func:`split_crlb` of the same split.
    k : float
        A star is ``"information-limited"`` when ``|residual| <= k sigma_CRLB``, ``"model-limited"`` otherwise
        (default :data:`INFORMATION_LIMITED_K`).

    Returns
    -------
    pandas.DataFrame
        Index ``row`` (position in the split); the columns of ``predictions`` plus ``crlb``, ``sigma_crlb``,
        ``residual`` (pred - true, dex), ``z`` (residual / sigma_crlb), ``limit`` (one of :data:`LIMITS`) and
        ``stellar_type`` (:func:`specvit_core.metrics.stellar_type` of the true log g).

    Raises
    ------
    ValueError
        ``k`` not positive; predictions of other spectra or in another order (the rows, labels or magnitudes
        differ); predictions of another label than log g.
    """
    if not (np.isfinite(k) and k > 0):
        raise ValueError(f"k, {k!r}, must be positive and finite")
    _check_same_stars(predictions, crlb, "the predictions table", "the split of the bounds",
                      " (give the predictions of every spectrum of the split in its order)")
    if not np.allclose(predictions.true, predictions.log_g, rtol=1e-9, atol=1e-9):
        raise ValueError("the predictions are not of log g (their true values are not the log_g column): the "
                         "per-star ceiling is that of log g")
    stars = predictions.set_axis(crlb.index).assign(crlb=crlb.crlb, sigma_crlb=crlb.sigma_crlb)
    stars["residual"] = stars.pred - stars.true
    stars["z"] = stars.residual / stars.sigma_crlb
    stars["limit"] = np.where(np.abs(stars.residual) <= k * stars.sigma_crlb, *LIMITS)
    stars["stellar_type"] = stellar_type(stars.true)
    return stars[stars.success.astype(bool)] if "success" in stars else stars


def ceiling_summary(stars: pd.DataFrame, mag_edges) -> pd.DataFrame:
    """The network's R^2 against the per-star ceiling of the same stars, by magnitude bin and stellar type.

    A group's ceiling is ``R2_max = 1 - mean(CRLB) / Var(true log g)`` (:func:`r2_ceiling` of the group's mean
    bound and label variance): the population R^2 of an unbiased estimator at the bound of every star, comparable
    with the network's R^2 on the same stars.

    Parameters
    ----------
    stars : pandas.DataFrame
        From :func:`star_ceiling`.
    mag_edges : array_like
        Strictly increasing magnitude bin edges covering every star (bins ``[lo, hi)``, the last one closed).

    Returns
    -------
    pandas.DataFrame
        Index (``by``, ``stratum``): the magnitude bins (``by = "i magnitude"``), the stellar types and ``all``;
        columns ``n``, ``r2`` (the network's), ``r2_max``, ``ratio`` (r2 / r2_max), ``median_abs_z`` and
        ``within_1``, ``within_2`` (share of |z| <= 1 and <= 2). An empty group has n = 0 and NaN values; r2 and
        r2_max are NaN where the group's true log g is constant, ``ratio`` where r2_max is 0.

    Raises
    ------
    ValueError
        Edges that are not strictly increasing or do not cover every star's magnitude.
    """
    edges = np.asarray(mag_edges, dtype=float)
    if edges.ndim != 1 or edges.size < 2 or not np.all(np.diff(edges) > 0):
        raise ValueError(f"mag_edges must be a strictly increasing 1-D array of at least 2 values; got {edges}")
    mag = stars.mag.to_numpy(float)
    if np.any((mag < edges[0]) | (mag > edges[-1])):
        raise ValueError(f"{int(np.sum((mag < edges[0]) | (mag > edges[-1])))} stars lie outside the magnitude "
                         f"edges [{edges[0]:g}, {edges[-1]:g}]; every star must fall in a bin")
    which = np.clip(np.searchsorted(edges, mag, side="right") - 1, 0, edges.size - 2)
    groups = {("i magnitude", f"[{lo:g}, {hi:g}{']' if b == edges.size - 2 else ')'}"): which == b
              for b, (lo, hi) in enumerate(zip(edges[:-1], edges[1:]))}
    groups |= {("stellar type", t): stars.stellar_type.to_numpy() == t for t in STELLAR_TYPES}
    groups[("all", "all")] = np.ones(len(stars), bool)
    rows = {key: _ceiling_row(stars[mask]) for key, mask in groups.items()}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis(["by", "stratum"])


def _ceiling_row(stars: pd.DataFrame) -> dict:
    """n, the network's R^2, the ceiling R^2_max, their ratio and the z statistics of one group of stars."""
    if stars.empty:
        return {"n": 0, **dict.fromkeys(("r2", "r2_max", "ratio", "median_abs_z", "within_1", "within_2"), np.nan)}
    variance = float(np.var(stars.true))
    r2_max = float(r2_ceiling(stars.crlb.mean(), variance)) if variance > 0 else np.nan
    score = r2(stars.true, stars.pred)
    abs_z = np.abs(stars.z.to_numpy())
    return {"n": len(stars), "r2": score, "r2_max": r2_max, "ratio": score / r2_max if r2_max > 0 else np.nan,
            "median_abs_z": float(np.median(abs_z)), "within_1": float(np.mean(abs_z <= 1)),
            "within_2": float(np.mean(abs_z <= 2))}
