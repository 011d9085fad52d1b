# Two commands: `make run` (the main job) and `make test` (the whole suite).
# Both create .venv with the machine's Python 3.11+ and install the project into it.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
OUT    := outputs

.PHONY: run test test-fast tools lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

# The tests also need the dev tools and PySpark (the Spark parity test; Java 17+).
$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev,spark]"
	touch $@ $(VENV)/.installed-run

## run: generate the sample, train, register, promote, score tonight's leads (with the
## Salesforce write-back file), write the report
run: $(VENV)/.installed-run
	$(BIN)/leadml sample --out data/sample --rows 20000 --seed 42
	$(BIN)/leadml train --config pipelines/configs/sample.yaml
	$(BIN)/leadml score data/sample/nightly.csv --output $(OUT)/nightly_scored.csv \
		--rules pipelines/configs/bant.yaml \
		--writeback pipelines/configs/writeback_salesforce.yaml
	$(BIN)/leadml report --output $(OUT)/report.html --scored $(OUT)/nightly_scored.csv

# Tools that some tests drive: Java for the Spark engine, Chromium for the report's
# headless screenshot. Installed from Debian's packages when missing (as root, as on CI), so
# a fresh machine runs those tests instead of skipping them.
tools:
	@missing=""; \
	command -v java >/dev/null || missing="$$missing default-jre-headless"; \
	command -v chromium >/dev/null || command -v chromium-browser >/dev/null \
		|| missing="$$missing chromium"; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
		echo "installing$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	else \
		echo "missing$$missing: install them (sudo apt-get install$$missing) or their tests skip"; \
	fi

# Tests run in one process per core (pytest-xdist), each test file on one of them.
PARALLEL := -n auto --dist loadfile

## test: the linter, then the whole test suite, slow tests included (CI runs exactly this)
test: $(VENV)/.installed-test tools lint
	$(BIN)/python -m pytest $(PARALLEL)

## test-fast: the suite without the tests marked slow (no training, no subprocesses), for
## working on one part; `make test` before a commit
test-fast: $(VENV)/.installed-test
	$(BIN)/python -m pytest -m "not slow" $(PARALLEL)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests pipelines benchmarks

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache
