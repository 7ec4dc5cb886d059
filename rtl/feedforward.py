"""Engines of the feed-forward network top (docs/arithmetic.md §14) besides the PEs, forks and
residual adds: sum pooling, flatten, and the spike-count readout.

Every stream carries one step's events in any order, then one end token (§12), so each unit
here is order-independent: sums, a coordinate map, counts.
"""

from __future__ import annotations

from amaranth import Mux, Shape, Signal, signed, unsigned
from amaranth.hdl import Module
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..golden.config import LayerConfig, signed_width
from .events import event_layout, index_shape

__all__ = ["SumPool", "flatten_events", "range_shape", "count_result_layout", "SpikeCountReadout"]


def range_shape(lo: int, hi: int) -> Shape:
    """The event value shape of a stream carrying integers in [lo, hi]: one unsigned bit for
    spikes (0/1), else the narrowest two's complement (as §2's activations)."""
    if lo >= 0 and hi <= 1:
        return unsigned(1)
    return signed(max(signed_width(max(hi, -lo - 1)) if lo < 0 else (hi.bit_length() + 1), 2))


def flatten_events(m, src, *, height: int, width: int, channels: int):
    """A stream of ``src``'s events with (y, x, c) → (0, 0, (c·H + y)·W + x): torch's flatten
    order of a [C, H, W] tensor. Combinational; returns the new stream."""
    value = src.payload.shape().members["value"]
    dst = stream.Signature(event_layout(1, 1, channels * height * width, value)).create()
    sp = src.payload
    m.d.comb += [dst.valid.eq(src.valid), src.ready.eq(dst.ready), dst.payload.end.eq(sp.end),
                 dst.payload.value.eq(sp.value), dst.payload.y.eq(0), dst.payload.x.eq(0),
                 dst.payload.c.eq((sp.c * height + sp.y) * width + sp.x)]
    return dst


