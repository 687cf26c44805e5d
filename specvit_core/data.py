"""The HDF5 splits (writing and reading), the torch Datasets with on-the-fly noise (paper eq. 3), label normalization.

A dataset is a folder with ``train_000.h5, train_001.h5, ...`` (shards, concatenated in order), ``val.h5`` and
``test.h5`` in the paper's schema (appendix L.9/K.2), written by :class:`SpectraWriter`. The flux stored there is
the clean, median-normalized spectrum; the datasets draw the observational noise ``x + alpha * eps * sigma``
(:func:`noisy_rows`) when a batch is read: a fresh realization every epoch for training, one fixed realization
(seed 42) for validation and test. :class:`NoisySpectra` holds a split in memory; :class:`ShardedSpectra` streams
it from its files, so that a million spectra (32 GB of flux and error) train in constant memory;
:func:`split_dataset` picks one by size.
"""
from __future__ import annotations

import contextlib
import contextvars
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from . import files

SPLITS = ("train", "val", "test")
WAVE_KEY = "spectrumdataset/wave"
FLUX_KEY = "dataset/arrays/flux/value"
ERROR_KEY = "dataset/arrays/error/value"
PARAMS_KEY = "dataset/params"
MANIFEST = "manifest.json"  # the dataset's description: configuration, grid identity, files with sizes and SHA-256
FIXED_NOISE_SEED = 42  # validation and test noise (methods draft, section 3.4)
LABEL_COLUMNS = ("T_eff", "log_g", "M_H")  # the label columns checked where a params table has them
_BLOCK = 4096  # rows checked at a time by check_values: bounds the memory of its masks
_NOISE_ROWS = 64  # rows whose noise noisy_rows draws at a time: its temporary arrays stay in the CPU cache
IN_MEMORY_BYTES = 2 * 2**30  # split_dataset holds a split in memory when its flux and error take at most this

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


def _check_layout(f: h5py.File, path: Path, split: str) -> int:
    """The number of spectra of an open split file, once its split attribute, datasets and shapes are checked."""
    if f.attrs.get("split", split) != split:
        raise ValueError(f"{path}: the file says split={f.attrs['split']!r} but is read as {split!r}; "
                         "files of different splits must not be swapped (leakage)")
    for key in (WAVE_KEY, FLUX_KEY, ERROR_KEY, PARAMS_KEY):
        if not isinstance(f.get(key), h5py.Dataset):
            raise ValueError(f"{path}: missing HDF5 dataset {key!r} (paper schema, appendix L.9)")
    wave, flux, error, table = (f[key] for key in (WAVE_KEY, FLUX_KEY, ERROR_KEY, PARAMS_KEY))
    if table.dtype.names is None:
        raise ValueError(f"{path}: {PARAMS_KEY!r} must be a compound (table) dataset; got dtype {table.dtype}")
    if len(flux.shape) != 2 or flux.shape[1:] != wave.shape or error.shape != flux.shape or \
            table.shape != flux.shape[:1]:
        raise ValueError(f"{path}: shapes disagree: wave {wave.shape}, flux {flux.shape}, error {error.shape}, "
                         f"params {table.shape}; the rule is flux and error (N, len(wave)), params N rows")
    return flux.shape[0]


