"""Survey spectra onto the 4096-pixel MR grid: the preprocessing steps of the paper's appendix L.

The steps, each a function here, in the order :func:`preprocess_spectrum` applies them to one
:class:`~specvit_core.surveys.ObservedSpectrum`:

* vacuum to air (the grid and the templates are in air; :func:`specvit_core.instrument.vacuum_to_air`);
* rest frame, lambda_rest = lambda_obs / (1 + v_rad / c) or lambda_obs / (1 + z) (L.3, eqs. L.4/L.5;
  :func:`to_rest_frame`);
* linear interpolation onto the grid (L.4; :func:`resample`), then flux clipped to be non-negative;
* spike masking against a 101-pixel moving average with a k = 10 robust threshold (L.5; :func:`mask_spikes`);
* signal-to-noise ratio before normalization: median(f / sigma) with errors (eq. L.10; :func:`snr_from_errors`),
  the second-difference estimator without (eqs. L.8/L.9; :func:`snr_from_flux`) (L.7);
* median normalization to 0.5, the error scaled alike, a constant 0.02 placeholder without errors (L.6/L.7;
  :func:`median_normalize`);
* pixels without data filled last: flux 0.5 (the normalized continuum), error +inf (L.4).

Around the spectra: the parameter-range filter of the labels (L.2; :func:`in_label_ranges`) and the seeded
train/val/test split (L.8; :func:`split_indices`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.constants import c as _C_M_PER_S

from .config import LABEL_RANGES, require_integer
from .instrument import mr_wavelength, vacuum_to_air
from .metrics import MAD_TO_SIGMA
from .surveys import ObservedSpectrum

C_KM_S = _C_M_PER_S / 1000.0  # speed of light, km/s
CONTINUUM = 0.5  # the median-normalized continuum level (L.4, L.6)
PLACEHOLDER_ERROR = 0.02  # sigma written when a spectrum has no uncertainties, after normalization (L.6)
SPIKE_WINDOW = 101  # pixels of the moving-average baseline (L.5)
SPIKE_K = 10.0  # threshold in robust sigmas (L.5)
SPIKE_SIDES = ("both", "upper")
NOISE_FREE_SNR = 1e8  # residuals below median|f| / 1e8 are round-off: no noise scale, no spike flagged


def to_rest_frame(wave, vrad: float = np.nan, redshift: float = np.nan) -> np.ndarray:
    """Rest-frame wavelengths of observed ones (appendix L.3).

    lambda_rest = lambda_obs / (1 + v_rad / c) (eq. L.4) when ``vrad`` is finite, else
    lambda_rest = lambda_obs / (1 + z) (eq. L.5). The Doppler factor is the paper's first-order one.

    Parameters
    ----------
    wave : array_like
        Observed wavelengths, Angstrom (any medium; the shift is a factor).
    vrad : float
        Radial velocity, km/s, positive receding; NaN when unknown. Used first.
    redshift : float
        Redshift z; NaN when unknown. Used when ``vrad`` is NaN.

    Returns
    -------
    ndarray
        Rest-frame wavelengths, Angstrom (float64), same shape as ``wave``.

    Raises
    ------
    ValueError
        If neither ``vrad`` nor ``redshift`` is finite, or the Doppler factor is not positive.
    """
    wave = np.asarray(wave, dtype=np.float64)
    if np.isfinite(vrad):
        factor, what = 1.0 + float(vrad) / C_KM_S, f"vrad = {vrad} km/s"
    elif np.isfinite(redshift):
        factor, what = 1.0 + float(redshift), f"redshift = {redshift}"
    else:
        raise ValueError("the rest frame needs a finite radial velocity (vrad, km/s) or redshift; both are NaN")
    if factor <= 0:
        raise ValueError(f"{what} gives a non-positive Doppler factor {factor}")
    return wave / factor


def _source_valid(flux: np.ndarray, error: np.ndarray | None) -> np.ndarray:
    """Source pixels with data: finite flux and, when errors exist, a finite positive error."""
    valid = np.isfinite(flux)
    if error is not None:
        with np.errstate(invalid="ignore"):
            valid &= np.isfinite(error) & (error > 0)
    return valid


def resample(wave, flux, error, wave_out) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Linear interpolation of a spectrum and its error onto another wavelength grid (appendix L.4).

    An output pixel is covered when it lies inside [wave[0], wave[-1]] and the source pixels that bracket it have
    data (finite flux and, when ``error`` is given, a finite positive error). A source pixel that carries zero
    interpolation weight (the output pixel falls exactly on the other one) is not required, so a spectrum already
    on the output grid keeps every pixel that has data. The error is interpolated linearly like the flux: it keeps
    the per-pixel noise level the source reports (formal propagation, sqrt((1-t)^2 s_j^2 + t^2 s_j+1^2), would
    make it depend on the pixel phase and ignores the correlation interpolation introduces).

    Parameters
    ----------
    wave : array_like (n,)
        Source wavelengths, Angstrom, finite and strictly increasing, same medium and frame as ``wave_out``.
    flux : array_like (n,)
        Source flux; non-finite marks a pixel without data.
    error : array_like (n,) or None
        Source 1-sigma error; non-finite or non-positive marks a pixel without data. None when there is none.
    wave_out : array_like (m,)
        Output wavelengths, Angstrom.

    Returns
    -------
    flux_out : ndarray (m,)
        Interpolated flux, NaN where not covered (the fill of L.4 comes last, see :func:`preprocess_spectrum`).
    error_out : ndarray (m,) or None
        Interpolated error, NaN where not covered; None when ``error`` is None.
    covered : ndarray of bool (m,)
        Output pixels that have data.

    Raises
    ------
    ValueError
        If the arrays are not 1-D, differ in length, or ``wave`` is not finite and strictly increasing with at
        least two values.
    """
    wave = np.asarray(wave, dtype=np.float64)
    flux = np.asarray(flux, dtype=np.float64)
    error = None if error is None else np.asarray(error, dtype=np.float64)
    wave_out = np.asarray(wave_out, dtype=np.float64)
    if wave.ndim != 1 or wave.size < 2 or wave_out.ndim != 1:
        raise ValueError("wave must be 1-D with at least 2 values and wave_out 1-D")
    if flux.shape != wave.shape or (error is not None and error.shape != wave.shape):
        raise ValueError(f"flux {flux.shape} and error {None if error is None else error.shape} must have the "
                         f"shape of wave {wave.shape}")
    if not np.all(np.isfinite(wave)) or np.any(np.diff(wave) <= 0):
        raise ValueError("wave must be finite and strictly increasing")
    valid = _source_valid(flux, error)
    j = np.clip(np.searchsorted(wave, wave_out, side="right") - 1, 0, wave.size - 2)
    t = (wave_out - wave[j]) / (wave[j + 1] - wave[j])
    inside = (wave_out >= wave[0]) & (wave_out <= wave[-1])
    covered = inside & (valid[j] | (t == 1.0)) & (valid[j + 1] | (t == 0.0))

    def interpolate(values):
        safe = np.where(valid, values, 0.0)
        return np.where(covered, (1.0 - t) * safe[j] + t * safe[j + 1], np.nan)

    return interpolate(flux), None if error is None else interpolate(error), covered


