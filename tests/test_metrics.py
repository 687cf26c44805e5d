import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import mean_absolute_error, r2_score

from specvit_core import metrics as M


@pytest.fixture
def sample():
    rng = np.random.default_rng(0)
    y = rng.uniform(1.0, 5.0, 2000)
    return y, y + rng.normal(0.1, 0.4, y.size)


def test_metrics_match_definitions_and_sklearn(sample):
    y, p = sample
    res = p - y
    out = M.regression_metrics(y, p)
    assert out["n"] == y.size
    assert out["r2"] == pytest.approx(r2_score(y, p), rel=1e-12)
    assert out["mae"] == pytest.approx(mean_absolute_error(y, p), rel=1e-12)
    assert out["rmse"] == pytest.approx(np.sqrt(np.mean(res**2)), rel=1e-12)
    assert out["bias"] == pytest.approx(res.mean(), rel=1e-12)
    assert out["sigma_robust"] == pytest.approx(1.4826 * np.median(np.abs(res - np.median(res))), rel=1e-4)


def test_r2_of_constant_labels_is_nan_not_a_number_that_looks_valid():
    assert np.isnan(M.r2([2.0, 2.0, 2.0], [2.0, 2.1, 1.9]))


def test_sigma_robust_ignores_outliers_that_inflate_std():
    rng = np.random.default_rng(1)
    res = rng.normal(0, 0.1, 5000)
    res[:250] = rng.normal(0, 3.0, 250)  # 5% catastrophic outliers
    y = np.zeros_like(res)
    assert M.sigma_robust(y, res) == pytest.approx(0.1, rel=0.1)
    assert np.std(res) > 5 * M.sigma_robust(y, res)


@pytest.mark.parametrize("y_true, y_pred, match", [
    ([1.0, 2.0, 3.0], [1.0, 2.0], "same length"),
    ([1.0, np.nan, 3.0], [1.0, 2.0, 3.0], "y_true contains 1 NaN"),
    ([1.0, 2.0], [np.inf, 2.0], "y_pred contains 1 NaN/inf"),
    ([], [], "y_true is empty"),
    ([[1.0, 2.0]], [[1.0, 2.0]], "must be 1-D"),
])
def test_bad_input_raises(y_true, y_pred, match):
    for fn in (*M.METRICS.values(), M.regression_metrics, M.bootstrap_ci):
        with pytest.raises(ValueError, match=match):
            fn(y_true, y_pred)


def test_bootstrap_ci_of_mean_matches_analytic_standard_error():
    rng = np.random.default_rng(2)
    n = 4000
    p = rng.normal(0.0, 1.0, n)
    out = M.bootstrap_ci(np.zeros(n), p, "bias", n_boot=1000, seed=3)
    se = p.std(ddof=1) / np.sqrt(n)
    assert out["value"] == pytest.approx(p.mean())
    assert out["se"] == pytest.approx(se, rel=0.1)
    assert out["high"] - out["low"] == pytest.approx(2 * 1.96 * se, rel=0.1)
    assert out["low"] < out["value"] < out["high"]
    assert M.bootstrap_ci(np.zeros(n), p, "bias", seed=3) == out  # seeded: reproducible


def test_bootstrap_ci_rejects_bad_settings(sample):
    y, p = sample
    with pytest.raises(ValueError, match="Unknown metric 'rsq'; valid metrics are: r2"):
        M.bootstrap_ci(y, p, "rsq")
    with pytest.raises(ValueError, match="ci, 1.5, must lie strictly between 0 and 1"):
        M.bootstrap_ci(y, p, ci=1.5)
    with pytest.raises(ValueError, match="n_boot, 1, must be at least 2"):
        M.bootstrap_ci(y, p, n_boot=1)


def test_paired_bootstrap_equal_quality_gives_p_near_half(sample):
    y, _ = sample
    rng = np.random.default_rng(4)
    res = rng.normal(0, 0.4, y.size)
    half = y.size // 2
    # Model B has exactly model A's residuals, assigned to other stars: equal quality, different errors.
    res_b = np.concatenate([res[half:], res[:half]])
    out = M.paired_bootstrap(y, y + res, y + res_b, "mae", n_boot=1000, seed=5)
    assert out["value"] == pytest.approx(0.0, abs=1e-12)
    assert out["p_value"] == pytest.approx(0.5, abs=0.06)
    assert out["low"] < 0 < out["high"]


def test_paired_bootstrap_clearly_better_model_gives_p_zero(sample):
    y, _ = sample
    rng = np.random.default_rng(6)
    good, bad = y + rng.normal(0, 0.3, y.size), y + rng.normal(0, 1.0, y.size)
    out = M.paired_bootstrap(y, good, bad, "r2", seed=7)
    assert out["p_value"] == 0.0
    assert out["value"] == pytest.approx(M.r2(y, good) - M.r2(y, bad))
    assert 0 < out["low"] < out["value"] < out["high"]
    assert M.paired_bootstrap(y, bad, good, "r2", seed=7)["p_value"] == 1.0


