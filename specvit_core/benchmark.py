"""The architecture benchmark of the paper's section 5.1 (Tables 3-6, 9-12, 14, 15 and Figures 6-10).

Every experiment is a set of training runs of :func:`specvit_core.train.train` kept in run folders: the main
comparison in ``runs/<profile>/<arch>/`` (the folders of chapter 4 and ``specvit train``), the other experiments in
``runs/<profile>/benchmark/<run>/``. A finished run is reused and an interrupted one resumed, so running the
benchmark again only trains what is missing. :data:`PLANS` sizes the experiments for each profile.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from .baselines import run_baselines
from .config import data_dir, get_profile, runs_dir
from .models import list_models
from .report import PLATEAU_R2
from .runs import benchmark_dir, best_val_r2
from .simulate import ensure_dataset
from .train import FAMILY_DEFAULTS, TrainConfig, TrainingDiverged, train

HIGH_SNR_MAGS = (18.75, 19.25)  # section 5.1.5: the "mag 19" dataset (SNR ~ 21)


@dataclass(frozen=True)
class BenchmarkPlan:
    """How large each experiment of the benchmark is at one profile.

    Every run trains with the profile's epochs, batch size and model size unless a field says otherwise.

    Parameters
    ----------
    main_archs : tuple of str or None
        Table 3: the networks to train (None: all nine); others found are reused.
    scaling_fractions : tuple of float
        Figure 9: fractions of the training set (1.0 reuses the main runs).
    scaling_archs : tuple of str
        Figure 9: the networks of the scaling experiment.
    seeds : tuple of int
        Table 11: seeds of the best network (42 is its main run).
    stability_seeds : tuple of int
        Table 15: seeds of the Conv1D and sliding-window SpecViT.
    ablation_max_train : int or None
        Tables 11, 12, 14, 15 train on the first N spectra (None: all).
    ablation_epochs : int or None
        ... for this many epochs (None: the profile's).
    patch_sizes : tuple of int
        Table 14: SpecViT patch sizes in pixels.
    high_snr_sizes : tuple of int
        Table 4: train, val and test spectra of the mag-19 dataset.
    finetune_epochs : int
        Table 4: epochs of fine-tuning and of training from scratch on the mag-19 dataset.
    finetune_archs : tuple of str
        Table 4: the networks fine-tuned.
    n_boot : int
        Bootstrap resamples of the tables' intervals.
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
    """The benchmark plan of a profile.

    Parameters
    ----------
    profile : str

    Returns
    -------
    BenchmarkPlan
        ``PLANS[profile]``.

    Raises
    ------
    ValueError
        For an unknown profile (the message lists the valid ones).
    """
    return PLANS[get_profile(profile).name]


# ------------------------------------------------------------------------------------------------ runs

def run_folder(profile: str, name: str, config: TrainConfig) -> Path:
    """The folder of a run: the architecture's main folder for its main configuration, else a benchmark folder.

    ``runs/<profile>/<arch>/`` for an architecture's main run (its Table 1 configuration at the profile's
    settings, the run chapter 4 makes), ``runs/<profile>/benchmark/<name>/`` for every other configuration.

    Parameters
    ----------
    profile : str
    name : str
        Run name, the folder name under ``benchmark/``.
    config : TrainConfig

    Returns
    -------
    Path

    Raises
    ------
    ValueError
        For an unknown profile.
    """
    main = config == TrainConfig(arch=config.arch, profile=profile)
    return runs_dir(profile) / config.arch if main else benchmark_dir(profile) / name


def swap_run_name(arch: str, family: str) -> str:
    """Table 12's run of ``arch`` trained with ``family``'s Table 1 configuration."""
    return f"{arch}_{family}-config"


def finetune_run_name(arch: str, how: str) -> str:
    """Table 4's mag-19 run of ``arch``; ``how`` is "fine-tuned" or "from scratch"."""
    return f"{arch}_mag19_{how.replace(' ', '-')}"


def scaling_run_name(name: str, n: int | str) -> str:
    """Figure 9's run of a network, or of a baseline (``lightgbm``, ``ridge``), on the first ``n`` training spectra,
    under :func:`specvit_core.runs.benchmark_dir` (``n`` may be a glob pattern such as ``"[0-9]*"``)."""
    return f"baselines_n{n}/{name}" if name in ("lightgbm", "ridge") else f"{name}_n{n}"


def train_runs(configs: dict[str, TrainConfig], dataset_dir, profile: str, progress: bool = True,
               share_main: bool = True, root=None) -> pd.DataFrame:
    """Train (or reuse) one run per entry and return their test metrics, one row per name, with ``run_dir``.

    Runs go to :func:`run_folder`; with ``share_main=False`` (another dataset than the profile's) always to
    ``runs/<profile>/benchmark/<name>/``. A run that stops on a non-finite loss is kept as a row with
    ``status="diverged"`` and the error message, so that an unstable configuration shows up in the tables
    instead of ending the experiment.

    Parameters
    ----------
    configs : dict of str to TrainConfig
        Run name -> configuration.
    dataset_dir : str or Path
        Dataset folder to train on.
    profile : str
        Profile name; sizes the data, models and training.
    progress : bool
        Show progress bars.
    share_main : bool
        Let the main configurations use (and reuse) the main run folders.
    root : str or Path, optional
        Put every run in ``<root>/<name>/`` instead (e.g. the transfer experiments' folder).

    Returns
    -------
    pandas.DataFrame
        Index the run names; the test metrics of :func:`specvit_core.train.train`, ``status`` ("finished" or
        "diverged"), ``error`` and ``run_dir``.

    Raises
    ------
    ValueError
        An unknown profile or architecture, bad configuration values, or a run folder holding a checkpoint of another
        configuration.
    """
    rows = {}
    for name, config in tqdm(configs.items(), desc="training runs", disable=not progress or len(configs) < 2):
        run_dir = Path(root) / name if root is not None else (
            run_folder(profile, name, config) if share_main else benchmark_dir(profile) / name)
        try:
            rows[name] = dict(train(config, dataset_dir, run_dir), status="finished", run_dir=run_dir)
        except TrainingDiverged as err:
            rows[name] = dict(arch=config.arch, status="diverged", error=str(err), run_dir=run_dir)
    return pd.DataFrame.from_dict(rows, orient="index")


def _ablation(profile: str, plan: BenchmarkPlan, arch: str, **changes) -> TrainConfig:
    """A run of the smaller experiments: the plan's ablation training set and epochs."""
    return TrainConfig(arch=arch, profile=profile, max_train=plan.ablation_max_train, epochs=plan.ablation_epochs,
                       **changes)


def main_runs(profile: str, archs=None, dataset_dir=None, progress: bool = True) -> pd.DataFrame:
    """Section 5.1.1: every architecture with its Table 1 configuration on the profile's dataset.

    The runs are the folders ``runs/<profile>/<arch>/`` that chapter 4 and ``specvit train`` use.

    Parameters
    ----------
    profile : str
        Profile name; sizes the data, models and training.
    archs : sequence of str, optional
        Architectures to train (default: all registered ones).
    dataset_dir : str or Path, optional
        Default: the profile's dataset, simulated when missing (:func:`specvit_core.simulate.ensure_dataset`).
    progress : bool
        Show progress bars.

    Returns
    -------
    pandas.DataFrame
        Index the architectures; as :func:`train_runs`.

    Raises
    ------
    ValueError
        An unknown profile or architecture, or a run folder holding a checkpoint of another configuration.
    FileExistsError
        The dataset folder holds a dataset made with another configuration.
    """
    archs = list(archs or list_models())
    dataset_dir = dataset_dir or ensure_dataset(profile, progress=progress)
    return train_runs({a: TrainConfig(arch=a, profile=profile) for a in archs}, dataset_dir, profile, progress)


def scaling_runs(profile: str, plan: BenchmarkPlan | None = None, dataset_dir=None, progress: bool = True
                 ) -> pd.DataFrame:
    """Figure 9 / Table 10: test R^2 against training-set size for the plan's networks, LightGBM and Ridge.

    Smaller sets are the first ``fraction x n_train`` training spectra; the full size reuses the main runs.

    Parameters
    ----------
    profile : str
        Profile name; sizes the data, models and training.
    plan : BenchmarkPlan, optional
        Default: :func:`get_plan` of ``profile``.
    dataset_dir : str or Path, optional
        Default: the profile's dataset, simulated when missing (:func:`specvit_core.simulate.ensure_dataset`).
    progress : bool
        Show progress bars.

    Returns
    -------
    pandas.DataFrame
        One row per (model, n_train): ``model``, ``n_train`` and the test metrics (networks also ``status`` and
        ``run_dir``).

    Raises
    ------
    ValueError
        An unknown profile or architecture, or a run folder holding a checkpoint of another configuration.
    FileExistsError
        The dataset folder holds a dataset made with another configuration.
    """
    plan = plan or get_plan(profile)
    dataset_dir = dataset_dir or ensure_dataset(profile, progress=progress)
    n_full = get_profile(profile).n_train
    rows = []
    for fraction in plan.scaling_fractions:
        n = int(round(fraction * n_full))
        full = n >= n_full
        configs = {(a if full else scaling_run_name(a, n)): TrainConfig(arch=a, profile=profile, max_train=None if full else n)
                   for a in plan.scaling_archs}
        nets = train_runs(configs, dataset_dir, profile, progress)
        rows += [{**nets.loc[k].to_dict(), "model": c.arch, "n_train": n} for k, c in configs.items()]
        base_root = runs_dir(profile) if full else (benchmark_dir(profile) / scaling_run_name("lightgbm", n)).parent
        base = run_baselines(profile, ("lightgbm", "ridge"), dataset_dir=dataset_dir, runs_root=base_root,
                             max_train=None if full else n, progress=progress)
        rows += [{**base.loc[name].to_dict(), "model": name, "n_train": n} for name in base.index]
    return pd.DataFrame(rows)


def seed_runs(profile: str, arch: str, plan: BenchmarkPlan | None = None, dataset_dir=None,
              progress: bool = True) -> pd.DataFrame:
    """Table 11: one architecture trained with each of the plan's seeds (on the ablation set and epochs).

    Parameters
    ----------
    profile : str
        Profile name; sizes the data, models and training.
    arch : str
        A registered architecture.
    plan : BenchmarkPlan, optional
        Default: :func:`get_plan` of ``profile``.
    dataset_dir : str or Path, optional
        Default: the profile's dataset, simulated when missing (:func:`specvit_core.simulate.ensure_dataset`).
    progress : bool
        Show progress bars.

    Returns
    -------
    pandas.DataFrame
        Index ``seed``; as :func:`train_runs`.

    Raises
    ------
    ValueError
        An unknown profile or architecture, or a run folder holding a checkpoint of another configuration.
    FileExistsError
        The dataset folder holds a dataset made with another configuration.
    """
    plan = plan or get_plan(profile)
    dataset_dir = dataset_dir or ensure_dataset(profile, progress=progress)
    configs = {f"{arch}_seed{s}": _ablation(profile, plan, arch, seed=s) for s in plan.seeds}
    return train_runs(configs, dataset_dir, profile, progress).assign(seed=list(plan.seeds)).set_index("seed")


def cross_configuration_runs(profile: str, plan: BenchmarkPlan | None = None, dataset_dir=None,
                             progress: bool = True) -> pd.DataFrame:
    """Table 12 / Figure 8: SpecViT and the BiLSTM each trained with its own and with the other's configuration.

    The configuration is Table 1's loss, learning rate and weight decay; the runs use the plan's ablation training
    set and epochs.

    Parameters
    ----------
    profile : str
        Profile name; sizes the data, models and training.
    plan : BenchmarkPlan, optional
        Default: :func:`get_plan` of ``profile``.
    dataset_dir : str or Path, optional
        Default: the profile's dataset, simulated when missing (:func:`specvit_core.simulate.ensure_dataset`).
    progress : bool
        Show progress bars.

    Returns
    -------
    pandas.DataFrame
        Index the run names; ``architecture``, ``configuration`` ("native" or "<family> config"), ``loss``,
        ``lr``, ``weight_decay`` and the columns of :func:`train_runs` but ``arch``.

    Raises
    ------
    ValueError
        An unknown profile or architecture, or a run folder holding a checkpoint of another configuration.
    FileExistsError
        The dataset folder holds a dataset made with another configuration.
    """
    plan = plan or get_plan(profile)
    dataset_dir = dataset_dir or ensure_dataset(profile, progress=progress)
    native = {"specvit": "transformer", "bilstm": "recurrent"}
    configs, labels = {}, {}
    for arch, own in native.items():
        for family in native.values():
            name = swap_run_name(arch, family)
            configs[name] = _ablation(profile, plan, arch, **FAMILY_DEFAULTS[family])
            labels[name] = dict(architecture=arch, configuration="native" if family == own else f"{family} config",
                                **FAMILY_DEFAULTS[family])
    metrics = train_runs(configs, dataset_dir, profile, progress)
    return pd.concat([pd.DataFrame.from_dict(labels, orient="index"), metrics.drop(columns="arch")], axis=1)


def patch_size_runs(profile: str, plan: BenchmarkPlan | None = None, dataset_dir=None,
                    progress: bool = True) -> pd.DataFrame:
    """Table 14: SpecViT (Conv1D tokenizer, non-overlapping patches) with each of the plan's patch sizes.

    Parameters
    ----------
    profile : str
        Profile name; sizes the data, models and training.
    plan : BenchmarkPlan, optional
        Default: :func:`get_plan` of ``profile``.
    dataset_dir : str or Path, optional
        Default: the profile's dataset, simulated when missing (:func:`specvit_core.simulate.ensure_dataset`).
    progress : bool
        Show progress bars.

    Returns
    -------
    pandas.DataFrame
        Index ``patch_size`` (pixels); as :func:`train_runs`, plus ``best_val_r2``.

    Raises
    ------
    ValueError
        An unknown profile or architecture, or a run folder holding a checkpoint of another configuration.
    FileExistsError
        The dataset folder holds a dataset made with another configuration.
    """
    plan = plan or get_plan(profile)
    dataset_dir = dataset_dir or ensure_dataset(profile, progress=progress)
    configs = {f"specvit_patch{p}": _ablation(profile, plan, "specvit", overrides=dict(patch_size=p))
               for p in plan.patch_sizes}
    metrics = train_runs(configs, dataset_dir, profile, progress)
    return metrics.assign(patch_size=list(plan.patch_sizes), best_val_r2=metrics.run_dir.map(best_val_r2)
                          ).set_index("patch_size")


def tokenizer_stability(profile: str, plan: BenchmarkPlan | None = None, dataset_dir=None, min_val_r2: float = PLATEAU_R2,
                        progress: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Table 15: Conv1D against sliding-window (unfold + Linear) tokenization of SpecViT over the plan's seeds.

    A run counts as finished when its loss stayed finite and its best validation R^2 exceeds ``min_val_r2``
    (the paper's failed SW runs collapsed to a constant prediction, R^2 ~ 0); a run that trained to its end
    without reaching it reads ``status="collapsed"``, so that the per-run table and the summary agree.

    Parameters
    ----------
    profile : str
        Profile name; sizes the data, models and training.
    plan : BenchmarkPlan, optional
        Default: :func:`get_plan` of ``profile``.
    dataset_dir : str or Path, optional
        Default: the profile's dataset, simulated when missing (:func:`specvit_core.simulate.ensure_dataset`).
    min_val_r2 : float
        Best validation R^2 a run must exceed to count as finished.
    progress : bool
        Show progress bars.

    Returns
    -------
    runs : pandas.DataFrame
        One row per run: as :func:`train_runs` with ``status`` "finished", "collapsed" or "diverged", plus
        ``tokenizer``, ``seed``, ``best_val_r2`` and ``finished`` (``status == "finished"``).
    summary : pandas.DataFrame
        Index ``tokenizer``; ``runs``, ``finished``, ``best_val_r2``, ``test_r2_mean``, ``test_r2_std`` and
        ``success_rate``.

    Raises
    ------
    ValueError
        An unknown profile or architecture, or a run folder holding a checkpoint of another configuration.
    FileExistsError
        The dataset folder holds a dataset made with another configuration.
    """
    plan = plan or get_plan(profile)
    dataset_dir = dataset_dir or ensure_dataset(profile, progress=progress)
    configs = {f"{arch}_seed{s}": _ablation(profile, plan, arch, seed=s)
               for arch in ("specvit", "specvit_sw") for s in plan.stability_seeds}
    runs = train_runs(configs, dataset_dir, profile, progress)
    runs["tokenizer"] = ["Conv1D" if c.arch == "specvit" else "sliding window" for c in configs.values()]
    runs["seed"] = [c.seed for c in configs.values()]
    runs["best_val_r2"] = runs.run_dir.map(best_val_r2)
    collapsed = (runs.status == "finished") & ~(runs.best_val_r2 > min_val_r2)
    runs["status"] = runs.status.mask(collapsed, "collapsed")
    runs["finished"] = runs.status == "finished"
    summary = runs.groupby("tokenizer", sort=False).agg(
        runs=("finished", "size"), finished=("finished", "sum"), best_val_r2=("best_val_r2", "max"),
        test_r2_mean=("r2", "mean"), test_r2_std=("r2", "std"))
    summary["success_rate"] = summary.finished / summary.runs
    return runs, summary


def high_snr_dataset(profile: str, plan: BenchmarkPlan | None = None, progress: bool = True) -> Path:
    """The "mag 19" dataset of section 5.1.5 (i = 18.75-19.25, the plan's sizes, its own seed), made once.

    Parameters
    ----------
    profile : str
        Profile name; sizes the data, models and training.
    plan : BenchmarkPlan, optional
        Default: :func:`get_plan` of ``profile``.
    progress : bool
        Show progress bars.

    Returns
    -------
    Path
        The dataset folder, ``data/<profile>_mag19``.

    Raises
    ------
    ValueError
        For an unknown profile.
    FileExistsError
        The folder holds a dataset made with another configuration.
    """
    plan = plan or get_plan(profile)
    n_train, n_val, n_test = plan.high_snr_sizes
    base = data_dir(profile)
    return ensure_dataset(profile, out_dir=base.with_name(f"{base.name}_mag19"), mag_range=HIGH_SNR_MAGS,
                          n_train=n_train, n_val=n_val, n_test=n_test, n_shards=1, seed=2026, progress=progress)


def high_snr_runs(profile: str, plan: BenchmarkPlan | None = None, dataset_dir=None, high_snr_dir=None,
                  progress: bool = True) -> pd.DataFrame:
    """Table 4 (section 5.1.5): the plan's networks fine-tuned on the mag-19 dataset, and trained on it from scratch.

    The fine-tuned runs start from the main (i = 20.5-22.5) runs; the runs from scratch train for as many epochs.

    Parameters
    ----------
    profile : str
        Profile name; sizes the data, models and training.
    plan : BenchmarkPlan, optional
        Default: :func:`get_plan` of ``profile``.
    dataset_dir : str or Path, optional
        The main runs' dataset (default: the profile's, simulated when missing).
    high_snr_dir : str or Path, optional
        The dataset to fine-tune on (default: :func:`high_snr_dataset`).
    progress : bool
        Show progress bars.

    Returns
    -------
    pandas.DataFrame
        Index the run names; ``model``, ``training`` ("fine-tuned" or "from scratch"), ``pretrained_r2`` (the
        main run's test R^2) and the columns of :func:`train_runs` but ``arch``.

    Raises
    ------
    ValueError
        An unknown profile or architecture, or a run folder holding a checkpoint of another configuration.
    FileExistsError
        The dataset folder holds a dataset made with another configuration.
    """
    plan = plan or get_plan(profile)
    high_snr_dir = high_snr_dir or high_snr_dataset(profile, plan, progress)
    main = main_runs(profile, plan.finetune_archs, dataset_dir, progress)
    configs, labels = {}, {}
    for arch in plan.finetune_archs:
        start = str(runs_dir(profile) / arch / "best.pt")
        for how, init in (("fine-tuned", start), ("from scratch", None)):
            name = finetune_run_name(arch, how)
            configs[name] = TrainConfig(arch=arch, profile=profile, epochs=plan.finetune_epochs, init_from=init)
            labels[name] = dict(model=arch, training=how, pretrained_r2=main.loc[arch, "r2"])
    metrics = train_runs(configs, high_snr_dir, profile, progress, share_main=False)
    return pd.concat([pd.DataFrame.from_dict(labels, orient="index"), metrics.drop(columns="arch")], axis=1)


