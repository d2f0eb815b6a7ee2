# Two entry points (README): `make run` runs the default workflow end to end, then builds its
# HTML report (results/report.html); `make test` runs the test suite. Both create .venv from
# pyproject.toml first and reuse it while it is up to date.

VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= all
export PATH := $(BIN):$(PATH)

.PHONY: setup run test lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	snakemake --cores $(CORES)
	snakemake --report results/report.html

test: $(STAMP)
	pytest

lint: $(STAMP)
	ruff check src tests workflow benchmarks
	ruff format --check src tests workflow benchmarks
	snakefmt --check Snakefile rules
	snakemake --lint

clean:
	rm -rf results .snakemake
