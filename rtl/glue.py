"""Stream glue between the engines of a network (docs/arithmetic.md §12).

Every stream carries the events of one time step in any order, then one end token
(:func:`~.events.event_layout`; :func:`~.events.connect_events` wires one stream into another
of a different layout). The units here keep that contract:

* :class:`EventFork` — broadcast one stream to several consumers (each takes every token).
* :class:`SpikePool2x2` — 2×2 max pooling of binary spikes (OR over the window), one cycle per
  event, ``H/2·W/2`` cycles at the end of a step (and after reset) to clear its bitmap.
* :class:`ResidualAdd` — ``skip + branch`` as multi-bit integer events, one cycle per input
  event and one per distinct position at the end of the step (a dense sweep only after reset).
"""

from __future__ import annotations

from amaranth import Signal, unsigned
from amaranth.hdl import Module
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from .events import event_layout, index_shape

__all__ = ["EventFork", "SpikePool2x2", "ResidualAdd"]


class EventFork(wiring.Component):
    """Broadcast: every token of ``i_events`` goes to each of ``o_events[0 … n-1]``.

    Eager fork: an output that already took the current token waits for the others, so a slow
    consumer only stalls the input, never reorders it. ``valid`` never depends on ``ready``.
    """

    def __init__(self, layout, n: int):
        if n < 1:
            raise ValueError(f"An event fork needs at least one output, not {n}")
        self.n = n
        super().__init__({"i_events": In(stream.Signature(layout)),
                          "o_events": Out(stream.Signature(layout)).array(n)})

    def elaborate(self, platform):
        m = Module()
        taken = Signal(self.n)                         # outputs that already took this token
        done = Signal(self.n)
        for i, out in enumerate(self.o_events):
            m.d.comb += [out.payload.eq(self.i_events.payload),
                         out.valid.eq(self.i_events.valid & ~taken[i]),
                         done[i].eq(taken[i] | out.ready)]
        m.d.comb += self.i_events.ready.eq(done.all())
        with m.If(self.i_events.valid):
            with m.If(done.all()):
                m.d.sync += taken.eq(0)
            with m.Else():
                for i, out in enumerate(self.o_events):
                    with m.If(out.ready):
                        m.d.sync += taken[i].eq(1)
        return m


