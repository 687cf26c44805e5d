"""The run folder: the one place that knows its files, writes them atomically and reads them back.

A run of a network (:mod:`specvit_core.train`) or a baseline (:mod:`specvit_core.baselines`) is a folder holding

- ``config.json``: what was trained (for networks also ``model_config``, ``n_params``, ``dataset_dir``) and on
  which data: ``manifest_sha256``, the dataset's identity (:func:`specvit_core.verify.manifest_sha256`);
- ``history.csv``: one row per epoch (networks), the validation curve (LightGBM) or the alpha scan (Ridge);
- ``last.pt`` / ``best.pt``: checkpoints of a network (resume / the lowest validation MAE);
- ``<split>_predictions.csv``: ``true``, ``pred`` and the spectra's parameters (``success`` for template fits);
- ``metrics.json`` (test) or ``<split>_metrics.json``: :func:`specvit_core.metrics.regression_metrics` and more.

The main run of an architecture or baseline lives in ``runs/<profile>/<name>/``; the benchmark's other runs in
``runs/<profile>/benchmark/<run>/``.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import torch

from .config import runs_dir
from .files import atomic_path, write_json

CONFIG = "config.json"
HISTORY = "history.csv"
LAST = "last.pt"
BEST = "best.pt"
BENCHMARK = "benchmark"


def predictions_path(run_dir, split: str = "test") -> Path:
    """Path of a split's predictions, ``<run_dir>/<split>_predictions.csv``.

    Parameters
    ----------
    run_dir : str or Path
    split : {"test", "val", "train"}

    Returns
    -------
    Path
    """
    return Path(run_dir) / f"{split}_predictions.csv"


def metrics_path(run_dir, split: str = "test") -> Path:
    """``<run_dir>/metrics.json`` for the test split, ``<run_dir>/<split>_metrics.json`` for the others.

    Parameters
    ----------
    run_dir : str or Path
    split : {"test", "val", "train"}

    Returns
    -------
    Path
    """
    return Path(run_dir) / ("metrics.json" if split == "test" else f"{split}_metrics.json")


def benchmark_dir(profile: str) -> Path:
    """Folder of the benchmark's runs other than the main ones (``runs/<profile>/benchmark``).

    Parameters
    ----------
    profile : str

    Returns
    -------
    Path

    Raises
    ------
    ValueError
        For an unknown profile.
    """
    return runs_dir(profile) / BENCHMARK


def _read_json(path: Path, what: str) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"No {what} at {str(path)!r}; train or fit that run first")
    return json.loads(path.read_text())


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


# ---------------------------------------------------------------------------------------------- writing

def start_run(run_dir, config: dict, fresh: bool) -> Path:
    """Create the folder and write ``config.json``; a fresh start first removes every file of an earlier run.

    Parameters
    ----------
    run_dir : str or Path
        The run folder (created with its parents).
    config : dict
        JSON-serializable description of the run.
    fresh : bool
        True when the run starts from scratch (not resumed).

    Returns
    -------
    Path
        The run folder.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if fresh:
        for path in (run_dir / LAST, run_dir / BEST, run_dir / HISTORY, *run_dir.glob("*_predictions.csv"),
                     *run_dir.glob("*metrics.json")):
            path.unlink(missing_ok=True)
    write_json(run_dir / CONFIG, config)
    return run_dir


def write_history(run_dir, history) -> None:
    """Write ``history.csv`` atomically.

    Parameters
    ----------
    run_dir : str or Path
    history : pandas.DataFrame or list of dict
        One row per epoch (networks), validation step (LightGBM) or alpha (Ridge).
    """
    _write_csv(pd.DataFrame(history), Path(run_dir) / HISTORY)


def write_results(run_dir, predictions: pd.DataFrame, metrics: dict, split: str = "test") -> None:
    """Write a split's predictions, then its metrics (the metrics file marks the evaluation as complete).

    Parameters
    ----------
    run_dir : str or Path
    predictions : pandas.DataFrame
        ``true``, ``pred`` and the spectra's parameters, one row per spectrum.
    metrics : dict
        JSON-serializable metrics of the split.
    split : {"test", "val", "train"}
    """
    _write_csv(predictions, predictions_path(run_dir, split))
    write_json(metrics_path(run_dir, split), metrics)


