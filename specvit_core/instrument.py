"""The PFS medium-resolution red arm as a linear operator: wavelength grid and line-spread function.

The templates are convolved with a Gaussian LSF whose width follows the resolving power across the arm and are
sampled at the detector pixel centres (the paper's appendix G.3: convolution followed by interpolation onto the
detector grid). Both steps are linear, so they are one sparse matrix acting on a high-resolution spectrum.
"""
from __future__ import annotations

import numpy as np
from scipy import sparse

MR_N_PIXELS = 4096
MR_WAVE_MIN = 7100.2136  # Angstrom, first pixel centre
MR_WAVE_MAX = 8849.7864  # Angstrom, last pixel centre
MR_R_BLUE, MR_R_RED = 5000.0, 6500.0  # resolving power at the two ends of the arm
# Gaia DR3 RVS mean spectra (Seabroke et al. 2023; Katz et al. 2023): 846-870 nm in 0.01 nm steps, vacuum, R ~ 11,500
GAIA_RVS_WAVE_MIN, GAIA_RVS_WAVE_MAX, GAIA_RVS_N_PIXELS = 8460.0, 8700.0, 2401  # Angstrom, vacuum
GAIA_RVS_R = 11_500.0
FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))


def mr_wavelength() -> np.ndarray:
    """The 4096-pixel linear wavelength grid of the PFS MR red arm.

    Returns
    -------
    ndarray, shape (4096,)
        Pixel centres in Angstrom (float64), from 7100.2136 to 8849.7864.
    """
    return np.linspace(MR_WAVE_MIN, MR_WAVE_MAX, MR_N_PIXELS)


def vacuum_to_air(wave) -> np.ndarray:
    """Air wavelengths of vacuum wavelengths: the IAU standard (Morton 2000, ApJS 130, 403, eq. 8).

    The MR grid and the templates are in air; SDSS/APOGEE, DESI and Gaia serve vacuum wavelengths.

    Parameters
    ----------
    wave : array_like
        Vacuum wavelengths, Angstrom (> 2000).

    Returns
    -------
    ndarray
        Air wavelengths, Angstrom (about 2.3 A shorter near 8500 A).
    """
    wave = np.asarray(wave, dtype=float)
    s2 = (1e4 / wave) ** 2
    return wave / (1.0 + 8.34254e-5 + 2.406147e-2 / (130.0 - s2) + 1.5998e-4 / (38.9 - s2))


def air_to_vacuum(wave) -> np.ndarray:
    """Vacuum wavelengths of air wavelengths: the inversion of :func:`vacuum_to_air` by N. Piskunov (used by VALD).

    Parameters
    ----------
    wave : array_like
        Air wavelengths, Angstrom (> 2000).

    Returns
    -------
    ndarray
        Vacuum wavelengths, Angstrom; round trips with :func:`vacuum_to_air` agree to ~1e-5 A.
    """
    wave = np.asarray(wave, dtype=float)
    s2 = (1e4 / wave) ** 2
    return wave * (1.0 + 8.336624212083e-5 + 2.408926869968e-2 / (130.1065924522 - s2)
                   + 1.599740894897e-4 / (38.92568793293 - s2))


def resolving_power(wave: np.ndarray) -> np.ndarray:
    """Resolving power R(lambda) of the MR arm: linear from 5000 at the blue end to 6500 at the red end.

    Parameters
    ----------
    wave : array_like
        Wavelengths in Angstrom.

    Returns
    -------
    ndarray, same shape as ``wave``
        R = lambda / FWHM (dimensionless); held at 5000 / 6500 outside the arm.
    """
    frac = (np.asarray(wave, dtype=float) - MR_WAVE_MIN) / (MR_WAVE_MAX - MR_WAVE_MIN)
    return MR_R_BLUE + (MR_R_RED - MR_R_BLUE) * np.clip(frac, 0.0, 1.0)


def gaia_rvs_wavelength() -> np.ndarray:
    """The 2,401 pixel centres of Gaia DR3 RVS mean spectra, 8460-8700 A in 0.1 A steps, in vacuum.

    Returns
    -------
    ndarray, shape (2401,)
        Vacuum wavelengths, Angstrom.
    """
    return np.linspace(GAIA_RVS_WAVE_MIN, GAIA_RVS_WAVE_MAX, GAIA_RVS_N_PIXELS)


def apogee_wavelength() -> np.ndarray:
    """The 4096-pixel H-band grid APOGEE spectra are resampled onto (paper appendix F.1), in air.

    The paper gives the pixel count, not the limits: the grid spans APOGEE's detectors, 15140-16960 A in vacuum,
    linearly. A network pre-trained on the MR grid sees these pixels at the positions of the MR pixels.

    Returns
    -------
    ndarray, shape (4096,)
        Air wavelengths, Angstrom.
    """
    return vacuum_to_air(np.linspace(15140.0, 16960.0, MR_N_PIXELS))


