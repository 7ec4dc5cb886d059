"""``make synth``: every hardware layer of a searched.json through the flow, one report.

Per layer: the generated PE (``make gen``'s Verilog, byte for byte) synthesized out of context
(area), its harness placed and routed (Fmax, utilization; iCE40 and ECP5), a Verilator run for
switching activity and the power estimate, beside the search's analytical energy. "Total" sums
the per-layer figures and takes the lowest Fmax: the PEs are synthesized one by one.

For an exported Spikformer (``metadata.network``), ``make gen`` also emits the whole-network
top (``rtl/network.py``: the PEs chained by streams, glue, attention, readout). With ``top``
on, that top is synthesized too (out of context, for its area and memory table) and, on
iCE40/ECP5, placed and routed inside the pin-limited harness on the chosen device when it fits
by cell counts (Fmax, critical path); it is reported as its own row.

This module runs the flow and builds the report dict (report.json); ``synth/report.py``
renders it as report.md.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tqdm import tqdm

from ..atomic import write_atomic
from ..golden.config import load_config
from ..search.cost import candidate_name, layer_energy_pj, layer_ops, shapes_from_config
from ..rtl.gen import generate
from .activity import run_activity
from .engines import synth_engines
from .flow import synth_module, synth_top
from .power import COEFFICIENT_SOURCES, estimate_power
from .report import render_markdown
from .targets import get_target

__all__ = ["synth_config", "fit_lanes", "top_row", "top_utilization", "REPORT_FORMAT", "SUM_KEYS", "FIT"]

REPORT_FORMAT = "spikehq-synth-report"
#: the ``fit`` lanes policy (:func:`fit_lanes`) and the ceilings it tries, fastest first
FIT = "fit"
FIT_CEILINGS = (8, 4, 2, 1)
SUM_KEYS = ("lut", "lut_equiv", "carry", "mux", "ff", "dsp", "dsp_alu", "bram", "lutram", "spram")


def synth_config(config_path: Path, *, target: str, device: str | None = None, clock_mhz: float = 100.0,
                 out_dir: Path = Path("build/synth"), power: bool = True, density: float = 0.15,
                 samples: int = 2, seed: int = 1, lanes: str = "balanced", quiet: bool = False,
                 top: bool = True, layers: bool = True, engines: bool = True, share_roms: bool = True) -> dict:
    """``lanes``: the lanes policy of ``make gen`` (``balanced``, ``config``, ``NAME=L,...``), or
    ``fit``: the fastest ``balanced:N`` whose network top fits the device (:func:`fit_lanes`);
    ``share_roms``: as ``make gen`` (``--no-share-roms``: every weight ROM bank in its PE).
    ``top``: also synthesize the whole-network top when the config has one; ``layers=False``
    skips the per-layer PEs; ``engines``: also place and route every non-PE engine of the top
    (attention, residual adds, pooling, forks, readout) alone in the harness."""
    tgt, dev = get_target(target, device)
    network = load_config(config_path)
    out_dir = Path(out_dir)
    run_dir = out_dir / f"{network.name}_{tgt.name}_{dev.name}"
    gen_dir = run_dir / "gen"
    requested, tried, fitted_top = lanes, [], None
    if lanes == FIT:
        lanes, tried, fitted_top = fit_lanes(config_path, gen_dir, tgt, dev, top, out_dir / "cache", quiet,
                                             clock_mhz=clock_mhz, seed=seed, share_roms=share_roms)
    manifest = generate(config_path, gen_dir, lanes=lanes, quiet=True, share_roms=share_roms)
    shapes = {s.name: s for s in shapes_from_config(network)}
    hw = [entry for entry in manifest["layers"] if entry["hardware"]] if layers else []
    layers = []
    for entry in tqdm(hw, desc=f"synth {tgt.name} {dev.name}", unit="layer", disable=quiet):
        verilog = (gen_dir / entry["verilog"]).read_text()
        res = synth_module(verilog, entry["module"], entry["ports"], target=tgt.name, device=dev.name,
                           clock_mhz=clock_mhz, seed=seed, cache_dir=out_dir / "cache")
        row = {"name": entry["name"], "module": entry["module"], "scheme": entry["scheme"], "bits": entry["bits"],
               "activation_bits": entry["parameters"]["activation_bits"], "lanes": entry["parameters"]["lanes"],
               "area": {k: res["area"][k] for k in SUM_KEYS}, "cells": res["area"]["cells"],
               "pnr": res["pnr"], "cache_key": res["key"], "cached": res["cached"], "logs": res["dir"]}
        layer = network.layer(entry["name"])
        analytic = layer_energy_pj(shapes[layer.name], candidate_name(layer.scheme, layer.bits), network.time_steps)
        row["analytic"] = {"candidate": candidate_name(layer.scheme, layer.bits),
                           "dense_macs_per_step": layer_ops(shapes[layer.name]),
                           "energy_per_inference_nj": round(analytic * 1e-3, 3)}
        if power:
            act = run_activity(Path(config_path), layer.name, seed=seed, density=density, samples=samples,
                               cache_dir=out_dir / "activity", lanes=entry["parameters"]["lanes"])
            f = res["pnr"]["fmax_mhz"] if res["pnr"] else clock_mhz
            f = min(f, clock_mhz)
            row["activity"] = {k: act[k] for k in ("density", "samples", "cycles", "cycles_per_sample",
                                                    "input_events", "toggle_rate", "mac_active_fraction",
                                                    "memory_active_fraction", "traced_bits",
                                                    "excluded_memory_bits")}
            row["power"] = estimate_power(tgt.name, dev.name, res["area"], act, f)
        layers.append(row)
    skipped = [{"name": e["name"], "reason": e["reason"]} for e in manifest["layers"] if not e["hardware"]]
    total = {k: sum(l["area"][k] for l in layers) for k in SUM_KEYS}
    pnrs = [l["pnr"] for l in layers if l["pnr"]]
    report = {
        "format": REPORT_FORMAT, "version": 1, "network": network.name, "config": str(config_path),
        "config_sha256": manifest["config_sha256"], "target": tgt.name, "family": tgt.family,
        "device": dev.part, "device_name": dev.name, "clock_target_mhz": clock_mhz, "lanes_policy": lanes,
        "lanes_requested": requested, "lanes_tried": tried, "share_roms": share_roms, "layers": layers,
        "skipped": skipped,
        "total": {"area": total, "capacity": dev.capacity,
                  "utilization_pct": {k: round(100.0 * total[k] / dev.capacity[k], 2)
                                      for k in ("lut", "ff", "dsp", "bram") if dev.capacity.get(k)},
                  "fmax_mhz": min(p["fmax_mhz"] for p in pnrs) if pnrs else None,
                  "note": "sum of per-layer out-of-context figures, each PE alone"},
        "top": fitted_top or top_row(manifest, gen_dir, tgt, dev, top, out_dir / "cache", quiet,
                                     clock_mhz=clock_mhz, seed=seed),
        "engines": (synth_engines(config_path, target=tgt.name, device=dev.name, clock_mhz=clock_mhz, seed=seed,
                                  cache_dir=out_dir / "cache", lanes=lanes, quiet=quiet)
                    if engines and manifest["top"]["module"] else []),
    }
    if power and layers:
        report["total"]["power"] = {
            "dynamic_mw": round(sum(l["power"]["dynamic_mw"] for l in layers), 4),
            "energy_per_sample_nj": round(sum(l["power"].get("energy_per_sample_nj", 0) for l in layers), 3),
            "analytic_energy_per_inference_nj": round(sum(l["analytic"]["energy_per_inference_nj"] for l in layers), 3),
            "note": "each layer at min(its Fmax, clock target) with its own clock network; estimates",
        }
        report["power_sources"] = COEFFICIENT_SOURCES
    write_atomic(run_dir / "report.json", json.dumps(report, indent=2, sort_keys=False) + "\n")
    write_atomic(run_dir / "report.md", render_markdown(report))
    report["report_dir"] = str(run_dir)
    return report


def fit_lanes(config_path: Path, gen_dir: Path, tgt, dev, enabled: bool, cache_dir: Path, quiet: bool, *,
              clock_mhz: float, seed: int, share_roms: bool = True) -> tuple[str, list[dict], dict | None]:
    """The ``fit`` lanes policy: ``balanced:N`` with the largest ceiling N of :data:`FIT_CEILINGS`
    whose network top fits ``dev`` by the cell counts of its synthesis (block RAM, DSP, LUT
    sites), tried from the fastest down; the last one when none fits, ``balanced`` when there is
    no top or ``enabled`` is off. Returns the policy, one ``{"lanes", "fits", "over_capacity",
    "bram", "dsp", "lut_equiv"}`` per ceiling tried, and the chosen top's report row."""
    tried, row = [], None
    for ceiling in FIT_CEILINGS:
        policy = f"balanced:{ceiling}"
        info = generate(config_path, gen_dir, lanes=policy, quiet=True, share_roms=share_roms)["top"]
        if info["module"] is None or not enabled:
            return "balanced", tried, None
        if not quiet:
            print(f"lanes fit: trying {policy} on {dev.part}", file=sys.stderr)
        row = top_row({"top": info}, gen_dir, tgt, dev, True, cache_dir, quiet, clock_mhz=clock_mhz, seed=seed)
        area = row["area"]
        tried.append({"lanes": policy, "fits": row["fits"], "over_capacity": row["over_capacity"],
                      **{k: area[k] for k in ("bram", "dsp", "lut_equiv")}})
        if row["fits"]:
            break
    return policy, tried, row