def test_paired_bootstrap_rejects_mismatched_models(sample):
    y, p = sample
    with pytest.raises(ValueError, match="pred_b must have the same length as y_true"):
        M.paired_bootstrap(y, p, p[:-1])


def test_stellar_type_strata_counts_and_empty_stratum():
    logg = np.array([1.0, 2.49, 2.5, 3.0, 4.0, 4.01, 4.5])
    pred = logg + np.array([0.1, -0.1, 0.2, 0.0, -0.2, 0.3, 0.1])
    table = M.metrics_by_stellar_type(logg, pred)
    assert list(table.index) == ["giants", "subgiants", "dwarfs", "all"]
    assert table["n"].tolist() == [2, 3, 2, 7]  # 2.5 and 4.0 are subgiants
    assert table.loc["all", "mae"] == pytest.approx(M.mae(logg, pred))
    assert table.loc["dwarfs", "mae"] == pytest.approx(0.2)

    no_giants = M.metrics_by_stellar_type(logg[2:], pred[2:])
    assert no_giants.loc["giants", "n"] == 0 and no_giants.loc["giants", "frac"] == 0
    assert no_giants.loc["giants", [*M.METRICS, "label_std"]].isna().all()
    assert no_giants.loc["dwarfs", "n"] == 2


def test_a_narrow_stratum_has_a_low_r2_at_the_same_errors(sample):
    y, _ = sample
    pred = y + np.random.default_rng(11).normal(0, 0.3, y.size)  # the same error distribution everywhere
    table = M.metrics_by_stellar_type(y, pred)
    assert table.loc["giants", "label_std"] == pytest.approx(np.std(y[y < 2.5]))
    np.testing.assert_allclose(table.r2, 1 - (table.rmse / table.label_std) ** 2)
    assert table.loc["giants", "r2"] < table.loc["all", "r2"] - 0.3  # R^2 drops with the spread of the labels ...
    assert table.loc["giants", "sigma_robust"] == pytest.approx(table.loc["all", "sigma_robust"], rel=0.15)  # not so


def test_stellar_type_can_use_another_label_column(sample):
    y, p = sample
    teff_pred_true = np.linspace(4000, 6000, y.size)
    table = M.metrics_by_stellar_type(teff_pred_true, teff_pred_true + 10, logg=y)
    assert table.loc[["giants", "subgiants", "dwarfs"], "n"].sum() == y.size
    assert table.loc["giants", "n"] == np.count_nonzero(y < 2.5)
    assert table["bias"].to_numpy() == pytest.approx(10.0)


def test_magnitude_bins_counts_edges_and_outside_values():
    mag = np.array([19.0, 19.5, 20.0, 20.5, 21.0, 21.0, 22.5])
    y = np.arange(mag.size, dtype=float)
    table = M.metrics_by_bins(y, y + 0.5, mag, [19.0, 20.0, 21.0, 22.0, 23.0])
    assert list(table.index) == ["[19, 20)", "[20, 21)", "[21, 22)", "[22, 23]", "all"]
    assert table["n"].tolist() == [2, 2, 2, 1, 7]
    assert table.loc["[22, 23]", ["lo", "hi"]].tolist() == [22.0, 23.0]
    assert pd.isna(table.loc["[22, 23]", "r2"])  # a single object: R^2 undefined, not 0 or 1
    with pytest.raises(ValueError, match="1 values lie outside the edges"):
        M.metrics_by_bins(y, y, mag, [19.0, 22.0])
    with pytest.raises(ValueError, match="strictly increasing"):
        M.metrics_by_bins(y, y, mag, [23.0, 19.0])


def test_snr_quantiles_have_equal_counts(sample):
    y, p = sample
    snr = np.random.default_rng(8).lognormal(1.5, 0.5, y.size)
    table = M.metrics_by_quantile(y, p, snr, n_bins=4)
    assert table["n"].tolist() == [500, 500, 500, 500, 2000]
    assert table["frac"].iloc[:4].to_numpy() == pytest.approx(0.25)
    assert table.loc["all", "r2"] == pytest.approx(M.r2(y, p))
    with pytest.raises(ValueError, match="n_bins, 0, must be at least 1"):
        M.metrics_by_quantile(y, p, snr, n_bins=0)


def test_stratified_metrics_rejects_bad_masks(sample):
    y, p = sample
    with pytest.raises(ValueError, match="mask of stratum 'odd' must be boolean of shape"):
        M.stratified_metrics(y, p, {"odd": np.arange(y.size) % 2})
    with pytest.raises(ValueError, match="stratum named 'all'"):
        M.stratified_metrics(y, p, {"all": np.ones(y.size, bool)})


def test_paired_bootstrap_cancels_shared_test_set_noise(sample):
    y, p = sample
    close = p + np.random.default_rng(9).normal(0, 0.05, y.size)  # model B: model A plus a small perturbation
    paired_se = M.paired_bootstrap(y, p, close, "r2", n_boot=300, seed=10)["se"]
    single_se = M.bootstrap_ci(y, p, "r2", n_boot=300, seed=10)["se"]
    assert paired_se < 0.3 * single_se  # unpaired resampling would give ~sqrt(2) x single_se
