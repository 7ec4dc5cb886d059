"""Stream glue between the engines of a network (docs/arithmetic.md §12).

Every stream carries the events of one time step in any order, then one end token
(:func:`~.events.event_layout`; :func:`~.events.connect_events` wires one stream into another
of a different layout). The units here keep that contract:

* :class:`StreamBuffer` — a registered stage (skid buffer): every output and ``ready`` comes
  from a register, one token per cycle, so no combinational path crosses it.
* :class:`EventFork` — broadcast one stream to several consumers (each takes every token).
* :class:`SpikePool2x2` — 2×2 max pooling of binary spikes (OR over the window), one cycle per
  event, ``H/2·W/2`` cycles at the end of a step (and after reset) to clear its bitmap.
* :class:`ResidualAdd` — ``skip + branch`` as multi-bit integer events, one cycle per input
  event and one per distinct position at the end of the step (a dense sweep only after reset).
"""

from __future__ import annotations

from types import SimpleNamespace

from amaranth import Mux, Signal, unsigned
from amaranth.hdl import Module
from amaranth.lib import fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from .events import div_const, event_layout, index_shape, mul_const, stage

__all__ = ["StreamBuffer", "buffered", "queued", "EventFork", "SpikePool2x2", "ResidualAdd"]


class StreamBuffer(wiring.Component):
    """A registered stream stage (a two-entry skid buffer).

    ``o.valid``, ``o.payload`` and ``i.ready`` are registers, so the stage cuts every
    combinational path between producer and consumer. It passes one token per cycle (full
    throughput) and adds one cycle of latency; while the consumer stalls, one more token waits
    in the skid register and ``i.ready`` falls in the next cycle.
    """

    def __init__(self, layout):
        super().__init__({"i": In(stream.Signature(layout)), "o": Out(stream.Signature(layout))})

    def elaborate(self, platform):
        m = Module()
        i, o = self.i, self.o
        skid, held = Signal.like(i.payload, name="skid"), Signal.like(o.payload, name="held")
        skid_valid, held_valid = Signal(), Signal()
        m.d.comb += [i.ready.eq(~skid_valid), o.valid.eq(held_valid), o.payload.eq(held)]
        with m.If(~held_valid | o.ready):                 # the output register is free this cycle
            with m.If(skid_valid):
                m.d.sync += [held.eq(skid), held_valid.eq(1), skid_valid.eq(0)]
            with m.Else():
                m.d.sync += [held.eq(i.payload), held_valid.eq(i.valid)]
        with m.Elif(i.valid & ~skid_valid):               # output stalled: the offered token waits
            m.d.sync += [skid.eq(i.payload), skid_valid.eq(1)]
        return m


