"""Fast amaranth.sim checks beside the Verilator regression: exhaustive MACs, randomized neuron
lanes against the golden neuron step, the whole PE matrix with random stalls, and proof that
the scoreboard catches a broken MAC."""

import itertools

import numpy as np
import pytest
import torch
from amaranth import Module, Mux
from amaranth.sim import Simulator

from spikehq.golden import codes
from spikehq.golden.config import config_from_dict
from spikehq.golden.reference import neuron_step
from spikehq.rtl import mac as mac_module
from spikehq.rtl.mac import PotMac, UniformMac
from spikehq.rtl.neuron import NeuronLane
from spikehq.sim.amaranth_driver import count_mismatches, run_case
from spikehq.sim.vectors import CaseParams, make_case, matrix


def run_comb(dut, vectors, check):
    async def bench(ctx):
        for inputs in vectors:
            for signal, value in inputs.items():
                ctx.set(getattr(dut, signal), value)
            check(inputs, ctx)
    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()


@pytest.mark.parametrize("mac_cls,scheme", [(PotMac, "pot"), (UniformMac, "uniform")])
@pytest.mark.parametrize("bits", [2, 4])
@pytest.mark.parametrize("activation_bits", [1, 3, 8])
def test_mac_exhaustive(mac_cls, scheme, bits, activation_bits):
    acc_width = 20
    dut = mac_cls(weight_bits=bits, activation_bits=activation_bits, acc_width=acc_width)
    xs = [0, 1] if activation_bits == 1 else range(-2 ** (activation_bits - 1), 2 ** (activation_bits - 1))
    accs = [0, 12345, -2 ** (acc_width - 2)]
    vectors = [{"code": c, "x": x, "acc_in": a} for c, x, a in itertools.product(range(2 ** bits), xs, accs)]
    errors = []

    def check(inp, ctx):
        expected = inp["acc_in"] + int(codes.decode(scheme, bits, inp["code"])) * inp["x"]
        if ctx.get(dut.acc_out) != expected:
            errors.append((inp, ctx.get(dut.acc_out), expected))
    run_comb(dut, vectors, check)
    assert not errors, errors[:5]


@pytest.mark.parametrize("neuron,membrane,reset,leak", [
    ("lif", "integer", "hard", 1), ("lif", "ternary", "soft", 0),
    ("ternary", "integer", "soft", 2), ("ternary", "ternary", "hard", 1)])
def test_neuron_lane_matches_golden_step(neuron, membrane, reset, leak):
    layer = config_from_dict({"format": "spikehq-searched", "version": 1, "name": "n", "time_steps": 8, "layers": [
        {"name": "l", "kind": "linear", "in_features": 4, "out_features": 1, "scheme": "uniform", "bits": 4,
         "activation_bits": 4, "neuron": {"type": neuron, "threshold": 9, "leak_shift": leak, "reset": reset},
         "membrane": membrane}]}).layers[0]
    w = layer.widths()
    dut = NeuronLane(neuron_type=neuron, membrane=membrane, reset=reset, leak_shift=leak,
                     current_width=w.current_width, membrane_width=w.membrane_width,
                     bias_width=6, threshold_width=5)
    rng = np.random.default_rng(11)
    stored_range = (-1, 2) if membrane == "ternary" else (-w.membrane_bound // 2, w.membrane_bound // 2)
    vectors = [{"first_step": int(rng.random() < 0.2), "stored": int(rng.integers(*stored_range)),
                "current": int(rng.integers(-w.current_bound, w.current_bound + 1)),
                "bias": int(rng.integers(-20, 21)), "threshold": int(rng.integers(1, 32))} for _ in range(3000)]
    errors = []

    def check(inp, ctx):
        spike, state, _ = neuron_step(layer, torch.tensor([inp["stored"]]), torch.tensor([inp["current"]]),
                                      torch.tensor([inp["bias"]]), torch.tensor([inp["threshold"]]),
                                      first_step=bool(inp["first_step"]))
        got = (ctx.get(dut.spike), ctx.get(dut.store))
        if got != (spike.item(), state.item()):
            errors.append((inp, got, (spike.item(), state.item())))
    run_comb(dut, vectors, check)
    assert not errors, errors[:5]


@pytest.mark.parametrize("params", matrix(), ids=lambda p: p.name)
def test_pe_matrix_amaranth_sim(params, stall_seed):
    case = make_case(params)
    outputs, membranes = run_case(case, stall_seed=stall_seed)
    assert count_mismatches(case, outputs, membranes) == 0


def test_write_port_variant_amaranth_sim(stall_seed):
    case = make_case(CaseParams(scheme="uniform", bits=4, activation_bits=4, kind="conv2d", lanes=2,
                                with_weights=False, seed=7))
    outputs, membranes = run_case(case, stall_seed=stall_seed)
    assert count_mismatches(case, outputs, membranes) == 0


class _SignIgnoringPotMac(PotMac):
    """A plausible bug: the PoT sign bit is ignored."""

    def elaborate(self, platform):
        m = Module()
        exponent = self.code[:self.weight_bits - 1]
        shifted = Mux(exponent == 0, 0, self.x << (exponent - 1)[:self.weight_bits - 1])
        m.d.comb += self.acc_out.eq(self.acc_in + shifted)
        return m


def test_scoreboard_catches_a_broken_mac(monkeypatch, stall_seed):
    monkeypatch.setitem(mac_module.MAC_FOR_SCHEME, "pot", _SignIgnoringPotMac)
    case = make_case(CaseParams(scheme="pot", bits=4, seed=3))
    outputs, membranes = run_case(case, stall_seed=stall_seed)
    assert count_mismatches(case, outputs, membranes) > 0
