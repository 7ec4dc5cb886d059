"""Neuron datapath, one lane each (docs/arithmetic.md §4–§6).

``NeuronLane`` = :class:`Integrate` (restore the membrane register, leak, add bias and
current), then the fire unit (binary LIF or ternary: spike and reset), then the membrane
register's store (integer, ternary or binary). All combinational; the processing element puts a
pipeline register after each of the three, the attention unit uses the whole lane.
"""

from amaranth import Const, Mux, signed, unsigned
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .events import mul_const

__all__ = ["IntegerMembraneRegister", "TernaryMembraneRegister", "BinaryMembraneRegister", "BinaryLifUnit",
           "TernaryNeuronUnit", "Integrate", "fire_compare", "fire_resolve", "relu_key", "fire_unit",
           "membrane_register", "NeuronLane", "spike_shape", "stored_shape"]


def spike_shape(neuron_type: str, bits: int | None = None):
    """Binary LIF spikes are 1 unsigned bit; ternary spikes are 2-bit two's complement; a relu
    key (A2OS2A) is ``bits`` unsigned bits."""
    if neuron_type == "relu":
        return unsigned(bits)
    return signed(2) if neuron_type == "ternary" else unsigned(1)


def stored_shape(membrane: str, membrane_width: int):
    """Shape of one neuron's stored state: the integer membrane, a 2-bit ternary level or one
    unsigned bit (binary membrane, §6)."""
    return {"ternary": signed(2), "binary": unsigned(1)}.get(membrane, signed(membrane_width))


class _MembraneRegister(wiring.Component):
    """Stored-state codec: ``restored`` = r of §4.1 from ``stored``; ``store`` = what to keep of h'."""

    membrane = None

    def __init__(self, *, membrane_width: int, threshold_width: int):
        self.membrane_width = membrane_width
        shape = stored_shape(self.membrane, membrane_width)
        super().__init__({
            "stored": In(shape),
            "threshold": In(unsigned(threshold_width)),
            "restored": Out(signed(membrane_width)),
            "h_next": In(signed(membrane_width)),
            "store": Out(shape),
        })


class IntegerMembraneRegister(_MembraneRegister):
    """A full-width integer membrane: stored as is."""

    membrane = "integer"

    def elaborate(self, platform):
        m = Module()
        m.d.comb += [self.restored.eq(self.stored), self.store.eq(self.h_next)]
        return m


class TernaryMembraneRegister(_MembraneRegister):
    """SpQuant ternary membrane: q ∈ {-1, 0, +1} in 2 bits, levels ±θ (§6).

    ``store = +1 if 2h' >= θ, -1 if 2h' < -θ, else 0``; ``restored = q·θ``.
    """

    membrane = "ternary"

    def elaborate(self, platform):
        m = Module()
        threshold = self.threshold
        twice = self.h_next << 1
        m.d.comb += [
            self.restored.eq(Mux(self.stored == 1, threshold, Mux(self.stored == -1, -threshold, 0))),
            self.store.eq(Mux(twice >= threshold, 1, Mux(twice < -threshold, -1, 0))),
        ]
        return m


class BinaryMembraneRegister(_MembraneRegister):
    """SpQuant binary membrane (eq. 19–20): the ternary level with −1 pruned, q ∈ {0, 1} in
    one bit (§6). ``store = [2h' >= θ]``; ``restored = q·θ``."""

    membrane = "binary"

    def elaborate(self, platform):
        m = Module()
        m.d.comb += [self.restored.eq(Mux(self.stored, self.threshold, 0)),
                     self.store.eq((self.h_next << 1) >= self.threshold)]
        return m


def fire_compare(neuron_type: str, u, threshold):
    """First half of firing: ``(u >= θ, u <= -θ)``; the second is constant 0 for binary LIF
    and the relu key (whose ``u >= θ`` says "key ≠ 0")."""
    return u >= threshold, (u <= -threshold) if neuron_type == "ternary" else Const(0, 1)


def relu_key(u, threshold, bits: int):
    """A2OS2A's integer ReLU key ``clip(floor(u/θ), 0, 2^bits − 1)`` for θ ≥ 1, as a thermometer
    count ``Σ_{j=1}^{2^bits−1} [u ≥ j·θ]`` (j·θ by shift-adds; no divider)."""
    levels = [u >= mul_const(threshold, j) for j in range(1, 2 ** bits)]
    total = levels[0]
    for level in levels[1:]:
        total = total + level
    return total


def fire_resolve(reset: str, u, threshold, up, down, *, relu_bits: int | None = None):
    """Second half: the spike value ``up - down`` and h' (hard: 0 where fired; soft: u - S·θ).
    With ``relu_bits`` (a relu key, §4): the key :func:`relu_key` and h' = 0 (stateless)."""
    if relu_bits is not None:
        return relu_key(u, threshold, relu_bits), Const(0, 1)
    spike = Mux(up, 1, Mux(down, -1, 0))
    if reset == "hard":
        return spike, Mux(up | down, 0, u)
    return spike, u - Mux(up, threshold, Mux(down, -threshold, 0))


class _FireUnit(wiring.Component):
    """Threshold compare and reset: ``u`` → spike S and post-reset membrane h' (§4.3–4.4):
    :func:`fire_compare` then :func:`fire_resolve` (the PE registers between the two)."""

    neuron_type = None

    def __init__(self, *, membrane_width: int, threshold_width: int, reset: str):
        if reset not in ("hard", "soft"):
            raise ValueError(f"Reset must be 'hard' or 'soft', not {reset!r}")
        self.reset = reset
        super().__init__({
            "u": In(signed(membrane_width)),
            "threshold": In(unsigned(threshold_width)),
            "spike": Out(self.spike_shape),
            "h_next": Out(signed(membrane_width)),
        })

    def elaborate(self, platform):
        m = Module()
        up, down = fire_compare(self.neuron_type, self.u, self.threshold)
        spike, h_next = fire_resolve(self.reset, self.u, self.threshold, up, down)
        m.d.comb += [self.spike.eq(spike), self.h_next.eq(h_next)]
        return m


