# `make run` opens the studio, `make test` runs the tests; both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test bench evaluator clean venv

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[studio,test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/gan-studio

# The tests marked slow (minutes of training) run in CI (CI=true) or with `make test SLOW=1`.
SLOW_FLAG = $(if $(or $(SLOW),$(filter true 1 yes,$(CI))),,-m "not slow")

test: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q $(SLOW_FLAG) tests

bench: $(STAMP)
	$(BIN)/python bench/throughput.py --quick

evaluator: $(STAMP)
	$(BIN)/gan-studio evaluator

clean:
	rm -rf $(VENV) build *.egg-info
