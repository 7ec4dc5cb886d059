"""cocotb testbench: ``rst`` in the middle of a sample on the whole-network core (Verilator),
run by :func:`sim.runner.run_network` (``test_module="spikehq.sim.tb_reset"``) (docs/arithmetic.md §13).

Environment: ``SPIKEHQ_NETWORK`` (searched.json), ``SPIKEHQ_SAMPLES`` (comma-separated digits
test-set indices: the first is sent whole, the second is interrupted by the reset, the rest are
sent after it), ``SPIKEHQ_STALL_SEED`` (seeds the stalls and the reset point),
``SPIKEHQ_STALL``, ``SPIKEHQ_LANES``.

1. The first sample, whole: its result and its latency ``L`` (cycles, first token to result).
2. The second sample is sent and ``rst`` rises after a random number of cycles in ``[1, L)``
   (the sample is then inside a step of some engines), held 1–3 cycles; the sample is dropped.
3. ``i_events.ready`` must stay low for the first engine's sweep (the top's ``cycles_after_reset``),
   then the remaining samples are sent back to back; every class and score must equal the
   golden model's, and no result of the dropped sample may appear.
"""

from __future__ import annotations

import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge
from cocotb.utils import get_sim_time

from ..golden.network import load_network
from ..rtl.lanes import apply_lanes
from ..rtl.network import SpikingNetwork
from ..search.data import load_dataset
from .cocotb_helpers import reset, send_frames, take_result

PERIOD_NS = 10
TIMEOUT_CYCLES = 20_000_000


@cocotb.test()
async def reset_mid_sample(dut):
    config = os.environ["SPIKEHQ_NETWORK"]
    indices = [int(i) for i in os.environ["SPIKEHQ_SAMPLES"].split(",")]
    seed, stall = int(os.environ["SPIKEHQ_STALL_SEED"]), float(os.environ.get("SPIKEHQ_STALL", "0.2"))
    assert len(indices) >= 3, "need a whole sample, an interrupted one and at least one after the reset"
    net = load_network(config)
    top = SpikingNetwork(config=apply_lanes(net.config, os.environ.get("SPIKEHQ_LANES", "balanced")),
                         weights=net.weights, trace=True)
    sweep = top.cycles_after_reset
    T = net.config.time_steps
    _, test = load_dataset("digits", time_steps=T)
    rng = random.Random(seed)
    dut._log.info(f"samples {indices}, seed {seed}, stall probability {stall}")
    clk = dut.clk
    Clock(clk, PERIOD_NS, unit="ns").start()
    idle = {"i_events__valid": 0, "o_result__ready": 0}
    await reset(dut, idle)
    in_layout, result_layout = top.i_events.payload.shape(), top.o_result.payload.shape()

    async def send_sample(index):
        await send_frames(dut, "i_events", in_layout, net.input_frames(test.frames[index]), rng=rng, stall=stall)

    async def receive():
        result, _ = await take_result(dut, result_layout, timeout_ns=TIMEOUT_CYCLES * PERIOD_NS, rng=rng, stall=stall)
        return [int(s) for s in result.scores], int(result.label)

    def golden(index):
        scores = net.run(test.frames[index:index + 1])[0][0]
        return scores.tolist(), int(scores.argmax())

    mismatches = []

    def check(index, got, when):
        want = golden(index)
        if got != want:
            mismatches.append(index)
            dut._log.error(f"{when}, sample {index}: class {got[1]} vs {want[1]}, scores {got[0]} vs {want[0]}")
        else:
            dut._log.info(f"{when}, sample {index}: class {got[1]} matches")

    # 1. a whole sample: the reference latency
    start = get_sim_time("ns")
    sender = cocotb.start_soon(send_sample(indices[0]))
    check(indices[0], await receive(), "before the reset")
    await sender
    latency = int((get_sim_time("ns") - start) // PERIOD_NS)

    # 2. the next sample, interrupted by rst at a random cycle
    at, hold = rng.randrange(1, latency), rng.randint(1, 3)
    sender = cocotb.start_soon(send_sample(indices[1]))
    for _ in range(at):
        await RisingEdge(clk)
    sender.cancel()
    dut._log.info(f"rst at cycle {at} of sample {indices[1]} (whole-sample latency {latency}), held {hold} cycles")
    await reset(dut, idle, cycles=hold)

    # 3. ready stays low during the first engine's sweep, then fresh samples match
    for cycle in range(sweep + 1):
        await ReadOnly()
        if bool(dut.i_events__ready.value) != (cycle == sweep):
            mismatches.append(f"i_events.ready is {int(dut.i_events__ready.value)} {cycle} cycles after rst "
                              f"(low for {sweep} cycles expected)")
            dut._log.error(mismatches[-1])
            break
        await RisingEdge(clk)

    async def send_rest():
        for index in indices[2:]:
            await send_sample(index)

    sender = cocotb.start_soon(send_rest())
    for index in indices[2:]:
        check(index, await receive(), "after the reset")
    await sender
    assert not mismatches, f"differences from the golden model after a reset: {mismatches} (seed {seed})"
