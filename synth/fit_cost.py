"""``make fit-fpga-cost``: measure the project's own PEs over a grid and fit the search's FPGA
cost model (``search/fpga_cost.py``) into ``search/data/fpga_cost_<target>.json``.

Grid (``GRIDS``): weight scheme × bits (PoT-2/4, uniform-2/4) × activation bits × lanes ×
layer shapes (linear and 3×3 conv, several fan-ins and output sizes; multi-bit inputs, which in
the generated networks feed only linear layers, on the two linear shapes). Each point is a one-layer
searched.json with seeded random weights (Gaussian, rounded to the scheme's levels) and biases;
``make gen``'s Verilog of its PE (``rtl.gen.generate``) is synthesized out of context by yosys
(``synth_module(..., pnr=False)``: the LUT/FF/DSP/BRAM figures ``make synth`` reports, cached
under ``build/synth/cache``). For the energy, a few points per binary/multi-bit input
(``ACTIVITY_LANES``, the first shape, the smallest and largest activation bits) run in Verilator for switching activity
(``synth/activity.py``); their mean toggle rate and MAC/memory active fractions go into the
model with ``synth/power.py``'s coefficients of the target's default device.

The fit: least squares of LUT eq., FF and DSP on ``search.fpga_cost.features``; block RAM is
computed from the memory geometry and compared with yosys on every point (``memory_check``).
The model file keeps the measured points, the fit's error on them (in-sample and leave-one-
shape-out) and the memory check. ecp5: activation bits 1, 2, 4, 128 PEs (about 30-40 minutes cold
at nice 10 on a loaded 2-core machine); ice40 and xilinx a smaller grid (activation bits 1 and 4,
80 PEs).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..atomic import write_json_atomic
from ..golden.codes import encode, levels
from ..golden.config import ConfigError, load_config, load_weights
from ..rtl.banks import bank_depth
from ..rtl.gen import generate
from ..rtl.pe import LUT_RAM_MAX_DEPTH
from ..search.fpga_cost import (FEATURE_NAMES, MODEL_FORMAT, FpgaCostError, bank_words, features, model_path,
                                pe_memories, predict, validate_model)
from .activity import run_activity
from .flow import synth_module
from .power import COEFFICIENTS
from .targets import get_target
from .tools import ToolError

__all__ = ["GRIDS", "SweepPoint", "sweep_points", "write_point", "memory_table", "fit_model", "fit_rom_threshold", "run_sweep", "check_config", "main"]

# (kind, in_channels, out_channels, kernel, padding, height, width)
SHAPES = (("linear", 32, 32, 1, 0, 16, 1), ("linear", 128, 64, 1, 0, 16, 1),
          ("conv2d", 8, 16, 3, 1, 8, 8), ("conv2d", 32, 64, 3, 1, 4, 4))
CANDIDATES = (("pot", 2), ("pot", 4), ("uniform", 2), ("uniform", 4))
GRIDS = {
    "ecp5": {"activation_bits": (1, 2, 4), "lanes": (1, 2, 4, 8), "shapes": SHAPES, "multibit_shapes": SHAPES[:2]},
    "ice40": {"activation_bits": (1, 4), "lanes": (1, 2, 4, 8), "shapes": SHAPES[:3], "multibit_shapes": SHAPES[:2]},
    "xilinx": {"activation_bits": (1, 4), "lanes": (1, 2, 4, 8), "shapes": SHAPES[:3], "multibit_shapes": SHAPES[:2]},
}
ACTIVITY_LANES = (4,)
TIME_STEPS = 4
# block RAM aspect ratios (width, depth) per target, and bits and weight of one cell
BRAM = {"ecp5": ([[1, 16384], [2, 8192], [4, 4096], [9, 2048], [18, 1024], [36, 512]], 18432, 1.0),
        "ice40": ([[2, 2048], [4, 1024], [8, 512], [16, 256]], 4096, 1.0),
        "xilinx": ([[1, 16384], [2, 8192], [4, 4096], [9, 2048], [18, 1024], [36, 512]], 18432, 0.5)}
LUTRAM_CELL = {"ecp5": [16, 4], "ice40": None, "xilinx": [64, 3]}


@dataclass(frozen=True)
class SweepPoint:
    scheme: str
    bits: int
    activation_bits: int
    lanes: int
    shape: tuple

    @property
    def name(self) -> str:
        kind, cin, cout, k, _, h, w = self.shape
        return (f"{self.scheme}{self.bits}_a{self.activation_bits}_l{self.lanes}_{kind}_{cin}x{cout}_k{k}_{h}x{w}")


def sweep_points(target: str) -> list[SweepPoint]:
    g = GRIDS[target]
    return [SweepPoint(s, b, a, l, shape) for a in g["activation_bits"] for l in g["lanes"] for s, b in CANDIDATES
            for shape in (g["shapes"] if a == 1 else g["multibit_shapes"])]


def memory_table(target: str, rom_logic_max_bits: int = 0) -> dict:
    """The geometry constants of the model, from the RTL's own values (``rtl.pe``, ``rtl.banks``);
    ``rom_logic_max_bits``: ROMs (banks) up to this size are left to logic (:func:`fit_rom_threshold`)."""
    aspects, bits, weight = BRAM[target]
    widths = sorted({1, 2, 4, 9, 18, 36, 72})
    return {"lut_ram_max_depth": LUT_RAM_MAX_DEPTH, "rom_logic_max_bits": rom_logic_max_bits,
            "bank_aspects": [[w, bank_depth(w)] for w in widths], "bram_aspects": aspects, "bram_bits": bits,
            "bram_weight": weight, "lutram_cell": LUTRAM_CELL[target]}


def write_point(point: SweepPoint, folder: Path) -> Path:
    """A one-layer searched.json with seeded weights for ``point``; returns its path."""
    kind, cin, cout, k, pad, h, w = point.shape
    rng = np.random.default_rng(_seed(point.name))
    lv = levels(point.scheme, point.bits)
    values = np.clip(np.rint(rng.normal(0, max(lv) / 2, size=(cout, cin, k, k))), lv[0], lv[-1])
    values = lv[np.abs(values[..., None] - lv).argmin(-1)]           # nearest level (PoT: powers of two)
    codes = encode(point.scheme, point.bits, values.astype(np.int64))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "weights").mkdir(exist_ok=True)
    layer = {"name": "pe", "kind": kind, "scheme": point.scheme, "bits": point.bits,
             "activation_bits": point.activation_bits, "lanes": point.lanes, "group": "tokenizer",
             "neuron": {"type": "lif", "threshold": 8, "leak_shift": 1, "reset": "soft"}, "membrane": "integer",
             "weights": "weights/pe.json", "weight_scale": 1.0}
    if kind == "linear":
        layer.update(in_features=cin, out_features=cout, tokens=h)
        codes = codes[:, :, 0, 0]
    else:
        layer.update(in_channels=cin, out_channels=cout, kernel_size=k, padding=pad, height=h, width=w)
    (folder / "weights" / "pe.json").write_text(json.dumps({
        "format": "spikehq-weights", "version": 1, "layer": "pe", "codes": codes.tolist(),
        "bias": rng.integers(-2, 3, cout).tolist(), "threshold": [8] * cout}) + "\n")
    config = {"format": "spikehq-searched", "version": 1, "name": "fpga_cost_point", "time_steps": TIME_STEPS,
              "layers": [layer]}
    (folder / "searched.json").write_text(json.dumps(config, indent=1) + "\n")
    return folder / "searched.json"


def _seed(name: str) -> int:
    """A stable seed per point name (Python's hash() is salted per process)."""
    return int(hashlib.sha256(name.encode()).hexdigest()[:8], 16)


def _measure(point: SweepPoint, target: str, work: Path, cache: Path, activity: bool) -> dict:
    config = write_point(point, work / "points" / point.name)
    gen_dir = work / "gen" / point.name
    manifest = generate(config, gen_dir, lanes="config", quiet=True)
    entry = manifest["layers"][0]
    res = synth_module((gen_dir / entry["verilog"]).read_text(), entry["module"], entry["ports"], target=target,
                       pnr=False, cache_dir=cache)
    row = {"name": point.name, "scheme": point.scheme, "bits": point.bits, "activation_bits": point.activation_bits,
           "lanes": point.lanes, "shape": list(point.shape), "config": str(config),
           "area": {k: res["area"][k] for k in ("lut_equiv", "lut", "carry", "ff", "dsp", "bram", "lutram")}}
    if activity:
        act = run_activity(config, "pe", cache_dir=cache.parent / "activity", lanes=point.lanes)
        row["activity"] = {k: act[k] for k in ("toggle_rate", "mac_active_fraction", "memory_active_fraction")}
    return row


def _layer_and_widths(row: dict):
    layer = load_config(row["config"]).layers[0]
    return layer, layer.widths(load_weights(layer))


def fit_model(rows: list[dict], target: str) -> dict:
    """Least-squares fit of LUT eq., FF and DSP on the features of ``rows`` (measured points with
    ``config`` paths); memory check and errors included. Returns the model dict."""
    tgt, dev = get_target(target)
    base = {"format": MODEL_FORMAT, "version": 1, "target": target, "device": {
        "name": dev.name, "part": dev.part, **{k: dev.capacity[k] for k in ("lut", "bram", "dsp")}},
        "features": list(FEATURE_NAMES), "memory": memory_table(target)}
    pes = [_layer_and_widths(row) for row in rows]
    base["memory"]["rom_logic_max_bits"] = fit_rom_threshold(pes, [r["area"]["bram"] for r in rows], base)
    X, geo = [], []
    for layer, widths in pes:
        vec, cells = features(layer, widths, base)
        X.append(vec)
        geo.append(cells)
    X = np.array(X)
    coef, errors = {}, {}
    groups = np.array([str(r["shape"]) for r in rows])
    for res in ("lut_equiv", "ff", "dsp"):
        y = np.array([r["area"][res] for r in rows], dtype=float)
        c = _lstsq(X, y)
        coef[res] = [round(float(v), 6) for v in c]
        loo = np.empty_like(y)
        for g in np.unique(groups):        # leave one shape out
            train = groups != g
            loo[~train] = X[~train] @ _lstsq(X[train], y[train])
        errors[res] = {"in_sample_mean_abs_pct": _pct(X @ c, y), "leave_one_shape_out_mean_abs_pct": _pct(loo, y),
                       "in_sample_max_abs_pct": _pct(X @ c, y, np.max)}
    mem_bad = [{"name": r["name"], "computed": g["bram"], "yosys": r["area"]["bram"]}
               for r, g in zip(rows, geo) if g["bram"] != r["area"]["bram"]]
    acts = {a: [r["activity"] for r in rows if "activity" in r and (r["activation_bits"] > 1) == (a == "am")]
            for a in ("a1", "am")}
    if not all(acts.values()):
        raise ValueError("fit: activity of at least one binary- and one multi-bit-input point is needed")
    power = COEFFICIENTS[(target, dev.name)]
    model = dict(base, coefficients=coef, energy={
        "coefficients": {k: power[k] for k in ("clock_pj", "toggle_pj", "dsp_pj", "bram_pj")},
        "activity": {a: {k: round(float(np.mean([v[k] for v in vals])), 5) for k in vals[0]}
                     for a, vals in acts.items()},
        "activity_points": {a: len(v) for a, v in acts.items()},
        "note": "synth/power.py on the predicted area; activity = mean of the Verilator runs of the sweep"},
        fit={"points": len(rows), "errors": errors,
             "memory_check": {"points": len(rows), "mismatches": len(mem_bad), "examples": mem_bad[:10]}},
        points=[{k: r[k] for k in ("name", "scheme", "bits", "activation_bits", "lanes", "shape", "area")}
                | ({"activity": r["activity"]} if "activity" in r else {}) for r in rows])
    return validate_model(model, "fitted model")


def fit_rom_threshold(pes, brams, model: dict) -> int:
    """The ROM size (bits) up to which yosys leaves a ROM or weight bank to logic: among the ROM
    sizes of ``pes`` (and 0), the smallest with the fewest points whose computed block RAMs
    differ from yosys' ``brams``."""
    sizes = {0}
    for layer, widths in pes:
        for mem in pe_memories(layer, widths):
            if mem.rom and mem.depth > model["memory"]["lut_ram_max_depth"]:
                n = min(bank_words(mem.width, model["memory"]["bank_aspects"]), mem.depth) if mem.banked else mem.depth
                sizes.update(min(n, mem.depth - b * n) * mem.width for b in range(-(-mem.depth // n)))

    def misses(t):
        m = dict(model, memory=dict(model["memory"], rom_logic_max_bits=t))
        return sum(features(layer, widths, m)[1]["bram"] != b for (layer, widths), b in zip(pes, brams))
    return min(sorted(sizes), key=misses)


def _lstsq(X, y):
    return np.linalg.lstsq(X, y, rcond=None)[0]


def _pct(pred, y, agg=np.mean) -> float:
    keep = y > 0
    return round(float(agg(np.abs(pred[keep] - y[keep]) / y[keep]) * 100), 2) if keep.any() else 0.0


def run_sweep(target: str, work: Path, cache: Path, quiet: bool = False, activity: bool = True) -> list[dict]:
    points = sweep_points(target)
    first = GRIDS[target]["shapes"][0]
    rows = []
    for p in tqdm(points, desc=f"fpga cost sweep {target}", unit="PE", disable=quiet):
        rows.append(_measure(p, target, work, cache, activity and p.shape == first and p.lanes in ACTIVITY_LANES
                             and p.activation_bits in (1, max(GRIDS[target]["activation_bits"]))))
    return rows


def check_config(config_path: Path, target: str, model: dict, cache: Path, work: Path, quiet: bool = False) -> list[dict]:
    """Per hardware layer of ``config_path`` (lanes ``balanced`` as ``make gen``): predicted vs
    synthesized (yosys out of context, as ``make synth``) LUT eq., BRAM, FF, DSP."""
    manifest = generate(config_path, work, lanes="balanced", quiet=True)
    from ..rtl.lanes import apply_lanes
    network = apply_lanes(load_config(config_path), "balanced")
    rows = []
    for entry in tqdm([e for e in manifest["layers"] if e["hardware"]], desc="check", unit="layer", disable=quiet):
        layer = network.layer(entry["name"])
        pred = predict(layer, layer.widths(load_weights(layer)), model)
        res = synth_module((work / entry["verilog"]).read_text(), entry["module"], entry["ports"], target=target,
                           pnr=False, cache_dir=cache)
        rows.append({"name": layer.name, "candidate": f"{layer.scheme}{layer.bits}", "act": layer.activation_bits,
                     "lanes": layer.lanes, "pred": pred, "synth": res["area"]})
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m spikehq.synth.fit_cost",
                                description="Synthesize a grid of the project's PEs with yosys (and a few in Verilator "
                                            "for switching activity) and fit the search's FPGA cost model "
                                            "(--cost fpga) into search/data/fpga_cost_<target>.json. Cached: a "
                                            "rerun with nothing changed only refits.")
    p.add_argument("--target", default="ecp5", choices=sorted(GRIDS), help="FPGA family (default ecp5)")
    p.add_argument("--out", default=None, help="model file (default search/data/fpga_cost_<target>.json)")
    p.add_argument("--work", default="build/fpga_cost", help="sweep configs and Verilog (default build/fpga_cost)")
    p.add_argument("--cache", default="build/synth/cache", help="synthesis cache (default build/synth/cache)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    try:
        rows = run_sweep(args.target, Path(args.work) / args.target, Path(args.cache), args.quiet)
        model = fit_model(rows, args.target)
    except (ConfigError, ToolError, FpgaCostError, ValueError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else model_path(args.target)
    write_json_atomic(out, model, indent=1)
    e = model["fit"]["errors"]
    print(f"wrote {out}: {len(rows)} PEs; LUT eq. mean error {e['lut_equiv']['in_sample_mean_abs_pct']} % "
          f"(leave one shape out {e['lut_equiv']['leave_one_shape_out_mean_abs_pct']} %); BRAM computed from the "
          f"geometry, {model['fit']['memory_check']['mismatches']} of {len(rows)} points differ from yosys")
    return 0


if __name__ == "__main__":
    sys.exit(main())
