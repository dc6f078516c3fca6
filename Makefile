# `make run` sets up .venv (when missing or stale) and trains the quickstart recipe;
# `make test` sets up .venv and runs the test suite. Both work on a fresh clone.
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint

$(STAMP): pyproject.toml
	test -x $(BIN)/python || python3 -m venv $(VENV)
	rm -rf *.egg-info  # a stale one in the tree would shadow the new entry points
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	# taming-transformers' own modules, the reference the import tests compare with; without
	# its dependencies (an old pytorch-lightning), which those modules do not use
	$(BIN)/python -m pip install --quiet --no-deps taming-transformers==0.0.1
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/laser run recipes/quickstart.yaml

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .
