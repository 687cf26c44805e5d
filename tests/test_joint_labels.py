"""Joint labels (T_eff, log g, [M/H] in one run): per-label z-scoring, the loss averaged over labels, the primary
label's columns and metrics beside every label's, the paths that read a run, and bad input."""
import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from specvit_core.cli import main
from specvit_core.data import LabelScaler, read_labels, read_split
from specvit_core.metrics import regression_metrics, uncertainty_metrics
from specvit_core.runs import load_checkpoint
from specvit_core.train import LOSSES, TrainConfig, evaluate, predict_spectra, train
from specvit_core.transfer import predict_dataset
from specvit_core.uncertainty import mc_noise_predictions

JOINT = ("log_g", "T_eff", "M_H")
SMALL = dict(arch="convstem_lstm", profile="smoke", batch_size=32, lr=3e-3, max_train=128)


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: one torch thread per module


# ------------------------------------------------------------------------------------------- the per-label scaler

def test_label_scaler_z_scores_each_column_with_its_own_mean_and_std():
    y = np.array([[1.0, 4000.0, -1.0], [3.0, 5000.0, 0.0], [5.0, 6000.0, 1.0]])
    scaler = LabelScaler().fit(y)
    np.testing.assert_allclose(scaler.mean, [3.0, 5000.0, 0.0])
    np.testing.assert_allclose(scaler.std, [math.sqrt(8 / 3), 1000 * math.sqrt(2 / 3), math.sqrt(2 / 3)])
    z = scaler.transform(y)  # every column is -a, 0, a with a = sqrt(3/2)
    np.testing.assert_allclose(z, np.outer([-1, 0, 1], [math.sqrt(1.5)] * 3), rtol=1e-14)
    np.testing.assert_allclose(scaler.inverse(z), y, rtol=1e-14)
    state = scaler.state_dict()
    assert isinstance(state["mean"], list) and len(state["std"]) == 3  # plain containers for torch.load(weights_only)
    np.testing.assert_array_equal(LabelScaler.from_state_dict(state).transform(y), z)
    teff = scaler.column(1)
    assert (teff.mean, teff.std) == (5000.0, pytest.approx(1000 * math.sqrt(2 / 3)))
    np.testing.assert_allclose(teff.inverse(z[:, 1]), y[:, 1])


def test_a_scalar_label_scaler_of_an_older_checkpoint_still_loads_and_applies():
    scaler = LabelScaler.from_state_dict({"mean": 3.0, "std": 0.5})  # what every single-label run stores
    assert scaler.state_dict() == {"mean": 3.0, "std": 0.5}
    np.testing.assert_allclose(scaler.inverse([[-2.0], [0.0], [4.0]]), [[2.0], [3.0], [5.0]])  # (N, 1) outputs
    assert scaler.column(0).state_dict() == {"mean": 3.0, "std": 0.5}
    single = LabelScaler().fit([1.0, 2.0, 3.0])  # 1-D labels keep scalar statistics
    assert isinstance(single.mean, float) and isinstance(single.state_dict()["std"], float)


def test_label_scaler_refuses_a_constant_column_and_labels_of_another_width():
    with pytest.raises(ValueError, match=r"labels are constant \(column 1: 5000.0\)"):
        LabelScaler().fit([[1.0, 5000.0], [2.0, 5000.0]])
    scaler = LabelScaler().fit([[1.0, 4000.0], [2.0, 5000.0]])
    with pytest.raises(ValueError, match=r"holds 2 labels; labels must have shape \(\.\.\., 2\), got \(3,\)"):
        scaler.transform([1.0, 2.0, 3.0])
    with pytest.raises(IndexError):
        scaler.column(2)


def test_read_labels_of_several_names_stacks_the_columns(tiny_dataset):
    joint = read_labels(tiny_dataset, "train", JOINT, max_rows=200)
    assert joint.shape == (200, 3)
    for j, name in enumerate(JOINT):
        np.testing.assert_array_equal(joint[:, j], read_labels(tiny_dataset, "train", name, max_rows=200))
    with pytest.raises(KeyError, match="Unknown label 'logg'"):
        read_labels(tiny_dataset, "val", ["log_g", "logg"])


# ---------------------------------------------------------------------------------------------------- the loss

