"""Benchmark of the whole-network core on Verilator (not a test): cycles per inference,
synaptic operations per cycle, lane utilization per layer, input spike density, Verilator
speed, and how cycles change with the lanes policy. Run: ``make bench-network``.

Every policy runs the same digits test samples, side by side in one run, with no stalls
(consumer always ready, producer never idle): first one sample at a time (latency), then
back to back (throughput: the steady-state interval between results). Per-layer figures come from the golden trace of
the same samples: input events, synaptic operations (events × in-bounds taps × C_out), and
scan cycles from the PE's cycle formula (events × k²·C_out/L; rtl/pe.py), whose lane
utilization is SOP / (scan cycles × L). Simulation speed: cycles per second of the same model
under cocotb (sim/tb_network.py) and in the C++ harness (sim/network_harness.py), one sample
at a time. Back to back, for the first policy, every engine's cycles are split into busy,
waiting for input and blocked by output (sim/profile.py: sampled at the engines' stream ports
in the Verilator model, the generated Verilog unchanged), and lane utilization is
SOP / (interval cycles × lanes). ``--stream-fifo 0 64 512`` repeats every policy with the
PEs' input FIFOs at those depths (a copy of the config with ``metadata.network.stream_fifo``
set, under build/bench/). Writes build/bench/network.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from spikehq.search.data import load_dataset
from spikehq.golden.network import load_network
from spikehq.rtl.lanes import apply_lanes
from spikehq.sim.network_harness import run_harness
from spikehq.sim.runner import run_network

OUT = Path("build/bench")


def _taps(layer, y: int, x: int) -> int:
    """Output pixels an input pixel (y, x) reaches (stride 1, zero padding)."""
    k, p = layer.kernel_size, layer.padding
    ys = sum(0 <= y + p - i < layer.out_height for i in range(k))
    xs = sum(0 <= x + p - j < layer.out_width for j in range(k))
    return ys * xs


def layer_figures(net, config, samples: list[int]) -> dict:
    """Per PE layer, mean per inference: input events, SOP, scan cycles, lane utilization."""
    _, test = load_dataset("digits", time_steps=config.time_steps)
    _, trace = net.run(test.frames[samples], dump=True)
    out = {}
    for layer in config.layers:
        x = trace[layer.name]["inputs"]                  # [T, B, H, W, C]
        nz = (x != 0).nonzero().tolist()
        events = len(nz)
        sop = sum(_taps(layer, y, xx) for _, _, y, xx, _ in nz) * layer.out_channels
        scan = events * layer.kernel_size ** 2 * layer.groups
        n = len(samples)
        out[layer.name] = {"lanes": layer.lanes, "input_events": events / n,
                           "input_density": events / (n * x[:, 0].numel()),
                           "sop": sop / n, "scan_cycles": scan / n,
                           "lane_utilization": sop / (scan * layer.lanes) if scan else 0.0}
    return out


def with_stream_fifo(config_path: str, depth: int | None) -> str:
    """The config (``depth`` None), or a copy under build/bench/ whose PE input FIFOs hold ``depth`` tokens."""
    if depth is None:
        return config_path
    source = Path(config_path)
    raw = json.loads(source.read_text())
    for layer in raw["layers"]:
        if "weights" in layer:
            layer["weights"] = str((source.parent / layer["weights"]).resolve())
    raw["metadata"]["network"]["stream_fifo"] = depth
    path = OUT / f"stream_fifo_{depth}" / "searched.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(raw, indent=1) + "\n")
    return str(path)


def run_policy(config_path: str, policy: str, samples: list[int], profile: bool = False, label: str = "") -> dict:
    path = OUT / f"network_{(label or policy).replace(':', '_').replace(' ', '_')}.json"
    start = time.monotonic()
    tests, failures = run_network(config_path, samples, stall_seed=1, stall=0.0, lanes=policy, results=path,
                                  profile=profile)
    wall = time.monotonic() - start
    results = json.loads(path.read_text())
    records = results["samples"]
    cycles = [r["cycles"] for r in records]
    sim_wall = sum(r["wall_s"] for r in records)
    return {"policy": label or policy, "passed": failures == 0 and tests == 1, "cycles_mean": statistics.fmean(cycles),
            "cycles_min": min(cycles), "cycles_max": max(cycles), "sim_cycles_per_s": sum(cycles) / sim_wall,
            "wall_s_including_build": wall,
            "input_events_mean": statistics.fmean(r["input_events"] for r in records),
            "back_to_back_cycles": results["back_to_back"]["cycles_between_results"],
            "back_to_back_passed": results["back_to_back"]["mismatching_samples"] == 0,
            "engine_cycles": results["back_to_back"].get("engine_cycles"),
            **run_policy_harness(config_path, policy, samples)}


def run_policy_harness(config_path: str, policy: str, samples: list[int]) -> dict:
    """The same samples, one at a time without stalls, on the C++ Verilator harness
    (sim/network_harness.py): its simulation speed next to cocotb's, same model."""
    start = time.monotonic()
    summary = run_harness(config_path, samples, stall_seed=1, stall=0.0, lanes=policy, passes=("one_at_a_time",))
    one = summary["passes"]["one_at_a_time"]
    return {"harness_passed": summary["mismatching_samples"] == 0, "harness_cycles_mean": one["cycles_mean"],
            "harness_sim_cycles_per_s": one["cycles_per_s"], "harness_wall_s_including_build": time.monotonic() - start}