def _moving_average(values: np.ndarray, weights: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average of ``values`` over the pixels with weight 1; NaN where the window holds none."""
    half = window // 2
    n = values.size
    sums = np.concatenate([[0.0], np.cumsum(np.where(weights, values, 0.0))])
    counts = np.concatenate([[0], np.cumsum(weights.astype(np.int64))])
    hi = np.minimum(np.arange(n) + half + 1, n)
    lo = np.maximum(np.arange(n) - half, 0)
    count = counts[hi] - counts[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, (sums[hi] - sums[lo]) / count, np.nan)


def mask_spikes(flux, covered, window: int = SPIKE_WINDOW, k: float = SPIKE_K,
                sides: str = "both") -> tuple[np.ndarray, np.ndarray]:
    """Replace spikes by a moving-average baseline (appendix L.5).

    s is the centred moving average of the covered pixels over ``window`` pixels; r = f - s;
    sigma_hat = 1.4826 MAD(r); pixels with |r - median(r)| > k sigma_hat are flagged and their flux replaced by s.
    All statistics use covered pixels only, so uncovered pixels (and whatever they hold) neither bias the baseline
    nor the threshold. Edges: the window is truncated at the ends of the array and skips uncovered pixels, i.e. s
    is the mean of the covered pixels within ``window // 2`` pixels on either side (a window may bridge a gap).
    On a sloped continuum the truncated window is biased by about slope x window / 4 in the outer half-window.
    When sigma_hat is 0 or round-off (below median|f| / 1e8: a noise-free spectrum, whose resampled constant
    continuum differs from its moving average by rounding only) nothing is flagged: there is no noise scale.

    The appendix's rule is two-sided (``sides="both"``). It also flags absorption lines deeper than
    k sigma_hat, i.e. lines of depth 0.5 of the continuum once the continuum SNR exceeds about 20;
    ``sides="upper"`` flags only r - median(r) > k sigma_hat (cosmic rays, sky residuals) and keeps them.

    Parameters
    ----------
    flux : array_like (n,)
        Flux; values at uncovered pixels are ignored and returned unchanged.
    covered : array_like of bool (n,)
        Pixels that have data.
    window : int
        Odd number of pixels of the moving average (101 in the paper).
    k : float
        Threshold in robust sigmas (10 in the paper).
    sides : {"both", "upper"}
        Flag deviations of either sign (the appendix) or positive ones only.

    Returns
    -------
    flux_out : ndarray (n,)
        ``flux`` with the flagged pixels replaced by the baseline (float64).
    spikes : ndarray of bool (n,)
        The flagged pixels (always within ``covered``).

    Raises
    ------
    ValueError
        If ``window`` is not a positive odd integer, ``k`` not positive, ``sides`` unknown, or the shapes differ.
    """
    window = require_integer("window", window, minimum=1)
    if window % 2 == 0:
        raise ValueError(f"The window parameter, {window}, must be odd (a centred moving average)")
    if not k > 0:
        raise ValueError(f"The k parameter, {k!r}, must be positive")
    if sides not in SPIKE_SIDES:
        raise ValueError(f"The sides parameter, {sides!r}, must be one of {', '.join(SPIKE_SIDES)}")
    flux = np.array(flux, dtype=np.float64)
    covered = np.asarray(covered, dtype=bool) & np.isfinite(flux)
    if covered.shape != flux.shape:
        raise ValueError(f"covered {covered.shape} must have the shape of flux {flux.shape}")
    spikes = np.zeros(flux.shape, dtype=bool)
    if not covered.any():
        return flux, spikes
    baseline = _moving_average(flux, covered, window)
    residual = flux[covered] - baseline[covered]
    deviation = residual - np.median(residual)
    sigma_hat = MAD_TO_SIGMA * np.median(np.abs(deviation))
    if sigma_hat * NOISE_FREE_SNR > np.median(np.abs(flux[covered])):
        spikes[covered] = (np.abs(deviation) if sides == "both" else deviation) > k * sigma_hat
    flux[spikes] = baseline[spikes]
    return flux, spikes


def snr_from_errors(flux, error) -> float:
    """Signal-to-noise ratio from the errors: median(f_i / sigma_i) (appendix L.7, eq. L.10).

    Parameters
    ----------
    flux : array_like (n,)
        Flux; non-finite pixels are ignored.
    error : array_like (n,)
        1-sigma error in the units of ``flux``; non-finite or non-positive pixels are ignored.

    Returns
    -------
    float
        The median over the pixels with finite flux and finite positive error; NaN when there is none.
    """
    flux = np.asarray(flux, dtype=np.float64)
    error = np.asarray(error, dtype=np.float64)
    good = _source_valid(flux, error)
    return float(np.median(flux[good] / error[good])) if good.any() else float("nan")


def snr_from_flux(flux) -> float:
    """Signal-to-noise ratio from the flux alone: the second-difference estimator (appendix L.7, eqs. L.8/L.9).

    sigma_noise = 1.4826 / sqrt(6) median|2 f_i - f_i-1 - f_i+1| and SNR = median(f) / sigma_noise. A second
    difference is used only where the three consecutive pixels are finite (none bridges a gap). The estimator
    assumes uncorrelated pixels: on a grid finer than the source's, interpolation correlates neighbours and
    the ratio comes out too high. It is invariant to the flux scale.

    Parameters
    ----------
    flux : array_like (n,)
        Flux; non-finite pixels (no data) are ignored.

    Returns
    -------
    float
        The SNR per pixel; inf when the second differences vanish (noise-free), NaN when no three consecutive
        pixels are finite.
    """
    flux = np.asarray(flux, dtype=np.float64)
    finite = np.isfinite(flux)
    triple = finite[:-2] & finite[1:-1] & finite[2:]
    if not triple.any():
        return float("nan")
    second = 2.0 * flux[1:-1] - flux[:-2] - flux[2:]
    sigma_noise = MAD_TO_SIGMA / np.sqrt(6.0) * np.median(np.abs(second[triple]))
    signal = np.median(flux[finite])
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.float64(signal) / sigma_noise)


def median_normalize(flux, error, covered) -> tuple[np.ndarray, np.ndarray, float]:
    """Scale a spectrum so that the median of its positive covered flux is 0.5 (appendix L.6/L.7).

    f' = f x scale with scale = 0.5 / median(f[f > 0]) over covered, finite, positive pixels; the error is
    multiplied by the same factor, or, when there is none, is the constant placeholder 0.02 (after normalization)
    on the covered pixels.

    Parameters
    ----------
    flux : array_like (n,)
        Flux (non-negative after the clip of L.4).
    error : array_like (n,) or None
        1-sigma error, or None when the spectrum has none.
    covered : array_like of bool (n,)
        Pixels that have data.

    Returns
    -------
    flux : ndarray (n,)
        Normalized flux (float64); uncovered pixels keep their values (NaN from :func:`resample`).
    error : ndarray (n,)
        Scaled error, or 0.02 on covered pixels and NaN elsewhere when ``error`` is None.
    scale : float
        The factor applied.

    Raises
    ------
    ValueError
        If no covered pixel has a finite positive flux, or the shapes differ.
    """
    flux = np.asarray(flux, dtype=np.float64)
    covered = np.asarray(covered, dtype=bool)
    if covered.shape != flux.shape or (error is not None and np.shape(error) != flux.shape):
        raise ValueError(f"flux {flux.shape}, error {None if error is None else np.shape(error)} and covered "
                         f"{covered.shape} must have one shape")
    with np.errstate(invalid="ignore"):
        positive = covered & np.isfinite(flux) & (flux > 0)
    if not positive.any():
        raise ValueError("median normalization needs a covered pixel with positive flux; there is none")
    scale = float(CONTINUUM / np.median(flux[positive]))
    if error is None:
        error_out = np.where(covered, PLACEHOLDER_ERROR, np.nan)
    else:
        error_out = np.asarray(error, dtype=np.float64) * scale
    return flux * scale, error_out, scale


def in_label_ranges(labels) -> np.ndarray:
    """The parameter-range filter (appendix L.2): T_eff, log g and [M/H] inside the training ranges, inclusive.

    The ranges are :data:`specvit_core.config.LABEL_RANGES`: T_eff in [3750, 6000] K, log g in [1.0, 5.0],
    [Fe/H] (column ``M_H``) in [-2.5, 0.75].

    Parameters
    ----------
    labels : pandas.DataFrame or mapping of array_like
        Columns ``T_eff``, ``log_g`` and ``M_H``.

    Returns
    -------
    ndarray of bool
        True for the rows whose three labels are all inside their ranges; NaN (or None) is outside.

    Raises
    ------
    ValueError
        If a column is missing.
    """
    missing = [name for name in LABEL_RANGES if name not in labels]
    if missing:
        raise ValueError(f"the labels lack column(s) {', '.join(missing)}; the L.2 filter needs "
                         f"{', '.join(LABEL_RANGES)}")
    keep = None
    for name, (low, high) in LABEL_RANGES.items():
        values = np.asarray(labels[name], dtype=np.float64)
        with np.errstate(invalid="ignore"):
            inside = (values >= low) & (values <= high)  # NaN compares False
        keep = inside if keep is None else keep & inside
    return keep


def split_indices(n: int, seed: int = 42, val_fraction: float = 0.1,
                  test_fraction: float = 0.1) -> dict[str, np.ndarray]:
    """The deterministic train/val/test split (appendix L.8).

    The indices 0..n-1 are shuffled with ``numpy.random.default_rng(seed).permutation``; the first
    int(round(n x val_fraction)) go to val, the next int(round(n x test_fraction)) to test, the rest to train
    (50,000 spectra: 40,000 / 5,000 / 5,000).

    Parameters
    ----------
    n : int
        Number of spectra.
    seed : int
        Seed of the shuffle (42 in the paper).
    val_fraction, test_fraction : float
        Fractions of ``n`` for validation and test, each in (0, 1), together below 1.

    Returns
    -------
    dict
        ``{"train": idx, "val": idx, "test": idx}``, sorted int64 index arrays, disjoint and covering 0..n-1.

    Raises
    ------
    ValueError
        If ``n`` or ``seed`` is not an integer, a fraction is outside (0, 1) or they sum to 1 or more, or ``n`` is
        too small to give every split at least one spectrum.
    """
    n = require_integer("n", n, minimum=0)
    seed = require_integer("seed", seed, minimum=0)
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 < value < 1.0:
            raise ValueError(f"The {name} parameter, {value!r}, must be in (0, 1)")
    if val_fraction + test_fraction >= 1.0:
        raise ValueError(f"val_fraction + test_fraction = {val_fraction + test_fraction} must be below 1")
    n_val, n_test = int(round(n * val_fraction)), int(round(n * test_fraction))
    if min(n_val, n_test, n - n_val - n_test) < 1:
        raise ValueError(f"{n} spectra give splits of {n - n_val - n_test} (train), {n_val} (val) and {n_test} "
                         f"(test); every split needs at least one")
    order = np.random.default_rng(seed).permutation(n)
    return {"train": np.sort(order[n_val + n_test:]), "val": np.sort(order[:n_val]),
            "test": np.sort(order[n_val:n_val + n_test])}


@dataclass(frozen=True, eq=False)
class Preprocessed:
    """One spectrum after appendix L: on the output grid, normalized and filled.

    Parameters
    ----------
    flux : ndarray of float32 (m,)
        Median-normalized flux (median 0.5 over covered positive pixels); 0.5 where the source has no data.
    error : ndarray of float32 (m,)
        1-sigma error scaled like the flux (0.02 when the source has none); +inf where the source has no data.
    snr : float
        Signal-to-noise ratio per pixel before normalization (eq. L.10 with errors, eqs. L.8/L.9 without).
    n_spikes : int
        Pixels replaced by the spike mask (L.5).
    coverage : float
        Fraction of output pixels that have data.
    scale : float
        The normalization factor applied to the resampled flux and error.
    """

    flux: np.ndarray
    error: np.ndarray
    snr: float
    n_spikes: int
    coverage: float
    scale: float


def _air_rest_wave(spectrum: ObservedSpectrum) -> np.ndarray:
    """The spectrum's wavelengths in air and in the rest frame; ValueError naming the source without vrad or z."""
    wave = vacuum_to_air(spectrum.wave) if spectrum.medium == "vacuum" else np.asarray(spectrum.wave, float)
    if spectrum.rest_frame:
        return wave
    if not (np.isfinite(spectrum.vrad) or np.isfinite(spectrum.redshift)):
        raise ValueError(f"{_where(spectrum)}: the spectrum is in the observed frame and has neither a radial "
                         f"velocity (vrad, km/s) nor a redshift; give one (e.g. from the labels table) to reach "
                         f"the rest frame")
    return to_rest_frame(wave, spectrum.vrad, spectrum.redshift)


def _where(spectrum: ObservedSpectrum) -> str:
    """The spectrum's name in messages: its source, else its target id."""
    return spectrum.source or f"target {spectrum.targetid}"


def _no_coverage_message(spectrum: ObservedSpectrum, wave: np.ndarray, wave_out: np.ndarray) -> str:
    """Why no output pixel has data: the source's range (air, rest frame) and usable pixels against the grid."""
    n_valid = int(_source_valid(spectrum.flux, spectrum.error).sum())
    return (f"{_where(spectrum)}: no output pixel has data: the spectrum covers {wave[0]:.1f}-{wave[-1]:.1f} A "
            f"(air, rest frame) with {n_valid} of {wave.size} pixels holding data, the grid spans "
            f"{wave_out[0]:.1f}-{wave_out[-1]:.1f} A")


def preprocess_spectrum(spectrum: ObservedSpectrum, wave_out=None, window: int = SPIKE_WINDOW,
                        k: float = SPIKE_K, sides: str = "upper") -> Preprocessed:
    """Apply appendix L to one survey spectrum.

    Order: (a) vacuum to air when ``spectrum.medium`` is "vacuum" (the grid is in air); (b) rest frame unless
    ``spectrum.rest_frame``, from ``vrad`` or else ``redshift`` (L.3); (c) linear interpolation onto ``wave_out``
    (L.4); (d) flux clipped to >= 0; (e) spike masking (L.5); (f) SNR, before normalization: eq. L.10 with errors,
    eqs. L.8/L.9 without (computed on the resampled, despiked flux); (g) median normalization to 0.5 with the error
    scaled alike, or the 0.02 placeholder without errors (L.6/L.7); (h) fill of the pixels without data: flux 0.5,
    error +inf.

    The fill comes after the normalization on purpose: 0.5 is then the normalized continuum, as L.4 states
    ("0.5 (the median-normalized continuum level)"), even when the source covers a small part of the grid (Gaia
    RVS, 8460-8700 A, covers about 14 %); filled before, the fill would enter the median and the spike baseline.

    Parameters
    ----------
    spectrum : ObservedSpectrum
        The survey spectrum.
    wave_out : array_like, optional
        Output wavelengths in air, Angstrom; the MR grid (:func:`specvit_core.instrument.mr_wavelength`) by default.
    window, k : int, float
        Spike-mask window (odd) and threshold (L.5: 101 and 10).
    sides : {"both", "upper"}
        Spike-mask rule, see :func:`mask_spikes`. The default flags positive spikes only: the appendix's
        two-sided rule ("both") also replaces the cores of strong absorption lines (the Ca II triplet, the
        strongest log g feature) once the continuum SNR exceeds about 20, which Gaia RVS and DESI spectra often do.

    Returns
    -------
    Preprocessed
        Flux and error (float32) on ``wave_out``, SNR, number of spikes, coverage and normalization factor.

    Raises
    ------
    ValueError
        If the spectrum is in the observed frame without vrad or redshift, no output pixel has data, or no covered
        pixel has a positive flux; the message names ``spectrum.source``.
    """
    wave_out = mr_wavelength() if wave_out is None else np.asarray(wave_out, dtype=np.float64)
    wave = _air_rest_wave(spectrum)
    flux, error, covered = resample(wave, spectrum.flux, spectrum.error, wave_out)
    if not covered.any():
        raise ValueError(_no_coverage_message(spectrum, wave, wave_out))
    flux = np.where(covered, np.clip(flux, 0.0, None), np.nan)
    flux, spikes = mask_spikes(flux, covered, window=window, k=k, sides=sides)
    snr = snr_from_flux(flux) if error is None else snr_from_errors(flux, error)
    try:
        flux, error, scale = median_normalize(flux, error, covered)
    except ValueError as exc:
        raise ValueError(f"{_where(spectrum)}: {exc} (all covered flux is zero after the clip to >= 0)") from None
    flux = np.where(covered, flux, CONTINUUM).astype(np.float32)
    error = np.where(covered, error, np.inf).astype(np.float32)
    flux.flags.writeable = False
    error.flags.writeable = False
    return Preprocessed(flux=flux, error=error, snr=snr, n_spikes=int(spikes.sum()),
                        coverage=float(covered.mean()), scale=scale)
