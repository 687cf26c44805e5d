"""What the pages state: the profile banner, the warning for experiments stuck at R^2 ~ 0, the best network and
numbers rounded for display."""
import numpy as np
import pandas as pd

from specvit_core import runs
from specvit_core.report import best_network, plateau_warning, profile_banner, rounded


def test_small_profiles_are_labelled_as_not_the_papers():
    assert "not the paper's" in profile_banner("quick")
    assert "not the paper's" not in profile_banner("paper")


def test_plateau_warning_only_when_no_run_learned():
    assert plateau_warning([0.01, -0.2, float("nan")], "the seeds").startswith("> **No run of the seeds")
    assert "0.010" in plateau_warning([0.01, -0.2], "x")
    assert plateau_warning([0.01, 0.3], "the seeds") == ""  # one run learned: the comparison means something
    assert plateau_warning([float("nan")], "x") != ""  # every run diverged


def _write_run(folder, config, r2_value):
    """A run folder as the training engine or the baselines write it, with a test R^2 of ``r2_value``."""
    predictions = pd.DataFrame({"true": [1.0, 3.0, 5.0], "pred": [1.5, 3.0, 4.5]})
    runs.start_run(folder, config, fresh=True)
    runs.write_results(folder, predictions, {"r2": r2_value, "n": 3})
    return folder


def test_best_network_is_chosen_by_the_family_the_runs_record(tmp_path):
    network = {"model_config": {"family": "recurrent"}, "n_params": 1000}
    run_dirs = {
        "bilstm": _write_run(tmp_path / "bilstm", {"arch": "bilstm", **network}, 0.30),
        "specvit": _write_run(tmp_path / "specvit", {"arch": "specvit", "model_config": {"family": "transformer"},
                                                     "n_params": 2000}, 0.45),
        "lightgbm": _write_run(tmp_path / "lightgbm", {"arch": "lightgbm", "family": "GBDT"}, 0.50),
        "template": _write_run(tmp_path / "template", {"arch": "template", "family": "physics"}, 0.60),
        "chi2_fit": _write_run(tmp_path / "chi2_fit", {"arch": "template", "family": "physics"}, 0.90),  # any name
    }
    assert best_network(run_dirs) == "specvit"  # the template fits score higher but are no networks
    assert best_network({k: run_dirs[k] for k in ("lightgbm", "template", "chi2_fit")}) is None


def test_rounded_never_prints_negative_zero():
    table = pd.DataFrame({"r2": [-0.0004, 0.61234], "n": [12, 30], "arch": ["a", "b"]})
    shown = rounded(table)
    assert "-0.0" not in shown.to_string() and "-0.0" in table.round(3).to_string()
    assert shown.r2.tolist() == [0.0, 0.612] and shown.n.dtype == table.n.dtype  # counts stay integers
    assert "-0" not in rounded(pd.Series([-1e-6, 2.0]), 2).to_string()
    assert rounded(pd.Series([-0.5]), 2).tolist() == [-0.5]  # real negatives keep their sign
    assert f"{rounded(np.float64(-0.0004)):+.3f}" == "+0.000" and type(rounded(np.float64(0.5))) is float
