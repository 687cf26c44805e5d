"""Fisher information, Schur-complement Cramer-Rao bounds and the R^2 ceiling (Section 5.1.4, Appendices C, J).

Everything is batched over leading axes: ``J`` is ``(..., n_pix, n_params)`` (e.g. one Jacobian per grid point)
and ``sigma`` is the per-pixel noise, broadcastable to ``J.shape[:-1]``.

Marginalization solves with the nuisance block of the *correlation* form of the Fisher matrix (unit diagonal),
so the result does not depend on the parameter units (K versus dex). A nuisance block that is singular or
numerically so (condition number above ``MAX_NUISANCE_COND``) raises a ValueError instead of returning a bound
from a pseudo-inverse: it means a nuisance parameter (combination) is not constrained by the spectrum, and the
Jacobian (step sizes, parameter set) should be fixed rather than the bound trusted.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

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

    ``1 / (I_gg - I_gn I_nn^-1 I_ng)``, equal to ``[I^-1]_gg``; ``inf`` when the parameter is exactly
    degenerate with the nuisance parameters. Parameters, Returns, Raises: as :func:`conditional_crlb`.
    """
    info_gg, rho = _information_and_decay(J, sigma, index)
    with np.errstate(divide="ignore"):
        return 1.0 / (info_gg * rho)


def schur_decay(J, sigma, index: int) -> np.ndarray:
    """Fraction ``rho`` of the parameter's information kept after marginalization (Appendix J.3).

    ``rho = conditional_crlb / marginal_crlb`` in [0, 1]; 1 when the parameter is orthogonal to the nuisances
    (in the noise-weighted metric), 0 when it is degenerate with them. Independent of sigma scaling and of
    parameter units. Parameters, Returns, Raises: as :func:`conditional_crlb`.
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