class BinaryLifUnit(_FireUnit):
    """Binary LIF: S = [u >= θ]."""

    neuron_type = "lif"
    spike_shape = unsigned(1)


class TernaryNeuronUnit(_FireUnit):
    """A2OS2A ternary spiking neuron: S = [u >= θ] - [u <= -θ]."""

    neuron_type = "ternary"
    spike_shape = signed(2)


def _check_lane(neuron_type: str, membrane: str, reset: str, leak_shift: int) -> None:
    if neuron_type not in ("lif", "ternary"):
        raise ValueError(f"Neuron type must be 'lif' or 'ternary', not {neuron_type!r}")
    if membrane not in ("integer", "ternary", "binary"):
        raise ValueError(f"Membrane must be 'integer', 'ternary' or 'binary', not {membrane!r}")
    if membrane == "binary" and neuron_type == "ternary":
        raise ValueError("A binary membrane silences -1 spikes (SpQuant eq. 20): use neuron type 'lif'")
    if leak_shift not in range(17):
        raise ValueError(f"Leak shift must be between 0 and 16, not {leak_shift}")
    if reset not in ("hard", "soft"):
        raise ValueError(f"Reset must be 'hard' or 'soft', not {reset!r}")


def _step_inputs(stored, current_width: int, bias_width: int, threshold_width: int) -> dict:
    """Inputs of a neuron step: step-0 flag, stored state (shape), input current, bias, threshold."""
    return {"first_step": In(1), "stored": In(stored), "current": In(signed(current_width)),
            "bias": In(signed(bias_width)), "threshold": In(unsigned(threshold_width))}


def _register_cls(membrane: str):
    return {"ternary": TernaryMembraneRegister, "binary": BinaryMembraneRegister}.get(membrane, IntegerMembraneRegister)


class Integrate(wiring.Component):
    """First half of a neuron step: restore r from ``stored`` (0 at step 0), ``u = (r >> s) + b + I``."""

    def __init__(self, *, membrane: str, leak_shift: int, current_width: int, membrane_width: int,
                 bias_width: int, threshold_width: int):
        _check_lane("lif", membrane, "hard", leak_shift)
        self.membrane, self.leak_shift = membrane, leak_shift
        self.membrane_width, self.threshold_width = membrane_width, threshold_width
        self.stored_shape = stored_shape(membrane, membrane_width)
        super().__init__({**_step_inputs(self.stored_shape, current_width, bias_width, threshold_width),
                          "u": Out(signed(membrane_width))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.register = register = _register_cls(self.membrane)(
            membrane_width=self.membrane_width, threshold_width=self.threshold_width)
        restored = Mux(self.first_step, 0, register.restored)
        m.d.comb += [register.stored.eq(self.stored), register.threshold.eq(self.threshold),
                     self.u.eq((restored >> self.leak_shift) + self.bias + self.current)]
        return m


def fire_unit(*, neuron_type: str, reset: str, membrane_width: int, threshold_width: int) -> "_FireUnit":
    """The fire unit of a neuron type: binary LIF or ternary."""
    cls = TernaryNeuronUnit if neuron_type == "ternary" else BinaryLifUnit
    return cls(membrane_width=membrane_width, threshold_width=threshold_width, reset=reset)


def membrane_register(*, membrane: str, membrane_width: int, threshold_width: int) -> _MembraneRegister:
    """The stored-state codec of a membrane mode: integer, ternary or binary."""
    return _register_cls(membrane)(membrane_width=membrane_width, threshold_width=threshold_width)


class NeuronLane(wiring.Component):
    """One neuron's step: restore, ``u = (r >> s) + b + I``, fire, reset, store (§4)."""

    def __init__(self, *, neuron_type: str, membrane: str, reset: str, leak_shift: int,
                 current_width: int, membrane_width: int, bias_width: int, threshold_width: int):
        _check_lane(neuron_type, membrane, reset, leak_shift)
        self.neuron_type, self.membrane, self.reset, self.leak_shift = neuron_type, membrane, reset, leak_shift
        self.current_width, self.bias_width = current_width, bias_width
        self.membrane_width, self.threshold_width = membrane_width, threshold_width
        self.stored_shape = stored_shape(membrane, membrane_width)
        super().__init__({**_step_inputs(self.stored_shape, current_width, bias_width, threshold_width),
                          "spike": Out(spike_shape(neuron_type)), "store": Out(self.stored_shape)})

    def elaborate(self, platform):
        m = Module()
        widths = dict(membrane_width=self.membrane_width, threshold_width=self.threshold_width)
        m.submodules.integrate = integrate = Integrate(
            membrane=self.membrane, leak_shift=self.leak_shift, current_width=self.current_width,
            bias_width=self.bias_width, **widths)
        m.submodules.fire = fire = fire_unit(neuron_type=self.neuron_type, reset=self.reset, **widths)
        m.submodules.register = register = membrane_register(membrane=self.membrane, **widths)
        m.d.comb += [
            integrate.first_step.eq(self.first_step), integrate.stored.eq(self.stored),
            integrate.current.eq(self.current), integrate.bias.eq(self.bias),
            integrate.threshold.eq(self.threshold),
            fire.u.eq(integrate.u), fire.threshold.eq(self.threshold),
            register.h_next.eq(fire.h_next), register.threshold.eq(self.threshold),
            self.spike.eq(fire.spike), self.store.eq(register.store),
        ]
        return m
