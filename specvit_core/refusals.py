"""What a user sees when the data are wrong: each bad-input case of chapter 08, produced on a copy of a dataset.

Every case damages a fresh copy of a real dataset folder the way it happens in practice (a stale shard, an edited
file, a negated spectrum, ...) and calls the package as a user would; the table records the exception and its
message. Nothing here catches an error that the package does not raise: a case whose call succeeds is reported
as "accepted", which chapter 08 would show.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from .data import ERROR_KEY, FLUX_KEY, PARAMS_KEY, lock_test_split, read_split
from .simulate import SimulationConfig, check_within_grid
from .verify import check_contract, verify_dataset


def _stale_shard(folder: Path) -> None:
    shutil.copy(folder / "val.h5", folder / "train_999.h5")
    check_contract(folder, ("train", "val"))


def _edited_bytes(folder: Path) -> None:
    with h5py.File(folder / "val.h5", "r+") as f:
        f[FLUX_KEY][0, :10] *= 1.01
    report = verify_dataset(folder, contents=False)
    if not report.ok:
        raise ValueError(str(report.errors[0]))


def _damaged(key: str, change):
    """A case that applies ``change`` to the array ``key`` of val.h5 in place, then reads the split."""
    def case(folder: Path) -> None:
        with h5py.File(folder / "val.h5", "r+") as f:
            values = f[key][:]
            f[key][...] = change(values)
        read_split(folder, "val")
    return case


def _label_nan(params: np.ndarray) -> np.ndarray:
    params["log_g"][1] = np.nan
    return params


def _zero_row(error: np.ndarray) -> np.ndarray:
    error[2] = 0.0
    return error


CASES = {
    "stale shard of an earlier generation": _stale_shard,
    "file changed after it was written": _edited_bytes,
    "zero errors in one spectrum": _damaged(ERROR_KEY, _zero_row),
    "negative errors": _damaged(ERROR_KEY, np.negative),
    "negated flux": _damaged(FLUX_KEY, np.negative),
    "NaN label": _damaged(PARAMS_KEY, _label_nan),
    "test split read during training": lambda folder: _read_test_in_training(folder),
    "configuration value of the wrong type (papermill string)": lambda folder: SimulationConfig(
        n_train="6000", n_val=1, n_test=1),
}


def _read_test_in_training(folder: Path) -> None:
    with lock_test_split():
        read_split(folder, "test")


def refusal_table(dataset_dir, grid=None) -> pd.DataFrame:
    """Run every case of :data:`CASES` on its own copy of a dataset and record what the user sees.

    Parameters
    ----------
    dataset_dir : str or Path
        A dataset folder made by :func:`specvit_core.simulate.generate_dataset`; it is copied, never changed.
    grid : TemplateGrid, optional
        With a grid, one more case: label ranges outside it.

    Returns
    -------
    pandas.DataFrame
        Index the case; ``exception`` (its class, or "accepted") and ``message`` (its lines joined, the copy's
        folder shown as ``<dataset>``).
    """
    cases = dict(CASES)
    if grid is not None:
        cases["label range outside the template grid"] = lambda folder: check_within_grid(
            SimulationConfig(n_train=1, n_val=1, n_test=1, teff_range=(3000.0, 6000.0)), grid)
    rows = {}
    with tempfile.TemporaryDirectory() as work:
        for i, (name, case) in enumerate(cases.items()):
            copy = Path(shutil.copytree(dataset_dir, Path(work) / str(i)))
            try:
                case(copy)
                rows[name] = dict(exception="accepted", message="")
            except (ValueError, RuntimeError, FileNotFoundError, FileExistsError) as err:
                message = " / ".join(line.strip() for line in str(err).splitlines()[:2])
                rows[name] = dict(exception=type(err).__name__, message=message.replace(str(copy), "<dataset>"))
    return pd.DataFrame.from_dict(rows, orient="index")
