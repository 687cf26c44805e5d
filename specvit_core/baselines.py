"""The classical baselines of the paper (section 5.1, Tables 3 and 6, appendix H): LightGBM, Ridge, template fitting.

LightGBM and Ridge see the inputs the networks see: training spectra with noise realization ``k`` of row ``i``
identical to the one ``NoisySpectra(noise="fresh", seed)`` serves in epoch ``k`` (one realization by default),
validation and test spectra with the fixed noise of seed 42 (:func:`specvit_core.data.fixed_noisy`).

Template fitting (appendix H) works on the noisy test flux as stored (median-normalized, with its sigma): the
chi-square of eq. H.1 against the simulator's own template grid, with the analytic flux scale A* of eq. H.2 (which
absorbs the median normalization) and inverse-variance weights; a coarse search over every second grid node inside
the label ranges, then Nelder-Mead on cubic-spline-interpolated templates around the coarse optimum.

``run_baselines(profile)`` fits and evaluates all three and writes ``runs/<profile>/<name>/`` with ``config.json``,
``history.csv`` (validation curve), ``test_predictions.csv`` and ``metrics.json``, the files
:func:`specvit_core.train.evaluate` writes for the networks.
"""
from __future__ import annotations

import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import lightgbm
import numpy as np
import pandas as pd
from scipy.interpolate import CubicSpline
from scipy.optimize import minimize
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from .config import data_dir, get_profile, runs_dir
from .data import FIXED_NOISE_SEED, fixed_noisy, lock_test_split, noisy_spectrum, read_split
from .metrics import mae, r2, regression_metrics
from .spectra.grid import AXES, TemplateGrid, load_grid

BASELINES = ("ridge", "lightgbm", "template")
# Section 5.1: up to 2500 trees, lr 0.05, 63 leaves, feature and bagging fractions 0.8.
LIGHTGBM_PARAMS = dict(learning_rate=0.05, num_leaves=63, feature_fraction=0.8, bagging_fraction=0.8, bagging_freq=1)
LIGHTGBM_TREES = {"smoke": 100, "quick": 300, "cpu": 2500, "paper": 2500}  # cap on the trees, per profile
EARLY_STOPPING_ROUNDS = 50
RIDGE_ALPHAS = 10.0 ** np.arange(0, 8)  # Table 3 used alpha = 1e5


def _check_xy(**arrays) -> list[np.ndarray]:
    """Finite, non-empty arrays of one common length (first axis), named in the errors by their keywords."""
    out = []
    for name, a in arrays.items():
        a = np.asarray(a)
        if a.shape[:1] == (0,) or a.size == 0:
            raise ValueError(f"{name} is empty; it needs at least one row")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{name} contains {np.count_nonzero(~np.isfinite(a))} NaN/inf values; all must be finite")
        if out and len(a) != len(out[0]):
            raise ValueError(f"{name} must have as many rows as {next(iter(arrays))}; got {len(a)} and {len(out[0])}")
        out.append(a)
    return out


def training_inputs(flux, error, labels, n_augment: int = 1, seed: int = 42) -> tuple[np.ndarray, np.ndarray]:
    """Noisy training inputs: ``n_augment`` realizations per spectrum, realization ``k`` = the networks' epoch ``k``.

    Parameters
    ----------
    flux, error : ndarray, shape (N, L)
        Clean normalized flux and sigma of the training split.
    labels : ndarray, shape (N,)
    n_augment : int
        Noise realizations per spectrum (>= 1); the rows are stacked realization by realization.
    seed : int
        Training seed (``TrainConfig.seed``, 42 by default).

    Returns
    -------
    x : ndarray, float32, shape (n_augment * N, L)
    y : ndarray, shape (n_augment * N,)

    Raises
    ------
    ValueError
        ``n_augment < 1``, or inputs empty, non-finite or of different lengths.
    """
    if n_augment < 1:
        raise ValueError(f"n_augment must be a positive integer; got {n_augment!r}")
    flux, error, labels = _check_xy(flux=flux, error=error, labels=labels)
    x = np.concatenate([np.stack([noisy_spectrum(f, e, np.random.default_rng((seed, k, i)))
                                  for i, (f, e) in enumerate(zip(flux, error))]) for k in range(n_augment)])
    return x, np.tile(labels, n_augment)


