"""Engines of the feed-forward network top (docs/arithmetic.md §14) besides the PEs, forks and
residual adds: sum pooling, flatten, and the spike-count readout.

Every stream carries one step's events in any order, then one end token (§12), so each unit
here is order-independent: sums, a coordinate map, counts.
"""

from __future__ import annotations

from amaranth import Mux, Shape, Signal, signed, unsigned
from amaranth.hdl import Module
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..golden.config import LayerConfig, signed_width
from .events import event_layout, index_shape
from .glue import ResidualAdd

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

    A :class:`~.glue.ResidualAdd` over the output grid with one input: every event goes to its
    pooled position ``(y // k, x // k, c)`` on the add's skip input, and the branch input offers
    an end token at all times, so a step closes with the input's end token. So: one cycle per
    input event, one per touched output position at the end of the step; after reset (and at
    power-up) the sums are cleared first (:attr:`cycles_after_reset`)."""

    def __init__(self, *, height: int, width: int, channels: int, kernel: int, in_shape, out_shape):
        if height % kernel or width % kernel:
            raise ValueError(f"Sum pooling by {kernel} needs a grid divisible by it, not {height}×{width}")
        self.kernel = kernel
        self.add = ResidualAdd(height=height // kernel, width=width // kernel, channels=channels,
                               skip_shape=in_shape, branch_shape=unsigned(1), out_shape=out_shape)
        super().__init__({
            "i_events": In(stream.Signature(event_layout(height, width, channels, in_shape))),
            "o_events": Out(stream.Signature(event_layout(height // kernel, width // kernel, channels, out_shape))),
        })

    @property
    def cycles_after_reset(self) -> int:
        return self.add.cycles_after_reset

    def elaborate(self, platform):
        m = Module()
        m.submodules.add = add = self.add
        i, skip = self.i_events, add.i_skip
        m.d.comb += [skip.valid.eq(i.valid), i.ready.eq(skip.ready), skip.payload.end.eq(i.payload.end),
                     skip.payload.value.eq(i.payload.value), skip.payload.c.eq(i.payload.c),
                     skip.payload.y.eq(i.payload.y // self.kernel), skip.payload.x.eq(i.payload.x // self.kernel),
                     add.i_branch.valid.eq(1), add.i_branch.payload.end.eq(1)]
        wiring.connect(m, add.o_sum, wiring.flipped(self.o_events))
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
