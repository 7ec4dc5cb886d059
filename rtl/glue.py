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
  event and one per position at the end of the step (a sweep of the partial sums).
"""

from __future__ import annotations

from types import SimpleNamespace

from amaranth import Cat, Mux, Shape, Signal, unsigned
from amaranth.hdl import Module
from amaranth.lib import fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from .banks import bank_depth
from .events import div_const, event_layout, index_shape, mul_const, stage

__all__ = ["StreamBuffer", "buffered", "queued", "EventFork", "SpikePool2x2", "ResidualAdd", "sum_banks"]


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
    block arrives long before its branch), each through a :class:`StreamBuffer`. Every
    operation on the partial sums takes one cycle in one pipeline, so that no path runs from a
    block RAM output through more than the forwarding: R (the sum is read) ▶ D (the word is
    registered; the two operations ahead, whose write-backs this read missed, are forwarded)
    ▶ W (an input event is added and written back; a swept sum, if non-zero, is queued as an
    event and cleared). After both end tokens of a step every position is swept in address
    order into a small output FIFO whose free slots the sweep reserves before it reads (so
    nothing stalls a block RAM), then the end token. The sweep costs ``H·W·C`` cycles per step
    whatever the activity, and spares a list of touched positions (a second block RAM per add).
    After reset (and at power-up) every partial sum is cleared, one word per cycle
    (:attr:`cycles_after_reset`): a reset mid-step leaves sums behind; tokens that arrive
    meanwhile wait in the input buffers.

    ``banks`` (a power of two): the partial sums are that many banks of ``H·W·C`` words, step
    ``t`` in bank ``t mod banks`` (:func:`sum_banks` picks as many as share one block RAM: the
    sums are a few bits wide). The skip input of the next ``banks − 1`` steps is summed into
    their banks while step ``t``'s branch is still arriving (after this step's skip and branch
    events, which go first) and while step ``t`` is swept (before the sweep), so the producer
    of the skip path (a fork feeding the block too) never waits for the block's branch or the
    sweep, unless it runs ``banks`` steps ahead. With one bank it waits for both.
    """

    #: events ahead whose pending write-back a read takes instead (forwarding); 2 covers every
    #: event between a read and its write-back (fewer exists only to test the forwarding)
    FORWARDED = 2
    #: output FIFO depth: the replay keeps at most this many events reserved or queued
    OUT_DEPTH = 8

    def __init__(self, *, height: int, width: int, channels: int, skip_shape, branch_shape, out_shape,
                 banks: int = 1):
        if banks < 1 or banks & (banks - 1):
            raise ValueError(f"The residual add's banks must be a power of two, not {banks}")
        self.height, self.width, self.channels = height, width, channels
        self.out_shape, self.banks = out_shape, banks
        self.positions = height * width * channels
        super().__init__({
            "i_skip": In(stream.Signature(event_layout(height, width, channels, skip_shape))),
            "i_branch": In(stream.Signature(event_layout(height, width, channels, branch_shape))),
            "o_sum": Out(stream.Signature(event_layout(height, width, channels, out_shape))),
        })

    @property
    def cycles_after_reset(self) -> int:
        """Cycles after ``rst`` falls before the partial sums (every bank) are cleared and input is taken in."""
        return self.positions * self.banks

    def elaborate(self, platform):
        m = Module()
        depth = self.cycles_after_reset
        m.submodules.sums = sums = memory.Memory(shape=self.out_shape, depth=depth, init=[])
        m.submodules.out_fifo = out = fifo.SyncFIFOBuffered(width=len(self.o_sum.payload.as_value()),
                                                            depth=self.OUT_DEPTH)
        m.d.comb += [self.o_sum.valid.eq(out.r_rdy), self.o_sum.payload.eq(out.r_data), out.r_en.eq(self.o_sum.ready)]
        st = SimpleNamespace(
            rd=sums.read_port(), wr=sums.write_port(), out=out,
            ins=[_buffered_input(m, "skip_buffer", self.i_skip), _buffered_input(m, "branch_buffer", self.i_branch)],
            bank=Signal(index_shape(self.banks)),    # the bank of the step being collected or swept
            lead=Signal(range(self.banks + 1)),      # skip end tokens in, this step's included
            branch_done=Signal(), index=Signal(range(depth + 1)), issue=self._op_signals())
        pipe = self._pipeline(m, st)
        with m.FSM(name="residual"):
            with m.State("CLEAR"):
                m.d.comb += [st.wr.addr.eq(st.index), st.wr.data.eq(0), st.wr.en.eq(1)]
                m.d.sync += st.index.eq(st.index + 1)
                with m.If(st.index == depth - 1):
                    m.d.sync += st.index.eq(0)
                    m.next = "COLLECT"
            with m.State("COLLECT"):
                self._collect(m, st)
                with m.If((st.lead != 0) & st.branch_done & ~pipe.current_in_flight):
                    m.next = "EMIT"
            with m.State("EMIT"):
                self._emit(m, st, pipe)
                with m.If((st.index == self.positions) & ~pipe.sweep_in_flight):
                    m.next = "END"
            with m.State("END"):
                m.d.comb += [out.w_en.eq(1), out.w_data.eq(self.o_sum.payload.shape().const({"end": 1}).as_value())]
                with m.If(out.w_rdy):
                    m.d.sync += [st.index.eq(0), st.bank.eq(st.bank + 1),   # modulo banks (a power of two)
                                 st.lead.eq(st.lead - 1), st.branch_done.eq(0)]
                    m.next = "COLLECT"
        return m

    def _op_signals(self):
        """An operation entering the pipeline: add ``addend`` to a sum, or (``sweep``) read,
        send and clear one; ``current``: of the step being collected or swept (not a later
        step's skip)."""
        return SimpleNamespace(valid=Signal(), sweep=Signal(), current=Signal(), addend=Signal(self.out_shape),
                               pos=Signal(index_shape(self.positions)), bank=Signal(index_shape(self.banks)))

    def _address(self, pos, bank):
        """Memory address ``bank·H·W·C + pos`` (a constant multiply: shift-adds)."""
        return pos + mul_const(bank, self.positions) if self.banks > 1 else pos

    def _flat(self, p):
        """Flat position ``(y·W + x)·C + c`` of an event."""
        return mul_const(mul_const(p.y, self.width) + p.x, self.channels) + p.c

    def _position(self, address) -> dict:
        """``{y, x, c}`` of a flat position (constant divisions: shifts or reciprocal multiplies)."""
        depth, C, W = self.positions, self.channels, self.width
        pixel = div_const(address, C, depth)
        y = div_const(pixel, W, depth // C)
        return {"y": y, "x": pixel - mul_const(y, W), "c": address - mul_const(pixel, C)}

    def _take(self, m, st, port, *, branch: bool = False):
        """Issue ``port``'s token: its event as an add to the bank of its step, or its end token."""
        op, p = st.issue, port.payload
        m.d.comb += [port.ready.eq(1), op.valid.eq(~p.end), op.current.eq(1), op.addend.eq(p.value),
                     op.pos.eq(self._flat(p)), op.bank.eq(st.bank if branch else (st.bank + st.lead)[:len(st.bank)])]
        with m.If(p.end):
            m.d.sync += (st.branch_done.eq(1) if branch else st.lead.eq(st.lead + 1))

    def _collect(self, m, st):
        """One input token per cycle: this step's skip first, then the branch, then a later step's skip."""
        skip, branch = st.ins
        with m.If(skip.valid & (st.lead == 0)):
            self._take(m, st, skip)
        with m.Elif(branch.valid & ~st.branch_done):
            self._take(m, st, branch, branch=True)
        with m.Elif(self._ahead(st)):
            self._take(m, st, skip)
            m.d.comb += st.issue.current.eq(0)

    def _ahead(self, st):
        """A later step's skip token is waiting and its bank is free."""
        return st.ins[0].valid & (st.lead != 0) & (st.lead != self.banks) if self.banks > 1 else 0

    def _emit(self, m, st, pipe):
        """A later step's skip token, else the next position of the sweep: issued only while
        the output FIFO has room for every sweep in flight."""
        op = st.issue
        with m.If(self._ahead(st)):
            self._take(m, st, st.ins[0])
            m.d.comb += op.current.eq(0)
        with m.Elif((st.index != self.positions) & (st.out.level + pipe.sweeps < self.OUT_DEPTH - 1)):
            m.d.comb += [op.valid.eq(1), op.sweep.eq(1), op.current.eq(1), op.pos.eq(st.index), op.bank.eq(st.bank)]
            m.d.sync += st.index.eq(st.index + 1)

    def _pipeline(self, m, st):
        """R (address registered, sum read) ▶ D (word registered; the two operations ahead, whose
        write-backs this read missed, forwarded) ▶ W (add and write back; or send a non-zero
        sum and clear it). Returns the in-flight counts the FSM waits on."""
        op, width = st.issue, len(st.wr.addr)
        fields = {"valid": 1, "sweep": 1, "current": 1, "addend": self.out_shape, "pos": op.pos.shape(), "addr": width}
        r = stage(m, {k: (shape, self._address(op.pos, op.bank) if k == "addr" else getattr(op, k))
                      for k, shape in fields.items()})
        m.d.comb += st.rd.addr.eq(r.addr)
        d = stage(m, {k: (shape, getattr(r, k)) for k, shape in fields.items()})
        word = st.rd.data.shape()
        w = SimpleNamespace(old=Signal(word), **{k: Signal(shape) for k, shape in fields.items()})
        total = Signal(word)
        written = stage(m, {"valid": (1, st.wr.en), "addr": (width, st.wr.addr), "data": (word, st.wr.data)})
        newest = st.rd.data
        for now, value in reversed([(w, Mux(w.sweep, 0, total)), (written, written.data)][:self.FORWARDED]):
            newest = Mux(now.valid & (now.addr == d.addr), value, newest)
        m.d.sync += [getattr(w, k).eq(getattr(d, k)) for k in fields] + [w.old.eq(newest)]
        m.d.comb += total.eq(w.old + w.addend)
        with m.If(w.valid):
            m.d.comb += [st.wr.addr.eq(w.addr), st.wr.en.eq(1), st.wr.data.eq(Mux(w.sweep, 0, total))]
        pos = self._position(w.pos)
        payload = Signal(self.o_sum.payload.shape())
        m.d.comb += [payload.y.eq(pos["y"]), payload.x.eq(pos["x"]), payload.c.eq(pos["c"]), payload.value.eq(w.old)]
        with m.If(w.valid & w.sweep & (w.old != 0)):
            m.d.comb += [st.out.w_en.eq(1), st.out.w_data.eq(payload)]
        stages = (r, d, w)
        return SimpleNamespace(current_in_flight=Cat(*(x.valid & x.current for x in stages)).any(),
                               sweep_in_flight=Cat(*(x.valid & x.sweep for x in stages)).any(),
                               sweeps=sum(x.valid & x.sweep for x in stages))


def sum_banks(positions: int, out_shape, most: int = 4) -> int:
    """Banks for a :class:`ResidualAdd` over ``positions`` sums of ``out_shape``: the largest
    power of two, at least 2 and at most ``most``, whose banks share one ECP5 DP16KD
    (:func:`~.banks.bank_depth`); 2 when even one bank needs more."""
    fit = bank_depth(Shape.cast(out_shape).width) // positions
    banks = 2
    while banks * 2 <= min(fit, most):
        banks *= 2
    return banks


def _buffered_input(m, name: str, port):
    """A :class:`StreamBuffer` behind the unit's own input stream ``port``: returns the stream
    the unit takes tokens from."""
    m.submodules[name] = buf = StreamBuffer(port.payload.shape())
    src = wiring.flipped(port)
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
