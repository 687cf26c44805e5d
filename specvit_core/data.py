"""The HDF5 splits (writing and reading), the torch Dataset with on-the-fly noise (paper eq. 3), label normalization.

A dataset is a folder with ``train_000.h5, train_001.h5, ...`` (shards, concatenated in order), ``val.h5`` and
``test.h5`` in the paper's schema (appendix L.9/K.2), written by :class:`SpectraWriter`. The flux stored there is
the clean, median-normalized spectrum; :class:`NoisySpectra` draws the observational noise
``x + alpha * eps * sigma`` (:func:`~specvit_core.noise.noisy_spectrum`) when a sample is read: a fresh
realization every epoch for training, one fixed realization (seed 42) for validation and test.
"""
from __future__ import annotations

import contextlib
import contextvars
import json
import re
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from . import files
from .noise import noisy_spectrum

SPLITS = ("train", "val", "test")
WAVE_KEY = "spectrumdataset/wave"
FLUX_KEY = "dataset/arrays/flux/value"
ERROR_KEY = "dataset/arrays/error/value"
PARAMS_KEY = "dataset/params"
MANIFEST = "manifest.json"  # the dataset's description: configuration, grid identity, files with sizes and SHA-256
FIXED_NOISE_SEED = 42  # validation and test noise (methods draft, section 3.4)
LABEL_COLUMNS = ("T_eff", "log_g", "M_H")  # the label columns checked where a params table has them
_BLOCK = 4096  # rows checked at a time by check_values: bounds the memory of its masks

_test_locked = contextvars.ContextVar("test_locked", default=False)


@contextlib.contextmanager
def lock_test_split():
    """Context in which :func:`read_split` refuses the test split (the training-time guardrail of appendix K.1.2).

    Yields
    ------
    None
        The body of the ``with`` block runs with the test split locked; the lock is lifted on exit.
    """
    token = _test_locked.set(True)
    try:
        yield
    finally:
        _test_locked.reset(token)


@dataclass
class SpectraSplit:
    """One split in memory.

    Parameters
    ----------
    wave : ndarray, shape (L,)
        Wavelengths, Angstrom.
    flux, error : ndarray, float32, shape (N, L)
        Clean median-normalized flux and its 1-sigma uncertainty.
    params : pandas.DataFrame
        N rows: labels (``T_eff``, ``log_g``, ``M_H``), magnitude, observing conditions, ...
    """

    wave: np.ndarray
    flux: np.ndarray
    error: np.ndarray
    params: pd.DataFrame

    def __len__(self) -> int:
        return len(self.flux)

    def labels(self, name: str = "log_g") -> np.ndarray:
        """One column of ``params`` as float64.

        Parameters
        ----------
        name : str
            Column name, e.g. ``"log_g"``, ``"T_eff"``, ``"M_H"``.

        Returns
        -------
        ndarray, float64, shape (N,)
            The column's values.

        Raises
        ------
        KeyError
            If ``params`` has no column ``name`` (the message lists the columns).
        """
        if name not in self.params:
            raise KeyError(f"Unknown label {name!r}; the params table has: {', '.join(self.params.columns)}")
        return self.params[name].to_numpy(dtype=np.float64)


