"""The one way the project turns an Amaranth component into Verilog (``make gen``, the cocotb
runner, synthesis, benchmarks): :func:`to_verilog`.

Amaranth's ``verilog.convert`` asks Yosys for Verilog-2005, whose combinational processes are
``always @*`` blocks. Such a block runs only when something it reads changes, so Yosys makes
every one of them read a trigger register declared ``reg trigger = 0;`` and relies on that
initializer being an event at time zero. Under SystemVerilog semantics (IEEE 1800 §6.8: a
declaration initializer is applied before any process starts, without an event; Icarus with
``-g2012``, Questa, Xcelium, xsim) there is no such event: every ``always @*`` whose inputs keep
their initial values stays X until one of them changes (amaranth issue #594), e.g. a stream's
``ready`` driven from a state register that reset leaves at its initial value.

:func:`to_verilog` keeps Verilog-2005 and gives every module a trigger of its own that every
``always @*`` reads (Yosys's covers only its multi-statement blocks, not ``always @* x = y;``),
set by a time-zero kick: ``initial #0 trigger = 1'b1;``. Every process starts in the active
region of time zero and suspends at its ``@*``; the ``#0`` assignment runs in the inactive
region after all of them, so it is an event every ``always @*`` sees, in any simulator. The
kick is simulation-only (inside ```ifndef SYNTHESIS`` and ```ifndef VERILATOR``, which
evaluates every process at time zero anyway); synthesis sees a constant register.

(``write_verilog -sv``, whose ``always_comb`` runs at time zero by definition, was measured
first: Icarus 11 then simulates the network top at about one cycle per second, against
thousands with ``always @*``.)
"""

from __future__ import annotations

import re

from amaranth.back import verilog

__all__ = ["to_verilog", "TIME_ZERO_KICK", "TRIGGER"]

TRIGGER = "\\spikehq$time_zero "
_MODULE = re.compile(r"^module [^\n]*;\n", re.MULTILINE)
_ALWAYS = re.compile(r"^([ \t]*)always @\*( begin)?\n(?(2)|([ \t]*)([^\n]*;)\n)", re.MULTILINE)

TIME_ZERO_KICK = f"""  reg {TRIGGER}= 1'h0;
  // time-zero kick for event-driven simulators (amaranth #594; rtl/verilog.py)
`ifndef SYNTHESIS
`ifndef VERILATOR
  initial #0 {TRIGGER}= 1'h1;
`endif
`endif
"""


def _always(match: re.Match) -> str:
    indent, begin, body_indent, statement = match.groups()
    if begin:
        return f"{indent}always @* begin\n{indent}  if ({TRIGGER}) begin end\n"
    return (f"{indent}always @* begin\n{indent}  if ({TRIGGER}) begin end\n{body_indent}{statement}\n"
            f"{indent}end\n")


def to_verilog(component, name: str) -> str:
    """Verilog-2005 text of ``component`` (ports from its wiring signature) as module ``name``,
    every ``always @*`` evaluated at time zero in every simulator; no source locations
    (byte-identical on rerun)."""
    text = verilog.convert(component, name=name, emit_src=False)
    text = _MODULE.sub(lambda m: m.group(0) + TIME_ZERO_KICK, text)
    text = _ALWAYS.sub(_always, text)
    unkicked = text.count("always @*") - text.count(f"always @* begin\n")
    if unkicked:
        raise AssertionError(f"{unkicked} always @* block(s) of an unexpected shape: no time-zero kick")
    return text