class SpikePool2x2(wiring.Component):
    """2×2 max pooling (stride 2) of binary spikes: an output pixel fires when any of its four
    input pixels fired in the step (docs/arithmetic.md §12).

    A bitmap of output pixels remembers what was already sent this step, so each output event
    goes out once. At the end token the bitmap is cleared (one cycle per output pixel), then
    the end token passes on. After reset (and at power-up) the bitmap is cleared the same way
    before ``i_spikes.ready`` rises (:attr:`cycles_after_reset`): a reset mid-step leaves bits set.
    """

    def __init__(self, *, height: int, width: int, channels: int):
        if height % 2 or width % 2:
            raise ValueError(f"2×2 pooling needs an even grid, not {height}×{width}")
        self.height, self.width, self.channels = height, width, channels
        self.out_height, self.out_width = height // 2, width // 2
        super().__init__({
            "i_spikes": In(stream.Signature(event_layout(height, width, channels, unsigned(1)))),
            "o_spikes": Out(stream.Signature(event_layout(height // 2, width // 2, channels, unsigned(1)))),
        })

    @property
    def cycles_after_reset(self) -> int:
        """Cycles after ``rst`` falls before ``i_spikes.ready`` can rise (the bitmap sweep)."""
        return self.out_height * self.out_width

    def elaborate(self, platform):
        m = Module()
        pixels = self.cycles_after_reset
        m.submodules.seen = seen = memory.Memory(shape=unsigned(self.channels), depth=pixels, init=[])
        rd, wr = seen.read_port(domain="comb"), seen.write_port()
        i, o = self.i_spikes, self.o_spikes
        y2, x2 = i.payload.y >> 1, i.payload.x >> 1
        pixel = Signal(index_shape(pixels))
        clear_addr = Signal(index_shape(pixels))
        ending = Signal()                                   # CLEAR after an end token (not after reset)
        already = Signal()
        m.d.comb += [pixel.eq(y2 * self.out_width + x2), rd.addr.eq(pixel), already.eq(rd.data.bit_select(i.payload.c, 1)),
                     o.payload.y.eq(y2), o.payload.x.eq(x2), o.payload.c.eq(i.payload.c),
                     o.payload.value.eq(i.payload.value)]        # binary events carry value 1
        with m.FSM(name="pool", init="CLEAR"):
            with m.State("RUN"):
                with m.If(i.valid & i.payload.end):
                    m.d.sync += [clear_addr.eq(0), ending.eq(1)]
                    m.next = "CLEAR"
                with m.Elif(already):
                    m.d.comb += i.ready.eq(1)                   # a duplicate in its window: drop
                with m.Else():
                    m.d.comb += [o.valid.eq(i.valid), i.ready.eq(o.ready),
                                 wr.addr.eq(pixel), wr.data.eq(rd.data | (1 << i.payload.c)),
                                 wr.en.eq(i.valid & o.ready)]
            with m.State("CLEAR"):
                m.d.comb += [wr.addr.eq(clear_addr), wr.data.eq(0), wr.en.eq(1)]
                m.d.sync += clear_addr.eq(clear_addr + 1)
                with m.If(clear_addr == pixels - 1):
                    m.d.sync += ending.eq(0)
                    with m.If(ending):
                        m.next = "END"
                    with m.Else():
                        m.next = "RUN"
            with m.State("END"):
                m.d.comb += [o.valid.eq(1), o.payload.end.eq(1), i.ready.eq(o.ready)]
                with m.If(o.ready):
                    m.next = "RUN"
        return m


class ResidualAdd(wiring.Component):
    """Residual connection ``skip + branch`` per position, out as multi-bit integer events.

    Both inputs are accepted independently (never one waiting on the other: the skip path of a
    block arrives long before its branch). Each input event costs one cycle (read-add-write of
    the position's partial sum); the first touch of a position appends it to a list. After both
    end tokens the list is replayed: one cycle per distinct position, an event when its sum is
    non-zero, the position cleared; then the end token. After reset (and at power-up) every
    partial sum is cleared, one position per cycle, before the inputs' ``ready`` rises
    (:attr:`cycles_after_reset`): a reset mid-step leaves sums and "touched" bits behind.
    """

    def __init__(self, *, height: int, width: int, channels: int, skip_shape, branch_shape, out_shape):
        self.height, self.width, self.channels = height, width, channels
        self.out_shape = out_shape
        super().__init__({
            "i_skip": In(stream.Signature(event_layout(height, width, channels, skip_shape))),
            "i_branch": In(stream.Signature(event_layout(height, width, channels, branch_shape))),
            "o_sum": Out(stream.Signature(event_layout(height, width, channels, out_shape))),
        })

    @property
    def cycles_after_reset(self) -> int:
        """Cycles after ``rst`` falls before the inputs' ``ready`` can rise (the sum sweep)."""
        return self.height * self.width * self.channels

    def elaborate(self, platform):
        m = Module()
        depth = self.cycles_after_reset
        position = data.StructLayout({"y": index_shape(self.height), "x": index_shape(self.width),
                                      "c": index_shape(self.channels)})
        m.submodules.sums = sums = memory.Memory(
            shape=data.StructLayout({"touched": 1, "value": self.out_shape}), depth=depth, init=[])
        m.submodules.touched = touched = memory.Memory(shape=position, depth=depth, init=[])
        sum_rd, sum_wr = sums.read_port(domain="comb"), sums.write_port()
        list_rd, list_wr = touched.read_port(domain="comb"), touched.write_port()
        count = Signal(range(depth + 1))
        index = Signal(range(depth + 1))
        skip_done, branch_done = Signal(), Signal()
        with m.FSM(name="residual"):
            with m.State("CLEAR"):
                m.d.comb += [sum_wr.addr.eq(index), sum_wr.data.eq(0), sum_wr.en.eq(1)]
                m.d.sync += index.eq(index + 1)
                with m.If(index == depth - 1):
                    m.next = "COLLECT"
            with m.State("COLLECT"):
                self._collect(m, sum_rd, sum_wr, list_wr, count, skip_done, branch_done)
                with m.If(skip_done & branch_done):
                    m.d.sync += [index.eq(0), skip_done.eq(0), branch_done.eq(0)]
                    m.next = "EMIT"
            with m.State("EMIT"):
                self._emit(m, sum_rd, sum_wr, list_rd, count, index)
            with m.State("END"):
                m.d.comb += [self.o_sum.valid.eq(1), self.o_sum.payload.end.eq(1)]
                with m.If(self.o_sum.ready):
                    m.d.sync += count.eq(0)
                    m.next = "COLLECT"
        return m

    def _address(self, p):
        return (p.y * self.width + p.x) * self.channels + p.c

    def _collect(self, m, sum_rd, sum_wr, list_wr, count, skip_done, branch_done):
        """One input token per cycle, the skip input first when both are valid."""
        skip, branch = self.i_skip, self.i_branch
        take_skip = skip.valid & ~skip_done
        take_branch = branch.valid & ~branch_done & ~take_skip
        p = Signal(data.StructLayout({"y": index_shape(self.height), "x": index_shape(self.width),
                                      "c": index_shape(self.channels), "end": 1}))
        addend = Signal(self.out_shape)
        with m.If(take_skip):
            m.d.comb += [skip.ready.eq(1), p.y.eq(skip.payload.y), p.x.eq(skip.payload.x), p.c.eq(skip.payload.c),
                         p.end.eq(skip.payload.end), addend.eq(skip.payload.value)]
        with m.Elif(take_branch):
            m.d.comb += [branch.ready.eq(1), p.y.eq(branch.payload.y), p.x.eq(branch.payload.x),
                         p.c.eq(branch.payload.c), p.end.eq(branch.payload.end), addend.eq(branch.payload.value)]
        with m.If(take_skip | take_branch):
            with m.If(p.end):
                with m.If(take_skip):
                    m.d.sync += skip_done.eq(1)
                with m.Else():
                    m.d.sync += branch_done.eq(1)
            with m.Else():
                m.d.comb += [sum_rd.addr.eq(self._address(p)), sum_wr.addr.eq(self._address(p)), sum_wr.en.eq(1),
                             sum_wr.data.touched.eq(1), sum_wr.data.value.eq(sum_rd.data.value + addend)]
                with m.If(~sum_rd.data.touched):
                    m.d.comb += [list_wr.addr.eq(count), list_wr.en.eq(1), list_wr.data.y.eq(p.y),
                                 list_wr.data.x.eq(p.x), list_wr.data.c.eq(p.c)]
                    m.d.sync += count.eq(count + 1)

    def _emit(self, m, sum_rd, sum_wr, list_rd, count, index):
        """Replay the touched positions: emit non-zero sums, clear every entry."""
        o = self.o_sum
        with m.If(index == count):
            m.next = "END"
        with m.Else():
            pos = list_rd.data
            m.d.comb += [list_rd.addr.eq(index), sum_rd.addr.eq(self._address(pos)), sum_wr.addr.eq(self._address(pos)),
                         sum_wr.data.eq(0),
                         o.payload.y.eq(pos.y), o.payload.x.eq(pos.x), o.payload.c.eq(pos.c),
                         o.payload.value.eq(sum_rd.data.value)]
            with m.If(sum_rd.data.value == 0):
                m.d.comb += sum_wr.en.eq(1)
                m.d.sync += index.eq(index + 1)
            with m.Else():
                m.d.comb += [o.valid.eq(1), sum_wr.en.eq(o.ready)]
                with m.If(o.ready):
                    m.d.sync += index.eq(index + 1)