class SpectraWriter:
    """Context manager that writes one HDF5 file of the paper's schema atomically, spectra appended in chunks.

    On entry the file is opened through :func:`~specvit_core.files.atomic_path`, the wavelengths are written and the
    flux and error datasets (float32, ``(n, len(wave))``) are created; :meth:`append` fills them in order. On a
    clean exit the params table and the file attributes are written and the file replaces ``path``; on an error, or
    when fewer than ``n`` spectra were appended, ``path`` is left untouched.

    Parameters
    ----------
    path : str or Path
        The file to write; its folder must exist.
    wave : array (L,)
        Wavelengths, Angstrom.
    n : int
        Number of spectra the file will hold.
    attrs : dict, optional
        File attributes (``split``, ``seed``, ...; :func:`read_split` checks ``split``).
    **options
        h5py dataset options of flux and error: ``chunks``, ``compression``, ``compression_opts``, ``shuffle``.
    """

    def __init__(self, path, wave, n: int, attrs: dict | None = None, **options):
        self.path, self.wave, self.n = Path(path), np.asarray(wave), int(n)
        self.attrs, self.options = dict(attrs or {}), options
        self.rows = 0
        self._params = []

    def __enter__(self) -> SpectraWriter:
        self._context = self._open()
        return self._context.__enter__()

    def __exit__(self, *exc) -> bool:
        return self._context.__exit__(*exc)

    @contextlib.contextmanager
    def _open(self):
        with files.atomic_path(self.path) as tmp, h5py.File(tmp, "w") as f:
            f[WAVE_KEY] = self.wave
            shape = (self.n, self.wave.size)
            self._flux, self._error = (f.create_dataset(key, shape=shape, dtype="f4", **self.options)
                                       for key in (FLUX_KEY, ERROR_KEY))
            yield self
            if self.rows != self.n:
                raise ValueError(f"{self.path}: {self.rows} of {self.n} spectra were appended; the file is not written")
            f[PARAMS_KEY] = _storable(np.concatenate(self._params))
            f.attrs.update(self.attrs)

    def append(self, flux, error, params) -> None:
        """Write the next rows.

        Parameters
        ----------
        flux, error : array (k, L)
            Clean flux and its 1-sigma uncertainty (stored as float32).
        params : numpy structured array (k,)
            One named field per column (labels, magnitude, conditions, or e.g. a ``targetid`` of a survey); str
            fields are stored as ASCII bytes, which :func:`read_split` decodes.

        Raises
        ------
        ValueError
            If the shapes disagree, ``params`` is not a structured array, the rows exceed ``n``, or values break
            the rules of :func:`check_values` (the file is then not written).
        """
        params, k = np.asarray(params), len(flux)
        if np.shape(flux) != (k, self.wave.size) or np.shape(error) != np.shape(flux) or params.shape != (k,):
            raise ValueError(f"flux and error must be (k, {self.wave.size}) and params (k,); got flux "
                             f"{np.shape(flux)}, error {np.shape(error)}, params {params.shape}")
        if params.dtype.names is None:
            raise ValueError(f"params must be a structured array (one named field per column); got {params.dtype}")
        if self.rows + k > self.n:
            raise ValueError(f"{self.path}: appending {k} spectra to {self.rows} exceeds the {self.n} of the file")
        check_values(self.path, flux, error, params, first_row=self.rows)
        self._flux[self.rows : self.rows + k] = flux
        self._error[self.rows : self.rows + k] = error
        self._params.append(params)
        self.rows += k


def _storable(table: np.ndarray) -> np.ndarray:
    """``table`` with its str (numpy ``U``) fields as fixed-width ASCII bytes (``S``): HDF5 has no ``U`` type."""
    names = table.dtype.names
    if not any(table.dtype[k].kind == "U" for k in names):
        return table
    return table.astype([(k, f"S{table.dtype[k].itemsize // 4}" if table.dtype[k].kind == "U" else table.dtype[k])
                         for k in names])


def read_manifest(dataset_dir, required: bool = True) -> dict:
    """The ``manifest.json`` of a dataset folder (written by :func:`specvit_core.simulate.generate_dataset`).

    Parameters
    ----------
    dataset_dir : str or Path
    required : bool
        When False, a folder without a manifest gives ``{}`` (a dataset from elsewhere).

    Returns
    -------
    dict
        ``config`` (the SimulationConfig), ``grid``, ``grid_meta``, ``specvit_core`` version and ``files``
        (name -> split, n, spawn_key, sha256).

    Raises
    ------
    FileNotFoundError
        No manifest and ``required`` is True.
    """
    path = Path(dataset_dir) / MANIFEST
    if not path.is_file():
        if required:
            raise FileNotFoundError(f"No {MANIFEST} in {str(dataset_dir)!r}: not a dataset made by specvit simulate")
        return {}
    return json.loads(path.read_text())


def flux_is_observed(dataset_dir) -> bool:
    """Whether a dataset's flux is observed (its noise is in it: preprocessed survey spectra, manifest
    ``"observed": true``) rather than clean templates to which training adds noise.

    Parameters
    ----------
    dataset_dir : str or Path

    Returns
    -------
    bool
        False for a folder without a manifest.
    """
    return bool(read_manifest(dataset_dir, required=False).get("observed", False))


