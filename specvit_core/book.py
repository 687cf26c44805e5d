"""Execute the chapters with papermill at a profile and render the Jupyter Book (``make book``)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .config import get_profile, project_root


def chapter_notebooks(root: Path) -> list[Path]:
    """The chapter notebooks ``notebooks/NN_name.ipynb`` in order.

    Parameters
    ----------
    root : Path
        The project root (holding ``notebooks/``).

    Returns
    -------
    list of Path
        Sorted by name, hence by chapter number; empty when there are none.
    """
    return sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def execute_chapters(profile: str, root: Path | None = None, only: list[str] | None = None) -> list[Path]:
    """Run every chapter (or those whose names start with an entry of ``only``) with papermill into book/chapters.

    A failing notebook raises ``papermill.PapermillExecutionError``; its partly executed copy is kept for reading.

    Parameters
    ----------
    profile : str
        Profile passed to each notebook as its ``profile`` parameter.
    root : Path, optional
        Project root (default :func:`specvit_core.config.project_root`).
    only : list of str, optional
        Name prefixes of the chapters to run (e.g. ``["01", "04"]``); default all.

    Returns
    -------
    list of Path
        The executed copies in ``<root>/book/chapters``.

    Raises
    ------
    ValueError
        For an unknown profile.
    papermill.PapermillExecutionError
        A cell of a notebook failed.
    """
    import papermill

    get_profile(profile)
    root = Path(root or project_root())
    out_dir = root / "book" / "chapters"
    out_dir.mkdir(parents=True, exist_ok=True)
    done = []
    for nb in chapter_notebooks(root):
        if only and not any(nb.stem.startswith(o) for o in only):
            continue
        out = out_dir / nb.name
        print(f"[specvit book] executing {nb.name} at profile {profile!r}", flush=True)
        papermill.execute_notebook(str(nb), str(out), parameters={"profile": profile}, kernel_name="python3",
                                   cwd=str(nb.parent), progress_bar=True)
        done.append(out)
    return done


def build_book(profile: str, root: Path | None = None, only: list[str] | None = None, execute: bool = True) -> Path:
    """Execute the chapters (unless ``execute`` is False) and run ``jupyter-book build book/``; return the HTML index.

    Parameters
    ----------
    profile : str
        Profile the chapters are executed at.
    root : Path, optional
        Project root (default :func:`specvit_core.config.project_root`).
    only : list of str, optional
        Name prefixes of the chapters to execute; default all.
    execute : bool
        Execute the chapters first; False renders the already executed copies.

    Returns
    -------
    Path
        ``<root>/_build/html/index.html``.

    Raises
    ------
    ValueError
        For an unknown profile (when executing).
    papermill.PapermillExecutionError
        A cell of a notebook failed.
    subprocess.CalledProcessError
        ``jupyter-book build`` failed.
    """
    root = Path(root or project_root())
    if execute:
        execute_chapters(profile, root, only)
    subprocess.run([str(Path(sys.executable).with_name("jupyter-book")), "build", "book/"], cwd=root, check=True)
    index = root / "_build" / "html" / "index.html"  # jupyter-book 1 writes next to the _config.yml it found
    print(f"[specvit book] open {index}")
    return index
