"""FPGA cost model of the search (``--cost fpga --target ecp5|ice40|xilinx``). Torch-free.

Per layer and quantization candidate it predicts what ``make synth`` would report for the
layer's generated PE (``rtl/pe.py``): LUT equivalents, flip-flops, DSPs, block RAMs (and
their bits), LUT RAM cells, and an energy per cycle / per SOP / per inference from the
project's activity-based power estimate (``synth/power.py``).

* **Memories are computed, not fitted.** :func:`pe_memories` lists the PE's memories from the
  same config values the PE derives them from (``LayerConfig.widths``): weights
  ``fan_in·G × L·b`` (a ROM, banked by the ECP5 block-RAM depth of its word width),
  parameters ``G × L·(bias + threshold width)`` (ROM) and the accumulators ("membranes",
  ``H'W'G × L·membrane width``, whatever the membrane mode: docs/arithmetic.md §10), with
  ``G = C_out / L``. A memory of at most ``lut_ram_max_depth`` words goes to LUT RAM (a RAM) or
  logic (a ROM); a ROM (or weight bank) of at most ``rom_logic_max_bits`` bits is left to logic by
  yosys (the fit chooses the threshold that matches yosys on the sweep); anything
  else takes ``min over aspect ratios (d × w) of ceil(D/d)·ceil(W/w)`` block RAMs of the
  target (DP16KD 18 kbit on ECP5, SB_RAM40_4K 4 kbit on iCE40, RAMB18 = ½ RAMB36 on Xilinx).
  These constants and tables are data in the model file, written by the fit command from the
  RTL's own values (``rtl.pe.LUT_RAM_MAX_DEPTH``, ``rtl.banks.bank_depth``).
  *Assumes* the three memories above; if the PE's memories
  change, update :func:`pe_memories` (``tests/test_search_fpga_cost.py`` compares it with the
  elaborated PE) and rerun ``make fit-fpga-cost``.
* **Logic is fitted.** LUT eq., FF and DSP are linear in the :func:`features` of a PE (a
  constant, conv vs linear, lanes per scheme × weight bits × binary/multi-bit activations, lanes × datapath widths, address
  bits, logic-ROM and LUT-RAM bits, bank multiplexers), least squares over a sweep of PEs the
  project generates and synthesizes (``python -m spikehq.synth.fit_cost``, ``make
  fit-fpga-cost``); the coefficients are stored in ``search/data/fpga_cost_<target>.json``.
* **Energy** per cycle = ``synth/power.py``'s estimate on the predicted area with the mean
  switching activity (toggle rate, MAC and memory active fractions) measured by Verilator on
  sweep PEs, per binary/multi-bit input. A PE spends ``k²·G`` cycles per input event
  (``L`` synaptic operations per cycle) and ``H'W'G`` cycles per step on the neuron update,
  so per inference ``cycles = T·(r·H·W·C_in·k²·G + H'W'G)`` with ``r`` the input spike rate,
  energy per SOP = energy per cycle / ``L``.

The search's scalar (``--cost fpga``): **area in LUT equivalents** of the target's default
device, ``LUT eq. + BRAM · (device LUTs / device BRAMs) + DSP · (device LUTs / device DSPs)``:
each block RAM and DSP costs the LUTs its share of the device is worth. fp32 candidates have no
PE: their cost is the uniform-4 PE's LUT eq., FF and DSP × 8 (32/4 bits) with block RAM
computed for 32-bit weights (a documented stand-in, not a measurement).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path

from ..golden.config import LayerConfig, LayerWidths, NeuronConfig
from ..golden.lanes import balanced_lanes
from .cost import LayerShape, candidate_scheme

__all__ = ["MODEL_FORMAT", "TARGETS", "FpgaCostError", "Memory", "model_path", "load_model", "validate_model",
           "pe_memories", "bank_words", "memory_cells", "features", "FEATURE_NAMES", "group_key", "predict", "layer_config",
           "search_lanes", "candidate_cost", "area_lut_equiv", "FP32_FACTOR"]

MODEL_FORMAT = "spikehq-fpga-cost"
TARGETS = ("ice40", "ecp5", "xilinx")
DATA_DIR = Path(__file__).resolve().parent / "data"
FP32_FACTOR = 8          # fp32 stand-in: uniform-4 logic × 32/4
RESOURCES = ("lut_equiv", "ff", "dsp")
GROUPS = tuple(f"{s}{b}-{a}" for s in ("pot", "uni") for b in (2, 4) for a in ("a1", "am"))


class FpgaCostError(ValueError):
    """A missing or malformed FPGA cost model file (one line)."""


@dataclass(frozen=True)
class Memory:
    name: str
    depth: int
    width: int
    rom: bool
    banked: bool = False


def model_path(target: str) -> Path:
    return DATA_DIR / f"fpga_cost_{target}.json"


def validate_model(model: dict, source: str) -> dict:
    """Check the fields :func:`predict` reads; raise :class:`FpgaCostError` naming the first bad one."""
    def need(cond, what):
        if not cond:
            raise FpgaCostError(f"{source}: {what}")
    need(isinstance(model, dict) and model.get("format") == MODEL_FORMAT, f"format: expected {MODEL_FORMAT!r}")
    need(model.get("target") in TARGETS, f"target: expected one of {', '.join(TARGETS)}")
    names = model.get("features")
    need(names == list(FEATURE_NAMES), f"features: expected {list(FEATURE_NAMES)} (regenerate the model)")
    coef = model.get("coefficients")
    need(isinstance(coef, dict), "coefficients: expected an object per resource")
    for res in RESOURCES:
        row = coef.get(res)
        need(isinstance(row, list) and len(row) == len(names) and all(isinstance(v, (int, float)) for v in row),
             f"coefficients.{res}: expected {len(names)} numbers")
    mem = model.get("memory")
    need(isinstance(mem, dict), "memory: expected an object")
    for key in ("lut_ram_max_depth", "rom_logic_max_bits"):
        need(isinstance(mem.get(key), int) and mem[key] >= 0, f"memory.{key}: expected a non-negative integer")
    for key in ("bram_aspects", "bank_aspects"):
        rows = mem.get(key)
        need(isinstance(rows, list) and rows and all(isinstance(r, list) and len(r) == 2 and all(
            isinstance(v, int) and v > 0 for v in r) for r in rows), f"memory.{key}: expected [[width, depth], ...]")
    need(isinstance(mem.get("bram_bits"), int) and isinstance(mem.get("bram_weight"), (int, float)),
         "memory.bram_bits / bram_weight: expected numbers")
    need(mem.get("lutram_cell") is None or (isinstance(mem["lutram_cell"], list) and len(mem["lutram_cell"]) == 2),
         "memory.lutram_cell: expected [depth, width] or null")
    dev = model.get("device")
    need(isinstance(dev, dict) and all(isinstance(dev.get(k), int) and dev[k] > 0 for k in ("lut", "bram", "dsp")),
         "device: expected lut, bram, dsp capacities")
    energy = model.get("energy")
    need(isinstance(energy, dict) and isinstance(energy.get("coefficients"), dict)
         and all(isinstance(energy.get("activity", {}).get(a), dict) for a in ("a1", "am")),
         "energy: expected coefficients and activity.a1 / activity.am")
    return model


def load_model(target: str, path: Path | None = None) -> dict:
    """The fitted model of ``target`` (``search/data/fpga_cost_<target>.json`` by default)."""
    if target not in TARGETS:
        raise FpgaCostError(f"--target: expected one of {', '.join(TARGETS)}, got {target!r}")
    path = Path(path) if path is not None else model_path(target)
    if not path.is_file():
        raise FpgaCostError(f"{path}: FPGA cost model for {target} missing; create it with "
                            f"`make fit-fpga-cost TARGET={target}`")
    try:
        model = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise FpgaCostError(f"{path}: not valid JSON (line {e.lineno}: {e.msg})") from None
    validate_model(model, str(path))
    if model["target"] != target:
        raise FpgaCostError(f"{path}: target: expected {target!r}, got {model['target']!r}")
    return model


# ---- geometry -----------------------------------------------------------------------------------

def pe_memories(layer: LayerConfig, widths: LayerWidths) -> list[Memory]:
    """The PE's memories (module docstring), depths at least 2 words as the PE makes them."""
    L, G = layer.lanes, layer.groups
    neuron = layer.out_height * layer.out_width * G
    return [Memory("weights", max(layer.fan_in * G, 2), L * layer.bits, rom=True, banked=True),
            Memory("params", max(G, 2), L * (widths.bias_width + widths.threshold_width), rom=True),
            Memory("membranes", max(neuron, 2), L * widths.membrane_width, rom=False)]


