"""Appendix L preprocessing (specvit_core.preprocess): known answers for every step and for the whole chain."""
import dataclasses

import numpy as np
import pandas as pd
import pytest

from specvit_core.instrument import air_to_vacuum, mr_wavelength, vacuum_to_air
from specvit_core.preprocess import (C_KM_S, Preprocessed, in_label_ranges, mask_spikes, median_normalize,
                                     preprocess_spectrum, resample, snr_from_errors, snr_from_flux, split_indices,
                                     to_rest_frame)
from specvit_core.surveys import ObservedSpectrum

CA_AIR, CA_VAC = 8542.09, 8544.44  # Ca II triplet, the strongest line


def _spectrum(wave, flux, error=None, medium="air", rest_frame=True, vrad=np.nan, redshift=np.nan,
              source="test.fits[1]"):
    return ObservedSpectrum(targetid=1, wave=wave, flux=flux, error=error, medium=medium, rest_frame=rest_frame,
                            vrad=vrad, redshift=redshift, source=source)


def _gaussian_line(wave, centre, depth=0.5, sigma=0.8):
    return 1.0 - depth * np.exp(-0.5 * ((wave - centre) / sigma) ** 2)


def _parabola_minimum(wave, flux):
    """Vertex of the parabola through the lowest pixel and its two neighbours (uniform grid)."""
    i = int(np.argmin(flux))
    f0, f1, f2 = (float(v) for v in flux[i - 1:i + 2])
    return wave[i] + 0.5 * (f0 - f2) / (f0 - 2.0 * f1 + f2) * (wave[i + 1] - wave[i])


# --- L.3: rest frame and medium -------------------------------------------------------------------------------

def test_rest_frame_divides_by_the_doppler_factor_vrad_first():
    wave = np.array([8000.0, 8500.0])
    assert np.allclose(to_rest_frame(wave, vrad=150.0), wave / (1 + 150.0 / C_KM_S), rtol=1e-15)
    assert np.allclose(to_rest_frame(wave, redshift=1e-3), wave / 1.001, rtol=1e-15)
    assert np.allclose(to_rest_frame(wave, vrad=-300.0, redshift=0.5), wave / (1 - 300.0 / C_KM_S), rtol=1e-15)
    assert 299792.0 < C_KM_S < 299793.0


@pytest.mark.parametrize("kwargs", [{}, {"vrad": np.nan, "redshift": np.nan}, {"redshift": -1.0},
                                    {"vrad": -C_KM_S}])
def test_rest_frame_refuses_missing_or_unphysical_shifts(kwargs):
    with pytest.raises(ValueError):
        to_rest_frame([8500.0], **kwargs)


def test_vacuum_to_air_moves_ca_ii_8544_44_to_8542_09():
    assert abs(float(vacuum_to_air(CA_VAC)) - CA_AIR) < 0.01


def test_a_vacuum_doppler_shifted_line_lands_at_its_air_rest_wavelength():
    wave_vac = np.arange(7000.0, 9000.0, 0.2)
    observed = float(air_to_vacuum(CA_AIR)) * (1 + 150.0 / C_KM_S)  # 8548.7 A, vacuum, observed frame
    flux = 3.2e-17 * _gaussian_line(wave_vac, observed)
    out = preprocess_spectrum(_spectrum(wave_vac, flux, 1e-19 * np.ones_like(flux), medium="vacuum",
                                        rest_frame=False, vrad=150.0))
    assert abs(_parabola_minimum(mr_wavelength(), out.flux) - CA_AIR) < 0.1
    assert out.n_spikes == 0 and out.coverage == 1.0
    # the same spectrum read as air, or as already in the rest frame, misses by the 2.35 A / 4.3 A it should fix
    as_air = preprocess_spectrum(_spectrum(wave_vac, flux, rest_frame=False, vrad=150.0))
    as_rest = preprocess_spectrum(_spectrum(wave_vac, flux, medium="vacuum", vrad=150.0))
    assert abs(_parabola_minimum(mr_wavelength(), as_air.flux) - CA_AIR) > 2.0
    assert abs(_parabola_minimum(mr_wavelength(), as_rest.flux) - CA_AIR) > 4.0


def test_redshift_is_used_when_vrad_is_unknown():
    wave = np.arange(7000.0, 9000.0, 0.2)
    flux = _gaussian_line(wave, CA_AIR * (1 + 5e-4))
    out = preprocess_spectrum(_spectrum(wave, flux, rest_frame=False, redshift=5e-4))
    assert abs(_parabola_minimum(mr_wavelength(), out.flux) - CA_AIR) < 0.1


