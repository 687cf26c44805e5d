"""The notebooks and the book: jupytext pairs in sync, papermill runs with parameters, jupyter-book renders."""
import shutil
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat
import papermill
import pytest
from jupytext.compare import compare_notebooks

from specvit_core.book import execute_chapters

ROOT = Path(__file__).resolve().parents[1]
PAIRS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))


def test_every_chapter_is_a_jupytext_pair():
    assert PAIRS, "no chapter notebooks found"
    for py in PAIRS:
        assert py.with_suffix(".ipynb").exists(), f"{py.name} has no paired .ipynb"


@pytest.mark.parametrize("py", PAIRS, ids=lambda p: p.stem)
def test_pairs_are_in_sync(py):
    text = jupytext.read(py)
    ipynb = jupytext.read(py.with_suffix(".ipynb"))
    compare_notebooks(ipynb, text, fmt="py:percent", allow_expected_differences=False)


@pytest.mark.parametrize("py", PAIRS, ids=lambda p: p.stem)
def test_every_chapter_has_a_profile_parameter(py):
    nb = jupytext.read(py)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and "profile =" in tagged[0].source


def make_book_tree(tmp_path, notebooks):
    """A copy of the book configuration with the given notebooks, for building outside the checkout."""
    for name in ("_config.yml", "_toc.yml", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "book", tmp_path / "book", ignore=shutil.ignore_patterns("_build", "chapters"))
    (tmp_path / "book" / "_toc.yml").unlink()
    (tmp_path / "book" / "_toc.yml").symlink_to("../_toc.yml")
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "specvit_core").mkdir()  # marks the project root
    for nb in notebooks:
        shutil.copy(nb, tmp_path / "notebooks" / nb.name)
    return tmp_path


def test_simulation_chapter_runs_with_papermill_and_renders(tmp_path, monkeypatch):
    root = make_book_tree(tmp_path, [ROOT / "notebooks" / "01_simulation.ipynb"])
    (root / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n  - file: chapters/01_simulation\n")
    if (ROOT / "data" / "cache").exists():  # reuse the checkout's template-grid cache instead of rebuilding it
        shutil.copytree(ROOT / "data" / "cache", root / "data" / "cache")
    monkeypatch.setenv("SPECVIT_HOME", str(root))
    [out] = execute_chapters("smoke", root=root)
    executed = nbformat.read(out, as_version=4)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and 'profile = "smoke"' in injected[0].source
    banner = "".join(o.get("data", {}).get("text/markdown", "") for c in executed.cells for o in c.get("outputs", []))
    assert "Executed with profile **`smoke`**" in banner
    subprocess.run([str(Path(sys.executable).with_name("jupyter-book")), "build", "book/"], cwd=root, check=True,
                   capture_output=True)
    html = (root / "_build" / "html" / "chapters" / "01_simulation.html").read_text()
    assert "Executed with profile" in html and "not the paper" in html


def test_a_failing_chapter_fails_the_build(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell('profile = "quick"', metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("raise RuntimeError('chapter broke')"),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    (tmp_path / "notebooks").mkdir()
    nbformat.write(nb, tmp_path / "notebooks" / "99_broken.ipynb")
    with pytest.raises(papermill.PapermillExecutionError, match="chapter broke"):
        execute_chapters("smoke", root=tmp_path)
    assert (tmp_path / "book" / "chapters" / "99_broken.ipynb").exists()  # kept for reading the error


@pytest.mark.parametrize("py", PAIRS, ids=lambda p: p.stem)
def test_every_glued_reference_is_glued_by_the_chapter(py):
    """A {glue:text}`key` in the text renders only if a code cell of the same notebook calls glue("key", ...)."""
    import re

    nb = jupytext.read(py)
    text = "".join(c.source for c in nb.cells if c.cell_type == "markdown")
    code = "".join(c.source for c in nb.cells if c.cell_type == "code")
    referenced = set(re.findall(r"\{glue:\w+\}`(\w+)", text))
    glued = set(re.findall(r"glue\(\"(\w+)\"", code))
    assert referenced <= glued, f"referenced but never glued: {sorted(referenced - glued)}"
