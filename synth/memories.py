"""Memory efficiency of a synthesized design: bits each memory holds vs bits the FPGA spends on it.

*Needed* is what a memory of the generated Verilog holds: depth × the width of its word (an
Amaranth ``memory.Memory`` is a ``reg [W-1:0] name [D-1:0]`` array in the module of its
engine). *Allocated* is what yosys mapped it to, found by the mapped cells' names (yosys names
them ``<memory>.<i>.<j>``): block RAM (DP16KD 18432 bits, SB_RAM40_4K 4096 bits), LUT RAM
(TRELLIS_DPR16X4 16 × 4 bits) or, for memories yosys maps to flip-flops ("using FF mapping",
in its log), depth × width register bits. Efficiency = needed / allocated.

Engines are the first level of the top's hierarchy (``b0_q``, ``b0_attn``, ``rpe_add``, …). A
shared ROM (``rtl/banks.py`` :class:`SharedROM`: two PEs' ROM banks on the two ports of one
block RAM) carries its owners and the bits both banks hold as attributes (``spikehq_owners``,
``spikehq_needed_bits``): its row counts those bits as needed (not its padded depth × width)
and its engine is ``owner+owner`` (``b0_q+b0_k``), one block RAM for both.
"""

from __future__ import annotations

import re

__all__ = ["verilog_memories", "memory_table", "CELL_BITS"]

# bits of one mapped memory cell, per cell type
CELL_BITS = {"DP16KD": 18432, "TRELLIS_DPR16X4": 64, "SB_RAM40_4K": 4096}
_KIND = {"DP16KD": "bram", "SB_RAM40_4K": "bram", "TRELLIS_DPR16X4": "lutram"}

_MODULE = re.compile(r"^module\s+\\?(\S+)\s*\(", re.M)
_ARRAY = re.compile(r"((?:^[ \t]*\(\*[^\n]*\*\)\n)*)^\s*reg\s+(?:\[(\d+):(\d+)\]\s+)?(\w+)\s+\[(\d+):(\d+)\];", re.M)
_ATTR = re.compile(r"\(\*\s*(\w+)\s*=\s*(?:\d+'d(\d+)|\"([^\"]*)\")\s*\*\)")
_FF_MAPPED = re.compile(r"^using FF mapping for memory (\S+)$", re.M)


def verilog_memories(verilog: str, top: str) -> list[dict]:
    """Every memory array of Amaranth's Verilog: ``{"path", "engine", "name", "depth", "width"}``.

    Amaranth names a submodule's Verilog module by its full path (``top.b0_q``); ``path`` is
    that path below ``top`` joined with the array name (``b0_q.weights``), as yosys names the
    memory after flattening."""
    out = []
    starts = [(m.start(), m.group(1)) for m in _MODULE.finditer(verilog)] + [(len(verilog), None)]
    for (begin, module), (end, _) in zip(starts, starts[1:]):
        if module != top and not module.startswith(top + "."):
            continue
        inner = module[len(top) + 1:] if module != top else ""
        for attrs, hi, lo, name, d_hi, d_lo in _ARRAY.findall(verilog, begin, end):
            width = abs(int(hi) - int(lo)) + 1 if hi else 1
            path = f"{inner}.{name}" if inner else name
            mem = {"path": path, "engine": path.split(".", 1)[0] if inner else "(top)", "name": name,
                   "depth": abs(int(d_hi) - int(d_lo)) + 1, "width": width}
            attr = {key: number or text for key, number, text in _ATTR.findall(attrs)}
            if "spikehq_owners" in attr:      # a shared ROM: its owners' engines and bits
                mem.update(engine="+".join(attr["spikehq_owners"].split()), shared=True,
                           needed_bits=int(attr["spikehq_needed_bits"]))
            out.append(mem)
    return out


def memory_table(memories: list[dict], cell_names: dict[str, list[str]], yosys_log: str, top: str) -> dict:
    """Needed vs allocated bits per memory, per engine and in total.

    ``cell_names``: cell type → names of the mapped cells of that type (yosys ``select -list``,
    with or without the ``module/`` prefix). ``yosys_log``: the synthesis log, for the memories
    mapped to flip-flops (named ``<top>.<path>`` there)."""
    ff_mapped = {_strip(name).removeprefix(top + ".") for name in _FF_MAPPED.findall(yosys_log)}
    rows = []
    for mem in memories:
        row = {"needed_bits": mem["depth"] * mem["width"], **mem, "bram": 0, "lutram": 0, "ff_bits": 0}
        for cell, names in cell_names.items():
            prefix = mem["path"] + "."
            n = sum(1 for name in names if _strip(name).startswith(prefix)
                    and re.fullmatch(r"[\d.]+", _strip(name)[len(prefix):]))
            row[_KIND[cell]] += n
            row.setdefault("allocated_bits", 0)
            row["allocated_bits"] += n * CELL_BITS[cell]
        if mem["path"] in ff_mapped:
            row["ff_bits"] = row["needed_bits"]
        row["allocated_bits"] = row.get("allocated_bits", 0) + row["ff_bits"]
        row["mapped_to"] = ("bram" if row["bram"] else "lutram" if row["lutram"] else
                            "ff" if row["ff_bits"] else "optimized away or logic")
        row["efficiency"] = _eff(row["needed_bits"], row["allocated_bits"])
        rows.append(row)
    engines = {}
    for row in rows:
        e = engines.setdefault(row["engine"], {"engine": row["engine"], "needed_bits": 0, "allocated_bits": 0,
                                               "bram": 0, "lutram": 0, "ff_bits": 0})
        for k in ("needed_bits", "allocated_bits", "bram", "lutram", "ff_bits"):
            e[k] += row[k]
    for e in engines.values():
        e["efficiency"] = _eff(e["needed_bits"], e["allocated_bits"])
    total = {k: sum(e[k] for e in engines.values()) for k in ("needed_bits", "allocated_bits", "bram", "lutram",
                                                               "ff_bits")}
    total["efficiency"] = _eff(total["needed_bits"], total["allocated_bits"])
    return {"memories": rows, "engines": list(engines.values()), "total": total,
            "note": "needed = depth × word width of each memory of the Verilog; allocated = mapped block RAM "
                    "(18432 bits per DP16KD) + LUT RAM (64 bits per TRELLIS_DPR16X4) + register bits of "
                    "FF-mapped memories"}


def _strip(name: str) -> str:
    """Cell name without the ``module/`` prefix of ``select -list`` and yosys' leading backslash."""
    return name.rsplit("/", 1)[-1].lstrip("\\")


def _eff(needed: int, allocated: int) -> float | None:
    return round(needed / allocated, 4) if allocated else None
