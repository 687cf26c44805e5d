"""Template fitting, the classical baseline of appendix H: T_eff, log g and [M/H] by chi-square minimization.

It works on the noisy flux as stored (median-normalized, with its sigma): the chi-square of eq. H.1 against the
simulator's own template grid, with the analytic flux scale A* of eq. H.2 (which absorbs the median normalization)
and inverse-variance weights; a coarse search over every second grid node inside the label ranges, then
Nelder-Mead on cubic-spline-interpolated templates around the coarse optimum.

Fitting simulated spectra with the grid that made them leaves no model mismatch: the errors come from the noise
alone, which is optimistic next to any fit of real spectra. :class:`ModelMismatch` fits against a grid with the
systematic errors of a real model instead (a misjudged line-spread function, an offset temperature scale, a
residual slope of the flux calibration).

The refinement runs in worker processes without process globals: each task carries a :class:`Refiner` (the grid
and the settings of the fit) with its block of spectra, and :func:`template_fit` makes about
:data:`TASKS_PER_WORKER` tasks per worker, so that the grid is pickled a bounded number of times.
"""
from __future__ import annotations

import math
import os
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from dataclasses import asdict, dataclass, replace

import numpy as np
import pandas as pd
from scipy.interpolate import CubicSpline
from scipy.optimize import minimize
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from .instrument import FWHM_TO_SIGMA, lsf_matrix, lsf_sigma
from .metrics import check_arrays
from .spectra import AXES, TemplateGrid
from .spectra.embedded import INSTRUMENTS

TASKS_PER_WORKER = 4  # tasks per worker process: each one pickles the grid once
IN_PROCESS_CHUNK = 64  # spectra per progress-bar step when the refinement runs in this process


def _check_bounds(bounds: dict | None, grid: TemplateGrid) -> dict:
    """Label ranges of the fit: ``bounds`` (name -> (lo, hi)) inside the grid; the grid's own bounds when None."""
    bounds = {**grid.bounds, **(bounds or {})}
    unknown = set(bounds) - set(AXES)
    if unknown:
        raise ValueError(f"bounds has unknown labels {sorted(unknown)}; valid labels are: {', '.join(AXES)}")
    for a in AXES:
        (lo, hi), (glo, ghi) = bounds[a], grid.bounds[a]
        if not (glo <= lo < hi <= ghi):
            raise ValueError(f"bounds[{a!r}], ({lo:g}, {hi:g}), must be an increasing pair inside the grid's range "
                             f"[{glo:g}, {ghi:g}]")
    return bounds


def coarse_nodes(grid: TemplateGrid, bounds: dict | None = None, step: int = 2) -> dict:
    """Indices of every ``step``-th grid node inside ``bounds``, per axis (the coarse search of appendix H.2).

    Parameters
    ----------
    grid : TemplateGrid
        The template grid.
    bounds : dict, optional
        Label ranges ``{"T_eff": (lo, hi), ...}`` (default: the grid's).
    step : int
        Take every ``step``-th node, starting from the first one inside the range.

    Returns
    -------
    dict
        Axis name -> int ndarray of node indices.

    Raises
    ------
    ValueError
        Bad ``bounds`` (see :func:`template_fit`), ``step < 1``, or a label range holding no grid node.
    """
    if step < 1:
        raise ValueError(f"step must be a positive integer; got {step!r}")
    bounds = _check_bounds(bounds, grid)
    nodes = {}
    for a in AXES:
        lo, hi = bounds[a]
        inside = np.flatnonzero((grid.axes[a] >= lo - 1e-9) & (grid.axes[a] <= hi + 1e-9))
        if inside.size == 0:
            raise ValueError(f"bounds[{a!r}], ({lo:g}, {hi:g}), holds no node of the grid axis "
                             f"{grid.axes[a].tolist()}; the coarse search needs at least one")
        nodes[a] = inside[::step]
    return nodes