def split_layout(dataset_dir, split: str, max_rows: int | None = None) -> list[tuple[Path, int]]:
    """The files of a split and how many rows of each its first ``max_rows`` spectra take, layouts checked.

    Parameters
    ----------
    dataset_dir : str or Path
        Dataset folder.
    split : {"train", "val", "test"}
        The split.
    max_rows : int, optional
        Keep only the first ``max_rows`` spectra (None: all).

    Returns
    -------
    list of (Path, int)
        Each file (train shards in order) with the rows used, files beyond ``max_rows`` left out.

    Raises
    ------
    ValueError
        Unknown split, non-positive ``max_rows``, a file whose ``split`` attribute names another split, a missing
        HDF5 dataset, shapes that disagree (also the wavelengths between shards).
    FileNotFoundError
        Missing folder or split files.
    RuntimeError
        The test split inside :func:`lock_test_split` (during training).
    """
    if max_rows is not None and max_rows < 1:
        raise ValueError(f"max_rows must be a positive integer or None; got {max_rows!r}")
    if split == "test" and _test_locked.get():
        raise RuntimeError(TEST_LOCKED_MESSAGE)
    layout, first_wave = [], None
    for path in split_files(dataset_dir, split):
        left = None if max_rows is None else max_rows - sum(n for _, n in layout)
        if left == 0:
            break
        with open_split_file(path) as f:
            n, wave = _check_layout(f, path, split), f[WAVE_KEY][:]
        if first_wave is not None and not np.array_equal(wave, first_wave):
            raise ValueError(f"{path}: wavelength grid differs from that of {layout[0][0]}")
        first_wave = wave if first_wave is None else first_wave
        layout.append((path, n if left is None else min(n, left)))
    return layout


def _read_file(path: Path, n: int) -> SpectraSplit:
    """The first ``n`` rows of one split file (layout checked by :func:`split_layout`), with their values checked."""
    with open_split_file(path) as f:
        wave = f[WAVE_KEY][:]
        flux = f[FLUX_KEY][:n].astype(np.float32, copy=False)
        error = f[ERROR_KEY][:n].astype(np.float32, copy=False)
        table = f[PARAMS_KEY][:n]
    params = pd.DataFrame({k: table[k].astype(str) if table[k].dtype.kind == "S" else table[k]
                           for k in table.dtype.names})
    check_values(path, flux, error, table)
    return SpectraSplit(wave, flux, error, params)


def check_values(where, flux, error, params, first_row=0) -> None:
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
    params : numpy structured array (N,) or None
        The params table (None: no labels to check).
    first_row : int or array of int (N,)
        Row of the file that row 0 of the arrays is, or the file row of each row (for the message).

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
    for name in (k for k in LABEL_COLUMNS if params is not None and k in (params.dtype.names or ())):
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


def _refuse(where, field: str, bad: np.ndarray, first_row, value, rule: str) -> None:
    """Raise the ValueError of :func:`check_values` for the per-row bad counts ``bad`` of ``field``."""
    rows = np.flatnonzero(bad)
    row = first_row + rows[0] if np.ndim(first_row) == 0 else first_row[rows[0]]
    raise ValueError(f"{where}: {field} has {int(bad.sum())} bad values in {rows.size} of {bad.size} spectra "
                     f"(first bad row {row}, value {float(value):.6g}); the rule is: {rule}")


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
    parts = [_read_file(path, n) for path, n in split_layout(dataset_dir, split, max_rows)]
    if len(parts) == 1:
        return parts[0]
    return SpectraSplit(parts[0].wave, np.concatenate([p.flux for p in parts]),
                        np.concatenate([p.error for p in parts]),
                        pd.concat([p.params for p in parts], ignore_index=True))


def _noise_key(seed: int, epoch: int | None) -> np.ndarray:
    """The 128-bit Philox key of the noise of ``(seed, epoch)``; ``epoch=None`` is the fixed noise of ``seed``."""
    if seed < 0 or (epoch is not None and epoch < 0):
        raise ValueError(f"the noise seed and epoch must be integers >= 0; got seed {seed!r}, epoch {epoch!r}")
    stream = (0,) if epoch is None else (1, int(epoch))  # the fixed and the per-epoch noises never share a key
    return np.random.SeedSequence(int(seed), spawn_key=stream).generate_state(2, np.uint64)