def test_an_observed_frame_spectrum_without_vrad_or_redshift_is_refused_by_name():
    wave = np.arange(7000.0, 9000.0, 0.5)
    with pytest.raises(ValueError, match=r"desi/coadd\.fits\[3\].*radial velocity.*redshift.*labels table"):
        preprocess_spectrum(_spectrum(wave, np.ones_like(wave), rest_frame=False, source="desi/coadd.fits[3]"))


# --- L.4: resampling, coverage and fill ---------------------------------------------------------------------------

def test_resample_reproduces_a_linear_spectrum_and_marks_the_covered_pixels():
    wave = np.arange(8000.0, 8500.01, 1.3)
    grid = mr_wavelength()
    flux, error, covered = resample(wave, 2.0 + 1e-3 * wave, 0.1 + 1e-5 * wave, grid)
    assert np.array_equal(covered, (grid >= wave[0]) & (grid <= wave[-1]))
    assert np.allclose(flux[covered], 2.0 + 1e-3 * grid[covered], rtol=0, atol=1e-12)
    assert np.allclose(error[covered], 0.1 + 1e-5 * grid[covered], rtol=0, atol=1e-12)
    assert np.all(np.isnan(flux[~covered])) and np.all(np.isnan(error[~covered]))
    assert resample(wave, wave, None, grid)[1] is None


def test_resample_drops_output_pixels_next_to_a_source_pixel_without_data():
    grid = mr_wavelength()
    wave = grid[::2] + 0.1  # a coarser, offset source: every output pixel has two neighbours with weight
    flux, error = np.ones_like(wave), np.full_like(wave, 0.1)
    flux[100], error[200] = np.nan, np.inf
    _, _, covered = resample(wave, flux, error, grid)
    lost = np.flatnonzero(~covered[1:-1]) + 1
    expected = np.flatnonzero(((grid > wave[99]) & (grid < wave[101])) | ((grid > wave[199]) & (grid < wave[201])))
    assert np.array_equal(lost, expected) and lost.size == 8
    # a source on the output grid loses only the pixel without data (the other neighbour has zero weight)
    flux_on, _, covered_on = resample(grid, np.where(np.arange(grid.size) == 10, np.nan, 1.0), None, grid)
    assert np.flatnonzero(~covered_on).tolist() == [10] and np.all(flux_on[covered_on] == 1.0)


def test_a_gaia_rvs_like_source_is_filled_with_0_5_and_inf_outside_and_normalized_to_0_5_inside():
    rng = np.random.default_rng(3)
    wave = np.arange(8460.0, 8700.0, 0.1)
    flux = 250.0 * (_gaussian_line(wave, CA_AIR, sigma=1.0) + 0.01 * rng.standard_normal(wave.size))
    out = preprocess_spectrum(_spectrum(wave, flux, np.full_like(wave, 2.5)))
    grid = mr_wavelength()
    inside = (grid >= wave[0]) & (grid <= wave[-1])
    assert np.all(out.flux[~inside] == 0.5) and np.all(np.isposinf(out.error[~inside]))
    assert np.all(np.isfinite(out.error[inside]))
    assert abs(float(np.median(out.flux[inside])) - 0.5) < 1e-6
    assert out.coverage == pytest.approx(inside.mean()) and 0.13 < out.coverage < 0.14
    assert out.flux.dtype == np.float32 and out.error.dtype == np.float32


def test_the_error_is_scaled_with_the_flux_factor():
    wave = np.arange(7000.0, 9000.0, 0.5)
    out = preprocess_spectrum(_spectrum(wave, np.full_like(wave, 7.0), np.full_like(wave, 0.7)))
    assert out.scale == pytest.approx(0.5 / 7.0, rel=1e-12)
    assert np.allclose(out.flux, 0.5, rtol=1e-6) and np.allclose(out.error, 0.05, rtol=1e-6)
    assert out.snr == pytest.approx(10.0)


def test_without_errors_the_placeholder_is_0_02_after_normalization():
    wave = np.arange(8460.0, 8700.0, 0.1)
    out = preprocess_spectrum(_spectrum(wave, 1e-15 * _gaussian_line(wave, CA_AIR)))
    grid = mr_wavelength()
    inside = (grid >= wave[0]) & (grid <= wave[-1])
    assert np.all(out.error[inside] == np.float32(0.02)) and np.all(np.isposinf(out.error[~inside]))


def test_negative_flux_is_clipped_to_zero():
    grid = mr_wavelength()
    flux = np.ones(grid.size)
    flux[2000:2003] = -5.0
    out = preprocess_spectrum(_spectrum(grid, flux, np.full(grid.size, 0.1)))
    assert np.all(out.flux >= 0) and np.all(out.flux[2000:2003] == 0.0) and out.flux[1000] == 0.5


