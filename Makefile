# The two commands of the README: `make book` and `make test`. Each installs what it needs into .venv first.
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= quick
# A machine without an NVIDIA GPU gets the CPU build of PyTorch pinned first; a GPU machine gets PyPI's CUDA build.
TORCH_CPU ?= torch==2.13.0
TORCH_GPU ?= torch>=2.4
PORT ?= 8000
# make book CORES=N: the same steps as the Snakemake workflow (workflow/Snakefile) on N cores, independent training
# runs and chapters in parallel; SNAKEMAKE_FLAGS adds options (e.g. --dry-run, --profile workflow/profiles/slurm).
CORES ?=
SNAKEMAKE_FLAGS ?=

.PHONY: install book test chapters clean-book browser serve

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	if command -v nvidia-smi >/dev/null 2>&1; then $(PY) -m pip install --quiet "$(TORCH_GPU)"; \
	else $(PY) -m pip install --quiet "$(TORCH_CPU)"; fi
	$(PY) -m pip install --quiet -e '.[book,test]'
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

# Execute every chapter with papermill at $(PROFILE), then render the book (no re-execution); with CORES=N, through
# the Snakemake workflow (installed on first use: the package's [workflow] extra, Python >= 3.11), with the venv first
# on PATH: its steps call specvit and papermill.
book: install
ifeq ($(strip $(CORES)),)
	$(VENV)/bin/specvit book --profile $(PROFILE)
else
	test -x $(VENV)/bin/snakemake || $(PY) -m pip install --quiet -e '.[workflow]'
	PATH="$(abspath $(VENV))/bin:$$PATH" snakemake --cores $(CORES) --config profile=$(PROFILE) $(SNAKEMAKE_FLAGS)
endif

# The template grid (synthesized once, cached), unit tests, every notebook under nbval at the smoke profile, then
# the smoke book (Sphinx warnings are errors) and its pages in headless Chromium (tests/browser, which must not skip).
test: install browser
	$(VENV)/bin/specvit grid
	$(VENV)/bin/pytest -q tests --ignore=tests/browser
	SPECVIT_PROFILE=smoke $(VENV)/bin/pytest -q -p no:cacheprovider --nbval-lax notebooks/
	$(VENV)/bin/specvit book --profile smoke --strict
	SPECVIT_BROWSER_TESTS=1 $(VENV)/bin/pytest -q -p no:cacheprovider tests/browser

# Headless Chromium and its WebDriver for tests/browser: Debian's chromium and chromium-driver, installed only when
# missing (as root, else with sudo). Elsewhere install them yourself or set SPECVIT_CHROMIUM and SPECVIT_CHROMEDRIVER.
browser:
	@if [ -n "$$SPECVIT_CHROMIUM" ] && [ -n "$$SPECVIT_CHROMEDRIVER" ]; then exit 0; fi; \
	if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then exit 0; fi; \
	if ! command -v apt-get >/dev/null 2>&1; then \
	  echo "tests/browser needs Chromium and chromedriver: install them or set SPECVIT_CHROMIUM and SPECVIT_CHROMEDRIVER"; \
	  exit 1; fi; \
	if [ "$$(id -u)" -eq 0 ]; then SUDO=; else SUDO=sudo; fi; \
	echo "installing chromium and chromium-driver (apt-get)"; \
	$$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver

# The built book over http://127.0.0.1:$(PORT) (it also works opened from file://).
serve:
	@test -f _build/html/index.html || { echo "no book in _build/html: run make book first"; exit 1; }
	$(PY) -m http.server $(PORT) --bind 127.0.0.1 --directory _build/html

clean-book:
	rm -rf _build book/chapters
