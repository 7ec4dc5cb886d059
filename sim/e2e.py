"""``make e2e``: the whole-network core on Verilator against the golden model, on digits test samples.

Usage: ``python -m spikehq.sim.e2e --config configs/digits_searched/searched.json --samples 50``

Builds the network top (``rtl/network.py``, with spike-count tracing), runs the cocotb
testbench ``sim/tb_network.py`` and prints, for the samples run: mismatches (class, scores,
spike counts of every engine at every step), the RTL's and the golden model's accuracy, and
cycles per inference. Exit status 1 on any mismatch. Results go to ``--out`` (JSON).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

__all__ = ["main", "summarize"]


def summarize(results: dict) -> dict:
    samples = results["samples"]
    n = len(samples)
    cycles = [s["cycles"] for s in samples]
    return {
        "samples": n,
        "mismatching_samples": sum(not (s["scores_match"] and s["counts_match"] and s["rtl_label"] == s["golden_label"])
                                   for s in samples),
        "rtl_accuracy": 100.0 * sum(s["rtl_label"] == s["label"] for s in samples) / n,
        "golden_accuracy": 100.0 * sum(s["golden_label"] == s["label"] for s in samples) / n,
        "cycles_mean": statistics.fmean(cycles), "cycles_min": min(cycles), "cycles_max": max(cycles),
        "back_to_back_mismatching_samples": results["back_to_back"]["mismatching_samples"],
        "back_to_back_cycles_between_results": results["back_to_back"]["cycles_between_results"],
    }


def _at_least(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected at least {minimum}, got {value}")
        return value
    return parse


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="spikehq-e2e", description=__doc__.split("\n\n")[1].replace("\n", " "))
    parser.add_argument("--config", default="configs/digits_searched/searched.json",
                        help="an exported searched.json (default: the committed digits search output)")
    parser.add_argument("--samples", type=_at_least(1), default=50, help="number of digits test samples (default 50)")
    parser.add_argument("--first", type=_at_least(0), default=0, help="index of the first test sample (default 0)")
    parser.add_argument("--seed", type=int, default=20261123, help="seed of the random valid/ready stalls")
    parser.add_argument("--stall", type=float, default=0.2, help="stall probability on input and result streams")
    parser.add_argument("--out", default="build/e2e/results.json", help="per-sample results (JSON)")
    args = parser.parse_args(argv)
    from ..golden.config import ConfigError
    from ..search.data import load_dataset
    from .runner import run_network
    _, test = load_dataset("digits", time_steps=1)
    if args.first + args.samples > len(test.labels):
        parser.error(f"--first + --samples: the digits test set has {len(test.labels)} samples, "
                     f"asked for #{args.first} to #{args.first + args.samples - 1}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    print(f"e2e: {args.samples} samples from #{args.first}, stall seed {args.seed}, stall {args.stall}", flush=True)
    start = time.monotonic()
    try:
        tests, failures = run_network(args.config, list(range(args.first, args.first + args.samples)),
                                      stall_seed=args.seed, stall=args.stall, results=out)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    wall = time.monotonic() - start
    if not out.exists():
        print(f"error: the testbench wrote no results (see build/sim/verilator/network_*/test_{args.seed}.log)", file=sys.stderr)
        return 1
    summary = summarize(json.loads(out.read_text()))
    summary["wall_s"] = round(wall, 1)
    print(json.dumps(summary, indent=1))
    ok = (failures == 0 and tests == 1 and summary["mismatching_samples"] == 0
          and summary["back_to_back_mismatching_samples"] == 0)
    interval = summary["back_to_back_cycles_between_results"]
    print(f"e2e: {'PASS' if ok else 'FAIL'}: {summary['mismatching_samples']} of {summary['samples']} samples mismatch "
          f"(one at a time), {summary['back_to_back_mismatching_samples']} back to back; "
          f"RTL accuracy {summary['rtl_accuracy']:.1f} %, golden {summary['golden_accuracy']:.1f} %; "
          f"latency {summary['cycles_mean']:.0f} cycles per inference"
          + (f", back to back one result every {interval:.0f} cycles" if interval else "") + f"; {wall:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