_SPLIT_FILE = re.compile(r"(train)_[0-9]{3}\.h5|(val|test)\.h5")  # train_000.h5, train_001.h5, ..., val.h5, test.h5


def split_of_file(name: str) -> str | None:
    """The split :func:`read_split` reads a file of this name as.

    Parameters
    ----------
    name : str
        A file name, e.g. ``"train_002.h5"``.

    Returns
    -------
    str or None
        ``"train"``, ``"val"`` or ``"test"``; None for a name no split reads.
    """
    match = _SPLIT_FILE.fullmatch(name)
    return (match.group(1) or match.group(2)) if match else None


def split_files(dataset_dir, split: str) -> list[Path]:
    """The HDF5 files of ``split`` in ``dataset_dir``, train shards in order.

    Parameters
    ----------
    dataset_dir : str or Path
        Dataset folder.
    split : {"train", "val", "test"}
        The split.

    Returns
    -------
    list of Path
        ``train_000.h5, train_001.h5, ...`` for ``"train"``; ``[<split>.h5]`` otherwise.

    Raises
    ------
    ValueError
        If ``split`` is not one of ``SPLITS``.
    FileNotFoundError
        If the folder or the split's files do not exist.
    """
    if split not in SPLITS:
        raise ValueError(f"Unknown split {split!r}; valid splits are: {', '.join(SPLITS)}")
    folder = Path(dataset_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"The dataset folder {str(folder)!r} does not exist (simulate it first)")
    files = sorted(p for p in folder.glob("*.h5") if split_of_file(p.name) == "train") if split == "train" else \
        [folder / f"{split}.h5"]
    if not files or not files[0].is_file():
        pattern = "train_000.h5, train_001.h5, ..." if split == "train" else f"{split}.h5"
        raise FileNotFoundError(f"No {split} split in {str(folder)!r}: expected {pattern}")
    return files


TEST_LOCKED_MESSAGE = ("The test split is locked during training (only train and val may be read); evaluate the "
                       "test split after training with specvit_core.train.evaluate")


def open_split_file(path) -> h5py.File:
    """Open a dataset's HDF5 file for reading; every reader of split files goes through here.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    h5py.File
        Open read-only; use it as a context manager.

    Raises
    ------
    RuntimeError
        Inside :func:`lock_test_split`, a file of the test split (named ``test.h5`` or with ``split="test"``).
    """
    f = h5py.File(path, "r")
    if _test_locked.get() and (Path(path).name == "test.h5" or f.attrs.get("split") == "test"):
        f.close()
        raise RuntimeError(f"{path}: {TEST_LOCKED_MESSAGE}")
    return f


def _read_file(path: Path, split: str, n: int | None) -> SpectraSplit:
    """The first ``n`` rows (all when None) of one HDF5 file, with its schema, split attribute and values checked."""
    with open_split_file(path) as f:
        if f.attrs.get("split", split) != split:
            raise ValueError(f"{path}: the file says split={f.attrs['split']!r} but is read as {split!r}; "
                             "files of different splits must not be swapped (leakage)")
        for key in (WAVE_KEY, FLUX_KEY, ERROR_KEY, PARAMS_KEY):
            if not isinstance(f.get(key), h5py.Dataset):
                raise ValueError(f"{path}: missing HDF5 dataset {key!r} (paper schema, appendix L.9)")
        rows = slice(None) if n is None else slice(0, n)
        wave = f[WAVE_KEY][:]
        flux = f[FLUX_KEY][rows].astype(np.float32, copy=False)
        error = f[ERROR_KEY][rows].astype(np.float32, copy=False)
        table = f[PARAMS_KEY][rows]
    if table.dtype.names is None:
        raise ValueError(f"{path}: {PARAMS_KEY!r} must be a compound (table) dataset; got dtype {table.dtype}")
    params = pd.DataFrame({k: table[k].astype(str) if table[k].dtype.kind == "S" else table[k]
                           for k in table.dtype.names})
    if flux.ndim != 2 or flux.shape[1] != wave.shape[0] or error.shape != flux.shape or len(params) != len(flux):
        raise ValueError(f"{path}: shapes disagree: wave {wave.shape}, flux {flux.shape}, error {error.shape}, "
                         f"params ({len(params)},); the rule is flux and error (N, len(wave)), params N rows")
    check_values(path, flux, error, table)
    return SpectraSplit(wave, flux, error, params)


