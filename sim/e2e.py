"""``make e2e``: the whole-network core on Verilator against the golden model, on digits test samples.

Usage: ``python -m spikehq.sim.e2e [--config configs/digits_searched/searched.json] [--samples N] [--first I]``

Builds the network top (``rtl/network.py``, with spike-count tracing) into the C++ Verilator
harness (``sim/network_harness.py``; by default every digits test sample), runs the samples
one at a time (class, every score and every engine's spike count at every step compared with
the golden model; latency) and back to back (class and scores; throughput), with seeded random
stalls on both streams, and prints the mismatches, the RTL's accuracy next to the golden
model's, cycles per inference and simulation speed. Exit status 1 on any mismatch, 2 on bad
arguments. The summary and per-sample results go to ``--out`` (JSON). ``--sim cocotb`` runs
the cocotb testbench ``sim/tb_network.py`` instead (about 25 times slower).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

__all__ = ["main", "summarize"]

# mismatching samples printed one per line; the JSON has them all
SHOWN_MISMATCHES = 20


def summarize(results: dict) -> dict:
    """Summary of the cocotb testbench's results JSON (``--sim cocotb``)."""
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


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"expected 0 <= P < 1, got {value}")
    return value


def _run_cocotb(args, samples: list[int], out: Path) -> int:
    from .runner import run_network
    start = time.monotonic()
    results = out.with_name(out.stem + "_cocotb.json")
    tests, failures = run_network(args.config, samples, stall_seed=args.seed, stall=args.stall, results=results)
    wall = time.monotonic() - start
    if not results.exists():
        print(f"error: the testbench wrote no results (see build/sim/verilator/network_*/test_{args.seed}.log)",
              file=sys.stderr)
        return 1
    summary = summarize(json.loads(results.read_text()))
    summary["wall_s"] = round(wall, 1)
    out.write_text(json.dumps(summary, indent=1) + "\n")
    ok = (failures == 0 and tests == 1 and summary["mismatching_samples"] == 0
          and summary["back_to_back_mismatching_samples"] == 0)
    interval = summary["back_to_back_cycles_between_results"]
    print(f"e2e: {'PASS' if ok else 'FAIL'}: {summary['mismatching_samples']} of {summary['samples']} samples mismatch "
          f"(one at a time), {summary['back_to_back_mismatching_samples']} back to back; "
          f"RTL accuracy {summary['rtl_accuracy']:.1f} %, golden {summary['golden_accuracy']:.1f} %; "
          f"latency {summary['cycles_mean']:.0f} cycles per inference"
          + (f", back to back one result every {interval:.0f} cycles" if interval else "") + f"; {wall:.0f} s")
    return 0 if ok else 1


def _run_harness(args, samples: list[int], out: Path) -> int:
    from .network_harness import run_harness
    start = time.monotonic()
    summary = run_harness(args.config, samples, stall_seed=args.seed, stall=args.stall,
                          progress=sys.stderr.isatty(), quiet=False)
    wall = time.monotonic() - start
    summary["wall_s"] = round(wall, 1)
    summary["load_average"] = list(os.getloadavg())
    out.write_text(json.dumps(summary, indent=1) + "\n")
    bad = [s for s in summary["samples"] if any(s[p]["problems"] for p in summary["passes"])]
    for s in bad[:SHOWN_MISMATCHES]:
        for p in summary["passes"]:
            if s[p]["problems"]:
                print(f"e2e: MISMATCH sample {s['index']} ({p.replace('_', ' ')}): " + "; ".join(s[p]["problems"]))
    if len(bad) > SHOWN_MISMATCHES:
        print(f"e2e: … and {len(bad) - SHOWN_MISMATCHES} more mismatching samples (see {out})")
    one, b2b = summary["passes"]["one_at_a_time"], summary["passes"]["back_to_back"]
    ok = summary["mismatching_samples"] == 0
    print(f"e2e: {'PASS' if ok else 'FAIL'}: {one['mismatching_samples']} of {one['samples']} samples mismatch "
          f"one at a time (class, scores, spike counts per engine and step), {b2b['mismatching_samples']} back to back "
          f"(class, scores)")
    print(f"e2e: accuracy on digits test #{samples[0]}–#{samples[-1]}: RTL {one['rtl_accuracy']:.2f} %, "
          f"golden {one['golden_accuracy']:.2f} % (back to back: RTL {b2b['rtl_accuracy']:.2f} %)")
    print(f"e2e: latency {one['cycles_mean']:.0f} cycles per inference (min {one['cycles_min']}, max "
          f"{one['cycles_max']}), back to back one result every {b2b['cycles_between_results'] or 0:.0f} cycles; "
          f"Verilator harness {one['cycles_per_s'] / 1e3:.0f} k cycles/s one at a time, "
          f"{b2b['cycles_per_s'] / 1e3:.0f} k cycles/s back to back; {wall:.0f} s in all; wrote {out}")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="spikehq-e2e", description=__doc__.split("\n\n")[2].replace("\n", " "))
    parser.add_argument("--config", default="configs/digits_searched/searched.json",
                        help="an exported searched.json (default: the committed digits search output)")
    parser.add_argument("--samples", type=_at_least(1), default=None,
                        help="number of digits test samples (default: every one from --first on)")
    parser.add_argument("--first", type=_at_least(0), default=0, help="index of the first test sample (default 0)")
    parser.add_argument("--seed", type=int, default=20261123, help="seed of the random valid/ready stalls")
    parser.add_argument("--stall", type=_probability, default=0.2,
                        help="stall probability on input and result streams (default 0.2)")
    parser.add_argument("--sim", choices=("harness", "cocotb"), default="harness",
                        help="the C++ Verilator harness (default) or the cocotb testbench")
    parser.add_argument("--out", default="build/e2e/summary.json", help="summary and per-sample results (JSON)")
    args = parser.parse_args(argv)
    from ..golden.config import ConfigError
    from ..search.data import load_dataset
    from .network_harness import HarnessError
    from .runner import VerilatorMissing
    _, test = load_dataset("digits", time_steps=1)
    available = len(test.labels)
    if args.first >= available:
        parser.error(f"--first: the digits test set has {available} samples (#0 to #{available - 1}), got {args.first}")
    count = available - args.first if args.samples is None else args.samples
    if args.first + count > available:
        parser.error(f"--first + --samples: the digits test set has {available} samples, "
                     f"asked for #{args.first} to #{args.first + count - 1}")
    samples = list(range(args.first, args.first + count))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    print(f"e2e: {count} samples from #{args.first}, {args.sim}, stall seed {args.seed}, stall {args.stall}", flush=True)
    try:
        return (_run_harness if args.sim == "harness" else _run_cocotb)(args, samples, out)
    except (ConfigError, VerilatorMissing) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except HarnessError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
