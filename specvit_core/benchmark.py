"""The architecture benchmark of the paper's section 5.1 (Tables 3-6, 9-12, 14, 15 and Figures 6-10).

Every experiment is a set of training runs of :func:`specvit_core.train.train` kept in run folders: the main
comparison in ``runs/<profile>/<arch>/`` (the folders of chapter 4 and ``specvit train``), the other experiments in
``runs/<profile>/benchmark/<run>/``. A finished run is reused and an interrupted one resumed, so running the
benchmark again only trains what is missing. :data:`PLANS` sizes the experiments for each profile.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from .baselines import BASELINES, run_baselines
from .config import data_dir, get_profile, runs_dir
from .data import FIXED_NOISE_SEED, fixed_noisy, read_split
from .metrics import bootstrap_ci, metrics_by_stellar_type, paired_bootstrap, regression_metrics
from .models import build_model, list_models
from .simulate import ensure_dataset
from .train import FAMILY_DEFAULTS, TrainConfig, load_checkpoint, resolve_device, train

BASELINE_FAMILY = {"lightgbm": "GBDT", "ridge": "linear", "template": "physics"}
FAMILY_ORDER = ("hybrid", "recurrent", "transformer", "cnn", "GBDT", "linear", "physics")
HIGH_SNR_MAGS = (18.75, 19.25)  # section 5.1.5: the "mag 19" dataset (SNR ~ 21)


@dataclass(frozen=True)
class BenchmarkPlan:
    """How large each experiment of the benchmark is at one profile.

    Every run trains with the profile's epochs, batch size and model size unless a field says otherwise.
    """

    main_archs: tuple[str, ...] | None  # Table 3: the networks to train (None: all nine); others found are reused
    scaling_fractions: tuple[float, ...]  # Figure 9: fractions of the training set (1.0 reuses the main runs)
    scaling_archs: tuple[str, ...]
    seeds: tuple[int, ...]  # Table 11: seeds of the best network (42 is its main run)
    stability_seeds: tuple[int, ...]  # Table 15: seeds of the Conv1D and sliding-window SpecViT
    ablation_max_train: int | None  # Tables 11, 12, 14, 15 train on the first N spectra (None: all)
    ablation_epochs: int | None  # ... for this many epochs (None: the profile's)
    patch_sizes: tuple[int, ...]  # Table 14
    high_snr_sizes: tuple[int, int, int]  # Table 4: train, val and test spectra of the mag-19 dataset
    finetune_epochs: int
    finetune_archs: tuple[str, ...] = ("convstem_lstm", "bilstm")
    n_boot: int = 1000


PLANS = {
    "smoke": BenchmarkPlan(main_archs=None, scaling_fractions=(0.5, 1.0), scaling_archs=("specvit",),
                           seeds=(42, 43), stability_seeds=(42, 43), ablation_max_train=None, ablation_epochs=None,
                           patch_sizes=(16, 32),
                           high_snr_sizes=(256, 64, 128), finetune_epochs=1, n_boot=200),
    "quick": BenchmarkPlan(main_archs=("convstem_lstm", "bilstm", "specvit", "resnet18_1d"),
                           scaling_fractions=(0.25, 0.5, 1.0), scaling_archs=("resnet18_1d",),
                           seeds=(42, 43), stability_seeds=(42, 43, 44), ablation_max_train=1000, ablation_epochs=3,
                           patch_sizes=(16, 32, 64), high_snr_sizes=(2000, 500, 1000), finetune_epochs=3),
    "cpu": BenchmarkPlan(main_archs=None, scaling_fractions=(0.1, 0.25, 0.5, 1.0),
                         scaling_archs=("specvit", "bilstm", "convstem_lstm"), seeds=(42, 43),
                         stability_seeds=(42, 43, 44), ablation_max_train=None, ablation_epochs=None,
                         patch_sizes=(16, 32, 64),
                         high_snr_sizes=(20_000, 1000, 1000), finetune_epochs=10),
    "paper": BenchmarkPlan(main_archs=None, scaling_fractions=(0.25, 0.5, 1.0),
                           scaling_archs=("specvit", "bilstm", "convstem_lstm", "lstmformer"), seeds=(42, 43),
                           stability_seeds=(42, 43, 44, 45, 46), ablation_max_train=50_000, ablation_epochs=None,
                           patch_sizes=(16, 32, 64), high_snr_sizes=(200_000, 1000, 1000), finetune_epochs=30),
}


def get_plan(profile: str) -> BenchmarkPlan:
    """The benchmark plan of a profile (an unknown profile lists the valid ones)."""
    return PLANS[get_profile(profile).name]


# ------------------------------------------------------------------------------------------------ runs

def run_folder(profile: str, name: str, config: TrainConfig) -> Path:
    """``runs/<profile>/<arch>/`` for an architecture's main run (its Table 1 configuration at the profile's
    settings, the run chapter 4 makes), ``runs/<profile>/benchmark/<name>/`` for every other configuration."""
    main = config == TrainConfig(arch=config.arch, profile=profile)
    return runs_dir(profile) / config.arch if main else benchmark_dir(profile) / name


def train_runs(configs: dict[str, TrainConfig], dataset_dir, profile: str, progress: bool = True,
               share_main: bool = True) -> pd.DataFrame:
    """Train (or reuse) one run per entry and return their test metrics, one row per name, with ``run_dir``.

    Runs go to :func:`run_folder`; with ``share_main=False`` (another dataset than the profile's) always to
    ``runs/<profile>/benchmark/<name>/``. A run that stops on a non-finite loss is kept as a row with
    ``status="diverged"`` and the error message, so that an unstable configuration shows up in the tables
    instead of ending the experiment.
    """
    rows = {}
    for name, config in tqdm(configs.items(), desc="training runs", disable=not progress or len(configs) < 2):
        run_dir = run_folder(profile, name, config) if share_main else benchmark_dir(profile) / name
        try:
            rows[name] = dict(train(config, dataset_dir, run_dir), status="finished", run_dir=run_dir)
        except RuntimeError as err:
            if "Non-finite training loss" not in str(err):
                raise
            rows[name] = dict(arch=config.arch, status="diverged", error=str(err), run_dir=run_dir)
    return pd.DataFrame.from_dict(rows, orient="index")


def _ablation(profile: str, plan: BenchmarkPlan, arch: str, **changes) -> TrainConfig:
    """A run of the smaller experiments: the plan's ablation training set and epochs."""
    return TrainConfig(arch=arch, profile=profile, max_train=plan.ablation_max_train, epochs=plan.ablation_epochs,
                       **changes)


def main_runs(profile: str, archs=None, dataset_dir=None, progress: bool = True) -> pd.DataFrame:
    """Section 5.1.1: every architecture with its Table 1 configuration on the profile's dataset.

    The runs are the folders ``runs/<profile>/<arch>/`` that chapter 4 and ``specvit train`` use.
    """
    archs = list(archs or list_models())
    dataset_dir = dataset_dir or ensure_dataset(profile, progress=progress)
    return train_runs({a: TrainConfig(arch=a, profile=profile) for a in archs}, dataset_dir, profile, progress)


def benchmark_dir(profile: str) -> Path:
    """Folder of the runs of the benchmark's other experiments (``runs/<profile>/benchmark``)."""
    return runs_dir(profile) / "benchmark"


def load_predictions(run_dir) -> pd.DataFrame:
    """The test predictions of a network or baseline run (``true``, ``pred`` and the spectra's parameters).

    Failed template fits (``success`` False) are dropped, as the paper scores the successful fits.
    """
    path = Path(run_dir) / "test_predictions.csv"
    if not path.is_file():
        raise FileNotFoundError(f"No test predictions in {str(run_dir)!r}; train or fit that run first")
    pred = pd.read_csv(path)
    return pred[pred["success"].astype(bool)].reset_index(drop=True) if "success" in pred else pred


def run_family(run_dir) -> tuple[str, int | None]:
    """(family, trainable parameters) of a run folder: the network's family, or the baseline's kind."""
    config = json.loads((Path(run_dir) / "config.json").read_text())
    if config["arch"] in BASELINE_FAMILY:
        return BASELINE_FAMILY[config["arch"]], None
    return config["model_config"]["family"], config["n_params"]


# ------------------------------------------------------------------------------------------------ tables

def comparison_table(run_dirs: dict[str, Path], n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Table 3: R^2, MAE and sigma_robust with bootstrap 95% intervals, grouped by family, best first in each.

    Parameters
    ----------
    run_dirs : dict
        Model name -> run folder holding ``config.json`` and ``test_predictions.csv``.
    n_boot, seed
        Bootstrap resamples and seed (appendix I).
    """
    rows = []
    for name, run_dir in run_dirs.items():
        pred = load_predictions(run_dir)
        family, params = run_family(run_dir)
        row = dict(model=name, family=family, params=params, n=len(pred))
        for metric in ("r2", "mae", "sigma_robust"):
            ci = bootstrap_ci(pred.true, pred.pred, metric, n_boot=n_boot, seed=seed)
            row.update({metric: ci["value"], f"{metric}_low": ci["low"], f"{metric}_high": ci["high"]})
        rows.append(row)
    table = pd.DataFrame(rows)
    table["family"] = pd.Categorical(table.family, [f for f in FAMILY_ORDER if f in set(table.family)], ordered=True)
    return table.sort_values(["family", "r2"], ascending=[True, False]).set_index("model")


def stellar_type_mae(run_dirs: dict[str, Path]) -> pd.DataFrame:
    """Table 5: MAE (dex) of each model for giants, subgiants, dwarfs and overall (rows) on the test split."""
    columns = {}
    for name, run_dir in run_dirs.items():
        pred = load_predictions(run_dir)
        columns[name] = metrics_by_stellar_type(pred.true.to_numpy(), pred.pred.to_numpy())["mae"]
    return pd.DataFrame(columns)


def significance(run_dirs: dict[str, Path], best: str, reference: str = "lightgbm", n_boot: int = 1000,
                 seed: int = 0) -> dict:
    """Tables 9 and 18: the best model's metrics with the bootstrap CI and SE of its R^2, and the paired bootstrap
    of its R^2 against ``reference`` (difference, 95% interval, one-sided p-value) on the test spectra both scored.

    Raises
    ------
    ValueError
        The two runs predicted different test sets.
    """
    a, b = (pd.read_csv(Path(run_dirs[n]) / "test_predictions.csv") for n in (best, reference))
    if len(a) != len(b) or not np.array_equal(a.true.to_numpy(), b.true.to_numpy()):
        raise ValueError(f"{best!r} and {reference!r} were scored on different test spectra; cannot pair them")
    ok = np.ones(len(a), bool)
    for p in (a, b):
        ok &= p["success"].astype(bool).to_numpy() if "success" in p else True
    a, b = a[ok], b[ok]
    ci = bootstrap_ci(a.true, a.pred, "r2", n_boot=n_boot, seed=seed)
    diff = paired_bootstrap(a.true, a.pred, b.pred, "r2", n_boot=n_boot, seed=seed)
    best_epoch = json.loads((Path(run_dirs[best]) / "metrics.json").read_text()).get("best_epoch")
    return dict(model=best, reference=reference, **regression_metrics(a.true, a.pred), r2_low=ci["low"],
                r2_high=ci["high"], r2_se=ci["se"], best_epoch=best_epoch, delta_r2=diff["value"],
                delta_r2_low=diff["low"], delta_r2_high=diff["high"], p_value=diff["p_value"], n_boot=n_boot)


@torch.no_grad()
def inference_seconds(run_dir, flux: np.ndarray, batch_size: int = 256, device: str = "auto") -> float:
    """Wall time (s) for the best checkpoint of a run to predict ``flux`` (N, L), after one warm-up batch."""
    ckpt = load_checkpoint(Path(run_dir) / "best.pt")
    dev = resolve_device(device)
    model = build_model(**{k: v for k, v in ckpt["model_config"].items() if k != "family"})
    model.load_state_dict(ckpt["model"])
    model.to(dev).eval()
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


def inference_cost(run_dirs: dict[str, Path], dataset_dir, batch_size: int = 256, device: str = "auto") -> pd.DataFrame:
    """Table 6: time and throughput to predict the test split, measured now for the networks; the baselines'
    prediction times are those their runs measured when fitted (same machine when run by the same book build)."""
    test = read_split(dataset_dir, "test")
    flux = fixed_noisy(test.flux, test.error, FIXED_NOISE_SEED)
    dev = resolve_device(device)
    rows = []
    for name, run_dir in run_dirs.items():
        family, params = run_family(run_dir)
        if family in ("GBDT", "linear", "physics"):
            m = json.loads((Path(run_dir) / "metrics.json").read_text())
            seconds, where = m["predict_seconds"], f"CPU ({m['n_jobs']} threads), when fitted"
        else:
            seconds, where = inference_seconds(run_dir, flux, batch_size, device), f"{dev.type} batch {batch_size}"
        rows.append(dict(model=name, family=family, params=params, seconds=seconds, throughput=len(flux) / seconds,
                         measured=where))
    return pd.DataFrame(rows).set_index("model")


# ------------------------------------------------------------------------------------------------ experiments

def scaling_runs(profile: str, plan: BenchmarkPlan | None = None, dataset_dir=None, progress: bool = True
                 ) -> pd.DataFrame:
    """Figure 9 / Table 10: test R^2 against training-set size for the plan's networks, LightGBM and Ridge.

    Smaller sets are the first ``fraction x n_train`` training spectra; the full size reuses the main runs.
    Returns one row per (model, n_train) with the test metrics.
    """
    plan = plan or get_plan(profile)
    dataset_dir = dataset_dir or ensure_dataset(profile, progress=progress)
    n_full = get_profile(profile).n_train
    rows = []
    for fraction in plan.scaling_fractions:
        n = int(round(fraction * n_full))
        full = n >= n_full
        configs = {(a if full else f"{a}_n{n}"): TrainConfig(arch=a, profile=profile, max_train=None if full else n)
                   for a in plan.scaling_archs}
        nets = train_runs(configs, dataset_dir, profile, progress)
        rows += [{**nets.loc[k].to_dict(), "model": c.arch, "n_train": n} for k, c in configs.items()]
        base_root = runs_dir(profile) if full else benchmark_dir(profile) / f"baselines_n{n}"
        base = run_baselines(profile, ("lightgbm", "ridge"), dataset_dir=dataset_dir, runs_root=base_root,
                             max_train=None if full else n, progress=progress)
        rows += [{**base.loc[name].to_dict(), "model": name, "n_train": n} for name in base.index]
    return pd.DataFrame(rows)


def seed_runs(profile: str, arch: str, plan: BenchmarkPlan | None = None, dataset_dir=None,
              progress: bool = True) -> pd.DataFrame:
    """Table 11: one architecture trained with each of the plan's seeds (on the ablation set and epochs)."""
    plan = plan or get_plan(profile)
    dataset_dir = dataset_dir or ensure_dataset(profile, progress=progress)
    configs = {f"{arch}_seed{s}": _ablation(profile, plan, arch, seed=s) for s in plan.seeds}
    return train_runs(configs, dataset_dir, profile, progress).assign(seed=list(plan.seeds)).set_index("seed")


def cross_configuration_runs(profile: str, plan: BenchmarkPlan | None = None, dataset_dir=None,
                             progress: bool = True) -> pd.DataFrame:
    """Table 12 / Figure 8: SpecViT and the BiLSTM each trained with its own Table 1 configuration (loss, lr,
    weight decay) and with the other's, on the plan's ablation training set."""
    plan = plan or get_plan(profile)
    dataset_dir = dataset_dir or ensure_dataset(profile, progress=progress)
    native = {"specvit": "transformer", "bilstm": "recurrent"}
    configs, labels = {}, {}
    for arch, own in native.items():
        for family in native.values():
            name = f"{arch}_{family}-config"
            configs[name] = _ablation(profile, plan, arch, **FAMILY_DEFAULTS[family])
            labels[name] = dict(architecture=arch, configuration="native" if family == own else f"{family} config",
                                **FAMILY_DEFAULTS[family])
    metrics = train_runs(configs, dataset_dir, profile, progress)
    return pd.concat([pd.DataFrame.from_dict(labels, orient="index"), metrics.drop(columns="arch")], axis=1)


def patch_size_runs(profile: str, plan: BenchmarkPlan | None = None, dataset_dir=None,
                    progress: bool = True) -> pd.DataFrame:
    """Table 14: SpecViT (Conv1D tokenizer, non-overlapping patches) with each of the plan's patch sizes."""
    plan = plan or get_plan(profile)
    dataset_dir = dataset_dir or ensure_dataset(profile, progress=progress)
    configs = {f"specvit_patch{p}": _ablation(profile, plan, "specvit", overrides=dict(patch_size=p))
               for p in plan.patch_sizes}
    metrics = train_runs(configs, dataset_dir, profile, progress)
    return metrics.assign(patch_size=list(plan.patch_sizes), best_val_r2=metrics.run_dir.map(_best_val_r2)
                          ).set_index("patch_size")


def tokenizer_stability(profile: str, plan: BenchmarkPlan | None = None, dataset_dir=None, min_val_r2: float = 0.05,
                        progress: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Table 15: Conv1D against sliding-window (unfold + Linear) tokenization of SpecViT over the plan's seeds.

    A run counts as finished when its loss stayed finite and its best validation R^2 exceeds ``min_val_r2``
    (the paper's failed SW runs collapsed to a constant prediction, R^2 ~ 0). Returns (per-run rows, summary).
    """
    plan = plan or get_plan(profile)
    dataset_dir = dataset_dir or ensure_dataset(profile, progress=progress)
    configs = {f"{arch}_seed{s}": _ablation(profile, plan, arch, seed=s)
               for arch in ("specvit", "specvit_sw") for s in plan.stability_seeds}
    runs = train_runs(configs, dataset_dir, profile, progress)
    runs["tokenizer"] = ["Conv1D" if c.arch == "specvit" else "sliding window" for c in configs.values()]
    runs["seed"] = [c.seed for c in configs.values()]
    runs["best_val_r2"] = runs.run_dir.map(_best_val_r2)
    runs["finished"] = (runs.status == "finished") & (runs.best_val_r2 > min_val_r2)
    summary = runs.groupby("tokenizer", sort=False).agg(
        runs=("finished", "size"), finished=("finished", "sum"), best_val_r2=("best_val_r2", "max"),
        test_r2_mean=("r2", "mean"), test_r2_std=("r2", "std"))
    summary["success_rate"] = summary.finished / summary.runs
    return runs, summary


def _best_val_r2(run_dir: Path) -> float:
    history = Path(run_dir) / "history.csv"
    return float(pd.read_csv(history).val_r2.max()) if history.is_file() else float("nan")


def high_snr_dataset(profile: str, plan: BenchmarkPlan | None = None, progress: bool = True) -> Path:
    """The "mag 19" dataset of section 5.1.5 (i = 18.75-19.25, the plan's sizes, its own seed), made once."""
    plan = plan or get_plan(profile)
    n_train, n_val, n_test = plan.high_snr_sizes
    base = data_dir(profile)
    return ensure_dataset(profile, out_dir=base.with_name(f"{base.name}_mag19"), mag_range=HIGH_SNR_MAGS,
                          n_train=n_train, n_val=n_val, n_test=n_test, n_shards=1, seed=2026, progress=progress)


def high_snr_runs(profile: str, plan: BenchmarkPlan | None = None, dataset_dir=None, high_snr_dir=None,
                  progress: bool = True) -> pd.DataFrame:
    """Table 4 (section 5.1.5): the plan's networks fine-tuned from their main (i = 20.5-22.5) runs on the mag-19
    dataset, next to the same networks trained on it from scratch for as many epochs.

    ``dataset_dir`` is the main runs' dataset, ``high_snr_dir`` the one to fine-tune on (default:
    :func:`high_snr_dataset`).
    """
    plan = plan or get_plan(profile)
    high_snr_dir = high_snr_dir or high_snr_dataset(profile, plan, progress)
    main = main_runs(profile, plan.finetune_archs, dataset_dir, progress)
    configs, labels = {}, {}
    for arch in plan.finetune_archs:
        start = str(runs_dir(profile) / arch / "best.pt")
        for how, init in (("fine-tuned", start), ("from scratch", None)):
            name = f"{arch}_mag19_{how.replace(' ', '-')}"
            configs[name] = TrainConfig(arch=arch, profile=profile, epochs=plan.finetune_epochs, init_from=init)
            labels[name] = dict(model=arch, training=how, pretrained_r2=main.loc[arch, "r2"])
    metrics = train_runs(configs, high_snr_dir, profile, progress, share_main=False)
    return pd.concat([pd.DataFrame.from_dict(labels, orient="index"), metrics.drop(columns="arch")], axis=1)


# ------------------------------------------------------------------------------------------------ attention

@torch.no_grad()
def cls_attention(run_dir, flux: np.ndarray, wave: np.ndarray) -> pd.DataFrame:
    """Figure 10: CLS-to-patch attention of a transformer or hybrid run, averaged over layers, heads and spectra.

    Parameters
    ----------
    run_dir : str or Path
        A run whose network has ``attention_maps`` (every transformer and hybrid).
    flux : ndarray, shape (N, L)
        Spectra (noisy, median-normalized) to average over.
    wave : ndarray, shape (L,)

    Returns
    -------
    pandas.DataFrame
        One row per token: ``wave_start``, ``wave_end``, ``wave_center`` of the pixels the token's tokenizer
        kernel covers, and ``attention`` normalized to a maximum of 1.

    Raises
    ------
    ValueError
        The run's network has no attention (the BiLSTM and the CNNs).
    """
    ckpt = load_checkpoint(Path(run_dir) / "best.pt")
    config = ckpt["model_config"]
    model = build_model(**{k: v for k, v in config.items() if k != "family"})
    if not hasattr(model, "attention_maps"):
        raise ValueError(f"{config['name']!r} has no attention layers; choose a transformer or hybrid run")
    model.load_state_dict(ckpt["model"])
    model.eval()
    maps = model.attention_maps(torch.from_numpy(np.ascontiguousarray(flux, dtype=np.float32)))
    weights = torch.stack([m[:, :, 0, 1:] for m in maps]).mean(dim=(0, 1, 2)).numpy()  # (N_tokens,)
    patch = 16 if config.get("tokenizer") == "convstem" else config["patch_size"]
    stride = 16 if config.get("tokenizer") == "convstem" else (config.get("stride") or patch)
    start = np.arange(len(weights)) * stride
    end = np.minimum(start + patch, len(wave)) - 1
    return pd.DataFrame(dict(wave_start=wave[start], wave_end=wave[end], wave_center=0.5 * (wave[start] + wave[end]),
                             attention=weights / weights.max()))


def collect_run_dirs(profile: str, names=None) -> dict[str, Path]:
    """Run folders of the main comparison that hold test predictions: networks first, then the baselines."""
    names = names or [*list_models(), *BASELINES]
    root = runs_dir(profile)
    return {n: root / n for n in names if (root / n / "test_predictions.csv").is_file()}



def logg_information_by_token(grid, attention: pd.DataFrame, mag: float = 21.5, stride: int = 2) -> np.ndarray:
    """Where the spectra carry log g information, on the tokens of :func:`cls_attention` (for Figure 10).

    The per-pixel Fisher information (dx/dlog g)^2 / sigma^2 of the median-normalized templates (chapter 6),
    averaged over every ``stride``-th node of the ceiling grid at magnitude ``mag``, summed over each token's
    pixels and normalized to a maximum of 1.
    """
    from .fisher import LOGG, ceiling_axes, normalized_jacobian, normalized_sigma

    axes = ceiling_axes(grid, stride=stride)
    _, _, jac = normalized_jacobian(grid, axes)
    sigma, _ = normalized_sigma(grid, axes, mag)
    per_pixel = np.mean(jac[:, :, LOGG] ** 2 / sigma ** 2, axis=0)
    lo = np.searchsorted(grid.wave, attention.wave_start.to_numpy())
    hi = np.searchsorted(grid.wave, attention.wave_end.to_numpy(), side="right")
    info = np.array([per_pixel[a:b].sum() for a, b in zip(lo, hi)])
    return info / info.max()


def run_summary(run_dirs: dict[str, Path]) -> pd.DataFrame:
    """One row per run folder: family, parameters, training spectra, epochs run, best epoch and training seconds."""
    rows = {}
    for name, run_dir in run_dirs.items():
        config = json.loads((Path(run_dir) / "config.json").read_text())
        metrics = json.loads((Path(run_dir) / "metrics.json").read_text())
        family, params = run_family(run_dir)
        history = Path(run_dir) / "history.csv"
        network = family not in BASELINE_FAMILY.values()
        epochs = len(pd.read_csv(history)) if network and history.is_file() else None
        seconds = pd.read_csv(history).time.sum() if network and history.is_file() else metrics["fit_seconds"]
        rows[name] = dict(family=family, params=params, n_train=config.get("n_train", metrics.get("n_train")),
                          epochs_run=epochs, best_epoch=metrics.get("best_epoch"), train_seconds=seconds,
                          run_folder=Path(run_dir).parent.name + "/" + Path(run_dir).name)
    table = pd.DataFrame.from_dict(rows, orient="index")
    counts = ["params", "n_train", "epochs_run", "best_epoch"]
    return table.astype({c: "Int64" for c in counts}).round({"train_seconds": 1})