def save_checkpoint(checkpoint: dict, path) -> None:
    """``torch.save`` atomically, so that a kill during the write leaves the previous checkpoint intact.

    Parameters
    ----------
    checkpoint : dict
        Tensors and plain containers only (it is read back with ``weights_only=True``).
    path : str or Path
    """
    with atomic_path(path) as tmp:
        torch.save(checkpoint, tmp)


# ---------------------------------------------------------------------------------------------- reading

def read_config(run_dir) -> dict:
    """The run's ``config.json``.

    Parameters
    ----------
    run_dir : str or Path

    Returns
    -------
    dict

    Raises
    ------
    FileNotFoundError
        The folder holds no ``config.json``.
    """
    return _read_json(Path(run_dir) / CONFIG, "run configuration")


def read_metrics(run_dir, split: str = "test") -> dict:
    """The run's metrics of ``split`` (``metrics.json`` for the test split).

    Parameters
    ----------
    run_dir : str or Path
    split : {"test", "val", "train"}

    Returns
    -------
    dict
        :func:`specvit_core.metrics.regression_metrics` of the split and run details (e.g. ``best_epoch``).

    Raises
    ------
    FileNotFoundError
        The split was not evaluated.
    """
    return _read_json(metrics_path(run_dir, split), f"{split} metrics")


def read_history(run_dir) -> pd.DataFrame:
    """The run's ``history.csv``; an empty DataFrame when it has none (template fitting).

    Parameters
    ----------
    run_dir : str or Path

    Returns
    -------
    pandas.DataFrame
        For networks one row per epoch (``epoch``, ``train_loss``, ``val_mae`` in the label's unit, ``val_r2``,
        ``time`` in s, ...).
    """
    path = Path(run_dir) / HISTORY
    return pd.read_csv(path) if path.is_file() else pd.DataFrame()


def read_predictions(run_dir, split: str = "test", successful_only: bool = True) -> pd.DataFrame:
    """The predictions of a network or baseline run: ``true``, ``pred`` and the spectra's parameters.

    Parameters
    ----------
    run_dir : str or Path
    split : {"test", "val", "train"}
    successful_only : bool
        Drop failed template fits (``success`` False), as the paper scores the successful fits.

    Returns
    -------
    pandas.DataFrame
        One row per spectrum: ``true`` and ``pred`` of the label (dex for log g), the spectrum's parameters, and
        ``success`` for template fits.

    Raises
    ------
    FileNotFoundError
        The run has no predictions of ``split``.
    """
    path = predictions_path(run_dir, split)
    if not path.is_file():
        raise FileNotFoundError(f"No {split} predictions in {str(run_dir)!r}; train or fit that run first")
    pred = pd.read_csv(path)
    if successful_only and "success" in pred:
        pred = pred[pred["success"].astype(bool)].reset_index(drop=True)
    return pred


