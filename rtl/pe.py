"""The spiking processing element (PE) of one conv/linear layer (docs/arithmetic.md §7, §10).

Event-driven: every input event costs ``1 + k²·G`` cycles (``G = out_channels / lanes``),
every step ends with a neuron update of ``2`` cycles per lane group plus one per output spike.
Dense fan-in never shows up in the cycle count.

Phases, per time step::

    ACCEPT ──event──▶ SCAN (k²·G cycles: read weights + currents, MAC, write currents) ─┐
      ▲  └──end token──▶ UPDATE_READ ▶ UPDATE_CALC ▶ EMIT (one cycle per spike) ─...─┐  │
      └──────────────────────────── END (end token out) ◀─────────────────────────────┘◀─┘
"""

from __future__ import annotations

from amaranth import Cat, Mux, Signal, signed, unsigned
from amaranth.hdl import Module
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..golden.config import LayerConfig, LayerWeights
from .mac import MAC_FOR_SCHEME, activation_shape
from .neuron import NeuronLane, spike_shape

__all__ = ["event_layout", "weight_rows", "param_rows", "SpikingPE", "WeightWriteSignature", "MembraneProbeSignature"]


def _index_shape(n: int):
    """Unsigned shape holding 0 … n-1, at least 1 bit (no zero-width ports or registers)."""
    return unsigned(max((n - 1).bit_length(), 1))


def _counter(n: int) -> Signal:
    return Signal(_index_shape(n))