def check_values(where, flux, error, params, first_row: int = 0) -> None:
    """Refuse spectra that training cannot use: the rules every stored split obeys.

    Rules: every flux value finite; every error value > 0 and not NaN (it scales the injected noise and weights
    the fits; ``+inf`` marks a pixel without data in a preprocessed survey spectrum, appendix L.4); the median of
    every median-normalized spectrum positive (a negated or empty spectrum breaks it);
    the label columns ``T_eff``, ``log_g``, ``M_H`` (those ``params`` has) numeric and finite.

    Parameters
    ----------
    where : str or Path
        The file, named in the message.
    flux, error : ndarray, shape (N, L)
        Clean normalized flux and its 1-sigma uncertainty.
    params : numpy structured array (N,)
        The params table.
    first_row : int
        Row of the file that row 0 of the arrays is (for the message).

    Raises
    ------
    ValueError
        At the first rule broken: ``"<file>: <field> has <k> bad values in <m> of <N> spectra (first bad row <r>,
        value <v>); the rule is: <rule>"``.
    """
    flux, error = np.asarray(flux), np.asarray(error)
    checks = [("flux", flux, np.isfinite, "flux must be finite"),
              ("error", error, lambda a: a > 0, "error must be > 0 and not NaN (+inf marks a survey pixel without "
               "data, appendix L.4)")]
    for name in (k for k in LABEL_COLUMNS if k in (params.dtype.names or ())):
        if params.dtype[name].kind not in "iuf":
            raise ValueError(f"{where}: label {name} has dtype {params.dtype[name]}; the rule is: labels "
                             f"{', '.join(LABEL_COLUMNS)} must be numeric and finite")
        checks.append((f"label {name}", params[name], np.isfinite,
                       f"labels {', '.join(LABEL_COLUMNS)} must be numeric and finite"))
    for field, values, ok, rule in checks:
        bad = _bad_per_row(values, ok)
        if bad.any():
            row = np.atleast_1d(values[np.flatnonzero(bad)[0]])
            _refuse(where, field, bad, first_row, row[~ok(row)][0], rule)
    bad = _bad_per_row(flux, _positive_median)
    if bad.any():
        _refuse(where, "flux median", bad, first_row, np.median(flux[np.flatnonzero(bad)[0]]),
                "median-normalized flux must have a positive median")


def _bad_per_row(values: np.ndarray, ok) -> np.ndarray:
    """How many values of each row of ``values`` break ``ok`` (an array -> bool array function), in row blocks."""
    counts = np.zeros(len(values), dtype=np.int64)
    for start in range(0, len(values), _BLOCK):
        bad = ~ok(values[start:start + _BLOCK])
        counts[start:start + _BLOCK] = np.count_nonzero(bad.reshape(len(bad), -1), axis=1)
    return counts


def _positive_median(flux: np.ndarray) -> np.ndarray:
    """Whether each row of ``flux`` has a positive median; the median is computed only for rows where counting the
    positive values leaves it open (exactly half of them positive)."""
    positive = np.count_nonzero(flux > 0, axis=1)
    ok = positive > flux.shape[1] / 2
    open_ = np.flatnonzero(positive == flux.shape[1] / 2)
    ok[open_] = np.median(flux[open_], axis=1) > 0
    return ok


def _refuse(where, field: str, bad: np.ndarray, first_row: int, value, rule: str) -> None:
    """Raise the ValueError of :func:`check_values` for the per-row bad counts ``bad`` of ``field``."""
    rows = np.flatnonzero(bad)
    raise ValueError(f"{where}: {field} has {int(bad.sum())} bad values in {rows.size} of {bad.size} spectra "
                     f"(first bad row {first_row + rows[0]}, value {float(value):.6g}); the rule is: {rule}")


