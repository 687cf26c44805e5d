"""The Snakemake workflow (workflow/Snakefile, workflow/profiles/slurm): what it plans, never what it runs.

Every snakemake call is a dry run, in a temporary copy of what the workflow reads (workflow/, specvit_core/, the
chapter notebooks, the book's sources) with SPECVIT_HOME pointing there, so nothing is made in the checkout.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from specvit_core import benchmark, transfer
from specvit_core.models import list_models
from specvit_core.spectra.embedded import cache_file
from specvit_core.workflow import chapter_archs, grid_file, notebook_parameter, source_files

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
CHAPTERS = sorted(p.stem for p in ROOT.glob("notebooks/[0-9][0-9]_*.ipynb"))
DAY = 86400

needs_snakemake = pytest.mark.skipif(not SNAKEMAKE.exists(), reason="snakemake is not installed (pip install -e "
                                     "'.[test]', Python >= 3.11)")


def copy_checkout(dest: Path) -> Path:
    """What the workflow reads, copied into ``dest``."""
    shutil.copytree(ROOT / "workflow", dest / "workflow")
    shutil.copytree(ROOT / "specvit_core", dest / "specvit_core", ignore=shutil.ignore_patterns("__pycache__"))
    for pattern in ("notebooks/[0-9][0-9]_*.ipynb", "book/*.md", "book/*.bib", "_config.yml", "_toc.yml"):
        for path in ROOT.glob(pattern):
            (dest / path.relative_to(ROOT)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest / path.relative_to(ROOT))
    return dest


def dry_run(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    """``snakemake --dry-run`` in ``workdir`` (stdout and stderr together in ``stdout``)."""
    return subprocess.run([str(SNAKEMAKE), "--dry-run", "--cores", "2", *args], cwd=workdir, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300,
                          env={**os.environ, "SPECVIT_HOME": str(workdir)})


def planned(workdir: Path, *args: str) -> tuple[Counter, list[dict]]:
    """The job counts of a dry run's summary table and its jobs (rule, input, output, wildcards, resources)."""
    result = dry_run(workdir, *args)
    assert result.returncode == 0, result.stdout
    table = re.search(r"Job stats:\njob +count\n[- ]+\n(.*?)\ntotal +(\d+)", result.stdout, re.S)
    if table is None:
        assert "Nothing to be done" in result.stdout, result.stdout
        return Counter(), []
    counts = Counter({rule: int(n) for rule, n in re.findall(r"^(\w+) +(\d+)$", table[1], re.M)})
    assert sum(counts.values()) == int(table[2])
    jobs = []
    for block in re.split(r"\n(?=rule \w+:)", result.stdout)[1:]:
        fields = dict(re.findall(r"^    (\w+): (.*)$", block, re.M))
        files = {key: [f.removesuffix(" (update)") for f in fields.get(key, "").split(", ") if f]
                 for key in ("input", "output")}
        jobs.append({"rule": re.match(r"rule (\w+):", block)[1], **files,
                     "wildcards": dict(w.split("=", 1) for w in fields.get("wildcards", "").split(", ") if w),
                     "resources": fields.get("resources", "")})
    assert Counter(job["rule"] for job in jobs) == counts
    return counts, jobs


def chapters_of(jobs: list[dict]) -> set[str]:
    return {job["wildcards"]["chapter"] for job in jobs if job["rule"] == "chapter"}


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    """A copy without data, runs or executed chapters (tests must not add any)."""
    return copy_checkout(tmp_path_factory.mktemp("checkout"))


@pytest.fixture(scope="module")
def smoke_plan(checkout) -> tuple[Counter, list[dict]]:
    return planned(checkout, "--config", "profile=smoke")


# ------------------------------------------------------------------------------------------- the helper module

