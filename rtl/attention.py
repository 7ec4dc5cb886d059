"""Spiking self-attention unit: ``a = Q·(Kᵀ·V)`` per head, then the attention neuron (§11).

Additions and subtractions only: every product has a narrow factor (a spike, or a few-bit
activation), and is a sum of conditionally shifted copies of the other factor
(:func:`_times`); the index arithmetic multiplies and divides by constants with shift-adds.
"""

from __future__ import annotations

from types import SimpleNamespace

from amaranth import Cat, Const, Mux, Shape, Signal, signed
from amaranth.hdl import Module
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..golden.attention import attention_widths
from ..golden.config import AttentionConfig, default_lanes
from .glue import buffered
from .events import SpikeEmitter, advance, counter, div_const, event_layout, index_shape, mul_const
from .neuron import Integrate, fire_unit, membrane_register, spike_shape

__all__ = ["SpikingAttention", "value_max_abs"]


#: a memory that fits this many LUT RAM cells (16 words × 4 bits) goes to LUT RAM (the V memory
#: of a few lanes: a block RAM would hold it at a few percent of its capacity)
LUT_RAM_MAX_CELLS = 32


def value_max_abs(shape) -> int:
    """Largest |value| of a stream value shape: 2^w − 1 unsigned, 2^(w−1) signed (§2)."""
    shape = Shape.cast(shape)
    return 2 ** (shape.width - 1) if shape.signed else 2 ** shape.width - 1


def _as_signed(x):
    """Zero-extend an unsigned value into a signed one (so negating it is exact)."""
    return x if x.shape().signed else Cat(x, Const(0, 1)).as_signed()


def _times(x, y):
    """``x·y`` by shift-and-add over the bits of the narrower factor (no multiplier): one
    conditional add per bit, the sign bit of a signed factor subtracted."""
    if len(y) > len(x):
        x, y = y, x
    x, total = _as_signed(x), None
    for i in range(len(y)):
        term = Mux(y[i], x << i, 0)
        if y.shape().signed and i == len(y) - 1:
            total = -term if total is None else total - term
        else:
            total = term if total is None else total + term
    return total


