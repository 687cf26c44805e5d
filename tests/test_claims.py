"""The claims table: verdicts computed from run folders whose predictions were built so that the answer is known."""
import numpy as np
import pandas as pd
import pytest

from specvit_core import claims, paper, runs
from specvit_core.baselines import FAMILY as BASELINE_FAMILY
from specvit_core.benchmark import finetune_run_name
from specvit_core.metrics import r2, regression_metrics, sigma_robust
from specvit_core.models import describe_models
from specvit_core.transfer import CA_II_TRIPLET, transfer_dir

PROFILE = "smoke"
N_BOOT = 300
RNG = np.random.default_rng(7)
Y = RNG.uniform(1.0, 5.0, 400)  # the test spectra every run predicts
MAG = RNG.uniform(20.5, 22.5, Y.size)
Z = RNG.normal(0.0, 1.0, Y.size)  # the error pattern every model shares (the hard spectra are hard for all)
FAMILY = {row["name"]: row["family"] for row in describe_models("smoke")}
NETWORK_R2 = {"convstem_lstm": 0.9, "bilstm": 0.8, "specvit": 0.7, "resnet18_1d": 0.6}
BASELINE_R2 = {"lightgbm": 0.5, "ridge": 0.35, "template": 0.2}


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    """Every run folder of a test lives under its own ``$SPECVIT_HOME``."""
    monkeypatch.setenv("SPECVIT_HOME", str(tmp_path))
    return tmp_path


def predictions(quality) -> np.ndarray:
    """Predictions of Y with R^2 close to ``quality`` (a higher quality is always better on every resample of the
    test spectra); None gives the constant-prediction plateau (R^2 = 0)."""
    if quality is None:
        return np.full(Y.size, Y.mean())
    return Y + Z * np.sqrt((1 - quality) * Y.var())


def write_run(folder, arch: str, pred: np.ndarray, n_train: int = 384):
    """A run folder as train.train (a registered architecture) or the baselines write it."""
    if arch in FAMILY:
        config = {"arch": arch, "model_config": {"family": FAMILY[arch]}, "n_params": 1000, "n_train": n_train}
    else:
        config = {"arch": arch, "family": BASELINE_FAMILY[arch]}
    runs.start_run(folder, config, fresh=True)
    if arch in FAMILY:
        runs.write_history(folder, [{"epoch": 1, "train_loss": 1.0, "val_r2": 0.0, "time": 1.0}])
    metrics = {**regression_metrics(Y, pred), "n_train": n_train, "fit_seconds": 1.0}
    runs.write_results(folder, pd.DataFrame({"true": Y, "pred": pred, "mag": MAG}), metrics)
    return folder


def write_main(scores: dict) -> dict:
    """Main runs ``runs/<profile>/<name>`` with the given R^2 (None: on the plateau); their predictions by name."""
    preds = {name: predictions(q) for name, q in scores.items()}
    for name, pred in preds.items():
        write_run(runs.runs_dir(PROFILE) / name, name, pred)
    return preds


def table(**kwargs) -> pd.DataFrame:
    return claims.claims_table(PROFILE, n_boot=N_BOOT, **kwargs)


def test_verdict_needs_the_interval_to_exclude_a_side():
    assert claims.verdict(0.01, 0.2) == "supported"
    assert claims.verdict(-0.2, -0.01) == "not supported"
    assert claims.verdict(-0.01, 0.2) == "inconclusive"
    assert claims.verdict(0.9, 1.2, threshold=1.0) == "inconclusive"
    assert claims.verdict(float("nan"), float("nan")) == "inconclusive"


def test_a_network_far_above_the_baselines_supports_the_rankings():
    write_main({**NETWORK_R2, **BASELINE_R2})
    result = table()
    assert result.loc[[1, 2, 3], "verdict"].tolist() == ["supported"] * 3
    assert (result.loc[[1, 2, 3], "ci_low"] > 0).all()
    best_minus_lightgbm = (runs.read_metrics(runs.runs_dir(PROFILE) / "convstem_lstm")["r2"]
                           - runs.read_metrics(runs.runs_dir(PROFILE) / "lightgbm")["r2"])
    assert result.loc[3, "quantity"] == "R² convstem_lstm − R² lightgbm"
    assert result.loc[3, "measured"] == pytest.approx(best_minus_lightgbm)
    assert result.loc[3, "paper"] == pytest.approx(paper.TABLE3["convstem_lstm"]["r2"] - paper.TABLE3["lightgbm"]["r2"])
    assert result.loc[2, "quantity"] in ("R² bilstm − R² specvit", "R² specvit − R² resnet18_1d")  # no hybrid
    assert "also" in result.loc[1, "reason"] and "R² ridge − R² template" in result.loc[1, "reason"]