def _write(path: Path, text: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_source_files_follow_imports_through_packages_and_functions_but_not_main_blocks(tmp_path):
    _write(tmp_path / "specvit_core/__init__.py")
    _write(tmp_path / "specvit_core/a.py", "import numpy\nfrom . import b\n\ndef f():\n    from .sub.c import g\n"
           "\nif __name__ == '__main__':\n    from .cli import main\n")
    _write(tmp_path / "specvit_core/b.py", "from .config import X\n")
    _write(tmp_path / "specvit_core/config.py", "X = 1\n")
    _write(tmp_path / "specvit_core/cli.py", "from . import unrelated\n")
    _write(tmp_path / "specvit_core/unrelated.py")
    _write(tmp_path / "specvit_core/sub/__init__.py")
    _write(tmp_path / "specvit_core/sub/c.py", "from ..config import X\n")
    _write(tmp_path / "specvit_core/sub/data/table.txt", "1 2\n")
    assert source_files(["specvit_core/a.py"], tmp_path) == [
        "specvit_core/__init__.py", "specvit_core/a.py", "specvit_core/b.py", "specvit_core/config.py",
        "specvit_core/sub/__init__.py", "specvit_core/sub/c.py", "specvit_core/sub/data/table.txt"]
    assert source_files(["specvit_core/b.py"], tmp_path) == [
        "specvit_core/__init__.py", "specvit_core/b.py", "specvit_core/config.py"]


def test_a_notebooks_source_files_are_those_its_code_cells_import(tmp_path):
    import nbformat

    _write(tmp_path / "specvit_core/__init__.py")
    _write(tmp_path / "specvit_core/fisher.py", "from .noise import sigma\n")
    _write(tmp_path / "specvit_core/noise.py")
    _write(tmp_path / "specvit_core/train.py")
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("from specvit_core import train"),  # prose, not code
        nbformat.v4.new_code_cell("%matplotlib inline\nfrom specvit_core import fisher\n!ls")])
    (tmp_path / "notebooks").mkdir()
    nbformat.write(notebook, tmp_path / "notebooks/06_x.ipynb")
    assert source_files(["notebooks/06_x.ipynb"], tmp_path) == [
        "specvit_core/__init__.py", "specvit_core/fisher.py", "specvit_core/noise.py"]


def test_the_real_modules_import_what_the_rules_depend_on():
    train = source_files(["specvit_core/train.py"], ROOT)
    assert {"specvit_core/train.py", "specvit_core/data.py", "specvit_core/models/transformer.py"} <= set(train)
    assert "specvit_core/cli.py" not in train  # imported only under `if __name__ == "__main__":`
    assert "specvit_core/fisher.py" not in train
    simulate = source_files(["specvit_core/simulate.py"], ROOT)
    assert {"specvit_core/noise.py", "specvit_core/instrument.py", "specvit_core/spectra/synthesis.py",
            "specvit_core/spectra/data/partition_functions.txt"} <= set(simulate)
    assert "specvit_core/fisher.py" in source_files(["notebooks/06_fisher.ipynb"], ROOT)


def test_the_chapters_show_registered_architectures():
    assert notebook_parameter(ROOT / "notebooks/04_train.ipynb", "arch") in list_models()
    assert chapter_archs("smoke") == list_models()  # the smoke plan compares all nine
    quick = set(benchmark.PLANS["quick"].main_archs) | set(transfer.PLANS["quick"].archs)
    assert set(chapter_archs("quick")) == quick < set(list_models())
    assert chapter_archs("quick", "deep_cnn") == [a for a in list_models() if a in quick | {"deep_cnn"}]
    with pytest.raises(KeyError, match="no parameter 'nonexistent'"):
        notebook_parameter(ROOT / "notebooks/04_train.ipynb", "nonexistent")


# ------------------------------------------------------------------------------------------- the workflow

