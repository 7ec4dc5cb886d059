"""``make synth``: every hardware layer of a searched.json through the flow, one report.

Per layer: the generated PE (``make gen``'s Verilog, byte for byte) synthesized out of context
(area), its harness placed and routed (Fmax, utilization; iCE40 and ECP5), a Verilator run for
switching activity and the power estimate, beside the search's analytical energy. "Total" sums
the per-layer figures and takes the lowest Fmax: the PEs are synthesized one by one.

For an exported Spikformer (``metadata.network``), ``make gen`` also emits the whole-network
top (``rtl/network.py``: the PEs chained by streams, glue, attention, readout). With ``top``
on, that top is synthesized too, out of context (yosys only, no place and route: its stream
ports are not pinned out, and a large top exceeds small devices), and reported as its own row
with device utilization against the chosen device.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tqdm import tqdm

from ..golden.config import load_config
from ..search.cost import candidate_name, layer_energy_pj, layer_ops, shapes_from_config
from ..rtl.gen import generate
from .activity import run_activity
from .flow import synth_module, synth_top, write_atomic
from .power import COEFFICIENT_SOURCES, estimate_power
from .targets import get_target

__all__ = ["synth_config", "render_markdown", "top_utilization", "REPORT_FORMAT"]

REPORT_FORMAT = "spikehq-synth-report"
_SUM_KEYS = ("lut", "lut_equiv", "carry", "mux", "ff", "dsp", "dsp_alu", "bram", "lutram", "spram")


def synth_config(config_path: Path, *, target: str, device: str | None = None, clock_mhz: float = 100.0,
                 out_dir: Path = Path("build/synth"), power: bool = True, density: float = 0.15,
                 samples: int = 2, seed: int = 1, lanes: str = "balanced", quiet: bool = False,
                 top: bool = True) -> dict:
    """``lanes``: the lanes policy of ``make gen`` (``balanced``, ``config``, ``NAME=L,...``).
    ``top``: also synthesize the whole-network top when the config has one."""
    tgt, dev = get_target(target, device)
    network = load_config(config_path)
    out_dir = Path(out_dir)
    run_dir = out_dir / f"{network.name}_{tgt.name}_{dev.name}"
    gen_dir = run_dir / "gen"
    manifest = generate(config_path, gen_dir, lanes=lanes, quiet=True)
    shapes = {s.name: s for s in shapes_from_config(network)}
    layers = []
    hw = [entry for entry in manifest["layers"] if entry["hardware"]]
    for entry in tqdm(hw, desc=f"synth {tgt.name} {dev.name}", unit="layer", disable=quiet):
        verilog = (gen_dir / entry["verilog"]).read_text()
        res = synth_module(verilog, entry["module"], entry["ports"], target=tgt.name, device=dev.name,
                           clock_mhz=clock_mhz, seed=seed, cache_dir=out_dir / "cache")
        row = {"name": entry["name"], "module": entry["module"], "scheme": entry["scheme"], "bits": entry["bits"],
               "activation_bits": entry["parameters"]["activation_bits"], "lanes": entry["parameters"]["lanes"],
               "area": {k: res["area"][k] for k in _SUM_KEYS}, "cells": res["area"]["cells"],
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
    total = {k: sum(l["area"][k] for l in layers) for k in _SUM_KEYS}
    pnrs = [l["pnr"] for l in layers if l["pnr"]]
    report = {
        "format": REPORT_FORMAT, "version": 1, "network": network.name, "config": str(config_path),
        "config_sha256": manifest["config_sha256"], "target": tgt.name, "family": tgt.family,
        "device": dev.part, "clock_target_mhz": clock_mhz, "lanes_policy": lanes, "layers": layers, "skipped": skipped,
        "total": {"area": total, "capacity": dev.capacity,
                  "utilization_pct": {k: round(100.0 * total[k] / dev.capacity[k], 2)
                                      for k in ("lut", "ff", "dsp", "bram") if dev.capacity.get(k)},
                  "fmax_mhz": min(p["fmax_mhz"] for p in pnrs) if pnrs else None,
                  "note": "sum of per-layer out-of-context figures, each PE alone"},
        "top": _top_row(manifest, gen_dir, tgt, dev, top, out_dir / "cache", quiet),
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


def top_utilization(tgt, dev, area: dict) -> tuple[dict, list[str]]:
    """Percent of the device's LUT, FF, DSP, BRAM (and, on ECP5, LUT sites = LUT eq.: a carry
    cell holds two LUT4s) used by ``area``; and the resources over 100 %."""
    keys = ("lut", "lut_equiv", "ff", "dsp", "bram") if tgt.name == "ecp5" else ("lut", "ff", "dsp", "bram")
    util = {k: round(100.0 * area[k] / dev.capacity[k.replace("_equiv", "")], 2) for k in keys
            if dev.capacity.get(k.replace("_equiv", ""))}
    return util, sorted(k for k, v in util.items() if v > 100.0)


def _top_row(manifest: dict, gen_dir: Path, tgt, dev, enabled: bool, cache_dir: Path, quiet: bool) -> dict:
    """The network top's report entry: synthesized, skipped (``--no-top``) or absent (and why)."""
    info = manifest["top"]
    if info["module"] is None:
        return {"module": None, "synthesized": False, "reason": info["reason"]}
    row = {"module": info["module"], "engines": len(info["engines"]), "lanes": info["lanes"]}
    if not enabled:
        return dict(row, synthesized=False, reason="not synthesized (--no-top)")
    if not quiet:
        print(f"synthesizing the network top {info['module']} with yosys (out of context; no place and route)",
              file=sys.stderr)
    res = synth_top((gen_dir / info["verilog"]).read_text(), info["module"], target=tgt.name, cache_dir=cache_dir)
    area = {k: res["area"][k] for k in _SUM_KEYS}
    util, over = top_utilization(tgt, dev, area)
    return dict(row, synthesized=True, area=area, cells=res["area"]["cells"],
                unknown_cells=res["area"].get("unknown_cells", {}), utilization_pct=util,
                fits=not over, over_capacity=over, yosys_wall_s=res.get("yosys_wall_s"),
                cache_key=res["key"], cached=res["cached"], logs=res["dir"],
                note="out-of-context yosys synthesis of the whole top, cell counts before packing; no place "
                     "and route, no Fmax")


