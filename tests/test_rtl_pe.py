"""The spiking PE (rtl/pe.py) in amaranth.sim beside the Verilator regression: the whole PE
matrix with random stalls, the write-port variant, proof that the scoreboard catches a broken
MAC, every forwarding path, the banked weights, the cycle bounds, the width override and the
constructor checks."""

import dataclasses
import importlib
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from amaranth import Module, Mux
from spikehq.golden import codes
from spikehq.golden.config import LayerWeights
from spikehq.golden.reference import run_layer
from spikehq.rtl import mac as mac_module
from spikehq.rtl.mac import PotMac
from spikehq.rtl import pe as pe_module
from spikehq.rtl.pe import SpikingPE
from spikehq.sim.amaranth_driver import count_mismatches, run_case
from spikehq.sim.vectors import CaseParams, make_case, matrix, relu_key_cases, spatial_prune_cases


@pytest.mark.parametrize("params", matrix() + relu_key_cases() + spatial_prune_cases(), ids=lambda p: p.name)
def test_pe_matrix_amaranth_sim(params, stall_seed):
    case = make_case(params)
    outputs, membranes = run_case(case, stall_seed=stall_seed)
    assert count_mismatches(case, outputs, membranes) == 0


@pytest.mark.parametrize("with_weights", [True, False])
def test_banked_weights_amaranth_sim(with_weights, stall_seed):
    """640 weight words of 32 bits: two block-RAM banks (rtl/banks.py), initialized or written."""
    params = CaseParams(scheme="uniform", bits=4, kind="linear", lanes=8, in_channels=128, out_channels=40,
                        height=2, seed=105, with_weights=with_weights)
    case = make_case(params)
    assert SpikingPE(layer=case.layer, weights=case.weights).elaborate(None).submodules.weights.banks == 2
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


@pytest.mark.parametrize("broken", ["odd keys lost", "state kept"])
def test_scoreboard_catches_a_broken_relu_key(monkeypatch, broken, stall_seed):
    """The relu-key case fails when the key loses its lowest bit or keeps a membrane."""
    from spikehq.rtl import neuron as neuron_module
    if broken == "odd keys lost":
        real = neuron_module.relu_key
        monkeypatch.setattr(neuron_module, "relu_key", lambda u, threshold, bits: real(u, threshold, bits) & ((1 << bits) - 2))
    else:
        resolve = neuron_module.fire_resolve
        monkeypatch.setattr(neuron_module, "fire_resolve",
                            lambda *a, relu_bits=None: (resolve(*a, relu_bits=relu_bits)[0], a[1]) if relu_bits
                            else resolve(*a))
        monkeypatch.setattr(pe_module, "fire_resolve", neuron_module.fire_resolve)
    case = make_case(relu_key_cases()[0])
    outputs, membranes = run_case(case, stall_seed=stall_seed)
    assert count_mismatches(case, outputs, membranes) > 0


@pytest.mark.parametrize("params", spatial_prune_cases(), ids=lambda p: p.name)
def test_spatial_prune_cases_prune_some_positions(params):
    """The pruning cases can fail: pruning changes the golden spikes, and spikes remain."""
    case = make_case(params)
    unpruned = dataclasses.replace(case.layer, spatial_prune_k=0)
    changed = sum(int((run_layer(unpruned, case.weights, x).spikes != t.spikes).sum())
                  for x, t in zip(case.samples, case.traces))
    assert changed > 0 and sum(int((t.spikes != 0).sum()) for t in case.traces) > 0


@pytest.mark.parametrize("broken", ["< instead of ≤", "k-th + 1"])
def test_scoreboard_catches_a_broken_spatial_prune(monkeypatch, broken, stall_seed):
    """The pruning case fails when the gate spares the ties (``<``) or the walk stops one bin late."""
    if broken == "< instead of ≤":
        monkeypatch.setattr(SpikingPE, "_pruned_u", lambda self, m, st, n1, acc_q, shape: _gate(m, n1.count < st.kth, acc_q, shape))
    else:
        monkeypatch.setattr(SpikingPE, "_pruned_u", lambda self, m, st, n1, acc_q, shape: _gate(m, n1.count <= st.kth + 1, acc_q, shape))
    case = make_case(spatial_prune_cases()[0])
    outputs, membranes = run_case(case, stall_seed=stall_seed)
    assert count_mismatches(case, outputs, membranes) > 0


def _gate(m, pruned, acc_q, shape):
    from amaranth import Signal
    u = Signal(shape)
    m.d.comb += u.eq(Mux(pruned, 0, acc_q))
    return u