@needs_snakemake
def test_a_dry_run_at_smoke_plans_the_whole_book(smoke_plan, checkout):
    counts, jobs = smoke_plan
    assert counts == Counter(grid=1, simulate=1, train=len(list_models()), baselines=1, chapter=len(CHAPTERS),
                             book=1, all=1)
    assert {job["wildcards"]["arch"] for job in jobs if job["rule"] == "train"} == set(list_models())
    assert chapters_of(jobs) == set(CHAPTERS)
    outputs = {o for job in jobs for o in job["output"]}
    assert {"data/smoke/manifest.json", "runs/smoke/specvit/metrics.json", "runs/smoke/lightgbm/metrics.json",
            "book/chapters/05_benchmark.ipynb", "_build/html/index.html"} <= outputs
    assert not any((checkout / folder).exists() for folder in ("data", "runs", "_build", "book/chapters"))


@needs_snakemake
def test_an_edited_core_module_replans_only_the_steps_that_depend_on_it(tmp_path, smoke_plan):
    workdir = copy_checkout(tmp_path)
    now = time.time()
    for path in workdir.rglob("*"):  # the sources three days old, every output (an empty file) two days old
        os.utime(path, (now - 3 * DAY, now - 3 * DAY))
    for output in {o for job in smoke_plan[1] for o in job["output"]}:
        _write(workdir / output)
        os.utime(workdir / output, (now - 2 * DAY, now - 2 * DAY))
    config = ("--config", "profile=smoke", "--rerun-triggers", "mtime")
    assert planned(workdir, *config) == (Counter(), [])

    os.utime(workdir / "specvit_core/fisher.py")  # now
    counts, jobs = planned(workdir, *config)
    importers = {c for c in CHAPTERS if "specvit_core/fisher.py" in source_files([f"notebooks/{c}.ipynb"], workdir)}
    after = {"08_verification"} if importers & {"05_benchmark", "07_transfer"} else set()  # it follows 5 and 7
    assert set(counts) == {"chapter", "book", "all"}  # no grid, dataset, run or baseline
    assert chapters_of(jobs) == importers | after
    assert "06_fisher" in chapters_of(jobs) and len(chapters_of(jobs)) < len(CHAPTERS)

    os.utime(workdir / "specvit_core/fisher.py", (now - 3 * DAY, now - 3 * DAY))
    os.utime(workdir / "specvit_core/train.py")
    counts, jobs = planned(workdir, *config)
    assert counts["train"] == len(list_models()) and counts["book"] == 1 and counts["all"] == 1
    assert not {"grid", "simulate", "baselines"} & set(counts)
    assert {"04_train", "05_benchmark", "06_fisher", "07_transfer", "08_verification"} <= chapters_of(jobs)
    assert ("01_simulation" in chapters_of(jobs)) == (
        "specvit_core/train.py" in source_files(["notebooks/01_simulation.ipynb"], workdir))


@needs_snakemake
def test_the_slurm_profile_plans_the_same_jobs_with_a_gpu_per_training(smoke_plan, checkout):
    counts, jobs = planned(checkout, "--profile", "workflow/profiles/slurm", "--config", "profile=smoke")
    assert counts == smoke_plan[0]
    trains = [job for job in jobs if job["rule"] == "train"]
    assert trains and all(re.search(r"\bgpu=1\b", job["resources"]) for job in trains)
    assert not re.search(r"\bgpu=", next(job for job in jobs if job["rule"] == "simulate")["resources"])


def chapter_inputs(jobs: list[dict]) -> dict[str, list[str]]:
    return {job["wildcards"]["chapter"]: job["input"] for job in jobs if job["rule"] == "chapter"}


@needs_snakemake
def test_chapters_wait_for_the_runs_they_show_and_otherwise_run_in_parallel(smoke_plan):
    inputs = chapter_inputs(smoke_plan[1])
    for arch in list_models():
        assert f"runs/smoke/{arch}/metrics.json" in inputs["05_benchmark"]
    assert "runs/smoke/convstem_lstm/metrics.json" in inputs["04_train"]
    assert "runs/smoke/lightgbm/metrics.json" in inputs["03_baselines"]
    assert not any(path.startswith("runs/") for path in inputs["01_simulation"])
    assert {"book/chapters/05_benchmark.ipynb", "book/chapters/07_transfer.ipynb"} <= set(inputs["08_verification"])
    assert not any(path.startswith("book/chapters/") for c in CHAPTERS[:7] for path in inputs[c])


