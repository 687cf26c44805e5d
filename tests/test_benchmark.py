"""The benchmark experiments of section 5.1: real smoke-size runs on a tiny dataset, their tables and contracts."""
import json

import numpy as np
import pandas as pd
import pytest
import torch

from specvit_core import attention, benchmark, runs, tables
from specvit_core.baselines import run_baselines
from specvit_core.benchmark import BenchmarkPlan
from specvit_core.config import runs_dir
from specvit_core.data import read_split

ARCHS = ("specvit", "bilstm", "deep_cnn")
PLAN = BenchmarkPlan(main_archs=ARCHS, scaling_fractions=(0.5, 1.0), scaling_archs=("deep_cnn",), seeds=(42, 43),
                     stability_seeds=(42,), ablation_max_train=128, ablation_epochs=1, patch_sizes=(16, 64),
                     high_snr_sizes=(128, 64, 64), finetune_epochs=1, finetune_archs=("deep_cnn",), n_boot=200)


@pytest.fixture(scope="module")
def home(tmp_path_factory, tiny_dataset):
    """A project root with the smoke-profile main runs of three networks, Ridge and LightGBM on the tiny dataset."""
    root = tmp_path_factory.mktemp("home")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # smoke models gain nothing from threads; avoids stalls on a busy 2-core machine
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SPECVIT_HOME", str(root))
        main = benchmark.main_runs("smoke", ARCHS, tiny_dataset, progress=False)
        run_baselines("smoke", ("ridge", "lightgbm"), dataset_dir=tiny_dataset, n_jobs=1, progress=False)
        yield root, main
    torch.set_num_threads(threads)


@pytest.fixture
def smoke_home(home, monkeypatch):
    monkeypatch.setenv("SPECVIT_HOME", str(home[0]))
    return home


def test_main_runs_use_the_chapter_4_folders_and_are_reused(smoke_home, tiny_dataset):
    root, main = smoke_home
    assert list(main.index) == list(ARCHS) and (main.status == "finished").all()
    for arch in ARCHS:
        assert (root / "runs" / "smoke" / arch / "best.pt").is_file()
    written = (root / "runs" / "smoke" / "specvit" / "last.pt").stat().st_mtime_ns
    again = benchmark.main_runs("smoke", ["specvit"], tiny_dataset, progress=False)
    assert again.loc["specvit", "r2"] == main.loc["specvit", "r2"]
    assert (root / "runs" / "smoke" / "specvit" / "last.pt").stat().st_mtime_ns == written


def test_comparison_table_groups_families_and_brackets_each_metric(smoke_home):
    _, main = smoke_home
    table = tables.comparison_table(runs.list_runs("smoke"), n_boot=200)
    assert list(table.family.astype(str)) == ["recurrent", "transformer", "cnn", "GBDT", "linear"]
    for metric in ("r2", "mae", "sigma_robust"):
        assert (table[f"{metric}_low"] <= table[metric]).all() and (table[metric] <= table[f"{metric}_high"]).all()
    assert table.loc["deep_cnn", "r2"] == pytest.approx(main.loc["deep_cnn", "r2"])  # the run's own metrics
    assert table.loc["bilstm", "params"] == json.loads(
        (runs_dir("smoke") / "bilstm" / "config.json").read_text())["n_params"]
    assert np.isnan(table.loc["ridge", "params"])


def test_formatted_comparison_never_prints_negative_zero():
    table = pd.DataFrame({"family": ["transformer"], "params": [30_000], "n": [256], "r2": [-0.0049],
                          "r2_low": [-0.034], "r2_high": [-0.0004], "mae": [1.011], "mae_low": [0.942],
                          "mae_high": [1.077], "sigma_robust": [1.52], "sigma_robust_low": [1.34],
                          "sigma_robust_high": [1.76]}, index=pd.Index(["specvit"], name="model"))
    shown = tables.formatted_comparison(table)
    assert shown.loc["specvit", "r2"] == "-0.005 [-0.034, 0.000]" and "-0.000" not in shown.to_string()
    assert shown.loc["specvit", "parameters"] == "0.03M" and shown.loc["specvit", "mae"] == "1.011 [0.942, 1.077]"