def read_split(dataset_dir, split: str, max_rows: int | None = None) -> SpectraSplit:
    """Read a split into memory, concatenating the train shards in order.

    Parameters
    ----------
    dataset_dir : str or Path
        Dataset folder (see the module docstring).
    split : {"train", "val", "test"}
        The split to read.
    max_rows : int, optional
        Keep only the first ``max_rows`` spectra (read lazily shard by shard).

    Returns
    -------
    SpectraSplit
        Wavelengths, flux, error (float32) and the params table of the split.

    Raises
    ------
    ValueError
        Unknown split, non-positive ``max_rows``, a file whose ``split`` attribute names another split, a
        missing HDF5 dataset, shapes that disagree (also between shards), values that break the rules of
        :func:`check_values` (the message names the file, the field, the number of bad values, the first bad row
        and the rule).
    FileNotFoundError
        Missing folder or split files.
    RuntimeError
        The test split inside :func:`lock_test_split` (during training).
    """
    if max_rows is not None and max_rows < 1:
        raise ValueError(f"max_rows must be a positive integer or None; got {max_rows!r}")
    if split == "test" and _test_locked.get():
        raise RuntimeError(TEST_LOCKED_MESSAGE)
    parts = []
    for path in split_files(dataset_dir, split):
        left = None if max_rows is None else max_rows - sum(len(p) for p in parts)
        if left == 0:
            break
        parts.append(_read_file(path, split, left))
        if not np.array_equal(parts[-1].wave, parts[0].wave):
            raise ValueError(f"{path}: wavelength grid differs from that of {split_files(dataset_dir, split)[0]}")
    if len(parts) == 1:
        return parts[0]
    return SpectraSplit(parts[0].wave, np.concatenate([p.flux for p in parts]),
                        np.concatenate([p.error for p in parts]),
                        pd.concat([p.params for p in parts], ignore_index=True))


def fixed_noisy(flux: np.ndarray, error: np.ndarray, seed: int = FIXED_NOISE_SEED, alpha: float = 1.0) -> np.ndarray:
    """The fixed noisy array that ``NoisySpectra(..., noise="fixed", seed=seed)`` serves, row by row.

    The noise of row ``i`` depends only on ``(seed, i)``, so baselines (Ridge, LightGBM) see exactly the same
    validation/test inputs as the networks, and a prefix of a split keeps its noise.

    Parameters
    ----------
    flux, error : ndarray, shape (N, L)
        Clean normalized spectra and their 1-sigma uncertainties.
    seed : int
        Noise seed (42 for validation and test).
    alpha : float
        Noise-level scaling (see :func:`~specvit_core.noise.noisy_spectrum`).

    Returns
    -------
    ndarray, float32, shape (N, L)
        Noisy flux, clipped at 0.

    Raises
    ------
    ValueError
        If ``flux`` and ``error`` differ in length or shape.
    """
    return np.stack([noisy_spectrum(f, e, np.random.default_rng((seed, i)), alpha)
                     for i, (f, e) in enumerate(zip(flux, error, strict=True))])


class NoisySpectra(Dataset):
    """Samples ``(x_noisy, y)`` with the noise of paper eq. 3 drawn on the fly.

    Parameters
    ----------
    flux, error : ndarray, shape (N, L)
        Clean normalized spectra and 1-sigma uncertainties.
    labels : array_like, shape (N,) or (N, k)
        Targets (already normalized by the caller, e.g. with :class:`LabelScaler`).
    noise : {"fresh", "fixed"}
        "fresh": a new realization every epoch, seeded by ``(seed, epoch, index)`` (call :meth:`set_epoch`);
        "fixed": one realization seeded by ``(seed, index)``, identical on every call (validation/test).
    seed : int
        Noise seed.
    alpha : float
        Noise-level scaling, >= 0 (0 disables the noise, as for fine-tuning on real spectra).

    Raises
    ------
    ValueError
        Unknown ``noise``, negative or non-finite ``alpha``, or lengths/shapes that disagree.
    """

    def __init__(self, flux, error, labels, *, noise: str = "fresh", seed: int = FIXED_NOISE_SEED,
                 alpha: float = 1.0):
        if noise not in ("fresh", "fixed"):
            raise ValueError(f"noise must be 'fresh' or 'fixed'; got {noise!r}")
        if not (np.isfinite(alpha) and alpha >= 0):
            raise ValueError(f"alpha must be a finite number >= 0; got {alpha!r}")
        labels = np.asarray(labels, dtype=np.float32)
        self.flux = np.asarray(flux, dtype=np.float32)
        self.error = np.asarray(error, dtype=np.float32)
        self.labels = labels.reshape(len(labels), -1)  # (N, k)
        if self.flux.ndim != 2 or self.error.shape != self.flux.shape or len(self.labels) != len(self.flux):
            raise ValueError(f"flux and error must both be (N, L) and labels N long; got flux {self.flux.shape}, "
                             f"error {self.error.shape}, labels {labels.shape}")
        self.noise, self.seed, self.alpha, self.epoch = noise, int(seed), float(alpha), 0

    def set_epoch(self, epoch: int) -> None:
        """Select the training noise realization (ignored for ``noise="fixed"``).

        Parameters
        ----------
        epoch : int
            Epoch number; the noise of sample ``i`` is seeded by ``(seed, epoch, i)``.
        """
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.flux)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        key = (self.seed, i) if self.noise == "fixed" else (self.seed, self.epoch, i)
        x = noisy_spectrum(self.flux[i], self.error[i], np.random.default_rng(key), self.alpha)
        return torch.from_numpy(x), torch.from_numpy(self.labels[i])


