"""Profiles that size every computation, and the folders where data and runs live.

One parameter, ``profile``, scales the whole supplement from a CI smoke test to the paper's GPU runs.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Profile:
    """Sizes of the data, the models and the training for one profile.

    Parameters
    ----------
    name : str
        Profile name (smoke, quick, cpu, paper).
    n_train, n_val, n_test : int
        Training spectra in total (split into ``n_shards`` files), validation and test spectra.
    n_shards : int
        Number of training files.
    model_size : str
        Size passed to :func:`specvit_core.models.build_model` (smoke, quick, cpu, paper).
    epochs, batch_size : int
        Training epochs and batch size.
    patience : int
        Early-stopping patience in epochs.
    lr_scale : float
        Peak learning rate over Table 1's value for the family (1 at ``paper``: the paper's settings).
    warmup_epochs : float
        Linear learning-rate warm-up before the cosine decay (0 at ``paper``: cosine from the first step).
    description : str
        Who the profile is for and what it costs (shown in the page banners).
    """

    name: str
    n_train: int  # training spectra in total (split into ``n_shards`` files)
    n_val: int
    n_test: int
    n_shards: int
    model_size: str  # size passed to ``build_model`` (smoke, quick, cpu, paper)
    epochs: int
    batch_size: int
    patience: int  # early-stopping patience in epochs
    lr_scale: float  # peak learning rate / Table 1's
    warmup_epochs: float  # linear warm-up before the cosine decay
    description: str

    def to_dict(self) -> dict:
        """The profile as a plain dict, field name -> value.

        Returns
        -------
        dict
        """
        return asdict(self)


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile("smoke", 384, 128, 256, 2, "smoke", 2, 64, 2, 1.0, 0.0,
                "tests and nbval in CI: hundreds of spectra, tiny models, seconds per notebook"),
        Profile("quick", 6000, 500, 2000, 2, "quick", 12, 32, 4, 1.0, 0.0,
                "a newcomer on a laptop (make book): small models of the paper's topology, ~40 min for the book on 2 cores"),
        Profile("cpu", 50_000, 1000, 10_000, 5, "cpu", 40, 128, 8, 1.0, 0.0,
                "a many-core workstation or a small GPU: tens of thousands of spectra, ~1M-parameter models"),
        Profile("paper", 200_000, 1000, 10_000, 5, "paper", 200, 256, 20, 1.0, 0.0,
                "a GPU: the paper's N = 2e5 training set, ~4.8M-parameter models, the paper's epochs"),
    )
}
DEFAULT_PROFILE = "quick"

#: The label box of the simulated spectra (paper Table 2): the simulator's default ranges and the Fisher ceiling grid.
LABEL_RANGES = {"T_eff": (3750.0, 6000.0), "log_g": (1.0, 5.0), "M_H": (-2.5, 0.75)}


def get_profile(name: str) -> Profile:
    """The profile called ``name``.

    Parameters
    ----------
    name : str
        One of ``PROFILES`` (smoke, quick, cpu, paper).

    Returns
    -------
    Profile

    Raises
    ------
    ValueError
        For an unknown name (the message lists the valid ones).
    """
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(
            f"Unknown profile {name!r}; valid profiles are: {', '.join(PROFILES)}"
        ) from None


def project_root() -> Path:
    """Folder under which ``data/`` and ``runs/`` are created.

    ``$SPECVIT_HOME`` when set; otherwise the checkout that contains the working directory (the first
    ancestor holding ``_toc.yml`` and ``specvit_core``); otherwise ``~/.specvit``.

    Returns
    -------
    Path
        An absolute path (not necessarily existing).
    """
    env = os.environ.get("SPECVIT_HOME")
    if env:
        return Path(env).expanduser().resolve()
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "_toc.yml").is_file() and (folder / "specvit_core").is_dir():
            return folder
    return Path.home() / ".specvit"


def data_dir(profile: str) -> Path:
    """Folder of the simulated dataset of a profile.

    Parameters
    ----------
    profile : str
        Profile name (see :data:`PROFILES`).

    Returns
    -------
    Path
        ``<root>/data/<profile>`` (see :func:`project_root`).

    Raises
    ------
    ValueError
        For an unknown profile.
    """
    return project_root() / "data" / get_profile(profile).name


def runs_dir(profile: str) -> Path:
    """Folder of the training runs of a profile.

    Parameters
    ----------
    profile : str
        Profile name (see :data:`PROFILES`).

    Returns
    -------
    Path
        ``<root>/runs/<profile>`` (see :func:`project_root`).

    Raises
    ------
    ValueError
        For an unknown profile.
    """
    return project_root() / "runs" / get_profile(profile).name


def cache_dir() -> Path:
    """Folder of cached template grids.

    Returns
    -------
    Path
        ``<root>/data/cache`` (see :func:`project_root`).
    """
    return project_root() / "data" / "cache"


def require_integer(name: str, value, minimum: int | None = None) -> int:
    """A configuration field that must be an integer (a papermill ``-r`` parameter arrives as a string).

    Parameters
    ----------
    name : str
        The field, named in the message.
    value : object
        Its value; bool and float are refused.
    minimum : int, optional
        Smallest allowed value.

    Returns
    -------
    int
        ``value`` as a Python int.

    Raises
    ------
    ValueError
        ``"The <name> parameter, <value>, must be <rule>"``.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or (
            minimum is not None and value < minimum):
        rule = "an integer" if minimum is None else "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"The {name} parameter, {value!r}, must be {rule}")
    return int(value)