def print_engine_cycles(profile: dict) -> None:
    """Per engine, back to back: the share of cycles busy, waiting for input, blocked by output."""
    print(f"\nwhere the cycles go back to back ({profile['cycles']} cycles sampled; sim/profile.py):")
    print(f"{'engine':14} {'busy':>7} {'waiting':>8} {'blocked':>8}")
    for name, c in sorted(profile["engines"].items(), key=lambda kv: -kv[1]["busy"]):
        print(f"{name:14} {100 * c['busy_fraction']:6.1f}% {100 * c['waiting_fraction']:7.1f}% "
              f"{100 * c['blocked_fraction']:7.1f}%")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="configs/digits_searched/searched.json")
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--no-profile", action="store_true",
                        help="skip the per-engine busy/waiting/blocked profile (it slows the first policy's cocotb run)")
    parser.add_argument("--policies", nargs="+", default=["balanced", "config", "balanced:2"],
                        help="lanes policies to compare (see rtl/lanes.py)")
    parser.add_argument("--stream-fifo", type=int, nargs="+", default=[None], metavar="TOKENS",
                        help="repeat every policy with the PEs' input FIFOs at these depths "
                             "(metadata.network.stream_fifo; default: the config's)")
    args = parser.parse_args()
    if any(d is not None and d < 0 for d in args.stream_fifo):
        parser.error("--stream-fifo: expected depths of 0 or more tokens")
    OUT.mkdir(parents=True, exist_ok=True)
    samples = list(range(args.samples))
    net = load_network(args.config)
    frames_in = net.config.layers[0]
    report = {"config": args.config, "samples": samples, "policies": [], "layers": {}}
    print(f"network {net.config.name}: {args.samples} digits test samples, T={net.config.time_steps}")
    runs = [(policy, depth) for depth in args.stream_fifo for policy in args.policies]
    for i, (policy, depth) in enumerate(runs):
        config = apply_lanes(net.config, policy)
        figures = layer_figures(net, config, samples)
        label = policy if depth is None else f"{policy} fifo {depth}"
        result = run_policy(with_stream_fifo(args.config, depth), policy, samples,
                            profile=i == 0 and not args.no_profile, label=label)
        total_sop = sum(f["sop"] for f in figures.values())
        result["sop_per_cycle"] = total_sop / result["cycles_mean"]
        result["total_lanes"] = sum(layer.lanes for layer in config.layers)
        result["input_spike_density"] = result["input_events_mean"] / (
            net.config.time_steps * frames_in.num_inputs)
        report["policies"].append(result)
        report["layers"][label] = figures
        result["back_to_back_sop_per_cycle"] = total_sop / result["back_to_back_cycles"]
        result["back_to_back_lane_utilization"] = result["back_to_back_sop_per_cycle"] / result["total_lanes"]
        ok = result["passed"] and result["back_to_back_passed"] and result["harness_passed"]
        print(f"\nlanes policy {label!r}: {'0 mismatches' if ok else 'MISMATCH'}; latency "
              f"{result['cycles_mean']:.0f} cycles per inference (min {result['cycles_min']}, "
              f"max {result['cycles_max']}), back to back one result every {result['back_to_back_cycles']:.0f} cycles; "
              f"{result['sop_per_cycle']:.2f} SOP/cycle one at a time, "
              f"{result['back_to_back_sop_per_cycle']:.2f} back to back "
              f"(lane utilization SOP/(cycles × lanes) {100 * result['back_to_back_lane_utilization']:.1f} %); "
              f"{result['total_lanes']} lanes in all; input spike density {result['input_spike_density']:.3f}; "
              f"Verilator {result['sim_cycles_per_s'] / 1e3:.0f} k cycles/s under cocotb, "
              f"{result['harness_sim_cycles_per_s'] / 1e3:.0f} k cycles/s in the C++ harness "
              f"({result['harness_sim_cycles_per_s'] / result['sim_cycles_per_s']:.0f}× faster)")
        print(f"{'layer':10} {'lanes':>5} {'in events':>10} {'density':>8} {'SOP':>10} {'scan cyc':>10} {'lane util':>9}")
        for name, f in figures.items():
            print(f"{name:10} {f['lanes']:5d} {f['input_events']:10.1f} {f['input_density']:8.3f} {f['sop']:10.0f} "
                  f"{f['scan_cycles']:10.0f} {f['lane_utilization']:9.2f}")
        if result["engine_cycles"]:
            print_engine_cycles(result["engine_cycles"])
    print("\ncycles per inference by lanes policy (latency one at a time | interval back to back):")
    for r in report["policies"]:
        print(f"  {r['policy']:18} {r['total_lanes']:4d} lanes  {r['cycles_mean']:10.0f} | {r['back_to_back_cycles']:8.0f} cycles  "
              f"{r['sop_per_cycle']:6.2f} | {r['back_to_back_sop_per_cycle']:6.2f} SOP/cycle  "
              f"lane utilization {100 * r['back_to_back_lane_utilization']:.1f} % back to back")
    (OUT / "network.json").write_text(json.dumps(report, indent=1) + "\n")
    print(f"\nwrote {OUT / 'network.json'}")


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