def _fake_run(folder, true, pred, arch="ridge"):
    """A run folder written through specvit_core.runs, with given predictions (the test split's labels)."""
    runs.start_run(folder, {"arch": arch, "family": "linear"}, fresh=True)
    runs.write_results(folder, pd.DataFrame({"true": true, "pred": pred}), {"best_epoch": 7})
    return folder


def test_significance_detects_a_better_model_and_not_an_equal_one(tmp_path):
    rng = np.random.default_rng(0)
    true = rng.uniform(1, 5, 2000)
    good = _fake_run(tmp_path / "good", true, true + rng.normal(0, 0.4, true.size))
    poor = _fake_run(tmp_path / "poor", true, true + rng.normal(0, 0.6, true.size))
    folders = {"good": good, "poor": poor}
    result = tables.significance(folders, "good", "poor", n_boot=500)
    assert result["delta_r2_low"] > 0 and result["p_value"] < 0.01 and result["best_epoch"] == 7
    assert result["r2_low"] < result["r2"] < result["r2_high"]
    same = tables.significance(folders, "good", "good", n_boot=500)
    assert same["delta_r2"] == 0 and same["p_value"] == 1.0
    other = _fake_run(tmp_path / "other", true[:100], true[:100])
    with pytest.raises(ValueError, match="different test spectra"):
        tables.significance({**folders, "other": other}, "good", "other")


def test_stellar_type_table_and_inference_cost(smoke_home, tiny_dataset):
    run_dirs = runs.list_runs("smoke")
    mae = tables.stellar_type_mae(run_dirs)
    assert list(mae.columns) == list(run_dirs) and "all" in mae.index
    cost = tables.inference_cost(run_dirs, tiny_dataset, batch_size=32, device="cpu")
    assert (cost.seconds > 0).all()
    np.testing.assert_allclose(cost.throughput * cost.seconds, 64)  # the 64 test spectra
    stored = json.loads((run_dirs["lightgbm"] / "metrics.json").read_text())["predict_seconds"]
    assert cost.loc["lightgbm", "seconds"] == stored


def test_scaling_trains_on_the_first_n_spectra_and_reuses_the_full_runs(smoke_home, tiny_dataset):
    table = benchmark.scaling_runs("smoke", PLAN, tiny_dataset, progress=False)
    assert set(zip(table.model, table.n_train)) == {(m, n) for m in ("deep_cnn", "lightgbm", "ridge")
                                                    for n in (192, 384)}
    half = json.loads((runs.benchmark_dir("smoke") / "deep_cnn_n192" / "config.json").read_text())
    assert half["n_train"] == half["max_train"] == 192
    ridge_half = json.loads((runs.benchmark_dir("smoke") / "baselines_n192" / "ridge" / "metrics.json").read_text())
    assert ridge_half["n_train"] == 192
    full = table[(table.model == "deep_cnn") & (table.n_train == 384)].iloc[0]
    assert full.r2 == json.loads((runs_dir("smoke") / "deep_cnn" / "metrics.json").read_text())["r2"]


def test_cross_configuration_swaps_loss_learning_rate_and_weight_decay(smoke_home, tiny_dataset):
    table = benchmark.cross_configuration_runs("smoke", PLAN, tiny_dataset, progress=False)
    assert len(table) == 4 and (table.configuration == "native").sum() == 2
    swapped = json.loads((runs.benchmark_dir("smoke") / "bilstm_transformer-config" / "config.json").read_text())
    assert (swapped["loss"], swapped["lr"], swapped["weight_decay"]) == ("l1", 1e-4, 1e-2)
    assert swapped["max_train"] == PLAN.ablation_max_train


def test_patch_sizes_change_the_token_count(smoke_home, tiny_dataset):
    table = benchmark.patch_size_runs("smoke", PLAN, tiny_dataset, progress=False)
    assert list(table.index) == [16, 64]
    for p in (16, 64):
        ckpt = runs.load_checkpoint(runs.benchmark_dir("smoke") / f"specvit_patch{p}" / "best.pt")
        assert ckpt["model_config"]["patch_size"] == p
        assert ckpt["model"]["pos_embedding"].shape[1] == 4096 // p + 1
    assert (table.best_val_r2 <= 1).all()


