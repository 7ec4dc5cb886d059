"""``make verify``: the PE regression at scale, on every simulator, until a value count is reached.

Cases: the 32-way matrix and the corner cases of ``make test`` with other seeds, a set of
large and odd geometries (maps up to 32×32 with odd sides, fan-in of 512 and more, kernels
of 1–5 with every padding, lanes that are not powers of two), and random valid
configurations (:func:`spikehq.sim.vectors.random_params`), each simulated on Verilator and
Icarus Verilog and compared output by output with the golden model (spike events, end
tokens, membranes after every step). Lanes that do not divide the output channels are not a
legal configuration (``layers[i].lanes: must divide``), so they are not generated.

Every case prints its configuration seed and the stall seed; the summary (values compared
per simulator, cases, failures, wall time) goes to ``build/verify/summary.json``.

Usage: ``python -m spikehq.sim.verify --values 1000000`` (``--help`` for the options).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import time
from pathlib import Path

from tqdm import tqdm

from ..atomic import write_json_atomic
from .runner import SIMULATORS, icarus_missing, run_pe_case
from .vectors import CaseParams, case_cycles, matrix, random_params, relu_key_cases

__all__ = ["geometry_cases", "plan", "main"]


def geometry_cases(seed: int) -> list[CaseParams]:
    """Large and odd geometries the matrix's small layers never reach."""
    base = dict(seed=seed, random_samples=1)
    return [                                          # the cheapest first (make test runs it)
        CaseParams(kind="conv2d", scheme="pot", bits=2, activation_bits=2, neuron="ternary", membrane="ternary",
                   reset="soft", leak_shift=5, lanes=9, in_channels=3, out_channels=9, kernel_size=2, padding=1,
                   height=17, width=13, **base),
        CaseParams(kind="conv2d", scheme="pot", bits=4, activation_bits=4, neuron="ternary", membrane="integer",
                   reset="soft", leak_shift=2, lanes=3, in_channels=2, out_channels=6, kernel_size=3, padding=1,
                   height=32, width=31, **base),
        CaseParams(kind="conv2d", scheme="uniform", bits=2, activation_bits=1, neuron="lif", membrane="ternary",
                   reset="hard", leak_shift=1, lanes=5, in_channels=1, out_channels=5, kernel_size=5, padding=3,
                   height=29, width=32, **base),
        CaseParams(kind="conv2d", scheme="uniform", bits=4, activation_bits=1, neuron="lif", membrane="integer",
                   reset="hard", leak_shift=0, lanes=7, in_channels=64, out_channels=7, kernel_size=3, padding=0,
                   height=5, width=7, **base),                                       # fan-in 576
        CaseParams(kind="linear", scheme="pot", bits=2, activation_bits=8, neuron="lif", membrane="integer",
                   reset="soft", leak_shift=3, lanes=6, in_channels=515, out_channels=12, kernel_size=1, padding=0,
                   height=3, width=1, **base),
        CaseParams(kind="linear", scheme="uniform", bits=4, activation_bits=3, neuron="ternary", membrane="ternary",
                   reset="hard", leak_shift=16, lanes=1, in_channels=600, out_channels=3, kernel_size=1,
                   padding=0, height=2, width=1, **base),
    ]


def plan(seed: int) -> list[CaseParams]:
    """One round of cases for ``seed``: the geometries, 12 random configurations, then a
    quarter of the matrix with new seeds (the whole matrix every four rounds), the A2OS2A
    relu-key cases with new seeds."""
    round_ = geometry_cases(seed)
    round_ += [random_params(10_000 * seed + i) for i in range(12)]
    quarter = (seed % 4) * 8
    round_ += [dataclasses.replace(p, seed=p.seed + 1000 * seed) for p in matrix()[quarter:quarter + 8]]
    round_ += [dataclasses.replace(p, seed=p.seed + 1000 * seed) for p in relu_key_cases()]
    return round_


def _compared(build_dir: Path) -> int:
    """Values the testbench compared (its ``values.json``)."""
    return int(json.loads((build_dir / "values.json").read_text())["compared"])