def event_layout(height: int, width: int, channels: int, value_shape) -> data.StructLayout:
    """Stream payload of spike events: pixel (y, x), channel c, value, and the end-of-step flag."""
    return data.StructLayout({
        "y": _index_shape(height), "x": _index_shape(width), "c": _index_shape(channels),
        "value": value_shape, "end": 1,
    })


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
    ``probe`` adds a ``membrane_probe`` read port for verification.
    """

    def __init__(self, *, layer: LayerConfig, weights: LayerWeights | None = None, probe: bool = False):
        if not layer.is_hardware:
            raise ValueError(f"Layer {layer.name!r} has scheme fp32, which has no integer hardware")
        self.layer, self.weights, self.probe = layer, weights, probe
        self.widths = layer.widths(weights)
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
                addr_width=_index_shape(self.weight_depth).width, word_shape=self.weight_word))
        if probe:
            members["membrane_probe"] = In(MembraneProbeSignature(
                addr_width=_index_shape(self.neuron_depth).width, word_shape=self.membrane_word))
        super().__init__(members)

    # ---- structure ------------------------------------------------------------------------
    def elaborate(self, platform):
        m = Module()
        layer = self.layer
        L, G, k, p = layer.lanes, layer.groups, layer.kernel_size, layer.padding
        Hp, Wp = layer.out_height, layer.out_width

        m.submodules.weights = weight_mem = memory.Memory(
            shape=self.weight_word, depth=self.weight_depth,
            init=weight_rows(layer, self.weights) if self.weights is not None else [])
        m.submodules.params = param_mem = memory.Memory(
            shape=self.param_word, depth=G, init=param_rows(layer, self.weights))
        m.submodules.currents = current_mem = memory.Memory(shape=self.current_word, depth=self.neuron_depth, init=[])
        m.submodules.membranes = membrane_mem = memory.Memory(shape=self.membrane_word, depth=self.neuron_depth, init=[])

        weight_rd = weight_mem.read_port()
        param_rd = param_mem.read_port()
        current_wr = current_mem.write_port()
        current_rd = current_mem.read_port(transparent_for=(current_wr,))
        membrane_wr = membrane_mem.write_port()
        membrane_rd = membrane_mem.read_port()
        if self.weights is None:
            weight_wr = weight_mem.write_port()
            m.d.comb += [weight_wr.addr.eq(self.weight_write.addr), weight_wr.data.eq(self.weight_write.data),
                         weight_wr.en.eq(self.weight_write.en)]
        if self.probe:
            probe_rd = membrane_mem.read_port()
            m.d.comb += [probe_rd.addr.eq(self.membrane_probe.addr), self.membrane_probe.data.eq(probe_rd.data)]

        # Lane datapaths: one MAC and one neuron per lane.
        mac_cls = MAC_FOR_SCHEME[layer.scheme]
        w = self.widths
        macs = [mac_cls(weight_bits=layer.bits, activation_bits=layer.activation_bits, acc_width=w.current_width)
                for _ in range(L)]
        lanes = [NeuronLane(neuron_type=layer.neuron.type, membrane=layer.membrane, reset=layer.neuron.reset,
                            leak_shift=layer.neuron.leak_shift, current_width=w.current_width,
                            membrane_width=w.membrane_width, bias_width=w.bias_width,
                            threshold_width=w.threshold_width) for _ in range(L)]
        for l in range(L):
            m.submodules[f"mac{l}"] = macs[l]
            m.submodules[f"neuron{l}"] = lanes[l]

        # ---- state --------------------------------------------------------------------------
        event = Signal(self.in_layout)                 # latched input event
        tap_i = _counter(k)                       # kernel row
        tap_j = _counter(k)                       # kernel column
        group = _counter(G)                       # lane group
        weight_addr = _counter(self.weight_depth)
        pixel_y = _counter(Hp)
        pixel_x = _counter(Wp)
        step = _counter(layer.time_steps)
        acc_valid = Signal()                           # MAC stage holds a read to write back
        acc_addr = _counter(self.neuron_depth)
        spikes = Signal(data.ArrayLayout(spike_shape(layer.neuron.type), L))
        out_y, out_x, out_g = Signal.like(pixel_y), Signal.like(pixel_x), Signal.like(group)

        # Output pixel of the current tap: y' = y + p - i, x' = x + p - j (stride 1).
        oy = Signal(signed(len(event.y) + 2))
        ox = Signal(signed(len(event.x) + 2))
        m.d.comb += [oy.eq(event.y + p - tap_i), ox.eq(event.x + p - tap_j)]
        tap_valid = (oy >= 0) & (oy < Hp) & (ox >= 0) & (ox < Wp)
        tap_addr = (oy * (Wp * G) + ox * G + group)[:len(acc_addr)]
        pixel_addr = (pixel_y * (Wp * G) + pixel_x * G + group)[:len(acc_addr)]
        last_tap = (tap_i == k - 1) & (tap_j == k - 1) & (group == G - 1)
        last_group = (pixel_y == Hp - 1) & (pixel_x == Wp - 1) & (group == G - 1)

        # MAC stage: the cycle after a SCAN read, add the products and write the currents back.
        m.d.sync += acc_valid.eq(0)
        for l in range(L):
            m.d.comb += [macs[l].code.eq(weight_rd.data[l]), macs[l].x.eq(event.value),
                         macs[l].acc_in.eq(current_rd.data[l]), current_wr.data[l].eq(macs[l].acc_out)]
        m.d.comb += [current_wr.addr.eq(acc_addr), current_wr.en.eq(acc_valid)]

        # Neuron lanes read currents, membranes and parameters of one lane group.
        for l in range(L):
            m.d.comb += [
                lanes[l].first_step.eq(step == 0),
                lanes[l].stored.eq(membrane_rd.data[l]),
                lanes[l].current.eq(current_rd.data[l]),
                lanes[l].bias.eq(param_rd.data[l].bias),
                lanes[l].threshold.eq(param_rd.data[l].threshold),
                membrane_wr.data[l].eq(lanes[l].store),
            ]
        m.d.comb += [membrane_rd.addr.eq(pixel_addr), param_rd.addr.eq(group),
                     weight_rd.addr.eq(weight_addr)]

        # Lanes that fired, the lowest of them (emitted first), and whether others remain.
        fired = Cat(*(spikes[l] != 0 for l in range(L)))
        first_lane = _counter(L)
        for l in reversed(range(L)):
            with m.If(fired[l]):
                m.d.comb += first_lane.eq(l)
        last_spike = (fired & (fired - 1)) == 0          # clearing the lowest bit leaves none

        m.d.comb += self.o_spikes.payload.y.eq(out_y)
        m.d.comb += self.o_spikes.payload.x.eq(out_x)
        m.d.comb += self.o_spikes.payload.c.eq(out_g * L + first_lane)
        m.d.comb += self.o_spikes.payload.value.eq(spikes[first_lane])

        def leave_group():
            """After a lane group's update: on to the next group in address order, or END."""
            with m.If(last_group):
                m.next = "END"
            with m.Else():
                m.next = "UPDATE_READ"
                with m.If(group == G - 1):
                    m.d.sync += group.eq(0)
                    with m.If(pixel_x == Wp - 1):
                        m.d.sync += [pixel_x.eq(0), pixel_y.eq(pixel_y + 1)]
                    with m.Else():
                        m.d.sync += pixel_x.eq(pixel_x + 1)
                with m.Else():
                    m.d.sync += group.eq(group + 1)

        with m.FSM(name="phase"):
            with m.State("ACCEPT"):
                m.d.comb += [self.i_spikes.ready.eq(1), current_rd.addr.eq(pixel_addr)]
                m.d.sync += [tap_i.eq(0), tap_j.eq(0), group.eq(0), pixel_x.eq(0), pixel_y.eq(0)]
                with m.If(self.i_spikes.valid):
                    with m.If(self.i_spikes.payload.end):
                        m.next = "UPDATE_READ"
                    with m.Else():
                        m.d.sync += [event.eq(self.i_spikes.payload),
                                     weight_addr.eq(self.i_spikes.payload.c * (k * k * G))]
                        m.next = "SCAN"
            with m.State("SCAN"):
                m.d.comb += current_rd.addr.eq(tap_addr)
                m.d.sync += [acc_valid.eq(tap_valid), acc_addr.eq(tap_addr), weight_addr.eq(weight_addr + 1)]
                with m.If(group == G - 1):
                    m.d.sync += group.eq(0)
                    with m.If(tap_j == k - 1):
                        m.d.sync += [tap_j.eq(0), tap_i.eq(tap_i + 1)]
                    with m.Else():
                        m.d.sync += tap_j.eq(tap_j + 1)
                with m.Else():
                    m.d.sync += group.eq(group + 1)
                with m.If(last_tap):
                    m.next = "ACCEPT"
            with m.State("UPDATE_READ"):
                m.d.comb += current_rd.addr.eq(pixel_addr)
                m.next = "UPDATE_CALC"
            with m.State("UPDATE_CALC"):
                # Read data of (pixel, group) is valid: store membranes, clear currents, latch spikes.
                m.d.comb += [membrane_wr.addr.eq(pixel_addr), membrane_wr.en.eq(1),
                             current_wr.addr.eq(pixel_addr), current_wr.en.eq(1)]
                for l in range(L):
                    m.d.comb += current_wr.data[l].eq(0)
                    m.d.sync += spikes[l].eq(lanes[l].spike)
                m.d.sync += [out_y.eq(pixel_y), out_x.eq(pixel_x), out_g.eq(group)]
                with m.If(Cat(*(lane.spike != 0 for lane in lanes)).any()):
                    m.next = "EMIT"
                with m.Else():
                    leave_group()
            with m.State("EMIT"):
                m.d.comb += self.o_spikes.valid.eq(1)
                with m.If(self.o_spikes.ready):
                    m.d.sync += spikes[first_lane].eq(0)
                    with m.If(last_spike):
                        leave_group()
            with m.State("END"):
                m.d.comb += [self.o_spikes.valid.eq(1), self.o_spikes.payload.end.eq(1)]
                with m.If(self.o_spikes.ready):
                    m.d.sync += step.eq(Mux(step == layer.time_steps - 1, 0, step + 1))
                    m.next = "ACCEPT"
        return m

