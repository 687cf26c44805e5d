"""The book's publishing: repository and launch buttons, the intro's headline numbers, the Pages workflow, Binder."""
import os
import re
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest
import yaml
from myst_nb.ext.glue import GLUE_PREFIX

from specvit_core import paper
from specvit_core.book import build_book, executed_profiles, notebook_path, paper_headline
from specvit_core.models import list_models

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
WORKFLOW = yaml.safe_load((ROOT / ".github" / "workflows" / "book.yml").read_text())
#: The pastes of the intro: (chapter, key) of every ``{glue:text}`chapters/NN_name.ipynb::key:fmt```.
PASTES = re.findall(r"\{glue:text\}`chapters/(\w+)\.ipynb::(\w+):[^`]*`", (ROOT / "book" / "intro.md").read_text())
#: The Makefile's CPU build of PyTorch (``TORCH_CPU ?= torch==X``), which CI and Binder install too.
TORCH_CPU = re.search(r"^TORCH_CPU \?= (\S+)$", (ROOT / "Makefile").read_text(), re.M)[1]


def _steps(job: str) -> list[dict]:
    return WORKFLOW["jobs"][job]["steps"]


def test_the_workflow_builds_smoke_on_push_and_the_chosen_profile_by_hand():
    triggers = WORKFLOW[True]  # YAML 1.1 reads the key `on` as True
    assert triggers["push"]["branches"] == ["main"]
    profile = triggers["workflow_dispatch"]["inputs"]["profile"]
    assert profile["default"] == "quick" and {"smoke", "quick"} <= set(profile["options"])
    assert WORKFLOW["jobs"]["build"]["env"]["PROFILE"] == "${{ inputs.profile || 'smoke' }}"
    runs = [step.get("run", "") for step in _steps("build")]
    assert any(re.search(r"(specvit book --profile \"\$PROFILE\"|make book PROFILE=\"?\$PROFILE)", r) for r in runs)


def test_ci_and_binder_install_the_makefiles_cpu_torch():
    install = next(step["run"] for step in _steps("build") if "make install" in step.get("run", ""))
    assert f'--index-url https://download.pytorch.org/whl/cpu "{TORCH_CPU}"' in install
    assert install.index(TORCH_CPU) < install.index("make install")  # before make install can pull another build
    post_build = ROOT / "binder" / "postBuild"
    assert os.access(post_build, os.X_OK)
    assert f'"{TORCH_CPU}"' in post_build.read_text() and "-e '.[book]'" in post_build.read_text()
    assert (ROOT / "binder" / "runtime.txt").read_text().startswith("python-3.")


def test_the_workflow_deploys_the_built_html_to_pages():
    assert WORKFLOW["permissions"]["pages"] == "write" and WORKFLOW["permissions"]["id-token"] == "write"
    [upload] = [s for s in _steps("build") if s.get("uses", "").startswith("actions/upload-pages-artifact@")]
    assert upload["with"]["path"] == "_build/html"
    deploy = WORKFLOW["jobs"]["deploy"]
    assert deploy["needs"] == "build" and deploy["environment"]["name"] == "github-pages"
    [step] = [s for s in deploy["steps"] if s.get("uses", "").startswith("actions/deploy-pages@")]
    assert deploy["environment"]["url"] == f"${{{{ steps.{step['id']}.outputs.page_url }}}}"


def test_the_repository_is_named_once_and_the_buttons_use_it():
    url = CONFIG["repository"]["url"]
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", url)
    text = (ROOT / "_config.yml").read_text()
    assert text.count(url) == 1 and len(re.findall(r"github\.com/", text)) == 1
    assert (ROOT / CONFIG["repository"]["path_to_book"] / "intro.md").is_file() and CONFIG["repository"]["branch"]
    assert CONFIG["html"]["use_repository_button"] is True and CONFIG["html"]["use_issues_button"] is True
    assert CONFIG["launch_buttons"]["binderhub_url"].startswith("https://")
    assert CONFIG["launch_buttons"]["colab_url"].startswith("https://")


def test_every_chapter_page_launches_its_notebook():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    pages = [entry["file"] for entry in toc["chapters"]]
    assert pages and all((ROOT / notebook_path(page)).is_file() for page in pages)
    assert notebook_path("chapters/05_benchmark") == "notebooks/05_benchmark.ipynb"
    assert notebook_path("intro") is None and notebook_path("chapters/notes") is None


def test_executed_profiles_reads_the_papermill_parameters(tmp_path):
    for name, profile in (("01_a", "smoke"), ("02_b", "quick")):
        nb = nbformat.v4.new_notebook(metadata={"papermill": {"parameters": {"profile": profile}}})
        nbformat.write(nb, tmp_path / f"{name}.ipynb")
    nbformat.write(nbformat.v4.new_notebook(), tmp_path / "03_c.ipynb")  # not executed by papermill
    nbformat.write(nbformat.v4.new_notebook(), tmp_path / "notes.ipynb")  # not a chapter
    assert executed_profiles(tmp_path) == {"01_a": "smoke", "02_b": "quick", "03_c": None}


