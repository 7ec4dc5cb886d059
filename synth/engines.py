"""The network top's engines other than the PEs (attention units, residual adds, pooling, forks,
readout), each synthesized out of context and placed and routed alone in the harness.

The engines are taken from the elaborated :class:`rtl.network.SpikingNetwork` itself (its
submodules by name), so each is exactly the instance of the top, built with the same
constructor arguments. The PEs' input FIFOs (Amaranth's ``SyncFIFOBuffered``, not components
of this project) are not engines, nor are the shared weight ROMs (``rtl/banks.py``
:class:`SharedROM`: block RAMs of the PEs, measured with each PE's own synthesis). Engines with identical Verilog are synthesized once and
reported under every name that shares them.
"""

from __future__ import annotations

import gc
import hashlib
import re
import warnings

from amaranth.hdl import UnusedElaboratable
from amaranth.lib import wiring
from tqdm import tqdm

from ..golden.network import load_network
from ..rtl.gen import port_list
from ..rtl.banks import SharedROM
from ..rtl.lanes import apply_lanes
from ..rtl.network import SpikingNetwork
from ..rtl.pe import SpikingPE
from ..rtl.verilog import to_verilog
from .flow import synth_module

__all__ = ["network_engines", "synth_engines"]


def network_engines(config_path, lanes: str = "balanced") -> dict:
    """Name → elaboratable of every non-PE engine of the config's network top (empty without a
    graph). The names are the top's submodules as its Verilog lists them (``top.<name>``)."""
    net = load_network(config_path)
    if net.config.graph is None:
        return {}
    top = SpikingNetwork(config=apply_lanes(net.config, lanes), weights=net.weights)
    names = sorted(set(re.findall(r"^module \\top\.(\w+) ", to_verilog(top, "top"), re.M)))
    with warnings.catch_warnings():      # the PEs of this second elaboration are never used
        warnings.simplefilter("ignore", UnusedElaboratable)
        m = top.elaborate(None)
        engines = {name: m.submodules[name] for name in names
                   if isinstance(m.submodules[name], wiring.Component)
                   and not isinstance(m.submodules[name], (SpikingPE, SharedROM))}
        del m
        gc.collect()
    return engines


def synth_engines(config_path, *, target: str, device: str | None, clock_mhz: float, seed: int, cache_dir,
                  lanes: str = "balanced", quiet: bool = False) -> list[dict]:
    """One row per engine: its kind, area (out of context) and P&R Fmax in the harness."""
    rows, done = [], {}
    engines = network_engines(config_path, lanes)
    for name, unit in tqdm(engines.items(), desc="engines", unit="engine", disable=quiet):
        module = f"spikehq_engine_{type(unit).__name__.lower()}"
        verilog = to_verilog(unit, module)
        key = hashlib.sha256(verilog.encode()).hexdigest()
        if key not in done:
            done[key] = synth_module(verilog, module, port_list(unit), target=target, device=device,
                                     clock_mhz=clock_mhz, seed=seed, cache_dir=cache_dir)
        res = done[key]
        pnr = res["pnr"]
        rows.append({"name": name, "kind": type(unit).__name__, "area": {k: v for k, v in res["area"].items()
                                                                         if k not in ("cells", "unknown_cells")},
                     "fmax_mhz": pnr["fmax_mhz"] if pnr else None,
                     "critical_path_cells": pnr["critical_path_cells"] if pnr else [],
                     "same_as": next((r["name"] for r in rows if r.get("_key") == key), None), "_key": key,
                     "cache_key": res["key"]})
    for row in rows:
        row.pop("_key")
    return rows