class SumPool(wiring.Component):
    """``kernel``×``kernel`` sum pooling, stride ``kernel`` (§14): each output position sums its
    window's input values in the step.

    One cycle per input event (read-add-write of the position's partial sum; the first touch
    appends the position to a list); at the end token the list is replayed, one cycle per
    touched position (an event when the sum is non-zero, the sum cleared), then the end token.
    After reset (and at power-up) every sum is cleared, one per cycle, before ``i_events.ready``
    rises (:attr:`cycles_after_reset`)."""

    def __init__(self, *, height: int, width: int, channels: int, kernel: int, in_shape, out_shape):
        if height % kernel or width % kernel:
            raise ValueError(f"Sum pooling by {kernel} needs a grid divisible by it, not {height}×{width}")
        self.kernel, self.channels = kernel, channels
        self.out_height, self.out_width = height // kernel, width // kernel
        self.out_shape = out_shape
        super().__init__({
            "i_events": In(stream.Signature(event_layout(height, width, channels, in_shape))),
            "o_events": Out(stream.Signature(event_layout(self.out_height, self.out_width, channels, out_shape))),
        })

    @property
    def cycles_after_reset(self) -> int:
        return self.out_height * self.out_width * self.channels

    def elaborate(self, platform):
        m = Module()
        depth = self.cycles_after_reset
        position = data.StructLayout({"y": index_shape(self.out_height), "x": index_shape(self.out_width),
                                      "c": index_shape(self.channels)})
        m.submodules.sums = sums = memory.Memory(
            shape=data.StructLayout({"touched": 1, "value": self.out_shape}), depth=depth, init=[])
        m.submodules.touched = touched = memory.Memory(shape=position, depth=depth, init=[])
        sum_rd, sum_wr = sums.read_port(domain="comb"), sums.write_port()
        list_rd, list_wr = touched.read_port(domain="comb"), touched.write_port()
        count, index = Signal(range(depth + 1)), Signal(range(depth + 1))
        i, o = self.i_events, self.o_events
        address = lambda p: (p.y * self.out_width + p.x) * self.channels + p.c
        pooled = Signal(position)
        m.d.comb += [pooled.y.eq(i.payload.y // self.kernel), pooled.x.eq(i.payload.x // self.kernel),
                     pooled.c.eq(i.payload.c)]
        with m.FSM(name="sumpool"):
            with m.State("CLEAR"):
                m.d.comb += [sum_wr.addr.eq(index), sum_wr.data.eq(0), sum_wr.en.eq(1)]
                m.d.sync += index.eq(index + 1)
                with m.If(index == depth - 1):
                    m.d.sync += index.eq(0)
                    m.next = "COLLECT"
            with m.State("COLLECT"):
                m.d.comb += i.ready.eq(1)
                with m.If(i.valid & i.payload.end):
                    m.d.sync += index.eq(0)
                    m.next = "EMIT"
                with m.Elif(i.valid):
                    m.d.comb += [sum_rd.addr.eq(address(pooled)), sum_wr.addr.eq(address(pooled)), sum_wr.en.eq(1),
                                 sum_wr.data.touched.eq(1), sum_wr.data.value.eq(sum_rd.data.value + i.payload.value)]
                    with m.If(~sum_rd.data.touched):
                        m.d.comb += [list_wr.addr.eq(count), list_wr.en.eq(1), list_wr.data.eq(pooled)]
                        m.d.sync += count.eq(count + 1)
            with m.State("EMIT"):
                pos = list_rd.data
                m.d.comb += [list_rd.addr.eq(index), sum_rd.addr.eq(address(pos)), sum_wr.addr.eq(address(pos)),
                             sum_wr.data.eq(0), o.payload.y.eq(pos.y), o.payload.x.eq(pos.x), o.payload.c.eq(pos.c),
                             o.payload.value.eq(sum_rd.data.value)]
                with m.If(index == count):
                    m.next = "END"
                with m.Elif(sum_rd.data.value == 0):
                    m.d.comb += sum_wr.en.eq(1)
                    m.d.sync += index.eq(index + 1)
                with m.Else():
                    m.d.comb += [o.valid.eq(1), sum_wr.en.eq(o.ready)]
                    with m.If(o.ready):
                        m.d.sync += index.eq(index + 1)
            with m.State("END"):
                m.d.comb += [o.valid.eq(1), o.payload.end.eq(1)]
                with m.If(o.ready):
                    m.d.sync += count.eq(0)
                    m.next = "COLLECT"
        return m


def count_result_layout(layer: LayerConfig) -> data.StructLayout:
    """``{scores[classes], label}``: |score| ≤ T·H'·W' (one spike of magnitude 1 per neuron and step)."""
    bound = layer.time_steps * layer.out_height * layer.out_width
    return data.StructLayout({
        "scores": data.ArrayLayout(signed(signed_width(bound)), layer.out_channels),
        "label": index_shape(layer.out_channels),
    })


class SpikeCountReadout(wiring.Component):
    """Class scores of the output layer (§14): ``score[c] = Σ_t Σ_pixels S[t, pixel, c]``, then
    the first maximum as the label (one cycle per class, ties to the lowest, as ``torch.argmax``).
    The input waits (``ready`` low) from the last step's end token until the result is taken."""

    def __init__(self, *, layer: LayerConfig, value_shape):
        self.layer = layer
        self.layout = count_result_layout(layer)
        super().__init__({
            "i_spikes": In(stream.Signature(event_layout(layer.out_height, layer.out_width, layer.out_channels,
                                                         value_shape))),
            "o_result": Out(stream.Signature(self.layout)),
        })

    def elaborate(self, platform):
        m = Module()
        classes, T = self.layer.out_channels, self.layer.time_steps
        scores = Signal(self.layout.members["scores"])
        step = Signal(index_shape(T))
        label, index = Signal(index_shape(classes)), Signal(range(classes + 1))
        best = Signal(self.layout.members["scores"].elem_shape)
        i = self.i_spikes
        m.d.comb += [self.o_result.payload.scores.eq(scores), self.o_result.payload.label.eq(label)]
        with m.FSM(name="readout"):
            with m.State("COUNT"):
                m.d.comb += i.ready.eq(1)
                with m.If(i.valid & i.payload.end):
                    m.d.sync += step.eq(Mux(step == T - 1, 0, step + 1))
                    with m.If(step == T - 1):
                        m.d.sync += [best.eq(scores[0]), label.eq(0), index.eq(1)]
                        m.next = "ARGMAX"
                with m.Elif(i.valid):
                    with m.Switch(i.payload.c):
                        for c in range(classes):
                            with m.Case(c):
                                m.d.sync += scores[c].eq(scores[c] + i.payload.value)
            with m.State("ARGMAX"):
                with m.If(index == classes):
                    m.next = "RESULT"
                with m.Else():
                    with m.If(scores[index] > best):
                        m.d.sync += [best.eq(scores[index]), label.eq(index)]
                    m.d.sync += index.eq(index + 1)
            with m.State("RESULT"):
                m.d.comb += self.o_result.valid.eq(1)
                with m.If(self.o_result.ready):
                    m.d.sync += [s.eq(0) for s in scores]
                    m.next = "COUNT"
        return m
