"""What every executed page states: the profile that produced it, the machine, and the versions."""
from __future__ import annotations

import datetime
import platform

from . import __version__
from .config import get_profile


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


def plateau_warning(r2_values, experiment: str, threshold: float = 0.05) -> str:
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