def test_the_loss_is_the_mean_of_the_per_label_losses_in_z_space():
    pred = torch.tensor([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    target = torch.tensor([[1.0, 2.0, 3.0], [1.0, 1.0, -1.0]])
    # per label (B = 2): l1 (1+0)/2, (2+0)/2, (3+2)/2 -> mean 4/3; mse 1/2, 4/2, 13/2 -> mean 3
    assert LOSSES["l1"](pred, target).item() == pytest.approx(4 / 3)
    assert LOSSES["mse"](pred, target).item() == pytest.approx(3.0)
    # NLL head: means, then log-variances; log var 0 for labels 0, 1 and log(4) for label 2
    log_var = torch.tensor([[0.0, 0.0, math.log(4)]] * 2)
    nll = LOSSES["gaussian_nll"](torch.cat([pred, log_var], dim=1), target)
    per_label = [0.5 * (math.log(2 * math.pi) + 0) + 0.5 * 1 / 2,  # residuals 1, 0
                 0.5 * (math.log(2 * math.pi) + 0) + 0.5 * 4 / 2,  # residuals 2, 0
                 0.5 * (math.log(2 * math.pi) + math.log(4)) + 0.5 * (9 + 4) / 2 / 4]  # residuals 3, -2, var 4
    assert nll.item() == pytest.approx(sum(per_label) / 3)
    for j in range(3):  # each label alone, as a single-label head sees it
        single = LOSSES["gaussian_nll"](torch.stack([pred[:, j], log_var[:, j]], dim=1), target[:, j:j + 1])
        assert single.item() == pytest.approx(per_label[j])


# ------------------------------------------------------------------------------------------------ a joint run

@pytest.fixture(scope="module")
def joint_run(tiny_dataset, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("joint") / "convstem_lstm"
    return run_dir, train(TrainConfig(**SMALL, epochs=2, label=JOINT), tiny_dataset, run_dir)


def test_a_joint_run_writes_every_label_and_keeps_the_primary_one_under_true_and_pred(joint_run, tiny_dataset):
    run_dir, metrics = joint_run
    best = load_checkpoint(run_dir / "best.pt")
    assert best["config"]["label"] == JOINT and best["model_config"]["n_outputs"] == 3
    train_labels = read_labels(tiny_dataset, "train", JOINT, max_rows=128)
    np.testing.assert_allclose(best["label_scaler"]["mean"], train_labels.mean(axis=0))
    np.testing.assert_allclose(best["label_scaler"]["std"], train_labels.std(axis=0))
    assert json.loads((run_dir / "config.json").read_text())["label"] == list(JOINT)

    predictions = pd.read_csv(run_dir / "test_predictions.csv")
    assert len(predictions) == 64
    np.testing.assert_array_equal(predictions.true, predictions.true_log_g)
    np.testing.assert_array_equal(predictions.pred, predictions.pred_log_g)
    for name in JOINT:
        np.testing.assert_array_equal(predictions[f"true_{name}"], predictions[name])  # the split's params
        scores = regression_metrics(predictions[f"true_{name}"], predictions[f"pred_{name}"])
        assert {k: metrics[f"{k}_{name}"] for k in scores if k != "n"} == pytest.approx(
            {k: v for k, v in scores.items() if k != "n"})
    assert predictions.pred_T_eff.between(3000, 7000).all()  # in kelvin, not in z-scored units
    primary = regression_metrics(predictions.true, predictions.pred)
    assert {k: metrics[k] for k in primary} == pytest.approx(primary)
    assert json.loads((run_dir / "metrics.json").read_text()) == metrics


def test_a_joint_run_selects_its_checkpoint_on_the_primary_label_in_physical_units(joint_run):
    run_dir, _ = joint_run
    history = pd.read_csv(run_dir / "history.csv")
    best = load_checkpoint(run_dir / "best.pt")
    assert best["best_val_mae"] == history.val_mae.min()
    assert evaluate(run_dir, "val")["mae"] == pytest.approx(best["best_val_mae"], rel=1e-6)  # log g MAE, dex


def test_a_finished_joint_run_is_reused_when_its_labels_come_as_a_list(joint_run, tiny_dataset):
    run_dir, metrics = joint_run
    assert train(TrainConfig(**SMALL, epochs=2, label=list(JOINT)), tiny_dataset, run_dir) == metrics


def test_predicting_with_a_joint_run(joint_run, tiny_dataset):
    run_dir, _ = joint_run
    flux = read_split(tiny_dataset, "test").flux[:5]
    pred = predict_spectra(run_dir, flux)
    assert pred.shape == (5, 3)
    table = predict_dataset(run_dir, tiny_dataset, splits=("val",))
    assert list(table.columns[:5]) == ["split", "targetid", "log_g_pred", "T_eff_pred", "M_H_pred"]
    mc = mc_noise_predictions(run_dir, "val", n_draws=2)  # Monte-Carlo noise draws of the primary label
    np.testing.assert_array_equal(mc.true, read_split(tiny_dataset, "val").labels("log_g"))
    assert mc.draws.shape == (2, 64)


def test_a_single_label_run_names_its_prediction_column_after_its_label(tiny_dataset, tmp_path):
    run_dir = tmp_path / "teff"
    train(TrainConfig(**SMALL, epochs=1, label="T_eff"), tiny_dataset, run_dir)
    table = predict_dataset(run_dir, tiny_dataset, splits=("val",))
    assert list(table.columns[:3]) == ["split", "targetid", "T_eff_pred"] and "log_g_pred" not in table
    assert table["T_eff_pred"].between(2000.0, 8000.0).all()  # kelvin, not dex


def test_a_joint_run_with_the_nll_head_writes_each_label_sigma(tiny_dataset, tmp_path):
    metrics = train(TrainConfig(**SMALL, epochs=1, loss="gaussian_nll", label=("T_eff", "log_g")), tiny_dataset,
                    tmp_path / "nll")
    assert load_checkpoint(tmp_path / "nll" / "best.pt")["model_config"]["n_outputs"] == 4  # 2 means, 2 log vars
    predictions = pd.read_csv(tmp_path / "nll" / "test_predictions.csv")
    np.testing.assert_array_equal(predictions.true, predictions.T_eff)  # T_eff is the primary label here
    np.testing.assert_array_equal(predictions.pred_sigma, predictions.pred_sigma_T_eff)
    assert (predictions.pred_sigma_log_g > 0).all()
    expected = uncertainty_metrics(predictions.true_log_g, predictions.pred_log_g, predictions.pred_sigma_log_g)
    assert {k: metrics[f"{k}_log_g"] for k in expected} == pytest.approx(expected)
    pred, sigma = predict_spectra(tmp_path / "nll", read_split(tiny_dataset, "val").flux[:3], with_sigma=True)
    assert pred.shape == sigma.shape == (3, 2)


# --------------------------------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("label, message", [
    (("log_g", "logg"), r"Unknown label 'logg'; the labels are: T_eff, log_g, M_H"),
    (("log_g", "T_eff", "log_g"), r"label names 'log_g' twice \(log_g, T_eff, log_g\); give each label once"),
    ((), r"label is an empty sequence; give at least one of T_eff, log_g, M_H"),
    (3, r"label must be a label name or a sequence of them; got 3"),
])
def test_bad_labels_are_refused_before_anything_is_written(label, message, tiny_dataset, tmp_path):
    with pytest.raises(ValueError, match=message):
        TrainConfig(arch="bilstm", label=label).resolved("recurrent")
    with pytest.raises(ValueError, match=message):
        train(TrainConfig(arch="bilstm", profile="smoke", label=label), tiny_dataset, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_one_label_in_a_sequence_is_a_single_label_run():
    cfg = TrainConfig(arch="bilstm", label=["T_eff"]).resolved("recurrent")
    assert cfg.label == "T_eff" and cfg.labels == ("T_eff",)


def test_fine_tuning_from_a_run_of_other_labels_is_refused(joint_run, tiny_dataset, tmp_path):
    run_dir, _ = joint_run
    config = TrainConfig(**{**SMALL, "epochs": 1}, init_from=str(run_dir / "best.pt"))  # log g alone
    with pytest.raises(ValueError, match="predicts log_g, T_eff, M_H; it cannot initialize a run of log_g"):
        train(config, tiny_dataset, tmp_path / "tuned")


def test_command_line_labels(tiny_dataset, tmp_path, capsys):
    common = ["train", "--arch", "convstem_lstm", "--profile", "smoke", "--epochs", "1", "--batch-size", "32",
              "--max-train", "64", "--data", str(tiny_dataset), "--runs", str(tmp_path)]
    assert main([*common, "--labels", "log_g", "M_H"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert {"r2_log_g", "r2_M_H", "mae_M_H"} <= set(printed) and "r2_T_eff" not in printed
    assert json.loads((tmp_path / "convstem_lstm" / "config.json").read_text())["label"] == ["log_g", "M_H"]
    assert main([*common, "--labels", "M_H", "M_H", "--no-resume"]) == 2
    assert "label names 'M_H' twice" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*common, "--labels", "logg"])
    assert "invalid choice: 'logg'" in capsys.readouterr().err
