"""The `specvit` command line: each subcommand does its work and reports bad input clearly."""
import json

import pytest

from specvit_core.cli import main
from specvit_core.models import list_models


def test_models_json_lists_every_architecture_with_its_size(capsys):
    assert main(["models", "--size", "smoke", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == list_models()
    assert all(r["size"] == "smoke" and r["n_params"] > 0 for r in rows)


def test_baselines_command_writes_a_run(tiny_dataset, tmp_path, capsys):
    assert main(["baselines", "--profile", "smoke", "--only", "ridge", "--data", str(tiny_dataset),
                 "--runs", str(tmp_path)]) == 0
    metrics = json.loads((tmp_path / "ridge" / "metrics.json").read_text())
    assert metrics["n"] == 64 and "ridge" in capsys.readouterr().out


def test_unknown_choices_name_the_valid_ones(capsys):
    with pytest.raises(SystemExit):
        main(["baselines", "--only", "knn"])
    assert "invalid choice: 'knn'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--arch", "vgg"])
    assert "specvit" in capsys.readouterr().err


def test_benchmark_command_reports_an_unknown_architecture(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SPECVIT_HOME", str(tmp_path))
    monkeypatch.setattr("specvit_core.simulate.ensure_dataset", lambda profile: tmp_path)
    assert main(["benchmark", "--profile", "smoke", "--experiments", "main", "--archs", "vgg"]) == 2
    err = capsys.readouterr().err
    assert "Unknown model name 'vgg'" in err and "specvit" in err
    assert not (tmp_path / "runs" / "smoke" / "vgg").exists()


def test_grid_command_reads_the_cached_grid_or_names_a_bad_folder(tmp_path, capsys):
    assert main(["grid", "--source", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_train_command_reports_a_missing_dataset_without_a_traceback(tmp_path, capsys):
    code = main(["train", "--arch", "bilstm", "--profile", "smoke", "--data", str(tmp_path / "nope"),
                 "--runs", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("specvit train: error: The dataset folder") and "Traceback" not in err
    assert not (tmp_path / "runs" / "bilstm").exists()  # nothing written for a run that could not start
