"""Template fitting (appendix H): it recovers the labels, absorbs the flux scale, fits worse against a mismatched
model, and refuses bad input."""
import numpy as np
import pandas as pd
import pytest

from specvit_core.instrument import lsf_sigma, mr_wavelength
from specvit_core.metrics import mae, r2
from specvit_core.noise import noisy_spectrum
from specvit_core.simulate import simulate_batch
from specvit_core.spectra import AXES, TemplateGrid
from specvit_core.template_fit import ModelMismatch, chi2_scaled, coarse_nodes, mismatched_grid, template_fit


@pytest.fixture(scope="module")
def grid(small_grid):
    return small_grid


@pytest.fixture(scope="module")
def spectra(grid, small_simulation):
    """30 clean simulated spectra (median-normalized flux, sigma) with their labels (30, 3)."""
    batch = simulate_batch(grid, 30, np.random.default_rng(5), small_simulation)
    return batch["flux"], batch["error"], np.column_stack([batch["params"][a] for a in AXES])


def test_template_fit_recovers_the_labels_of_noiseless_spectra(grid, spectra):
    flux, error, labels = spectra
    fit = template_fit(flux, error, grid, workers=2, chunk=8, progress=False)
    for i, a in enumerate(AXES):
        assert r2(labels[:, i], fit[a]) > 0.99, a
    assert fit["success"].all()
    assert np.median(fit["chi2"]) < 1e-2  # noiseless: the best template matches to far below one sigma
    in_process = template_fit(flux[:8], error[:8], grid, workers=1, progress=False)
    pd.testing.assert_frame_equal(in_process, fit.iloc[:8])  # the process pool changes nothing


def test_the_analytic_scale_absorbs_any_flux_normalization(grid, spectra):
    flux, error, _ = spectra
    noisy = noisy_spectrum(flux[:6], error[:6], np.random.default_rng(0))
    fit = template_fit(noisy, error[:6], grid, workers=1, progress=False)
    scaled = template_fit(noisy * 3e-17, error[:6] * 3e-17, grid, workers=1, progress=False)
    np.testing.assert_allclose(scaled[list(AXES)], fit[list(AXES)], atol=1e-3)
    np.testing.assert_allclose(scaled["chi2"], fit["chi2"], rtol=1e-6)
    _, scale = chi2_scaled(noisy * 3e-17, error[:6] ** -2.0 * 3e34, grid.flux.reshape(-1, grid.wave.size))
    _, unscaled = chi2_scaled(noisy, error[:6] ** -2.0, grid.flux.reshape(-1, grid.wave.size))
    np.testing.assert_allclose(scale, unscaled * 3e-17, rtol=1e-6)  # A* is linear in the flux


def test_best_fit_chi2_of_noisy_spectra_follows_the_noise(grid, spectra):
    flux, error, labels = spectra
    noisy = noisy_spectrum(flux, error, np.random.default_rng(1))
    fit = template_fit(noisy, error, grid, workers=1, progress=False)
    dof = flux.shape[1] - 4  # three labels and the scale
    assert 0.95 < np.median(fit["chi2"]) / dof < 1.05
    true_chi2 = [chi2_scaled(f[None], e[None] ** -2.0, grid.interpolate(lab[None], np.float64))[0][0, 0]
                 for f, e, lab in zip(noisy, error, labels)]
    assert np.all(fit["chi2"] <= np.asarray(true_chi2) + 0.5)  # the optimizer finds at least the truth's chi2


def test_no_mismatch_fits_against_the_grid_as_given(grid, spectra):
    flux, error, _ = spectra
    assert mismatched_grid(grid, ModelMismatch(resolution=0.0, teff_offset=0.0)) is grid
    noisy = noisy_spectrum(flux[:6], error[:6], np.random.default_rng(2))
    exact = template_fit(noisy, error[:6], grid, workers=1, progress=False)
    pd.testing.assert_frame_equal(template_fit(noisy, error[:6], grid, mismatch=ModelMismatch(), workers=1,
                                               progress=False), exact)


def test_a_mismatched_model_fits_the_same_noisy_spectra_worse(grid, spectra):
    flux, error, labels = spectra
    noisy = noisy_spectrum(flux, error, np.random.default_rng(3))
    exact = template_fit(noisy, error, grid, workers=2, chunk=8, progress=False)
    off = template_fit(noisy, error, grid, mismatch=ModelMismatch(resolution=0.05, teff_offset=100.0, flux_tilt=0.05),
                       workers=2, chunk=8, progress=False)
    assert np.mean(off.chi2 - exact.chi2) > 2  # the data no longer fit the model as well
    assert mae(labels[:, 1], off.log_g) > 1.2 * mae(labels[:, 1], exact.log_g)
    assert r2(labels[:, 1], off.log_g) < r2(labels[:, 1], exact.log_g) - 0.02


