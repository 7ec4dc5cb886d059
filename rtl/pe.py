"""The spiking processing element (PE) of one conv/linear layer (docs/arithmetic.md §7, §10).

Event-driven: every input event costs ``k²·G`` cycles (``G = out_channels / lanes``) when
events arrive back to back (one more after an idle gap), every step ends with a neuron update
of ``2`` cycles per lane group plus one per output spike, and two cycles for the end tokens.
Dense fan-in never shows up in the cycle count.

After reset (and at power-up) the PE first clears its current memory, one word per cycle
(``cycles_after_reset`` = ``H'·W'·G`` cycles, ``i_spikes.ready`` low): a reset in the middle of
a step leaves partial sums there. Membranes need no clearing (step 0 ignores them, §4.1); the
weight and parameter memories are never written at run time.

Phases, per time step::

    CLEAR (after reset) ─▶ ACCEPT ──event──▶ SCAN (k²·G cycles: read weights + currents, MAC, write currents;
      ▲  │               its last cycle accepts the next token like ACCEPT does)
      │  └──end token──▶ UPDATE_READ ▶ UPDATE_CALC ▶ [EMIT: one cycle per spike] ▶ next group …
      └──────────────── END (end token out) ◀── after the last lane group
"""

from __future__ import annotations

from types import SimpleNamespace

from amaranth import Mux, Signal, signed, unsigned
from amaranth.hdl import Module
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..golden.config import LayerConfig, LayerWeights, LayerWidths
from .events import SpikeEmitter, advance, counter, event_layout, index_shape
from .mac import MAC_FOR_SCHEME, activation_shape
from .neuron import NeuronLane, spike_shape

__all__ = ["weight_rows", "param_rows", "SpikingPE", "WeightWriteSignature", "MembraneProbeSignature"]


def weight_rows(layer: LayerConfig, weights: LayerWeights) -> list[list[int]]:
    """Weight memory rows (§10): row ((c·k + i)·k + j)·G + g holds channels g·L … g·L+L-1."""
    L, k, codes = layer.lanes, layer.kernel_size, weights.codes  # codes: [O, C, k, k]
    return [[int(codes[g * L + l, c, i, j]) for l in range(L)]
            for c in range(layer.in_channels) for i in range(k) for j in range(k)
            for g in range(layer.groups)]


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
    """Debug read port on the membrane memory: ``data`` is word ``addr`` one cycle later."""

    def __init__(self, *, addr_width: int, word_shape):
        super().__init__({"addr": Out(addr_width), "data": In(word_shape)})


