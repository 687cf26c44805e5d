"""The classical baselines of the paper (section 5.1, Tables 3 and 6, appendix H): LightGBM, Ridge, template fitting.

LightGBM and Ridge see the inputs the networks see: training spectra with noise realization ``k`` of row ``i``
identical to the one ``NoisySpectra(noise="fresh", seed)`` serves in epoch ``k`` (one realization by default),
validation and test spectra with the fixed noise of seed 42 (:func:`specvit_core.data.fixed_noisy`).

Template fitting (appendix H, :mod:`specvit_core.template_fit`) works on the noisy test flux as stored
(median-normalized, with its sigma), against the simulator's own template grid.

``run_baselines(profile)`` fits and evaluates all three and writes ``runs/<profile>/<name>/`` with ``config.json``,
``history.csv`` (validation curve), ``test_predictions.csv`` and ``metrics.json``, the files
:func:`specvit_core.train.evaluate` writes for the networks.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import lightgbm
import numpy as np
import pandas as pd
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from . import files, runs
from .config import data_dir, get_profile, runs_dir
from .data import (FIXED_NOISE_SEED, fixed_noisy, flux_is_observed, lock_test_split, noisy_rows, read_manifest,
                   read_split)
from .metrics import check_arrays, mae, r2, regression_metrics
from .spectra import AXES, TemplateGrid, load_grid
from .template_fit import template_fit
from .verify import check_contract

BASELINES = ("ridge", "lightgbm", "template")
FAMILY = {"ridge": "linear", "lightgbm": "GBDT", "template": "physics"}  # the paper's Table 3 families
# Section 5.1: up to 2500 trees, lr 0.05, 63 leaves, feature and bagging fractions 0.8.
LIGHTGBM_PARAMS = dict(learning_rate=0.05, num_leaves=63, feature_fraction=0.8, bagging_fraction=0.8, bagging_freq=1)
LIGHTGBM_TREES = {"smoke": 100, "quick": 300, "cpu": 2500, "paper": 2500}  # cap on the trees, per profile
EARLY_STOPPING_ROUNDS = 50
RIDGE_ALPHAS = 10.0 ** np.arange(0, 8)  # Table 3 used alpha = 1e5


def training_inputs(flux, error, labels, n_augment: int = 1, seed: int = 42, alpha: float = 1.0
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Noisy training inputs: ``n_augment`` realizations per spectrum, realization ``k`` = the networks' epoch ``k``.

    Parameters
    ----------
    flux, error : ndarray, shape (N, L)
        Clean normalized flux and sigma of the training split.
    labels : ndarray, shape (N,)
        Training labels.
    n_augment : int
        Noise realizations per spectrum (>= 1); the rows are stacked realization by realization.
    seed : int
        Training seed (``TrainConfig.seed``, 42 by default).
    alpha : float
        Noise-level scaling (0 for observed survey spectra, whose noise is already in the flux).

    Returns
    -------
    x : ndarray, float32, shape (n_augment * N, L)
        Noisy flux, realization by realization.
    y : ndarray, shape (n_augment * N,)
        ``labels`` repeated ``n_augment`` times.

    Raises
    ------
    ValueError
        ``n_augment < 1``, or inputs empty, non-finite (``error`` may be +inf where a survey spectrum has no data,
        with ``alpha`` 0) or of different lengths.
    """
    if n_augment < 1:
        raise ValueError(f"n_augment must be a positive integer; got {n_augment!r}")
    if alpha == 0:  # observed spectra: only the flux is used, and their error is +inf where they have no data
        flux, labels = check_arrays(flux=flux, labels=labels)
        error = np.broadcast_to(np.float32(1.0), flux.shape)
    else:
        flux, error, labels = check_arrays(flux=flux, error=error, labels=labels)
    x = np.concatenate([noisy_rows(flux, error, np.arange(len(flux)), seed, k, alpha) for k in range(n_augment)])
    return x, np.tile(labels, n_augment)


