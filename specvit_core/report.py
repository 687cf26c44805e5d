"""What the executed pages state: the profile that produced them, which run they show, and numbers as printed."""
from __future__ import annotations

import datetime
import platform

import pandas as pd

from . import __version__, runs
from .config import get_profile
from .models import FAMILIES


def profile_banner(profile: str) -> str:
    """A Markdown note naming the profile, its sizes and the machine; small profiles are marked as not the paper's.

    Parameters
    ----------
    profile : str
        Profile name (see :data:`specvit_core.config.PROFILES`).

    Returns
    -------
    str
        One Markdown blockquote line with the profile, device (GPU name or CPU), date and package version.

    Raises
    ------
    ValueError
        For an unknown profile.
    """
    p = get_profile(profile)
    import torch

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU ({platform.processor() or platform.machine()})"
    warning = ("" if p.name == "paper" else
               f" **These are small-profile results (`{p.name}`), not the paper's**: they show the method at reduced scale.")
    return (f"> Executed with profile **`{p.name}`** ({p.description}; {p.n_train:,} training spectra, model size "
            f"`{p.model_size}`) on {device}, {datetime.date.today().isoformat()}, specvit_core {__version__}."
            f"{warning}")


#: A run whose R^2 stays below this has not left the constant-prediction plateau (it predicts about the mean label).
PLATEAU_R2 = 0.05


def plateau_warning(r2_values, experiment: str, threshold: float = PLATEAU_R2) -> str:
    """A Markdown warning when no run of an experiment left the constant-prediction plateau, else "".

    A network that predicts the mean label for every spectrum scores R^2 ~ 0; when every run of an experiment
    stays below ``threshold``, the comparison between its runs says nothing about the architectures.

    Parameters
    ----------
    r2_values : iterable of float
        Test R^2 of the experiment's runs; NaN (diverged runs) is ignored.
    experiment : str
        Name of the experiment in the message.
    threshold : float
        R^2 that at least one run must reach.

    Returns
    -------
    str
        A Markdown blockquote, or "" when some run reached ``threshold``.
    """
    values = [v for v in r2_values if v == v]  # NaN for runs that diverged
    if values and max(values) >= threshold:
        return ""
    return (f"> **No run of {experiment} left the constant-prediction plateau at this profile** (best test R² "
            f"{max(values, default=float('nan')):.3f} < {threshold}): the differences above are noise. Run the "
            f"chapter at `cpu` or `paper` for a meaningful comparison.")


def best_network(run_dirs: dict) -> str | None:
    """The network with the highest test R^2; only runs whose metadata name a network family compete.

    The family comes from each run's ``config.json`` (:func:`specvit_core.runs.run_family`), so the baselines
    (LightGBM, Ridge, template fitting) never qualify, whatever their names or scores.

    Parameters
    ----------
    run_dirs : dict
        Run name -> run folder holding test results (see :func:`specvit_core.runs.list_runs`).

    Returns
    -------
    str or None
        The best network's name; None when no run is a network.

    Raises
    ------
    FileNotFoundError
        A run without ``config.json`` or test metrics.
    """
    scores = {name: runs.read_metrics(folder)["r2"] for name, folder in run_dirs.items()
              if runs.run_family(folder)[0] in FAMILIES}
    return max(scores, key=scores.get, default=None)


def rounded(table, decimals: int = 3):
    """``round`` for display, with the negative zeros of small negative values shown as 0.0.

    Parameters
    ----------
    table : pandas.DataFrame, pandas.Series or float
        Numbers to show; columns that are not floating point are left as they are.
    decimals : int
        Decimal places.

    Returns
    -------
    pandas.DataFrame, pandas.Series or float
        A rounded copy in which no float prints as "-0.0" (a Python float for a number, as ``glue`` wants it).
    """
    if not isinstance(table, (pd.Series, pd.DataFrame)):
        return round(float(table), decimals) + 0.0  # IEEE 754: -0.0 + 0.0 is +0.0
    table = table.round(decimals)
    if isinstance(table, pd.Series):
        return table + 0.0 if pd.api.types.is_float_dtype(table) else table
    floats = table.select_dtypes("floating").columns
    table[floats] = table[floats] + 0.0
    return table