def _top_markdown(report: dict) -> list[str]:
    top = report.get("top")
    if not top:
        return []
    if not top.get("synthesized"):
        name = f" `{top['module']}`" if top.get("module") else ""
        return ["", f"Network top{name}: {top['reason']}."]
    util = top["utilization_pct"]
    verdict = ("fits the device by these counts (before packing and routing)" if top["fits"] else
               "**does not fit the device**: " + ", ".join(f"{k.upper().replace('_EQUIV', ' eq.')} {util[k]:g} %"
                                                          for k in top["over_capacity"]))
    wall = f"{top['yosys_wall_s']:g} s" if top.get("yosys_wall_s") is not None else "unknown"
    return ["", "## Network top", "",
            f"The whole network as one design (`{top['module']}`, {top['engines']} engines chained by streams, "
            "with glue, attention and readout), synthesized out of context with yosys (`synth_*` + `stat`) under the "
            "same lanes policy as the PEs; no place and route (its stream ports are not pinned out and a large "
            "top may exceed the device), so no Fmax. LUT RAM cells are not counted in LUT or LUT eq.", "",
            "| design | LUT | LUT eq. | FF | DSP | BRAM | LUT RAM |", "|---|---|---|---|---|---|---|",
            f"| **network top** | {top['area']['lut']} | {top['area']['lut_equiv']} | {top['area']['ff']} | "
            f"{top['area']['dsp']} | {_fmt(top['area']['bram'])} | {top['area']['lutram']} |", "",
            f"Device utilization of the top on {report['device']}: " + ", ".join(
                f"{k.upper().replace('_EQUIV', ' eq.')} {v:g} %" for k, v in util.items()) + f"; it {verdict}.",
            f"yosys wall time of the run that produced it: {wall}" + (" (read from the cache now)." if top["cached"] else ".")]