@dataclass(frozen=True)
class ModelMismatch:
    """Systematic errors of the fitting model: how its templates differ from those that made the spectra.

    Three errors every fit of real spectra carries in some measure, each zero by default (no mismatch):

    - **the line-spread function**: the model's resolving power is ``1 - resolution`` times the instrument's, so its
      templates are the grid's convolved with the Gaussian that widens the instrument's LSF by ``1 / (1 -
      resolution)`` (added in quadrature), as when the LSF of the templates is measured from arc lines at another
      fibre or focus than the science spectra; lines come out shallower and wider at the same equivalent width;
    - **the temperature scale**: the template at node T_eff is the spectrum of a star ``teff_offset`` K hotter
      (cubic-spline interpolation along T_eff), as between the T_eff scales of model atmospheres and of
      photometric or interferometric calibrations (50-100 K); it relabels the templates, so a fit returns T_eff
      ``teff_offset`` too low and the other labels about unchanged;
    - **the flux calibration**: the templates are multiplied by ``1 + flux_tilt (lambda - lambda_mid) / (lambda_max -
      lambda_min)``, a residual slope of the spectrophotometric calibration (or of the instrument response) across
      the arm; the fit of appendix H scales each template by one factor A* and has no continuum polynomial, so the
      slope pulls T_eff, and log g and [M/H] follow along their degeneracies with it.

    Parameters
    ----------
    resolution : float
        Fractional shortfall of the model's resolving power, in [0, 1).
    teff_offset : float
        T_eff scale offset, K; smaller in magnitude than the grid's T_eff step.
    flux_tilt : float
        Relative flux change from the blue to the red end of the grid, in (-2, 2).
    """

    resolution: float = 0.0
    teff_offset: float = 0.0
    flux_tilt: float = 0.0


#: A few percent in the LSF and the flux calibration and 100 K in T_eff: typical sizes, chosen a priori.
TYPICAL_MISMATCH = ModelMismatch(resolution=0.05, teff_offset=100.0, flux_tilt=0.03)


def _broaden(grid: TemplateGrid, array: np.ndarray, resolution: float) -> np.ndarray:
    """``array`` (..., L) convolved with the Gaussian that lowers the resolving power of the grid's instrument by
    ``1 - resolution``; the ends are padded with their edge values."""
    instrument_r = INSTRUMENTS[grid.meta.get("instrument", "mr")][1]  # None: the MR arm's R(lambda)
    widen = np.sqrt((1 - resolution) ** -2.0 - 1)  # sigma_extra / sigma_instrument

    def extra_r(wave):  # the resolving power whose LSF sigma is sigma_extra
        return wave / (widen * lsf_sigma(wave, instrument_r)) * FWHM_TO_SIGMA

    wave, steps = grid.wave, np.diff(grid.wave)[[0, -1]]
    pad = int(np.ceil(5 * widen * lsf_sigma(wave, instrument_r).max() / steps.min())) + 1
    padded_wave = np.concatenate([wave[0] - steps[0] * np.arange(pad, 0, -1), wave,
                                  wave[-1] + steps[1] * np.arange(1, pad + 1)])
    matrix = lsf_matrix(padded_wave, wave, resolution=extra_r)
    flat = np.pad(array.reshape(-1, wave.size), [(0, 0), (pad, pad)], mode="edge")
    return (matrix @ flat.T).T.reshape(array.shape).astype(array.dtype)


def mismatched_grid(grid: TemplateGrid, mismatch: ModelMismatch) -> TemplateGrid:
    """The grid as a model with the systematic errors of ``mismatch`` sees it (see :class:`ModelMismatch`).

    Parameters
    ----------
    grid : TemplateGrid
        The templates that made the spectra.
    mismatch : ModelMismatch
        The model's errors.

    Returns
    -------
    TemplateGrid
        ``grid`` itself when ``mismatch`` has no error; otherwise a grid on the same axes and wavelengths with
        perturbed flux and continuum and ``meta["mismatch"]`` recording the errors.

    Raises
    ------
    ValueError
        ``resolution`` outside [0, 1), ``|teff_offset|`` not smaller than the grid's T_eff step, or ``flux_tilt``
        outside (-2, 2) (a template with negative flux).
    """
    teff, wave = grid.axes["T_eff"], grid.wave
    if not 0 <= mismatch.resolution < 1:
        raise ValueError(f"resolution must lie in [0, 1) (a model cannot resolve more than the data); "
                         f"got {mismatch.resolution!r}")
    if abs(mismatch.teff_offset) >= np.min(np.diff(teff)):
        raise ValueError(f"|teff_offset| must be smaller than the grid's T_eff step ({np.min(np.diff(teff)):g} K); "
                         f"got {mismatch.teff_offset!r}")
    if abs(mismatch.flux_tilt) >= 2:
        raise ValueError(f"flux_tilt must lie in (-2, 2) (the flux stays positive); got {mismatch.flux_tilt!r}")
    if mismatch == ModelMismatch():
        return grid
    arrays = {"flux": grid.flux, "continuum": grid.continuum}
    if mismatch.resolution:
        arrays = {k: _broaden(grid, v, mismatch.resolution) for k, v in arrays.items()}
    if mismatch.teff_offset:
        arrays = {k: CubicSpline(teff, v, axis=0)(teff + mismatch.teff_offset).astype(v.dtype)
                  for k, v in arrays.items()}
    if mismatch.flux_tilt:
        tilt = 1 + mismatch.flux_tilt * (wave - (wave[0] + wave[-1]) / 2) / (wave[-1] - wave[0])
        arrays = {k: (v * tilt).astype(v.dtype) for k, v in arrays.items()}
    return replace(grid, **arrays, meta={**grid.meta, "mismatch": asdict(mismatch)})


