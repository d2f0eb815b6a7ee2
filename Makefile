# Two entry points (README): `make run` runs the default workflow end to end, then builds its
# HTML report (results/report.html); `make test` runs the test suite. Both create .venv from
# pyproject.toml first and reuse it while it is up to date. `make vllm-env` builds .venv-vllm,
# the latency stage's vLLM environment (envs/vllm.txt), the same way; `make test` builds it too,
# for the test that times shapes through vLLM. The suite runs on three pytest-xdist workers: one
# holds the SLURM rehearsal, which waits on the test cluster's polls for much of its time, one
# the micro workflow run and the tests that read it, and the third the other tests, which fill
# the time the first two leave (tests/conftest.py keeps tests that share a fixture together).

VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= all
VLLM_VENV := .venv-vllm
VLLM_STAMP := $(VLLM_VENV)/.installed
export PATH := $(BIN):$(PATH)

.PHONY: setup vllm-env run test lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

vllm-env: $(VLLM_STAMP)

$(VLLM_STAMP): envs/vllm.txt pyproject.toml
	test -x $(VLLM_VENV)/bin/python || python3 -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --no-deps \
		-r envs/vllm.txt
	$(VLLM_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	$(VLLM_VENV)/bin/python -c 'from vllm import LLM; import infscale.latency.measure'
	touch $(VLLM_STAMP)

run: $(STAMP)
	snakemake --cores $(CORES)
	snakemake --report results/report.html

test: $(STAMP) $(VLLM_STAMP)
	pytest --numprocesses 3 --dist loadgroup --no-loadscope-reorder

lint: $(STAMP)
	ruff check src tests workflow benchmarks
	ruff format --check src tests workflow benchmarks
	snakefmt --check Snakefile rules
	snakemake --lint

clean:
	rm -rf results .snakemake
