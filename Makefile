# Each target sets itself up: the first run creates .venv and installs the suite into it.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint benchmark-sentiment benchmark-forecasting

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[data,dev,forecast-peers]"
	touch $(STAMP)

# The main job: train, evaluate, export and query every app on its bundled default data.
# A rerun reuses finished steps; `make demo FRESH=1` moves the old runs aside and retrains.
demo: $(STAMP)
	bash scripts/main_job.sh

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

benchmark-sentiment: $(STAMP)
	$(BIN)/pip install --quiet -e ".[bench]"
	$(BIN)/python benchmarks/sentiment_quality.py
	$(BIN)/python benchmarks/sentiment_speed.py

benchmark-forecasting: $(STAMP)
	$(BIN)/pip install --quiet -e ".[bench]"
	$(BIN)/python benchmarks/forecasting_quality.py --preset base --seeds 1,2,3
	$(BIN)/python benchmarks/forecasting_quality.py --preset weather --seeds 1,2,3
	$(BIN)/python benchmarks/forecasting_speed.py
