"""The benchmark's tables from run folders (paper section 5.1: Tables 3, 5, 6, 9 and 18).

Every function takes ``{name: run folder}`` (see :func:`specvit_core.runs.list_runs`) and reads the runs through
:mod:`specvit_core.runs`; intervals are bootstrap percentiles over the test spectra (appendix I).
"""
from __future__ import annotations

import time

import numpy as np
import pandas as pd
import torch

from . import runs
from .data import FIXED_NOISE_SEED, fixed_noisy, read_split
from .metrics import bootstrap_ci, metrics_by_stellar_type, paired_bootstrap, regression_metrics
from .report import rounded
from .train import resolve_device

#: The order of the families in the tables (the paper's Table 3): networks, then the baselines.
FAMILY_ORDER = ("hybrid", "recurrent", "transformer", "cnn", "GBDT", "linear", "physics")


def comparison_table(run_dirs: dict, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Table 3: R^2, MAE and sigma_robust with bootstrap 95% intervals, grouped by family, best first in each.

    Parameters
    ----------
    run_dirs : dict
        Model name -> run folder holding test results.
    n_boot, seed : int
        Bootstrap resamples and seed (appendix I).

    Returns
    -------
    pandas.DataFrame
        Index ``model``; columns family, params, n, and each metric with ``_low`` / ``_high``.

    Raises
    ------
    FileNotFoundError
        A run has no test predictions.
    """
    rows = []
    for name, run_dir in run_dirs.items():
        pred = runs.read_predictions(run_dir)
        family, params = runs.run_family(run_dir)
        row = dict(model=name, family=family, params=params, n=len(pred))
        for metric in ("r2", "mae", "sigma_robust"):
            ci = bootstrap_ci(pred.true, pred.pred, metric, n_boot=n_boot, seed=seed)
            row.update({metric: ci["value"], f"{metric}_low": ci["low"], f"{metric}_high": ci["high"]})
        rows.append(row)
    table = pd.DataFrame(rows)
    table["family"] = pd.Categorical(table.family, [f for f in FAMILY_ORDER if f in set(table.family)], ordered=True)
    return table.sort_values(["family", "r2"], ascending=[True, False]).set_index("model")


def stellar_type_mae(run_dirs: dict) -> pd.DataFrame:
    """Table 5: MAE (dex) of each model (columns) for giants, subgiants, dwarfs and overall (rows).

    Parameters
    ----------
    run_dirs : dict
        Model name -> run folder holding test results.

    Returns
    -------
    pandas.DataFrame
        Index giants, subgiants, dwarfs, all; one column of MAE (dex) per model.

    Raises
    ------
    FileNotFoundError
        A run has no test predictions.
    """
    columns = {}
    for name, run_dir in run_dirs.items():
        pred = runs.read_predictions(run_dir)
        columns[name] = metrics_by_stellar_type(pred.true.to_numpy(), pred.pred.to_numpy())["mae"]
    return pd.DataFrame(columns)


def significance(run_dirs: dict, best: str, reference: str = "lightgbm", n_boot: int = 1000,
                 seed: int = 0) -> dict:
    """Tables 9 and 18: the best model's R^2 with its bootstrap CI and SE, and the paired bootstrap against a reference.

    Parameters
    ----------
    run_dirs : dict
        Model name -> run folder.
    best, reference : str
        Names in ``run_dirs``.
    n_boot, seed : int
        Bootstrap resamples and seed (appendix I).

    Returns
    -------
    dict
        The best model's metrics, ``r2_low/high/se``, ``best_epoch``, and ``delta_r2`` (best - reference) with its
        95% interval and one-sided ``p_value``, on the test spectra both scored (successful template fits only).

    Raises
    ------
    ValueError
        The two runs predicted different test sets.
    FileNotFoundError
        One of the runs has no test predictions or metrics.
    """
    a, b = (runs.read_predictions(run_dirs[n], successful_only=False) for n in (best, reference))
    if len(a) != len(b) or not np.array_equal(a.true.to_numpy(), b.true.to_numpy()):
        raise ValueError(f"{best!r} and {reference!r} were scored on different test spectra; cannot pair them")
    ok = np.ones(len(a), bool)
    for p in (a, b):
        ok &= p["success"].astype(bool).to_numpy() if "success" in p else True
    a, b = a[ok], b[ok]
    ci = bootstrap_ci(a.true, a.pred, "r2", n_boot=n_boot, seed=seed)
    diff = paired_bootstrap(a.true, a.pred, b.pred, "r2", n_boot=n_boot, seed=seed)
    return dict(model=best, reference=reference, **regression_metrics(a.true, a.pred), r2_low=ci["low"],
                r2_high=ci["high"], r2_se=ci["se"], best_epoch=runs.read_metrics(run_dirs[best]).get("best_epoch"),
                delta_r2=diff["value"], delta_r2_low=diff["low"], delta_r2_high=diff["high"],
                p_value=diff["p_value"], n_boot=n_boot)


@torch.no_grad()
def inference_seconds(run_dir, flux: np.ndarray, batch_size: int = 256, device: str = "auto") -> float:
    """Wall time for the best checkpoint of a run to predict ``flux``, after one warm-up batch.

    Parameters
    ----------
    run_dir : str or Path
        A network run holding ``best.pt``.
    flux : ndarray, shape (N, L)
        Spectra to predict.
    batch_size : int
    device : str
        "auto" (CUDA when present), "cpu", "cuda" or "cuda:N".

    Returns
    -------
    float
        Seconds for all N spectra, the warm-up batch excluded.

    Raises
    ------
    FileNotFoundError
        The run has no ``best.pt`` (a baseline, or a network not trained yet).
    ValueError
        An unknown or unavailable ``device``.
    """
    dev = resolve_device(device)
    model = runs.load_model(run_dir)[0].to(dev)
    x = torch.from_numpy(np.ascontiguousarray(flux, dtype=np.float32))
    model(x[:batch_size].to(dev))
    if dev.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for i in range(0, len(x), batch_size):
        model(x[i:i + batch_size].to(dev))
    if dev.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def inference_cost(run_dirs: dict, dataset_dir, batch_size: int = 256, device: str = "auto") -> pd.DataFrame:
    """Table 6: time and throughput to predict the test split.

    The networks are timed now; the baselines' prediction times are those their runs measured when fitted (the same
    machine when the same book build made them).

    Parameters
    ----------
    run_dirs : dict
        Model name -> run folder holding test results.
    dataset_dir : str or Path
        Dataset folder whose test split is predicted (with its fixed noise realization).
    batch_size : int
        Batch size of the networks.
    device : str
        "auto" (CUDA when present), "cpu", "cuda" or "cuda:N".

    Returns
    -------
    pandas.DataFrame
        Index ``model``; family, params, seconds, throughput (spectra/s) and where it was measured.

    Raises
    ------
    FileNotFoundError
        No test split in ``dataset_dir``, or a run lacks its checkpoint or metrics.
    ValueError
        An unknown or unavailable ``device``.
    """
    test = read_split(dataset_dir, "test")
    flux = fixed_noisy(test.flux, test.error, FIXED_NOISE_SEED)
    dev = resolve_device(device)
    rows = []
    for name, run_dir in run_dirs.items():
        family, params = runs.run_family(run_dir)
        if params is None:  # a baseline
            m = runs.read_metrics(run_dir)
            seconds, where = m["predict_seconds"], f"CPU ({m['n_jobs']} threads), when fitted"
        else:
            seconds, where = inference_seconds(run_dir, flux, batch_size, device), f"{dev.type} batch {batch_size}"
        rows.append(dict(model=name, family=family, params=params, seconds=seconds, throughput=len(flux) / seconds,
                         measured=where))
    return pd.DataFrame(rows).set_index("model")


def formatted_comparison(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`comparison_table` for reading: parameters in millions, each metric as ``value [low, high]``.

    Parameters
    ----------
    table : pandas.DataFrame
        The output of :func:`comparison_table`.

    Returns
    -------
    pandas.DataFrame
        Same index; string columns family, parameters, n test, r2, mae, sigma_robust; a number that rounds to zero
        reads 0.000, never -0.000.
    """
    shown = rounded(table, 3)

    def with_interval(metric: str) -> pd.Series:
        return shown.apply(lambda r: f"{r[metric]:.3f} [{r[metric + '_low']:.3f}, {r[metric + '_high']:.3f}]", axis=1)

    params = table.params.map(lambda p: "" if pd.isna(p) else f"{p / 1e6:.2f}M")
    return pd.DataFrame({"family": table.family, "parameters": params, "n test": table.n,
                         **{m: with_interval(m) for m in ("r2", "mae", "sigma_robust")}})
