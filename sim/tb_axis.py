"""cocotb testbench of the AXI4-Stream wrapper (rtl/axis.py) with cocotbext-axi's
AxiStreamSource and AxiStreamSink, against the golden network.

Environment: ``SPIKEHQ_NETWORK`` (searched.json), ``SPIKEHQ_SAMPLES`` (digits test-set
indices), ``SPIKEHQ_STALL_SEED`` (pauses on both streams, probability ``SPIKEHQ_STALL``).

The samples go in back to back, one AXI4-Stream frame each (events and end beats, TLAST on the
last end beat); every result frame must be one beat with TLAST and hold the golden scores and
class, and ``o_frame_error`` must stay low. Then one sample is sent split into two frames (an
early TLAST): its result is still right and ``o_frame_error`` rises.
"""

from __future__ import annotations

import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge
from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource

from ..golden.network import load_network
from ..rtl.axis import AxisNetwork
from ..search.data import load_dataset
from .cocotb_helpers import write_values

PERIOD_NS = 10


def pauses(rng: random.Random, probability: float):
    while True:
        yield rng.random() < probability


def sample_beats(wrapper: AxisNetwork, frames) -> list[bytes]:
    """One sample's beats (TDATA bytes): per step its events (y, x, c), then an end beat."""
    width = len(wrapper.s_axis_tdata) // 8
    beats = []
    for frame in frames:
        tokens = [{"y": y, "x": x, "c": c, "end": 0} for c, y, x in frame.nonzero().tolist()]
        for token in tokens + [{"y": 0, "x": 0, "c": 0, "end": 1}]:
            beats.append(wrapper.beat.const(token).as_value().value.to_bytes(width, "little"))
    return beats


@cocotb.test()
async def axis_matches_golden(dut):
    net = load_network(os.environ["SPIKEHQ_NETWORK"])
    indices = [int(i) for i in os.environ["SPIKEHQ_SAMPLES"].split(",")]
    seed, stall = int(os.environ["SPIKEHQ_STALL_SEED"]), float(os.environ.get("SPIKEHQ_STALL", "0.2"))
    wrapper = AxisNetwork(config=net.config, weights=net.weights)     # for its layouts
    _, test = load_dataset("digits", time_steps=net.config.time_steps)
    frames = net.input_frames(test.frames[indices])
    scores, _ = net.run(frames)
    dut._log.info(f"{len(indices)} samples, stall seed {seed}, stall probability {stall}")
    Clock(dut.clk, PERIOD_NS, unit="ns").start()
    source = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.clk, dut.rst)
    sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis"), dut.clk, dut.rst)
    source.set_pause_generator(pauses(random.Random(seed), stall))
    sink.set_pause_generator(pauses(random.Random(seed + 1), stall))
    dut.rst.value = 1
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0
    await RisingEdge(dut.clk)

    async def check(i: int, what: str) -> None:
        frame = await sink.recv()
        got = wrapper.result.from_bits(int.from_bytes(bytes(frame.tdata), "little"))
        want = scores[i].tolist()
        got_scores = [int(got.scores[c]) for c in range(len(want))]
        assert len(frame.tdata) == len(dut.m_axis_tdata) // 8, f"{what}: a result frame is one beat"
        assert got_scores == want and int(got.label) == int(scores[i].argmax()), \
            f"{what}, sample {indices[i]}: scores {got_scores} vs {want}, class {int(got.label)} (stall seed {seed})"

    for sample in frames:
        await source.send(AxiStreamFrame(b"".join(sample_beats(wrapper, sample))))
    for i in range(len(indices)):
        await check(i, "back to back")
    assert int(dut.o_frame_error.value) == 0, "o_frame_error rose on well-framed samples"
    beats = sample_beats(wrapper, frames[0])
    first_end = next(k for k, b in enumerate(beats) if wrapper.beat.from_bits(int.from_bytes(b, "little")).end)
    await source.send(AxiStreamFrame(b"".join(beats[:first_end + 1])))   # TLAST on the first step's end
    await source.send(AxiStreamFrame(b"".join(beats[first_end + 1:])))
    await check(0, "split frame")
    assert int(dut.o_frame_error.value) == 1, "o_frame_error did not rise on an early TLAST"
    write_values({"labels": len(indices) + 1, "scores": (len(indices) + 1) * scores.shape[1]},
                 samples=indices, stall_seed=seed)
