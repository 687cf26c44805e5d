"""The one entry point to a template grid: the embedded synthesis or a folder of BOSZ files."""
from __future__ import annotations

from pathlib import Path

from .bosz import read_bosz_folder
from .embedded import embedded_grid
from .templates import TemplateGrid


def load_grid(grid: str | Path = "embedded", **kwargs) -> TemplateGrid:
    """The template grid named by ``grid``.

    Parameters
    ----------
    grid : str or Path
        ``"embedded"`` (default) for the built-in synthesis, or the path of a folder of BOSZ files.
    **kwargs
        Passed to :func:`.embedded.embedded_grid` or :func:`.bosz.read_bosz_folder`.

    Returns
    -------
    TemplateGrid
        Templates on the 4096-pixel MR grid.

    Raises
    ------
    ValueError
        A BOSZ folder that does not exist, is incomplete or holds malformed files (:func:`.bosz.read_bosz_folder`).
    """
    if str(grid) == "embedded":
        return embedded_grid(**kwargs)
    return read_bosz_folder(grid, **kwargs)