def test_the_mismatched_grid_is_hotter_by_the_offset_and_tilted(grid):
    hot = mismatched_grid(grid, ModelMismatch(teff_offset=125.0))
    assert hot.meta["mismatch"] == {"resolution": 0.0, "teff_offset": 125.0, "flux_tilt": 0.0}
    node = [grid.axes["T_eff"][1] + 125.0, grid.axes["log_g"][2], grid.axes["M_H"][1]]
    np.testing.assert_allclose(hot.flux[1, 2, 1], grid.interpolate(np.array([node]))[0], rtol=1e-5)
    ratio = mismatched_grid(grid, ModelMismatch(flux_tilt=0.04)).flux[2, 1, 0] / grid.flux[2, 1, 0]
    np.testing.assert_allclose(ratio[[0, grid.wave.size // 2, -1]], [0.98, 1.0, 1.02], atol=1e-4)
    for mismatch, match in [(ModelMismatch(teff_offset=250.0), r"smaller than the grid's T_eff step \(250 K\)"),
                            (ModelMismatch(flux_tilt=-2.0), r"flux_tilt must lie in \(-2, 2\)")]:
        with pytest.raises(ValueError, match=match):
            mismatched_grid(grid, mismatch)


def test_a_lower_resolving_power_widens_a_line_and_keeps_its_equivalent_width():
    wave = mr_wavelength()
    centre, sigma = 8000.0, float(lsf_sigma(np.array([8000.0]))[0])  # a line at the MR arm's resolution
    line = 1 - 0.5 * np.exp(-0.5 * ((wave - centre) / sigma) ** 2)
    shape = (2, 2, 2, wave.size)
    grid = TemplateGrid({a: np.array([0.0, 1.0]) for a in AXES} | {"T_eff": np.array([4000.0, 4250.0])}, wave,
                        np.broadcast_to(line, shape).astype(np.float32), np.ones(shape, np.float32))
    broad = mismatched_grid(grid, ModelMismatch(resolution=0.2)).flux[0, 0, 0].astype(float)
    depth = 1 - broad
    width = np.sqrt(np.sum(depth * (wave - centre) ** 2) / depth.sum())
    assert width == pytest.approx(sigma / 0.8, rel=0.01)  # sigma_model = sigma_MR / (1 - resolution)
    assert depth.sum() == pytest.approx((1 - line).sum(), rel=1e-4)
    with pytest.raises(ValueError, match=r"resolution must lie in \[0, 1\)"):
        mismatched_grid(grid, ModelMismatch(resolution=-0.1))


def test_coarse_search_takes_every_second_node_inside_the_label_ranges(grid):
    nodes = coarse_nodes(grid, {"T_eff": (4250.0, 5000.0), "log_g": (1.0, 5.0)})
    assert grid.axes["T_eff"][nodes["T_eff"]].tolist() == [4250.0, 4750.0]
    assert grid.axes["log_g"][nodes["log_g"]].tolist() == [1.0, 3.0, 5.0]
    assert grid.axes["M_H"][nodes["M_H"]].tolist() == [-1.0, 0.0]


@pytest.mark.parametrize("bounds, match", [
    ({"T_eff": (4010.0, 4240.0)}, r"bounds\['T_eff'\], \(4010, 4240\), holds no node"),
    ({"T_eff": (3000.0, 4500.0)}, r"inside the grid's range \[4000, 5000\]"),
    ({"log_g": (3.0, 2.0)}, "increasing pair"),
    ({"logg": (1.0, 2.0)}, r"unknown labels \['logg'\]"),
])
def test_bad_label_ranges_are_refused(grid, bounds, match):
    with pytest.raises(ValueError, match=match):
        coarse_nodes(grid, bounds)


def test_template_fit_refuses_bad_spectra(grid, spectra):
    flux, error, _ = spectra
    nan = flux[:2].copy()
    nan[1, 7] = np.nan
    cases = [((flux[:2], error[:3]), "error must have as many rows as flux; got 3 and 2"),
             ((nan, error[:2]), "flux contains 1 NaN/inf"),
             ((flux[:2], np.zeros_like(error[:2])), "error must be positive"),
             ((flux[:2, :100], error[:2, :100]), r"shape \(N, 4096\)"),
             ((flux[:0], error[:0]), "flux is empty")]
    for args, match in cases:
        with pytest.raises(ValueError, match=match):
            template_fit(*args, grid, workers=1, progress=False)
    for name in ("radius", "n_starts"):
        with pytest.raises(ValueError, match=f"{name} must be a positive integer; got 0"):
            template_fit(flux[:2], error[:2], grid, **{name: 0}, workers=1, progress=False)
