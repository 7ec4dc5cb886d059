"""The feed-forward network top (rtl/network.py with rtl/feedforward.py: sum pooling, flatten,
forks, residual adds, spike-count readout) against the golden network on Verilator, on a graph
with every op, a ternary layer feeding a signed add, under random stalls (seed printed)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from spikehq.golden.codes import encode
from spikehq.golden.config import ConfigError, load_config
from spikehq.golden.network import load_network
from spikehq.rtl.feedforward import range_shape
from spikehq.rtl.network import SpikingNetwork
from spikehq.rtl.pe import SpikingPE
from spikehq.search.data import load_dataset

LAYERS = [  # name, kind, geometry, activation bits, neuron type, threshold
    ("conv", {"kind": "conv2d", "in_channels": 2, "out_channels": 4, "kernel_size": 3, "padding": 1,
              "height": 8, "width": 8}, 1, "lif", 2),
    ("fc1", {"kind": "linear", "in_features": 64, "out_features": 16, "tokens": 1}, 4, "lif", 6),
    ("fc2", {"kind": "linear", "in_features": 16, "out_features": 16, "tokens": 1}, 1, "ternary", 2),
    ("fc3", {"kind": "linear", "in_features": 16, "out_features": 10, "tokens": 1}, 3, "lif", 2),
]
NODES = [
    {"name": "conv", "op": "layer", "inputs": ["input"]},
    {"name": "pool", "op": "sumpool", "kernel": 2, "inputs": ["conv"]},
    {"name": "flat", "op": "flatten", "inputs": ["pool"]},
    {"name": "fc1", "op": "layer", "inputs": ["flat"]},
    {"name": "fc2", "op": "layer", "inputs": ["fc1"]},
    {"name": "res", "op": "add", "inputs": ["fc1", "fc2"]},
    {"name": "fc3", "op": "layer", "inputs": ["res"]},
]


def write_network(folder: Path, seed: int = 3) -> Path:
    rng = np.random.default_rng(seed)
    layers = []
    (folder / "weights").mkdir(parents=True)
    for name, geometry, bits, neuron, threshold in LAYERS:
        O = geometry.get("out_channels", geometry.get("out_features"))
        C = geometry.get("in_channels", geometry.get("in_features"))
        k = geometry.get("kernel_size", 1)
        values = rng.integers(-5, 8, size=(O, C, k, k) if k > 1 else (O, C))
        (folder / "weights" / f"{name}.json").write_text(json.dumps({
            "format": "spikehq-weights", "version": 1, "layer": name,
            "codes": encode("uniform", 4, values).tolist(), "bias": rng.integers(-2, 2, size=O).tolist(),
            "threshold": rng.integers(threshold, 2 * threshold, size=O).tolist()}))
        layers.append({"name": name, **geometry, "scheme": "uniform", "bits": 4, "activation_bits": bits,
                       "neuron": {"type": neuron, "threshold": threshold, "leak_shift": 1, "reset": "hard"},
                       "weights": f"weights/{name}.json"})
    path = folder / "searched.json"
    path.write_text(json.dumps({"format": "spikehq-searched", "version": 1, "name": "ff", "time_steps": 4,
                                "layers": layers,
                                "metadata": {"network": {"architecture": "feedforward", "input": [2, 8, 8],
                                                         "nodes": NODES, "output": "fc3", "readout": "spike_count"}}}))
    return path


def test_range_shape():
    assert [str(range_shape(*r)) for r in ((0, 1), (0, 4), (-1, 1), (-1, 2), (-8, 7))] == \
        ["unsigned(1)", "signed(4)", "signed(2)", "signed(3)", "signed(4)"]


def test_golden_feedforward_graph_is_active(tmp_path):
    """Every layer of the test graph fires and the add carries negative values (so the RTL test
    below exercises every path)."""
    net = load_network(write_network(tmp_path))
    _, test = load_dataset("digits", time_steps=4)
    scores, trace = net.run(test.frames[:8], dump=True)
    for name in ("conv", "fc1", "fc2", "fc3"):
        assert (trace[name]["spikes"] != 0).any(), name
    assert (trace["fc2"]["spikes"] < 0).any() and (trace["fc3"]["inputs"] < 0).any()
    assert scores.shape == (8, 10) and scores.sum() > 0


def test_top_refuses_fp32_layer(tmp_path):
    path = write_network(tmp_path)
    doc = json.loads(path.read_text())
    doc["layers"][1].update(scheme="fp32", bits=32)
    path.write_text(json.dumps(doc))
    config = load_config(path)
    with pytest.raises(ConfigError, match="layer 'fc1': scheme fp32 has no hardware"):
        SpikingNetwork(config=config, weights={})


@pytest.mark.parametrize("simulator", [pytest.param("verilator", marks=pytest.mark.verilator),
                                       pytest.param("icarus", marks=pytest.mark.icarus)])
def test_feedforward_top_is_bit_exact(simulator, stall_seed, tmp_path):
    """Verilator: four samples one at a time and back to back; Icarus (4-state: no X or Z on
    any output from reset on): one sample."""
    from spikehq.sim.runner import icarus_missing, run_network
    if simulator == "icarus" and icarus_missing():
        pytest.skip(icarus_missing())
    samples = [0, 1, 2, 3] if simulator == "verilator" else [0]
    tests, failures = run_network(write_network(tmp_path), samples, stall_seed=stall_seed, simulator=simulator)
    assert (tests, failures) == (1, 0), f"stall seed {stall_seed}: see build/sim/{simulator}/network_*/test_*.log"


@pytest.mark.verilator
def test_feedforward_top_recovers_from_reset_mid_sample(stall_seed, tmp_path):
    """rst at a random cycle inside a sample (sim/tb_reset.py): i_events.ready low for the conv's
    sweep, then every result golden, so no engine (PE, sum pooling, add) kept a stale sum."""
    from spikehq.sim.runner import run_network
    tests, failures = run_network(write_network(tmp_path), [0, 1, 2, 3], stall_seed=stall_seed,
                                  test_module="spikehq.sim.tb_reset")
    assert (tests, failures) == (1, 0), "see build/sim/verilator/network_*/tb_reset_test_*.log"


def test_reset_sweep_of_the_input_readers(tmp_path):
    net = load_network(write_network(tmp_path))
    top = SpikingNetwork(config=net.config, weights=net.weights)
    conv = net.config.layer("conv")
    assert top.cycles_after_reset == conv.out_height * conv.out_width * conv.groups + SpikingPE.INIT_DRAIN_CYCLES