class LabelScaler:
    """z-score label normalization with training-set statistics (paper eq. 16).

    ``fit`` computes the mean and (population) standard deviation; ``transform`` and ``inverse`` apply
    ``y' = (y - mean) / std`` and its inverse. ``state_dict``/``from_state_dict`` store it in a checkpoint.

    Parameters
    ----------
    mean, std : float, optional
        Statistics of a fitted scaler (None: unfitted, call :meth:`fit`).
    """

    def __init__(self, mean: float | None = None, std: float | None = None):
        self.mean, self.std = mean, std

    def fit(self, y) -> LabelScaler:
        """Fit the mean and population standard deviation to training labels.

        Parameters
        ----------
        y : array_like
            Training labels.

        Returns
        -------
        LabelScaler
            ``self``, fitted.

        Raises
        ------
        ValueError
            If ``y`` is empty, non-finite or constant.
        """
        y = np.asarray(y, dtype=np.float64)
        if y.size == 0 or not np.isfinite(y).all():
            raise ValueError(f"labels must be a non-empty finite array; got {y.size} values, "
                             f"{np.count_nonzero(~np.isfinite(y))} non-finite")
        self.mean, self.std = float(y.mean()), float(y.std())
        if self.std == 0:
            raise ValueError(f"labels are constant ({self.mean}); a z-score needs a non-zero spread")
        return self

    def _check_fitted(self):
        if self.mean is None:
            raise RuntimeError("LabelScaler is not fitted; call fit(train_labels) first")

    def transform(self, y) -> np.ndarray:
        """Normalize labels: ``(y - mean) / std``.

        Parameters
        ----------
        y : array_like
            Labels in physical units.

        Returns
        -------
        ndarray, float64, same shape
            z-scored labels.

        Raises
        ------
        RuntimeError
            If the scaler is not fitted.
        """
        self._check_fitted()
        return (np.asarray(y, dtype=np.float64) - self.mean) / self.std

    def inverse(self, y) -> np.ndarray:
        """Undo the normalization: ``y * std + mean``.

        Parameters
        ----------
        y : array_like
            z-scored labels (e.g. network outputs).

        Returns
        -------
        ndarray, float64, same shape
            Labels in physical units.

        Raises
        ------
        RuntimeError
            If the scaler is not fitted.
        """
        self._check_fitted()
        return np.asarray(y, dtype=np.float64) * self.std + self.mean

    def state_dict(self) -> dict:
        """The scaler's statistics, for a checkpoint.

        Returns
        -------
        dict
            ``{"mean": float or None, "std": float or None}``.
        """
        return {"mean": self.mean, "std": self.std}

    @classmethod
    def from_state_dict(cls, state: dict) -> LabelScaler:
        """Rebuild a scaler from :meth:`state_dict` output.

        Parameters
        ----------
        state : dict
            With keys ``mean`` and ``std``.

        Returns
        -------
        LabelScaler
            The restored scaler.

        Raises
        ------
        KeyError
            If ``state`` lacks ``mean`` or ``std``.
        """
        return cls(state["mean"], state["std"])
