"""The classical baselines: template fitting recovers labels, Ridge/LightGBM see the networks' inputs, run folders."""
import json
import os

import numpy as np
import pandas as pd
import pytest

from specvit_core.baselines import (chi2_scaled, coarse_nodes, fit_lightgbm, fit_ridge, run_baselines, template_fit,
                                    training_inputs)
from specvit_core.data import NoisySpectra, noisy_spectrum, read_split
from specvit_core.metrics import r2, regression_metrics
from specvit_core.simulate import SimulationConfig, generate_dataset, simulate_batch
from specvit_core.spectra.grid import AXES, TemplateGrid

NETWORK_METRICS = {"n", "r2", "mae", "rmse", "sigma_robust", "bias", "split", "arch", "profile"}  # train.evaluate


@pytest.fixture(scope="module")
def grid(small_grid):
    return small_grid


def small_config(**kw):
    return SimulationConfig(**{**dict(n_train=40, n_val=20, n_test=30, teff_range=(4000.0, 5000.0),
                                      mh_range=(-1.0, 0.5)), **kw})


@pytest.fixture(scope="module")
def spectra(grid):
    """30 clean simulated spectra (median-normalized flux, sigma) with their labels (30, 3)."""
    batch = simulate_batch(grid, 30, np.random.default_rng(5), small_config())
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


def test_training_inputs_are_the_noise_the_networks_see(tiny_dataset):
    train = read_split(tiny_dataset, "train", max_rows=20)
    x, y = training_inputs(train.flux, train.error, train.labels(), n_augment=2, seed=7)
    ds = NoisySpectra(train.flux, train.error, train.labels(), noise="fresh", seed=7)
    for epoch in (0, 1):
        ds.set_epoch(epoch)
        np.testing.assert_array_equal(x[epoch * 20 + 3], ds[3][0].numpy())
    np.testing.assert_array_equal(y, np.tile(train.labels(), 2))
    with pytest.raises(ValueError, match="n_augment must be a positive integer; got 0"):
        training_inputs(train.flux, train.error, train.labels(), n_augment=0)


def test_ridge_and_lightgbm_refuse_bad_input():
    x, y = np.ones((10, 5)), np.arange(10.0)
    bad = x.copy()
    bad[2, 3] = np.nan
    for fit in (fit_ridge, fit_lightgbm):
        with pytest.raises(ValueError, match="y_train must have as many rows as x_train; got 9 and 10"):
            fit(x, y[:9], x, y)
        with pytest.raises(ValueError, match="x_val contains 1 NaN/inf"):
            fit(x, y, bad, y)
        with pytest.raises(ValueError, match="x_train is empty"):
            fit(x[:0], y[:0], x, y)
    with pytest.raises(ValueError, match=r"alphas must be a non-empty sequence of positive numbers; got \[-1.0\]"):
        fit_ridge(x, y, x, y, alphas=[-1.0])


@pytest.fixture(scope="module")
def learned_runs(tiny_dataset, tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    table = run_baselines("smoke", ("ridge", "lightgbm"), dataset_dir=tiny_dataset, runs_root=runs, n_jobs=1,
                          progress=False)
    return runs, table


def test_ridge_and_lightgbm_learn_log_g_and_pick_their_settings_on_validation(learned_runs):
    runs, table = learned_runs
    assert table.loc["ridge", "r2"] > 0.8 and table.loc["lightgbm", "r2"] > 0.5  # toy lines deepen with log g
    scan = pd.read_csv(runs / "ridge" / "history.csv")
    assert table.loc["ridge", "alpha"] == scan.loc[scan["val_mae"].idxmin(), "alpha"]
    curve = pd.read_csv(runs / "lightgbm" / "history.csv")
    best = int(table.loc["lightgbm", "best_iteration"])
    assert best <= 100 and curve["val_l2"].iloc[best - 1] == curve["val_l2"].min()  # smoke caps at 100 trees


def test_run_folders_hold_what_the_networks_runs_hold(learned_runs, tiny_dataset):
    runs, _ = learned_runs
    test = read_split(tiny_dataset, "test")
    for name in ("ridge", "lightgbm"):
        metrics = json.loads((runs / name / "metrics.json").read_text())
        assert NETWORK_METRICS <= set(metrics) and metrics["arch"] == name and metrics["profile"] == "smoke"
        pred = pd.read_csv(runs / name / "test_predictions.csv")
        assert list(pred.columns) == ["true", "pred", *test.params.columns]  # the layout of train.evaluate
        np.testing.assert_allclose(pred["true"], test.labels("log_g"))
        recomputed = regression_metrics(pred["true"], pred["pred"])
        assert all(np.isclose(metrics[k], v) for k, v in recomputed.items())


def test_cached_runs_are_reused_unless_recomputed_or_reconfigured(learned_runs, tiny_dataset):
    runs, table = learned_runs
    path = runs / "ridge" / "metrics.json"
    os.utime(path, (0, 0))
    again = run_baselines("smoke", ("ridge",), dataset_dir=tiny_dataset, runs_root=runs, n_jobs=1, progress=False)
    assert path.stat().st_mtime == 0 and again.loc["ridge", "r2"] == table.loc["ridge", "r2"]
    run_baselines("smoke", ("ridge",), dataset_dir=tiny_dataset, runs_root=runs, n_augment=2, n_jobs=1, progress=False)
    assert json.loads(path.read_text())["n_train"] == 512 and path.stat().st_mtime > 0
    with pytest.raises(ValueError, match=r"baselines must be a non-empty subset of ridge, lightgbm, template; "
                                         r"got \['svm'\]"):
        run_baselines("smoke", ("svm",), dataset_dir=tiny_dataset, runs_root=runs)


def test_template_run_scores_all_three_labels_and_checks_the_grid(grid, tmp_path):
    data = tmp_path / "data"
    generate_dataset(data, small_config(), grid, progress=False)
    table = run_baselines("smoke", ("template",), dataset_dir=data, runs_root=tmp_path / "runs", grid=grid,
                          progress=False)
    metrics = json.loads((tmp_path / "runs" / "template" / "metrics.json").read_text())
    assert set(metrics["labels"]) == set(AXES) and metrics["n_attempted"] == 30
    assert metrics["success_fraction"] == metrics["n_success"] / 30 and metrics["n"] == metrics["n_success"]
    assert metrics["labels"]["T_eff"]["r2"] > metrics["labels"]["log_g"]["r2"]  # gravity is the hardest label
    pred = pd.read_csv(tmp_path / "runs" / "template" / "test_predictions.csv")
    assert {"pred", "pred_T_eff", "pred_M_H", "chi2", "success"} <= set(pred.columns)
    assert table.loc["template", "r2"] == metrics["r2"]
    other = TemplateGrid(grid.axes, grid.wave, grid.flux, grid.continuum, meta={**grid.meta, "fingerprint": "other"})
    with pytest.raises(ValueError, match="was simulated with another template grid"):
        run_baselines("smoke", ("template",), dataset_dir=data, runs_root=tmp_path / "runs2", grid=other,
                      progress=False)
