"""``make verify`` (sim/verify.py) and its random configurations (sim/vectors.py): the generator
covers what the issue asks for, and a CI-sized share of the cases runs on every simulator."""

from __future__ import annotations

import json

import pytest

from spikehq.sim.runner import SIMULATORS, icarus_missing
from spikehq.sim.verify import geometry_cases, main, plan
from spikehq.sim.vectors import case_cycles, case_events, make_layer, random_params


def test_random_configurations_are_valid_varied_and_reproducible():
    params = [random_params(seed) for seed in range(60)]
    assert params == [random_params(seed) for seed in range(60)]
    layers = [make_layer(p, 1) for p in params]                     # every one passes the config checks
    assert {p.kind for p in params} == {"linear", "conv2d"}
    assert {(p.scheme, p.bits) for p in params} == {("pot", 2), ("pot", 4), ("uniform", 2), ("uniform", 4)}
    assert {p.neuron for p in params} == {"lif", "ternary"} and {p.membrane for p in params} == {"integer", "ternary"}
    assert len({p.activation_bits for p in params}) >= 5
    assert max(layer.fan_in for layer in layers) >= 512
    assert any(layer.lanes & (layer.lanes - 1) for layer in layers)   # lanes not a power of two
    assert any(layer.height % 2 and layer.width % 2 and layer.kind == "conv2d" for layer in layers)
    assert all(case_cycles(p) <= 400_000 and case_events(p) <= 30_000 for p in params)


def test_geometry_cases_reach_large_and_odd_shapes():
    layers = [make_layer(p, 1) for p in geometry_cases(1)]
    assert max(layer.height * layer.width for layer in layers) >= 32 * 31
    assert max(layer.fan_in for layer in layers) >= 512
    assert any(layer.height % 2 and layer.kernel_size == 5 for layer in layers)
    assert len({p.name for p in plan(1)}) == len(plan(1)) and set(plan(1)).isdisjoint(plan(2))


def test_verify_arguments_are_checked(capsys):
    for argv, message in [(["--values", "0"], "--values: expected at least 1, got 0"),
                          (["--simulators", "modelsim"], "--simulators: expected names from")]:
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize("simulator", [pytest.param(s, marks=getattr(pytest.mark, s)) for s in SIMULATORS])
def test_verify_share_on_every_simulator(simulator, tmp_path, stall_seed):
    """A CI-sized share of make verify: the first cases of a round, until 20000 values compared."""
    if simulator == "icarus" and icarus_missing():
        pytest.skip(icarus_missing())
    code = main(["--values", "20000", "--simulators", simulator, "--seed", "7", "--stall-seed", str(stall_seed),
                 "--out", str(tmp_path), "--quiet"])
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert code == 0 and summary["failures"] == 0
    assert summary["simulators"][simulator]["values"] >= 20000
