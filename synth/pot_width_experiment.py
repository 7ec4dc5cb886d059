"""How much of 4-bit PoT's area is its wider datapath? (evidence for docs/synthesis.md, "PoT vs uniform")

``python -m spikehq.synth.pot_width_experiment`` synthesizes (yosys ``synth_ecp5 -nodsp``, no
place and route, cached under ``build/synth/compare/width``):

* PoT and uniform MACs (4 weight bits, 4 and 8 activation bits) at both schemes' accumulator
  widths, so the shifter and the multiplier are compared at equal width;
* the comparison's 4-bit PoT PE as generated, and the same PE with the uniform datapath widths
  (the weight bound 8 instead of 64). That second PE is an **area experiment only**: with the
  real PoT weights its accumulator would overflow.

Every figure is out-of-context area; nothing here changes the flow or the RTL.
"""

from __future__ import annotations

import sys
from pathlib import Path

from amaranth.back import verilog

from ..golden import config as golden_config
from ..golden.config import load_config, load_weights
from ..rtl.gen import port_list
from ..rtl.mac import PotMac, UniformMac
from ..rtl.pe import SpikingPE
from .compare import write_case_config
from .flow import synth_module

WORK = Path("build/synth/compare/width")
_KEYS = ("lut", "carry", "lut_equiv", "ff", "lutram", "bram")


def _area(module, name: str) -> dict:
    text = verilog.convert(module, name=name, emit_src=False)
    ports = [p for p in port_list(module) if p["name"] not in ("clk", "rst")]
    r = synth_module(text, name, ports, target="ecp5", device="25k", dsp=False, pnr=False, cache_dir=WORK / "cache")
    return {k: r["area"][k] for k in _KEYS}


def run() -> list[tuple[str, dict]]:
    rows = []
    for act, widths in ((4, (14, 17)), (8, (18, 21))):
        for width in widths:
            for cls in (PotMac, UniformMac):
                rows.append((f"MAC {cls.__name__} w4 a{act}, accumulator {width} bits",
                             _area(cls(weight_bits=4, activation_bits=act, acc_width=width), "spikehq_width_mac")))
    original = golden_config.weight_max_abs
    try:
        for act in (4, 8):
            layer = load_config(write_case_config(WORK / "configs", "pot", 4, act)).layers[0]
            weights = load_weights(layer)
            for w_max in (None, 8):
                golden_config.weight_max_abs = original if w_max is None else (lambda scheme, bits: 8)
                pe = SpikingPE(layer=layer, weights=weights)
                label = (f"PE pot4 a{act}, " + ("as generated" if w_max is None else "uniform widths (area only)")
                         + f": current {pe.widths.current_width}, membrane {pe.widths.membrane_width} bits")
                rows.append((label, _area(pe, "spikehq_width_pe")))
    finally:
        golden_config.weight_max_abs = original
    return rows


def main() -> int:
    rows = run()
    print("| design | LUT4 | CCU2C | LUT eq. | FF | LUT RAM | DP16KD |")
    print("|---|---|---|---|---|---|---|")
    for label, a in rows:
        print(f"| {label} | " + " | ".join(str(a[k]) for k in _KEYS) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
