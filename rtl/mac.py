"""Multiply-accumulate units, one lane each: ``acc_out = acc_in + v·x`` (docs/arithmetic.md §1–§3).

A processing element instantiates only the MAC its layer's scheme needs.
"""

from amaranth import Cat, Const, Mux, Shape, Signal, signed, unsigned
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["activation_shape", "PotMac", "UniformMac", "MAC_FOR_SCHEME"]


def activation_shape(activation_bits: int) -> Shape:
    """1 bit: a binary spike (unsigned); 2–8 bits: signed two's complement."""
    if activation_bits not in range(1, 9):
        raise ValueError(f"Activation bits must be between 1 and 8, not {activation_bits}")
    return unsigned(1) if activation_bits == 1 else signed(activation_bits)


class _Mac(wiring.Component):
    def __init__(self, *, weight_bits: int, activation_bits: int, acc_width: int):
        if weight_bits not in (2, 4):
            raise ValueError(f"Weight bits must be 2 or 4, not {weight_bits}")
        self.weight_bits = weight_bits
        self.activation_bits = activation_bits
        self.acc_width = acc_width
        super().__init__({
            "code": In(weight_bits),
            "x": In(activation_shape(activation_bits)),
            "acc_in": In(signed(acc_width)),
            "acc_out": Out(signed(acc_width)),
        })


class PotMac(_Mac):
    """Power-of-two MAC: a barrel shift of the activation and an add or subtract.

    Code = sign (MSB) · m; ``m = 0`` adds nothing, otherwise ``x << (m - 1)`` is added
    (sign = 0) or subtracted (sign = 1). No multiplier.

    The add or subtract is one adder: ``acc_in + (shifted XOR sign) + sign`` (two's complement
    negation folded into the same carry chain; the carry-in enters through an extra low bit,
    ``{acc_in, 1} + {shifted ^ sign, sign}``). Selecting between a separate adder and
    subtractor doubled the carry chain (docs/synthesis.md, "PoT vs uniform").
    """

    def elaborate(self, platform):
        m = Module()
        b, width = self.weight_bits, self.acc_width
        sign = self.code[b - 1]
        exponent = self.code[:b - 1]
        shift = (exponent - 1)[:b - 1] if b > 2 else 0  # m - 1, valid where m != 0
        shifted = Signal(signed(width))
        m.d.comb += shifted.eq(Mux(exponent == 0, 0, self.x << shift))
        flipped = Signal(width)
        m.d.comb += flipped.eq(shifted.as_unsigned() ^ sign.replicate(width))
        total = Signal(width + 1)
        m.d.comb += total.eq(Cat(Const(1, 1), self.acc_in.as_unsigned()) + Cat(sign, flipped))
        m.d.comb += self.acc_out.eq(total[1:])
        return m


class UniformMac(_Mac):
    """Uniform integer MAC: a signed multiplier (a mux for binary spikes) and an adder."""

    def elaborate(self, platform):
        m = Module()
        weight = self.code.as_signed()
        product = Mux(self.x, weight, 0) if self.activation_bits == 1 else weight * self.x
        m.d.comb += self.acc_out.eq(self.acc_in + product)
        return m


MAC_FOR_SCHEME = {"pot": PotMac, "uniform": UniformMac}
