"""Execute the chapters with papermill at a profile and render the Jupyter Book (``make book``).

The interactive figures (:mod:`specvit_core.interactive`) need plotly.js on the pages: :func:`copy_plotly_js` copies
the ``plotly.min.js`` that the installed ``plotly`` package ships into ``book/_static/`` (ignored by git, never
committed), which Jupyter Book serves as ``_static/`` and ``_config.yml`` lists in ``html_js_files``: one local file
for the whole book, no CDN.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .config import get_profile, project_root

#: The file name under ``book/_static/`` (``_config.yml``: ``sphinx: config: html_js_files``).
PLOTLY_JS = "plotly.min.js"
#: What ``--strict`` adds to ``jupyter-book build``: warnings are errors (reported together at the end), nitpicky.
STRICT_OPTIONS = ("-W", "-n", "--keep-going")


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


def copy_plotly_js(root: Path | None = None) -> Path:
    """Copy the installed plotly package's ``plotly.min.js`` to ``<root>/book/_static/`` (when it differs).

    Parameters
    ----------
    root : Path, optional
        Project root (default :func:`specvit_core.config.project_root`).

    Returns
    -------
    Path
        ``<root>/book/_static/plotly.min.js``.

    Raises
    ------
    ModuleNotFoundError
        If plotly is not installed (it belongs to the ``book`` extra).
    FileNotFoundError
        If the plotly package ships no ``package_data/plotly.min.js``.
    """
    from importlib.resources import files

    try:
        source = files("plotly") / "package_data" / PLOTLY_JS
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError("the book's interactive figures need plotly: pip install -e '.[book]'") from err
    if not source.is_file():
        raise FileNotFoundError(f"the installed plotly package has no {source}")
    target = Path(root or project_root()) / "book" / "_static" / PLOTLY_JS
    target.parent.mkdir(parents=True, exist_ok=True)
    data = source.read_bytes()
    if not target.exists() or target.read_bytes() != data:
        target.write_bytes(data)
    return target


def build_book(profile: str, root: Path | None = None, only: list[str] | None = None, execute: bool = True,
               strict: bool = False) -> Path:
    """Execute the chapters (unless ``execute`` is False) and run ``jupyter-book build book/``; return the HTML index.

    plotly.js is copied into ``book/_static`` first (:func:`copy_plotly_js`).

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
    strict : bool
        Turn Sphinx warnings into errors (``jupyter-book build -W -n --keep-going``: every warning is reported, then
        the build fails).

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
        ``jupyter-book build`` failed (with ``strict``: also on a warning).
    ModuleNotFoundError
        If plotly is not installed.
    """
    root = Path(root or project_root())
    if execute:
        execute_chapters(profile, root, only)
    copy_plotly_js(root)
    command = [str(Path(sys.executable).with_name("jupyter-book")), "build", "book/"]
    command += list(STRICT_OPTIONS) if strict else []
    subprocess.run(command, cwd=root, check=True)
    index = root / "_build" / "html" / "index.html"  # jupyter-book 1 writes next to the _config.yml it found
    print(f"[specvit book] open {index}")
    return index


def drop_repeated_scripts(app, pagename: str, templatename: str, context: dict, doctree) -> None:
    """Keep one ``<script>`` per distinct script on a page (Sphinx ``html-page-context`` handler).

    Sphinx 7.4 writes a script that an extension registers with a body but no file after the builder started
    (sphinx-thebe's ``const THEBE_JS_URL = ...``) twice, once as file ``None`` and once as ``''``; the second
    ``const`` is a SyntaxError in the browser console of every page. Scripts are compared by file (``None`` as
    ``''``), priority and attributes, and the first of equal ones is kept.

    Parameters
    ----------
    app : sphinx.application.Sphinx
        The application (unused).
    pagename, templatename : str
        The page and its template (unused).
    context : dict
        The page's template context; its ``script_files`` list is replaced by one without repeats.
    doctree : docutils.nodes.document or None
        The page's doctree (unused).

    Returns
    -------
    None
    """
    seen, unique = set(), []
    for script in context.get("script_files") or []:
        key = (str(getattr(script, "filename", script) or ""), getattr(script, "priority", 0),
               tuple(sorted((k, str(v)) for k, v in getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    if "script_files" in context:
        context["script_files"] = unique


def setup(app) -> dict:
    """Sphinx extension of the book (``_config.yml``: ``sphinx: extra_extensions``): :func:`drop_repeated_scripts`.

    Parameters
    ----------
    app : sphinx.application.Sphinx
        The application.

    Returns
    -------
    dict
        Sphinx extension metadata (safe for parallel reading and writing).
    """
    app.connect("html-page-context", drop_repeated_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