def test_a_spectrum_outside_the_grid_is_refused_with_its_range():
    wave = np.arange(5000.0, 6000.0, 0.5)
    with pytest.raises(ValueError, match=r"gaia/rvs\.csv\[7\].*5000\.0-5999\.5 A.*7100\.2-8849\.8 A"):
        preprocess_spectrum(_spectrum(wave, np.ones_like(wave), source="gaia/rvs.csv[7]"))


def test_a_spectrum_without_positive_flux_is_refused_by_name():
    wave = np.arange(7000.0, 9000.0, 0.5)
    with pytest.raises(ValueError, match=r"empty\.fits.*positive flux"):
        preprocess_spectrum(_spectrum(wave, -np.ones_like(wave), source="empty.fits"))


def test_the_result_is_frozen():
    wave = np.arange(7000.0, 9000.0, 0.5)
    out = preprocess_spectrum(_spectrum(wave, np.ones_like(wave)))
    assert isinstance(out, Preprocessed)
    with pytest.raises(dataclasses.FrozenInstanceError):
        out.snr = 1.0
    with pytest.raises(ValueError):
        out.flux[0] = 1.0


# --- L.5: spikes --------------------------------------------------------------------------------------------------

def _spike_and_line(noise, seed=0):
    grid = mr_wavelength()
    flux = _gaussian_line(grid, CA_AIR, depth=0.5, sigma=0.55)  # FWHM 1.3 A, about 3 pixels
    flux += noise * np.random.default_rng(seed).standard_normal(grid.size)
    spike = 1000
    flux[spike] += 30 * max(noise, 0.1)
    line = np.flatnonzero(np.abs(grid - CA_AIR) < 1.0)
    return grid, flux, spike, line


def test_a_single_spike_is_removed_and_an_absorption_line_is_kept():
    grid, flux, spike, line = _spike_and_line(noise=0.1)  # continuum SNR 10
    out, spikes = mask_spikes(flux, np.ones(grid.size, bool))
    assert np.flatnonzero(spikes).tolist() == [spike]
    assert abs(out[spike] - 1.0) < 0.05
    assert np.array_equal(out[line], flux[line]) and flux[line].min() < 0.7
    assert np.array_equal(np.delete(out, spike), np.delete(flux, spike))
    result = preprocess_spectrum(_spectrum(grid, flux))
    assert result.n_spikes == 1


def test_the_two_sided_rule_of_the_appendix_clips_deep_lines_at_high_snr_and_the_upper_rule_does_not():
    grid, flux, spike, line = _spike_and_line(noise=0.005)  # continuum SNR 200: the line is 100 sigma deep
    both = mask_spikes(flux, np.ones(grid.size, bool))[1]
    upper = mask_spikes(flux, np.ones(grid.size, bool), sides="upper")[1]
    assert both[spike] and both[line].any()
    assert np.flatnonzero(upper).tolist() == [spike]


def test_the_baseline_ignores_uncovered_pixels():
    rng = np.random.default_rng(1)
    flux = 1.0 + 0.02 * rng.standard_normal(3000)
    covered = np.ones(flux.size, bool)
    covered[:1000] = False
    flux[1000] = 2.0  # a spike on the first covered pixel, next to the gap
    results = []
    for fill in (0.0, 0.5, 100.0, np.nan):
        values = flux.copy()
        values[:1000] = fill
        out, spikes = mask_spikes(values, covered)
        assert np.array_equal(out[:1000], values[:1000], equal_nan=True) and not spikes[:1000].any()
        results.append(out[1000:])
        assert np.flatnonzero(spikes).tolist() == [1000]
        assert abs(out[1000] - 1.0) < 0.03  # the mean of covered pixels 1000..1050 (spike included: +1/51)
    assert all(np.array_equal(results[0], r) for r in results[1:])


def test_a_noise_free_spectrum_has_no_spikes():
    grid = mr_wavelength()
    out, spikes = mask_spikes(1e-17 * _gaussian_line(grid, CA_AIR), np.ones(grid.size, bool))
    assert not spikes.any()


@pytest.mark.parametrize("kwargs", [{"window": 100}, {"window": 0}, {"window": 10.0}, {"k": 0.0},
                                    {"sides": "lower"}])
def test_mask_spikes_refuses_bad_parameters(kwargs):
    with pytest.raises(ValueError):
        mask_spikes(np.ones(10), np.ones(10, bool), **kwargs)


# --- L.7: SNR -----------------------------------------------------------------------------------------------------

