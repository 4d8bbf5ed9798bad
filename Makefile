# datso — two commands: `make run` and `make test`. Everything else is what they call.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
SAMPLE_SIZE ?= small

.PHONY: run test check lint typecheck imports pytest deps browser-deps venv db sample serve bench clean-db fuzz

run: deps venv db sample serve

test: deps browser-deps venv db check pytest

deps:
	@bash scripts/install-system-deps.sh

browser-deps:
	@bash scripts/install-system-deps.sh --browser

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --upgrade pip
	@$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]' --config-settings editable_mode=compat
	@touch $@

db: venv
	@$(BIN)/datso db start
	@$(BIN)/datso db migrate

sample: db
	@$(BIN)/datso sample load --size $(SAMPLE_SIZE)

serve: db
	@echo "datso on http://$(HOST):$(PORT)/  (map: /map, API: /api.html, health: /health)"
	@$(BIN)/datso serve --host $(HOST) --port $(PORT)

check: lint typecheck imports

lint: venv
	@$(BIN)/ruff check .

typecheck: venv
	@$(BIN)/mypy $$(ls -d gis layers api tiles cli sample_data datso_client 2>/dev/null)

# the import contracts of pyproject.toml [tool.importlinter]: cli -> api -> tiles -> layers -> gis, and inside layers
imports: venv
	@$(BIN)/lint-imports

pytest: venv db
	@$(BIN)/python -m pytest -q $(PYTEST_ARGS)

clean-db:
	-@$(BIN)/datso db stop
	rm -rf .data/pg

# the long contract and property fuzz (not part of `make test`): schemathesis --checks all over every route of a
# live server on its own database (bench/fuzz_api.py; FUZZ_MAX_EXAMPLES per operation and role), then the
# hypothesis fuzz tests with the long profile
FUZZ_MAX_EXAMPLES ?= 170
FUZZ_PORT ?= 8105
fuzz: venv db
	@$(BIN)/python bench/fuzz_api.py --max-examples $(FUZZ_MAX_EXAMPLES) --port $(FUZZ_PORT)
	@HYPOTHESIS_PROFILE=fuzz $(BIN)/python -m pytest -q -m fuzz tests/ || test $$? -eq 5   # 5: no fuzz test selected