@needs_snakemake
def test_leaving_out_a_run_the_chapters_show_runs_the_chapters_in_book_order(checkout):
    counts, jobs = planned(checkout, "--config", "profile=smoke", "archs=specvit", "seeds=42,43")
    assert counts["train"] == 1 and counts["train_seed"] == 1 and counts["chapter"] == len(CHAPTERS)
    assert {o for job in jobs for o in job["output"]} >= {"runs/smoke/specvit/metrics.json",
                                                         "runs/smoke/seed43/specvit/metrics.json"}
    inputs = chapter_inputs(jobs)
    assert all(f"book/chapters/{a}.ipynb" in inputs[b] for a, b in zip(CHAPTERS, CHAPTERS[1:]))
    assert "runs/smoke/convstem_lstm/metrics.json" not in inputs["04_train"]  # chapter 4 trains it itself


@needs_snakemake
def make_book(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    """`make book CORES=2 PROFILE=smoke ARGS` in a copy of the checkout, with a PATH that lacks the venv (as `make`
    has it when the venv is not activated)."""
    shutil.copy2(ROOT / "Makefile", workdir / "Makefile")
    venv = Path(sys.executable).parent.parent
    return subprocess.run([shutil.which("make"), "-o", f"{venv}/.installed", "book", f"VENV={venv}", "CORES=2", "PROFILE=smoke",
                           *args], cwd=workdir, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          timeout=600, env={**os.environ, "SPECVIT_HOME": str(workdir), "PATH": "/usr/bin:/bin"})


@needs_snakemake
def test_make_book_with_cores_delegates_to_the_workflow(tmp_path, smoke_plan):
    """`make book CORES=2` runs the Snakemake workflow (here as a dry run): the same jobs as snakemake itself plans."""
    workdir = copy_checkout(tmp_path)
    result = make_book(workdir, "SNAKEMAKE_FLAGS=--dry-run")
    assert result.returncode == 0, result.stdout
    assert "snakemake --cores 2 --config profile=smoke --dry-run" in result.stdout
    table = re.search(r"Job stats:\njob +count\n[- ]+\n(.*?)\ntotal +(\d+)", result.stdout, re.S)
    assert Counter({rule: int(n) for rule, n in re.findall(r"^(\w+) +(\d+)$", table[1], re.M)}) == smoke_plan[0]
    assert not (workdir / "data").exists() and not (workdir / "runs").exists()  # a dry run makes nothing


@needs_snakemake
def test_make_book_with_cores_runs_the_steps_with_the_venvs_commands(tmp_path):
    """A real step through `make book CORES=2`: the dataset at smoke (`specvit simulate`), with the grid cached."""
    grids = [grid_file("smoke"), cache_file(instrument="gaia_rvs")]  # the grid job's two outputs
    if not all(grid.exists() for grid in grids):
        pytest.skip("the template grids are not synthesized yet (run `specvit grid`)")
    workdir = copy_checkout(tmp_path)
    (workdir / "data" / "cache").mkdir(parents=True)
    for grid in grids:
        shutil.copy(grid, workdir / "data" / "cache" / grid.name)  # newer than the modules copied before them
    result = make_book(workdir, "SNAKEMAKE_FLAGS=--until simulate")
    assert result.returncode == 0, result.stdout
    manifest = json.loads((workdir / "data" / "smoke" / "manifest.json").read_text())
    assert sum(entry["n"] for entry in manifest["files"].values()) == 384 + 128 + 256
    assert not (workdir / "runs").exists()  # --until simulate: nothing trained


def test_an_unknown_profile_is_refused_by_name(checkout):
    result = dry_run(checkout, "--config", "profile=nosuch")
    assert result.returncode != 0
    assert "Unknown profile 'nosuch'" in result.stdout and "smoke, quick, cpu, paper" in result.stdout
