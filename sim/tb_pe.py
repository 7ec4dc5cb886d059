"""cocotb testbench of one processing element, run by ``sim/runner.py`` under Verilator or Icarus.

The case comes from the environment (``SPIKEHQ_CASE``: :class:`CaseParams` as JSON,
``SPIKEHQ_STALL_SEED``, ``SPIKEHQ_STALL``); the vectors and the golden traces come from
``sim/vectors.py``, exactly as in the amaranth.sim tests. The scoreboard compares every
output event of every step (order, pixel, channel, value), every end-of-step token, and every
stored membrane after every step, read through the membrane probe. Producer and consumer
stall at random (seeded); the producer sends the next step's events while the PE is still
emitting, so backpressure on both streams overlaps. From the end of reset, no output may be
X or Z at any time step (4-state simulators). The number of compared values goes to
``values.json`` (``SPIKEHQ_VALUES``).
"""

from __future__ import annotations

import json
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import Event, ReadOnly, RisingEdge

from ..rtl.pe import SpikingPE, weight_rows
from .cocotb_helpers import output_ports, reset, send_token, watch_outputs, write_values
from .vectors import CaseParams, events_of_step, expected_events, make_case


def _case_from_env():
    params = CaseParams(**json.loads(os.environ["SPIKEHQ_CASE"]))
    return make_case(params), int(os.environ["SPIKEHQ_STALL_SEED"]), float(os.environ.get("SPIKEHQ_STALL", "0.3"))


@cocotb.test()
async def pe_matches_golden(dut):
    case, stall_seed, stall = _case_from_env()
    layer = case.layer
    pe = SpikingPE(layer=layer, weights=case.weights if case.params.with_weights else None, probe=True)
    dut._log.info(f"case {case.params.name}: stall seed {stall_seed}, stall probability {stall}")
    rng_in, rng_out = random.Random(stall_seed), random.Random(stall_seed + 1)
    clk = dut.clk
    Clock(clk, 10, unit="ns").start()

    idle = {"i_spikes__valid": 0, "o_spikes__ready": 0, "membrane_probe__addr": 0}
    if not case.params.with_weights:
        idle["weight_write__en"] = 0
    await reset(dut, idle)
    watch = watch_outputs(dut, output_ports(pe))

    if not case.params.with_weights:  # load the weight memory through the write port
        dut.weight_write__en.value = 1
        word = pe.weight_word
        for addr, row in enumerate(weight_rows(layer, case.weights)):
            dut.weight_write__addr.value = addr
            dut.weight_write__data.value = word.const(row).as_value().value
            await RisingEdge(clk)
        dut.weight_write__en.value = 0

    def pack(**fields) -> int:
        return pe.in_layout.const(fields).as_value().value

    step_probed = [Event() for _ in range(len(case.samples) * layer.time_steps)]

    async def producer():
        step = 0
        for sample in case.samples:
            for t in range(layer.time_steps):
                payloads = [pack(y=y, x=x, c=c, value=v, end=0) for y, x, c, v in events_of_step(sample[t], rng_in)]
                payloads.append(pack(y=0, x=0, c=0, value=0, end=1))
                if step > 0:  # the step's events change the accumulators: the scoreboard reads them first
                    await step_probed[step - 1].wait()
                    await RisingEdge(clk)  # leave the read-only phase the event was set in
                for payload in payloads:
                    await send_token(dut, "i_spikes", payload, rng=rng_in, stall=stall)
                step += 1

    async def receive_step() -> list[tuple[int, int, int, int]]:
        events = []
        while True:
            await RisingEdge(clk)
            ready = rng_out.random() >= stall
            dut.o_spikes__ready.value = int(ready)
            await ReadOnly()
            if ready and dut.o_spikes__valid.value:
                out = pe.out_layout.from_bits(dut.o_spikes__payload.value.to_unsigned())
                if out.end:
                    await RisingEdge(clk)
                    dut.o_spikes__ready.value = 0
                    return events
                events.append((out.y, out.x, out.c, out.value))

    async def read_membranes() -> list[int]:
        values = []
        for addr in range(pe.neuron_depth + 1):
            await RisingEdge(clk)
            if addr < pe.neuron_depth:
                dut.membrane_probe__addr.value = addr
            await ReadOnly()
            if addr > 0:
                data = dut.membrane_probe__data.value   # a 1-bit word (one lane, binary membrane) is a Logic
                word = pe.membrane_word.from_bits(int(data) if pe.membrane_word.size == 1
                                                  else data.to_unsigned())
                values.extend(int(word[l]) for l in range(layer.lanes))
        return values

    cocotb.start_soon(producer())
    mismatches, step = 0, 0
    counts = {"events": 0, "end_tokens": 0, "membranes": 0}
    for s, trace in enumerate(case.traces):
        for t in range(layer.time_steps):
            got = await receive_step()
            expected = expected_events(trace.spikes[t])
            membranes = await read_membranes()
            step_probed[step].set()
            step += 1
            expected_membranes = trace.bases[t].reshape(-1).tolist()
            counts["events"] += len(expected)
            counts["end_tokens"] += 1
            counts["membranes"] += len(expected_membranes)
            if got != expected:
                mismatches += 1
                dut._log.error(f"sample {s} step {t}: spikes {got} != golden {expected}")
            if membranes != expected_membranes:
                mismatches += 1
                dut._log.error(f"sample {s} step {t}: membranes {membranes} != golden {expected_membranes}")
    checked = write_values(counts, case=case.params.name, stall_seed=stall_seed, xz_checked_time_steps=watch.checks)
    dut._log.info(f"{case.params.name}: {checked} values checked ({counts}), {mismatches} mismatching steps, "
                  f"no X/Z on any output after reset ({watch.checks} time steps with output changes checked)")
    assert mismatches == 0, f"{mismatches} steps differ from the golden model (stall seed {stall_seed})"
