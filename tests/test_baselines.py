"""The classical baselines: Ridge and LightGBM see the networks' inputs; run folders and their cache."""
import json
import os

import numpy as np
import pandas as pd
import pytest

from specvit_core.baselines import fit_lightgbm, fit_ridge, run_baselines, training_inputs
from specvit_core.data import NoisySpectra, read_split
from specvit_core.metrics import regression_metrics
from specvit_core.simulate import generate_dataset
from specvit_core.spectra.templates import AXES, TemplateGrid

NETWORK_METRICS = {"n", "r2", "mae", "rmse", "sigma_robust", "bias", "split", "arch", "profile"}  # train.evaluate


@pytest.fixture(scope="module")
def grid(small_grid):
    return small_grid


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


def test_template_run_scores_all_three_labels_and_checks_the_grid(grid, small_simulation, tmp_path):
    data = tmp_path / "data"
    generate_dataset(data, small_simulation, grid, progress=False)
    table = run_baselines("smoke", ("template",), dataset_dir=data, runs_root=tmp_path / "runs", grid=grid,
                          progress=False)
    metrics = json.loads((tmp_path / "runs" / "template" / "metrics.json").read_text())
    assert set(metrics["labels"]) == set(AXES) and metrics["n_attempted"] == 30
    assert metrics["success_fraction"] == metrics["n_success"] / 30 and metrics["n"] == metrics["n_success"]
    assert metrics["labels"]["T_eff"]["r2"] > metrics["labels"]["log_g"]["r2"]  # gravity is the hardest label
    pred = pd.read_csv(tmp_path / "runs" / "template" / "test_predictions.csv")
    assert {"pred", "pred_T_eff", "pred_M_H", "chi2", "success"} <= set(pred.columns)
    assert table.loc["template", "r2"] == metrics["r2"]
    path = tmp_path / "runs" / "template" / "metrics.json"
    os.utime(path, (0, 0))
    again = run_baselines("smoke", ("template",), dataset_dir=data, runs_root=tmp_path / "runs", grid=grid,
                          progress=False)
    assert path.stat().st_mtime == 0 and again.loc["template", "r2"] == metrics["r2"]  # reused, not fitted again
    other = TemplateGrid(grid.axes, grid.wave, grid.flux, grid.continuum, meta={**grid.meta, "fingerprint": "other"})
    with pytest.raises(ValueError, match="was simulated with another template grid"):
        run_baselines("smoke", ("template",), dataset_dir=data, runs_root=tmp_path / "runs2", grid=other,
                      progress=False)
