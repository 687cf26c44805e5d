"""Execute the chapters with papermill at a profile and render the Jupyter Book (``make book``).

The interactive figures (:mod:`specvit_core.interactive`) need plotly.js on the pages: :func:`copy_plotly_js` copies
the ``plotly.min.js`` that the installed ``plotly`` package ships into ``book/_static/`` (ignored by git, never
committed), which Jupyter Book serves as ``_static/`` and ``_config.yml`` lists in ``html_js_files``: one local file
for the whole book, no CDN.

As a Sphinx extension (``_config.yml``: ``sphinx: extra_extensions``) the module also points the Binder and Colab
launch buttons of a chapter at its notebook ``notebooks/NN_name.ipynb`` rather than at the executed copy the page
is built from (:func:`point_launch_buttons_at_notebooks`), and gives the intro page its MyST substitutions: the
profile the chapters were executed at and the paper's Table 3 numbers (:func:`add_headline_substitutions`), beside
the numbers it pastes from the chapters with myst-nb's cross-page glue (``{glue:text}`chapters/NN_name.ipynb::key```).
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from . import paper
from .config import get_profile, project_root

#: The file name under ``book/_static/`` (``_config.yml``: ``sphinx: config: html_js_files``).
PLOTLY_JS = "plotly.min.js"
#: The folder of the executed chapters under the book's source folder ``book/`` (``_toc.yml``: ``chapters/NN_name``).
CHAPTERS = "chapters"
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


def notebook_path(pagename: str) -> str | None:
    """The repository path of the notebook a book page was executed from.

    Parameters
    ----------
    pagename : str
        A Sphinx page name, relative to ``book/`` and without suffix (e.g. ``chapters/05_benchmark``).

    Returns
    -------
    str or None
        ``notebooks/NN_name.ipynb`` for a chapter ``chapters/NN_name``; None for any other page.
    """
    match = re.fullmatch(rf"{CHAPTERS}/(\d\d_\w+)", pagename)
    return f"notebooks/{match[1]}.ipynb" if match else None


def point_launch_buttons_at_notebooks(app, pagename: str, templatename: str, context: dict, doctree) -> None:
    """Make a chapter's launch buttons open ``notebooks/NN_name.ipynb`` (Sphinx ``html-page-context`` handler).

    sphinx-book-theme builds each launch URL (Binder's ``?urlpath=lab/tree/<path>``, Colab's ``/blob/<branch>/<path>``)
    from ``<path_to_book>/<page>.ipynb``, the executed copy ``book/chapters/NN_name.ipynb`` that git ignores. Run after
    the theme's handler (priority 501), this replaces that path by the chapter's notebook in every launch button.

    Parameters
    ----------
    app : sphinx.application.Sphinx
        The application; its ``html_theme_options`` hold ``path_to_docs`` (``_config.yml``: ``repository:
        path_to_book``).
    pagename, templatename : str
        The page and its template (only chapters are changed).
    context : dict
        The page's template context; the URLs in its ``header_buttons`` group ``launch-buttons`` are rewritten.
    doctree : docutils.nodes.document or None
        The page's doctree (unused).

    Returns
    -------
    None
    """
    notebook = notebook_path(pagename)
    if notebook is None:
        return
    book = app.config.html_theme_options.get("path_to_docs", "").strip("/")
    executed = f"{book}/{pagename}.ipynb" if book else f"{pagename}.ipynb"
    for group in context.get("header_buttons", []):
        if group.get("label") == "launch-buttons":
            for button in group["buttons"]:
                if "url" in button:
                    button["url"] = button["url"].replace(executed, notebook)


def executed_profiles(chapters: Path) -> dict[str, str | None]:
    """The profile each executed chapter ran at, as papermill recorded its ``profile`` parameter.

    Parameters
    ----------
    chapters : Path
        The folder of the executed chapters (``book/chapters``).

    Returns
    -------
    dict
        Chapter name (``NN_name``) to profile, None for a notebook without that record; in chapter order.
    """
    return {nb.stem: json.loads(nb.read_text())["metadata"].get("papermill", {}).get("parameters", {}).get("profile")
            for nb in sorted(chapters.glob("[0-9][0-9]_*.ipynb"))}


def paper_headline() -> dict[str, str]:
    """The paper's numbers of the intro's headline table (its Table 3), as MyST substitutions.

    The paper's best network is the one of highest R^2 among the architectures of :data:`specvit_core.paper.PARAMS`
    (the baselines have no parameter count there).

    Returns
    -------
    dict
        ``paper_best_model``, ``paper_best_r2``, ``paper_best_mae``, ``paper_best_sigma_robust``,
        ``paper_lightgbm_r2``, ``paper_gain_r2`` (best network minus LightGBM) and ``paper_ceiling_gap`` (the 3D
        ceiling minus SpecViT's R^2 at i = 22, Table 13); numbers as text, three decimals.
    """
    networks = {name: row for name, row in paper.TABLE3.items() if name in paper.PARAMS}
    best = max(networks, key=lambda name: networks[name]["r2"])
    lightgbm = paper.TABLE3["lightgbm"]["r2"]
    return {"paper_best_model": best,
            **{f"paper_best_{k}": f"{networks[best][k]:.3f}" for k in ("r2", "mae", "sigma_robust")},
            "paper_lightgbm_r2": f"{lightgbm:.3f}", "paper_gain_r2": f"{networks[best]['r2'] - lightgbm:.3f}",
            "paper_ceiling_gap": f"{paper.CEILING_3D[22.0] - paper.TABLE13_R2['specvit'][22.0]:.3f}"}


def add_headline_substitutions(app, config) -> None:
    """Give the intro its MyST substitutions: ``profile`` and :func:`paper_headline` (``config-inited`` handler).

    ``profile`` is the profile of the executed chapters (:func:`executed_profiles`). When they do not share one it
    names them all, joined by " + " ("none" without executed chapters), and a warning (an error under ``--strict``)
    says that the intro's numbers then mix profiles.

    Parameters
    ----------
    app : sphinx.application.Sphinx
        The application; the chapters are read from ``<srcdir>/chapters``.
    config : sphinx.config.Config
        The configuration whose ``myst_substitutions`` is extended.

    Returns
    -------
    None
    """
    from sphinx.util import logging

    chapters = Path(app.srcdir) / CHAPTERS
    profiles = executed_profiles(chapters)
    found = sorted({str(p) for p in profiles.values()})
    if len(found) != 1:
        logging.getLogger(__name__).warning(
            f"the intro's headline numbers need chapters executed at one profile; {chapters} holds {profiles}")
    config.myst_substitutions = {**config.myst_substitutions, "profile": " + ".join(found) or "none",
                                 **paper_headline()}


def setup(app) -> dict:
    """Sphinx extension of the book (``_config.yml``: ``sphinx: extra_extensions``).

    Connects :func:`drop_repeated_scripts`, :func:`point_launch_buttons_at_notebooks` and
    :func:`add_headline_substitutions`. The intro's pastes from the chapters need nothing more: myst-nb resolves
    them when the intro is written, which Sphinx does whenever a chapter of its toctree changed.

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
    app.connect("html-page-context", point_launch_buttons_at_notebooks, priority=900)
    app.connect("config-inited", add_headline_substitutions)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
