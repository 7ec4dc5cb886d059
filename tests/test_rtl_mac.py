"""MAC units (rtl/mac.py) in amaranth.sim: exhaustive over codes and activations, and their
constructor checks."""

import itertools

import pytest
from spikehq.golden import codes
from spikehq.rtl.mac import PotMac, UniformMac, activation_shape
from spikehq.sim.amaranth_driver import run_comb


@pytest.mark.parametrize("mac_cls,scheme", [(PotMac, "pot"), (UniformMac, "uniform")])
@pytest.mark.parametrize("bits", [2, 4])
@pytest.mark.parametrize("activation_bits", [1, 3, 8])
def test_mac_exhaustive(mac_cls, scheme, bits, activation_bits):
    acc_width = 20
    dut = mac_cls(weight_bits=bits, activation_bits=activation_bits, acc_width=acc_width)
    lo, hi = codes.activation_range(activation_bits)
    accs = [0, 12345, -2 ** (acc_width - 2)]
    vectors = [{"code": c, "x": x, "acc_in": a}
               for c, x, a in itertools.product(range(2 ** bits), range(lo, hi + 1), accs)]
    errors = []

    def check(inp, ctx):
        expected = inp["acc_in"] + int(codes.decode(scheme, bits, inp["code"])) * inp["x"]
        if ctx.get(dut.acc_out) != expected:
            errors.append((inp, ctx.get(dut.acc_out), expected))
    run_comb(dut, vectors, check)
    assert not errors, errors[:5]


@pytest.mark.parametrize("mac_cls", [PotMac, UniformMac])
def test_mac_constructor_checks(mac_cls):
    with pytest.raises(ValueError, match=r"^Weight bits must be 2 or 4, not 3$"):
        mac_cls(weight_bits=3, activation_bits=4, acc_width=16)
    with pytest.raises(ValueError, match=r"^Activation bits must be between 1 and 8, not 9$"):
        mac_cls(weight_bits=4, activation_bits=9, acc_width=16)


def test_activation_shape_checks_its_bits():
    with pytest.raises(ValueError, match=r"^Activation bits must be between 1 and 8, not 0$"):
        activation_shape(0)