def run(values: int, simulators: list[str], first_seed: int, stall_seed: int, out: Path,
        keep: bool = False, quiet: bool = False) -> dict:
    """Simulate rounds of cases until every simulator compared at least ``values`` values."""
    start = time.time()
    summary = {"target_values": values, "stall_seed": stall_seed, "simulators": {}, "cases": []}
    totals = {sim: 0 for sim in simulators}
    seed = first_seed
    bar = tqdm(total=values * len(simulators), unit="value", unit_scale=True, disable=quiet, desc="verify")
    while min(totals.values()) < values:
        for params in plan(seed):
            if min(totals.values()) >= values:
                break
            for sim in simulators:
                build_root = out
                t0 = time.time()
                tests, failures = run_pe_case(params, stall_seed=stall_seed, simulator=sim, build_root=build_root)
                case_dir = build_root / sim / params.name
                compared = _compared(case_dir) if tests == 1 and not failures else 0
                totals[sim] += compared
                bar.update(compared)
                record = {"case": params.name, "config_seed": params.seed, "simulator": sim, "passed": failures == 0
                          and tests == 1, "values": compared, "estimated_cycles": case_cycles(params),
                          "seconds": round(time.time() - t0, 2)}
                summary["cases"].append(record)
                tqdm.write(f"{'ok  ' if record['passed'] else 'FAIL'} {sim:9} {params.name} "
                           f"(config seed {params.seed}, stall seed {stall_seed}): {compared} values")
                if record["passed"] and not keep:
                    shutil.rmtree(case_dir, ignore_errors=True)
        seed += 1
    bar.close()
    summary["simulators"] = {sim: {"values": totals[sim],
                                   "cases": sum(1 for c in summary["cases"] if c["simulator"] == sim),
                                   "failures": sum(1 for c in summary["cases"] if c["simulator"] == sim
                                                   and not c["passed"])} for sim in simulators}
    summary["values"] = sum(totals.values())
    summary["failures"] = sum(1 for c in summary["cases"] if not c["passed"])
    summary["seconds"] = round(time.time() - start, 1)
    write_json_atomic(out / "summary.json", summary, indent=1)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m spikehq.sim.verify",
        description="Simulate the PE regression at scale (matrix with new seeds, large and odd geometries, random "
                    "valid configurations) on every simulator, comparing every output with the golden model, until "
                    "each simulator compared --values values. Writes OUT/summary.json; exits 1 on any mismatch.")
    parser.add_argument("--values", type=int, default=500_000,
                        help="values to compare per simulator (default 500000: 10^6 over both simulators)")
    parser.add_argument("--simulators", default=",".join(SIMULATORS),
                        help=f"comma-separated, from {', '.join(SIMULATORS)} (default: all)")
    parser.add_argument("--seed", type=int, default=1, help="first configuration seed (default 1)")
    parser.add_argument("--stall-seed", type=int, default=20261123, help="seed of the random stalls")
    parser.add_argument("--out", default="build/verify", help="work folder and summary (default build/verify)")
    parser.add_argument("--keep", action="store_true", help="keep the build folders of passing cases")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.values < 1:
        parser.error(f"--values: expected at least 1, got {args.values}")
    simulators = [s for s in args.simulators.split(",") if s]
    unknown = [s for s in simulators if s not in SIMULATORS]
    if unknown or not simulators:
        parser.error(f"--simulators: expected names from {', '.join(SIMULATORS)}, got {args.simulators!r}")
    if "icarus" in simulators and icarus_missing():
        print(f"error: {icarus_missing()}", file=sys.stderr)
        return 2
    summary = run(args.values, simulators, args.seed, args.stall_seed, Path(args.out), keep=args.keep, quiet=args.quiet)
    for sim, s in summary["simulators"].items():
        print(f"{sim}: {s['values']} values compared in {s['cases']} cases, {s['failures']} failing")
    print(f"total {summary['values']} values, {summary['failures']} failing cases, {summary['seconds']} s "
          f"(summary: {Path(args.out) / 'summary.json'})")
    return 1 if summary["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