class SpikingPE(wiring.Component):
    """Processing element for one layer, specialized by its :class:`LayerConfig`.

    ``weights`` initializes the weight and neuron-parameter memories; without it the PE gets
    a ``weight_write`` port, biases are 0 and every threshold is the layer's scalar one.
    ``probe`` adds a ``membrane_probe`` read port for verification. ``widths`` overrides
    ``layer.widths(weights)`` (area experiments, e.g. ``layer.widths(weights, weight_bound=8)``).
    """

    def __init__(self, *, layer: LayerConfig, weights: LayerWeights | None = None, probe: bool = False,
                 widths: LayerWidths | None = None):
        if not layer.is_hardware:
            raise ValueError(f"Layer {layer.name!r} has scheme fp32, which has no integer hardware")
        self.layer, self.weights, self.probe = layer, weights, probe
        self.widths = layer.widths(weights) if widths is None else widths
        L, G = layer.lanes, layer.groups
        self.weight_word = data.ArrayLayout(unsigned(layer.bits), L)
        self.current_word = data.ArrayLayout(signed(self.widths.current_width), L)
        stored_width = 2 if layer.membrane == "ternary" else self.widths.membrane_width
        self.membrane_word = data.ArrayLayout(signed(stored_width), L)
        self.param_word = data.ArrayLayout(data.StructLayout({
            "bias": signed(self.widths.bias_width), "threshold": unsigned(self.widths.threshold_width)}), L)
        self.weight_depth = layer.fan_in * G
        self.neuron_depth = layer.out_height * layer.out_width * G
        self.in_layout = event_layout(layer.height, layer.width, layer.in_channels,
                                      activation_shape(layer.activation_bits))
        self.out_layout = event_layout(layer.out_height, layer.out_width, layer.out_channels,
                                       spike_shape(layer.neuron.type))
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
        super().__init__(members)

    @property
    def cycles_after_reset(self) -> int:
        """Cycles after ``rst`` falls (or power-up) before ``i_spikes.ready`` can rise: the sweep."""
        return self.neuron_depth

    # ---- structure ------------------------------------------------------------------------
    def elaborate(self, platform):
        m = Module()
        mem = self._memories(m)
        macs, lanes = self._lanes(m)
        st = self._state()
        self._addressing(m, st)
        self._accumulate(m, st, mem, macs)
        self._neuron_update(m, st, mem, lanes)
        # o_spikes: the latched lane group's spikes, lowest lane first
        st.out.drive(m, y=st.out_y, x=st.out_x, base=st.out_g * self.layer.lanes)
        self._control(m, st, mem, lanes)
        return m

    def _memories(self, m) -> SimpleNamespace:
        """Weight and parameter ROMs, current and membrane RAMs, and their ports (§10)."""
        layer = self.layer
        m.submodules.weights = weight_mem = memory.Memory(
            shape=self.weight_word, depth=self.weight_depth,
            init=weight_rows(layer, self.weights) if self.weights is not None else [])
        m.submodules.params = param_mem = memory.Memory(
            shape=self.param_word, depth=layer.groups, init=param_rows(layer, self.weights))
        m.submodules.currents = current_mem = memory.Memory(shape=self.current_word, depth=self.neuron_depth, init=[])
        m.submodules.membranes = membrane_mem = memory.Memory(shape=self.membrane_word, depth=self.neuron_depth, init=[])
        current_wr = current_mem.write_port()
        ports = SimpleNamespace(
            weight_rd=weight_mem.read_port(), param_rd=param_mem.read_port(), current_wr=current_wr,
            # transparent: a MAC write-back and a read of the same address in one cycle see the sum
            current_rd=current_mem.read_port(transparent_for=(current_wr,)),
            membrane_wr=membrane_mem.write_port(), membrane_rd=membrane_mem.read_port())
        if self.weights is None:
            weight_wr = weight_mem.write_port()
            m.d.comb += [weight_wr.addr.eq(self.weight_write.addr), weight_wr.data.eq(self.weight_write.data),
                         weight_wr.en.eq(self.weight_write.en)]
        if self.probe:
            probe_rd = membrane_mem.read_port()
            m.d.comb += [probe_rd.addr.eq(self.membrane_probe.addr), self.membrane_probe.data.eq(probe_rd.data)]
        return ports

    def _lanes(self, m):
        """One MAC (of the scheme's kind only) and one neuron lane per lane."""
        layer, w = self.layer, self.widths
        mac_cls = MAC_FOR_SCHEME[layer.scheme]
        macs, lanes = [], []
        for l in range(layer.lanes):
            macs.append(mac_cls(weight_bits=layer.bits, activation_bits=layer.activation_bits,
                                acc_width=w.current_width))
            lanes.append(NeuronLane(
                neuron_type=layer.neuron.type, membrane=layer.membrane, reset=layer.neuron.reset,
                leak_shift=layer.neuron.leak_shift, current_width=w.current_width,
                membrane_width=w.membrane_width, bias_width=w.bias_width, threshold_width=w.threshold_width))
            m.submodules[f"mac{l}"] = macs[l]
            m.submodules[f"neuron{l}"] = lanes[l]
        return macs, lanes

    def _state(self) -> SimpleNamespace:
        layer = self.layer
        return SimpleNamespace(
            event=Signal(self.in_layout),                       # input event being scanned
            tap_i=counter(layer.kernel_size), tap_j=counter(layer.kernel_size),
            group=counter(layer.groups),                       # lane group, in scan and update
            weight_addr=counter(self.weight_depth),
            pixel_y=counter(layer.out_height), pixel_x=counter(layer.out_width),
            step=counter(layer.time_steps),                    # time step within the sample
            acc_valid=Signal(),                                 # MAC stage: write back this cycle
            acc_addr=counter(self.neuron_depth),
            acc_value=Signal.like(self.i_spikes.payload.value),
            out=SpikeEmitter(self.o_spikes, lanes=layer.lanes),
            out_y=counter(layer.out_height), out_x=counter(layer.out_width), out_g=counter(layer.groups),
        )

    def _addressing(self, m, st) -> None:
        """Scan taps: output pixel y' = y + p - i, x' = x + p - j (stride 1) and its address;
        update: the address of (pixel_y, pixel_x, group)."""
        layer = self.layer
        G, k, p, Hp, Wp = layer.groups, layer.kernel_size, layer.padding, layer.out_height, layer.out_width
        oy = Signal(signed(len(st.event.y) + 2))
        ox = Signal(signed(len(st.event.x) + 2))
        m.d.comb += [oy.eq(st.event.y + p - st.tap_i), ox.eq(st.event.x + p - st.tap_j)]
        st.tap_valid = (oy >= 0) & (oy < Hp) & (ox >= 0) & (ox < Wp)
        st.tap_addr = (oy * (Wp * G) + ox * G + st.group)[:len(st.acc_addr)]
        st.pixel_addr = (st.pixel_y * (Wp * G) + st.pixel_x * G + st.group)[:len(st.acc_addr)]
        st.last_tap = (st.tap_i == k - 1) & (st.tap_j == k - 1) & (st.group == G - 1)
        st.last_group = (st.pixel_y == Hp - 1) & (st.pixel_x == Wp - 1) & (st.group == G - 1)

    def _accumulate(self, m, st, mem, macs) -> None:
        """MAC stage: the cycle after a scan read, add the products and write the currents back."""
        m.d.sync += st.acc_valid.eq(0)
        for l, mac in enumerate(macs):
            m.d.comb += [mac.code.eq(mem.weight_rd.data[l]), mac.x.eq(st.acc_value),
                         mac.acc_in.eq(mem.current_rd.data[l]), mem.current_wr.data[l].eq(mac.acc_out)]
        m.d.comb += [mem.current_wr.addr.eq(st.acc_addr), mem.current_wr.en.eq(st.acc_valid),
                     mem.weight_rd.addr.eq(st.weight_addr)]

    def _neuron_update(self, m, st, mem, lanes) -> None:
        """Neuron lanes see the currents, membranes and parameters of one lane group."""
        for l, lane in enumerate(lanes):
            m.d.comb += [
                lane.first_step.eq(st.step == 0),
                lane.stored.eq(mem.membrane_rd.data[l]),
                lane.current.eq(mem.current_rd.data[l]),
                lane.bias.eq(mem.param_rd.data[l].bias),
                lane.threshold.eq(mem.param_rd.data[l].threshold),
                mem.membrane_wr.data[l].eq(lane.store),
            ]
        m.d.comb += [mem.membrane_rd.addr.eq(st.pixel_addr), mem.param_rd.addr.eq(st.group)]

    def _control(self, m, st, mem, lanes) -> None:
        """The phase FSM (see the module docstring)."""
        layer = self.layer
        G, k, Hp, Wp = layer.groups, layer.kernel_size, layer.out_height, layer.out_width
        payload = self.i_spikes.payload

        def accept():
            """Take the next input token: an event starts a scan, the end token the update."""
            m.d.comb += self.i_spikes.ready.eq(1)
            with m.If(self.i_spikes.valid):
                with m.If(payload.end):
                    m.next = "UPDATE_READ"
                with m.Else():
                    m.d.sync += [st.event.eq(payload), st.weight_addr.eq(payload.c * (k * k * G)),
                                 st.tap_i.eq(0), st.tap_j.eq(0), st.group.eq(0)]
                    m.next = "SCAN"

        def clear_current():
            """Zero the current word of (pixel_y, pixel_x, group)."""
            m.d.comb += [mem.current_wr.addr.eq(st.pixel_addr), mem.current_wr.en.eq(1),
                         *(mem.current_wr.data[l].eq(0) for l in range(layer.lanes))]

        def leave_group():
            """After a lane group's update: on to the next group in address order, or END."""
            with m.If(st.last_group):
                m.next = "END"
            with m.Else():
                m.next = "UPDATE_READ"
                advance(m, [(st.group, G), (st.pixel_x, Wp), (st.pixel_y, Hp)])

        with m.FSM(name="phase"):
            with m.State("CLEAR"):
                # after reset: zero every current word (a reset mid-step leaves partial sums)
                clear_current()
                advance(m, [(st.group, G), (st.pixel_x, Wp), (st.pixel_y, Hp)])
                with m.If(st.last_group):
                    m.next = "ACCEPT"
            with m.State("ACCEPT"):
                m.d.comb += mem.current_rd.addr.eq(st.pixel_addr)
                m.d.sync += [st.group.eq(0), st.pixel_x.eq(0), st.pixel_y.eq(0)]
                accept()
            with m.State("SCAN"):
                # One tap × lane group per cycle; the MAC stage writes it back next cycle.
                m.d.comb += mem.current_rd.addr.eq(st.tap_addr)
                m.d.sync += [st.acc_valid.eq(st.tap_valid), st.acc_addr.eq(st.tap_addr),
                             st.acc_value.eq(st.event.value), st.weight_addr.eq(st.weight_addr + 1)]
                advance(m, [(st.group, G), (st.tap_j, k), (st.tap_i, k)])
                with m.If(st.last_tap):
                    m.next = "ACCEPT"
                    accept()  # back-to-back events: the next scan starts without a gap
            with m.State("UPDATE_READ"):
                m.d.comb += mem.current_rd.addr.eq(st.pixel_addr)
                m.next = "UPDATE_CALC"
            with m.State("UPDATE_CALC"):
                # Read data of (pixel, group) is valid: store membranes, clear currents, latch spikes.
                m.d.comb += [mem.membrane_wr.addr.eq(st.pixel_addr), mem.membrane_wr.en.eq(1)]
                clear_current()
                fired = st.out.latch(m, [lane.spike for lane in lanes])
                m.d.sync += [st.out_y.eq(st.pixel_y), st.out_x.eq(st.pixel_x), st.out_g.eq(st.group)]
                with m.If(fired):
                    m.next = "EMIT"
                with m.Else():
                    leave_group()
            with m.State("EMIT"):
                with st.out.emit(m):
                    leave_group()
            with m.State("END"):
                with st.out.end(m):
                    m.d.sync += st.step.eq(Mux(st.step == layer.time_steps - 1, 0, st.step + 1))
                    m.next = "ACCEPT"