def _standard_normal_rows(key: np.ndarray, rows: np.ndarray, n: int) -> np.ndarray:
    """eps ~ N(0, 1), float32 (len(rows), n): row ``i`` from its own counters ``i * 2**64, ...`` of the Philox stream
    ``key``, 2 * ceil(n / 2) 32-bit words turned into n normals by the Box-Muller transform."""
    half = (n + 1) // 2
    unique, inverse = np.unique(rows, return_inverse=True)
    bits, bitgen, position = np.empty((len(unique), half), np.uint64), np.random.Philox(key=key), 0
    for j, row in enumerate(unique.tolist()):
        bitgen.advance((row << 64) - position)  # counter-based: jump to the row's block
        bits[j] = bitgen.random_raw(half)
        position = (row << 64) + (half + 3) // 4  # each counter step gives 4 words of 64 bits
    words = bits[inverse].astype("<u8", copy=False).view("<u4")  # (len(rows), 2 * half), the same on any machine
    uniform = (words >> 8).view(np.int32).astype(np.float32) * np.float32(2.0**-24)  # 24-bit, in [0, 1)
    radius = np.sqrt(np.float32(-2) * np.log1p(-uniform[:, :half]))  # |eps| <= 5.77
    angle = np.float32(2 * np.pi) * uniform[:, half:]
    return np.concatenate([radius * np.cos(angle), radius * np.sin(angle)], axis=1)[:, :n]


def noisy_rows(flux, error, rows, seed: int, epoch: int | None = None, alpha: float = 1.0) -> np.ndarray:
    """Noisy inputs ``max(x + alpha * eps * sigma, 0)`` (paper eq. 3) of rows of a split, drawn a block at a time.

    The noise of row ``i`` depends only on ``(seed, epoch, i)``: a counter-based Philox stream keyed by ``(seed,
    epoch)``, in which row ``i`` owns its own block, so a row gets the same noise alone or in any batch, and a
    prefix of a split keeps its noise. ``eps`` is standard normal (Box-Muller on 24-bit uniforms: ``|eps| <= 5.77``).
    Every input of the networks and of the Ridge and LightGBM baselines is drawn here.

    Parameters
    ----------
    flux, error : array (B, L)
        Clean normalized flux and its 1-sigma uncertainty of the rows.
    rows : array of int (B,)
        Their row numbers in the split (>= 0), which select the noise.
    seed : int
        Noise seed (>= 0).
    epoch : int or None
        Training epoch (>= 0), a new realization each; None: the one fixed realization of ``seed`` (validation, test).
    alpha : float
        Noise-level scaling; 0 returns ``flux`` clipped at 0 whatever ``error`` holds (e.g. ``inf``).

    Returns
    -------
    ndarray, float32, shape (B, L)
        The noisy flux, negative values clipped at 0.

    Raises
    ------
    ValueError
        If ``flux`` is not 2-D, ``error`` has another shape, ``rows`` is not one non-negative integer per row, or
        ``seed`` or ``epoch`` is negative.
    """
    flux, error, rows = np.asarray(flux, np.float32), np.asarray(error, np.float32), np.asarray(rows)
    if flux.ndim != 2 or error.shape != flux.shape or rows.shape != (len(flux),) or rows.dtype.kind not in "iu" or \
            (rows.size and rows.min() < 0):
        raise ValueError(f"flux and error must both be (B, L) and rows B integers >= 0; got flux {flux.shape}, "
                         f"error {error.shape}, rows {rows.shape} of {rows.dtype}")
    if alpha == 0:  # observed spectra (noise already in them) may carry sigma = inf where they have no data
        return np.maximum(flux, 0, dtype=np.float32)
    key, noisy = _noise_key(seed, epoch), np.empty_like(flux)
    for start in range(0, len(flux), _NOISE_ROWS):  # blocks that stay in the CPU cache
        block = slice(start, start + _NOISE_ROWS)
        eps = _standard_normal_rows(key, rows[block].astype(np.int64), flux.shape[1])
        np.maximum(flux[block] + np.float32(alpha) * eps * error[block], 0, out=noisy[block])
    return noisy


