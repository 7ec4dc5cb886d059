"""Drive a :class:`SpikingPE` in amaranth.sim with a :class:`Case` and collect everything it emits;
drive a combinational unit with input vectors (:func:`run_comb`).

Fast companion of the cocotb testbench (``sim/tb_pe.py``): same vectors, same stalls policy,
same comparison. Random valid/ready stalls come from an explicit seed.
"""

from __future__ import annotations

import random

from amaranth.sim import Simulator

from ..rtl.pe import SpikingPE, weight_rows
from .amaranth_streams import stream_get, stream_put
from .vectors import Case, events_of_step, expected_events

__all__ = ["run_case", "count_mismatches", "run_comb"]


def run_case(case: Case, *, stall_seed: int, stall_probability: float = 0.3):
    """Return ``(outputs, membranes)``: per sample, per step, the emitted events and the
    membrane words read through the probe after the step's end token."""
    dut = SpikingPE(layer=case.layer, weights=case.weights if case.params.with_weights else None, probe=True)
    layer = case.layer
    rng_in, rng_out = random.Random(stall_seed), random.Random(stall_seed + 1)
    outputs, membranes = [], []

    async def load_weights(ctx):
        if case.params.with_weights:
            return
        rows = weight_rows(layer, case.weights)
        ctx.set(dut.weight_write.en, 1)
        for addr, row in enumerate(rows):
            ctx.set(dut.weight_write.addr, addr)
            ctx.set(dut.weight_write.data, row)
            await ctx.tick()
        ctx.set(dut.weight_write.en, 0)

    async def send(ctx, payload):
        await stream_put(ctx, dut.i_spikes, payload, rng=rng_in, stall=stall_probability)

    async def receive_step(ctx):
        events = []
        while True:
            payload, _ = await stream_get(ctx, dut.o_spikes, rng=rng_out, stall=stall_probability)
            if payload.end:
                return events
            events.append((payload.y, payload.x, payload.c, payload.value))

    async def read_membranes(ctx):
        words = []
        for addr in range(dut.neuron_depth):
            ctx.set(dut.membrane_probe.addr, addr)
            await ctx.tick()
            words.append([int(v) for v in ctx.get(dut.membrane_probe.data)])
        return words

    async def testbench(ctx):
        await load_weights(ctx)
        for sample in case.samples:
            sample_out, sample_mem = [], []
            for t in range(layer.time_steps):
                for y, x, c, value in events_of_step(sample[t], rng_in):
                    await send(ctx, {"y": y, "x": x, "c": c, "value": value, "end": 0})
                await send(ctx, {"y": 0, "x": 0, "c": 0, "value": 0, "end": 1})
                sample_out.append(await receive_step(ctx))
                sample_mem.append(await read_membranes(ctx))
            outputs.append(sample_out)
            membranes.append(sample_mem)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()
    return outputs, membranes


def count_mismatches(case: Case, outputs, membranes) -> int:
    """Steps whose spike events or accumulators (the next step's bases) differ from the golden traces."""
    bad = 0
    for sample_out, sample_mem, trace in zip(outputs, membranes, case.traces, strict=True):
        for t in range(case.layer.time_steps):
            bad += sample_out[t] != expected_events(trace.spikes[t])
            bad += [v for word in sample_mem[t] for v in word] != trace.bases[t].reshape(-1).tolist()
    return bad


def run_comb(dut, vectors, check) -> None:
    """Apply each dict ``{port name: value}`` of ``vectors`` to a combinational ``dut`` and call
    ``check(inputs, ctx)`` with the settled outputs."""
    async def bench(ctx):
        for inputs in vectors:
            for name, value in inputs.items():
                ctx.set(getattr(dut, name), value)
            check(inputs, ctx)
    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