def test_both_snr_estimators_recover_the_snr_of_white_noise():
    rng = np.random.default_rng(7)
    sigma = 0.02  # SNR 50
    flux = 1.0 + sigma * rng.standard_normal(20000)
    assert snr_from_errors(flux, np.full(flux.size, sigma)) == pytest.approx(50.0, rel=0.05)
    assert snr_from_flux(flux) == pytest.approx(50.0, rel=0.05)
    gappy = flux.copy()
    gappy[5000:6000] = np.nan
    error = np.full(flux.size, sigma)
    error[100:200] = np.inf
    assert snr_from_flux(gappy) == pytest.approx(50.0, rel=0.05)
    assert snr_from_errors(gappy, error) == pytest.approx(50.0, rel=0.05)


def test_the_second_difference_estimator_is_scale_free_and_computed_before_normalization():
    rng = np.random.default_rng(11)
    grid = mr_wavelength()
    flux = 1.0 + 0.025 * rng.standard_normal(grid.size)  # SNR 40
    assert snr_from_flux(3e-17 * flux) == pytest.approx(snr_from_flux(flux), rel=1e-12)
    out = preprocess_spectrum(_spectrum(grid, 3e-17 * flux))  # no errors: the placeholder would give 25
    assert out.snr == pytest.approx(40.0, rel=0.05)
    with_errors = preprocess_spectrum(_spectrum(grid, 3e-17 * flux, np.full(grid.size, 3e-17 * 0.025)))
    assert with_errors.snr == pytest.approx(40.0, rel=0.05)


def test_snr_of_empty_or_noise_free_input():
    assert np.isnan(snr_from_flux([1.0, np.nan, 1.0, 1.0]))
    assert snr_from_flux(np.ones(10)) == np.inf
    assert np.isnan(snr_from_errors([1.0, 2.0], [np.nan, 0.0]))


# --- L.6: median normalization ------------------------------------------------------------------------------------

def test_median_normalization_uses_covered_positive_pixels_and_scales_the_error():
    flux = np.array([0.0, 1.0, 2.0, 4.0, 100.0, np.nan])
    covered = np.array([True, True, True, True, False, False])
    error = np.array([0.1, 0.1, 0.2, 0.4, 1.0, np.nan])
    out, err, scale = median_normalize(flux, error, covered)
    assert scale == 0.25  # 0.5 / median(1, 2, 4)
    assert np.array_equal(out[:5], flux[:5] * 0.25) and np.array_equal(err[:5], error[:5] * 0.25)
    _, placeholder, _ = median_normalize(flux, None, covered)
    assert np.array_equal(placeholder[:4], np.full(4, 0.02)) and np.all(np.isnan(placeholder[4:]))
    with pytest.raises(ValueError, match="positive flux"):
        median_normalize(np.array([0.0, 0.0, 5.0]), None, np.array([True, True, False]))


# --- L.2: parameter ranges ----------------------------------------------------------------------------------------

def test_label_ranges_are_inclusive_and_exclude_nan():
    labels = pd.DataFrame({
        "T_eff": [3750.0, 6000.0, 3749.9, 6000.1, 5000.0, 5000.0, 5000.0, np.nan, 5000.0],
        "log_g": [1.0, 5.0, 3.0, 3.0, 0.99, 5.01, 3.0, 3.0, np.nan],
        "M_H": [-2.5, 0.75, 0.0, 0.0, 0.0, 0.0, 0.76, 0.0, 0.0],
    })
    assert in_label_ranges(labels).tolist() == [True, True, False, False, False, False, False, False, False]
    with pytest.raises(ValueError, match="M_H"):
        in_label_ranges(labels.drop(columns="M_H"))


# --- L.8: split ---------------------------------------------------------------------------------------------------

def test_the_split_of_50000_spectra_is_40000_5000_5000_disjoint_complete_and_seeded():
    split = split_indices(50_000)
    assert {k: v.size for k, v in split.items()} == {"train": 40_000, "val": 5_000, "test": 5_000}
    assert all(np.array_equal(v, np.sort(v)) for v in split.values())
    assert np.array_equal(np.sort(np.concatenate(list(split.values()))), np.arange(50_000))
    again, other = split_indices(50_000, seed=42), split_indices(50_000, seed=43)
    assert all(np.array_equal(split[k], again[k]) for k in split)
    assert not np.array_equal(split["test"], other["test"])


@pytest.mark.parametrize("args, kwargs", [((5,), {}), ((100,), {"val_fraction": 0.0}),
                                          ((100,), {"test_fraction": 1.0}),
                                          ((100,), {"val_fraction": 0.5, "test_fraction": 0.5}),
                                          ((100.0,), {}), ((100,), {"seed": 1.5})])
def test_split_refuses_bad_fractions_and_too_few_spectra(args, kwargs):
    with pytest.raises(ValueError):
        split_indices(*args, **kwargs)


def test_the_smallest_split_gives_one_spectrum_each():
    assert {k: v.size for k, v in split_indices(10).items()} == {"train": 8, "val": 1, "test": 1}