def fit_lightgbm(x_train, y_train, x_val, y_val, n_estimators: int = 2500,
                 early_stopping: int = EARLY_STOPPING_ROUNDS, **params) -> tuple[lightgbm.Booster, pd.DataFrame]:
    """Gradient-boosted trees on the flux pixels, stopped early on the validation L2 loss.

    Parameters
    ----------
    x_train, y_train, x_val, y_val : array_like, shapes (N, L), (N,), (M, L), (M,)
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
    x_train, y_train = _check_xy(x_train=x_train, y_train=y_train)
    x_val, y_val = _check_xy(x_val=x_val, y_val=y_val)
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
    x_train, y_train = _check_xy(x_train=x_train, y_train=y_train)
    x_val, y_val = _check_xy(x_val=x_val, y_val=y_val)
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


# ---------------------------------------------------------------------------------------------- template fitting

def _check_bounds(bounds: dict | None, grid: TemplateGrid) -> dict:
    """Label ranges of the fit: ``bounds`` (name -> (lo, hi)) inside the grid; the grid's own bounds when None."""
    bounds = {**grid.bounds, **(bounds or {})}
    unknown = set(bounds) - set(AXES)
    if unknown:
        raise ValueError(f"bounds has unknown labels {sorted(unknown)}; valid labels are: {', '.join(AXES)}")
    for a in AXES:
        (lo, hi), (glo, ghi) = bounds[a], grid.bounds[a]
        if not (glo <= lo < hi <= ghi):
            raise ValueError(f"bounds[{a!r}], ({lo:g}, {hi:g}), must be an increasing pair inside the grid's range "
                             f"[{glo:g}, {ghi:g}]")
    return bounds


def coarse_nodes(grid: TemplateGrid, bounds: dict | None = None, step: int = 2) -> dict:
    """Indices of every ``step``-th grid node inside ``bounds``, per axis (the coarse search of appendix H.2).

    Raises
    ------
    ValueError
        Bad ``bounds`` (see :func:`template_fit`), ``step < 1``, or a label range holding no grid node.
    """
    if step < 1:
        raise ValueError(f"step must be a positive integer; got {step!r}")
    bounds = _check_bounds(bounds, grid)
    nodes = {}
    for a in AXES:
        lo, hi = bounds[a]
        inside = np.flatnonzero((grid.axes[a] >= lo - 1e-9) & (grid.axes[a] <= hi + 1e-9))
        if inside.size == 0:
            raise ValueError(f"bounds[{a!r}], ({lo:g}, {hi:g}), holds no node of the grid axis "
                             f"{grid.axes[a].tolist()}; the coarse search needs at least one")
        nodes[a] = inside[::step]
    return nodes


def chi2_scaled(flux, weights, templates) -> tuple[np.ndarray, np.ndarray]:
    """Chi-square of every spectrum against every template at the best flux scale (eqs. H.1, H.2).

    ``chi2 = sum w f^2 - (sum w f t)^2 / sum w t^2`` and ``A* = sum w f t / sum w t^2``: two matrix products.

    Parameters
    ----------
    flux, weights : ndarray, shape (N, L)
        Observed flux and inverse variances ``1 / sigma^2``.
    templates : ndarray, shape (K, L)

    Returns
    -------
    chi2, scale : ndarray, float64, shape (N, K)
    """
    flux, weights, templates = (np.asarray(a, dtype=np.float64) for a in (flux, weights, templates))
    wf = weights * flux
    ft = wf @ templates.T  # (N, K)
    tt = weights @ (templates ** 2).T  # (N, K)
    return np.sum(wf * flux, axis=1, keepdims=True) - ft ** 2 / tt, ft / tt