def top_utilization(tgt, dev, area: dict) -> tuple[dict, list[str]]:
    """Percent of the device's LUT, FF, DSP, BRAM (and, on ECP5, LUT sites = LUT eq.: a carry
    cell holds two LUT4s) used by ``area``; and the resources over 100 %."""
    keys = ("lut", "lut_equiv", "ff", "dsp", "bram") if tgt.name == "ecp5" else ("lut", "ff", "dsp", "bram")
    util = {k: round(100.0 * area[k] / dev.capacity[k.replace("_equiv", "")], 2) for k in keys
            if dev.capacity.get(k.replace("_equiv", ""))}
    return util, sorted(k for k, v in util.items() if v > 100.0)


def top_row(manifest: dict, gen_dir: Path, tgt, dev, enabled: bool, cache_dir: Path, quiet: bool, *,
            clock_mhz: float = 100.0, seed: int = 1, pnr: bool = True) -> dict:
    """The network top's report entry: synthesized (and, on iCE40/ECP5, placed and routed in
    the harness on ``dev`` when it fits), skipped (``--no-top``) or absent (and why)."""
    info = manifest["top"]
    if info["module"] is None:
        return {"module": None, "synthesized": False, "reason": info["reason"]}
    row = {"module": info["module"], "engines": len(info["engines"]), "lanes": info["lanes"]}
    if not enabled:
        return dict(row, synthesized=False, reason="not synthesized (--no-top)")
    if not quiet:
        print(f"synthesizing the network top {info['module']} with yosys"
              + (f", then placing and routing it on {dev.part}" if pnr and tgt.pnr_tool else ""), file=sys.stderr)
    res = synth_top((gen_dir / info["verilog"]).read_text(), info["module"], target=tgt.name, device=dev,
                    ports=info["ports"] if pnr else None, clock_mhz=clock_mhz, seed=seed, cache_dir=cache_dir)
    area = {k: res["area"][k] for k in SUM_KEYS}
    util, over = top_utilization(tgt, dev, area)
    return dict(row, synthesized=True, area=area, cells=res["area"]["cells"],
                unknown_cells=res["area"].get("unknown_cells", {}), utilization_pct=util,
                fits=not over, over_capacity=over, yosys_wall_s=res.get("yosys_wall_s"),
                memories=res["memories"], pnr=res["pnr"],
                harness_area={k: res["harness_area"][k] for k in SUM_KEYS} if "harness_area" in res else None,
                cache_key=res["key"], cached=res["cached"], logs=res["dir"],
                note="area: out-of-context yosys synthesis of the whole top, cell counts before packing; "
                     "pnr: the top inside the pin-limited harness, placed and routed by nextpnr")