def buffered(m, name: str, port):
    """A :class:`StreamBuffer` submodule ``name`` in front of the engine's own output stream
    ``port``: returns the stream the engine drives instead."""
    m.submodules[name] = buf = StreamBuffer(port.payload.shape())
    wiring.connect(m, buf.o, wiring.flipped(port))
    return buf.i


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
    block arrives long before its branch), each through a :class:`StreamBuffer`. Each input
    event costs one cycle, pipelined so that no path runs from a block RAM output through logic:
    R (the position's partial sum is read) ▶ D (the word is registered; the two events ahead,
    whose write-backs this read missed, are forwarded) ▶ W (add, write back). After both end
    tokens every position is swept in address order: I (sum read) ▶ X ▶ E (registered; a
    non-zero sum is queued as an event, the position cleared), one position per cycle into a
    small output FIFO whose free slots the sweep reserves before it reads (so nothing stalls a
    block RAM), then the end token. The sweep costs ``H·W·C`` cycles per step whatever the
    activity, and spares a list of touched positions (a second block RAM per add). After reset
    (and at power-up) every partial sum is cleared, one position per cycle
    (:attr:`cycles_after_reset`): a reset mid-step leaves sums behind; tokens that arrive
    meanwhile wait in the input buffers.

    ``skip_fifo``: the skip input waits in a FIFO of that many tokens instead of a two-entry
    buffer. The add takes the next step's skip events only after sweeping the current step,
    so without it the producer of the skip path (a fork feeding the block too) stalls until
    the block's branch has arrived; with ``H·W·C`` entries it can run a whole step ahead.
    """

    #: events ahead whose pending write-back a read takes instead (forwarding); 2 covers every
    #: event between a read and its write-back (fewer exists only to test the forwarding)
    FORWARDED = 2
    #: output FIFO depth: the replay keeps at most this many events reserved or queued
    OUT_DEPTH = 8

    def __init__(self, *, height: int, width: int, channels: int, skip_shape, branch_shape, out_shape,
                 skip_fifo: int = 0):
        if skip_fifo < 0:
            raise ValueError(f"The skip FIFO depth must be 0 (none) or positive, not {skip_fifo}")
        self.height, self.width, self.channels = height, width, channels
        self.out_shape, self.skip_fifo = out_shape, skip_fifo
        super().__init__({
            "i_skip": In(stream.Signature(event_layout(height, width, channels, skip_shape))),
            "i_branch": In(stream.Signature(event_layout(height, width, channels, branch_shape))),
            "o_sum": Out(stream.Signature(event_layout(height, width, channels, out_shape))),
        })

    @property
    def cycles_after_reset(self) -> int:
        """Cycles after ``rst`` falls before the partial sums are cleared and input is taken in."""
        return self.height * self.width * self.channels

    def elaborate(self, platform):
        m = Module()
        depth = self.cycles_after_reset
        m.submodules.sums = sums = memory.Memory(shape=self.out_shape, depth=depth, init=[])
        mem = SimpleNamespace(sum_rd=sums.read_port(), sum_wr=sums.write_port())
        ins = [_buffered_input(m, "skip_buffer", self.i_skip, self.skip_fifo),
               _buffered_input(m, "branch_buffer", self.i_branch)]
        m.submodules.out_fifo = out = fifo.SyncFIFOBuffered(width=len(self.o_sum.payload.as_value()),
                                                            depth=self.OUT_DEPTH)
        m.d.comb += [self.o_sum.valid.eq(out.r_rdy), self.o_sum.payload.eq(out.r_data), out.r_en.eq(self.o_sum.ready)]
        index = Signal(range(depth + 1))
        with m.FSM(name="residual"):
            with m.State("CLEAR"):
                m.d.comb += [mem.sum_wr.addr.eq(index), mem.sum_wr.data.eq(0), mem.sum_wr.en.eq(1)]
                m.d.sync += index.eq(index + 1)
                with m.If(index == depth - 1):
                    m.d.sync += index.eq(0)
                    m.next = "COLLECT"
            with m.State("COLLECT"):
                with m.If(self._collect(m, ins, mem)):
                    m.next = "EMIT"
            with m.State("EMIT"):
                with m.If(self._emit(m, out, mem, index)):
                    m.next = "END"
            with m.State("END"):
                m.d.comb += [out.w_en.eq(1), out.w_data.eq(self.o_sum.payload.shape().const({"end": 1}).as_value())]
                with m.If(out.w_rdy):
                    m.d.sync += index.eq(0)
                    m.next = "COLLECT"
        return m

    def _address(self, p):
        """Flat position ``(y·W + x)·C + c`` (constant multiplies: shift-adds)."""
        return mul_const(mul_const(p.y, self.width) + p.x, self.channels) + p.c

    def _position(self, address) -> dict:
        """``{y, x, c}`` of a flat position (constant divisions: shifts or reciprocal multiplies)."""
        depth, C, W = self.cycles_after_reset, self.channels, self.width
        pixel = div_const(address, C, depth)
        y = div_const(pixel, W, depth // C)
        return {"y": y, "x": pixel - mul_const(y, W), "c": address - mul_const(pixel, C)}

    def _collect(self, m, ins, mem):
        """R ▶ D ▶ W (class docstring): one input token per cycle, the skip input first. Returns
        "both end tokens are in and every sum is written" (the state's exit)."""
        done = [Signal(name=f"{n}_done") for n in ("skip", "branch")]
        take_skip = ins[0].valid & ~done[0]
        take = [take_skip, ins[1].valid & ~done[1] & ~take_skip]
        p, addend = Signal.like(ins[0].payload), Signal(self.out_shape)
        for port, taken in zip(ins, take):
            with m.If(taken):
                m.d.comb += [port.ready.eq(1), p.y.eq(port.payload.y), p.x.eq(port.payload.x),
                             p.c.eq(port.payload.c), p.end.eq(port.payload.end), addend.eq(port.payload.value)]
        for flag, taken in zip(done, take):
            with m.If(taken & p.end):
                m.d.sync += flag.eq(1)
        addr_shape, word = mem.sum_wr.addr.shape(), mem.sum_rd.data.shape()
        r = stage(m, {"valid": (1, (take[0] | take[1]) & ~p.end), "addr": (addr_shape, self._address(p)),
                       "addend": (self.out_shape, addend)})
        m.d.comb += mem.sum_rd.addr.eq(r.addr)
        d = stage(m, {"valid": (1, r.valid), "addr": (addr_shape, r.addr), "addend": (self.out_shape, r.addend)})
        w = SimpleNamespace(valid=Signal(), addr=Signal(addr_shape), addend=Signal(self.out_shape), old=Signal(word))
        total = Signal(word)
        written = stage(m, {"valid": (1, mem.sum_wr.en), "addr": (addr_shape, mem.sum_wr.addr), "data": (word, total)})
        # D: this word was read before the writes of the event now in W and of the one written last
        # cycle; a hit takes their sum instead (the newer one first)
        newest = mem.sum_rd.data
        for now, value in reversed([(w, total), (written, written.data)][:self.FORWARDED]):
            newest = Mux(now.valid & (now.addr == d.addr), value, newest)
        m.d.sync += [w.valid.eq(d.valid), w.addr.eq(d.addr), w.addend.eq(d.addend), w.old.eq(newest)]
        m.d.comb += total.eq(w.old + w.addend)
        with m.If(w.valid):
            m.d.comb += [mem.sum_wr.addr.eq(w.addr), mem.sum_wr.en.eq(1), mem.sum_wr.data.eq(total)]
        finished = done[0] & done[1] & ~r.valid & ~d.valid & ~w.valid
        with m.If(finished):
            m.d.sync += [flag.eq(0) for flag in done]
        return finished

    def _emit(self, m, out, mem, index):
        """I ▶ X ▶ E (class docstring): position ``index`` → its sum → queued when non-zero,
        cleared. A read is issued only while the FIFO has room for every read in flight.
        Returns "sweep done"."""
        addr_shape, depth = mem.sum_wr.addr.shape(), self.cycles_after_reset
        issue = Signal()
        s = stage(m, {"valid": (1, issue), "addr": (addr_shape, index)})
        x = stage(m, {"valid": (1, s.valid), "addr": (addr_shape, s.addr)})
        e = stage(m, {"valid": (1, x.valid), "addr": (addr_shape, x.addr), "value": (self.out_shape, mem.sum_rd.data)})
        in_flight = s.valid + x.valid + e.valid
        m.d.comb += [issue.eq((index != depth) & (out.level + in_flight < self.OUT_DEPTH - 1)),
                     mem.sum_rd.addr.eq(s.addr)]
        with m.If(issue):
            m.d.sync += index.eq(index + 1)
        pos = self._position(e.addr)
        payload = Signal(self.o_sum.payload.shape())
        m.d.comb += [payload.y.eq(pos["y"]), payload.x.eq(pos["x"]), payload.c.eq(pos["c"]), payload.value.eq(e.value),
                     out.w_data.eq(payload), out.w_en.eq(e.valid & (e.value != 0)),
                     mem.sum_wr.addr.eq(e.addr), mem.sum_wr.data.eq(0), mem.sum_wr.en.eq(e.valid)]
        return (index == depth) & ~s.valid & ~x.valid & ~e.valid


def _buffered_input(m, name: str, port, depth: int = 0):
    """A :class:`StreamBuffer` (or, with ``depth``, a FIFO of that many tokens) behind the unit's
    own input stream ``port``: returns the stream the unit takes tokens from."""
    m.submodules[name] = buf = StreamBuffer(port.payload.shape())
    # the FIFO's block RAM output goes through the buffer's registers before any logic
    src = queued(m, f"{name}_fifo", wiring.flipped(port), depth)
    m.d.comb += [buf.i.payload.eq(src.payload), buf.i.valid.eq(src.valid), src.ready.eq(buf.i.ready)]
    return buf.o


def queued(m, name: str, src, depth: int):
    """Stream ``src`` through a :class:`~amaranth.lib.fifo.SyncFIFOBuffered` submodule ``name``
    of ``depth`` tokens (its output registered); ``src`` itself for depth 0."""
    if not depth:
        return src
    shape = src.payload.shape()
    m.submodules[name] = queue = fifo.SyncFIFOBuffered(width=shape.size, depth=depth)
    out = stream.Signature(shape).create()
    m.d.comb += [queue.w_stream.payload.eq(src.payload), queue.w_stream.valid.eq(src.valid),
                 src.ready.eq(queue.w_stream.ready), out.payload.eq(queue.r_stream.payload),
                 out.valid.eq(queue.r_stream.valid), queue.r_stream.ready.eq(out.ready)]
    return out