def test_tokenizer_stability_counts_collapsed_runs_as_failed(smoke_home, tiny_dataset):
    per_run, summary = benchmark.tokenizer_stability("smoke", PLAN, tiny_dataset, progress=False)
    assert list(summary.index) == ["Conv1D", "sliding window"] and (summary.runs == 1).all()
    strict, strict_summary = benchmark.tokenizer_stability("smoke", PLAN, tiny_dataset, min_val_r2=1.0,
                                                           progress=False)
    assert not strict.finished.any() and (strict_summary.success_rate == 0).all()  # R^2 > 1 is impossible
    assert (strict.status == "collapsed").all()  # the per-run table says what the summary counts
    loose, loose_summary = benchmark.tokenizer_stability("smoke", PLAN, tiny_dataset, min_val_r2=-np.inf,
                                                         progress=False)
    assert (loose.status == "finished").all() and (loose_summary.finished == loose_summary.runs).all()
    for table in (per_run, strict, loose):
        assert (table.finished == (table.status == "finished")).all()


def test_diverged_run_is_a_row_not_an_exception(smoke_home, tiny_dataset):
    from specvit_core.train import TrainConfig

    configs = {"blows_up": TrainConfig(arch="deep_cnn", profile="smoke", lr=1e30, epochs=1),
               "fine": TrainConfig(arch="deep_cnn", profile="smoke", epochs=1)}
    table = benchmark.train_runs(configs, tiny_dataset, "smoke", progress=False)
    assert table.loc["blows_up", "status"] == "diverged" and "Non-finite" in table.loc["blows_up", "error"]
    assert table.loc["fine", "run_dir"] == runs.benchmark_dir("smoke") / "fine"  # not the main run's folder
    assert table.loc["fine", "status"] == "finished"


def test_high_snr_runs_fine_tune_from_the_main_runs(smoke_home, tiny_dataset):
    table = benchmark.high_snr_runs("smoke", PLAN, tiny_dataset, high_snr_dir=tiny_dataset, progress=False)
    assert list(table.training) == ["fine-tuned", "from scratch"]
    tuned = json.loads((runs.benchmark_dir("smoke") / "deep_cnn_mag19_fine-tuned" / "config.json").read_text())
    assert tuned["init_from"] == str(runs_dir("smoke") / "deep_cnn" / "best.pt") and tuned["epochs"] == 1
    scratch = json.loads((runs.benchmark_dir("smoke") / "deep_cnn_mag19_from-scratch" / "config.json").read_text())
    assert scratch["init_from"] is None


def test_cls_attention_is_one_normalized_weight_per_token(smoke_home, tiny_dataset):
    test = read_split(tiny_dataset, "test")
    att = attention.cls_attention(runs_dir("smoke") / "specvit", test.flux[:8], test.wave)
    assert len(att) == 4096 // 16 and att.attention.max() == pytest.approx(1.0) and (att.attention > 0).all()
    assert np.all(np.diff(att.wave_center) > 0)
    assert att.wave_start.iloc[0] == test.wave[0] and att.wave_end.iloc[-1] == test.wave[-1]
    with pytest.raises(ValueError, match="'bilstm' has no attention"):
        attention.cls_attention(runs_dir("smoke") / "bilstm", test.flux[:2], test.wave)


def test_seed_runs_differ_only_in_the_seed(smoke_home, tiny_dataset):
    table = benchmark.seed_runs("smoke", "deep_cnn", PLAN, tiny_dataset, progress=False)
    assert list(table.index) == [42, 43]
    a, b = (json.loads((d / "config.json").read_text()) for d in table.run_dir)
    assert {k for k in a if a[k] != b[k]} == {"seed"}
    assert (a["max_train"], a["epochs"]) == (PLAN.ablation_max_train, PLAN.ablation_epochs)
    assert table.loc[42, "r2"] != table.loc[43, "r2"]
