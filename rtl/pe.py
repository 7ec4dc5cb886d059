"""The spiking processing element (PE) of one conv/linear layer (docs/arithmetic.md §7, §10).

Event-driven and pipelined: every input event costs ``k²·G`` cycles (``G = out_channels /
lanes``) when events arrive back to back (one more after an idle gap); dense fan-in never
shows up in the cycle count. Every memory output is registered before any logic uses it, so
no path runs from a block RAM through arithmetic.

One memory holds every neuron's state: its **accumulator** word is, during a step, the
neuron's ``u`` so far, ``(r >> s) + b`` plus the current of the events scanned (§4); the update
compares it with ±θ, resets, stores and restores the membrane and writes back the next step's
``(r >> s) + b``. No separate current memory is needed: the current's lifetime ends where the
membrane's next value begins (docs/arithmetic.md §10).

Scan pipeline, one tap × lane group per cycle::

    ISSUE (counters) ▶ P1 (y', x', bounds) ▶ P2 (row, column products) ▶ R (address: read weights, accumulators)
      ▶ D (read data registered; forwarding selects) ▶ M (MAC) ▶ W (write accumulators back)

Three taps are in flight between a read and its write-back; a read that one of them will
change takes the newer sum instead (forwarding from M, W and the last two writes), so
back-to-back events that hit the same accumulator word stay exact.

Neuron update pipeline, one lane group per cycle::

    ISSUE (address counter) ▶ R (read accumulators, parameters) ▶ D ▶ N1 (registered u; compare with ±θ)
      ▶ N2 (spike, reset: h') ▶ N3 (membrane register's store) ▶ N4 (restore, leak, add bias: the next
      step's base) ▶ W (write the base, latch spikes)

A lane group with spikes waits in W while the emitter still sends the previous one (one
event per cycle); then the whole update pipeline holds (read ports included). After the last
step of a sample the base written is ``b`` (the next sample's step 0, §4.1), except in a PE
with a ``membrane_probe``: it keeps the last step's base for the probe and rewrites ``b``
(the INIT sweep) when the next sample's first token arrives.

After reset (and at power-up) the PE runs the INIT sweep: every lane group through the update
pipeline with its spikes suppressed, writing ``b`` (``cycles_after_reset`` cycles,
``i_spikes.ready`` low): a reset in the middle of a step leaves partial sums there. The weight
and parameter memories are never written at run time.

Spatial pruning (``layer.spatial_prune_k`` k > 0, SpQuant eq. 21–22, docs/arithmetic.md §6.1):
before the update a PRUNE pass issues every lane group through R ▶ D ▶ N1 (nothing written);
a stage C1 behind N1 counts the lanes with ``Q(u) ≠ 0``, sums them over a position's lane
groups and writes the count to a memory of ``H'·W'`` words and into a histogram of ``C + 1``
bins (registers); a WALK then adds bins from count 0 until the positions reach k: that bin
is the k-th smallest count. The UPDATE reads each position's count beside its accumulators and
at N1 sets ``u = 0`` where count ≤ k-th (no spike, state 0, next base ``b``), so pruned
positions send no events. Cost per step: ``H'·W'·G + kth + 6`` cycles (:attr:`prune_cycles`).
A layer without pruning generates none of it.

Phases: INIT ▶ INIT_DRAIN ▶ ACCEPT ⇄ SCAN; end token ▶ DRAIN (scan pipeline empties)
[▶ PRUNE ▶ PRUNE_DRAIN ▶ WALK] ▶ UPDATE (issue every lane group) ▶ FLUSH (update pipeline and
emitter empty) ▶ END (end token out) ▶ ACCEPT.
"""

from __future__ import annotations

from types import SimpleNamespace

from amaranth import Array, Cat, Mux, Signal, signed, unsigned
from amaranth.hdl import Module
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..golden.config import LayerConfig, LayerWeights, LayerWidths, signed_width
from .banks import LUT_RAM_MAX_DEPTH, BankedMemory, BankReadSignature, RomBank, bank_sizes, packed
from .events import SpikeEmitter, advance, counter, event_layout, index_shape, stage
from .mac import MAC_FOR_SCHEME, activation_shape
from .neuron import Integrate, fire_compare, fire_resolve, membrane_register, spike_shape, stored_shape

__all__ = ["weight_rows", "param_rows", "memory_attrs", "weight_banks", "SpikingPE", "WeightWriteSignature",
           "MembraneProbeSignature", "LUT_RAM_MAX_DEPTH"]