def fixed_noisy(flux: np.ndarray, error: np.ndarray, seed: int = FIXED_NOISE_SEED, alpha: float = 1.0) -> np.ndarray:
    """The fixed noisy array that ``NoisySpectra(..., noise="fixed", seed=seed)`` serves, row by row.

    The noise of row ``i`` depends only on ``(seed, i)`` (:func:`noisy_rows`), so baselines (Ridge, LightGBM) see
    exactly the same validation/test inputs as the networks, and a prefix of a split keeps its noise.

    Parameters
    ----------
    flux, error : ndarray, shape (N, L)
        Clean normalized spectra and their 1-sigma uncertainties.
    seed : int
        Noise seed (42 for validation and test).
    alpha : float
        Noise-level scaling (see :func:`noisy_rows`).

    Returns
    -------
    ndarray, float32, shape (N, L)
        Noisy flux, clipped at 0.

    Raises
    ------
    ValueError
        If ``flux`` and ``error`` differ in shape.
    """
    return noisy_rows(flux, error, np.arange(len(flux)), seed, None, alpha)


class _NoisyRows(Dataset):
    """Samples ``(x_noisy, y)`` of a split whose clean rows a subclass reads (:meth:`_clean_rows`), noise drawn per
    batch by :func:`noisy_rows`; torch's DataLoader fetches a whole batch through :meth:`__getitems__`."""

    def __init__(self, n_rows: int, labels, noise: str, seed: int, alpha: float):
        if noise not in ("fresh", "fixed"):
            raise ValueError(f"noise must be 'fresh' or 'fixed'; got {noise!r}")
        if not (np.isfinite(alpha) and alpha >= 0):
            raise ValueError(f"alpha must be a finite number >= 0; got {alpha!r}")
        labels = np.asarray(labels, dtype=np.float32)
        if len(labels) != n_rows:
            raise ValueError(f"labels must be one per spectrum: {n_rows} spectra, labels {labels.shape}")
        self.labels = labels.reshape(n_rows, -1)  # (N, k)
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
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.__getitems__([i])[0]

    def __getitems__(self, indices) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The samples of a batch of indices: their clean rows read at once, their noise drawn at once."""
        rows = np.asarray(indices, dtype=np.int64)
        if rows.size and not 0 <= rows.min() <= rows.max() < len(self):
            raise IndexError(f"sample indices must lie in [0, {len(self)}); got {rows.min()} .. {rows.max()}")
        flux, error = self._clean_rows(rows)
        x = noisy_rows(flux, error, rows, self.seed, None if self.noise == "fixed" else self.epoch, self.alpha)
        return list(zip(torch.from_numpy(x), torch.from_numpy(self.labels[rows]), strict=True))

    def _clean_rows(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(flux, error), float32 (len(rows), L), of the split's rows ``rows``."""
        raise NotImplementedError


