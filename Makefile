# Quick start: `make demo` (install + analyse the bundled example), `make test` (the whole suite).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
DEMO_DIR ?= demo-experiment

.PHONY: venv dev demo test test-fast lint bench fuzz browser calibrate golden clean schema screenshots vendor-plotly

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $@ $(STAMP)

venv: $(STAMP)
dev: $(DEV_STAMP)

## Build the bundled example sweep and analyse it.
demo: $(STAMP)
	$(BIN)/python -m analyze_experiment.demo $(DEMO_DIR)
	$(BIN)/analyze-experiment $(DEMO_DIR)

## Browser for the HTML report test (Debian chromium); skipped with a reason when it cannot be installed.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) || echo "chromium not installed: the browser test will be skipped"; \
	  else echo "chromium not found and cannot be installed here: the browser test will be skipped"; fi; }

## PNGs of the demo's report.html (first screen, findings, a wide table, the agreement matrix) in
## headless Chromium, with its layout checked (no sideways scroll, no overlapping text).
SCREENSHOTS_DIR ?= build/screenshots
screenshots: $(DEV_STAMP) browser
	$(BIN)/python tests/screenshots.py $(SCREENSHOTS_DIR)

## Re-vendor plotly.js's cartesian partial bundle at the version the installed plotly expects.
vendor-plotly: $(STAMP)
	@v=$$($(BIN)/python -c "import plotly.offline as o; print(o.get_plotlyjs_version())"); \
	  tmp=$$(mktemp -d) && (cd $$tmp && npm pack -q plotly.js-cartesian-dist-min@$$v >/dev/null && tar xzf *.tgz) && \
	  cp $$tmp/package/plotly-cartesian.min.js src/analyze_experiment/report/assets/ && \
	  cp $$tmp/package/LICENSE src/analyze_experiment/report/assets/plotly.js-LICENSE.txt && rm -rf $$tmp && \
	  $(BIN)/python -c "import plotly.io as pio; print(pio.json.to_json_plotly(pio.templates['plotly_white']))" \
	    > src/analyze_experiment/report/assets/plotly_white.json && \
	  echo "plotly.js-cartesian-dist-min $$v vendored"

test: $(DEV_STAMP) browser
	$(BIN)/ruff check src tests
	$(BIN)/python -m pytest -n 2 --dist worksteal -q --durations=10

## The quick subset used while landing a change (no end-to-end, browser or simulation tests).
test-fast: $(DEV_STAMP)
	$(BIN)/python -m pytest -n 2 --dist worksteal -q -m "not slow"

## Regenerate the summary.json JSON Schema from its pydantic models (a test checks it is current).
schema: $(STAMP)
	$(BIN)/python -c "from analyze_experiment.report.summary_model import write_schema; write_schema()"

lint: $(DEV_STAMP)
	$(BIN)/ruff check src tests

## Benchmarks (docs/performance.md); BENCH_SIZES=10,100,1000 adds the 1,000-run sweep (about an hour to build once).
BENCH_SIZES ?= 10,100
bench: $(DEV_STAMP)
	BENCH_SIZES=$(BENCH_SIZES) $(BIN)/python -m bench

## Refresh tests/golden/ (the bundled example's outputs) after an intended change to the report.
golden: $(DEV_STAMP)
	$(BIN)/python -m tests.golden

fuzz: $(DEV_STAMP)
	$(BIN)/python -m tests.fuzz.run_full

## Null and power simulations of whole reports (figures in docs/statistics.md); SWEEPS=300 by default.
SWEEPS ?= 300
calibrate: $(STAMP)
	$(BIN)/python -m bench.calibrate --sweeps $(SWEEPS) --power-sweeps 100

clean:
	rm -rf $(VENV) $(DEMO_DIR) bench/_work .pytest_cache
