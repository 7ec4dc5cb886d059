"""Parsers of real tool output: yosys ``stat -json``, nextpnr ``--report`` JSON and nextpnr logs.

Each parser raises :class:`ReportError` (one line) when the text is not what the tool writes.
"""

from __future__ import annotations

import json
import re

__all__ = ["ReportError", "parse_yosys_stat", "parse_yosys_log", "parse_nextpnr_report", "parse_nextpnr_log",
           "main_clock", "critical_path"]


class ReportError(ValueError):
    pass


def _json(text: str, what: str) -> dict:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ReportError(f"{what}: not valid JSON (line {e.lineno}: {e.msg})") from None
    if not isinstance(data, dict):
        raise ReportError(f"{what}: expected a JSON object")
    return data


def parse_yosys_stat(text: str, top: str | None = None) -> dict:
    """Cell counts of ``stat -json`` (the flattened design, or module ``top``).

    Returns ``{"cells": {type: count}, "num_cells": n, "wire_bits": n}``.
    """
    data = _json(text, "yosys stat")
    if top is not None:
        modules = data.get("modules", {})
        entry = modules.get("\\" + top) or modules.get(top)
        if entry is None:
            raise ReportError(f"yosys stat: module {top!r} not in the report (has {', '.join(modules) or 'none'})")
    else:
        entry = data.get("design")
        if entry is None:
            raise ReportError("yosys stat: no 'design' section")
    cells = entry.get("num_cells_by_type")
    if not isinstance(cells, dict):
        raise ReportError("yosys stat: no 'num_cells_by_type' section")
    return {"cells": {k: int(v) for k, v in cells.items()}, "num_cells": int(entry.get("num_cells", 0)),
            "wire_bits": int(entry.get("num_wire_bits", 0))}


_YOSYS_VERSION = re.compile(r"^\s*Yosys (\d\S*)", re.M)
_YOSYS_WARN = re.compile(r"^Warning: (.*)$", re.M)
_YOSYS_ERROR = re.compile(r"^ERROR: (.*)$", re.M)


def parse_yosys_log(text: str) -> dict:
    """Version, warnings and the first error of a yosys log."""
    version = _YOSYS_VERSION.search(text)
    errors = _YOSYS_ERROR.findall(text)
    return {"version": version.group(1) if version else None, "warnings": _YOSYS_WARN.findall(text),
            "error": errors[0] if errors else None}


def parse_nextpnr_report(text: str) -> dict:
    """``nextpnr --report`` JSON → ``{"fmax": {clock: {"achieved", "constraint"}}, "utilization": {bel: {"used", "available"}}}``."""
    data = _json(text, "nextpnr report")
    if "utilization" not in data or "fmax" not in data:
        raise ReportError("nextpnr report: expected 'fmax' and 'utilization' sections")
    fmax = {}
    for clock, entry in data["fmax"].items():
        try:
            fmax[clock] = {"achieved": float(entry["achieved"]), "constraint": float(entry["constraint"])}
        except (KeyError, TypeError, ValueError):
            raise ReportError(f"nextpnr report: clock {clock!r} lacks achieved/constraint figures") from None
    util = {}
    for bel, entry in data["utilization"].items():
        try:
            util[bel] = {"used": int(entry["used"]), "available": int(entry["available"])}
        except (KeyError, TypeError, ValueError):
            raise ReportError(f"nextpnr report: resource {bel!r} lacks used/available counts") from None
    paths = data.get("critical_paths", [])
    return {"fmax": fmax, "utilization": util, "critical_path_cells": _path_cells(paths)}


def _path_cells(paths) -> list[str]:
    if not paths:
        return []
    worst = paths[0].get("path", [])
    cells = []
    for hop in worst:
        for end in ("from", "to"):
            cell = hop.get(end, {}).get("cell")
            if cell and (not cells or cells[-1] != cell):
                cells.append(cell)
    return cells


def critical_path(text: str) -> dict:
    """The worst path of a ``nextpnr --report`` JSON: its delay, logic and routing shares, the
    cells it passes (in order, with the delay of each hop) and the engines those cells belong to
    (the first level of a flattened name below the harness' ``dut.``, ``dut.b0_attn.…`` → ``b0_attn``;
    ``(harness)`` for the harness' own cells, ``(top)`` for the top's own)."""
    paths = _json(text, "nextpnr report").get("critical_paths") or []
    if not paths:
        return {"delay_ns": None, "hops": [], "engines": []}
    hops, engines = [], []
    for hop in paths[0].get("path", []):
        cell = hop.get("to", {}).get("cell") or hop.get("from", {}).get("cell") or ""
        hops.append({"type": hop.get("type"), "delay_ns": round(float(hop.get("delay", 0.0)), 3),
                     "from": hop.get("from", {}).get("cell"), "to": hop.get("to", {}).get("cell"),
                     "net": hop.get("net")})
        engine = _engine_of(cell)
        if not engines or engines[-1] != engine:
            engines.append(engine)
    delay = sum(h["delay_ns"] for h in hops)
    routing = sum(h["delay_ns"] for h in hops if h["type"] == "routing")
    return {"from": paths[0].get("from"), "to": paths[0].get("to"), "delay_ns": round(delay, 3),
            "routing_ns": round(routing, 3), "logic_levels": sum(1 for h in hops if h["type"] == "logic"),
            "engines": engines, "hops": hops}


def _engine_of(cell: str) -> str:
    cell = cell.lstrip("\\")
    if not cell.startswith("dut."):
        return "(harness)"
    inner = cell[len("dut."):]
    return inner.split(".", 1)[0] if "." in inner else "(top)"


_FMAX_LINE = re.compile(r"Max frequency for clock\s+'([^']+)':\s+([0-9.]+) MHz \((PASS|FAIL) at ([0-9.]+) MHz\)")
_UTIL_LINE = re.compile(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+(\d+)%", re.M)


def parse_nextpnr_log(text: str) -> dict:
    """The final timing summary and the device utilisation table of a nextpnr log.

    nextpnr prints a Max frequency line after placement and again after routing; the last
    one per clock (post-route) wins.
    """
    fmax = {}
    for clock, achieved, verdict, constraint in _FMAX_LINE.findall(text):
        fmax[clock] = {"achieved": float(achieved), "constraint": float(constraint), "pass": verdict == "PASS"}
    block = text.split("Device utilisation:", 1)
    util = {}
    if len(block) == 2:
        for bel, used, available, _ in _UTIL_LINE.findall(block[1].split("\n\n", 1)[0]):
            util[bel] = {"used": int(used), "available": int(available)}
    if not fmax:
        raise ReportError("nextpnr log: no 'Max frequency for clock' line (did routing finish?)")
    return {"fmax": fmax, "utilization": util}


def main_clock(fmax: dict) -> tuple[str, dict]:
    """The harness clock's entry (the one whose name mentions clk; there is only one clock)."""
    if not fmax:
        raise ReportError("no clock in the timing report")
    for name in sorted(fmax):
        if "clk" in name:
            return name, fmax[name]
    name = sorted(fmax)[0]
    return name, fmax[name]
