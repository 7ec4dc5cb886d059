"""``python -m spikehq.synth``: area, Fmax and power estimates of every PE of a searched.json."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..golden.config import ConfigError
from .targets import TARGETS
from .tools import ToolError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m spikehq.synth",
        description="Synthesize every hardware layer's processing element (and the network top of an exported "
                    "Spikformer) of a searched.json with yosys "
                    "(yowasp), place and route it with nextpnr (iCE40 UP5K, ECP5 25k/85k) for Fmax, and "
                    "estimate power from Verilator switching activity. Writes report.json and report.md "
                    "under OUT/<network>_<target>_<device>/. Results are cached by content hash. "
                    "PoT-vs-uniform comparison: python benchmarks/pot_vs_uniform.py --help.")
    parser.add_argument("--config", required=True, help="path to searched.json")
    parser.add_argument("--target", default="ecp5", choices=sorted(TARGETS), help="FPGA family (default ecp5)")
    parser.add_argument("--device", default=None,
                        help="device of the target: ice40: up5k; ecp5: 25k (default), 85k; xilinx: xc7a35t (default), xc7a100t")
    parser.add_argument("--clock-mhz", type=float, default=100.0, help="clock target in MHz (default 100)")
    parser.add_argument("--out", default="build/synth", help="output folder (default build/synth)")
    parser.add_argument("--no-power", action="store_true", help="skip the Verilator activity run and power estimate")
    parser.add_argument("--density", type=float, default=0.15,
                        help="input event density for the activity run: probability that an input fires per step (default 0.15)")
    parser.add_argument("--samples", type=int, default=2, help="samples of T steps in the activity run (default 2)")
    parser.add_argument("--seed", type=int, default=1, help="seed of nextpnr and of the activity stimulus (default 1)")
    parser.add_argument("--lanes", default="fit",
                        help="lanes policy: fit (default: the fastest balanced:N, N = 8, 4, 2, 1, whose network top "
                             "fits the device by its synthesized cell counts; balanced when there is no top), or as "
                             "make gen: balanced[:N], config, NAME=L[,NAME=L...]")
    parser.add_argument("--top", action=argparse.BooleanOptionalAction, default=True,
                        help="also synthesize the whole-network top of an exported Spikformer, out of context "
                             "(area, memory table) and place and route it inside the pin-limited harness on iCE40/ECP5 "
                             "when it fits the device (default on; the digits top takes 10-30 minutes, see "
                             "docs/synthesis.md)")
    parser.add_argument("--layers", action=argparse.BooleanOptionalAction, default=True,
                        help="synthesize, place and route every layer's PE (default on; --no-layers: the top alone)")
    parser.add_argument("--engines", action=argparse.BooleanOptionalAction, default=True,
                        help="place and route every non-PE engine of the top (attention, residual adds, pooling, "
                             "forks, readout) alone in the harness: Fmax per engine (default on)")
    parser.add_argument("--share-roms", action=argparse.BooleanOptionalAction, default=True,
                        help="as make gen: pair small weight ROM banks of two PEs in one block RAM of the network top "
                             "(default on; --no-share-roms for the A/B comparison)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    from .config_flow import synth_config
    try:
        report = synth_config(Path(args.config), target=args.target, device=args.device, clock_mhz=args.clock_mhz,
                              out_dir=Path(args.out), power=not args.no_power, density=args.density,
                              samples=args.samples, seed=args.seed, lanes=args.lanes, quiet=args.quiet,
                              top=args.top, layers=args.layers, engines=args.engines, share_roms=args.share_roms)
    except (ConfigError, ToolError, ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except RuntimeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    print((Path(report["report_dir"]) / "report.md").read_text())
    print(f"wrote {report['report_dir']}/report.json and report.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
