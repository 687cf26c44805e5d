"""What every executed page states: the profile that produced it, the machine, and the versions."""
from __future__ import annotations

import datetime
import platform

from . import __version__
from .config import get_profile


def profile_banner(profile: str) -> str:
    """A Markdown note naming the profile, its sizes and the machine; small profiles are marked as not the paper's."""
    p = get_profile(profile)
    import torch

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU ({platform.processor() or platform.machine()})"
    warning = ("" if p.name == "paper" else
               f" **These are small-profile results (`{p.name}`), not the paper's**: they show the method at reduced scale.")
    return (f"> Executed with profile **`{p.name}`** ({p.description}; {p.n_train:,} training spectra, model size "
            f"`{p.model_size}`) on {device}, {datetime.date.today().isoformat()}, specvit_core {__version__}."
            f"{warning}")
