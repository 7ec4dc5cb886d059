"""How much of 4-bit PoT's area is its wider datapath? (evidence for docs/synthesis.md, "PoT vs uniform")

``.venv/bin/python benchmarks/pot_width.py`` (or ``make bench-pot-width``) synthesizes (yosys
``synth_ecp5 -nodsp``, no place and route, cached under ``build/synth/compare/width``):

* PoT and uniform MACs (4 weight bits, 4 and 8 activation bits) at both schemes' accumulator
  widths, so the shifter and the multiplier are compared at equal width;
* the comparison's 4-bit PoT PE as generated, and the same PE with the uniform datapath widths
  (``layer.widths(weights, weight_bound=8)``: the weight bound 8 instead of 64). That second
  PE is an **area experiment only**: with the real PoT weights its accumulator would overflow.

Every figure is out-of-context area; nothing here changes the flow or the RTL. Prints a
Markdown table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


from pot_vs_uniform import write_case_config
from spikehq.golden.config import load_config, load_weights
from spikehq.rtl.gen import port_list
from spikehq.rtl.mac import PotMac, UniformMac
from spikehq.rtl.pe import SpikingPE
from spikehq.rtl.verilog import to_verilog
from spikehq.synth.flow import synth_module
from spikehq.synth.tools import ToolError

KEYS = ("lut", "carry", "lut_equiv", "ff", "lutram", "bram")
UNIFORM_WEIGHT_BOUND = 8  # the largest |weight| of 4-bit uniform codes


def area(module, name: str, work: Path) -> dict:
    """Out-of-context ECP5 area (``-nodsp``) of an Amaranth module."""
    text = to_verilog(module, name)
    ports = [p for p in port_list(module) if p["name"] not in ("clk", "rst")]
    r = synth_module(text, name, ports, target="ecp5", device="25k", dsp=False, pnr=False, cache_dir=work / "cache")
    return {k: r["area"][k] for k in KEYS}


def run(work: Path) -> list[tuple[str, dict]]:
    rows = []
    for act, widths in ((4, (14, 17)), (8, (18, 21))):
        for width in widths:
            for cls in (PotMac, UniformMac):
                rows.append((f"MAC {cls.__name__} w4 a{act}, accumulator {width} bits",
                             area(cls(weight_bits=4, activation_bits=act, acc_width=width), "spikehq_width_mac", work)))
    for act in (4, 8):
        layer = load_config(write_case_config(work / "configs", "pot", 4, act)).layers[0]
        weights = load_weights(layer)
        for bound in (None, UNIFORM_WEIGHT_BOUND):
            widths = None if bound is None else layer.widths(weights, weight_bound=bound)
            pe = SpikingPE(layer=layer, weights=weights, widths=widths)
            label = (f"PE pot4 a{act}, " + ("as generated" if bound is None else "uniform widths (area only)")
                     + f": current {pe.widths.current_width}, membrane {pe.widths.membrane_width} bits")
            rows.append((label, area(pe, "spikehq_width_pe", work)))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks/pot_width.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", default="build/synth/compare/width", help="cache and work folder")
    args = parser.parse_args(argv)
    try:
        rows = run(Path(args.work))
    except (ToolError, ValueError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print("| design | LUT4 | CCU2C | LUT eq. | FF | LUT RAM | DP16KD |")
    print("|---|---|---|---|---|---|---|")
    for label, a in rows:
        print(f"| {label} | " + " | ".join(str(a[k]) for k in KEYS) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