def chi2_scaled(flux, weights, templates) -> tuple[np.ndarray, np.ndarray]:
    """Chi-square of every spectrum against every template at the best flux scale (eqs. H.1, H.2).

    ``chi2 = sum w f^2 - (sum w f t)^2 / sum w t^2`` and ``A* = sum w f t / sum w t^2``: two matrix products.

    Parameters
    ----------
    flux, weights : array_like, shape (N, L)
        Observed flux and inverse variances ``1 / sigma^2``.
    templates : array_like, shape (K, L)
        Template fluxes on the same wavelengths.

    Returns
    -------
    chi2, scale : ndarray, float64, shape (N, K)
        Minimum chi-square of spectrum n against template k, and the flux scale A* that attains it.

    Raises
    ------
    ValueError
        Shapes that do not multiply (numpy's error).
    """
    flux, weights, templates = (np.asarray(a, dtype=np.float64) for a in (flux, weights, templates))
    wf = weights * flux
    ft = wf @ templates.T  # (N, K)
    tt = weights @ (templates ** 2).T  # (N, K)
    return np.sum(wf * flux, axis=1, keepdims=True) - ft ** 2 / tt, ft / tt


@dataclass(frozen=True, eq=False)
class Refiner:
    """The Nelder-Mead refinement of appendix H.2: the grid and the fit's settings, shipped whole to a worker.

    Parameters
    ----------
    axes : dict
        Axis name -> node values of the grid.
    flux : ndarray, shape (n_T_eff, n_log_g, n_M_H, L)
        The grid's templates.
    bounds : dict
        Label ranges ``{"T_eff": (lo, hi), ...}`` (checked, see :func:`template_fit`).
    radius : int
        The splines run through the nodes within ``radius`` of the start along each axis.
    max_iter : int
        Nelder-Mead iterations per start.
    """

    axes: dict
    flux: np.ndarray
    bounds: dict
    radius: int
    max_iter: int

    def refine(self, f: np.ndarray, w: np.ndarray, start) -> tuple:
        """Nelder-Mead from the grid node ``start`` on a cubic spline through the nodes within ``radius``.

        Parameters
        ----------
        f, w : ndarray, float64, shape (L,)
            Flux and inverse variances of one spectrum.
        start : sequence of int, length 3
            Node indices along :data:`AXES`.

        Returns
        -------
        tuple
            ``(theta (3,), chi2, success, nfev)``; ``success``: converged and not pinned to a window edge that
            is not a label bound (an optimum beyond the window).

        Raises
        ------
        IndexError
            ``start`` outside the grid.
        """
        axes, bounds, radius = self.axes, self.bounds, self.radius
        win = [np.arange(max(0, s - radius), min(len(axes[a]), s + radius + 1)) for a, s in zip(AXES, start)]
        nodes = [axes[a][i] for a, i in zip(AXES, win)]
        templates = self.flux[np.ix_(*win)].reshape(-1, f.size).astype(np.float64)  # (K, L)
        splines = [CubicSpline(x, np.eye(len(x))) for x in nodes]
        step = np.array([axes[a][1] - axes[a][0] for a in AXES])  # the optimizer works in node units (BOSZ steps)
        wf, ff = w * f, np.sum(w * f * f)

        def chi2(u):
            t = np.ravel(np.einsum("i,j,k->ijk", *(s(v) for s, v in zip(splines, u * step)))) @ templates  # (L,)
            return ff - (wf @ t) ** 2 / (w @ t ** 2)

        lo = np.array([max(x[0], bounds[a][0]) for a, x in zip(AXES, nodes)]) / step
        hi = np.array([min(x[-1], bounds[a][1]) for a, x in zip(AXES, nodes)]) / step
        x0 = np.array([axes[a][s] for a, s in zip(AXES, start)]) / step
        simplex = [x0] + [x0 + np.eye(3)[i] * (1.0 if x0[i] + 1 <= hi[i] else -1.0) for i in range(3)]
        res = minimize(chi2, x0, method="Nelder-Mead", bounds=list(zip(lo, hi)),
                       options=dict(initial_simplex=np.clip(simplex, lo, hi), xatol=1e-3, fatol=1e-3,
                                    maxiter=self.max_iter))
        # pinned to a window edge that is not a label bound: the optimum lies outside the window, the fit failed
        inner_lo = lo > np.array([bounds[a][0] for a in AXES]) / step + 1e-9
        inner_hi = hi < np.array([bounds[a][1] for a in AXES]) / step - 1e-9
        pinned = np.any(inner_lo & (res.x <= lo + 1e-6)) or np.any(inner_hi & (res.x >= hi - 1e-6))
        return res.x * step, float(res.fun), bool(res.success and not pinned), int(res.nfev)

    def refine_chunk(self, flux: np.ndarray, weights: np.ndarray, starts: np.ndarray) -> list[tuple]:
        """The best (lowest chi-square) refinement over the starts of each spectrum, one BLAS thread.

        Parameters
        ----------
        flux, weights : ndarray, float64, shape (n, L)
            Flux and inverse variances of the spectra.
        starts : int ndarray, shape (n, n_starts, 3)
            Node indices of the starts of each spectrum.

        Returns
        -------
        list of tuple
            One :meth:`refine` result per spectrum, in input order.

        Raises
        ------
        IndexError
            A start outside the grid.
        """
        with threadpool_limits(1):  # small products per step: threaded BLAS only adds overhead and oversubscribes
            return [min((self.refine(f, w, s) for s in spectrum_starts), key=lambda r: r[1])
                    for f, w, spectrum_starts in zip(flux, weights, starts)]


