"""AXI4-Stream wrapper of the network top (``make gen WRAPPER=axis``; docs/nir.md).

``spikehq_<net>_axis`` has an AXI4-Stream slave ``s_axis_*`` (events in) and master
``m_axis_*`` (results out), with TLAST, named as vendor tools infer AXI4-Stream interfaces:

* **In**: one AXI4-Stream frame per sample. Each beat is one event of the sample or one
  end-of-step token, in step order: ``tdata`` = :func:`beat_layout` (``y``, ``x``, ``c``
  from bit 0 up, then ``end``; zero-padded to whole bytes). An event beat has ``end = 0`` and
  stands for the binary event (y, x, c) of the current step; an end beat (``end = 1``, other
  fields ignored) closes the step. ``tlast`` goes with the T-th end beat. The core counts
  steps by end beats; a ``tlast`` anywhere else, or a T-th end beat without it, sets the
  sticky ``o_frame_error`` (cleared by ``rst``) and changes nothing else.
* **Out**: one single-beat frame per sample (``tlast = 1``): ``tdata`` = the core's
  ``o_result`` payload, ``scores[0 … classes−1]`` (two's complement, class ``c`` at bits
  ``[c·w, (c+1)·w)``) then ``label``, zero-padded to whole bytes (manifest ``wrapper``).

Backpressure is plain AXI4-Stream: ``tvalid`` never waits for ``tready``.
"""

from __future__ import annotations

from amaranth import Mux, Signal
from amaranth.hdl import Module
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..golden.config import LayerWeights, NetworkConfig
from .events import index_shape
from .network import SpikingNetwork

__all__ = ["AxisNetwork", "beat_layout", "byte_width"]


def byte_width(bits: int) -> int:
    """``bits`` rounded up to whole bytes (AXI4-Stream TDATA is a whole number of bytes)."""
    return -(-bits // 8) * 8


def beat_layout(core: SpikingNetwork) -> data.StructLayout:
    """One input beat: ``{y, x, c, end}`` of the core's event stream."""
    event = core.i_events.payload.shape()
    return data.StructLayout({name: event[name].shape for name in ("y", "x", "c", "end")})


class AxisNetwork(wiring.Component):
    """The network core behind an AXI4-Stream slave and master (see the module docstring)."""

    def __init__(self, *, config: NetworkConfig, weights: dict[str, LayerWeights], share_roms: bool = True):
        self.core = SpikingNetwork(config=config, weights=weights, share_roms=share_roms)
        self.beat = beat_layout(self.core)
        self.result = self.core.o_result.payload.shape()
        super().__init__({
            "s_axis_tdata": In(byte_width(self.beat.size)), "s_axis_tvalid": In(1),
            "s_axis_tready": Out(1), "s_axis_tlast": In(1),
            "m_axis_tdata": Out(byte_width(self.result.size)), "m_axis_tvalid": Out(1),
            "m_axis_tready": In(1), "m_axis_tlast": Out(1),
            "o_frame_error": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = self.core
        beat = data.View(self.beat, self.s_axis_tdata[:self.beat.size])
        events, result = core.i_events, core.o_result
        m.d.comb += [events.valid.eq(self.s_axis_tvalid), self.s_axis_tready.eq(events.ready),
                     events.payload.y.eq(beat.y), events.payload.x.eq(beat.x), events.payload.c.eq(beat.c),
                     events.payload.end.eq(beat.end), events.payload.value.eq(~beat.end),
                     self.m_axis_tdata.eq(result.payload.as_value()), self.m_axis_tvalid.eq(result.valid),
                     result.ready.eq(self.m_axis_tready), self.m_axis_tlast.eq(1)]
        T = core.time_steps
        step = Signal(index_shape(T))
        with m.If(self.s_axis_tvalid & events.ready & beat.end):
            m.d.sync += step.eq(Mux(step == T - 1, 0, step + 1))
        with m.If(self.s_axis_tvalid & events.ready & (self.s_axis_tlast != (beat.end & (step == T - 1)))):
            m.d.sync += self.o_frame_error.eq(1)
        return m