def fit_lightgbm(x_train, y_train, x_val, y_val, n_estimators: int = 2500,
                 early_stopping: int = EARLY_STOPPING_ROUNDS, **params) -> tuple[lightgbm.Booster, pd.DataFrame]:
    """Gradient-boosted trees on the flux pixels, stopped early on the validation L2 loss.

    Parameters
    ----------
    x_train, y_train, x_val, y_val : array_like, shapes (N, L), (N,), (M, L), (M,)
        Training and validation inputs (noisy flux) and labels.
    n_estimators : int
        Most trees (2500 in the paper).
    early_stopping : int
        Stop after this many trees without a better validation loss; the best iteration is kept.
    **params
        Overrides of :data:`LIGHTGBM_PARAMS` and other LightGBM parameters (e.g. ``num_threads``).

    Returns
    -------
    model : lightgbm.Booster
        ``model.predict`` uses the best iteration (``model.best_iteration``).
    history : pandas.DataFrame
        ``iteration, val_l2``: the validation curve.

    Raises
    ------
    ValueError
        Inputs empty, non-finite, or of different lengths.
    """
    x_train, y_train = check_arrays(x_train=x_train, y_train=y_train)
    x_val, y_val = check_arrays(x_val=x_val, y_val=y_val)
    params = {**LIGHTGBM_PARAMS, "objective": "regression", "metric": "l2", "num_threads": os.cpu_count() or 1,
              "seed": 0, "verbosity": -1, **params}
    train_set = lightgbm.Dataset(x_train, y_train, params=params)
    history = {}
    model = lightgbm.train(params, train_set, num_boost_round=n_estimators,
                           valid_sets=[lightgbm.Dataset(x_val, y_val, reference=train_set)], valid_names=["val"],
                           callbacks=[lightgbm.early_stopping(early_stopping, verbose=False),
                                      lightgbm.record_evaluation(history)])
    curve = history["val"]["l2"]
    return model, pd.DataFrame({"iteration": np.arange(1, len(curve) + 1), "val_l2": curve})


def fit_ridge(x_train, y_train, x_val, y_val, alphas=RIDGE_ALPHAS):
    """Ridge regression on standardized flux, with alpha chosen by the validation MAE.

    Parameters
    ----------
    x_train, y_train, x_val, y_val : array_like, shapes (N, L), (N,), (M, L), (M,)
        Training and validation inputs (noisy flux) and labels.
    alphas : sequence of float
        Candidate regularization strengths (> 0).

    Returns
    -------
    model : sklearn.pipeline.Pipeline
        StandardScaler + Ridge, fitted with the chosen alpha.
    alpha : float
        The chosen alpha.
    scan : pandas.DataFrame
        ``alpha, val_mae, val_r2`` for every candidate.

    Raises
    ------
    ValueError
        Inputs empty, non-finite, or of different lengths; no alpha or a non-positive one.
    """
    x_train, y_train = check_arrays(x_train=x_train, y_train=y_train)
    x_val, y_val = check_arrays(x_val=x_val, y_val=y_val)
    alphas = np.atleast_1d(np.asarray(alphas, dtype=float))
    if alphas.size == 0 or not np.all(alphas > 0):
        raise ValueError(f"alphas must be a non-empty sequence of positive numbers; got {alphas.tolist()}")
    x_train, x_val = x_train.astype(np.float64), x_val.astype(np.float64)  # float32 Gram matrices lose digits
    rows, best = [], None
    for alpha in alphas:
        model = make_pipeline(StandardScaler(), Ridge(alpha=alpha)).fit(x_train, y_train)
        pred = model.predict(x_val)
        rows.append({"alpha": alpha, "val_mae": mae(y_val, pred), "val_r2": r2(y_val, pred)})
        if best is None or rows[-1]["val_mae"] < best[1]:
            best = (model, rows[-1]["val_mae"], alpha)
    return best[0], float(best[2]), pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------------ run and cache

def _cached(run_dir: Path, config: dict) -> dict | None:
    """The metrics of a finished run made with the same configuration, else None."""
    if runs.is_evaluated(run_dir) and runs.read_config(run_dir) == config:
        return runs.read_metrics(run_dir)
    return None


def label_bounds(dataset_dir) -> dict:
    """Label ranges ``{"T_eff": (lo, hi), ...}`` a simulated dataset was drawn from (its manifest).

    Parameters
    ----------
    dataset_dir : str or Path
        A dataset folder written by :func:`specvit_core.simulate.generate_dataset`.

    Returns
    -------
    dict
        Label -> (lo, hi) for the ranges the manifest records; {} without a manifest.

    Raises
    ------
    json.JSONDecodeError
        A manifest that is not JSON.
    """
    config = read_manifest(dataset_dir, required=False).get("config", {})
    ranges = zip(AXES, ("teff_range", "logg_range", "mh_range"))
    return {a: tuple(config[k]) for a, k in ranges if k in config}


