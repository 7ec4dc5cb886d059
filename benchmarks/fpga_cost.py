"""The search's FPGA cost model against the synthesized PEs of a network (issue 11, goal ±15 %).

``.venv/bin/python benchmarks/fpga_cost.py [--config configs/digits_searched/searched.json] [--target ecp5]``
(or ``make bench-fpga-cost``): for every hardware layer, ``make gen``'s PE (lanes ``balanced``)
synthesized out of context by yosys, as ``make synth`` reports it (cached under
``build/synth/cache``; about 2-3 minutes cold for the digits network), next to the prediction of
``search/data/fpga_cost_<target>.json`` for the same layer (widths from its weights). The model
was fitted on a grid of other PEs (``make fit-fpga-cost``), never on these layers. Prints a
Markdown table with the % error of LUT eq. and block RAM per layer and the totals; exits 1 when
a layer's LUT eq. or BRAM is outside ±15 % (with ``--strict``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from spikehq.golden.config import ConfigError
from spikehq.search.fpga_cost import FpgaCostError, load_model
from spikehq.synth.fit_cost import check_config
from spikehq.synth.tools import ToolError

GOAL_PCT = 15.0


def _err(pred: float, real: float) -> float | None:
    return None if real == 0 else 100.0 * (pred - real) / real


def _cell(pred: float, real: float) -> str:
    e = _err(pred, real)
    return f"{pred:.0f} | {real:g} | " + ("exact" if pred == real else "n/a" if e is None else f"{e:+.1f} %")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="configs/digits_searched/searched.json")
    p.add_argument("--target", default="ecp5", choices=("ice40", "ecp5", "xilinx"))
    p.add_argument("--work", default="build/fpga_cost/check", help="generated Verilog (default build/fpga_cost/check)")
    p.add_argument("--cache", default="build/synth/cache")
    p.add_argument("--strict", action="store_true", help="exit 1 when a layer misses the ±15 %% goal")
    args = p.parse_args(argv)
    try:
        rows = check_config(Path(args.config), args.target, load_model(args.target), Path(args.cache), Path(args.work))
    except (ConfigError, FpgaCostError, ToolError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"# FPGA cost model vs yosys ({args.target}), {args.config}\n")
    print("| layer | weights | act. bits | lanes | LUT eq. pred | LUT eq. synth | error | BRAM pred | BRAM synth | error "
          "| FF pred | FF synth | DSP pred | DSP synth |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    misses, lut_errs = [], []
    tot = dict.fromkeys(("lp", "ls", "bp", "bs"), 0.0)
    for r in rows:
        pr, sy = r["pred"], r["synth"]
        print(f"| {r['name']} | {r['candidate']} | {r['act']} | {r['lanes']} | {_cell(pr['lut_equiv'], sy['lut_equiv'])} "
              f"| {_cell(pr['bram'], sy['bram'])} | {pr['ff']:.0f} | {sy['ff']} | {pr['dsp']:.1f} | {sy['dsp']} |")
        for key in ("lut_equiv", "bram"):
            e = _err(pr[key], sy[key])
            if (e is None and pr[key] != sy[key]) or (e is not None and abs(e) > GOAL_PCT):
                misses.append(f"{r['name']} {key}")
        lut_errs.append(abs(_err(pr["lut_equiv"], sy["lut_equiv"])))
        for key, value in (("lp", pr["lut_equiv"]), ("ls", sy["lut_equiv"]), ("bp", pr["bram"]), ("bs", sy["bram"])):
            tot[key] += value
    print(f"| **total** | | | | {_cell(tot['lp'], tot['ls'])} | {_cell(tot['bp'], tot['bs'])} | | | | |\n")
    print(f"LUT eq.: mean |error| {sum(lut_errs) / len(lut_errs):.1f} %, max {max(lut_errs):.1f} %. "
          f"Layers outside ±{GOAL_PCT:g} %: {', '.join(misses) if misses else 'none'}.")
    return 1 if args.strict and misses else 0


if __name__ == "__main__":
    sys.exit(main())