class NoisySpectra(_NoisyRows):
    """Samples ``(x_noisy, y)`` of spectra held in memory, with the noise of paper eq. 3 drawn on the fly.

    Parameters
    ----------
    flux, error : ndarray, shape (N, L)
        Clean normalized spectra and 1-sigma uncertainties.
    labels : array_like, shape (N,) or (N, k)
        Targets (already normalized by the caller, e.g. with :class:`LabelScaler`).
    noise : {"fresh", "fixed"}
        "fresh": a new realization every epoch, drawn for ``(seed, epoch, index)`` (call :meth:`set_epoch`);
        "fixed": one realization for ``(seed, index)``, identical on every call (validation/test). See
        :func:`noisy_rows`.
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
        self.flux = np.asarray(flux, dtype=np.float32)
        self.error = np.asarray(error, dtype=np.float32)
        if self.flux.ndim != 2 or self.error.shape != self.flux.shape or len(labels) != len(self.flux):
            raise ValueError(f"flux and error must both be (N, L) and labels N long; got flux {self.flux.shape}, "
                             f"error {self.error.shape}, labels {np.shape(labels)}")
        super().__init__(len(self.flux), labels, noise, seed, alpha)

    def _clean_rows(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.flux[rows], self.error[rows]


class ShardedSpectra(_NoisyRows):
    """Samples ``(x_noisy, y)`` streamed from a split's HDF5 files (train shards in order): memory does not grow
    with the number of spectra.

    The files' layout is checked on construction (as :func:`read_split` does); the rows of a batch are read when it
    is fetched, with one fancy-indexed read per file (rows sorted), and their values checked then
    (:func:`check_values`). Every process opens its own read-only ``h5py.File`` handles on first use (a DataLoader
    worker, forked or spawned, never uses its parent's; pickling leaves them behind). Noise as :class:`NoisySpectra`:
    the same samples for the same rows, seed and epoch. Random rows read fastest from uncompressed files (contiguous
    layout); from a compressed file each row decompresses its whole chunk.

    Parameters
    ----------
    dataset_dir : str or Path
        Dataset folder.
    split : {"train", "val", "test"}
        The split.
    labels : array_like, shape (N,) or (N, k)
        Targets of its first N rows (e.g. normalized :func:`read_labels`).
    max_rows : int, optional
        Use only the first ``max_rows`` spectra (N).
    noise, seed, alpha
        As :class:`NoisySpectra`.

    Raises
    ------
    ValueError, FileNotFoundError, RuntimeError
        As :func:`read_split` for the layout of the files (values are checked as batches are read); ``labels`` not N
        long; bad ``noise`` or ``alpha``.
    """

    def __init__(self, dataset_dir, split: str, labels, *, max_rows: int | None = None, noise: str = "fresh",
                 seed: int = FIXED_NOISE_SEED, alpha: float = 1.0):
        layout = split_layout(dataset_dir, split, max_rows)
        self.paths = [path for path, _ in layout]
        self.starts = np.cumsum([0] + [n for _, n in layout])  # first row of each file in the split
        with open_split_file(self.paths[0]) as f:
            self.n_pixels = f[FLUX_KEY].shape[1]
        self._handles, self._owner = None, None
        super().__init__(int(self.starts[-1]), labels, noise, seed, alpha)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_handles": None, "_owner": None}  # h5py handles stay in their process

    def _files(self) -> list[tuple[h5py.Dataset, h5py.Dataset]]:
        """(flux, error) datasets of each file, opened in this process on first use."""
        if self._owner != os.getpid():  # first use here, or a forked child holding its parent's handles
            self._handles = [(f[FLUX_KEY], f[ERROR_KEY]) for f in map(open_split_file, self.paths)]
            self._owner = os.getpid()
        return self._handles

    def _clean_rows(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        flux, error = (np.empty((len(rows), self.n_pixels), np.float32) for _ in range(2))
        shard = np.searchsorted(self.starts, rows, side="right") - 1
        for k in np.unique(shard):
            where = np.flatnonzero(shard == k)
            local, inverse = np.unique(rows[where] - self.starts[k], return_inverse=True)  # increasing, for h5py
            flux_rows, error_rows = (dataset[local] for dataset in self._files()[k])
            check_values(self.paths[k], flux_rows, error_rows, None, first_row=local)
            flux[where], error[where] = flux_rows[inverse], error_rows[inverse]
        return flux, error


def read_labels(dataset_dir, split: str, name: str | Sequence[str] = "log_g",
                max_rows: int | None = None) -> np.ndarray:
    """One label column of a split, or several side by side, read without its spectra (train shards in order).

    Parameters
    ----------
    dataset_dir : str or Path
        Dataset folder.
    split : {"train", "val", "test"}
        The split.
    name : str or sequence of str
        Column of the params table, e.g. ``"log_g"``, ``"T_eff"``, ``"M_H"``; or several (a joint-label run).
    max_rows : int, optional
        Only the first ``max_rows`` spectra.

    Returns
    -------
    ndarray, float64, shape (N,) for one name, (N, k) for a sequence of k names
        The column, equal to ``read_split(dataset_dir, split, max_rows).labels(name)``; for a sequence, those
        columns in its order.

    Raises
    ------
    KeyError
        A params table without the column ``name`` (the message lists the columns).
    ValueError
        As :func:`split_layout`; a column that is not numeric and finite.
    FileNotFoundError, RuntimeError
        As :func:`split_layout`.
    """
    names = [name] if isinstance(name, str) else list(name)
    per_file = []  # per file: one array per name
    for path, n in split_layout(dataset_dir, split, max_rows):
        with open_split_file(path) as f:
            table = f[PARAMS_KEY]
            for label in names:
                if label not in table.dtype.names:
                    raise KeyError(f"Unknown label {label!r}; the params table of {path} has: "
                                   f"{', '.join(table.dtype.names)}")
            per_file.append([table.fields(label)[:n] for label in names])
    columns = [_checked_label(dataset_dir, split, label, np.concatenate(parts))
               for label, parts in zip(names, zip(*per_file), strict=True)]
    return columns[0] if isinstance(name, str) else np.stack(columns, axis=1)


def _checked_label(dataset_dir, split: str, name: str, labels: np.ndarray) -> np.ndarray:
    """A label column as float64, refused unless numeric and finite."""
    if labels.dtype.kind not in "iuf" or not np.isfinite(labels).all():
        raise ValueError(f"{dataset_dir}: the {name} column of the {split} split must be numeric and finite; got "
                         f"dtype {labels.dtype}" + (f", {np.count_nonzero(~np.isfinite(labels))} non-finite values"
                                                    if labels.dtype.kind in "iuf" else ""))
    return labels.astype(np.float64)


def split_dataset(dataset_dir, split: str, labels, *, max_rows: int | None = None, noise: str = "fresh",
                  seed: int = FIXED_NOISE_SEED, alpha: float = 1.0) -> NoisySpectra | ShardedSpectra:
    """The noisy samples of a split: held in memory (:class:`NoisySpectra`) when its flux and error take at most
    :data:`IN_MEMORY_BYTES`, streamed from its files (:class:`ShardedSpectra`) otherwise; both serve the same
    samples.

    Parameters
    ----------
    dataset_dir : str or Path
        Dataset folder.
    split : {"train", "val", "test"}
        The split.
    labels : array_like, shape (N,) or (N, k)
        Targets of its first N spectra (e.g. normalized :func:`read_labels`).
    max_rows : int, optional
        Use only the first ``max_rows`` spectra (N).
    noise, seed, alpha
        As :class:`NoisySpectra`.

    Returns
    -------
    NoisySpectra or ShardedSpectra

    Raises
    ------
    ValueError, FileNotFoundError, RuntimeError
        As :func:`read_split` (a streamed split checks its values as batches are read) and :class:`NoisySpectra`.
    """
    layout = split_layout(dataset_dir, split, max_rows)
    with open_split_file(layout[0][0]) as f:
        nbytes = 2 * 4 * sum(n for _, n in layout) * f[FLUX_KEY].shape[1]  # flux and error, float32
    options = dict(noise=noise, seed=seed, alpha=alpha)
    if nbytes > IN_MEMORY_BYTES:
        return ShardedSpectra(dataset_dir, split, labels, max_rows=max_rows, **options)
    data = read_split(dataset_dir, split, max_rows)
    return NoisySpectra(data.flux, data.error, labels, **options)


class LabelScaler:
    """z-score label normalization with training-set statistics (paper eq. 16), one mean and std per label.

    ``fit`` computes the mean and (population) standard deviation of each label: scalars for labels of shape (N,),
    arrays of shape (k,) for k labels side by side, shape (N, k) (a joint-label run). ``transform`` and ``inverse``
    apply ``y' = (y - mean) / std`` and its inverse column by column. ``state_dict``/``from_state_dict`` store it
    in a checkpoint (floats, or lists of k floats).

    Parameters
    ----------
    mean, std : float or array_like of shape (k,), optional
        Statistics of a fitted scaler (None: unfitted, call :meth:`fit`).
    """

    def __init__(self, mean: float | Sequence[float] | None = None, std: float | Sequence[float] | None = None):
        self.mean, self.std = _statistic(mean), _statistic(std)

    def fit(self, y) -> LabelScaler:
        """Fit the mean and population standard deviation of each label to training labels.

        Parameters
        ----------
        y : array_like, shape (N,) or (N, k)
            Training labels: one label, or k labels one per column.

        Returns
        -------
        LabelScaler
            ``self``, fitted: scalar statistics for ``y`` of shape (N,), arrays of shape (k,) for (N, k).

        Raises
        ------
        ValueError
            If ``y`` is empty, non-finite, not 1-D or 2-D, or a label is constant.
        """
        y = np.asarray(y, dtype=np.float64)
        if y.size == 0 or not np.isfinite(y).all() or y.ndim not in (1, 2):
            raise ValueError(f"labels must be a non-empty finite array of shape (N,) or (N, k); got shape {y.shape}, "
                             f"{np.count_nonzero(~np.isfinite(y))} non-finite")
        mean, std = y.mean(axis=0), y.std(axis=0)
        constant = np.flatnonzero(np.atleast_1d(std) == 0)
        if constant.size:
            where = "" if y.ndim == 1 else f"column {constant[0]}: "
            raise ValueError(f"labels are constant ({where}{np.atleast_1d(mean)[constant[0]]}); a z-score needs a "
                             "non-zero spread")
        self.mean, self.std = (float(mean), float(std)) if y.ndim == 1 else (mean, std)
        return self

    def _check_fitted(self, y: np.ndarray) -> None:
        if self.mean is None:
            raise RuntimeError("LabelScaler is not fitted; call fit(train_labels) first")
        if np.ndim(self.mean) and (y.ndim == 0 or y.shape[-1] != len(self.mean)):
            raise ValueError(f"The scaler holds {len(self.mean)} labels; labels must have shape (..., "
                             f"{len(self.mean)}), got {y.shape}")

    def transform(self, y) -> np.ndarray:
        """Normalize labels: ``(y - mean) / std``.

        Parameters
        ----------
        y : array_like
            Labels in physical units; for a scaler of k labels shape (..., k).

        Returns
        -------
        ndarray, float64, same shape
            z-scored labels.

        Raises
        ------
        RuntimeError
            If the scaler is not fitted.
        ValueError
            A scaler of k labels and ``y`` whose last axis is not k long.
        """
        y = np.asarray(y, dtype=np.float64)
        self._check_fitted(y)
        return (y - self.mean) / self.std

    def inverse(self, y) -> np.ndarray:
        """Undo the normalization: ``y * std + mean``.

        Parameters
        ----------
        y : array_like
            z-scored labels (e.g. network outputs); for a scaler of k labels shape (..., k).

        Returns
        -------
        ndarray, float64, same shape
            Labels in physical units.

        Raises
        ------
        RuntimeError
            If the scaler is not fitted.
        ValueError
            A scaler of k labels and ``y`` whose last axis is not k long.
        """
        y = np.asarray(y, dtype=np.float64)
        self._check_fitted(y)
        return y * self.std + self.mean

    def column(self, index: int) -> LabelScaler:
        """The scaler of one label alone.

        Parameters
        ----------
        index : int
            Position of the label (0 for a scalar scaler, whose only label it is).

        Returns
        -------
        LabelScaler
            A scalar scaler with that label's mean and std.

        Raises
        ------
        IndexError
            No label at ``index``.
        RuntimeError
            If the scaler is not fitted.
        """
        self._check_fitted(np.zeros(np.size(self.mean)))
        return LabelScaler(float(np.atleast_1d(self.mean)[index]), float(np.atleast_1d(self.std)[index]))

    def state_dict(self) -> dict:
        """The scaler's statistics, for a checkpoint.

        Returns
        -------
        dict
            ``{"mean": ..., "std": ...}``: floats (one label), lists of k floats (k labels), or None (unfitted).
        """
        return {key: value.tolist() if isinstance(value, np.ndarray) else value
                for key, value in (("mean", self.mean), ("std", self.std))}

    @classmethod
    def from_state_dict(cls, state: dict) -> LabelScaler:
        """Rebuild a scaler from :meth:`state_dict` output (also the scalar ones of older checkpoints).

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


def _statistic(value) -> float | np.ndarray | None:
    """A scaler statistic as stored: None, a float, or a float64 array of shape (k,) for a sequence."""
    if value is None or np.ndim(value) == 0:
        return None if value is None else float(value)
    return np.asarray(value, dtype=np.float64)