def test_the_runs_other_experiments_did_not_make_leave_their_claims_untestable():
    write_main({**NETWORK_R2, **BASELINE_R2})
    result = table()
    assert (result.loc[4:9, "verdict"] == "not testable at this profile").all()
    assert result.loc[4:9, ["measured", "ci_low", "ci_high"]].isna().all().all()
    assert "specvit_transformer-config" in result.loc[4, "reason"]
    assert "no Fisher ceiling" in result.loc[5, "reason"] and "no attention table" in result.loc[7, "reason"]
    assert "convstem_lstm_mag19_fine-tuned" in result.loc[8, "reason"]


def test_lightgbm_above_every_network_refutes_the_ranking_and_the_significance():
    write_main({"bilstm": 0.5, "specvit": 0.45, "resnet18_1d": 0.4, "lightgbm": 0.9, "ridge": 0.35,
                "template": 0.2})
    result = table()
    assert result.loc[[1, 3], "verdict"].tolist() == ["not supported", "not supported"]
    assert result.loc[1, "quantity"] == "R² bilstm − R² lightgbm"  # the refuted pair, not the weakest supported one
    assert result.loc[3, "ci_high"] < 0
    assert result.loc[2, "verdict"] == "supported"  # the families keep their order


def test_a_tie_with_lightgbm_is_inconclusive():
    preds = write_main({"bilstm": 0.5, "lightgbm": 0.7})
    residual = preds["lightgbm"] - Y
    write_run(runs.runs_dir(PROFILE) / "bilstm", "bilstm", Y + np.random.default_rng(1).permutation(residual))
    row = table().loc[3]
    assert row.measured == pytest.approx(0.0, abs=1e-12)  # the same squared residuals, in another order
    assert row.verdict == "inconclusive" and row.ci_low < 0 < row.ci_high


def test_networks_on_the_plateau_make_the_comparisons_untestable():
    write_main({"bilstm": None, "specvit": None, "resnet18_1d": None, **BASELINE_R2})
    result = table()
    assert (result.loc[[1, 2, 3], "verdict"] == "not testable at this profile").all()
    assert "plateau" in result.loc[1, "reason"]


def write_swap(specvit_swapped, bilstm_swapped):
    """Table 12's four runs: both architectures at R^2 0.8 with their own configuration."""
    qualities = {"specvit_transformer-config": 0.8, "specvit_recurrent-config": specvit_swapped,
                 "bilstm_recurrent-config": 0.8, "bilstm_transformer-config": bilstm_swapped}
    for name, q in qualities.items():
        write_run(runs.benchmark_dir(PROFILE) / name, name.split("_")[0], predictions(q))


@pytest.mark.parametrize("specvit_swapped, bilstm_swapped, expected",
                         [(0.78, -1.0, "supported"), (-1.0, 0.78, "not supported")])
def test_the_swap_claim_follows_which_architecture_collapses(specvit_swapped, bilstm_swapped, expected):
    write_swap(specvit_swapped, bilstm_swapped)
    row = table().loc[4]
    assert row.verdict == expected
    # Table 12: the BiLSTM lost 0.728 - (-5.36) = 6.088, SpecViT 0.709 - 0.702 = 0.007
    assert row.paper == pytest.approx(6.081)


def test_a_missing_swap_run_is_named():
    write_swap(0.78, -1.0)
    runs.metrics_path(runs.benchmark_dir(PROFILE) / "bilstm_transformer-config").unlink()
    row = table().loc[4]
    assert row.verdict == "not testable at this profile" and "bilstm_transformer-config" in row.reason