def test_the_papers_headline_is_its_best_network_of_table_3():
    headline = paper_headline()
    best = headline["paper_best_model"]
    assert best in list_models() and best in paper.PARAMS
    assert all(paper.TABLE3[best]["r2"] >= paper.TABLE3[name]["r2"] for name in paper.PARAMS if name in paper.TABLE3)
    assert headline["paper_best_r2"] == f"{paper.TABLE3[best]['r2']:.3f}"
    assert headline["paper_best_sigma_robust"] == f"{paper.TABLE3[best]['sigma_robust']:.3f}"
    gain = paper.TABLE3[best]["r2"] - paper.TABLE3["lightgbm"]["r2"]
    assert headline["paper_gain_r2"] == f"{gain:.3f}" and gain > 0


def test_the_intro_pastes_only_keys_its_chapters_glue():
    assert PASTES
    for chapter, key in PASTES:
        assert f'glue("{key}",' in (ROOT / "notebooks" / f"{chapter}.py").read_text(), f"{chapter} glues no {key!r}"


def _executed_chapter(path: Path, values: dict, profile: str) -> None:
    """An executed chapter as papermill leaves it, with one cell gluing ``values`` as myst_nb.glue(display=False)."""
    outputs = [nbformat.v4.new_output("display_data", data={f"{GLUE_PREFIX}text/plain": repr(value)},
                                      metadata={"scrapbook": {"name": key, "mime_prefix": GLUE_PREFIX}})
               for key, value in values.items()]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# 5. The benchmark"),
                                         nbformat.v4.new_code_cell("glue(...)", outputs=outputs)])
    nb.metadata.update(kernelspec={"name": "python3", "display_name": "Python 3", "language": "python"},
                       papermill={"parameters": {"profile": profile}})
    nbformat.write(nb, path)


def _text(html: Path) -> str:
    """A page's text without tags, whitespace collapsed, typographic apostrophes as ASCII."""
    return " ".join(re.sub(r"<[^>]+>", " ", html.read_text()).replace("\u2019", "'").split())


def test_a_built_book_shows_the_headline_of_its_chapters_and_launches_the_notebooks(tmp_path):
    """Render (strict) a book of the real intro and a chapter 05 that glues the intro's keys; render it again after
    the chapter changed."""
    shutil.copy(ROOT / "_config.yml", tmp_path)
    (tmp_path / "book").mkdir()
    for name in ("intro.md", "references.bib"):
        shutil.copy(ROOT / "book" / name, tmp_path / "book")
    (tmp_path / "book" / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n"
                                                "  - file: chapters/05_benchmark\n  - file: chapters/06_fisher\n")
    (tmp_path / "book" / "chapters").mkdir()
    chapter = tmp_path / "book" / "chapters" / "05_benchmark.ipynb"
    values = dict(best_model="bilstm", best_r2=0.61234, reference_r2=0.50123, delta_r2=0.11111, delta_r2_low=0.05,
                  delta_r2_high=0.17, p_value=0.004, best_mae=0.4321, best_sigma_robust=0.3987)
    fisher = dict(ceiling_gap=0.2468, ceiling_mag=22.0)
    assert set(PASTES) == {("05_benchmark", key) for key in values} | {("06_fisher", key) for key in fisher}
    _executed_chapter(chapter, values, "smoke")
    _executed_chapter(chapter.with_name("06_fisher.ipynb"), fisher, "smoke")
    index = build_book("smoke", root=tmp_path, execute=False, strict=True)

    intro = _text(index.with_name("intro.html"))
    assert "profile smoke" in intro and "the smoke profile's results" in intro and "not the paper's" in intro
    assert "bilstm" in intro and "0.612" in intro and "0.501" in intro
    assert "0.111 ( 0.050 to 0.170 , p = 0.004 )" in intro and "0.432" in intro and "0.399" in intro
    assert "i = 22 minus" in intro and "0.247" in intro
    assert all(value in intro for value in paper_headline().values())

    page = index.with_name("chapters") / "05_benchmark.html"
    repo = CONFIG["repository"]["url"].removeprefix("https://github.com/")
    branch = CONFIG["repository"]["branch"]
    html = page.read_text()
    assert f"{CONFIG['launch_buttons']['binderhub_url']}/v2/gh/{repo}/{branch}?urlpath=lab/tree/notebooks/" \
           "05_benchmark.ipynb" in html
    assert f"{CONFIG['launch_buttons']['colab_url']}/github/{repo}/blob/{branch}/notebooks/05_benchmark.ipynb" in html
    assert "chapters/05_benchmark.ipynb" not in html.replace("_sources/chapters/05_benchmark.ipynb", "")

    _executed_chapter(chapter, {**values, "best_r2": 0.77777}, "smoke")  # re-executed: the intro follows
    build_book("smoke", root=tmp_path, execute=False, strict=True)
    assert "0.778" in _text(index.with_name("intro.html"))


def test_chapters_of_two_profiles_fail_a_strict_build(tmp_path, capfd):
    shutil.copy(ROOT / "_config.yml", tmp_path)
    (tmp_path / "book" / "chapters").mkdir(parents=True)
    (tmp_path / "book" / "intro.md").write_text("# Intro\n\nProfile {{ profile }}.\n")
    shutil.copy(ROOT / "book" / "references.bib", tmp_path / "book")
    (tmp_path / "book" / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n  - file: chapters/01_a\n"
                                                "  - file: chapters/02_b\n")
    for name, profile in (("01_a", "smoke"), ("02_b", "quick")):
        _executed_chapter(tmp_path / "book" / "chapters" / f"{name}.ipynb", {}, profile)
    with pytest.raises(subprocess.CalledProcessError):
        build_book("smoke", root=tmp_path, execute=False, strict=True)
    assert "need chapters executed at one profile" in "".join(capfd.readouterr())
