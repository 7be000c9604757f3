# One command to run the advisor, one to run the tests; each builds its own virtualenv.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test bench graph check clean insights-demo

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/ptce-bot chat

test: $(STAMP)
	$(BIN)/ptce-bot kb check
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python -m bench

insights-demo: $(STAMP)
	$(BIN)/python -m bench.insights_demo --html build/insights-demo.html

graph: $(STAMP)
	$(BIN)/ptce-bot graph

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
