"""Where the cycles go per engine of the network core, sampled at the engines' stream ports.

Verilator (built with ``--public-flat-rw`` by cocotb's runner) exposes every submodule
instance of the top; each engine's stream ports are ``i_<name>__valid/__ready`` (inputs) and
``o_<name>__valid/__ready`` (outputs, also ``o_events__<k>__…`` of a fork). Every cycle each
engine is put in one class, first match wins:

* **blocked**: an output offers a token (``valid``) that its consumer does not take (``ready`` low),
* **waiting**: no token moves on any of its ports and some input is ``ready`` with no ``valid``
  (it could work if it had input),
* **busy**: everything else (a token moves, or it computes with its inputs closed).

The generated Verilog is not changed: the counts come from the ports alone.
"""

from __future__ import annotations

import re

from cocotb.handle import HierarchyObject
from cocotb.triggers import ReadOnly, RisingEdge

__all__ = ["engine_ports", "classify", "EngineProfile"]

_PORT = re.compile(r"^([io]_\w+?)__valid$")


def engine_ports(dut) -> dict[str, dict[str, list[tuple]]]:
    """Engine instance name → ``{"in": [(valid, ready), …], "out": [...]}`` handles."""
    engines = {}
    for child in dut:
        if not isinstance(child, HierarchyObject):
            continue
        names = {h._name: h for h in child}
        ports = {"in": [], "out": []}
        for name in sorted(names):
            match = _PORT.match(name)
            if match and f"{match.group(1)}__ready" in names:
                ports["in" if name.startswith("i_") else "out"].append(
                    (names[name], names[f"{match.group(1)}__ready"]))
        if ports["in"] and ports["out"]:
            engines[child._name] = ports
    return engines


def classify(ins: list[tuple[int, int]], outs: list[tuple[int, int]]) -> str:
    """One engine's cycle from its ports' ``(valid, ready)``: blocked, busy or waiting (module docstring)."""
    if any(v and not r for v, r in outs):
        return "blocked"
    if any(v and r for v, r in ins + outs):
        return "busy"
    return "waiting" if any(r and not v for v, r in ins) else "busy"


class EngineProfile:
    """Counts busy / waiting / blocked cycles per engine while :meth:`run` is active."""

    def __init__(self, dut):
        self.clk = dut.clk
        self.engines = engine_ports(dut)
        self.counts = {name: {"busy": 0, "waiting": 0, "blocked": 0} for name in self.engines}
        self.cycles = 0
        self.active = False

    async def run(self) -> None:
        """Sample every cycle (after the clock edge, values settled) until :attr:`active` is cleared."""
        self.active = True
        while self.active:
            await RisingEdge(self.clk)
            await ReadOnly()
            self.cycles += 1
            for name, ports in self.engines.items():
                self.counts[name][classify(
                    [(int(v.value), int(r.value)) for v, r in ports["in"]],
                    [(int(v.value), int(r.value)) for v, r in ports["out"]])] += 1

    def summary(self) -> dict:
        return {"cycles": self.cycles,
                "engines": {name: dict(c, **{f"{k}_fraction": round(c[k] / self.cycles, 4) if self.cycles else None
                                              for k in ("busy", "waiting", "blocked")})
                            for name, c in self.counts.items()}}