_GRID: dict = {}  # the grid in each worker process (set once by _init_worker)


def _init_worker(axes: dict, flux: np.ndarray) -> None:
    _GRID.update(axes=axes, flux=flux)


def _refine(f: np.ndarray, w: np.ndarray, start: tuple, bounds: dict, radius: int, max_iter: int) -> tuple:
    """Nelder-Mead from the grid node ``start`` (indices) on a cubic spline through the nodes within ``radius``.

    Returns (theta (3,), chi2, success, nfev).
    """
    axes, flux = _GRID["axes"], _GRID["flux"]
    win = [np.arange(max(0, s - radius), min(len(axes[a]), s + radius + 1)) for a, s in zip(AXES, start)]
    nodes = [axes[a][i] for a, i in zip(AXES, win)]
    templates = flux[np.ix_(*win)].reshape(-1, f.size).astype(np.float64)  # (K, L)
    splines = [CubicSpline(x, np.eye(len(x))) for x in nodes]
    step = np.array([axes[a][1] - axes[a][0] for a in AXES])  # the optimizer works in node units (BOSZ steps)
    wf, ff = w * f, np.sum(w * f * f)

    def chi2(u):
        t = np.ravel(np.einsum("i,j,k->ijk", *(s(v) for s, v in zip(splines, u * step)))) @ templates  # (L,)
        return ff - (wf @ t) ** 2 / (w @ t ** 2)

    lo = np.array([max(x[0], bounds[a][0]) for a, x in zip(AXES, nodes)]) / step
    hi = np.array([min(x[-1], bounds[a][1]) for a, x in zip(AXES, nodes)]) / step
    x0 = np.array([axes[a][s] for a, s in zip(AXES, start)]) / step
    simplex = [x0] + [x0 + np.eye(3)[i] * (1.0 if x0[i] + 1 <= hi[i] else -1.0) for i in range(3)]
    res = minimize(chi2, x0, method="Nelder-Mead", bounds=list(zip(lo, hi)),
                   options=dict(initial_simplex=np.clip(simplex, lo, hi), xatol=1e-3, fatol=1e-3, maxiter=max_iter))
    # pinned to a window edge that is not a label bound: the optimum lies outside the window, the fit failed
    inner_lo = lo > np.array([bounds[a][0] for a in AXES]) / step + 1e-9
    inner_hi = hi < np.array([bounds[a][1] for a in AXES]) / step - 1e-9
    pinned = np.any(inner_lo & (res.x <= lo + 1e-6)) or np.any(inner_hi & (res.x >= hi - 1e-6))
    return res.x * step, float(res.fun), bool(res.success and not pinned), int(res.nfev)


def _refine_chunk(args) -> list[tuple]:
    """The best (lowest chi-square) refinement over the starts of each spectrum."""
    flux, weights, starts, bounds, radius, max_iter = args
    with threadpool_limits(1):  # small products per step: threaded BLAS only adds overhead and oversubscribes
        return [min((_refine(f, w, s, bounds, radius, max_iter) for s in spectrum_starts), key=lambda r: r[1])
                for f, w, spectrum_starts in zip(flux, weights, starts)]