def _fmt(v, nd=1):
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def render_markdown(report: dict) -> str:
    has_pnr = any(l["pnr"] for l in report["layers"])
    has_power = any("power" in l for l in report["layers"])
    lines = [f"# Synthesis report: {report['network']} on {report['family']} {report['device']}", "",
             f"Config `{report['config']}` (sha256 {report['config_sha256'][:12]}), clock target "
             f"{report['clock_target_mhz']:g} MHz, lanes policy `{report.get('lanes_policy', 'config')}`. Area: out-of-context yosys synthesis of each layer's PE"
             + (" and of the network top. " if (report.get("top") or {}).get("synthesized") else ". ")
             + ("Fmax: nextpnr, PE inside a pin-limited harness (docs/synthesis.md). " if has_pnr else
                "No place and route for this target: no Fmax. ")
             + ("Power: **estimate** from Verilator switching activity and the coefficients listed below." if has_power else ""),
             "",
             "| layer | scheme | act. bits | lanes | LUT | LUT eq. | FF | DSP | BRAM | Fmax MHz | dyn. mW | nJ/sample (est.) | analytic nJ/inference |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for l in report["layers"]:
        a, p, pw = l["area"], l["pnr"], l.get("power", {})
        lines.append(f"| {l['name']} | {l['scheme']}{l['bits']} | {l['activation_bits']} | {l['lanes']} | {a['lut']} | "
                     f"{a['lut_equiv']} | {a['ff']} | {a['dsp']} | {_fmt(a['bram'])} | "
                     f"{_fmt(p['fmax_mhz']) if p else '—'} | {_fmt(pw.get('dynamic_mw'), 2)} | "
                     f"{_fmt(pw.get('energy_per_sample_nj'), 1)} | {_fmt(l['analytic']['energy_per_inference_nj'], 1)} |")
    t = report["total"]
    tp = t.get("power", {})
    lines.append(f"| **total** | | | | {t['area']['lut']} | {t['area']['lut_equiv']} | {t['area']['ff']} | "
                 f"{t['area']['dsp']} | {_fmt(t['area']['bram'])} | {_fmt(t['fmax_mhz'])} | "
                 f"{_fmt(tp.get('dynamic_mw'), 2)} | {_fmt(tp.get('energy_per_sample_nj'), 1)} | "
                 f"{_fmt(tp.get('analytic_energy_per_inference_nj'), 1)} |")
    top = report.get("top") or {}
    if top.get("synthesized"):
        ta = top["area"]
        lines.append(f"| **network top** (one design) | | | | {ta['lut']} | {ta['lut_equiv']} | {ta['ff']} | {ta['dsp']} | "
                     f"{_fmt(ta['bram'])} | — | | | |")
    lines += ["", "Total = sum of the layers (each PE alone); total Fmax = the slowest layer. "
              + ("Network top = the whole network synthesized as one design (section below)." if top.get("synthesized")
                 else "The network top is not synthesized (section below)." if top.get("module") else ""),
              "Device utilization of the total: " + ", ".join(
                  f"{k.upper()} {v:g} %" for k, v in t["utilization_pct"].items()) + "."]
    for s in report["skipped"]:
        lines.append(f"Layer `{s['name']}` has no hardware: {s['reason']}.")
    lines += _top_markdown(report)
    if has_pnr:
        lines += ["", "## Place and route", "",
                  "| layer | Fmax MHz | meets target | harness FF overhead | used (harness) |", "|---|---|---|---|---|"]
        for l in report["layers"]:
            p = l["pnr"]
            used = ", ".join(f"{k} {v['used']}/{v['available']}" for k, v in sorted(p["utilization"].items()) if v["used"])
            lines.append(f"| {l['name']} | {p['fmax_mhz']:.1f} | {'yes' if p['meets_constraint'] else 'no'} | "
                         f"{p['harness_overhead_ffs']} | {used} |")
    if has_power:
        lines += ["", "## Power (estimates)", "",
                  "| layer | clock MHz | toggle rate | MAC active | energy/cycle pJ (clock + logic + DSP + BRAM) | dynamic mW | static mW |",
                  "|---|---|---|---|---|---|---|"]
        for l in report["layers"]:
            pw, b = l["power"], l["power"]["breakdown_pj"]
            lines.append(f"| {l['name']} | {pw['clock_mhz']:.1f} | {pw['toggle_rate']:.3f} | "
                         f"{l['activity']['mac_active_fraction']:.2f} | {pw['energy_per_cycle_pj']:.1f} = {b['clock']:.1f} + "
                         f"{b['logic']:.1f} + {b['dsp']:.1f} + {b['bram']:.1f} | {pw['dynamic_mw']:.2f} | {_fmt(pw['static_mw'], 3)} |")
        l0 = report["layers"][0]["activity"]
        lines += ["", f"Activity: Verilator run of seeded input events (density {l0['density']}, {l0['samples']} samples of "
                  f"T steps per layer, consumer always ready). *Analytic* is the search's cost model "
                  "(search/cost.py: dense MAC count × 45 nm energy + weight DRAM traffic); the RTL estimate is "
                  "event-driven and keeps weights on chip, so the two answer different questions.", "",
                  "Coefficient sources:", ""]
        lines += [f"- `{k}`: {v}" for k, v in report.get("power_sources", {}).items()]
    return "\n".join(lines) + "\n"
