# Two commands for a new user:  `make run` (install if needed, run the workflow, write the report)
# and `make test` (install if needed, run the tests). Both work offline but for the package index.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.idia-installed
CORES ?= all
export NO_ALBUMENTATIONS_UPDATE := 1

.PHONY: install run report test lint clean

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

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests workflow benchmarks
	$(BIN)/snakemake --lint

clean:
	rm -rf results logs .snakemake