def _coarse_starts(flux: np.ndarray, weights: np.ndarray, grid: TemplateGrid, bounds: dict, coarse_step: int,
                   n_starts: int) -> np.ndarray:
    """Node indices (N, n_starts, 3) of the ``n_starts`` best coarse nodes of every spectrum."""
    idx = coarse_nodes(grid, bounds, coarse_step)
    templates = grid.flux[np.ix_(*idx.values())].reshape(-1, grid.wave.size)
    best = np.argsort(chi2_scaled(flux, weights, templates)[0], axis=1)[:, :n_starts]  # (N, n_starts)
    return np.stack([i[k] for i, k in zip(idx.values(), np.unravel_index(best, [len(i) for i in idx.values()]))],
                    -1)


def _refine_all(refiner: Refiner, flux: np.ndarray, weights: np.ndarray, starts: np.ndarray, workers: int,
                chunk: int | None, progress: bool) -> list[tuple]:
    """:meth:`Refiner.refine_chunk` over blocks of ``chunk`` spectra, in ``workers`` processes; input order."""
    if chunk is None:
        chunk = IN_PROCESS_CHUNK if workers == 1 else math.ceil(len(flux) / (TASKS_PER_WORKER * workers))
    tasks = [(flux[s:s + chunk], weights[s:s + chunk], starts[s:s + chunk]) for s in range(0, len(flux), chunk)]
    pool = ProcessPoolExecutor(max_workers=min(workers, len(tasks))) if workers != 1 else nullcontext()
    results = []
    with pool, tqdm(total=len(flux), desc="template fit", unit="spectra", disable=not progress) as bar:
        for part in (map if workers == 1 else pool.map)(refiner.refine_chunk, *zip(*tasks)):  # input order
            results += part
            bar.update(len(part))
    return results


