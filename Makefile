# spikehq: every target bootstraps its own virtual environment from pyproject.toml.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

CONFIG ?= configs/example_tiny.json
OUT    ?= build/gen
LANES  ?= balanced
# make synth: the user's LANES if given, else fit (the fastest balanced:N whose top fits the device)
SYNTH_LANES := $(if $(filter command line environment,$(origin LANES)),$(LANES),fit)
SAMPLES ?=
SEEDS  ?=
JOBS   ?= 2
TARGET ?= ecp5
CLOCK_MHZ ?= 100

.PHONY: help venv icarus waves-deps gen import-nir test test-fast verify bench bench-network bench-pot-vs-uniform bench-pot-width bench-nir bench-hardware bench-fpga-cost bench-attention e2e search synth fit-fpga-cost clean

help:  ## list targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e ".[sim,synth,frameworks]"
	touch $@

venv: $(STAMP)  ## create .venv and install the project with its pinned dependencies

# Icarus Verilog (the 4-state event-driven simulator of the second regression) from Debian's
# package when missing; without root or apt-get it says so in one line and its tests skip.
icarus:  ## install Icarus Verilog (Debian package iverilog) when missing; needs root and apt-get
	@if command -v iverilog >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	     { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iverilog >/dev/null 2>&1 || \
	       { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iverilog >/dev/null 2>&1; }; } && \
	     command -v iverilog >/dev/null 2>&1; then \
	  echo "installed Icarus Verilog ($$(iverilog -V 2>&1 | head -n 1)) from Debian's package"; \
	else \
	  echo "Icarus Verilog could not be installed (needs root and apt-get): the Icarus tests are skipped"; \
	fi

# Verilator's FST writer (SPIKEHQ_WAVES=1) compiles against lz4: Debian's liblz4-dev.
waves-deps:  ## install liblz4-dev when missing (Verilator FST waveforms); needs root and apt-get
	@if [ -f /usr/include/lz4.h ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	     DEBIAN_FRONTEND=noninteractive apt-get install -y -qq liblz4-dev >/dev/null 2>&1; then \
	  echo "installed liblz4-dev (Verilator FST waveforms)"; \
	else \
	  echo "liblz4-dev could not be installed (needs root and apt-get): Verilator cannot write FST waveforms"; \
	fi

gen: $(STAMP)  ## Verilog per layer (+ the network top and a FuseSoC core for a graph), manifest, weight init data: make gen CONFIG=path [OUT=dir] [LANES=balanced] [WRAPPER=axis]
	$(PY) -m spikehq.rtl.gen --config $(CONFIG) --out $(OUT) --lanes $(LANES) $(if $(WRAPPER),--wrapper $(WRAPPER))

import-nir: $(STAMP)  ## NIR graph → searched.json + weights for make gen: make import-nir NIR=model.nir OUT=dir [NIR_ARGS="--scheme pot-4 --dt 1"]
	$(PY) -m spikehq.nirio $(NIR) --out $(OUT) $(NIR_ARGS)

test: $(STAMP) icarus  ## full regression: unit tests, amaranth.sim tests, cocotb on Verilator and on Icarus Verilog
	$(PY) -m pytest -n $(JOBS) -p no:cacheprovider -ra tests

verify: $(STAMP) icarus  ## the PE regression at scale on Verilator and Icarus (matrix with new seeds, large/odd geometries, random configs) until VALUES values per simulator are compared (default 500000): make verify [VALUES=n]
	$(PY) -m spikehq.sim.verify --values $(or $(VALUES),500000)

test-fast: $(STAMP)  ## everything except the Verilator and Icarus regressions
	$(PY) -m pytest -n $(JOBS) -p no:cacheprovider -m "not verilator and not icarus" tests

bench: $(STAMP)  ## cycles per layer-step against input spike density, and generation time
	$(PY) benchmarks/bench_pe.py

e2e: $(STAMP)  ## whole-network RTL vs golden (C++ Verilator harness), all 360 digits test samples: make e2e [E2E_CONFIG=path] [SAMPLES=n] [FIRST=i]
	$(PY) -m spikehq.sim.e2e --config $(or $(E2E_CONFIG),configs/digits_searched/searched.json) $(if $(SAMPLES),--samples $(SAMPLES)) $(if $(FIRST),--first $(FIRST))

bench-network: $(STAMP)  ## cycles per inference, SOP/cycle, lane utilization, Verilator speed, lanes sweep
	$(PY) benchmarks/bench_network.py

bench-pot-vs-uniform: $(STAMP)  ## PoT vs uniform MAC and PE on ECP5 (yosys, nextpnr, activity power): regenerates docs/pot_vs_uniform.{md,json,png}; cached, about 20 min cold
	$(PY) benchmarks/pot_vs_uniform.py --out docs

bench-hardware: $(STAMP)  ## before/after hardware table + plot from make synth (25F, 85F) and make bench-network reports: docs/hardware.{json,png}, table in docs/synthesis.md
	$(PY) benchmarks/bench_hardware.py --out docs

bench-pot-width: $(STAMP)  ## how much of 4-bit PoT's area is its wider datapath (yosys only, about 40 s): prints a table
	$(PY) benchmarks/pot_width.py

bench-nir: $(STAMP)  ## golden vs snnTorch/Norse quantized float model agreement per weight scheme (docs/nir.md; about 2 min): prints a table
	$(PY) benchmarks/nir_agreement.py

bench-attention: $(STAMP)  ## SSA vs A2OS2A digits results (configs/digits_searched, configs/digits_a2os2a): accuracy, bits, storage, energy (golden network, about 1 min): prints a table
	$(PY) benchmarks/attention_variants.py

search: $(STAMP)  ## SpikeHQ quantization search on the digits (β sweep × seeds, report, searched.json): make search [SEEDS="0 1 2"] [SEARCH_ARGS="--cost dense --out build/search"]
	$(PY) -m spikehq.search $(if $(SEEDS),--seeds $(SEEDS)) $(SEARCH_ARGS)

synth: $(STAMP)  ## area, Fmax, power per layer; network top and its engines placed and routed (exported networks): make synth CONFIG=path TARGET=ice40|ecp5|xilinx [DEVICE=85k] [CLOCK_MHZ=100] [LANES=fit]
	$(PY) -m spikehq.synth --config $(CONFIG) --target $(TARGET) --clock-mhz $(CLOCK_MHZ) --lanes $(SYNTH_LANES) $(if $(DEVICE),--device $(DEVICE))

fit-fpga-cost: $(STAMP)  ## sweep of generated PEs (yosys; Verilator activity on a few) → the search's FPGA cost model search/data/fpga_cost_$(TARGET).json: make fit-fpga-cost [TARGET=ecp5|ice40|xilinx]; cached, ecp5 about 25-35 min cold on 2 loaded cores
	$(PY) -m spikehq.synth.fit_cost --target $(TARGET)

bench-fpga-cost: $(STAMP)  ## FPGA cost model vs yosys per layer (LUT eq., BRAM; goal ±15 %): make bench-fpga-cost [FPGA_CONFIG=configs/digits_searched/searched.json] [TARGET=ecp5]
	$(PY) benchmarks/fpga_cost.py --config $(or $(FPGA_CONFIG),configs/digits_searched/searched.json) --target $(TARGET)

clean:  ## remove build outputs (keeps .venv)
	rm -rf build sim_build