class SpikingAttention(wiring.Component):
    """Spiking self-attention over ``tokens`` × ``channels`` with ``heads`` heads (docs/arithmetic.md §11).

    Per time step, ``i_q``, ``i_k`` and ``i_v`` each carry that step's non-zero events
    ``{y: token, x: 0, c: channel, value}`` in any order, then one token with ``end = 1``. The
    three streams are accepted concurrently and independently (``ready`` = "this stream's end
    token of the step has not been seen yet"), one event per stream per cycle: q and k events
    are appended to event lists, v events are written into a dense V memory. Once all three end
    tokens are in, the unit stops accepting and computes, with ``L = lanes`` channels of one
    head in parallel (``N = tokens``, ``d = channels / heads``, ``G = d / L``, ``B = channels / L``):

    1. **KV** (``1 + (G + 1)·E_k`` cycles, ``E_k`` = k events): for each k event ``(m, i, k)``,
       ``KV[i, j] += k·v[m, j]`` over the ``d`` channels ``j`` of ``i``'s head, G words of L.
       A row is overwritten by the first k event of the step that touches it (one "touched"
       flag per channel), so KV needs no clearing pass.
    2. **A** (``1 + (G + 1)·E_q`` cycles): for each q event ``(n, i, q)``,
       ``A[n, j] += q·KV[i, j]`` over the ``d`` channels of the head (nothing is written when
       no k event touched row i).
    3. **Neuron** (``2 + 3·N·B + S`` cycles, ``S`` = output spikes): every ``(token, lane group)``
       word is read and registered (N_REG), integrated, ``u = (r >> s) + A`` (N_INT, registered;
       ``r = 0`` at t = 0, the step counter wraps at ``time_steps``), then fired, reset and
       stored with threshold θ (N_CALC), which also clears its current and its V word; each
       spike is one output event (lowest lane first).
    4. **End** (1 cycle): the end token.

    Pipelining: input writes are registered (they land a cycle after the token is taken), an
    event read from its list is registered as it leaves the block RAM (LOAD) and its KV and
    word addresses are computed from that register once (PREP; the scan then steps them by one
    per group), and ``o_spikes`` leaves through a :class:`~.glue.StreamBuffer` (one cycle
    later; every output is a register).

    After reset (and at power-up) the unit first zeroes its V and current memories, one word
    of each per cycle (:attr:`cycles_after_reset` = ``N·B`` cycles, every ``ready`` low): a
    reset in the middle of a step leaves v values and partial sums there. KV needs no clearing
    (the "touched" flags are registers), nor the event lists (their counts are registers), nor
    the membranes (step 0 ignores them).

    So with no output stalls the output end token leaves ``6 + (G + 1)·(E_k + E_q) + 3·N·B + S`` cycles
    after the cycle that accepted the last of the three input end tokens
    (:meth:`cycles_per_step`); input takes one cycle per event per stream, the streams in
    parallel. The next step's events are accepted after the end token has left.

    At most one event per ``(token, channel)`` and stream per step (the event lists hold
    ``tokens·channels`` entries); zero-valued events are legal and add nothing.

    Memories: q and k event lists (``N·D`` × {token, channel, value}), V (``N·B`` words of L
    values), KV (``D·G`` words of L × ``kv_width``), currents and membranes (``N·B`` words of L).
    """

    def __init__(self, *, tokens: int, channels: int, time_steps: int, attention: AttentionConfig,
                 q_shape, k_shape, v_shape, lanes: int | None = None):
        heads = attention.heads
        if heads < 1 or channels % heads:
            raise ValueError(f"Channels ({channels}) must be a positive multiple of heads ({heads})")
        d = channels // heads
        if lanes is None:
            lanes = default_lanes(d)
        if lanes < 1 or d % lanes:
            raise ValueError(f"Lanes ({lanes}) must divide the head dimension ({d})")
        self.tokens, self.channels, self.heads, self.time_steps = tokens, channels, heads, time_steps
        self.attention, self.lanes, self.head_dim = attention, lanes, d
        self.shapes = {n: Shape.cast(s) for n, s in (("q", q_shape), ("k", k_shape), ("v", v_shape))}
        self.widths = attention_widths(tokens=tokens, channels=channels, time_steps=time_steps, attention=attention,
                                       **{f"{n}_max": value_max_abs(s) for n, s in self.shapes.items()})
        self.neuron_type, self.membrane = attention.neuron.type, attention.membrane
        self.groups, self.blocks = d // lanes, channels // lanes          # G, B
        self.list_depth = tokens * channels
        self.word_depth = tokens * self.blocks                            # (token, block) words: V, A, membranes
        self.kv_depth = channels * self.groups                            # (channel, group) words
        self.entry = {n: data.StructLayout({"tok": index_shape(tokens), "c": index_shape(channels), "value": s})
                      for n, s in self.shapes.items()}
        w = self.widths
        stored_width = 2 if self.membrane == "ternary" else w.membrane_width
        self.v_word = data.ArrayLayout(self.shapes["v"], lanes)
        self.kv_word = data.ArrayLayout(signed(w.kv_width), lanes)
        self.current_word = data.ArrayLayout(signed(w.current_width), lanes)
        self.membrane_word = data.ArrayLayout(signed(stored_width), lanes)
        self.out_layout = event_layout(tokens, 1, channels, spike_shape(self.neuron_type))
        super().__init__({
            **{f"i_{n}": In(stream.Signature(event_layout(tokens, 1, channels, s))) for n, s in self.shapes.items()},
            "o_spikes": Out(stream.Signature(self.out_layout)),
        })

    def cycles_per_step(self, k_events: int, q_events: int, spikes: int) -> int:
        """Cycles from the last input end token to the output end token, without stalls."""
        return 6 + (self.groups + 1) * (k_events + q_events) + 3 * self.word_depth + spikes

    @property
    def cycles_after_reset(self) -> int:
        """Cycles after ``rst`` falls (or power-up) before the ``i_*.ready`` can rise: the sweep."""
        return self.word_depth

    # ---- structure ------------------------------------------------------------------------
    def elaborate(self, platform):
        m = Module()
        mem = self._memories(m)
        lanes = self._lanes(m)
        st = self._state(buffered(m, "out_buffer", self.o_spikes))
        self._inputs(m, st, mem)
        self._accumulate(m, st, mem)
        self._neuron_update(m, st, mem, lanes)
        self._spike_output(m, st)
        self._control(m, st, mem, lanes)
        return m

    def _memories(self, m) -> SimpleNamespace:
        """q/k event lists, dense V, KV rows, currents A and membranes, and their ports."""
        def ram(name, shape, depth):
            cells = -(-depth // 16) * -(-Shape.cast(shape).width // 4)      # 16 × 4-bit LUT RAM cells
            attrs = {"ram_style": "distributed"} if cells <= LUT_RAM_MAX_CELLS else {}
            m.submodules[name] = mem = memory.Memory(shape=shape, depth=depth, init=[], attrs=attrs)
            return mem
        q_list = ram("q_list", self.entry["q"], self.list_depth)
        k_list = ram("k_list", self.entry["k"], self.list_depth)
        v_mem = ram("v", self.v_word, self.word_depth)
        kv_mem, a_mem = ram("kv", self.kv_word, self.kv_depth), ram("currents", self.current_word, self.word_depth)
        membrane_mem = ram("membranes", self.membrane_word, self.word_depth)
        kv_wr, a_wr = kv_mem.write_port(), a_mem.write_port()
        return SimpleNamespace(
            q_wr=q_list.write_port(), q_rd=q_list.read_port(), k_wr=k_list.write_port(), k_rd=k_list.read_port(),
            v_wr=v_mem.write_port(granularity=1), v_rd=v_mem.read_port(),
            # transparent: a write-back and a read of the same row in one cycle see the sum
            kv_wr=kv_wr, kv_rd=kv_mem.read_port(transparent_for=(kv_wr,)),
            a_wr=a_wr, a_rd=a_mem.read_port(transparent_for=(a_wr,)),
            membrane_wr=membrane_mem.write_port(), membrane_rd=membrane_mem.read_port())

    def _lanes(self, m) -> list[SimpleNamespace]:
        """Per lane: the neuron step split in two (N_INT: :class:`Integrate`; N_CALC: fire and
        store), so a registered ``u`` sits between the adders and the compare."""
        w, neuron = self.widths, self.attention.neuron
        widths = dict(membrane_width=w.membrane_width, threshold_width=w.threshold_width)
        lanes = []
        for l in range(self.lanes):
            lane = SimpleNamespace(
                integrate=Integrate(membrane=self.membrane, leak_shift=neuron.leak_shift,
                                    current_width=w.current_width, bias_width=w.bias_width, **widths),
                fire=fire_unit(neuron_type=self.neuron_type, reset=neuron.reset, **widths),
                register=membrane_register(membrane=self.membrane, **widths),
                u=Signal(signed(w.membrane_width), name=f"u{l}"))
            m.submodules[f"integrate{l}"], m.submodules[f"fire{l}"] = lane.integrate, lane.fire
            m.submodules[f"register{l}"] = lane.register
            lanes.append(lane)
        return lanes

    def _state(self, out) -> SimpleNamespace:
        """Registers of the control; ``out``: the stream the spike emitter drives (the output buffer's input)."""
        N, D, count = self.tokens, self.channels, index_shape(self.list_depth + 1)
        addr = max(index_shape(self.kv_depth).width, index_shape(self.word_depth).width)
        return SimpleNamespace(
            step=counter(self.time_steps),
            done={n: Signal(name=f"done_{n}") for n in "qkv"},          # end token of this step seen
            accepting=Signal(),                                          # INPUT phase
            q_count=Signal(count), k_count=Signal(count),
            ptr=Signal(count), ptr_next=Signal(count),                   # event list read pointer
            touched=Signal(D),                                           # KV row i written this step
            kev=Signal(self.entry["k"]), qev=Signal(self.entry["q"]),    # event being scanned
            raw={n: Signal(self.entry[n], name=f"{n}_entry") for n in "kq"},  # list entry, registered
            live=Signal(),                                               # KV: first of its row; A: row touched
            group=counter(self.groups),
            kv_addr=Signal(index_shape(self.kv_depth)),                  # scan addresses of the event's
            word_addr=Signal(index_shape(self.word_depth)),              # current group (set at load)
            # write-back stage (the cycle after a scan read)
            w_kv=Signal(), w_a=Signal(), w_addr=Signal(addr), w_fresh=Signal(),
            w_k=Signal(self.shapes["k"]), w_q=Signal(self.shapes["q"]),
            # neuron phase: word = tok·B + blk
            word=counter(self.word_depth), rd_word=counter(self.word_depth),
            tok=counter(N), blk=counter(self.blocks),
            out=SpikeEmitter(out, lanes=self.lanes),
            out_tok=counter(N), out_blk=counter(self.blocks),
        )

    # ---- addressing -----------------------------------------------------------------------
    def _load_addresses(self, m, st, entry) -> None:
        """At an event's load: the KV row word ``c·G`` and the V / current word
        ``tok·B + head(c)·G`` of its group 0; the scan then steps both by one per group."""
        head = div_const(entry.c, self.head_dim, self.channels)
        m.d.sync += [st.kv_addr.eq(mul_const(entry.c, self.groups)[:len(st.kv_addr)]),
                     st.word_addr.eq((mul_const(entry.tok, self.blocks) + mul_const(head, self.groups))
                                     [:len(st.word_addr)])]

    # ---- datapath -------------------------------------------------------------------------
    def _inputs(self, m, st, mem) -> None:
        """While accepting: q/k events append to their lists, v events write one V lane. Each
        write is registered first and lands a cycle later (no path from a producer into a
        memory port); the lists and V are read only after the INPUT phase."""
        L, B = self.lanes, self.blocks
        for n, wr, count in (("q", mem.q_wr, st.q_count), ("k", mem.k_wr, st.k_count)):
            port = getattr(self, f"i_{n}")
            event = port.valid & port.ready & ~port.payload.end
            m.d.comb += port.ready.eq(st.accepting & ~st.done[n])
            m.d.sync += [wr.addr.eq(count), wr.en.eq(event), wr.data.tok.eq(port.payload.y),
                         wr.data.c.eq(port.payload.c), wr.data.value.eq(port.payload.value)]
            with m.If(event):
                m.d.sync += count.eq(count + 1)
        port, wr = self.i_v, mem.v_wr
        fire = port.valid & port.ready
        blk = div_const(port.payload.c, L, self.channels)
        lane = (port.payload.c - mul_const(blk, L))[:index_shape(L).width]
        m.d.comb += port.ready.eq(st.accepting & ~st.done["v"])
        v_addr, v_lane, v_value, v_en = (Signal.like(wr.addr), Signal(index_shape(L)), Signal(self.shapes["v"]),
                                         Signal())
        m.d.sync += [v_addr.eq((mul_const(port.payload.y, B) + blk)[:len(wr.addr)]), v_lane.eq(lane),
                     v_value.eq(port.payload.value), v_en.eq(fire & ~port.payload.end)]
        m.d.comb += wr.addr.eq(v_addr)
        for l in range(L):
            m.d.comb += [wr.data[l].eq(v_value), wr.en[l].eq(v_en & (v_lane == l))]
        for n in "qkv":
            port = getattr(self, f"i_{n}")
            with m.If(port.valid & port.ready & port.payload.end):
                m.d.sync += st.done[n].eq(1)

    def _accumulate(self, m, st, mem) -> None:
        """Read-add-write in three stages: the scan reads (cycle t), the read data is registered
        (t+1, stage ``w_*``), the sum is written (t+2, stage ``x_*``): KV += k·V row (or = on the
        row's first event), A += q·KV row. A row read at t that the stage ahead writes at t+1 is
        forwarded from that write; a write at t itself reaches the read through the read port's
        transparency."""
        L, kv_word, cur_word = self.lanes, self.kv_word, self.current_word
        x = SimpleNamespace(kv=Signal(), a=Signal(), addr=Signal.like(st.w_addr), fresh=Signal(),
                            k=Signal(self.shapes["k"]), q=Signal(self.shapes["q"]),
                            kv_old=Signal(kv_word), v=Signal(self.v_word), a_old=Signal(cur_word),
                            kv_row=Signal(kv_word))
        kv_sum, a_sum = Signal(kv_word), Signal(cur_word)
        for l in range(L):
            m.d.comb += [kv_sum[l].eq(Mux(x.fresh, 0, x.kv_old[l]) + _times(x.k, x.v[l])),
                         a_sum[l].eq(x.a_old[l] + _times(x.q, x.kv_row[l]))]
        m.d.comb += [mem.kv_wr.addr.eq(x.addr), mem.kv_wr.en.eq(x.kv), mem.kv_wr.data.eq(kv_sum),
                     mem.a_wr.addr.eq(x.addr), mem.a_wr.en.eq(x.a), mem.a_wr.data.eq(a_sum)]
        same = x.addr == st.w_addr
        m.d.sync += [x.kv.eq(st.w_kv), x.a.eq(st.w_a), x.addr.eq(st.w_addr), x.fresh.eq(st.w_fresh),
                     x.k.eq(st.w_k), x.q.eq(st.w_q), x.v.eq(mem.v_rd.data), x.kv_row.eq(mem.kv_rd.data),
                     x.kv_old.eq(Mux(x.kv & same, kv_sum, mem.kv_rd.data)),
                     x.a_old.eq(Mux(x.a & same, a_sum, mem.a_rd.data)),
                     st.w_kv.eq(0), st.w_a.eq(0)]

    def _neuron_update(self, m, st, mem, lanes) -> None:
        """The lanes work on registered words (loaded in N_REG) and a registered ``u`` (N_INT),
        never on memory outputs."""
        current, stored = Signal(self.current_word), Signal(self.membrane_word)
        st.load_word = [current.eq(mem.a_rd.data), stored.eq(mem.membrane_rd.data)]
        st.integrate = [lane.u.eq(lane.integrate.u) for lane in lanes]
        theta = self.widths.threshold
        for l, lane in enumerate(lanes):
            m.d.comb += [
                lane.integrate.first_step.eq(st.step == 0), lane.integrate.stored.eq(stored[l]),
                lane.integrate.current.eq(current[l]), lane.integrate.bias.eq(0), lane.integrate.threshold.eq(theta),
                lane.fire.u.eq(lane.u), lane.fire.threshold.eq(theta),
                lane.register.h_next.eq(lane.fire.h_next), lane.register.threshold.eq(theta),
                mem.membrane_wr.data[l].eq(lane.register.store),
            ]
        m.d.comb += [st.rd_word.eq(st.word), mem.membrane_rd.addr.eq(st.rd_word), mem.membrane_wr.addr.eq(st.word)]

    def _spike_output(self, m, st) -> None:
        """o_spikes shows the lowest lane that fired in the latched word."""
        # x is always 0; a register (not a constant) keeps the port bit driven for Verilator lint
        out_x = Signal(1)
        m.d.sync += out_x.eq(0)
        st.out.drive(m, y=st.out_tok, x=out_x, base=mul_const(st.out_blk, self.lanes))

    # ---- control --------------------------------------------------------------------------
    def _control(self, m, st, mem, lanes) -> None:
        """Phases INPUT → KV → A → neuron/EMIT → END (see the class docstring)."""
        G, N, B = self.groups, self.tokens, self.blocks
        m.d.comb += [st.ptr_next.eq(st.ptr), mem.q_rd.addr.eq(st.ptr_next), mem.k_rd.addr.eq(st.ptr_next)]
        m.d.sync += st.ptr.eq(st.ptr_next)   # list data of a cycle is always entry ptr

        def next_event(name, count, after):
            """Register list entry ``ptr`` (straight from the block RAM, no logic) and PREP it,
            or leave when the list is done."""
            with m.If(st.ptr == count):
                m.d.comb += st.ptr_next.eq(0)
                m.next = after
            with m.Else():
                m.d.comb += st.ptr_next.eq(st.ptr + 1)
                m.d.sync += st.raw[name].eq(getattr(mem, f"{name}_rd").data)
                m.next = f"{name.upper()}_PREP"

        def prep(name, load, scan):
            """The registered entry's addresses and flags, for the scan's first group."""
            m.d.sync += st.group.eq(0)
            load(st.raw[name])
            m.next = scan

        def load_k(entry):
            self._load_addresses(m, st, entry)
            m.d.sync += [st.kev.eq(entry), st.live.eq(~st.touched.bit_select(entry.c, 1)),
                         st.touched.bit_select(entry.c, 1).eq(1)]

        def load_q(entry):
            self._load_addresses(m, st, entry)
            m.d.sync += [st.qev.eq(entry), st.live.eq(st.touched.bit_select(entry.c, 1))]

        def next_word():
            with m.If(st.word == self.word_depth - 1):
                m.next = "END"
            with m.Else():
                m.d.comb += st.rd_word.eq(st.word + 1)
                m.d.sync += st.word.eq(st.word + 1)
                advance(m, [(st.blk, B), (st.tok, N)])
                m.next = "N_REG"

        def clear_word():
            """Zero the current and V words ``word``."""
            m.d.comb += [mem.a_wr.addr.eq(st.word), mem.a_wr.en.eq(1), mem.v_wr.addr.eq(st.word), mem.v_wr.en.eq(-1),
                         *(mem.a_wr.data[l].eq(0) for l in range(self.lanes)),
                         *(mem.v_wr.data[l].eq(0) for l in range(self.lanes))]

        with m.FSM(name="phase"):
            with m.State("CLEAR"):
                # after reset: a reset mid-step leaves v values and partial sums behind
                clear_word()
                m.d.sync += st.word.eq(st.word + 1)
                with m.If(st.word == self.word_depth - 1):
                    m.d.sync += st.word.eq(0)
                    m.next = "INPUT"
            with m.State("INPUT"):
                m.d.comb += st.accepting.eq(1)
                ports = [getattr(self, f"i_{n}") for n in "qkv"]
                ending = [st.done[n] | (port.valid & port.payload.end) for n, port in zip("qkv", ports)]
                with m.If(ending[0] & ending[1] & ending[2]):   # the last end token is taken this cycle
                    m.next = "KV_LOAD"
            with m.State("KV_LOAD"):
                next_event("k", st.k_count, "A_LOAD")
            with m.State("K_PREP"):
                prep("k", load_k, "KV_SCAN")
            with m.State("KV_SCAN"):
                m.d.comb += [mem.kv_rd.addr.eq(st.kv_addr), mem.v_rd.addr.eq(st.word_addr)]
                m.d.sync += [st.w_kv.eq(1), st.w_addr.eq(st.kv_addr), st.w_fresh.eq(st.live), st.w_k.eq(st.kev.value),
                             st.kv_addr.eq(st.kv_addr + 1), st.word_addr.eq(st.word_addr + 1)]
                with m.If(st.group == G - 1):
                    next_event("k", st.k_count, "A_LOAD")
                with m.Else():
                    m.d.sync += st.group.eq(st.group + 1)
            with m.State("A_LOAD"):
                next_event("q", st.q_count, "DRAIN")
            with m.State("Q_PREP"):
                prep("q", load_q, "A_SCAN")
            with m.State("A_SCAN"):
                m.d.comb += [mem.kv_rd.addr.eq(st.kv_addr), mem.a_rd.addr.eq(st.word_addr)]
                m.d.sync += [st.w_a.eq(st.live), st.w_addr.eq(st.word_addr), st.w_q.eq(st.qev.value),
                             st.kv_addr.eq(st.kv_addr + 1), st.word_addr.eq(st.word_addr + 1)]
                with m.If(st.group == G - 1):
                    next_event("q", st.q_count, "DRAIN")
                with m.Else():
                    m.d.sync += st.group.eq(st.group + 1)
            with m.State("DRAIN"):
                m.next = "N_READ"                # the last A write lands (N_READ's read sees it)
            with m.State("N_READ"):
                m.d.comb += mem.a_rd.addr.eq(st.rd_word)
                m.next = "N_REG"
            with m.State("N_REG"):
                # read data of the word is valid: register it for the neuron lanes
                m.d.comb += mem.a_rd.addr.eq(st.rd_word)
                m.d.sync += st.load_word
                m.next = "N_INT"
            with m.State("N_INT"):
                m.d.comb += mem.a_rd.addr.eq(st.rd_word)
                m.d.sync += st.integrate
                m.next = "N_CALC"
            with m.State("N_CALC"):
                # store membranes, clear current and V, latch spikes; read the next word whether or
                # not this one fired (EMIT reads it again), so no spike decides a read address
                m.d.comb += [st.rd_word.eq(st.word + 1), mem.a_rd.addr.eq(st.rd_word), mem.membrane_wr.en.eq(1)]
                clear_word()
                fired = st.out.latch(m, [lane.fire.spike for lane in lanes])
                m.d.sync += [st.out_tok.eq(st.tok), st.out_blk.eq(st.blk)]
                with m.If(fired):
                    m.next = "EMIT"
                with m.Else():
                    next_word()
            with m.State("EMIT"):
                m.d.comb += mem.a_rd.addr.eq(st.rd_word)
                with st.out.emit(m):
                    next_word()
            with m.State("END"):
                with st.out.end(m):
                    m.d.sync += [st.step.eq(Mux(st.step == self.time_steps - 1, 0, st.step + 1)),
                                 st.q_count.eq(0), st.k_count.eq(0), st.touched.eq(0),
                                 st.word.eq(0), st.tok.eq(0), st.blk.eq(0),
                                 *(st.done[n].eq(0) for n in "qkv")]
                    m.next = "INPUT"
