# Two commands do everything on a fresh machine: `make report` and `make test`; `make experiments`
# adds the documents' training runs.
PY      := .venv/bin/python
STAMP   := .venv/.installed
PYTEST  := $(PY) -m pytest

.PHONY: report test experiments bench lint fmt clean-venv gpu-check test-compat

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[test,peers]'
	touch $(STAMP)

# The main job: every suite (quick sizes) on this machine's own device -> runs/report-<device>/
# (untracked; the committed reports/<device>/ change only with an explicit --out).
report: $(STAMP)
	$(PY) -m bench report --quick

test: $(STAMP)
	$(PY) -m ruff check .
	$(PYTEST) -q -m "not slow" --timeout=300

# The documents' training experiments on this machine's device: MNIST fetched and verified, the
# LeNet pairs over 3 seeds, document 001's CNNs timed on CIFAR-shaped batches. Resumable: run it
# again after an interruption. Writes reports/experiments/ (comparison.csv, comparison.md, plots).
experiments: $(STAMP)
	$(PY) -m bench data mnist
	$(PY) -m bench experiments

# The pytest-benchmark suite (timed; not part of `make test` beyond its smoke run).
bench: $(STAMP)
	$(PYTEST) tests/benchmarks --benchmark-enable --benchmark-only -q

# The first check of a new GPU (H100/H200/A100) in <= 10 minutes, with the machine's own python3
# from the repo root: no venv, no package registry. Results in $(OUT) (default runs/gpu-check):
# at most 8 files with the caller's log (`make gpu-check OUT=dir 2>&1 | tee dir/log.txt`).
GPU_CHECK_OUT := $(if $(OUT),$(OUT),runs/gpu-check)
gpu-check:
	python3 -m bench gpu-check --out $(GPU_CHECK_OUT)

# The CPU suite on the GPU machine's stack (torch 2.11 / torchvision 0.26 / triton 3.6) in a
# second venv: a few GB to download, so not part of `make test` or CI.
COMPAT := .venv-compat
$(COMPAT)/.installed: pyproject.toml constraints-compat.txt
	test -x $(COMPAT)/bin/python || python3 -m venv $(COMPAT)
	$(COMPAT)/bin/python -m pip install -q --upgrade pip
	$(COMPAT)/bin/python -m pip install -q -c constraints-compat.txt -e '.[test]'
	touch $@

test-compat: $(COMPAT)/.installed
	$(COMPAT)/bin/python -m pytest -q -m "not slow" --timeout=300

lint: $(STAMP)
	$(PY) -m ruff check . && $(PY) -m ruff format --check .

fmt: $(STAMP)
	$(PY) -m ruff format . && $(PY) -m ruff check --fix .

clean-venv:
	rm -rf .venv
