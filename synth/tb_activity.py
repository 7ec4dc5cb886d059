"""cocotb testbench for switching activity: drives one PE with seeded input events, no stalls.

Run by :func:`spikehq.synth.activity.run_activity` under Verilator with tracing on; the
toggle counts come from the VCD afterwards. The case comes from ``SPIKEHQ_ACTIVITY`` (JSON:
config path, layer name, seed, input density, samples). Every input position fires with
probability ``density`` at every step; multi-bit activations take a uniformly drawn non-zero
value. The consumer is always ready. The testbench also checks that the PE finishes every
step (one end token out per end token in), so a hung PE cannot produce a quiet, cheap VCD.
"""

from __future__ import annotations

import json
import os

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

from ..golden.codes import activation_range
from ..golden.config import load_config, load_weights
from ..rtl.pe import SpikingPE
from ..sim.cocotb_helpers import reset


@cocotb.test()
async def activity(dut):
    spec = json.loads(os.environ["SPIKEHQ_ACTIVITY"])
    layer = load_config(spec["config"]).layer(spec["layer"])
    pe = SpikingPE(layer=layer, weights=load_weights(layer))
    rng = np.random.default_rng(spec["seed"])
    lo, hi = activation_range(layer.activation_bits)
    values = [v for v in range(lo, hi + 1) if v != 0]

    clk = dut.clk
    Clock(clk, 10, unit="ns").start()
    await reset(dut, {"i_spikes__valid": 0, "o_spikes__ready": 1})

    def pack(**fields) -> int:
        return pe.in_layout.const(fields).as_value().value

    ends_out = 0

    async def consumer():
        nonlocal ends_out
        while True:
            await RisingEdge(clk)
            await ReadOnly()
            if dut.o_spikes__valid.value and pe.out_layout.from_bits(dut.o_spikes__payload.value.to_unsigned()).end:
                ends_out += 1

    cocotb.start_soon(consumer())
    steps, events = 0, 0
    for _ in range(spec["samples"]):
        for _ in range(layer.time_steps):
            mask = rng.random((layer.height, layer.width, layer.in_channels)) < spec["density"]
            payloads = [pack(y=int(y), x=int(x), c=int(c), value=int(rng.choice(values)), end=0)
                        for y, x, c in np.argwhere(mask)]
            payloads.append(pack(y=0, x=0, c=0, value=0, end=1))
            events += len(payloads) - 1
            for payload in payloads:
                dut.i_spikes__payload.value = payload
                dut.i_spikes__valid.value = 1
                while True:
                    await ReadOnly()
                    accepted = bool(dut.i_spikes__ready.value)
                    await RisingEdge(clk)
                    if accepted:
                        break
                dut.i_spikes__valid.value = 0
            steps += 1
    for _ in range(100000):
        await RisingEdge(clk)
        if ends_out == steps:
            break
    assert ends_out == steps, f"PE finished {ends_out} of {steps} steps"
    dut._log.info(f"SPIKEHQ_ACTIVITY_RESULT {json.dumps({'steps': steps, 'events': events})}")
