# spikehq: every target bootstraps its own virtual environment from pyproject.toml.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

CONFIG ?= configs/example_tiny.json
OUT    ?= build/gen
LANES  ?= balanced
SAMPLES ?= 50
JOBS   ?= 2
TARGET ?= ecp5
CLOCK_MHZ ?= 100

.PHONY: help venv gen test test-fast bench bench-network e2e search synth clean

help:  ## list targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e ".[sim,synth]"
	touch $@

venv: $(STAMP)  ## create .venv and install the project with its pinned dependencies

gen: $(STAMP)  ## Verilog per layer (+ the network top for a search export), manifest, weight init data: make gen CONFIG=path [OUT=dir] [LANES=balanced]
	$(PY) -m spikehq.rtl.gen --config $(CONFIG) --out $(OUT) --lanes $(LANES)

test: $(STAMP)  ## full regression: unit tests, amaranth.sim tests, cocotb on Verilator
	$(PY) -m pytest -n $(JOBS) -p no:cacheprovider -ra tests

test-fast: $(STAMP)  ## everything except the Verilator regressions
	$(PY) -m pytest -n $(JOBS) -p no:cacheprovider -m "not verilator" tests

bench: $(STAMP)  ## cycles per layer-step against input spike density, and generation time
	$(PY) benchmarks/bench_pe.py

e2e: $(STAMP)  ## whole-network RTL vs golden on digits test samples: make e2e [E2E_CONFIG=path] [SAMPLES=50]
	$(PY) -m spikehq.sim.e2e --config $(or $(E2E_CONFIG),configs/digits_searched/searched.json) --samples $(SAMPLES)

bench-network: $(STAMP)  ## cycles per inference, SOP/cycle, lane utilization, Verilator speed, lanes sweep
	$(PY) benchmarks/bench_network.py

search: $(STAMP)  ## SpikeHQ quantization search on the digits (β sweep, report, searched.json): make search [SEARCH_ARGS="--beta 1 --out build/search"]
	$(PY) -m spikehq.search $(SEARCH_ARGS)

synth: $(STAMP)  ## area, Fmax, power estimates per layer: make synth CONFIG=path TARGET=ice40|ecp5|xilinx [DEVICE=85k] [CLOCK_MHZ=100] [LANES=balanced]
	$(PY) -m spikehq.synth --config $(CONFIG) --target $(TARGET) --clock-mhz $(CLOCK_MHZ) --lanes $(LANES) $(if $(DEVICE),--device $(DEVICE))

clean:  ## remove build outputs (keeps .venv)
	rm -rf build sim_build