def bank_words(width: int, aspects) -> int:
    return next((d for w, d in aspects if width <= w), aspects[-1][1])


def _brams(depth: int, width: int, aspects) -> int:
    return min(math.ceil(depth / d) * math.ceil(width / w) for w, d in aspects)


def memory_cells(mem: Memory, model: dict) -> dict:
    """Block RAMs, BRAM bits, LUT RAM cells and logic bits (ROM in LUTs, banks left to logic,
    RAM in flip-flops where the device has no LUT RAM) of one memory; plus the bank multiplexer
    bits (word width × banks beyond the first)."""
    m = model["memory"]
    out = {"bram": 0.0, "bram_bits": 0, "lutram": 0, "logic_bits": 0, "bank_mux_bits": 0}
    if mem.depth <= m["lut_ram_max_depth"]:
        if mem.rom or m["lutram_cell"] is None:
            out["logic_bits"] = mem.depth * mem.width
        else:
            d, w = m["lutram_cell"]
            out["lutram"] = math.ceil(mem.depth / d) * math.ceil(mem.width / w)
        return out
    banks = [mem.depth]
    if mem.banked:
        n = min(bank_words(mem.width, m["bank_aspects"]), mem.depth)
        banks = [min(n, mem.depth - b * n) for b in range(math.ceil(mem.depth / n))]
        out["bank_mux_bits"] = mem.width * (len(banks) - 1)
    for words in banks:
        if mem.rom and words * mem.width <= m["rom_logic_max_bits"]:
            out["logic_bits"] += words * mem.width
        else:
            cells = _brams(max(words, 2), mem.width, m["bram_aspects"])
            out["bram"] += cells * m["bram_weight"]
            out["bram_bits"] += cells * m["bram_bits"]
    return out


