"""PoT vs uniform: MAC and processing element at 2/4 weight bits × 1/4/8 activation bits.

Usage: ``.venv/bin/python benchmarks/pot_vs_uniform.py --out docs`` or ``make
bench-pot-vs-uniform`` (writes ``pot_vs_uniform.md``, ``pot_vs_uniform.json`` and
``pot_vs_uniform.png``). Every point is a real yosys synthesis (ECP5 25k, with and without
DSP inference) and a nextpnr place and route for Fmax; power is the activity-based estimate
(``synth/power.py``) from a Verilator run of the PE on seeded input events. Results are
cached like ``make synth``.

The PE: linear layer 64 → 16 features, 16 tokens, 8 lanes, binary LIF neuron, integer
membrane, hard reset, leak shift 1, seeded random weight codes. The MAC: one lane's MAC with
the PE's accumulator width, registered on all sides by the harness.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from spikehq.atomic import atomic_path, write_atomic
from spikehq.golden import codes
from spikehq.golden.config import load_config, load_weights
from spikehq.rtl.gen import port_list
from spikehq.rtl.mac import MAC_FOR_SCHEME
from spikehq.rtl.pe import SpikingPE
from spikehq.rtl.verilog import to_verilog
from spikehq.synth.activity import run_activity
from spikehq.synth.flow import synth_module
from spikehq.synth.power import COEFFICIENT_SOURCES, estimate_power
from spikehq.synth.tools import ToolError

__all__ = ["SCHEMES", "BITS", "ACTIVATIONS", "write_case_config", "run_compare", "render_table", "design_mw",
           "find_point", "plot", "main"]

SCHEMES, BITS, ACTIVATIONS = ("pot", "uniform"), (2, 4), (1, 4, 8)
IN_FEATURES, OUT_FEATURES, TOKENS, LANES, TIME_STEPS = 64, 16, 16, 8, 4
POWER_CLOCK_MHZ = 50.0


def write_case_config(folder: Path, scheme: str, bits: int, act: int, seed: int = 1) -> Path:
    """A one-layer searched.json with seeded weights for one comparison point."""
    name = f"{scheme}{bits}_a{act}"
    rng = np.random.default_rng(seed)
    levels = codes.levels(scheme, bits)
    values = rng.choice(levels, size=(OUT_FEATURES, IN_FEATURES))
    x_max = codes.activation_max_abs(act)
    typical = max(2, int(np.sqrt(IN_FEATURES / 3) * np.abs(levels).max() * x_max / 2))
    folder.mkdir(parents=True, exist_ok=True)
    weights = {"format": "spikehq-weights", "version": 1, "layer": "pe",
               "codes": codes.encode(scheme, bits, values.reshape(OUT_FEATURES, IN_FEATURES, 1, 1))
                       .reshape(OUT_FEATURES, IN_FEATURES).tolist(),
               "bias": [0] * OUT_FEATURES, "threshold": [typical] * OUT_FEATURES}
    write_atomic(folder / f"{name}.weights.json", json.dumps(weights) + "\n")
    config = {"format": "spikehq-searched", "version": 1, "name": f"cmp_{name}", "time_steps": TIME_STEPS,
              "layers": [{"name": "pe", "kind": "linear", "in_features": IN_FEATURES, "out_features": OUT_FEATURES,
                          "tokens": TOKENS, "scheme": scheme, "bits": bits, "activation_bits": act, "lanes": LANES,
                          "neuron": {"type": "lif", "threshold": typical, "leak_shift": 1, "reset": "hard"},
                          "membrane": "integer", "weights": f"{name}.weights.json"}]}
    path = folder / f"{name}.json"
    write_atomic(path, json.dumps(config, indent=1) + "\n")
    return path


def _point(config: Path, *, dsp: bool, cache: Path, activity: dict | None) -> dict:
    layer = load_config(config).layers[0]
    weights = load_weights(layer)
    pe = SpikingPE(layer=layer, weights=weights)
    pe_v = to_verilog(pe, "spikehq_cmp_pe")
    mac = MAC_FOR_SCHEME[layer.scheme](weight_bits=layer.bits, activation_bits=layer.activation_bits,
                                       acc_width=pe.widths.current_width)
    mac_v = to_verilog(mac, "spikehq_cmp_mac")
    mac_ports = [p for p in port_list(mac) if p["name"] not in ("clk", "rst")]
    out = {"scheme": layer.scheme, "bits": layer.bits, "activation_bits": layer.activation_bits,
           "dsp_inference": dsp, "acc_width": pe.widths.current_width}
    for kind, text, top, ports in (("pe", pe_v, "spikehq_cmp_pe", port_list(pe)),
                                   ("mac", mac_v, "spikehq_cmp_mac", mac_ports)):
        r = synth_module(text, top, ports, target="ecp5", device="25k", clock_mhz=100.0, dsp=dsp, cache_dir=cache)
        a = r["area"]
        entry = {"lut": a["lut"], "carry": a["carry"], "lut_equiv": a["lut_equiv"], "ff": a["ff"], "dsp": a["dsp"],
                 "bram": a["bram"], "fmax_mhz": r["pnr"]["fmax_mhz"], "cells": a["cells"]}
        if activity is not None:
            if kind == "pe":
                p = estimate_power("ecp5", "25k", a, activity, POWER_CLOCK_MHZ)
            else:  # one MAC: the MAC scopes' own toggle rate, no clock network or memories
                mac_act = dict(activity, toggle_rate=activity["mac_toggle_rate"], memory_active_fraction=0.0)
                p = estimate_power("ecp5", "25k", a, mac_act, POWER_CLOCK_MHZ)
                p["energy_per_cycle_pj"] = round(p["energy_per_cycle_pj"] - p["breakdown_pj"]["clock"], 3)
                p["dynamic_mw"] = round(p["energy_per_cycle_pj"] * POWER_CLOCK_MHZ * 1e-3, 4)
                p["breakdown_pj"]["clock"] = 0.0
            entry["power"] = p
        out[kind] = entry
    return out


def run_compare(work: Path, *, power: bool = True, density: float = 0.15, quiet: bool = False) -> dict:
    configs = {}
    for scheme, bits, act in itertools.product(SCHEMES, BITS, ACTIVATIONS):
        configs[(scheme, bits, act)] = write_case_config(work / "configs", scheme, bits, act)
    points = []
    jobs = list(itertools.product(ACTIVATIONS, BITS, SCHEMES, (True, False)))
    for act, bits, scheme, dsp in tqdm(jobs, desc="pot vs uniform", unit="point", disable=quiet):
        config = configs[(scheme, bits, act)]
        activity = run_activity(config, "pe", density=density, samples=2, cache_dir=work / "activity") if power else None
        point = _point(config, dsp=dsp, cache=work / "cache", activity=activity)
        if activity is not None:
            point["activity"] = {k: activity[k] for k in ("toggle_rate", "mac_toggle_rate", "mac_active_fraction",
                                                           "memory_active_fraction", "cycles_per_sample",
                                                           "traced_bits", "excluded_memory_bits")}
        points.append(point)
    return {"format": "spikehq-pot-vs-uniform", "version": 1, "target": "ecp5 LFE5U-25F-6BG381C",
            "pe": {"kind": "linear", "in_features": IN_FEATURES, "out_features": OUT_FEATURES, "tokens": TOKENS,
                   "lanes": LANES, "time_steps": TIME_STEPS, "neuron": "lif", "membrane": "integer"},
            "power_clock_mhz": POWER_CLOCK_MHZ, "activity_density": density, "points": points,
            "power_sources": COEFFICIENT_SOURCES}


def design_mw(p: dict) -> float:
    """Estimated power without the clock network (the same for every design on one device)."""
    b = p["breakdown_pj"]
    return (b["logic"] + b["dsp"] + b["bram"]) * p["clock_mhz"] * 1e-3


def _clock_mw(points) -> float:
    p = points[0]["pe"].get("power")
    return p["breakdown_pj"]["clock"] * p["clock_mhz"] * 1e-3 if p else 0.0


def find_point(points, scheme, bits, act, dsp) -> dict:
    """The point of ``scheme``, ``bits``, activation bits ``act`` and DSP inference ``dsp``."""
    for p in points:
        if (p["scheme"], p["bits"], p["activation_bits"], p["dsp_inference"]) == (scheme, bits, act, dsp):
            return p
    raise KeyError((scheme, bits, act, dsp))


def render_table(result: dict, command: str) -> str:
    pts = result["points"]
    has_power = "power" in pts[0]["pe"]
    lines = ["# PoT vs uniform: MAC and processing element on ECP5", "",
             f"Regenerate: `{command}` (cached; a cold run takes about 20 minutes on 2 cores).", "",
             f"Target {result['target']}, yosys `synth_ecp5` (DSP inference on, and `-nodsp`), nextpnr-ecp5 "
             "for Fmax (harness, 100 MHz constraint). PE: linear "
             f"{result['pe']['in_features']}→{result['pe']['out_features']}, {result['pe']['tokens']} tokens, "
             f"{result['pe']['lanes']} lanes, LIF, integer membrane. MAC: one lane, the PE's accumulator width. "
             "LUT eq. = LUT4 + 2 × CCU2C (each ECP5 carry cell holds two LUT4s). "
             + (f"Power: **estimate** at {result['power_clock_mhz']:g} MHz from Verilator toggle counts "
                f"(input density {result['activity_density']}) and the coefficients of docs/synthesis.md; "
                "the power columns are the design-dependent part (logic + DSP + block RAM); the clock network "
                f"adds the same {_clock_mw(pts):.2f} mW to every PE row." if has_power else ""),
             ""]
    for unit, title in (("mac", "MAC (one lane)"), ("pe", "Processing element (8 lanes)")):
        lines += [f"## {title}", "",
                  "| act. bits | weight bits | scheme | acc. bits | LUT eq. (DSP on) | DSP | FF | Fmax MHz | "
                  "LUT eq. (-nodsp) | Fmax MHz (-nodsp) | power mW (DSP on) | power mW (-nodsp) |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for act in ACTIVATIONS:
            for bits in BITS:
                for scheme in SCHEMES:
                    d, n = find_point(pts, scheme, bits, act, True), find_point(pts, scheme, bits, act, False)
                    pd, pn = d[unit].get("power", {}), n[unit].get("power", {})
                    pw = lambda p: f"{design_mw(p):.3f}" if p else "—"
                    lines.append(f"| {act} | {bits} | {scheme} | {d['acc_width']} | {d[unit]['lut_equiv']} | {d[unit]['dsp']} | "
                                 f"{d[unit]['ff']} | {d[unit]['fmax_mhz']:.1f} | {n[unit]['lut_equiv']} | "
                                 f"{n[unit]['fmax_mhz']:.1f} | {pw(pd)} | {pw(pn)} |")
        lines.append("")
    lines += ["Coefficient sources (all power figures are estimates):", ""]
    lines += [f"- `{k}`: {v}" for k, v in result.get("power_sources", {}).items()]
    return "\n".join(lines) + "\n"


def plot(result: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    pts = result["points"]
    has_power = "power" in pts[0]["pe"]
    panels = [("mac", "lut_equiv", "MAC: LUT4 equivalents"), ("pe", "lut_equiv", "PE: LUT4 equivalents"),
              ("pe", "fmax_mhz", "PE: Fmax (MHz)")]
    if has_power:
        panels.append(("pe", "design_mw", f"PE: est. mW at {result['power_clock_mhz']:g} MHz (excl. clock)"))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.4 * len(panels), 4))
    labels = [f"a{a}/w{b}" for a in ACTIVATIONS for b in BITS]
    x = np.arange(len(labels))
    width = 0.2
    series = (("pot", True, "PoT", "#1f77b4"), ("uniform", True, "uniform (DSP)", "#ff7f0e"),
              ("uniform", False, "uniform (-nodsp)", "#d62728"))
    value = lambda p, unit, metric: design_mw(p[unit]["power"]) if metric == "design_mw" else p[unit][metric]
    for ax, (unit, metric, title) in zip(axes, panels):
        for i, (scheme, dsp, name, color) in enumerate(series):
            ys = [value(find_point(pts, scheme, b, a, dsp), unit, metric) for a in ACTIVATIONS for b in BITS]
            ax.bar(x + (i - 1) * width, ys, width, label=name, color=color)
            if metric == "lut_equiv" and dsp and scheme == "uniform":
                ds = [find_point(pts, scheme, b, a, dsp)[unit]["dsp"] for a in ACTIVATIONS for b in BITS]
                for xi, y, d in zip(x, ys, ds):
                    if d:
                        ax.annotate(f"+{d} DSP", (xi, y), ha="center", va="bottom", fontsize=7)
        ax.set_xticks(x, labels, rotation=45, fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("activation bits / weight bits")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"PoT vs uniform on {result['target']} (yosys + nextpnr)", fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, metadata={"Software": None})
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks/pot_vs_uniform.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="docs", help="folder for pot_vs_uniform.{md,json,png} (default docs)")
    parser.add_argument("--work", default="build/synth/compare", help="cache and work folder")
    parser.add_argument("--no-power", action="store_true", help="skip the Verilator activity runs")
    parser.add_argument("--density", type=float, default=0.15, help="input event density (default 0.15)")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    try:
        result = run_compare(Path(args.work), power=not args.no_power, density=args.density, quiet=args.quiet)
    except (ToolError, ValueError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = Path(args.out)
    command = "python benchmarks/pot_vs_uniform.py --out " + args.out + (" --no-power" if args.no_power else "")
    write_atomic(out / "pot_vs_uniform.json", json.dumps(result, indent=1) + "\n")
    write_atomic(out / "pot_vs_uniform.md", render_table(result, command))
    plot(result, out / "pot_vs_uniform.png")
    print(render_table(result, command))
    return 0


if __name__ == "__main__":
    sys.exit(main())
