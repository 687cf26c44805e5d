# The two commands of the README: `make book` and `make test`. Each installs what it needs into .venv first.
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= quick
# A machine without an NVIDIA GPU gets the CPU build of PyTorch pinned first; a GPU machine gets PyPI's CUDA build.
TORCH_CPU ?= torch==2.13.0
TORCH_GPU ?= torch>=2.2

.PHONY: install book test chapters clean-book

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	if command -v nvidia-smi >/dev/null 2>&1; then $(PY) -m pip install --quiet "$(TORCH_GPU)"; \
	else $(PY) -m pip install --quiet "$(TORCH_CPU)"; fi
	$(PY) -m pip install --quiet -e '.[book,test]'
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

# Execute every chapter with papermill at $(PROFILE), then render the book (no re-execution).
book: install
	$(VENV)/bin/specvit book --profile $(PROFILE)

# The template grid (synthesized once, cached), unit tests, then every notebook under nbval at the smoke profile.
test: install
	$(VENV)/bin/specvit grid
	$(VENV)/bin/pytest -q tests
	SPECVIT_PROFILE=smoke $(VENV)/bin/pytest -q -p no:cacheprovider --nbval-lax notebooks/

clean-book:
	rm -rf _build book/chapters