FEATURE_NAMES = ("const", "conv", *(f"lanes:{g}" for g in GROUPS), "lanes*current_width", "lanes*membrane_width",
                 "lanes*activation_bits*weight_bits", "address_bits", "logic_bits", "lutram_cells",
                 "bank_mux_bits")


def group_key(scheme: str, bits: int, activation_bits: int) -> str:
    return f"{'pot' if scheme == 'pot' else 'uni'}{bits}-{'a1' if activation_bits == 1 else 'am'}"


def features(layer: LayerConfig, widths: LayerWidths, model: dict) -> tuple[list[float], dict]:
    """(feature vector in ``FEATURE_NAMES`` order, summed memory cells) of one PE."""
    mems = [memory_cells(mem, model) for mem in pe_memories(layer, widths)]
    cells = {k: sum(c[k] for c in mems) for k in mems[0]}
    L = layer.lanes
    group = group_key(layer.scheme, layer.bits, layer.activation_bits)
    neuron = layer.out_height * layer.out_width * layer.groups
    vec = [1.0, float(layer.kernel_size > 1), *(float(L) if g == group else 0.0 for g in GROUPS),
           L * widths.current_width, L * widths.membrane_width,
           L * layer.activation_bits * layer.bits * (layer.activation_bits > 1),
           math.log2(max(layer.fan_in * layer.groups, 2)) + math.log2(max(neuron, 2)),
           cells["logic_bits"], cells["lutram"], cells["bank_mux_bits"]]
    return vec, cells


