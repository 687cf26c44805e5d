"""Transfer to survey spectra (paper section 5.2, appendices E, F, K.1 and L).

Three parts: survey spectra become a dataset of the training engine (:func:`build_survey_dataset`: labels
matched by target id, the appendix-L.2 range filter, :func:`~.preprocess.preprocess_spectrum` per spectrum, the
L.8 split, the L.9 schema plus a manifest with ``"observed": true``); the transfer experiments fine-tune
pre-trained runs on such a dataset (:func:`transfer_runs`: Experiment A, from-scratch networks and LightGBM on the
target only; Experiment C through an intermediate survey); and any run predicts survey spectra
(:func:`predict_dataset`, :func:`predict_files`). Fine-tuning goes through :func:`specvit_core.train.train`, whose
test-split lock (appendix K.1.2) keeps the target's test split closed until the run is evaluated.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from . import __version__, files
from .baselines import run_baselines
from .benchmark import main_runs, train_runs
from .config import get_profile, runs_dir
from .data import MANIFEST, SPLITS, SpectraWriter, read_manifest, read_split, split_files
from .instrument import apogee_wavelength, mr_wavelength
from .metrics import MAD_TO_SIGMA, STELLAR_TYPES, bootstrap_ci, stellar_type
from .preprocess import C_KM_S, in_label_ranges, preprocess_spectrum, split_indices
from .runs import BEST, load_checkpoint, read_predictions
from .simulate import lock_file
from .spectra.synthesis import DIAGNOSTIC_LINES
from .surveys import ObservedSpectrum, load_spectra, read_labels
from .train import TrainConfig, predict_spectra

LABELS = ("T_eff", "log_g", "M_H")
FINETUNE_LR = 5e-5  # appendix F.2, Experiment A


def output_wavelength(survey: str) -> np.ndarray:
    """The 4096-pixel grid a survey's spectra are resampled onto: the MR grid (appendix L.4), except APOGEE's H band,
    which lies outside it and gets its own grid (appendix F.1, :func:`~specvit_core.instrument.apogee_wavelength`).

    Parameters
    ----------
    survey : str

    Returns
    -------
    ndarray, shape (4096,)
        Air wavelengths, Angstrom.
    """
    return apogee_wavelength() if survey == "apogee" else mr_wavelength()


@dataclass(frozen=True)
class TransferPlan:
    """What chapter 7 trains at one profile.

    Parameters
    ----------
    archs : tuple of str
        Networks pre-trained on the synthetic spectra and fine-tuned on the target (Table 7).
    epochs : int or None
        Fine-tuning and from-scratch epochs (None: the profile's).
    n_boot : int
        Bootstrap resamples of the Table 8 intervals (the paper: 10,000).
    """

    archs: tuple = ("specvit", "bilstm", "convstem_lstm")
    epochs: int | None = None
    n_boot: int = 10_000


PLANS = {"smoke": TransferPlan(epochs=2, n_boot=200), "quick": TransferPlan(epochs=10), "cpu": TransferPlan(epochs=60),
         "paper": TransferPlan(epochs=120)}


# ------------------------------------------------------------------------------------------------ datasets

def match_labels(spectra: list[ObservedSpectrum], labels: pd.DataFrame | None) -> tuple[list, pd.DataFrame, dict]:
    """Pair spectra with their catalogue labels by target id and apply the L.2 range filter.

    A radial velocity or redshift of the labels table fills the spectrum's when the file gives none.

    Parameters
    ----------
    spectra : list of ObservedSpectrum
    labels : pandas.DataFrame or None
        ``targetid``, ``T_eff``, ``log_g``, ``M_H`` and optionally ``vrad``, ``redshift``
        (:func:`specvit_core.surveys.read_labels`); None: the spectra are kept unlabelled (prediction only).

    Returns
    -------
    spectra : list of ObservedSpectrum
        The spectra kept, in input order (copies, with the velocities of the labels table filled in).
    table : pandas.DataFrame
        One row per kept spectrum: ``targetid`` and, with labels, the three labels.
    counts : dict
        ``spectra``, ``without_labels``, ``outside_ranges``, ``kept``.
    """
    counts = {"spectra": len(spectra), "without_labels": 0, "outside_ranges": 0}
    if labels is None:
        counts["kept"] = len(spectra)
        return spectra, pd.DataFrame({"targetid": [s.targetid for s in spectra]}), counts
    by_id = labels.set_index(labels["targetid"].astype(str))
    kept, rows = [], []
    for s in spectra:
        key = str(s.targetid)
        if key not in by_id.index:
            counts["without_labels"] += 1
            continue
        row = by_id.loc[key]
        velocity = {name: float(row[name]) for name in ("vrad", "redshift")
                    if np.isnan(getattr(s, name)) and name in row and np.isfinite(row[name])}
        kept.append(replace(s, **velocity))  # a copy: the caller's spectra keep their own velocities
        rows.append(row[list(LABELS)])
    table = pd.DataFrame(rows, columns=list(LABELS)).reset_index(drop=True)
    inside = in_label_ranges(table) if len(table) else np.zeros(0, bool)
    counts["outside_ranges"] = int((~inside).sum())
    kept = [s for s, ok in zip(kept, inside) if ok]
    table = table[inside].reset_index(drop=True)
    table.insert(0, "targetid", [s.targetid for s in kept])
    counts["kept"] = len(kept)
    return kept, table, counts


def load_matched(survey: str, spectra_paths, labels_path=None, labels_survey: str | None = None,
                 **loader_options) -> tuple[list, pd.DataFrame, dict]:
    """Load a survey's files and its labels catalogue and pair them (:func:`match_labels`).

    Parameters
    ----------
    survey : str
        A loader of :data:`specvit_core.surveys.SURVEYS`.
    spectra_paths : list of str or Path
    labels_path : str or Path, optional
        Catalogue (:func:`specvit_core.surveys.read_labels`); without it the spectra are unlabelled.
    labels_survey : str, optional
        The column convention of the labels table (default ``survey``).
    **loader_options
        Passed to :func:`specvit_core.surveys.load_spectra`.

    Returns
    -------
    spectra, table, counts
        As :func:`match_labels`.

    Raises
    ------
    FileNotFoundError, ValueError
        As the loaders and :func:`~specvit_core.surveys.read_labels`.
    """
    labels = read_labels(labels_path, labels_survey or survey) if labels_path else None
    return match_labels(load_spectra(survey, spectra_paths, **loader_options), labels)


def preprocess_all(spectra: list[ObservedSpectrum], survey: str, progress: bool = True) -> list:
    """Appendix L for every spectrum, onto the survey's :func:`output_wavelength`.

    Parameters
    ----------
    spectra : list of ObservedSpectrum
    survey : str
    progress : bool

    Returns
    -------
    list of Preprocessed
        In the order of ``spectra``.

    Raises
    ------
    ValueError
        A spectrum preprocessing refuses (the message names its file).
    """
    wave = output_wavelength(survey)
    return [preprocess_spectrum(s, wave) for s in tqdm(spectra, desc=f"preprocess {survey}", unit="spectra",
                                                        disable=not progress)]


def _params(table: pd.DataFrame, processed: list) -> np.ndarray:
    """The params table of the L.9 schema: target id, labels, SNR and what preprocessing measured."""
    ids = table["targetid"].to_numpy()
    id_type = np.int64 if np.issubdtype(ids.dtype, np.integer) else f"U{max(len(str(i)) for i in ids)}"
    columns = [("targetid", id_type)] + [(k, "f8") for k in LABELS if k in table] + \
        [(k, "f8") for k in ("snr", "coverage", "scale")] + [("n_spikes", "i4")]
    params = np.zeros(len(table), dtype=columns)
    params["targetid"] = ids
    for k in LABELS:
        if k in table:
            params[k] = table[k]
    for k in ("snr", "coverage", "scale", "n_spikes"):
        params[k] = [getattr(p, k) for p in processed]
    return params


def build_survey_dataset(spectra: list[ObservedSpectrum], labels: pd.DataFrame | None, out_dir, survey: str,
                         *, seed: int = 42, val_fraction: float = 0.1, test_fraction: float = 0.1,
                         sources: dict | None = None, overwrite: bool = False, progress: bool = True) -> dict:
    """Preprocess survey spectra (appendix L) into a dataset folder the training engine reads.

    Each spectrum is resampled onto :func:`output_wavelength` of the survey. Labelled spectra are split (L.8) into
    ``train_000.h5``, ``val.h5`` and ``test.h5``; without labels every
    spectrum goes to ``test.h5`` (what is to be predicted). The folder is written beside itself and swapped in
    whole (:func:`~specvit_core.files.staged_folder`) under the lock of :func:`~specvit_core.simulate.lock_file`.

    Parameters
    ----------
    spectra : list of ObservedSpectrum
        As a loader of :mod:`.surveys` returns them.
    labels : pandas.DataFrame or None
        Catalogue labels (:func:`match_labels`).
    out_dir : str or Path
        The dataset folder.
    survey : str
        Survey name, recorded in the manifest and the file attributes.
    seed, val_fraction, test_fraction
        The split (L.8: 42, 0.1, 0.1).
    sources : dict, optional
        What to record about the inputs (file names, catalogue), JSON-ready.
    overwrite : bool
        Replace an existing dataset in ``out_dir``.
    progress : bool

    Returns
    -------
    dict
        The manifest (``config``, ``observed``, ``counts``, ``files``, ...).

    Raises
    ------
    FileExistsError
        ``out_dir`` holds a dataset and ``overwrite`` is False, or another process writes it.
    ValueError
        No spectrum left after matching and filtering, too few for the split, or a spectrum preprocessing
        refuses (the message names its file).
    """
    out_dir = Path(out_dir)
    if (out_dir / MANIFEST).exists() and not overwrite:
        raise FileExistsError(f"{out_dir} already holds a dataset ({MANIFEST}); pass overwrite=True "
                              "(--overwrite) to replace it")
    kept, table, counts = match_labels(spectra, labels)
    if not kept:
        raise ValueError(f"No spectrum is left to write ({counts}); check that the labels' target ids match the "
                         "spectra and lie in the label ranges of appendix L.2")
    processed = preprocess_all(kept, survey, progress)
    params = _params(table, processed)
    labelled = labels is not None
    parts = split_indices(len(kept), seed, val_fraction, test_fraction) if labelled else \
        {"test": np.arange(len(kept))}
    config = {"survey": survey, "sources": sources or {}, "labelled": labelled,
              "split": {"seed": seed, "val_fraction": val_fraction, "test_fraction": test_fraction},
              "preprocessing": "appendix L (specvit_core.preprocess.preprocess_spectrum defaults)"}
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with files.hold_lock(lock_file(out_dir)), files.staged_folder(out_dir) as new:
        manifest = {"config": config, "observed": True, "grid": f"survey:{survey}", "grid_meta": {},
                    "specvit_core": __version__, "counts": counts, "files": {}}
        for split, index in parts.items():
            name = "train_000.h5" if split == "train" else f"{split}.h5"
            with SpectraWriter(new / name, output_wavelength(survey), len(index), {"split": split, "seed": seed, "survey": survey}) as out:
                out.append(np.stack([processed[i].flux for i in index]),
                           np.stack([processed[i].error for i in index]), params[index])
            manifest["files"][name] = {"split": split, "n": int(len(index)), "sha256": files.sha256(new / name)}
        files.write_json(new / MANIFEST, manifest)
    return manifest


def survey_dataset(survey: str, spectra_paths, out_dir, labels_path=None, labels_survey: str | None = None,
                   val_fraction: float = 0.1, test_fraction: float = 0.1, overwrite: bool = False,
                   progress: bool = True, **loader_options) -> dict:
    """Load survey files, read their labels and build (or reuse) the dataset: what ``specvit preprocess`` runs.

    A finished dataset made from the same files (same SHA-256) and labels is reused.

    Parameters
    ----------
    survey : str
        A loader of :data:`specvit_core.surveys.SURVEYS`.
    spectra_paths : list of str or Path
        The survey's files.
    out_dir : str or Path
    labels_path : str or Path, optional
        A catalogue of labels (:func:`specvit_core.surveys.read_labels`); without it the spectra are unlabelled.
    labels_survey : str, optional
        The column convention of the labels table (default ``survey``).
    val_fraction, test_fraction, overwrite, progress
        As :func:`build_survey_dataset`.
    **loader_options
        Passed to :func:`specvit_core.surveys.load_spectra` (e.g. ``medium`` and ``rest_frame`` for ``table``).

    Returns
    -------
    dict
        The manifest.

    Raises
    ------
    FileNotFoundError, ValueError
        As the loaders, :func:`~specvit_core.surveys.read_labels` and :func:`build_survey_dataset`.
    """
    paths = [Path(p) for p in spectra_paths]
    sources = {"spectra": {p.name: files.sha256(p) for p in paths},
               "labels": {Path(labels_path).name: files.sha256(labels_path)} if labels_path else None,
               "labels_survey": labels_survey or survey, "fractions": [val_fraction, test_fraction],
               "loader_options": {k: str(v) for k, v in loader_options.items()}}
    existing = read_manifest(out_dir, required=False)
    if existing and existing.get("config", {}).get("sources") == sources and not overwrite:
        return existing
    labels = read_labels(labels_path, labels_survey or survey) if labels_path else None
    spectra = load_spectra(survey, paths, **loader_options)
    return build_survey_dataset(spectra, labels, out_dir, survey, val_fraction=val_fraction,
                                test_fraction=test_fraction, sources=sources, overwrite=bool(existing),
                                progress=progress)


# ------------------------------------------------------------------------------------------------ experiments

def finetuned_name(arch: str) -> str:
    """Experiment A's run of ``arch``: pre-trained on synthetic spectra, fine-tuned on the target (Table 7).

    Parameters
    ----------
    arch : str
        The architecture.

    Returns
    -------
    str
        The run's folder name under :func:`transfer_dir`.
    """
    return f"A_{arch}"


def transfer_dir(profile: str, target: str) -> Path:
    """Runs of the transfer experiments on one target: ``runs/<profile>/transfer/<target>/``.

    Parameters
    ----------
    profile, target : str

    Returns
    -------
    Path
    """
    return runs_dir(profile) / "transfer" / target


def finetune_config(arch: str, profile: str, init_from=None, epochs: int | None = None) -> TrainConfig:
    """Appendix F.2: fine-tuning (lr 5e-5) from ``init_from``, or from scratch (the family's Table 1 settings) when
    None; never with noise injection (survey spectra carry their noise); best checkpoint by validation MAE.

    Parameters
    ----------
    arch, profile : str
    init_from : str or Path, optional
        The checkpoint to start from (a pre-trained run's ``best.pt``).
    epochs : int, optional

    Returns
    -------
    TrainConfig
    """
    if init_from is None:
        return TrainConfig(arch=arch, profile=profile, epochs=epochs, noise_alpha=0.0)
    return TrainConfig(arch=arch, profile=profile, epochs=epochs, noise_alpha=0.0, lr=FINETUNE_LR,
                       init_from=str(init_from))


def transfer_runs(profile: str, target_dir, target: str, intermediate_dir=None, intermediate: str | None = None,
                  plan: TransferPlan | None = None, progress: bool = True) -> pd.DataFrame:
    """Train (or reuse) every run of the transfer tables on one target dataset and evaluate it on its test split.

    Runs: the pre-trained synthetic runs of ``plan.archs`` (chapter 4's folders, trained when missing);
    ``A_<arch>``, each fine-tuned on the target (Experiment A, Table 7); ``scratch_<arch>``, the same networks
    trained on the target only; LightGBM and Ridge on the target only; with an intermediate survey dataset also
    ``<intermediate>/A_specvit`` (SpecViT fine-tuned on it, Table 16, with LightGBM and Ridge there) and
    ``C_specvit`` (that run fine-tuned on the target, Experiment C).

    Parameters
    ----------
    profile : str
    target_dir : str or Path
        The target's dataset (:func:`build_survey_dataset`).
    target : str
        Its name (the runs' folder under :func:`transfer_dir`).
    intermediate_dir : str or Path, optional
        The intermediate survey's dataset (Experiment C).
    intermediate : str, optional
        Its name.
    plan : TransferPlan, optional
        Default ``PLANS[profile]``.
    progress : bool

    Returns
    -------
    pandas.DataFrame
        One row per run (index ``<dataset>/<run>``): ``dataset``, ``chain``, ``arch``, ``run_dir`` and the test
        metrics (n, r2, mae, rmse, sigma_robust, bias).
    """
    plan = plan or PLANS[get_profile(profile).name]
    pretrained = main_runs(profile, plan.archs, progress=progress)["run_dir"]
    rows = []

    def networks(dataset_dir, name, configs, chains):
        table = train_runs(configs, dataset_dir, profile, progress, root=transfer_dir(profile, name))
        for run, chain in chains.items():
            rows.append(dict(table.loc[run], dataset=name, chain=chain, name=f"{name}/{run}"))

    def classical(dataset_dir, name):
        table = run_baselines(profile, ("lightgbm", "ridge"), dataset_dir=dataset_dir,
                              runs_root=transfer_dir(profile, name), progress=progress)
        for arch, row in table.iterrows():
            rows.append(dict(row, arch=arch, dataset=name, chain=f"{name} only", name=f"{name}/{arch}",
                             run_dir=transfer_dir(profile, name) / arch))

    configs = {finetuned_name(a): finetune_config(a, profile, Path(pretrained[a]) / BEST, plan.epochs)
               for a in plan.archs}
    configs.update({f"scratch_{a}": finetune_config(a, profile, None, plan.epochs) for a in plan.archs})
    chains = {finetuned_name(a): f"synthetic -> {target}" for a in plan.archs}
    chains.update({f"scratch_{a}": f"{target} only" for a in plan.archs})
    if intermediate_dir is not None:
        networks(intermediate_dir, intermediate, {"A_specvit": finetune_config(
            "specvit", profile, Path(pretrained["specvit"]) / BEST, plan.epochs)},
            {"A_specvit": f"synthetic -> {intermediate}"})
        classical(intermediate_dir, intermediate)
        configs["C_specvit"] = finetune_config("specvit", profile, transfer_dir(profile, intermediate) /
                                               "A_specvit" / BEST, plan.epochs)
        chains["C_specvit"] = f"synthetic -> {intermediate} -> {target}"
    networks(target_dir, target, configs, chains)
    classical(target_dir, target)
    return pd.DataFrame(rows).set_index("name")


# ------------------------------------------------------------------------------------------------ tables

def by_stellar_type(run_dirs: dict, n_boot: int = 10_000, seed: int = 0) -> pd.DataFrame:
    """Table 8: test MAE and sigma_robust per stellar type of each run, with the bootstrap 95% CI of sigma_robust.

    Parameters
    ----------
    run_dirs : dict
        Row name -> evaluated run folder.
    n_boot : int
        Bootstrap resamples (the paper: 10,000).
    seed : int

    Returns
    -------
    pandas.DataFrame
        Index (run, type); columns n, fraction, mae, sigma_robust, ci_low, ci_high.
    """
    rows = {}
    for name, run_dir in run_dirs.items():
        pred = read_predictions(run_dir)
        types = stellar_type(pred["true"])
        for t in STELLAR_TYPES:
            part = pred[types == t]
            if len(part) < 2:
                continue
            ci = bootstrap_ci(part["true"], part["pred"], "sigma_robust", n_boot=n_boot, seed=seed)
            rows[(name, t)] = dict(n=len(part), fraction=len(part) / len(pred),
                                   mae=float(np.mean(np.abs(part["pred"] - part["true"]))),
                                   sigma_robust=ci["value"], ci_low=ci["low"], ci_high=ci["high"])
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis(["run", "type"])


def reweighted_sigma_robust(y_true, y_pred, mix: dict) -> float:
    """sigma_robust of a test set reweighted to the stellar-type fractions ``mix`` (Figure 11c).

    Each spectrum is weighted by mix[type] / (its type's fraction in the set); the weighted median absolute
    deviation of the residuals times 1.4826 follows.

    Parameters
    ----------
    y_true, y_pred : array_like
        Labels (log g, which also gives the types) and predictions.
    mix : dict
        Fraction per stellar type (e.g. ``paper.APOGEE_TEST_MIX``).

    Returns
    -------
    float
        dex.
    """
    y_true, y_pred = np.asarray(y_true, float), np.asarray(y_pred, float)
    types = stellar_type(y_true)
    weights = np.zeros(len(y_true))
    for t in STELLAR_TYPES:
        sel = types == t
        if sel.any():
            weights[sel] = mix[t] / sel.mean()
    residual = y_pred - y_true

    def weighted_median(values):
        order = np.argsort(values)
        cumulative = np.cumsum(weights[order])
        return values[order][np.searchsorted(cumulative, 0.5 * cumulative[-1])]

    return MAD_TO_SIGMA * weighted_median(np.abs(residual - weighted_median(residual)))


# ------------------------------------------------------------------------------------------------ checks

CA_II_TRIPLET = tuple(wave for species, wave in DIAGNOSTIC_LINES if species == "Ca II")  # A, air (NIST)


def line_minimum(wave, flux, centre: float, half_width: float = 2.0) -> float:
    """Wavelength of a line's minimum: the vertex of the parabola through the lowest pixel and its neighbours.

    Parameters
    ----------
    wave, flux : array_like
        One spectrum.
    centre : float
        Where to look, Angstrom.
    half_width : float
        Search half-window, Angstrom.

    Returns
    -------
    float
        Angstrom.
    """
    wave, flux = np.asarray(wave, float), np.asarray(flux, float)
    window = np.flatnonzero(np.abs(wave - centre) <= half_width)
    i = window[np.argmin(flux[window])]
    a, b, _ = np.polyfit(wave[i - 1:i + 2] - wave[i], flux[i - 1:i + 2], 2)
    return float(wave[i] - b / (2 * a))


def preprocessing_checks(dataset_dir, spectra_paths, truth: pd.DataFrame, survey: str = "desi",
                         line: float = CA_II_TRIPLET[1]) -> dict:
    """Known answers for a simulated target's preprocessing: line position, spikes and SNR (chapter 7).

    The test split's spectra are stacked around ``line`` (median) after preprocessing, and again with their
    radial velocities ignored; the templates of the same stars on the MR grid give the line centre to recover.

    Parameters
    ----------
    dataset_dir : str or Path
        The target's dataset (:func:`build_survey_dataset`).
    spectra_paths : list
        Its survey files.
    truth : pandas.DataFrame
        ``targetid``, true labels, ``snr`` and ``n_spikes`` as simulated (:mod:`specvit_core.targets`).
    survey : str
        The loader of the files.
    line : float
        Air wavelength of the line, Angstrom.

    Returns
    -------
    dict
        ``summary`` (line centres and offsets, spike recovery), ``stack_wave``, ``rest`` and ``no_shift`` (stacked
        flux), ``snr_true`` and ``snr_measured`` (per test spectrum).
    """
    from .spectra.grid import load_grid

    test = read_split(dataset_dir, "test")
    ids = test.params["targetid"].astype(str)
    known = truth.set_index(truth["targetid"].astype(str)).loc[ids]
    wave = mr_wavelength()
    near = np.abs(wave - line) < 8.0
    template = load_grid("embedded").interpolate(known[list(LABELS)].to_numpy())
    template /= np.median(template, axis=1, keepdims=True)
    wanted = set(ids)
    raw = [s for s in load_spectra(survey, spectra_paths) if str(s.targetid) in wanted]
    for s in raw:
        s.vrad, s.redshift = 0.0, np.nan  # radial velocities ignored
    no_shift = np.stack([p.flux for p in preprocess_all(raw, survey, progress=False)])
    stacks = {"rest": np.median(test.flux[:, near], axis=0), "no_shift": np.median(no_shift[:, near], axis=0),
              "template": np.median(template[:, near], axis=0) * 0.5}
    centres = {k: line_minimum(wave[near], v, line) for k, v in stacks.items()}
    injected, found = known["n_spikes"].to_numpy(), test.params["n_spikes"].to_numpy()
    summary = {"template line centre [A]": centres["template"],
               "preprocessed line centre [A]": centres["rest"],
               "offset [km/s]": (centres["rest"] - centres["template"]) / line * C_KM_S,
               "offset with radial velocities ignored [km/s]": (centres["no_shift"] - centres["template"]) / line *
               C_KM_S,
               "spectra with injected spikes": int((injected > 0).sum()),
               "... of them with a spike flagged [%]": 100.0 * float(np.mean(found[injected > 0] > 0)),
               "spectra without spikes but a pixel flagged [%]": 100.0 * float(np.mean(found[injected == 0] > 0))}
    return {"summary": summary, "stack_wave": wave[near], **stacks, "snr_true": known["snr"].to_numpy(),
            "snr_measured": test.params["snr"].to_numpy()}


def two_sided_rule_damage(survey: str, spectra_paths, labels_path=None, labels_survey: str | None = None,
                          n: int = 200) -> pd.DataFrame:
    """What the appendix's two-sided spike rule replaces inside the Ca II triplet lines, against the package's
    positive-only default, on the first ``n`` spectra of a survey's files.

    Parameters
    ----------
    survey : str
    spectra_paths : list
    labels_path : str or Path, optional
        Catalogue (its radial velocities reach the rest frame of observed spectra).
    labels_survey : str, optional
    n : int

    Returns
    -------
    pandas.DataFrame
        One row per rule: spectra, spectra with a Ca II core pixel replaced (%), median replaced core pixels among
        those, median SNR of those.
    """
    kept = load_matched(survey, spectra_paths, labels_path, labels_survey)[0][:n]
    wave = output_wavelength(survey)
    cores = np.any([np.abs(wave - c) < 1.5 for c in CA_II_TRIPLET], axis=0)
    rules = ("upper", "both")
    damaged, snr = np.zeros((len(rules), len(kept)), int), np.zeros((len(rules), len(kept)))
    for j, s in enumerate(kept):
        none = preprocess_spectrum(s, wave, k=np.inf)  # nothing flagged: the reference of both rules
        for i, rule in enumerate(rules):
            clean = preprocess_spectrum(s, wave, sides=rule)
            replaced = ~np.isclose(clean.flux / clean.scale, none.flux / none.scale, rtol=1e-5, atol=0)
            damaged[i, j], snr[i, j] = np.sum(replaced & cores), clean.snr
    rows = {}
    for rule, pixels, snr_rule in zip(rules, damaged, snr):
        hit = pixels > 0
        rows["two-sided (appendix L.5)" if rule == "both" else "positive only (package default)"] = {
            "spectra": len(kept), "with a Ca II core pixel replaced [%]": 100.0 * hit.mean(),
            "replaced core pixels (median, those spectra)": float(np.median(pixels[hit])) if hit.any() else 0.0,
            "SNR (median, those spectra)": float(np.median(snr_rule[hit])) if hit.any() else float("nan")}
    return pd.DataFrame(rows).T


# ------------------------------------------------------------------------------------------------ predict

def run_labels(run_dir) -> tuple[str, ...]:
    """The labels a run predicts, in its order, as its ``best.pt`` records them.

    Parameters
    ----------
    run_dir : str or Path

    Returns
    -------
    tuple of str
    """
    return TrainConfig(**load_checkpoint(Path(run_dir) / BEST)["config"]).labels


def prediction_columns(labels, pred: np.ndarray, sigma: np.ndarray | None) -> dict:
    """The prediction columns of a run's output (:func:`specvit_core.train.predict_spectra`) by name.

    Parameters
    ----------
    labels : sequence of str
        The run's labels (:func:`run_labels`).
    pred : ndarray, shape (N,) or (N, k)
        Its predictions: one label, or the k labels of a joint-label run.
    sigma : ndarray of the same shape, or None
        Their predicted sigmas (a run with the Gaussian NLL head).

    Returns
    -------
    dict of str -> ndarray (N,)
        ``<label>_pred`` (and ``<label>_pred_sigma``) for each label of the run, in its order: ``log_g_pred`` for a
        log g run, ``T_eff_pred`` for a T_eff run, the three columns for a joint-label run.
    """
    pred = pred.reshape(len(pred), -1)
    sigma = None if sigma is None else sigma.reshape(len(sigma), -1)
    columns = {}
    for j, name in enumerate(labels):
        columns[f"{name}_pred"] = pred[:, j]
        if sigma is not None:  # a run with the Gaussian NLL head
            columns[f"{name}_pred_sigma"] = sigma[:, j]
    return columns


def predict_dataset(run_dir, dataset_dir, splits=SPLITS, device: str = "auto") -> pd.DataFrame:
    """A run's predictions for every spectrum of a dataset folder (all its splits by default).

    Parameters
    ----------
    run_dir : str or Path
        An evaluated or trained run (``best.pt``).
    dataset_dir : str or Path
        A dataset folder (a survey dataset or a simulated one).
    splits : sequence of str
        The splits to predict (those the folder has).
    device : str

    Returns
    -------
    pandas.DataFrame
        One row per spectrum: ``split``, ``targetid`` (the row number when the dataset has none), ``<label>_pred``
        for each label of the run (``log_g_pred`` for a log g run), ``<label>_pred_sigma`` (its predicted sigma,
        for a run with the Gaussian NLL head) and the label columns the dataset has (:func:`prediction_columns`).
    """
    frames, labels = [], run_labels(run_dir)
    for split in splits:
        try:
            split_files(dataset_dir, split)
        except FileNotFoundError:
            continue
        data = read_split(dataset_dir, split)
        frame = data.params[[c for c in ("targetid", *LABELS) if c in data.params]].copy()
        frame.insert(0, "split", split)
        if "targetid" not in frame:
            frame.insert(1, "targetid", np.arange(len(frame)))
        pred, sigma = predict_spectra(run_dir, data.flux, device, with_sigma=True)
        for position, (name, values) in enumerate(prediction_columns(labels, pred, sigma).items(), start=2):
            frame.insert(position, name, values)
        frames.append(frame)
    if not frames:
        raise FileNotFoundError(f"No split file in {str(dataset_dir)!r}")
    return pd.concat(frames, ignore_index=True)


def predict_files(run_dir, survey: str, spectra_paths, labels_path=None, labels_survey: str | None = None,
                  device: str = "auto", progress: bool = True, **loader_options) -> pd.DataFrame:
    """Preprocess survey files on the fly (no dataset written) and predict them with a run.

    Without a labels table every spectrum is predicted; with one, only those it labels inside the L.2 ranges.

    Parameters
    ----------
    run_dir : str or Path
    survey : str
        A loader of :data:`specvit_core.surveys.SURVEYS`.
    spectra_paths : list of str or Path
    labels_path : str or Path, optional
    labels_survey : str, optional
        The column convention of the labels table (default ``survey``).
    device : str
    progress : bool
    **loader_options
        Passed to :func:`specvit_core.surveys.load_spectra`.

    Returns
    -------
    pandas.DataFrame
        ``targetid``, ``<label>_pred`` for each label of the run (``log_g_pred`` for a log g run),
        ``<label>_pred_sigma`` (a run with the Gaussian NLL head), ``snr``, ``coverage``, and the labels when known
        (:func:`prediction_columns`).
    """
    kept, table, counts = load_matched(survey, spectra_paths, labels_path, labels_survey, **loader_options)
    if not kept:
        raise ValueError(f"No spectrum to predict ({counts})")
    processed = preprocess_all(kept, survey, progress)
    out = table.copy()
    pred, sigma = predict_spectra(run_dir, np.stack([p.flux for p in processed]), device, with_sigma=True)
    for position, (name, values) in enumerate(prediction_columns(run_labels(run_dir), pred, sigma).items(), start=1):
        out.insert(position, name, values)
    out["snr"] = [p.snr for p in processed]
    out["coverage"] = [p.coverage for p in processed]
    if counts["without_labels"] or counts["outside_ranges"]:
        warnings.warn(f"{counts['without_labels']} spectra without labels and {counts['outside_ranges']} outside "
                      "the label ranges were not predicted")
    return out
