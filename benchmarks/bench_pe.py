"""Benchmark: PE cycles per layer-step against input spike density, and Verilog generation time.

    .venv/bin/python benchmarks/bench_pe.py [--steps 4] [--seed 1] [--out build/bench]

Cycles are counted in amaranth.sim with no stalls (the PE's own throughput), from the first
input event of a step to the end token it emits, and set beside the cycle model of the
PE's bounds (``SpikingPE.step_cycles``: k²·G per event, 1 per lane group, the pipelines'
latency, at most 2 more per output spike; the manifest lists the same figures). The last
column is what a dense (non-event-driven) PE with the same lanes would need: every neuron
visits its whole fan-in, lanes neurons at a time. Prints a
table, writes ``cycles.json`` and ``cycles_vs_density.png`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import matplotlib
import numpy as np
import torch
from amaranth.sim import Simulator
from spikehq.golden import codes
from spikehq.golden.config import LayerWeights, config_from_dict
from spikehq.golden.reference import run_layer
from spikehq.rtl.gen import generate
from spikehq.rtl.pe import SpikingPE
from spikehq.sim.amaranth_streams import stream_get, stream_put
from spikehq.sim.vectors import events_of_step

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

DENSITIES = [0.0, 0.02, 0.05, 0.1, 0.2, 0.4, 0.7, 1.0]
LAYERS = {
    "linear 64→64, 8 lanes": {"kind": "linear", "in_features": 64, "out_features": 64, "lanes": 8},
    "conv 3×3 4→8 on 8×8, 4 lanes": {"kind": "conv2d", "in_channels": 4, "out_channels": 8, "kernel_size": 3,
                                    "padding": 1, "height": 8, "width": 8, "lanes": 4},
}


def make_layer(geometry: dict, steps: int):
    raw = {"name": "bench", **geometry, "scheme": "pot", "bits": 4,
           "neuron": {"type": "lif", "threshold": 40, "leak_shift": 1}}
    return config_from_dict({"format": "spikehq-searched", "version": 1, "name": "bench",
                             "time_steps": steps, "layers": [raw]}).layers[0]


def measure(layer, weights, frames) -> tuple[list[int], int]:
    """Cycles of every step with an always-ready consumer and a never-stalling producer."""
    dut = SpikingPE(layer=layer, weights=weights)
    cycles, spikes_out = [], 0

    async def bench(ctx):
        nonlocal spikes_out
        while not ctx.get(dut.i_spikes.ready):     # the current-memory sweep after reset (§13)
            await ctx.tick()
        for t in range(layer.time_steps):
            tokens = [{"y": y, "x": x, "c": c, "value": v, "end": 0} for y, x, c, v in events_of_step(frames[t])]
            tokens.append({"y": 0, "x": 0, "c": 0, "value": 0, "end": 1})
            edges = 0
            for token in tokens:
                edges += await stream_put(ctx, dut.i_spikes, token)
            while True:
                payload, taken = await stream_get(ctx, dut.o_spikes)
                edges += taken
                if payload.end:
                    break
                spikes_out += 1
            cycles.append(edges)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return cycles, spikes_out


def model_cycles(layer, weights, events_per_step, spikes_per_step) -> tuple[int, int]:
    """The PE's own cycle bounds (``SpikingPE.step_cycles``), summed over the steps."""
    pe = SpikingPE(layer=layer, weights=weights)
    bounds = [pe.step_cycles(e, s) for e, s in zip(events_per_step, spikes_per_step, strict=True)]
    return sum(lo for lo, _ in bounds), sum(hi for _, hi in bounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=4, help="time steps per sample (default 4)")
    parser.add_argument("--seed", type=int, default=1, help="seed of weights and input spikes (default 1)")
    parser.add_argument("--out", type=Path, default=Path("build/bench"), help="folder for cycles.json and the plot")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    print(f"seed {args.seed}, {args.steps} steps, no stalls")
    results = {}
    for label, geometry in LAYERS.items():
        layer = make_layer(geometry, args.steps)
        values = rng.choice(codes.levels("pot", 4), size=(layer.out_channels, layer.in_channels, layer.kernel_size,
                                                          layer.kernel_size))
        weights = LayerWeights(codes.encode("pot", 4, values), np.zeros(layer.out_channels, dtype=np.int64),
                               np.full(layer.out_channels, 40))
        print(f"\n{label}: fan-in {layer.fan_in}, {layer.num_inputs} inputs, {layer.num_outputs} neurons")
        print(f"{'density':>8} {'events/step':>12} {'cycles/step':>12} {'bounds':>15} {'dense cycles/step':>18}")
        rows = []
        for density in DENSITIES:
            shape = (args.steps, layer.height, layer.width, layer.in_channels)
            frames = torch.from_numpy((rng.random(shape) < density).astype(np.int64))
            cycles, spikes = measure(layer, weights, frames)
            trace = run_layer(layer, weights, frames)
            assert int(trace.spikes.abs().sum()) == spikes, "benchmark PE disagrees with the golden model"
            events = int(frames.sum())
            lo, hi = model_cycles(layer, weights, [int(f.sum()) for f in frames],
                                  [int(st.abs().sum()) for st in trace.spikes])
            assert lo <= sum(cycles) <= hi, f"cycles {sum(cycles)} outside the PE's bounds [{lo}, {hi}]"
            model = (lo / args.steps, hi / args.steps)
            row = {"density": density, "events_per_step": events / args.steps,
                   "cycles_per_step": sum(cycles) / args.steps, "model_cycles_per_step": list(model),
                   "dense_cycles_per_step": layer.num_outputs * layer.fan_in // layer.lanes}
            rows.append(row)
            print(f"{density:>8.2f} {row['events_per_step']:>12.1f} {row['cycles_per_step']:>12.1f} "
                  f"{model[0]:>7.1f}–{model[1]:<7.1f} "
                  f"{layer.num_outputs * layer.fan_in // layer.lanes:>18}")
        results[label] = rows

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        generate("configs/example_tiny.json", Path(tmp) / "gen", quiet=True)
        gen_seconds = time.perf_counter() - t0
    print(f"\nVerilog generation, configs/example_tiny.json (3 PEs): {gen_seconds:.2f} s")
    results["generation_seconds_example_tiny"] = gen_seconds

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "cycles.json").write_text(json.dumps(results, indent=2) + "\n")
    fig, ax = plt.subplots(figsize=(6, 4))
    for label in LAYERS:
        ax.plot([r["density"] for r in results[label]], [r["cycles_per_step"] for r in results[label]], "o-", label=label)
    ax.set_xlabel("input spike density")
    ax.set_ylabel("cycles per layer-step")
    ax.set_title("Event-driven PE: cycles scale with input spikes")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out / "cycles_vs_density.png", dpi=120)
    print(f"wrote {args.out / 'cycles.json'} and {args.out / 'cycles_vs_density.png'}")


if __name__ == "__main__":
    main()