def template_fit(flux, error, grid: TemplateGrid, bounds: dict | None = None, *, coarse_step: int = 2,
                 n_starts: int = 5, radius: int = 2, max_iter: int = 600, workers: int | None = None, chunk: int = 64,
                 progress: bool = True) -> pd.DataFrame:
    """Fit T_eff, log g and [M/H] of each spectrum by chi-square minimization against a template grid (appendix H).

    Parameters
    ----------
    flux, error : array_like, shape (N, L)
        Observed (noisy) flux and its 1-sigma uncertainty on the grid's wavelengths; any per-spectrum scale
        (median normalization) is absorbed by the analytic scale A*.
    grid : TemplateGrid
        The templates (the simulator's grid for simulated data).
    bounds : dict, optional
        Label ranges ``{"T_eff": (lo, hi), ...}`` of the search (default: the grid's); estimates stay inside.
    coarse_step : int
        The coarse search uses every ``coarse_step``-th node inside ``bounds`` (2 in the paper).
    n_starts : int
        Nelder-Mead starts from the ``n_starts`` best coarse nodes; the lowest chi-square wins (one start can
        end in a local minimum of the T_eff-log g-[M/H] degeneracy).
    radius : int
        Each refinement's splines run through the nodes within ``radius`` of its start along each axis.
    max_iter : int
        Nelder-Mead iterations per spectrum.
    workers : int, optional
        Processes for the refinement (default: all cores; 1 runs in this process).
    chunk : int
        Spectra per task sent to a worker.
    progress : bool
        Show a progress bar.

    Returns
    -------
    pandas.DataFrame
        One row per spectrum: ``T_eff, log_g, M_H, chi2, success, nfev``. ``success``: Nelder-Mead converged and
        the estimate is not pinned to the edge of the refinement window (an optimum beyond the window).

    Raises
    ------
    ValueError
        ``flux``/``error`` empty, non-finite, of different shapes or not on the grid's wavelengths; ``error`` not
        positive; bad ``bounds`` or a label range without grid nodes; ``radius``, ``n_starts`` or ``coarse_step`` < 1.
    """
    flux, error = (np.atleast_2d(np.asarray(a, dtype=np.float64)) for a in (flux, error))
    flux, error = _check_xy(flux=flux, error=error)
    if flux.shape != error.shape or flux.shape[1] != grid.wave.size:
        raise ValueError(f"flux and error must both have shape (N, {grid.wave.size}) (the grid's wavelengths); "
                         f"got {flux.shape} and {error.shape}")
    if np.any(error <= 0):
        raise ValueError(f"error must be positive (it gives the weights 1 / error^2); found {np.sum(error <= 0)} "
                         f"values <= 0, min {error.min():g}")
    for name, value in (("radius", radius), ("n_starts", n_starts)):
        if value < 1:
            raise ValueError(f"{name} must be a positive integer; got {value!r}")
    bounds = _check_bounds(bounds, grid)
    weights = error ** -2.0
    idx = coarse_nodes(grid, bounds, coarse_step)
    templates = grid.flux[np.ix_(*idx.values())].reshape(-1, grid.wave.size)
    best = np.argsort(chi2_scaled(flux, weights, templates)[0], axis=1)[:, :n_starts]  # (N, n_starts)
    starts = np.stack([i[k] for i, k in zip(idx.values(), np.unravel_index(best, [len(i) for i in idx.values()]))],
                      -1)  # (N, n_starts, 3) node indices

    workers = workers or os.cpu_count() or 1
    tasks = [(flux[s:s + chunk], weights[s:s + chunk], starts[s:s + chunk], bounds, radius, max_iter)
             for s in range(0, len(flux), chunk)]
    init = (grid.axes, grid.flux)
    with tqdm(total=len(flux), desc="template fit", unit="spectra", disable=not progress) as bar:
        results = []
        if workers == 1:
            _init_worker(*init)
            runs = map(_refine_chunk, tasks)
        else:
            pool = ProcessPoolExecutor(max_workers=min(workers, len(tasks)), initializer=_init_worker, initargs=init)
            runs = pool.map(_refine_chunk, tasks)
        try:
            for part in runs:
                results += part
                bar.update(len(part))
        finally:
            if workers != 1:
                pool.shutdown()
    theta = np.array([r[0] for r in results])
    return pd.DataFrame({"T_eff": theta[:, 0], "log_g": theta[:, 1], "M_H": theta[:, 2],
                         "chi2": [r[1] for r in results], "success": [r[2] for r in results],
                         "nfev": [r[3] for r in results]})