def run_baselines(profile: str, baselines=BASELINES, *, dataset_dir=None, runs_root=None, label: str = "log_g",
                  n_augment: int = 1, seed: int = 42, max_train: int | None = None, grid: TemplateGrid | None = None,
                  n_jobs: int | None = None,
                  recompute: bool = False, progress: bool = True) -> pd.DataFrame:
    """Fit the baselines on a profile's train/val splits, evaluate them on its test split and cache the runs.

    Parameters
    ----------
    profile : str
        Sizes the LightGBM tree cap (:data:`LIGHTGBM_TREES`) and names the default folders.
    baselines : sequence of str
        Any of :data:`BASELINES`.
    dataset_dir, runs_root : str or Path, optional
        Default ``data/<profile>`` and ``runs/<profile>``; each baseline writes ``runs_root/<name>/``.
    label : str
        Target of LightGBM and Ridge (template fitting fits all three labels and scores ``label`` first).
    n_augment : int
        Training noise realizations per spectrum for LightGBM and Ridge.
    seed : int
        Training-noise seed (the networks' ``TrainConfig.seed``).
    max_train : int, optional
        Fit LightGBM and Ridge on the first ``max_train`` training spectra (the scaling experiment).
    grid : TemplateGrid, optional
        Template grid; default: the one named in the dataset's manifest (the simulator's).
    n_jobs : int, optional
        LightGBM threads and template-fitting processes (default: all cores).
    recompute : bool
        Refit even when a run folder holds results made with the same configuration.
    progress : bool
        Show progress bars (grid loading, template fitting).

    Returns
    -------
    pandas.DataFrame
        One row per baseline (index ``arch``): the test metrics of ``metrics.json``.

    Raises
    ------
    ValueError
        An unknown baseline or profile; a template grid other than the dataset's (its manifest's ``grid_meta``)
        or with other wavelengths; a dataset that violates its contract (:func:`specvit_core.verify.check_contract`).
    """
    unknown = [b for b in baselines if b not in BASELINES]
    if unknown or not baselines:
        raise ValueError(f"baselines must be a non-empty subset of {', '.join(BASELINES)}; got {list(baselines)}")
    p = get_profile(profile)
    dataset_dir = Path(dataset_dir or data_dir(profile)).resolve()
    runs_root = Path(runs_root or runs_dir(profile))
    manifest_sha256 = check_contract(dataset_dir)  # appendix K, before any data is read
    manifest = read_manifest(dataset_dir, required=False)
    configs = _configs(p.name, dataset_dir, manifest, manifest_sha256, label, n_augment, seed, max_train)
    n_jobs = n_jobs or os.cpu_count() or 1
    results, test = {}, None
    for name in baselines:
        run_dir, config = runs_root / name, configs[name]
        results[name] = None if recompute else _cached(run_dir, config)
        if results[name] is not None:
            continue
        if test is None:
            test = read_split(dataset_dir, "test")
            x_test = fixed_noisy(test.flux, test.error, alpha=configs[name].get("noise_alpha", 1.0))
        if name == "template":
            grid = grid or load_grid(config["grid"], progress=progress)
            columns, history, extra = _run_template(config, grid, manifest.get("grid_meta", {}), test, x_test,
                                                    n_jobs, progress)
        else:
            with lock_test_split():  # appendix K.1.2: fitting reads train and val only
                train, val = read_split(dataset_dir, "train", max_train), read_split(dataset_dir, "val")
            columns, history, extra = _run_learned(config, train, val, x_test, n_jobs)
        ok = columns.get("success", np.ones(len(test), bool))
        true = test.labels(label)
        metrics = dict(regression_metrics(true[ok], columns["pred"][ok]), split="test", arch=name, profile=p.name,
                       label=label, n_jobs=n_jobs, **extra, throughput=len(test) / extra["predict_seconds"])
        predictions = pd.concat([pd.DataFrame({"true": true, **columns}), test.params], axis=1)
        runs.start_run(run_dir, config, fresh=True)
        if history is not None:
            runs.write_history(run_dir, history)
        runs.write_results(run_dir, predictions, metrics)
        results[name] = metrics
    return pd.DataFrame.from_dict(results, orient="index").rename_axis("arch")


