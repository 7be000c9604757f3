# One command to run the advisor, one to run the tests; each builds its own virtualenv.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run web web-screenshots test bench graph report-sample check clean insights-demo

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/ptce-bot chat

# The advisor on a web page: http://127.0.0.1:8080 (HOST=0.0.0.0 PORT=… to change).
HOST ?= 127.0.0.1
PORT ?= 8080
web: $(STAMP)
	$(BIN)/ptce-bot web --host $(HOST) --port $(PORT)

# Lint, types, the knowledge check, then the whole suite on every core (the ten slowest tests printed last).
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/ptce-bot kb check
	$(BIN)/python -m pytest -n auto --durations=10

bench: $(STAMP)
	$(BIN)/python -m bench

insights-demo: $(STAMP)
	$(BIN)/python -m bench.insights_demo --html build/insights-demo.html

graph: $(STAMP)
	$(BIN)/ptce-bot graph

# The README's two screenshots of the web page (phone and desktop widths; needs chromium and chromium-driver).
web-screenshots: $(STAMP)
	PTCE_WEB_SCREENSHOTS=docs $(BIN)/python -m pytest -q tests/test_web_browser.py -k axe

# One page of a real PDF report, shown in the README (needs pdftoppm: apt-get install poppler-utils).
report-sample: $(STAMP)
	$(BIN)/python -m report.sample docs/report-page.png

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