def lsf_sigma(wave: np.ndarray, resolution=None) -> np.ndarray:
    """Gaussian LSF standard deviation at ``wave`` (FWHM = lambda / R).

    Parameters
    ----------
    wave : array_like
        Wavelengths in Angstrom.
    resolution : float or callable, optional
        Resolving power R, constant or a function of wavelength; default the MR arm's :func:`resolving_power`.

    Returns
    -------
    ndarray, same shape as ``wave``
        LSF sigma in Angstrom.
    """
    wave = np.asarray(wave, dtype=float)
    power = resolving_power(wave) if resolution is None else (
        resolution(wave) if callable(resolution) else np.full_like(wave, float(resolution)))
    return wave / power * FWHM_TO_SIGMA


def lsf_matrix(wave_in: np.ndarray, wave_out: np.ndarray | None = None, n_sigma: float = 5.0,
               resolution=None) -> sparse.csr_matrix:
    """Sparse matrix that convolves a spectrum sampled on ``wave_in`` with the MR LSF and samples it on ``wave_out``.

    Each row is a Gaussian of width ``lsf_sigma(wave_out[i])`` evaluated at the input samples and multiplied by the
    input sample widths (trapezoid weights), normalized to unit sum so that a flat spectrum stays flat and a line's
    equivalent width is conserved.

    Parameters
    ----------
    wave_in : array (n_in,)
        Strictly increasing wavelengths of the high-resolution input, Angstrom. Must cover ``wave_out`` with
        ``n_sigma`` LSF widths to spare.
    wave_out : array (n_out,), optional
        Output pixel centres; the MR grid by default.
    n_sigma : float
        Half-width of the kernel in LSF standard deviations.
    resolution : float or callable, optional
        Resolving power of another spectrograph (see :func:`lsf_sigma`); default the MR arm's.

    Returns
    -------
    scipy.sparse.csr_matrix of shape (n_out, n_in)

    Raises
    ------
    ValueError
        If ``wave_in`` is not increasing or does not cover the output range.
    """
    wave_in = np.asarray(wave_in, dtype=float)
    wave_out = mr_wavelength() if wave_out is None else np.asarray(wave_out, dtype=float)
    if wave_in.ndim != 1 or np.any(np.diff(wave_in) <= 0):
        raise ValueError("wave_in must be a 1-D strictly increasing wavelength array")
    sig = lsf_sigma(wave_out, resolution)
    if wave_in[0] > wave_out[0] - n_sigma * sig[0] or wave_in[-1] < wave_out[-1] + n_sigma * sig[-1]:
        raise ValueError(
            f"wave_in ({wave_in[0]:.1f}-{wave_in[-1]:.1f} A) must cover the output grid "
            f"({wave_out[0]:.1f}-{wave_out[-1]:.1f} A) plus {n_sigma} LSF widths on each side"
        )
    widths = np.gradient(wave_in)  # trapezoid-like sample widths
    lo = np.searchsorted(wave_in, wave_out - n_sigma * sig)
    hi = np.searchsorted(wave_in, wave_out + n_sigma * sig)
    counts = hi - lo
    rows = np.repeat(np.arange(wave_out.size), counts)
    cols = np.concatenate([np.arange(a, b) for a, b in zip(lo, hi)])
    vals = np.exp(-0.5 * ((wave_in[cols] - wave_out[rows]) / sig[rows]) ** 2) * widths[cols]
    norm = np.bincount(rows, weights=vals, minlength=wave_out.size)
    vals /= norm[rows]
    return sparse.csr_matrix((vals, (rows, cols)), shape=(wave_out.size, wave_in.size))


def convolve_to_mr(wave_in: np.ndarray, flux: np.ndarray, wave_out: np.ndarray | None = None) -> np.ndarray:
    """Convolve high-resolution spectra to the MR resolution and sample them on ``wave_out``.

    Parameters
    ----------
    wave_in : ndarray, shape (n_in,)
        Strictly increasing wavelengths of ``flux`` in Angstrom, covering ``wave_out`` plus 5 LSF widths.
    flux : array_like, shape (..., n_in)
        One or more spectra sampled on ``wave_in``.
    wave_out : ndarray, shape (n_out,), optional
        Output pixel centres in Angstrom; the MR grid by default.

    Returns
    -------
    ndarray, shape (..., n_out)
        The convolved spectra (float64).

    Raises
    ------
    ValueError
        If ``wave_in`` is not increasing or does not cover ``wave_out`` (see :func:`lsf_matrix`).
    """
    matrix = lsf_matrix(wave_in, wave_out)
    flux = np.asarray(flux, dtype=float)
    flat = flux.reshape(-1, flux.shape[-1])
    out = (matrix @ flat.T).T
    return out.reshape(*flux.shape[:-1], matrix.shape[0])