def predict(layer: LayerConfig, widths: LayerWidths, model: dict) -> dict:
    """Predicted resources of one PE: ``lut_equiv``, ``ff``, ``dsp``, ``bram``, ``bram_bits``,
    ``lutram`` and ``energy_per_cycle_pj`` (module docstring)."""
    vec, cells = features(layer, widths, model)
    out = {res: max(0.0, sum(c * v for c, v in zip(model["coefficients"][res], vec))) for res in RESOURCES}
    out.update(bram=cells["bram"], bram_bits=cells["bram_bits"], lutram=cells["lutram"])
    e = model["energy"]
    act = e["activity"]["a1" if layer.activation_bits == 1 else "am"]
    c = e["coefficients"]
    out["energy_per_cycle_pj"] = (c["clock_pj"] + act["toggle_rate"] * (out["lut_equiv"] + out["ff"]) * c["toggle_pj"]
                                  + out["dsp"] * act["mac_active_fraction"] * c["dsp_pj"]
                                  + out["bram"] * act["memory_active_fraction"] * c["bram_pj"])
    out["energy_per_sop_pj"] = out["energy_per_cycle_pj"] / layer.lanes
    return out


def area_lut_equiv(pred: dict, model: dict) -> float:
    """The search's scalar: LUT eq. + BRAM and DSP at their device share in LUTs (module docstring)."""
    dev = model["device"]
    return pred["lut_equiv"] + pred["bram"] * dev["lut"] / dev["bram"] + pred["dsp"] * dev["lut"] / dev["dsp"]


# ---- the search's layers ------------------------------------------------------------------------

def layer_config(shape: LayerShape, candidate: str, *, activation_bits: int, lanes: int, time_steps: int,
                 threshold: int = 1, membrane: str = "integer", input_events: float | None = None) -> LayerConfig:
    """A hardware :class:`LayerConfig` for a search layer under ``candidate`` (fp32 → uniform-4)."""
    scheme, bits = candidate_scheme(candidate)
    if scheme == "fp32":
        scheme, bits = "uniform", 4
    return LayerConfig(name=shape.name, kind="conv2d" if shape.kind == "conv2d" else "linear",
                       in_channels=shape.in_channels, out_channels=shape.out_channels,
                       kernel_size=shape.kernel_size, padding=shape.padding, height=shape.height,
                       width=shape.width, scheme=scheme, bits=bits, activation_bits=activation_bits, lanes=lanes,
                       neuron=NeuronConfig(type="lif", threshold=threshold, leak_shift=1, reset="soft"),
                       membrane=membrane, time_steps=time_steps, group=shape.group, input_events=input_events)


def search_lanes(shapes, rates: dict[str, float], activation_bits: dict[str, int], time_steps: int) -> dict[str, int]:
    """Lanes as ``make gen`` (policy ``balanced``) would give the layers when every layer is
    hardware, with input events = measured rate × inputs × T."""
    layers = [layer_config(s, "uni4", activation_bits=activation_bits[s.name], lanes=1, time_steps=time_steps,
                           input_events=rates[s.name] * s.height * s.width * s.in_channels * time_steps)
              for s in shapes]
    return balanced_lanes(layers)


def candidate_cost(shape: LayerShape, candidate: str, model: dict, *, activation_bits: int, lanes: int,
                   time_steps: int, input_rate: float) -> dict:
    """Predicted resources, area (:func:`area_lut_equiv`) and energy per inference (pJ) of one
    layer under ``candidate``; fp32 per the module docstring."""
    layer = layer_config(shape, candidate, activation_bits=activation_bits, lanes=lanes, time_steps=time_steps)
    widths = layer.widths()
    pred = predict(layer, widths, model)
    if candidate == "fp32":
        logic = {k: pred[k] * FP32_FACTOR for k in (*RESOURCES, "energy_per_cycle_pj", "energy_per_sop_pj")}
        mems = pe_memories(layer, widths)          # the weights at 32 bits, the rest as uniform-4's
        cells = [memory_cells(m, model) for m in (replace(mems[0], width=layer.lanes * 32), *mems[1:])]
        pred = dict(pred, **logic, bram=sum(c["bram"] for c in cells), bram_bits=sum(c["bram_bits"] for c in cells))
    k2, G = layer.kernel_size ** 2, layer.groups
    cycles = time_steps * (input_rate * layer.num_inputs * k2 * G + layer.out_height * layer.out_width * G)
    pred["cycles"] = cycles
    pred["energy_pj"] = pred["energy_per_cycle_pj"] * cycles
    pred["area"] = area_lut_equiv(pred, model)
    return pred
