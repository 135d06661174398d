# Two commands for a new user:  `make run` (install if needed, run the workflow, write the report)
# and `make test` (install if needed, run the tests). Both work offline but for the package index.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.idia-installed
CORES ?= all
export NO_ALBUMENTATIONS_UPDATE := 1

.PHONY: install run report test test-fast lint bench-search clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/snakemake --cores $(CORES)
	$(BIN)/snakemake --report results/report.html
	@echo "report: results/report.html  figures: results/figures/"

report: $(STAMP)
	$(BIN)/snakemake --report results/report.html

# Every tier: unit tests, the end-to-end runs of the tiny workflow (marker e2e), the browser
# tests (marker browser) and the benchmarks' --small modes (marker bench). CI runs this.
test: $(STAMP)
	$(BIN)/python -m pytest

# The unit tier only, for development (under 2 minutes on 2 cores).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not e2e and not browser and not bench"

# ruff, Snakemake's linter, snakefmt and mypy on src/ and the scripts (configured in
# pyproject.toml). Every check runs, so that one run shows all findings; any finding fails.
lint: $(STAMP)
	status=0; \
	$(BIN)/ruff check src tests workflow benchmarks || status=1; \
	$(BIN)/snakemake --lint || status=1; \
	$(BIN)/snakefmt --check workflow Snakefile || status=1; \
	$(BIN)/mypy || status=1; \
	exit $$status

# The caption-search benchmark; ripgrep comes from the distribution's packages (root needed).
# Arguments go through BENCH_ARGS, e.g. BENCH_ARGS="--captions 200000 --names 500 --skip-loop".
bench-search: $(STAMP)
	command -v rg >/dev/null || apt-get install -y ripgrep || echo "no ripgrep: the benchmark skips it"
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/bench_search.py $(BENCH_ARGS)

clean:
	rm -rf results logs .snakemake
