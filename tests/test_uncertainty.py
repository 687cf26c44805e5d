"""Predictive uncertainty: the Gaussian NLL head, calibration metrics with known answers, Monte-Carlo noise
marginalization of a trained run, and bad input."""
import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import norm
from torch import nn

from specvit_core import runs
from specvit_core.cli import main
from specvit_core.metrics import (COVERAGE_LEVELS, gaussian_nll_score, interval_coverage, regression_metrics,
                                  reliability_curve, sharpness, uncertainty_metrics)
from specvit_core.train import LOG_VAR_RANGE, TrainConfig, evaluate, gaussian_nll, predict_spectra, split_head, train
from specvit_core.uncertainty import calibration_table, mc_noise_predictions

LEVELS = list(COVERAGE_LEVELS.values())  # +-1 and +-2 sigma: 0.6827, 0.9545


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: one torch thread per module


# ------------------------------------------------------------------------------------ the NLL head on a toy problem

def toy_sigma(x):
    """The known noise of the toy problem: 0.05 at x = -1 rising linearly to 0.35 at x = 1."""
    return 0.05 + 0.15 * (x + 1)


def toy_data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """y = sin(3x) + sigma(x) eps, x uniform in [-1, 1]."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, n)
    y = np.sin(3 * x) + toy_sigma(x) * rng.standard_normal(n)
    return torch.tensor(x[:, None], dtype=torch.float32), torch.tensor(y[:, None], dtype=torch.float32)


def fit_toy(loss, n_outputs: int, steps: int = 500) -> nn.Module:
    """A small MLP fitted full-batch with Adam and a cosine schedule to 4000 toy points."""
    torch.manual_seed(0)
    x, y = toy_data(4000, seed=0)
    net = nn.Sequential(nn.Linear(1, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, n_outputs))
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    for _ in range(steps):
        optimizer.zero_grad()
        loss(net(x), y).backward()
        optimizer.step()
        schedule.step()
    return net


def test_the_nll_head_recovers_a_known_heteroscedastic_noise_that_an_mse_fit_cannot_give():
    grid = torch.linspace(-0.9, 0.9, 19)[:, None]
    true_sigma = toy_sigma(grid[:, 0].numpy())
    nll_net = fit_toy(gaussian_nll, n_outputs=2)
    with torch.no_grad():
        mean, log_var = split_head(nll_net(grid))
    sigma = np.exp(0.5 * log_var[:, 0].numpy())
    # ~200 points per 0.1 in x give a local sigma to ~5%; 15% everywhere leaves room for the network's smoothing
    np.testing.assert_allclose(sigma, true_sigma, rtol=0.15)
    np.testing.assert_allclose(mean[:, 0].numpy(), np.sin(3 * grid[:, 0].numpy()), atol=0.05)  # and the mean
    mse_net = fit_toy(nn.functional.mse_loss, n_outputs=1)
    x, y = toy_data(4000, seed=1)
    with torch.no_grad():
        constant = torch.sqrt(torch.mean((mse_net(x) - y) ** 2)).item()  # the only sigma an MSE fit offers
    assert np.max(np.abs(constant / true_sigma - 1)) > 1.0  # off by more than 100% where the noise is small


def test_the_training_loss_is_the_gaussian_nll_with_a_clamped_log_variance():
    rng = np.random.default_rng(3)
    mean, log_var, target = (torch.tensor(rng.normal(size=(50, 1))) for _ in range(3))
    loss = gaussian_nll(torch.cat([mean, log_var], dim=1), target).item()
    assert loss == pytest.approx(nn.functional.gaussian_nll_loss(mean, target, log_var.exp(), full=True).item())
    assert loss == pytest.approx(gaussian_nll_score(target[:, 0], mean[:, 0], np.exp(0.5 * log_var[:, 0].numpy())))
    extreme = torch.tensor([[0.0, -50.0], [0.0, 50.0]])
    assert split_head(extreme)[1][:, 0].tolist() == list(LOG_VAR_RANGE)


# ------------------------------------------------------------------------------------ calibration with known answers

@pytest.fixture(scope="module")
def gaussian_residuals():
    """20,000 heteroscedastic Gaussian residuals with their true sigma (0.1 to 1)."""
    rng = np.random.default_rng(7)
    sigma = rng.uniform(0.1, 1.0, 20_000)
    return np.zeros_like(sigma), sigma * rng.standard_normal(sigma.size), sigma


def test_coverage_of_a_tiny_case_is_exact():
    y_pred = np.array([0.5, -1.5, 2.5])  # 0.5, 1.5 and 2.5 sigma from the labels
    np.testing.assert_array_equal(interval_coverage(np.zeros(3), y_pred, np.ones(3), LEVELS), [1 / 3, 2 / 3])
    assert interval_coverage(np.zeros(3), y_pred, np.full(3, 0.5), 0.5) == 0.0  # 1, 3, 5 sigma > z = 0.674


def test_calibrated_sigma_cover_68_and_95_percent_within_binomial_error(gaussian_residuals):
    y, pred, sigma = gaussian_residuals
    observed = interval_coverage(y, pred, sigma, LEVELS)
    se = np.sqrt(np.array(LEVELS) * (1 - np.array(LEVELS)) / y.size)
    assert np.all(np.abs(observed - [0.6827, 0.9545]) < 3 * se)
    curve = reliability_curve(y, pred, sigma)
    assert list(curve.expected) == pytest.approx(np.arange(0.05, 0.951, 0.05))
    assert np.all(np.abs(curve.observed - curve.expected) < 4 * curve.binomial_se)
    summary = uncertainty_metrics(y, pred, sigma)
    assert summary["sharpness"] == pytest.approx(regression_metrics(y, pred)["rmse"], rel=0.02)  # calibrated: equal
    assert summary["nll"] == pytest.approx(np.mean(0.5 * np.log(2 * np.pi * sigma**2) + 0.5), abs=0.02)


def test_sigma_overstated_twofold_covers_as_the_closed_form_says(gaussian_residuals):
    y, pred, sigma = gaussian_residuals
    z = norm.ppf((1 + np.array(LEVELS)) / 2)  # 1 and 2
    expected = 2 * norm.cdf(2 * z) - 1  # |r| <= z * 2 sigma: 0.9545 and 0.99994
    observed = interval_coverage(y, pred, 2 * sigma, LEVELS)
    assert np.all(np.abs(observed - expected) < 3 * np.sqrt(expected * (1 - expected) / y.size) + 1 / y.size)
    under = interval_coverage(y, pred, sigma / 2, LEVELS)  # understated: 2 Phi(z / 2) - 1 = 0.383 and 0.683
    np.testing.assert_allclose(under, 2 * norm.cdf(z / 2) - 1, atol=0.012)


def test_sharpness_is_the_rms_sigma():
    assert sharpness([3.0, 4.0]) == pytest.approx(math.sqrt(12.5))
    assert sharpness(np.full(10, 0.3)) == pytest.approx(0.3)


def test_calibration_table_puts_each_sigma_beside_the_residual_scatter(gaussian_residuals):
    y, pred, sigma = gaussian_residuals
    table = calibration_table(y, pred, {"true": sigma, "doubled": 2 * sigma})
    assert list(table.index) == ["true", "doubled"]
    assert table.loc["doubled", "sharpness"] == pytest.approx(2 * table.loc["true", "sharpness"])
    assert table.loc["doubled", "coverage_68"] > table.loc["true", "coverage_68"]
    assert (table.rmse == regression_metrics(y, pred)["rmse"]).all()
    assert (table.sigma_robust == regression_metrics(y, pred)["sigma_robust"]).all()


# ------------------------------------------------------------------------------------ a tiny run with the NLL head

@pytest.fixture(scope="module")
def nll_run(tiny_dataset, tmp_path_factory):
    """A smoke convstem_lstm trained with the Gaussian NLL head through `specvit train --loss gaussian_nll`."""
    root = tmp_path_factory.mktemp("runs")
    assert main(["train", "--arch", "convstem_lstm", "--profile", "smoke", "--loss", "gaussian_nll", "--epochs", "3",
                 "--patience", "3", "--batch-size", "32", "--lr", "3e-3", "--data", str(tiny_dataset),
                 "--runs", str(root)]) == 0
    return root / "convstem_lstm"


def test_a_run_with_the_nll_head_writes_pred_sigma_and_its_calibration(nll_run):
    config = runs.read_config(nll_run)
    assert config["loss"] == "gaussian_nll" and config["model_config"]["n_outputs"] == 2  # mean and log-variance
    predictions = runs.read_predictions(nll_run)
    assert len(predictions) == 64 and np.all(np.isfinite(predictions.pred_sigma)) and (predictions.pred_sigma > 0).all()
    metrics = runs.read_metrics(nll_run)
    recomputed = {**regression_metrics(predictions.true, predictions.pred),
                  **uncertainty_metrics(predictions.true, predictions.pred, predictions.pred_sigma)}
    assert {k: metrics[k] for k in recomputed} == pytest.approx(recomputed)
    # the checkpoint was chosen by the MAE of the mean: evaluating val repeats it
    assert evaluate(nll_run, "val")["mae"] == pytest.approx(runs.load_checkpoint(nll_run / "best.pt")["best_val_mae"],
                                                            rel=1e-6)
    history = runs.read_history(nll_run)
    assert np.all(np.isfinite(history.val_loss)) and history.train_mae.iloc[-1] < history.train_mae.iloc[0]


def test_mc_marginalization_spread_is_zero_without_noise_positive_with_it_and_reproducible(nll_run):
    silent = mc_noise_predictions(nll_run, n_draws=3, alpha=0.0)
    assert silent.draws.shape == (3, 64) and silent.seeds == (1000, 1001, 1002)
    np.testing.assert_array_equal(silent.draws, silent.draws[[0, 0, 0]])  # the same input three times
    np.testing.assert_allclose(silent.spread, 0.0, atol=1e-12)  # (up to the rounding of the mean)
    np.testing.assert_allclose(silent.sigma_total, silent.sigma_nll)
    noisy = mc_noise_predictions(nll_run, n_draws=3)  # the run's noise_alpha, 1
    assert (noisy.spread > 0).all()
    np.testing.assert_allclose(noisy.sigma_total, np.hypot(noisy.sigma_nll, noisy.spread))
    np.testing.assert_array_equal(mc_noise_predictions(nll_run, n_draws=3).draws, noisy.draws)  # same seeds
    assert not np.allclose(mc_noise_predictions(nll_run, n_draws=3, first_seed=2000).draws, noisy.draws)
    frame = noisy.frame()
    assert list(frame.columns[:5]) == ["true", "pred_mc", "mc_spread", "sigma_nll", "sigma_total"]
    np.testing.assert_array_equal(frame.true, runs.read_predictions(nll_run).true)
    assert "snr" in frame


def test_predict_writes_the_sigma_of_a_run_with_the_head(nll_run, tiny_dataset, tmp_path):
    csv = tmp_path / "predictions.csv"
    assert main(["predict", "--run", str(nll_run), "--data", str(tiny_dataset), "--out", str(csv)]) == 0
    table = pd.read_csv(csv)  # every split of the tiny dataset, spectra as observed (no noise added)
    assert len(table) == 384 and (table.log_g_pred_sigma > 0).all()
    pred, sigma = predict_spectra(nll_run, np.ones((2, 4096)), with_sigma=True)
    assert pred.shape == sigma.shape == (2,) and (sigma > 0).all()
    np.testing.assert_array_equal(predict_spectra(nll_run, np.ones((2, 4096))), pred)  # without: the label alone


def test_a_run_without_the_head_is_unchanged_and_mc_gives_the_spread_alone(tiny_dataset, tmp_path):
    config = TrainConfig(arch="convstem_lstm", profile="smoke", epochs=1, batch_size=32, max_train=64)
    metrics = train(config, tiny_dataset, tmp_path / "mse")
    assert "coverage_68" not in metrics and json.loads((tmp_path / "mse" / "config.json").read_text())["loss"] == "mse"
    assert "pred_sigma" not in runs.read_predictions(tmp_path / "mse")
    mc = mc_noise_predictions(tmp_path / "mse", n_draws=2)
    assert mc.sigma_nll is None and "sigma_nll" not in mc.frame()
    np.testing.assert_array_equal(mc.sigma_total, mc.spread)
    assert predict_spectra(tmp_path / "mse", np.ones((2, 4096)), with_sigma=True)[1] is None


# ------------------------------------------------------------------------------------ bad input

@pytest.mark.parametrize("levels", [[0.0, 0.5], [0.5, 1.0], [-0.1], [1.5], []])
def test_levels_outside_0_1_are_refused(levels):
    with pytest.raises(ValueError, match="levels must be probabilities strictly between 0 and 1"):
        interval_coverage([0.0, 1.0], [0.1, 0.9], [1.0, 1.0], levels)


@pytest.mark.parametrize("sigma", [[1.0, 0.0], [1.0, -0.5]])
def test_non_positive_sigma_is_refused(sigma):
    with pytest.raises(ValueError, match=r"sigma must be > 0 for every sample .* 1 of 2 are <= 0"):
        uncertainty_metrics([0.0, 1.0], [0.1, 0.9], sigma)
    with pytest.raises(ValueError, match="sigma must be > 0"):
        sharpness(sigma)


def test_bad_draws_seeds_and_tables_are_refused(nll_run):
    for n_draws in (0, 1, 2.0):
        with pytest.raises(ValueError, match=f"The n_draws parameter, {n_draws!r}, must be an integer >= 2"):
            mc_noise_predictions(nll_run, n_draws=n_draws)
    with pytest.raises(ValueError, match="include the fixed test seed 42"):
        mc_noise_predictions(nll_run, n_draws=4, first_seed=40)
    with pytest.raises(ValueError, match="alpha must be a finite number >= 0"):
        mc_noise_predictions(nll_run, n_draws=2, alpha=-1.0)
    with pytest.raises(ValueError, match="sigmas is empty"):
        calibration_table([0.0], [0.0], {})