def ceiling_at(value: float) -> pd.DataFrame:
    return pd.DataFrame({"mag": [21.5, 22.0, 22.5], "r2_max_median": [0.95, value, 0.5]})


def test_the_ceiling_claim_compares_the_ratio_in_the_bin_with_the_papers():
    preds = write_main({"bilstm": 0.9, "lightgbm": 0.5})
    in_bin = np.abs(MAG - claims.CEILING_MAG) < claims.CEILING_HALF_BIN
    bin_r2 = r2(Y[in_bin], preds["bilstm"][in_bin])
    paper_ratio = paper.TABLE13_R2["specvit"][22.0] / paper.CEILING_3D[22.0]
    close, far = table(ceiling=ceiling_at(bin_r2)).loc[5], table(ceiling=ceiling_at(2 * bin_r2)).loc[5]
    assert close.measured == pytest.approx(1.0) and far.measured == pytest.approx(0.5)
    assert close.paper == close.threshold == pytest.approx(paper_ratio)
    assert (close.verdict, far.verdict) == ("supported", "not supported")
    assert table(ceiling=ceiling_at(bin_r2).query("mag != 22.0")).loc[5, "verdict"] == "not testable at this profile"


def write_scaling(network: dict, lightgbm: dict):
    """Figure 9's runs: ``{N: R^2}`` of SpecViT and LightGBM; the largest N is the main run."""
    full = max(network)
    for n, q in network.items():
        folder = runs.runs_dir(PROFILE) / "specvit" if n == full else runs.benchmark_dir(PROFILE) / f"specvit_n{n}"
        write_run(folder, "specvit", predictions(q), n_train=n)
    for n, q in lightgbm.items():
        folder = runs.runs_dir(PROFILE) / ("lightgbm" if n == full else f"benchmark/baselines_n{n}/lightgbm")
        write_run(folder, "lightgbm", predictions(q), n_train=n)


@pytest.mark.parametrize("network, expected", [({96: 0.3, 192: 0.55, 384: 0.8}, "supported"),
                                               ({96: 0.5, 192: 0.5, 384: 0.52}, "not supported")])
def test_the_scaling_claim_compares_the_slopes_against_log_n(network, expected):
    lightgbm = {96: 0.4, 192: 0.5, 384: 0.6}
    write_scaling(network, lightgbm)
    row = table().loc[6]

    def slope(name, pattern):
        folders = [runs.runs_dir(PROFILE) / name, *runs.benchmark_dir(PROFILE).glob(pattern)]
        points = [(np.log10(runs.read_metrics(f)["n_train"]), runs.read_metrics(f)["r2"]) for f in folders]
        return np.polyfit(*zip(*points), 1)[0]

    assert row.measured == pytest.approx(slope("specvit", "specvit_n*") - slope("lightgbm", "baselines_n*/lightgbm"))
    assert row.verdict == expected and "[96, 192, 384]" in row.reason
    # Table 10: SpecViT's slope over N = 5e4..1e6 minus LightGBM's, by an independent least-squares fit
    log_n = np.log10([5e4, 1e5, 2e5, 5e5, 1e6])
    paper_gap = (np.polyfit(log_n, [0.434, 0.596, 0.709, 0.709, 0.711], 1)[0]
                 - np.polyfit(log_n, [0.488, 0.553, 0.547, 0.574, 0.614], 1)[0])
    assert row.paper == pytest.approx(paper_gap)


def attention_table(on_triplet: float) -> tuple[pd.DataFrame, np.ndarray]:
    """Tokens of 10 A over 8400-8700 A (and which hold a Ca II line): ``on_triplet`` there, 0.1-0.3 elsewhere."""
    start = np.arange(8400.0, 8700.0, 10.0)
    weights = np.random.default_rng(3).uniform(0.1, 0.3, start.size)
    holds_line = np.array([any(s <= c <= s + 9.9 for c in CA_II_TRIPLET) for s in start])
    weights[holds_line] = on_triplet
    return pd.DataFrame({"wave_start": start, "wave_end": start + 9.9, "wave_center": start + 4.95,
                         "attention": weights}), holds_line


