"""What the Snakemake workflow (``workflow/Snakefile``) asks of the core: the files a step depends on and its targets.

A step of the workflow re-runs when one of its inputs is newer than its output, and its inputs include the source
files of every ``specvit_core`` module the step imports, directly or through other modules
(:func:`source_files`): the modules of a command (``specvit train`` runs :mod:`specvit_core.train`) or of a chapter
notebook (its code cells' imports, :func:`notebook_imports`), and the package data beside them
(``spectra/data/``). The targets follow the core: the template grid's cache file (:func:`grid_file`), and the
architectures the chapters show at a profile (:func:`chapter_archs`).
"""
from __future__ import annotations

import ast
import functools
import json
from pathlib import Path

PACKAGE = "specvit_core"


@functools.lru_cache(maxsize=None)
def _imports(source: str, package: str) -> frozenset[str]:
    """Dotted names of the ``specvit_core`` modules and names a source imports, module-level or deferred, but not
    under ``if __name__ == "__main__":``; ``package`` resolves relative imports. Cached by source text."""
    found, todo = set(), list(ast.parse(source).body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.If) and ast.unparse(node.test).replace("'", '"') == '__name__ == "__main__"':
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            found |= {module} | {f"{module}.{alias.name}" for alias in node.names}
        todo += list(ast.iter_child_nodes(node))
    return frozenset(name for name in found if name.split(".")[0] == PACKAGE)


def _module_file(root: Path, dotted: str) -> Path | None:
    """The source file of a dotted module name under ``root`` (a package's ``__init__.py``); None for other names."""
    path = root.joinpath(*dotted.split("."))
    for candidate in (path / "__init__.py", path.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def source_files(sources, root=".") -> list[str]:
    """The ``specvit_core`` source files that Python sources import, transitively, with the package data beside them.

    Importing ``specvit_core.spectra.synthesis`` runs ``specvit_core/__init__.py`` and
    ``specvit_core/spectra/__init__.py`` too, so every package on the way is included; a module's imports inside
    functions count (they run when the function does), those under ``if __name__ == "__main__":`` do not.

    Parameters
    ----------
    sources : iterable of str or Path
        ``.py`` files of the package (relative to ``root``) or notebooks (``.ipynb``: their code cells).
    root : str or Path
        The folder holding ``specvit_core/`` (the checkout).

    Returns
    -------
    list of str
        Paths relative to ``root``, sorted: the modules (with ``sources`` among them when they are modules) and
        the files in the ``data/`` folder of each package they belong to (e.g. ``specvit_core/spectra/data/*``).
    """
    root = Path(root)
    todo = [root / s for s in sources]
    seen = set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        if path.suffix == ".ipynb":
            names = notebook_imports(path)
        else:
            package = ".".join(path.relative_to(root).parts[:-1])  # of a module and of a package's __init__.py
            names = _imports(path.read_text(), package)
        for name in names:
            dotted = name.split(".")
            todo += [f for i in range(1, len(dotted) + 1) if (f := _module_file(root, ".".join(dotted[:i])))]
    modules = {p for p in seen if p.suffix == ".py"}
    data = {f for p in modules if (p.parent / "data").is_dir() for f in (p.parent / "data").iterdir() if f.is_file()}
    return sorted(str(p.relative_to(root)) for p in modules | data)


def _code_cells(notebook) -> list[str]:
    """The sources of a notebook's code cells, IPython magics and shell escapes (``%``, ``!``) blanked."""
    cells = json.loads(Path(notebook).read_text())["cells"]
    return ["\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in "".join(c["source"]).split("\n"))
            for c in cells if c["cell_type"] == "code"]


def notebook_imports(notebook) -> set[str]:
    """The ``specvit_core`` modules and names a notebook's code cells import.

    Parameters
    ----------
    notebook : str or Path
        An ``.ipynb`` file.

    Returns
    -------
    set of str
        Dotted names (e.g. ``specvit_core.fisher``, ``specvit_core.data.read_split``).
    """
    return set().union(*(_imports(cell, PACKAGE) for cell in _code_cells(notebook)))


def notebook_parameter(notebook, name: str):
    """The default value of a parameter in a notebook's ``parameters`` cell (what papermill replaces).

    Parameters
    ----------
    notebook : str or Path
        An ``.ipynb`` file with a cell tagged ``parameters``.
    name : str
        The parameter, assigned a literal in that cell.

    Returns
    -------
    object
        The literal's value.

    Raises
    ------
    KeyError
        If the parameters cell assigns no literal to ``name`` (or there is no such cell).
    """
    cells = json.loads(Path(notebook).read_text())["cells"]
    for cell in cells:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            for node in ast.parse("".join(cell["source"])).body:
                if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
                    try:
                        return ast.literal_eval(node.value)
                    except ValueError:
                        break
    raise KeyError(f"{notebook} has no parameter {name!r} with a literal default")


def grid_file(profile: str) -> Path:
    """The cache file of the template grid a profile's simulator uses, as ``specvit grid`` writes it.

    Its name holds the fingerprint of the synthesis code, its data and settings
    (:func:`specvit_core.spectra.embedded.embedded_grid`), so a change to the physics names another file.

    Parameters
    ----------
    profile : str

    Returns
    -------
    Path
        ``data/cache/embedded_<key>.h5`` under :func:`specvit_core.config.project_root`.

    Raises
    ------
    ValueError
        For an unknown profile, or a profile that simulates from a folder of BOSZ files rather than the embedded
        grid.
    """
    from .simulate import SimulationConfig
    from .spectra.embedded import cache_file

    grid = SimulationConfig.from_profile(profile).grid
    if str(grid) != "embedded":
        raise ValueError(f"profile {profile!r} simulates from the BOSZ folder {grid}; the workflow makes the "
                         "embedded grid only")
    return cache_file()


def chapter_archs(profile: str, *more: str) -> list[str]:
    """The architectures whose main runs the chapters show at a profile, in registry order.

    Chapter 5's comparison (:data:`specvit_core.benchmark.PLANS`: ``main_archs``, None for all), chapter 7's
    pre-trained networks (:data:`specvit_core.transfer.PLANS`) and ``more`` (e.g. chapter 4's ``arch``).

    Parameters
    ----------
    profile : str
    *more : str
        Further architectures.

    Returns
    -------
    list of str
        Each registered architecture among them once.

    Raises
    ------
    ValueError
        For an unknown profile.
    """
    from .benchmark import get_plan
    from .config import get_profile
    from .models import list_models
    from .transfer import PLANS

    wanted = {*(get_plan(profile).main_archs or list_models()), *PLANS[get_profile(profile).name].archs, *more}
    return [arch for arch in list_models() if arch in wanted]