def weight_rows(layer: LayerConfig, weights: LayerWeights) -> list[list[int]]:
    """Weight memory rows (§10): row ((c·k + i)·k + j)·G + g holds channels g·L … g·L+L-1."""
    L, k, codes = layer.lanes, layer.kernel_size, weights.codes  # codes: [O, C, k, k]
    return [[int(codes[g * L + l, c, i, j]) for l in range(L)]
            for c in range(layer.in_channels) for i in range(k) for j in range(k)
            for g in range(layer.groups)]


def weight_banks(name: str, layer: LayerConfig) -> list[RomBank]:
    """The banks of the layer's weight memory (:class:`~.banks.BankedMemory`), owned by ``name``."""
    width, depth = layer.bits * layer.lanes, max(layer.fan_in * layer.groups, 2)
    return [RomBank(name, b, words, width) for b, words in enumerate(bank_sizes(width, depth))]


def memory_attrs(depth: int, *, rom: bool) -> dict:
    """Synthesis attributes of a memory of ``depth`` words: a small RAM goes to LUT RAM, a small
    ROM to logic (LUTs), anything larger to block RAM (the tools' choice)."""
    if depth > LUT_RAM_MAX_DEPTH:
        return {}
    return {"rom_style": "logic"} if rom else {"ram_style": "distributed"}


def param_rows(layer: LayerConfig, weights: LayerWeights | None) -> list[list[dict]]:
    """Neuron parameter rows: one per lane group, lanes × (bias, threshold)."""
    L = layer.lanes
    if weights is None:
        bias, threshold = [0] * layer.out_channels, [layer.neuron.threshold] * layer.out_channels
    else:
        bias, threshold = weights.bias.tolist(), weights.threshold.tolist()
    return [[{"bias": bias[g * L + l], "threshold": threshold[g * L + l]} for l in range(L)]
            for g in range(layer.groups)]


class WeightWriteSignature(wiring.Signature):
    """Weight memory write port, present when the config gives no weights (§10)."""

    def __init__(self, *, addr_width: int, word_shape):
        super().__init__({"addr": Out(addr_width), "data": Out(word_shape), "en": Out(1)})


class MembraneProbeSignature(wiring.Signature):
    """Read port on the accumulator memory: ``data`` is word ``addr`` one cycle later, while the
    PE is idle (it shares the memory's read port with the scan and the update)."""

    def __init__(self, *, addr_width: int, word_shape):
        super().__init__({"addr": Out(addr_width), "data": In(word_shape)})