# ------------------------------------------------------------------------------------------------ run and cache

def _write_run(run_dir: Path, config: dict, history: pd.DataFrame | None, predictions: pd.DataFrame,
               metrics: dict) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(config, indent=2))
    if history is not None:
        history.to_csv(run_dir / "history.csv", index=False)
    predictions.to_csv(run_dir / "test_predictions.csv", index=False)
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))


def _cached(run_dir: Path, config: dict) -> dict | None:
    """The metrics of a finished run made with the same configuration, else None."""
    files = [run_dir / n for n in ("config.json", "metrics.json", "test_predictions.csv")]
    if all(f.is_file() for f in files) and json.loads(files[0].read_text()) == config:
        return json.loads(files[1].read_text())
    return None


def label_bounds(dataset_dir) -> dict:
    """Label ranges ``{"T_eff": (lo, hi), ...}`` a simulated dataset was drawn from (its manifest); {} without one."""
    manifest = Path(dataset_dir) / "manifest.json"
    config = json.loads(manifest.read_text()).get("config", {}) if manifest.is_file() else {}
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

    Returns
    -------
    pandas.DataFrame
        One row per baseline (index ``arch``): the test metrics of ``metrics.json``.

    Raises
    ------
    ValueError
        An unknown baseline or profile; a template grid other than the dataset's (its manifest's ``grid_meta``)
        or with other wavelengths.
    """
    unknown = [b for b in baselines if b not in BASELINES]
    if unknown or not baselines:
        raise ValueError(f"baselines must be a non-empty subset of {', '.join(BASELINES)}; got {list(baselines)}")
    p = get_profile(profile)
    dataset_dir = Path(dataset_dir or data_dir(profile)).resolve()
    runs_root = Path(runs_root or runs_dir(profile))
    manifest_path = dataset_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    base = dict(profile=p.name, dataset_dir=str(dataset_dir), label=label)
    learned = dict(n_augment=n_augment, seed=seed, val_noise_seed=FIXED_NOISE_SEED)
    if max_train is not None:
        learned["max_train"] = int(max_train)
    configs = {
        "ridge": dict(arch="ridge", **base, **learned, alphas=RIDGE_ALPHAS.tolist()),
        "lightgbm": dict(arch="lightgbm", **base, **learned, **LIGHTGBM_PARAMS, n_estimators=LIGHTGBM_TREES[p.name],
                         early_stopping=EARLY_STOPPING_ROUNDS),
        "template": dict(arch="template", **base, grid=manifest.get("config", {}).get("grid", "embedded"),
                         bounds=label_bounds(dataset_dir), coarse_step=2, n_starts=5, radius=2,
                         test_noise_seed=FIXED_NOISE_SEED),
    }
    n_jobs = n_jobs or os.cpu_count() or 1
    results, test = {}, None
    for name in baselines:
        run_dir, config = runs_root / name, configs[name]
        results[name] = None if recompute else _cached(run_dir, config)
        if results[name] is not None:
            continue
        if test is None:
            test = read_split(dataset_dir, "test")
            x_test = fixed_noisy(test.flux, test.error)
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
        _write_run(run_dir, config, history, predictions, metrics)
        results[name] = metrics
    return pd.DataFrame.from_dict(results, orient="index").rename_axis("arch")


def _run_learned(config: dict, train, val, x_test, n_jobs: int) -> tuple[dict, pd.DataFrame, dict]:
    """Fit Ridge or LightGBM on noisy train/val inputs and predict ``x_test``: (columns, history, extra metrics)."""
    label, t0 = config["label"], time.perf_counter()
    x_train, y_train = training_inputs(train.flux, train.error, train.labels(label), config["n_augment"],
                                       config["seed"])
    x_val, y_val = fixed_noisy(val.flux, val.error, config["val_noise_seed"]), val.labels(label)
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
