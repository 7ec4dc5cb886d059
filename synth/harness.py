"""A pin-limited wrapper around a module for place and route of a stand-alone PE.

A PE's stream ports are far wider than a package's pins. The harness feeds every input of the
module from one serial shift register (``sin``), registers every output and XOR-reduces them
into one registered pin (``sout``), so no logic can be optimized away and every path of the
module is register to register. Its cost (shift register, output registers, XOR tree) is
reported separately: the module's own area comes from an out-of-context synthesis of the
module alone.
"""

from __future__ import annotations

__all__ = ["harness_verilog", "HARNESS_TOP", "harness_overhead_ffs"]

HARNESS_TOP = "spikehq_synth_harness"


def _inputs_outputs(ports: list[dict]) -> tuple[list[dict], list[dict]]:
    ins = [p for p in ports if p["direction"] == "in" and p["name"] not in ("clk", "rst")]
    outs = [p for p in ports if p["direction"] == "out"]
    if not outs:
        raise ValueError("module has no outputs: nothing to observe")
    return ins, outs


def harness_overhead_ffs(ports: list[dict]) -> int:
    ins, outs = _inputs_outputs(ports)
    return max(sum(p["width"] for p in ins), 1) + sum(p["width"] for p in outs) + 1


def harness_verilog(module: str, ports: list[dict]) -> str:
    """Verilog of the harness around ``module`` with ``ports`` (manifest format: name, direction, width)."""
    ins, outs = _inputs_outputs(ports)
    n_in = max(sum(p["width"] for p in ins), 1)
    n_out = sum(p["width"] for p in outs)
    names = {p["name"] for p in ports}
    lines = [
        f"// spikehq synthesis harness around {module}: serial input, XOR-reduced registered output.",
        f"module {HARNESS_TOP} (input wire clk, input wire rst, input wire sin, output reg sout);",
        f"  reg [{n_in - 1}:0] shift_in;",
        f"  wire [{n_out - 1}:0] outs;",
        f"  reg [{n_out - 1}:0] outs_q;",
        "  always @(posedge clk) begin",
        (f"    shift_in <= {{shift_in[{n_in - 2}:0], sin}};" if n_in > 1 else "    shift_in <= sin;"),
        "    outs_q <= outs;",
        "    sout <= ^outs_q;",
        "  end",
    ]
    conns = []
    if "clk" in names:
        conns.append(".clk(clk)")
    if "rst" in names:
        conns.append(".rst(rst)")
    offset = 0
    for p in ins:
        conns.append(f".{p['name']}(shift_in[{offset + p['width'] - 1}:{offset}])")
        offset += p["width"]
    offset = 0
    for p in outs:
        conns.append(f".{p['name']}(outs[{offset + p['width'] - 1}:{offset}])")
        offset += p["width"]
    lines.append(f"  {module} dut (\n    " + ",\n    ".join(conns) + "\n  );")
    lines.append("endmodule")
    return "\n".join(lines) + "\n"