class SpikingPE(wiring.Component):
    """Processing element for one layer, specialized by its :class:`LayerConfig`.

    ``weights`` initializes the weight and neuron-parameter memories; without it the PE gets
    a ``weight_write`` port, biases are 0 and every threshold is the layer's scalar one.
    ``probe`` adds a ``membrane_probe`` read port for verification and the readout: after each
    step (while the PE waits for the next token) it reads the accumulators, i.e. every neuron's
    next base ``(r >> s) + b`` (golden ``LayerTrace.bases``), also after a sample's last step.
    ``widths`` overrides
    ``layer.widths(weights)`` (area experiments, e.g. ``layer.widths(weights, weight_bound=8)``).
    ``shared_banks``: weight ROM banks (indices of :func:`weight_banks`) held outside the PE, e.g.
    in a :class:`~.banks.SharedROM` of the network top: the PE reads bank ``b`` through its port
    ``weight_bank<b>`` (:class:`~.banks.BankReadSignature`, words :meth:`weight_bank_init`) with
    the same latency as its own banks.
    """

    def __init__(self, *, layer: LayerConfig, weights: LayerWeights | None = None, probe: bool = False,
                 widths: LayerWidths | None = None, shared_banks=()):
        if not layer.is_hardware:
            raise ValueError(f"Layer {layer.name!r} has scheme fp32, which has no integer hardware")
        if shared_banks and weights is None:
            raise ValueError(f"Layer {layer.name!r}: shared weight banks need the weights (a ROM)")
        self.layer, self.weights, self.probe = layer, weights, probe
        self.banks = weight_banks(layer.name, layer)
        self.shared_banks = sorted(set(shared_banks))
        self.widths = layer.widths(weights) if widths is None else widths
        L, G = layer.lanes, layer.groups
        self.weight_word = data.ArrayLayout(unsigned(layer.bits), L)
        # an accumulator holds u (|u| <= B_U, §5); a probed PE also keeps the last step's base,
        # up to |h'| + |b| (§10)
        bound = self.widths.membrane_bound + (self.widths.bias_bound if probe else 0)
        self.accumulator_width = max(signed_width(bound), self.widths.membrane_width)
        self.membrane_word = data.ArrayLayout(signed(self.accumulator_width), L)
        self.param_word = data.ArrayLayout(data.StructLayout({
            "bias": signed(self.widths.bias_width), "threshold": unsigned(self.widths.threshold_width)}), L)
        self.weight_depth = layer.fan_in * G
        self.neuron_depth = layer.out_height * layer.out_width * G
        self.positions = layer.out_height * layer.out_width
        self.prune = bool(layer.spatial_prune_k)       # SpQuant spatial pruning (§6.1)
        self.count_shape = unsigned(layer.out_channels.bit_length())    # 0 … C active channels
        self.in_layout = event_layout(layer.height, layer.width, layer.in_channels,
                                      activation_shape(layer.activation_bits))
        self.out_layout = event_layout(layer.out_height, layer.out_width, layer.out_channels,
                                       spike_shape(layer.neuron.type, layer.neuron.bits))
        members = {
            "i_spikes": In(stream.Signature(self.in_layout)),
            "o_spikes": Out(stream.Signature(self.out_layout)),
        }
        if weights is None:
            members["weight_write"] = In(WeightWriteSignature(
                addr_width=index_shape(self.weight_depth).width, word_shape=self.weight_word))
        if probe:
            members["membrane_probe"] = In(MembraneProbeSignature(
                addr_width=index_shape(self.neuron_depth).width, word_shape=self.membrane_word))
        for b in self.shared_banks:
            if not 0 <= b < len(self.banks):
                raise ValueError(f"Layer {layer.name!r}: no weight bank {b} (it has {len(self.banks)})")
            members[f"weight_bank{b}"] = Out(BankReadSignature(depth=self.banks[b].depth, width=self.banks[b].width))
        super().__init__(members)

    def weight_bank_init(self, b: int) -> list[int]:
        """Words of weight bank ``b`` (:func:`weight_banks`), lanes packed, lane 0 in the low bits."""
        start = sum(bank.depth for bank in self.banks[:b])
        return packed(self.weight_word, weight_rows(self.layer, self.weights)[start:start + self.banks[b].depth])

    #: taps ahead whose pending write-back a current read takes instead (forwarding); 3 covers
    #: every tap between a read and its write-back (fewer exists only to test the forwarding)
    FORWARDED_TAPS = 3

    #: cycles per step beyond events and lane groups, at most, without output stalls: the scan
    #: pipeline drains (7) after the end token, the update pipeline fills and empties (9)
    STEP_OVERHEAD_CYCLES = 16

    def step_cycles(self, events: int, spikes: int) -> tuple[int, int]:
        """Bounds on the cycles of one step (end token in to end token out) with ``events``
        back-to-back input events and ``spikes`` output spikes, when ``o_spikes`` never stalls:
        at least ``events·k²·G + H'·W'·G`` plus the pipelines' latency. The emitter overlaps
        the update; a firing lane group waits for the previous one's spikes (one cycle each) and
        one more cycle, so each spike costs at most two more cycles."""
        layer = self.layer
        base = events * layer.kernel_size ** 2 * layer.groups + self.neuron_depth
        lo, hi = self.prune_cycles
        return base + 10 + lo, base + self.STEP_OVERHEAD_CYCLES + 2 * spikes + hi

    #: cycles of the spatial-prune pass beyond its H'·W'·G reads and its walk: the count
    #: pipeline (R ▶ D ▶ N1 ▶ C1) drains, the walk's first bin
    PRUNE_OVERHEAD_CYCLES = 6

    @property
    def prune_cycles(self) -> tuple[int, int]:
        """Bounds on the cycles spatial pruning adds to a step (0 without it): the PRUNE pass
        reads every lane group (``H'·W'·G``), then the histogram walk takes ``kth + 1 ≤ C + 1``."""
        if not self.prune:
            return 0, 0
        lo = self.neuron_depth + self.PRUNE_OVERHEAD_CYCLES
        return lo, lo + self.layer.out_channels

    #: cycles from the last lane group issued by the INIT sweep to ``i_spikes.ready``: the update
    #: pipeline writes its last base (R … W), then the FSM moves on
    INIT_DRAIN_CYCLES = 8

    @property
    def cycles_after_reset(self) -> int:
        """Cycles after ``rst`` falls (or power-up) before ``i_spikes.ready`` can rise: the INIT sweep."""
        return self.neuron_depth + self.INIT_DRAIN_CYCLES

    # ---- structure ------------------------------------------------------------------------
    def elaborate(self, platform):
        m = Module()
        mem = self._memories(m)
        st = self._state()
        scan = self._scan_pipeline(m, st, mem)
        upd = self._update_pipeline(m, st, mem)
        self._accumulator_port(m, mem, scan, upd)
        st.out.drive(m, y=st.out_y, x=st.out_x, base=st.out_g * self.layer.lanes)
        self._control(m, st, scan, upd)
        return m

    def _memories(self, m) -> SimpleNamespace:
        """Weight and parameter ROMs, the accumulator RAM, and their ports (§10)."""
        layer = self.layer
        def make(name, shape, depth, init, rom=False):
            # at least 2 words: a 1-word memory has a 0-bit address, which Verilog cannot declare
            depth = max(depth, 2)
            m.submodules[name] = mem = memory.Memory(shape=shape, depth=depth, init=init,
                                                     attrs=memory_attrs(depth, rom=rom))
            return mem
        rom = self.weights is not None
        m.submodules.weights = weights = BankedMemory(
            shape=self.weight_word, depth=max(self.weight_depth, 2), writable=not rom,
            init=weight_rows(layer, self.weights) if rom else [], attrs=memory_attrs(self.weight_depth, rom=rom),
            external=self.shared_banks)
        for b in self.shared_banks:
            wiring.connect(m, getattr(weights, f"bank{b}"), wiring.flipped(getattr(self, f"weight_bank{b}")))
        param_mem = make("params", self.param_word, layer.groups, param_rows(layer, self.weights), rom=True)
        membrane_mem = make("membranes", self.membrane_word, self.neuron_depth, [])
        ports = SimpleNamespace(weights=weights, param_rd=param_mem.read_port(),
                                acc_wr=membrane_mem.write_port(), acc_rd=membrane_mem.read_port())
        if self.prune:   # spatial pruning: each position's count of active channels (§6.1)
            count_mem = make("counts", self.count_shape, self.positions, [])
            ports.count_wr, ports.count_rd = count_mem.write_port(), count_mem.read_port()
        # the accumulator memory's one output register, shared by the scan (M) and update (N1) pipelines
        ports.acc_q = Signal(self.membrane_word)
        with m.If(ports.acc_rd.en):
            m.d.sync += ports.acc_q.eq(ports.acc_rd.data)
        if not rom:
            m.d.comb += [weights.write_addr.eq(self.weight_write.addr), weights.write_data.eq(self.weight_write.data),
                         weights.write_en.eq(self.weight_write.en)]
        if self.probe:   # the probe shares the read port (an idle PE's): no second copy of the memory
            m.d.comb += self.membrane_probe.data.eq(ports.acc_rd.data)
        return ports

    def _state(self) -> SimpleNamespace:
        layer = self.layer
        return SimpleNamespace(
            event=Signal(self.in_layout),                       # input event being scanned
            tap_i=counter(layer.kernel_size), tap_j=counter(layer.kernel_size),
            group=counter(layer.groups),                       # lane group of the scan
            weight_addr=counter(self.weight_depth),
            step=counter(layer.time_steps),                    # time step within the sample
            # neuron update / clear sweep: address, pixel and lane group, in address order
            u_addr=counter(self.neuron_depth), u_y=counter(layer.out_height), u_x=counter(layer.out_width),
            u_g=counter(layer.groups),
            out=SpikeEmitter(self.o_spikes, lanes=layer.lanes),
            out_y=counter(layer.out_height), out_x=counter(layer.out_width), out_g=counter(layer.groups),
            # spatial pruning: the sweep's position y'·W' + x' and the step's k-th smallest count
            **({"u_pos": counter(self.positions), "kth": Signal(self.count_shape)} if self.prune else {}),
        )

    @staticmethod
    def _carry(stage, *names) -> dict:
        """Fields of ``stage`` passed on unchanged to the next stage."""
        return {name: (getattr(stage, name).shape(), getattr(stage, name)) for name in names}

    def _scan_pipeline(self, m, st, mem) -> SimpleNamespace:
        """ISSUE ▶ P1 ▶ P2 ▶ R ▶ D ▶ M ▶ W (module docstring)."""
        layer = self.layer
        G, p, Hp, Wp = layer.groups, layer.padding, layer.out_height, layer.out_width
        addr_shape = index_shape(self.neuron_depth)
        coord = signed(max(len(st.event.y), len(st.event.x)) + 2)
        issue = Signal()
        # P1: output pixel y' = y + p - i, x' = x + p - j (stride 1); P2: its row and column offsets
        p1 = stage(m, {
            "valid": (1, issue), "oy": (coord, st.event.y + p - st.tap_i), "ox": (coord, st.event.x + p - st.tap_j),
            "g": (st.group.shape(), st.group), "waddr": (st.weight_addr.shape(), st.weight_addr),
            "value": (st.event.value.shape(), st.event.value)})
        inside = (p1.oy >= 0) & (p1.oy < Hp) & (p1.ox >= 0) & (p1.ox < Wp)
        p2 = stage(m, {
            "valid": (1, p1.valid & inside), "row": (addr_shape, p1.oy.as_unsigned() * (Wp * G)),
            "col": (addr_shape, p1.ox.as_unsigned() * G + p1.g), **self._carry(p1, "waddr", "value")})
        m.d.comb += mem.weights.read_addr.eq(p2.waddr)   # banked: the word is there two cycles later, in D
        r = stage(m, {"valid": (1, p2.valid), "addr": (addr_shape, p2.row + p2.col),
                                      **self._carry(p2, "value")})
        d = stage(m, self._carry(r, "valid", "addr", "value"))
        # M: read data registered; `hit` marks taps ahead whose write this read missed (module docstring)
        x = stage(m, {**self._carry(d, "valid", "addr", "value"),
                                      "code": (self.weight_word, mem.weights.read_data)})
        w = SimpleNamespace(valid=Signal(name="scan_w_valid"), addr=Signal(addr_shape, name="scan_w_addr"),
                            sum=Signal(self.membrane_word, name="scan_w_sum"))
        written = [stage(m, {"valid": (1, mem.acc_wr.en), "addr": (addr_shape, mem.acc_wr.addr),
                                   "data": (self.membrane_word, mem.acc_wr.data)})]
        written.append(stage(m, self._carry(written[0], "valid", "addr", "data")))
        # now in M, W, just written → next cycle in W, just written, written before
        ahead = [(x, w.sum), (w, written[0].data), (written[0], written[1].data)][:self.FORWARDED_TAPS]
        newest = mem.acc_q
        for i, (now, later) in reversed(list(enumerate(ahead))):
            hit = Signal(name="$signal")
            m.d.sync += hit.eq(now.valid & (now.addr == d.addr))
            newest = self.membrane_word(Mux(hit, later, newest))
        sums = Signal(self.membrane_word)
        for l, mac in enumerate(self._macs(m)):
            m.d.comb += [mac.code.eq(x.code[l]), mac.x.eq(x.value), mac.acc_in.eq(newest[l]), sums[l].eq(mac.acc_out)]
        m.d.sync += [w.valid.eq(x.valid), w.addr.eq(x.addr), w.sum.eq(sums)]
        return SimpleNamespace(issue=issue, reading=r.valid, read_addr=r.addr, write=w,
                               busy=p1.valid | p2.valid | r.valid | d.valid | x.valid | w.valid)

    def _macs(self, m) -> list:
        """One MAC (of the scheme's kind only) per lane."""
        layer = self.layer
        macs = [MAC_FOR_SCHEME[layer.scheme](weight_bits=layer.bits, activation_bits=layer.activation_bits,
                                             acc_width=self.accumulator_width) for _ in range(layer.lanes)]
        for l, mac in enumerate(macs):
            m.submodules[f"mac{l}"] = mac
        return macs

    def _update_pipeline(self, m, st, mem) -> SimpleNamespace:
        """ISSUE ▶ R ▶ D ▶ N1 ▶ N2 ▶ N3 ▶ N4 ▶ W (module docstring); holds while a firing group waits for
        the emitter. ``quiet`` (the INIT sweep) suppresses spikes and writes the base ``b``."""
        layer, w, L = self.layer, self.widths, self.layer.lanes
        issue, quiet, hold = Signal(), Signal(), Signal()
        tally = Signal()
        go = ~hold
        # spatial pruning: `tally` issues the PRUNE pass (read and count only); `pos` reads the counts
        where = ("addr", "y", "x", "g") + (("tally", "pos") if self.prune else ())
        r = stage(m, {"valid": (1, issue), "quiet": (1, quiet), **self._carry(
            SimpleNamespace(addr=st.u_addr, y=st.u_y, x=st.u_x, g=st.u_g, tally=tally, pos=getattr(st, "u_pos", None)), *where)},
                  en=go)
        m.d.comb += [mem.param_rd.addr.eq(r.g), mem.param_rd.en.eq(go), mem.acc_rd.en.eq(go)]
        d = stage(m, self._carry(r, "valid", "quiet", *where), en=go)
        counts = {}
        if self.prune:
            m.d.comb += [mem.count_rd.addr.eq(r.pos), mem.count_rd.en.eq(go)]
            counts = {"count": (self.count_shape, mem.count_rd.data)}
        n1 = stage(m, {**self._carry(d, "valid", "quiet", *where),
                             "param": (self.param_word, mem.param_rd.data), **counts}, en=go)
        def lanes(shape):
            return data.ArrayLayout(shape, L)
        acc, membrane = lanes(signed(self.accumulator_width)), lanes(signed(w.membrane_width))
        fired, bases = Signal(lanes(spike_shape(layer.neuron.type, layer.neuron.bits))), Signal(acc)
        stored = lanes(stored_shape(layer.membrane, w.membrane_width))
        up, down, h_next, q = Signal(L), Signal(L), Signal(membrane), Signal(stored)
        params = {"threshold": (lanes(unsigned(w.threshold_width)), Cat(*(n1.param[l].threshold for l in range(L)))),
                  "bias": (lanes(signed(w.bias_width)), Cat(*(n1.param[l].bias for l in range(L))))}
        # N1: u is the accumulator memory's output register (0 at a pruned position, §6.1)
        u = self._pruned_u(m, st, n1, mem.acc_q, acc) if self.prune else mem.acc_q
        n2 = stage(m, {**self._carry(n1, "valid", "quiet", *where), **params,
                             "u": (acc, u), "up": (L, up), "down": (L, down)}, en=go)
        n3 = stage(m, {**self._carry(n2, "valid", "quiet", "threshold", "bias", *where),
                             "h_next": (membrane, h_next), "spikes": (fired.shape(), fired),
                             "any": (1, (n2.up.any() | n2.down.any()) & ~n2.quiet)}, en=go)
        n4 = stage(m, {**self._carry(n3, "valid", "quiet", "threshold", "bias", "spikes", "any", *where),
                             "q": (stored, q)}, en=go)
        wb = stage(m, {**self._carry(n4, "valid", "spikes", "any", *where), "base": (acc, bases)}, en=go)
        # the base after a sample's last step is b (step 0 ignores the membrane), unless a probe reads it
        last = (st.step == layer.time_steps - 1) if not self.probe else 0
        for l in range(L):
            integrate, register = self._neuron_parts(m, l)
            spike, h = fire_resolve(layer.neuron.reset, n2.u[l], n2.threshold[l], n2.up[l], n2.down[l],
                                    relu_bits=layer.neuron.bits)
            m.d.comb += [Cat(up[l], down[l]).eq(Cat(*fire_compare(layer.neuron.type, u[l], n1.param[l].threshold))),
                         fired[l].eq(spike), h_next[l].eq(h),
                         register.h_next.eq(n3.h_next[l]), register.threshold.eq(n3.threshold[l]), q[l].eq(register.store),
                         integrate.first_step.eq(n4.quiet | last), integrate.stored.eq(n4.q[l]),
                         integrate.bias.eq(n4.bias[l]), integrate.threshold.eq(n4.threshold[l]),
                         bases[l].eq(integrate.u)]
        # W: the emitter takes a firing group only once it has sent the previous one
        m.d.comb += hold.eq(wb.valid & wb.any & st.out.fired.any())
        retire = wb.valid & go
        with m.If(retire & wb.any):
            st.out.latch(m, [wb.spikes[l] for l in range(L)])
            m.d.sync += [st.out_y.eq(wb.y), st.out_x.eq(wb.x), st.out_g.eq(wb.g)]
        return SimpleNamespace(issue=issue, quiet=quiet, go=go, reading=(r.valid | r.tally) if self.prune else r.valid,
                               read_addr=r.addr, write=retire, write_addr=wb.addr, base=wb.base,
                               busy=r.valid | d.valid | n1.valid | n2.valid | n3.valid | n4.valid | wb.valid,
                               tally=tally, counted=self._tally(m, (r, d, n1), mem) if self.prune else None)

    def _pruned_u(self, m, st, n1, acc_q, shape):
        """N1 of the update: u, or 0 at a position whose count is at most the k-th smallest (§6.1)."""
        u = Signal(shape)
        m.d.comb += u.eq(Mux(n1.count <= st.kth, 0, acc_q))
        return u

    def _tally(self, m, stages, mem):
        """The PRUNE pass behind N1: the lanes with ``Q(u) ≠ 0`` (``2u ≥ θ`` or ``2u < −θ``) are
        counted (C1), summed over a position's lane groups, written to the count memory and
        into a histogram of counts (:meth:`_rank`). Returns the pass's busy signal."""
        layer, n1 = self.layer, stages[-1]
        active = [(mem.acc_q[l] << 1 >= n1.param[l].threshold) | ((mem.acc_q[l] << 1) < -n1.param[l].threshold)
                  for l in range(layer.lanes)]
        c1 = stage(m, {"valid": (1, n1.tally), "last": (1, n1.g == layer.groups - 1), "pos": (n1.pos.shape(), n1.pos),
                       "n": (self.count_shape, sum(active))})
        partial, total = Signal(self.count_shape), Signal(self.count_shape)
        m.d.comb += total.eq(partial + c1.n)
        with m.If(c1.valid):
            m.d.sync += partial.eq(Mux(c1.last, 0, total))
        m.d.comb += [mem.count_wr.addr.eq(c1.pos), mem.count_wr.data.eq(total), mem.count_wr.en.eq(c1.valid & c1.last)]
        busy = c1.valid
        for earlier in stages:
            busy = busy | earlier.tally
        return SimpleNamespace(busy=busy, done=c1.valid & c1.last, count=total)

    def _rank(self, m, st, counted) -> SimpleNamespace:
        """Histogram of the step's counts (one bin per count 0 … C) and its walk: bin ``v`` per
        cycle until the positions so far reach k; then ``kth = v`` and the bins clear (§6.1)."""
        C, k = self.layer.out_channels, self.layer.spatial_prune_k
        bins = Array(Signal(range(self.positions + 1), name=f"bin{v}") for v in range(C + 1))
        with m.If(counted.done):
            m.d.sync += bins[counted.count].eq(bins[counted.count] + 1)
        value, seen, walk, found = counter(C + 1), Signal(range(self.positions + 1)), Signal(), Signal()
        reached = Signal(range(2 * self.positions + 1))
        m.d.comb += [reached.eq(seen + bins[value]), found.eq(walk & (reached >= k))]
        with m.If(found):
            m.d.sync += [st.kth.eq(value), value.eq(0), seen.eq(0), *(b.eq(0) for b in bins)]
        with m.Elif(walk):
            m.d.sync += [value.eq(value + 1), seen.eq(reached)]
        return SimpleNamespace(walk=walk, found=found)

    def _neuron_parts(self, m, lane: int):
        """A lane's membrane register (store) and :class:`Integrate` (restore, leak, add bias; its
        current input stays 0: it computes the next step's base, §10). Firing is inline, in two stages."""
        layer, w = self.layer, self.widths
        widths = dict(membrane_width=w.membrane_width, threshold_width=w.threshold_width)
        m.submodules[f"integrate{lane}"] = integrate = Integrate(
            membrane=layer.membrane, leak_shift=layer.neuron.leak_shift, current_width=1,
            bias_width=w.bias_width, membrane_width=self.accumulator_width, threshold_width=w.threshold_width)
        m.submodules[f"register{lane}"] = register = membrane_register(membrane=layer.membrane, **widths)
        return integrate, register

    def _accumulator_port(self, m, mem, scan, upd) -> None:
        """The accumulator memory's read address and its one write port: scan write-back or update base."""
        other = Mux(scan.reading, scan.read_addr, self.membrane_probe.addr) if self.probe else scan.read_addr
        m.d.comb += mem.acc_rd.addr.eq(Mux(upd.reading, upd.read_addr, other))
        with m.If(scan.write.valid):
            m.d.comb += [mem.acc_wr.addr.eq(scan.write.addr), mem.acc_wr.data.eq(scan.write.sum), mem.acc_wr.en.eq(1)]
        with m.Elif(upd.write):
            m.d.comb += [mem.acc_wr.addr.eq(upd.write_addr), mem.acc_wr.data.eq(upd.base), mem.acc_wr.en.eq(1)]

    def _prune_states(self, m, upd, rank, sweep_address, last_u) -> None:
        """PRUNE (every lane group through R ▶ D ▶ N1, counted in C1, nothing written) ▶ PRUNE_DRAIN
        ▶ WALK (the histogram up to the k-th smallest count) ▶ UPDATE (§6.1)."""
        with m.State("PRUNE"):
            m.d.comb += upd.tally.eq(1)
            sweep_address()
            with m.If(last_u):
                m.next = "PRUNE_DRAIN"
        with m.State("PRUNE_DRAIN"):
            with m.If(~upd.counted.busy):
                m.next = "WALK"
        with m.State("WALK"):
            m.d.comb += rank.walk.eq(1)
            with m.If(rank.found):
                m.next = "UPDATE"

    def _control(self, m, st, scan, upd) -> None:
        """The phase FSM (see the module docstring)."""
        layer = self.layer
        G, k, Hp, Wp = layer.groups, layer.kernel_size, layer.out_height, layer.out_width
        payload = self.i_spikes.payload
        last_u = st.u_addr == self.neuron_depth - 1

        # a probed PE keeps its last step's bases for the probe until the next sample's first token
        stale = Signal()

        def accept():
            """Take the next input token: an event starts a scan, the end token the update."""
            m.d.comb += self.i_spikes.ready.eq(~stale)
            with m.If(stale):
                with m.If(self.i_spikes.valid):
                    m.next = "INIT"
            with m.Elif(self.i_spikes.valid):
                with m.If(payload.end):
                    m.next = "DRAIN"
                with m.Else():
                    m.d.sync += [st.event.eq(payload), st.weight_addr.eq(payload.c * (k * k * G)),
                                 st.tap_i.eq(0), st.tap_j.eq(0), st.group.eq(0)]
                    m.next = "SCAN"

        def sweep_address():
            advance(m, [(st.u_g, G), (st.u_x, Wp), (st.u_y, Hp)])
            m.d.sync += st.u_addr.eq(Mux(last_u, 0, st.u_addr + 1))
            if self.prune:
                with m.If(st.u_g == G - 1):
                    m.d.sync += st.u_pos.eq(Mux(last_u, 0, st.u_pos + 1))

        rank = self._rank(m, st, upd.counted) if self.prune else None
        with m.FSM(name="phase"):
            with m.State("INIT"):
                # after reset, or before a probed PE's next sample: every base to b (spikes suppressed)
                m.d.comb += [upd.issue.eq(1), upd.quiet.eq(1)]
                sweep_address()
                with m.If(last_u):
                    m.next = "INIT_DRAIN"
            with m.State("INIT_DRAIN"):
                with m.If(~upd.busy):
                    m.d.sync += stale.eq(0)
                    m.next = "ACCEPT"
            with m.State("ACCEPT"):
                accept()
            with m.State("SCAN"):
                # one tap × lane group per cycle into the scan pipeline
                m.d.comb += scan.issue.eq(1)
                m.d.sync += st.weight_addr.eq(st.weight_addr + 1)
                advance(m, [(st.group, G), (st.tap_j, k), (st.tap_i, k)])
                with m.If((st.tap_i == k - 1) & (st.tap_j == k - 1) & (st.group == G - 1)):
                    m.next = "ACCEPT"
                    accept()  # back-to-back events: the next scan starts without a gap
            with m.State("DRAIN"):
                with m.If(~scan.busy):
                    m.next = "PRUNE" if self.prune else "UPDATE"
            if self.prune:
                self._prune_states(m, upd, rank, sweep_address, last_u)
            with m.State("UPDATE"):
                m.d.comb += upd.issue.eq(1)
                with m.If(upd.go):
                    sweep_address()
                    with m.If(last_u):
                        m.next = "FLUSH"
            with m.State("FLUSH"):
                with m.If(~upd.busy & ~st.out.fired.any()):
                    m.next = "END"
            with m.State("END"):
                with st.out.end(m):
                    last_step = st.step == layer.time_steps - 1
                    m.d.sync += st.step.eq(Mux(last_step, 0, st.step + 1))
                    if self.probe:
                        m.d.sync += stale.eq(last_step)
                    m.next = "ACCEPT"
        # the emitter runs beside the update pipeline: one event per cycle while spikes are latched
        with m.If(st.out.fired.any()):
            with st.out.emit(m):
                pass
