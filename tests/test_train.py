"""The training engine: Table 1 defaults, run folder contents, exact resume, guardrails and bad input."""
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from specvit_core.config import get_profile
from specvit_core.metrics import regression_metrics
from specvit_core.models import build_model
from specvit_core.cli import main
from specvit_core.runs import load_checkpoint, save_checkpoint
import specvit_core.train as train_module
from specvit_core.train import TrainConfig, TrainingDiverged, evaluate, lr_factor, train

# A hybrid model with dropout, so that exact resume also needs the restored RNG state.
SMALL = dict(arch="convstem_lstm", profile="smoke", batch_size=32, max_train=128, overrides=dict(dropout=0.1))


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: one torch thread per module


@pytest.mark.parametrize("arch, loss, lr, wd", [
    ("specvit", "l1", 1e-4, 1e-2), ("convstem_lstm", "mse", 3e-4, 1e-4),
    ("bilstm", "mse", 3e-4, 1e-4), ("resnet18_1d", "mse", 3e-4, 1e-4), ("deep_cnn", "mse", 3e-4, 1e-4),
])
def test_table1_defaults_follow_the_family(arch, loss, lr, wd):
    cfg = TrainConfig(arch=arch, profile="quick").resolved(build_model(arch, "smoke").config["family"])
    assert (cfg.loss, cfg.lr, cfg.weight_decay) == (loss, lr, wd)
    quick = get_profile("quick")  # the unset fields come from the profile
    assert (cfg.size, cfg.epochs, cfg.batch_size, cfg.patience) == (quick.model_size, quick.epochs,
                                                                   quick.batch_size, quick.patience)
    kept = TrainConfig(arch=arch, loss="l1", lr=5e-5, epochs=3).resolved("cnn")  # explicit values win
    assert (kept.loss, kept.lr, kept.epochs) == ("l1", 5e-5, 3)


def test_the_paper_profile_keeps_table1_and_the_cosine_schedule():
    paper = TrainConfig(arch="specvit", profile="paper").resolved("transformer")
    assert (paper.lr, paper.warmup_epochs) == (1e-4, 0)
    small = get_profile("quick")
    quick = TrainConfig(arch="specvit", profile="quick").resolved("transformer")
    assert (quick.lr, quick.warmup_epochs) == (pytest.approx(1e-4 * small.lr_scale), small.warmup_epochs)
    assert TrainConfig(arch="specvit", profile="quick", lr=5e-5, warmup_epochs=0).resolved("transformer").lr == 5e-5
    with pytest.raises(ValueError, match="warmup_epochs=13 is out of range"):
        TrainConfig(arch="specvit", profile="quick", epochs=12, warmup_epochs=13).resolved("transformer")


def test_lr_factor_warms_up_linearly_then_follows_the_cosine():
    factors = [lr_factor(t, total=100, warmup=10, floor=0.1) for t in range(100)]
    np.testing.assert_allclose(factors[:10], np.arange(1, 11) / 10)  # linear to the peak
    assert factors[10] == 1.0 and np.all(np.diff(factors[10:]) < 0)  # then decays
    assert lr_factor(100, total=100, warmup=10, floor=0.1) == pytest.approx(0.1)
    cosine = [lr_factor(t, total=50, warmup=0, floor=0.0) for t in range(51)]  # no warm-up: the paper's cosine
    np.testing.assert_allclose(cosine, 0.5 * (1 + np.cos(np.pi * np.arange(51) / 50)), atol=1e-15)