def test_the_attention_claim_compares_the_triplet_tokens_with_the_rest():
    write_main({"specvit": 0.8, "lightgbm": 0.5})
    focused, holds_line = attention_table(1.0)
    row = table(attention=focused).loc[7]
    assert holds_line.sum() == 3
    assert row.measured == pytest.approx(1.0 / focused.attention[~holds_line].mean())
    assert row.verdict == "supported" and row.threshold == 1.0
    assert table(attention=attention_table(0.01)[0]).loc[7, "verdict"] == "not supported"


def test_attention_without_a_trained_transformer_is_not_testable():
    write_main({"specvit": None, "bilstm": 0.8, "lightgbm": 0.5})
    row = table(attention=attention_table(1.0)[0]).loc[7]
    assert row.verdict == "not testable at this profile" and "plateau" in row.reason


def write_finetuning(qualities: dict):
    """Table 4's runs: ``{arch: (fine-tuned R^2, from-scratch R^2)}``."""
    for arch, (tuned, scratch) in qualities.items():
        write_run(runs.benchmark_dir(PROFILE) / finetune_run_name(arch, "fine-tuned"), arch, predictions(tuned))
        write_run(runs.benchmark_dir(PROFILE) / finetune_run_name(arch, "from scratch"), arch, predictions(scratch))


def test_fine_tuning_must_beat_training_from_scratch_for_every_network():
    write_finetuning({"convstem_lstm": (0.9, 0.5), "bilstm": (0.85, 0.4)})
    assert table().loc[8, "verdict"] == "supported"
    write_finetuning({"convstem_lstm": (0.9, 0.5), "bilstm": (0.4, 0.85)})
    row = table().loc[8]
    assert row.verdict == "not supported"
    assert row.quantity == "R² bilstm_mag19_fine-tuned − R² bilstm_mag19_from-scratch"
    write_finetuning({"convstem_lstm": (0.9, 0.5), "bilstm": (None, None)})  # two constant predictions: left out
    row = table().loc[8]
    assert row.verdict == "supported" and "left out, both runs on the plateau: bilstm" in row.reason


def write_transfer(network_r2: float, lightgbm_r2: float):
    """Experiment A's fine-tuned networks and target-only LightGBM on the transfer target."""
    target = transfer_dir(PROFILE, claims.TRANSFER_TARGET)
    for arch in ("specvit", "bilstm", "convstem_lstm"):
        write_run(target / f"A_{arch}", arch, predictions(network_r2))
    write_run(target / "lightgbm", "lightgbm", predictions(lightgbm_r2))
    return target


def test_transfer_compares_sigma_robust_with_target_only_lightgbm():
    target = write_transfer(0.9, 0.5)
    row = table().loc[9]
    arch = row.quantity.rsplit("A_", 1)[1]
    lightgbm, network = (runs.read_predictions(target / name) for name in ("lightgbm", f"A_{arch}"))
    assert row.measured == pytest.approx(sigma_robust(Y, lightgbm.pred) - sigma_robust(Y, network.pred))
    assert row.paper == pytest.approx(paper.TABLE7["lightgbm"]["sigma_robust"] - paper.TABLE7[arch]["sigma_robust"])
    assert row.verdict == "supported"
    write_transfer(0.5, 0.9)
    assert table().loc[9, "verdict"] == "not supported"


def test_runs_scored_on_different_spectra_are_never_paired():
    target = write_transfer(0.9, 0.5)
    shuffled = runs.read_predictions(target / "lightgbm").sample(frac=1.0, random_state=0)
    runs.write_results(target / "lightgbm", shuffled, runs.read_metrics(target / "lightgbm"))
    with pytest.raises(ValueError, match="different test spectra"):
        table()


def test_a_ranking_shows_a_refuted_comparison_before_a_weaker_open_one():
    wide_open = claims.Evidence("R² a − R² b", 0.05, -0.2, 0.3)
    refuted = claims.Evidence("R² b − R² c", -0.03, -0.05, -0.01)
    shown = claims._all_of([wide_open, refuted])
    assert shown.quantity == "R² b − R² c" and "R² a − R² b = +0.050" in shown.note
    assert claims._all_of([wide_open, claims.Evidence("R² b − R² c", 0.2, 0.1, 0.3)]).quantity == "R² a − R² b"