@pytest.mark.parametrize("forwarded", [0, 1, 2])
def test_every_forwarding_path_matters(monkeypatch, forwarded, stall_seed):
    """Linear layers with 1, 2 and 3 lane groups: back-to-back events of one token hit the
    current word read 1, 2 or 3 taps earlier, so dropping the matching forwarding path breaks them."""
    monkeypatch.setattr(SpikingPE, "FORWARDED_TAPS", forwarded)
    groups = forwarded + 1
    case = make_case(CaseParams(scheme="uniform", bits=4, kind="linear", lanes=2, seed=5, in_channels=8,
                                out_channels=2 * groups, height=4))
    outputs, membranes = run_case(case, stall_seed=stall_seed, stall_probability=0.0)
    assert count_mismatches(case, outputs, membranes) > 0


def test_widths_override_sizes_the_datapath():
    """``widths`` replaces ``layer.widths(weights)`` in every memory word, MAC and neuron lane."""
    case = make_case(CaseParams(scheme="pot", bits=4, activation_bits=4, seed=3))
    layer, weights = case.layer, case.weights
    assert SpikingPE(layer=layer, weights=weights).widths == layer.widths(weights)
    narrow = layer.widths(weights, weight_bound=1)
    assert narrow.current_width < layer.widths(weights).current_width
    dut = SpikingPE(layer=layer, weights=weights, widths=narrow)
    assert dut.widths == narrow
    assert dut.membrane_word.elem_shape.width == narrow.membrane_width
    m = dut.elaborate(None)
    assert m.submodules.mac0.acc_width == narrow.membrane_width
    assert m.submodules.integrate0.membrane_width == m.submodules.register0.membrane_width == narrow.membrane_width


def test_pe_constructor_checks():
    layer = dataclasses.replace(make_case(CaseParams()).layer, name="host", scheme="fp32")
    with pytest.raises(ValueError, match=r"^Layer 'host' has scheme fp32, which has no integer hardware$"):
        SpikingPE(layer=layer)


@pytest.mark.parametrize("geometry, prune_k", [("linear 64→64, 8 lanes", 0), ("conv 3×3 4→8 on 8×8, 4 lanes", 0),
                                               ("conv 3×3 4→8 on 8×8, 4 lanes", 22)])
def test_step_cycles_bound_the_measured_cycles(geometry, prune_k):
    """SpikingPE.step_cycles holds every measured step (benchmarks/bench_pe.py's measurement,
    no stalls) at a sparse and a dense input, also with spatial pruning (k = 22 of 64); seed 3."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    try:
        bench = importlib.import_module("bench_pe")
    finally:
        sys.path.pop(0)
    layer = dataclasses.replace(bench.make_layer(bench.LAYERS[geometry], 3), spatial_prune_k=prune_k)
    rng = np.random.default_rng(3)
    values = rng.choice(codes.levels("pot", 4), size=(layer.out_channels, layer.in_channels, layer.kernel_size,
                                                      layer.kernel_size))
    weights = LayerWeights(codes.encode("pot", 4, values), np.zeros(layer.out_channels, dtype=np.int64),
                           np.full(layer.out_channels, 40))
    pe = SpikingPE(layer=layer, weights=weights)
    for density in (0.05, 0.7):
        frames = torch.from_numpy((rng.random((3, layer.height, layer.width, layer.in_channels)) < density)
                                  .astype(np.int64))
        cycles, _ = bench.measure(layer, weights, frames)
        spikes = run_layer(layer, weights, frames).spikes
        for t, measured in enumerate(cycles):
            lo, hi = pe.step_cycles(int(frames[t].sum()), int(spikes[t].abs().sum()))
            assert lo <= measured <= hi, (density, t, measured, lo, hi)


def test_spatial_prune_pass_costs_its_modelled_cycles():
    """With thresholds out of reach (no spike, every count 0, so kth = 0) a pruned PE's step
    takes exactly ``prune_cycles[0] = H'·W'·G + 6`` cycles more than the same PE unpruned."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    try:
        bench = importlib.import_module("bench_pe")
    finally:
        sys.path.pop(0)
    layer = bench.make_layer(bench.LAYERS["conv 3×3 4→8 on 8×8, 4 lanes"], 2)
    rng = np.random.default_rng(5)
    values = rng.choice(codes.levels("pot", 4), size=(8, 4, 3, 3))
    weights = LayerWeights(codes.encode("pot", 4, values), np.zeros(8, dtype=np.int64), np.full(8, 10_000))
    frames = torch.from_numpy((rng.random((2, 8, 8, 4)) < 0.3).astype(np.int64))
    plain, _ = bench.measure(layer, weights, frames)
    pruned_layer = dataclasses.replace(layer, spatial_prune_k=9)
    pruned, _ = bench.measure(pruned_layer, weights, frames)
    extra = SpikingPE(layer=pruned_layer, weights=weights).prune_cycles[0]
    assert extra == 8 * 8 * 2 + SpikingPE.PRUNE_OVERHEAD_CYCLES
    assert [p - q for p, q in zip(pruned, plain)] == [extra, extra]