def template_fit(flux, error, grid: TemplateGrid, bounds: dict | None = None, *, coarse_step: int = 2,
                 n_starts: int = 5, radius: int = 2, max_iter: int = 600, mismatch: ModelMismatch = ModelMismatch(),
                 workers: int | None = None, chunk: int | None = None, progress: bool = True) -> pd.DataFrame:
    """Fit T_eff, log g and [M/H] of each spectrum by chi-square minimization against a template grid (appendix H).

    Parameters
    ----------
    flux, error : array_like, shape (N, L)
        Observed (noisy) flux and its 1-sigma uncertainty on the grid's wavelengths; any per-spectrum scale
        (median normalization) is absorbed by the analytic scale A*.
    grid : TemplateGrid
        The templates (the simulator's grid for simulated data).
    bounds : dict, optional
        Label ranges ``{"T_eff": (lo, hi), ...}`` of the search (default: the grid's); estimates stay inside.
    coarse_step : int
        The coarse search uses every ``coarse_step``-th node inside ``bounds`` (2 in the paper).
    n_starts : int
        Nelder-Mead starts from the ``n_starts`` best coarse nodes; the lowest chi-square wins (one start can
        end in a local minimum of the T_eff-log g-[M/H] degeneracy).
    radius : int
        Each refinement's splines run through the nodes within ``radius`` of its start along each axis.
    max_iter : int
        Nelder-Mead iterations per spectrum.
    mismatch : ModelMismatch
        Fit against :func:`mismatched_grid` of ``grid``: a model with systematic errors (default: none, the
        grid as given).
    workers : int, optional
        Processes for the refinement (default: all cores; 1 runs in this process).
    chunk : int, optional
        Spectra per task (and per progress-bar step); default: about :data:`TASKS_PER_WORKER` tasks per worker,
        :data:`IN_PROCESS_CHUNK` spectra with ``workers=1``. The results do not depend on it.
    progress : bool
        Show a progress bar.

    Returns
    -------
    pandas.DataFrame
        One row per spectrum: ``T_eff, log_g, M_H, chi2, success, nfev``. ``success``: Nelder-Mead converged and
        the estimate is not pinned to the edge of the refinement window (an optimum beyond the window).

    Raises
    ------
    ValueError
        ``flux``/``error`` empty, non-finite, of different shapes or not on the grid's wavelengths; ``error`` not
        positive; bad ``bounds`` or a label range without grid nodes; ``radius``, ``n_starts``, ``coarse_step`` or
        ``chunk`` < 1; a ``mismatch`` that :func:`mismatched_grid` refuses.
    """
    flux, error = (np.atleast_2d(np.asarray(a, dtype=np.float64)) for a in (flux, error))
    flux, error = check_arrays(flux=flux, error=error)
    if flux.shape != error.shape or flux.shape[1] != grid.wave.size:
        raise ValueError(f"flux and error must both have shape (N, {grid.wave.size}) (the grid's wavelengths); "
                         f"got {flux.shape} and {error.shape}")
    if np.any(error <= 0):
        raise ValueError(f"error must be positive (it gives the weights 1 / error^2); found {np.sum(error <= 0)} "
                         f"values <= 0, min {error.min():g}")
    for name, value in (("radius", radius), ("n_starts", n_starts), ("chunk", 1 if chunk is None else chunk)):
        if value < 1:
            raise ValueError(f"{name} must be a positive integer; got {value!r}")
    bounds = _check_bounds(bounds, grid)
    grid = mismatched_grid(grid, mismatch)
    weights = error ** -2.0
    starts = _coarse_starts(flux, weights, grid, bounds, coarse_step, n_starts)  # (N, n_starts, 3)
    refiner = Refiner(grid.axes, grid.flux, bounds, radius, max_iter)
    results = _refine_all(refiner, flux, weights, starts, workers or os.cpu_count() or 1, chunk, progress)
    theta = np.array([r[0] for r in results])
    return pd.DataFrame({"T_eff": theta[:, 0], "log_g": theta[:, 1], "M_H": theta[:, 2],
                         "chi2": [r[1] for r in results], "success": [r[2] for r in results],
                         "nfev": [r[3] for r in results]})