def load_checkpoint(path) -> dict:
    """Load a checkpoint dict with ``torch.load(weights_only=True)`` (tensors and plain containers only).

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    dict
        The checkpoint, its tensors on the CPU.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No checkpoint at {str(path)!r}")
    return torch.load(path, map_location="cpu", weights_only=True)


def load_model(run_dir, which: str = BEST) -> tuple[torch.nn.Module, dict]:
    """The network of a run with the weights of ``best.pt`` (or ``last.pt``), in eval mode on the CPU.

    Parameters
    ----------
    run_dir : str or Path
    which : {"best.pt", "last.pt"}
        Checkpoint file in ``run_dir``.

    Returns
    -------
    model : torch.nn.Module
    checkpoint : dict
        The checkpoint (``config``, ``label_scaler``, ``best_epoch``, ...).

    Raises
    ------
    FileNotFoundError
        The run has no such checkpoint (a baseline run, or a network not trained yet).
    """
    from .models import build_model

    checkpoint = load_checkpoint(Path(run_dir) / which)
    model = build_model(**{k: v for k, v in checkpoint["model_config"].items() if k != "family"})
    model.load_state_dict(checkpoint["model"])
    return model.eval(), checkpoint


def is_evaluated(run_dir, split: str = "test") -> bool:
    """Whether the run holds predictions and metrics of ``split``.

    Parameters
    ----------
    run_dir : str or Path
    split : {"test", "val", "train"}

    Returns
    -------
    bool
    """
    return predictions_path(run_dir, split).is_file() and metrics_path(run_dir, split).is_file()


def run_family(run_dir) -> tuple[str, int | None]:
    """Family and trainable parameters of a run: the network's family, or the baseline's kind with None.

    Parameters
    ----------
    run_dir : str or Path

    Returns
    -------
    family : str
        "transformer", "recurrent", "hybrid", "cnn", or the baseline's family ("GBDT", "linear", "physics").
    n_params : int or None
        Trainable parameters of a network; None for a baseline.

    Raises
    ------
    FileNotFoundError
        The folder holds no ``config.json``.
    """
    config = read_config(run_dir)
    if "model_config" in config:
        return config["model_config"]["family"], config["n_params"]
    return config["family"], None


def best_val_r2(run_dir) -> float:
    """The best validation R^2 over the epochs of a network run.

    Parameters
    ----------
    run_dir : str or Path

    Returns
    -------
    float
        NaN when the run has no ``val_r2`` history (a baseline, or a network not trained yet).
    """
    history = read_history(run_dir)
    return float(history.val_r2.max()) if "val_r2" in history else float("nan")


def list_runs(profile: str, names=None, root=None) -> dict[str, Path]:
    """The main runs of a profile that hold test results, ``{name: folder}``, in the order of ``names``.

    Parameters
    ----------
    profile : str
    names : sequence of str, optional
        Run names to look for (default: the networks in registry order, then the other folders of
        ``runs/<profile>`` except ``benchmark``, sorted: the baselines).
    root : str or Path, optional
        Runs folder (default ``runs/<profile>``).

    Returns
    -------
    dict of str to Path
        The runs among ``names`` that have test predictions and metrics; the others are left out.

    Raises
    ------
    ValueError
        For an unknown profile when ``root`` is not given.
    """
    from .models import list_models

    root = Path(root or runs_dir(profile))
    if names is None:
        folders = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name != BENCHMARK) if root.is_dir() else []
        networks = list_models()
        names = [*[n for n in networks if n in folders], *[n for n in folders if n not in networks]]
    return {n: root / n for n in names if is_evaluated(root / n)}


def run_summary(run_dirs: dict) -> pd.DataFrame:
    """One row per run: family, parameters, training spectra, epochs run, best epoch and training seconds.

    Parameters
    ----------
    run_dirs : dict
        Run name -> run folder holding test results.

    Returns
    -------
    pandas.DataFrame
        Index the run names; columns family, params, n_train, epochs_run, best_epoch, train_seconds (s; a
        baseline's fit time) and run_folder; the counts are nullable integers (NA for baselines).

    Raises
    ------
    FileNotFoundError
        A run has no ``config.json`` or test metrics.
    """
    rows = {}
    for name, run_dir in run_dirs.items():
        config, metrics, history = read_config(run_dir), read_metrics(run_dir), read_history(run_dir)
        family, params = run_family(run_dir)
        network = params is not None
        rows[name] = dict(family=family, params=params, n_train=config.get("n_train", metrics.get("n_train")),
                          epochs_run=len(history) if network else None, best_epoch=metrics.get("best_epoch"),
                          train_seconds=history.time.sum() if network else metrics["fit_seconds"],
                          run_folder=Path(run_dir).parent.name + "/" + Path(run_dir).name)
    table = pd.DataFrame.from_dict(rows, orient="index")
    counts = ["params", "n_train", "epochs_run", "best_epoch"]
    return table.astype({c: "Int64" for c in counts}).round({"train_seconds": 1})