def _configs(profile: str, dataset_dir: Path, manifest: dict, manifest_sha256: str | None, label: str,
             n_augment: int, seed: int, max_train: int | None) -> dict:
    """The ``config.json`` of every baseline's run, as the file holds it (what the cache compares: a regenerated
    dataset is refitted)."""
    base = dict(profile=profile, dataset_dir=str(dataset_dir), manifest_sha256=manifest_sha256, label=label)
    learned = dict(n_augment=n_augment, seed=seed, val_noise_seed=FIXED_NOISE_SEED,
                   **({"noise_alpha": 0.0} if flux_is_observed(dataset_dir) else {}))  # survey spectra: noise in them
    if max_train is not None:
        learned["max_train"] = int(max_train)
    return files.as_json({
        "ridge": dict(arch="ridge", family=FAMILY["ridge"], **base, **learned, alphas=RIDGE_ALPHAS.tolist()),
        "lightgbm": dict(arch="lightgbm", family=FAMILY["lightgbm"], **base, **learned, **LIGHTGBM_PARAMS, n_estimators=LIGHTGBM_TREES[profile],
                         early_stopping=EARLY_STOPPING_ROUNDS),
        "template": dict(arch="template", family=FAMILY["template"], **base, grid=manifest.get("config", {}).get("grid", "embedded"),
                         bounds=label_bounds(dataset_dir), coarse_step=2, n_starts=5, radius=2,
                         test_noise_seed=FIXED_NOISE_SEED),
    })


def _run_learned(config: dict, train, val, x_test, n_jobs: int) -> tuple[dict, pd.DataFrame, dict]:
    """Fit Ridge or LightGBM on noisy train/val inputs and predict ``x_test``: (columns, history, extra metrics)."""
    label, t0 = config["label"], time.perf_counter()
    x_train, y_train = training_inputs(train.flux, train.error, train.labels(label), config["n_augment"],
                                       config["seed"], config.get("noise_alpha", 1.0))
    x_val = fixed_noisy(val.flux, val.error, config["val_noise_seed"], config.get("noise_alpha", 1.0))
    y_val = val.labels(label)
    if config["arch"] == "ridge":
        model, alpha, history = fit_ridge(x_train, y_train, x_val, y_val, config["alphas"])
        extra = dict(alpha=alpha)
    else:
        model, history = fit_lightgbm(x_train, y_train, x_val, y_val, n_estimators=config["n_estimators"],
                                      early_stopping=config["early_stopping"], num_threads=n_jobs)
        extra = dict(best_iteration=model.best_iteration)
    t1 = time.perf_counter()
    pred = model.predict(x_test)
    return ({"pred": pred}, history, dict(n_train=len(x_train), fit_seconds=t1 - t0,
                                          predict_seconds=time.perf_counter() - t1, **extra))


def _run_template(config: dict, grid: TemplateGrid, made_with: dict, test, x_test, n_jobs: int,
                  progress: bool) -> tuple[dict, None, dict]:
    """Template-fit the noisy test spectra: (columns, None, extra metrics incl. all three labels on the successes)."""
    if any(grid.meta[k] != v for k, v in made_with.items() if k in grid.meta):
        raise ValueError(f"the dataset was simulated with another template grid ({made_with}) than the one given "
                         f"({grid.meta}); regenerate the dataset or pass the grid it was made with")
    if grid.wave.shape != test.wave.shape or not np.allclose(grid.wave, test.wave):
        raise ValueError(f"the template grid's wavelengths ({grid.wave[0]:.2f}-{grid.wave[-1]:.2f} A, "
                         f"{grid.wave.size} px) differ from the dataset's; fit with the simulator's grid")
    t0 = time.perf_counter()
    fit = template_fit(x_test, test.error, grid, config["bounds"], coarse_step=config["coarse_step"],
                       n_starts=config["n_starts"], radius=config["radius"], workers=n_jobs, progress=progress)
    seconds, ok, label = time.perf_counter() - t0, fit["success"].to_numpy(), config["label"]
    columns = {"pred": fit[label].to_numpy(), **{f"pred_{a}": fit[a].to_numpy() for a in AXES if a != label},
               "chi2": fit["chi2"].to_numpy(), "success": ok}
    return columns, None, dict(
        n_train=0, fit_seconds=0.0, predict_seconds=seconds, n_attempted=len(fit), n_success=int(ok.sum()),
        success_fraction=float(ok.mean()),
        labels={a: regression_metrics(test.labels(a)[ok], fit[a].to_numpy()[ok]) for a in AXES})
