# Two commands do everything on a fresh machine: `make report` and `make test`; `make experiments`
# adds the documents' training runs.
PY      := .venv/bin/python
STAMP   := .venv/.installed
PYTEST  := $(PY) -m pytest

.PHONY: report test experiments bench lint fmt clean-venv

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[test]'
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

lint: $(STAMP)
	$(PY) -m ruff check . && $(PY) -m ruff format --check .

fmt: $(STAMP)
	$(PY) -m ruff format . && $(PY) -m ruff check --fix .

clean-venv:
	rm -rf .venv