@pytest.fixture(scope="module")
def trained(tiny_dataset, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs") / "convstem_lstm"
    config = TrainConfig(arch="convstem_lstm", profile="smoke", epochs=4, patience=4, batch_size=32, lr=3e-3)
    return run_dir, train(config, tiny_dataset, run_dir)


def test_run_folder_contents(trained, tiny_dataset):
    run_dir, metrics = trained
    history = pd.read_csv(run_dir / "history.csv")
    assert list(history.columns) == ["epoch", "train_loss", "train_mae", "val_loss", "val_mae", "val_r2", "lr", "time"]
    assert list(history.epoch) == [1, 2, 3, 4]
    assert history.train_loss.iloc[-1] < 0.5 * history.train_loss.iloc[0]  # it learns the toy log g signal
    assert history.lr.is_monotonic_decreasing and history.lr.iloc[-1] == pytest.approx(1e-5)  # cosine to eta_min
    best = load_checkpoint(run_dir / "best.pt")  # weights_only=True
    assert best["best_epoch"] == history.epoch[history.val_mae.idxmin()]
    assert best["best_val_mae"] == history.val_mae.min() < history.val_mae.iloc[0]
    assert best["config"]["arch"] == "convstem_lstm" and best["config"]["size"] == "smoke"
    assert set(best["label_scaler"]) == {"mean", "std"}
    assert all(isinstance(v, float) for v in best["label_scaler"].values())  # a single label: scalar statistics
    assert best["config"]["label"] == "log_g" and best["model_config"]["n_outputs"] == 1
    predictions = pd.read_csv(run_dir / "test_predictions.csv")
    assert len(predictions) == 64 and {"true", "pred", "log_g", "snr", "seeing"} <= set(predictions.columns)
    assert not [c for c in predictions if c.startswith(("true_", "pred_"))]  # per-label columns: joint runs only
    np.testing.assert_array_equal(predictions.true, predictions.log_g)
    stored = json.loads((run_dir / "metrics.json").read_text())
    assert stored == metrics
    recomputed = regression_metrics(predictions.true, predictions.pred)
    assert {k: stored[k] for k in recomputed} == pytest.approx(recomputed)
    assert json.loads((run_dir / "config.json").read_text())["loss"] == "mse"  # Table 1, hybrid family


def test_evaluate_on_val_reproduces_the_training_validation(trained):
    run_dir, _ = trained
    metrics = evaluate(run_dir, "val")  # same checkpoint, same fixed noise realization as during training
    assert metrics["mae"] == pytest.approx(load_checkpoint(run_dir / "best.pt")["best_val_mae"], rel=1e-6)
    assert len(pd.read_csv(run_dir / "val_predictions.csv")) == metrics["n"] == 64


def test_bf16_autocast_on_cpu_learns_and_evaluates_in_the_precision_it_trained_in(trained, tiny_dataset, tmp_path):
    config = TrainConfig(arch="convstem_lstm", profile="smoke", epochs=4, patience=4, batch_size=32, lr=3e-3,
                         precision="bf16")
    metrics = train(config, tiny_dataset, tmp_path / "bf16")
    history = pd.read_csv(tmp_path / "bf16" / "history.csv")
    assert history.train_loss.iloc[-1] < 0.5 * history.train_loss.iloc[0]  # it learns the toy signal as fp32 does
    assert json.loads((tmp_path / "bf16" / "config.json").read_text())["amp"] == "bfloat16"
    fp32 = pd.read_csv(trained[0] / "test_predictions.csv").pred
    bf16 = pd.read_csv(tmp_path / "bf16" / "test_predictions.csv").pred
    assert not np.allclose(fp32, bf16, atol=1e-4)  # the arithmetic did change
    assert metrics["mae"] == pytest.approx(trained[1]["mae"], rel=0.25)  # ... not the accuracy on the toy
    # evaluation repeats the validation of training only when it runs in the run's precision
    assert evaluate(tmp_path / "bf16", "val")["mae"] == pytest.approx(
        load_checkpoint(tmp_path / "bf16" / "best.pt")["best_val_mae"], rel=1e-6)


@pytest.mark.parametrize("family, cpu_bf16", [("recurrent", True), ("cnn", True), ("transformer", False),
                                               ("hybrid", False)])
def test_auto_precision_on_cpu_is_bf16_only_for_recurrent_and_cnn_networks_on_a_bf16_cpu(family, cpu_bf16):
    cpu = torch.device("cpu")
    native = train_module.cpu_has_native_bf16()
    assert train_module.autocast_dtype(cpu, "auto", family) == (torch.bfloat16 if cpu_bf16 and native else None)
    assert train_module.autocast_dtype(cpu, "fp32", family) is None
    assert train_module.autocast_dtype(cpu, "bf16", family) == torch.bfloat16


def test_auto_precision_follows_the_cpu_capability(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(train_module, "cpu_has_native_bf16", lambda: False)
    assert train_module.autocast_dtype(cpu, "auto", "recurrent") is None  # emulated bf16 would be slower: fp32
    monkeypatch.setattr(train_module, "cpu_has_native_bf16", lambda: True)
    assert train_module.autocast_dtype(cpu, "auto", "cnn") == torch.bfloat16


def test_finished_run_returns_its_metrics_without_training_or_evaluating(trained, tiny_dataset):
    run_dir, metrics = trained
    before = load_checkpoint(run_dir / "last.pt")
    written = (run_dir / "test_predictions.csv").stat().st_mtime_ns
    config = TrainConfig(arch="convstem_lstm", profile="smoke", epochs=4, patience=4, batch_size=32, lr=3e-3)
    assert train(config, tiny_dataset, run_dir) == metrics
    assert load_checkpoint(run_dir / "last.pt")["step"] == before["step"]
    assert (run_dir / "test_predictions.csv").stat().st_mtime_ns == written


def test_fine_tuning_starts_from_the_checkpoint_weights_and_label_scaling(trained, tiny_dataset, tmp_path):
    run_dir, _ = trained
    pretrained = load_checkpoint(run_dir / "best.pt")
    # A learning rate of ~0 keeps the weights where they started: the pretrained ones, not a fresh initialization.
    config = TrainConfig(arch="convstem_lstm", profile="smoke", epochs=1, batch_size=32, lr=1e-30, eta_min=0.0,
                         init_from=str(run_dir / "best.pt"), max_train=64)
    train(config, tiny_dataset, tmp_path / "tuned")
    tuned = load_checkpoint(tmp_path / "tuned" / "best.pt")
    weights = [name for name, _ in build_model("convstem_lstm", "smoke").named_parameters()]  # not BN statistics
    assert all(torch.allclose(pretrained["model"][k], tuned["model"][k], atol=1e-6) for k in weights)
    assert tuned["label_scaler"] == pretrained["label_scaler"]  # not refitted on the 64 fine-tuning labels
    with pytest.raises(ValueError, match="holds 'convstem_lstm' .* cannot initialize 'lstmformer'"):
        train(TrainConfig(arch="lstmformer", profile="smoke", init_from=str(run_dir / "best.pt")), tiny_dataset,
              tmp_path / "other")
    # a checkpoint saved before a hyperparameter existed (here: positions) takes its default and still fine-tunes
    older = {**pretrained, "model_config": {k: v for k, v in pretrained["model_config"].items() if k != "positions"}}
    save_checkpoint(older, tmp_path / "older.pt")
    config = TrainConfig(arch="convstem_lstm", profile="smoke", epochs=1, batch_size=32, lr=1e-30, eta_min=0.0,
                         init_from=str(tmp_path / "older.pt"), max_train=64)
    train(config, tiny_dataset, tmp_path / "tuned_older")
    assert torch.allclose(load_checkpoint(tmp_path / "tuned_older" / "best.pt")["model"]["head.weight"],
                          pretrained["model"]["head.weight"], atol=1e-6)


def test_checkpoint_of_another_architecture_or_config_is_refused(trained, tiny_dataset):
    run_dir, _ = trained
    with pytest.raises(ValueError, match="is for architecture 'convstem_lstm' .* not 'lstmformer'"):
        train(TrainConfig(arch="lstmformer", profile="smoke"), tiny_dataset, run_dir)
    config = TrainConfig(arch="convstem_lstm", profile="smoke", epochs=4, patience=4, batch_size=32, lr=1e-3)
    with pytest.raises(ValueError, match=r"different configuration .*'lr': \(0\.003, 0\.001\)"):
        train(config, tiny_dataset, run_dir)


def _weights(run_dir):
    return load_checkpoint(run_dir / "last.pt")


def _identical(a, b) -> bool:
    """Exact equality of nested checkpoint containers (tensors bit for bit)."""
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_identical(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(map(_identical, a, b))
    return a == b


def test_resume_is_bit_identical(tiny_dataset, tmp_path):
    warm = dict(epochs=2, warmup_epochs=1.5, save_every=3)  # 4 steps per epoch; both pauses fall in the warm-up
    config = TrainConfig(**SMALL, **warm)
    straight = train(config, tiny_dataset, tmp_path / "straight")
    reference = _weights(tmp_path / "straight")
    for name, pause in (("between_epochs", 4), ("mid_epoch", 6)):
        paused = train(TrainConfig(**SMALL, **warm, max_steps=pause), tiny_dataset, tmp_path / name)
        assert paused == {"status": "paused", "epoch": pause // 4, "step": pause}
        assert not (tmp_path / name / "metrics.json").exists()
        assert train(config, tiny_dataset, tmp_path / name) == straight
        resumed = _weights(tmp_path / name)
        for key in ("model", "optimizer", "scheduler", "rng"):
            assert _identical(reference[key], resumed[key]), (name, key)
        history = [pd.read_csv(tmp_path / d / "history.csv").drop(columns="time") for d in ("straight", name)]
        pd.testing.assert_frame_equal(*history)


def test_different_seed_gives_different_weights(tiny_dataset, tmp_path):
    train(TrainConfig(**SMALL, epochs=1), tiny_dataset, tmp_path / "a")
    train(TrainConfig(**SMALL, epochs=1, seed=3), tiny_dataset, tmp_path / "b")
    a, b = _weights(tmp_path / "a")["model"], _weights(tmp_path / "b")["model"]
    assert not all(torch.equal(a[k], b[k]) for k in a)


def test_nan_loss_stops_with_the_last_good_checkpoint(tiny_dataset, tmp_path):
    config = TrainConfig(**SMALL, epochs=2, lr=1e30, save_every=1)  # weights blow up after the first update
    with pytest.raises(TrainingDiverged, match=r"Non-finite training loss \(\w+\) at epoch 1, step \d+") as failure:
        train(config, tiny_dataset, tmp_path / "run")
    failed_step = int(re.search(r"global step (\d+)", str(failure.value)).group(1))
    last = _weights(tmp_path / "run")  # saved after every step: the one before the failure, finite
    assert last["step"] == failed_step - 1 >= 1
    assert all(torch.isfinite(v).all() for v in last["model"].values())


def test_test_split_is_read_only_after_training(tiny_dataset, tmp_path):
    dataset = tmp_path / "data"
    shutil.copytree(tiny_dataset, dataset)
    (dataset / "test.h5").unlink()
    with pytest.raises(FileNotFoundError, match=r"No test split .* expected test\.h5"):
        train(TrainConfig(**SMALL, epochs=1), dataset, tmp_path / "run")
    assert (tmp_path / "run" / "best.pt").is_file() and len(pd.read_csv(tmp_path / "run" / "history.csv")) == 1


def test_bad_configuration(tiny_dataset, tmp_path):
    with pytest.raises(ValueError, match="Unknown model name 'vit9'; valid names are: specvit, "):
        train(TrainConfig(arch="vit9", profile="smoke"), tiny_dataset, tmp_path)
    with pytest.raises(ValueError, match="Unknown profile 'huge'; valid profiles are: smoke, quick, cpu, paper"):
        train(TrainConfig(arch="bilstm", profile="huge"), tiny_dataset, tmp_path)
    with pytest.raises(ValueError, match="loss must be one of l1, mse, gaussian_nll; got 'huber'"):
        TrainConfig(arch="bilstm", loss="huber").resolved("recurrent")
    with pytest.raises(ValueError, match="precision must be one of auto, fp32, bf16; got 'fp16'"):
        TrainConfig(arch="bilstm", precision="fp16").resolved("recurrent")
    with pytest.raises(ValueError, match="lr=-0.1 is out of range"):
        TrainConfig(arch="bilstm", lr=-0.1).resolved("recurrent")
    with pytest.raises(ValueError, match="device must be 'auto', 'cpu', 'cuda' or 'cuda:N'; got 'gpu0'"):
        train(TrainConfig(arch="bilstm", profile="smoke", device="gpu0"), tiny_dataset, tmp_path)
    with pytest.raises(ValueError, match="fewer than batch_size=64"):
        train(TrainConfig(**{**SMALL, "max_train": 40, "batch_size": 64}), tiny_dataset, tmp_path / "r")


def test_command_line(tiny_dataset, tmp_path, capsys):
    main(["train", "--arch", "convstem_lstm", "--profile", "smoke", "--epochs", "1", "--patience", "7", "--batch-size", "32",
          "--max-train", "64", "--data", str(tiny_dataset), "--runs", str(tmp_path)])
    printed = json.loads(capsys.readouterr().out)  # epoch lines go to stderr, the metrics to stdout
    assert printed == json.loads((tmp_path / "convstem_lstm" / "metrics.json").read_text())
    written = json.loads((tmp_path / "convstem_lstm" / "config.json").read_text())
    assert (written["patience"], written["batch_size"], written["max_train"]) == (7, 32, 64)
    with pytest.raises(SystemExit):
        main(["train", "--arch", "vit9"])
    assert "invalid choice: 'vit9'" in capsys.readouterr().err


def _torchrun(tiny_dataset, runs, *args):
    """``specvit train`` of a smoke BiLSTM (no dropout, no batch norm) in two processes (gloo), 16 spectra each."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "specvit_core.train", "--arch", "bilstm", "--profile", "smoke", "--epochs", "2",
               "--batch-size", "16", "--data", str(tiny_dataset), "--runs", str(runs), *args]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    return runs / "bilstm"


def test_two_processes_train_the_network_of_one_and_resume_exactly(tiny_dataset, tmp_path):
    """Two ranks of 16 see each epoch once, as one process's batches of 32 (the same seeded permutation, split between
    the ranks, and the same per-spectrum noise), so data parallelism changes only the summation order."""
    one = tmp_path / "one" / "bilstm"
    single = train(TrainConfig(arch="bilstm", profile="smoke", epochs=2, batch_size=32), tiny_dataset, one)
    run_dir = _torchrun(tiny_dataset, tmp_path / "two")
    assert json.loads((run_dir / "config.json").read_text())["world_size"] == 2
    assert _weights(run_dir)["step"] == _weights(one)["step"] == 2 * 256 // 32  # each rank: half of every epoch
    assert sorted(p.name for p in run_dir.iterdir()) == sorted(p.name for p in one.iterdir())  # rank 0 writes alone
    double = json.loads((run_dir / "metrics.json").read_text())
    assert double["n"] == single["n"] == 64
    assert double["mae"] == pytest.approx(single["mae"], abs=1e-4) and double["r2"] == pytest.approx(single["r2"],
                                                                                                   abs=1e-4)
    history = [pd.read_csv(d / "history.csv").drop(columns="time") for d in (one, run_dir)]
    pd.testing.assert_frame_equal(*history, atol=1e-4, check_exact=False)

    paused = _torchrun(tiny_dataset, tmp_path / "paused", "--max-steps", "5")  # mid-epoch 1 of 8 steps per epoch
    assert _weights(paused)["step"] == 5 and not (paused / "metrics.json").exists()
    _torchrun(tiny_dataset, tmp_path / "paused")  # the same command resumes
    for key in ("model", "optimizer", "scheduler"):
        assert _identical(_weights(run_dir)[key], _weights(paused)[key]), key


@pytest.mark.parametrize("field, value", [("epochs", "12"), ("batch_size", 32.0), ("lr", "1e-4"), ("seed", True),
                                          ("max_train", "100")])
def test_config_fields_of_the_wrong_type_are_refused_by_name(field, value):
    with pytest.raises(ValueError, match=f"The {field} parameter, {re.escape(repr(value))}, must be"):
        TrainConfig(arch="bilstm", profile="smoke", **{field: value}).resolved("recurrent")
