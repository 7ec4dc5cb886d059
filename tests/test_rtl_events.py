"""Event-stream building blocks (rtl/events.py) in amaranth.sim: index shapes, nested counters,
stream conversion, and the lane-group spike emitter with seeded random ready stalls."""

from __future__ import annotations

import random

import pytest
from amaranth import Shape, Signal, signed, unsigned
from amaranth.hdl import Module
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from spikehq.rtl.events import SpikeEmitter, advance, connect_events, counter, event_layout, index_shape
from spikehq.sim.amaranth_streams import stream_get


@pytest.mark.parametrize("n,width", [(1, 1), (2, 1), (3, 2), (4, 2), (5, 3), (256, 8), (257, 9)])
def test_index_shape_holds_every_index(n, width):
    assert index_shape(n) == unsigned(width)
    assert counter(n).shape() == unsigned(width)


def test_event_layout_fields():
    layout = event_layout(5, 1, 12, signed(3))
    assert {name: Shape.cast(field.shape) for name, field in layout} == {
        "y": unsigned(3), "x": unsigned(1), "c": unsigned(4), "value": signed(3), "end": unsigned(1)}


class _Counters(wiring.Component):
    def __init__(self):
        super().__init__({"count": Out(unsigned(8))})

    def elaborate(self, platform):
        m = Module()
        inner, middle, outer = counter(3), counter(2), counter(4)
        advance(m, [(inner, 3), (middle, 2), (outer, 4)])
        m.d.comb += self.count.eq((outer * 2 + middle) * 3 + inner)
        return m


def test_advance_steps_nested_counters_innermost_first():
    dut, seen = _Counters(), []

    async def bench(ctx):
        for _ in range(30):
            seen.append(ctx.get(dut.count))
            await ctx.tick()
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert seen == [i % 24 for i in range(30)]


class _Converter(wiring.Component):
    def __init__(self, src_layout, dst_layout, grid_width):
        self.grid_width = grid_width
        super().__init__({"i": In(stream.Signature(src_layout)), "o": Out(stream.Signature(dst_layout))})

    def elaborate(self, platform):
        m = Module()
        connect_events(m, self.i, self.o, grid_width=self.grid_width)
        return m


@pytest.mark.parametrize("grid_width", [None, 4])
def test_connect_events_converts_the_payload(grid_width):
    src = event_layout(3, 4, 2, unsigned(1))
    dst = event_layout(3, 4, 2, signed(3)) if grid_width is None else event_layout(12, 1, 2, signed(3))
    dut = _Converter(src, dst, grid_width)

    async def bench(ctx):
        for y, x, c, end, ready in [(2, 3, 1, 0, 1), (1, 2, 0, 1, 0), (0, 0, 1, 0, 1)]:
            ctx.set(dut.i.payload, {"y": y, "x": x, "c": c, "value": 1, "end": end})
            ctx.set(dut.i.valid, 1)
            ctx.set(dut.o.ready, ready)
            p = ctx.get(dut.o.payload)
            want_yx = (y, x) if grid_width is None else (y * grid_width + x, 0)
            assert (p.y, p.x, p.c, p.value, p.end) == (*want_yx, c, 1, end)
            assert (ctx.get(dut.o.valid), ctx.get(dut.i.ready)) == (1, ready)
    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()


class _EmitterHarness(wiring.Component):
    """Load one lane group's spikes (``load``), emit them, then the end token."""

    def __init__(self, lanes: int, spike_shape, groups: int):
        self.lanes = lanes
        super().__init__({
            "spikes": In(data.ArrayLayout(spike_shape, lanes)), "group": In(index_shape(groups)), "load": In(1),
            "o_spikes": Out(stream.Signature(event_layout(1, 1, lanes * groups, spike_shape))),
        })

    def elaborate(self, platform):
        m = Module()
        out = SpikeEmitter(self.o_spikes, lanes=self.lanes)
        group = Signal.like(self.group)
        out.drive(m, y=0, x=0, base=group * self.lanes)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.load):
                    m.d.sync += group.eq(self.group)
                    with m.If(out.latch(m, [self.spikes[l] for l in range(self.lanes)])):
                        m.next = "EMIT"
                    with m.Else():
                        m.next = "END"
            with m.State("EMIT"):
                with out.emit(m):
                    m.next = "END"
            with m.State("END"):
                with out.end(m):
                    m.next = "IDLE"
        return m


@pytest.mark.parametrize("lanes,spike_shape", [(4, unsigned(1)), (3, signed(2)), (1, unsigned(1))])
def test_spike_emitter_sends_firing_lanes_lowest_first(lanes, spike_shape, stall_seed):
    groups = 3
    dut = _EmitterHarness(lanes, spike_shape, groups)
    rng = random.Random(stall_seed)
    values = [-1, 0, 1] if spike_shape.signed else [0, 1]
    vectors = [[0] * lanes, [values[-1]] * lanes] + [[rng.choice(values) for _ in range(lanes)] for _ in range(30)]
    got = []

    async def bench(ctx):
        for n, spikes in enumerate(vectors):
            ctx.set(dut.spikes, spikes)
            ctx.set(dut.group, n % groups)
            ctx.set(dut.load, 1)
            await ctx.tick()
            ctx.set(dut.load, 0)
            events = []
            while True:
                payload, _ = await stream_get(ctx, dut.o_spikes, rng=rng, stall=0.3)
                if payload.end:
                    break
                events.append((payload.y, payload.x, payload.c, payload.value))
            got.append(events)
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    want = [[(0, 0, n % groups * lanes + l, s) for l, s in enumerate(spikes) if s]
            for n, spikes in enumerate(vectors)]
    assert sum(map(len, want)) > 0 and got == want


def test_spike_emitter_constructor_checks():
    port = stream.Signature(event_layout(1, 1, 4, unsigned(1))).create()
    with pytest.raises(ValueError, match=r"^Lanes must be at least 1, not 0$"):
        SpikeEmitter(port, lanes=0)
