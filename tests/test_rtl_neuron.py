"""Neuron lanes (rtl/neuron.py) in amaranth.sim: randomized inputs against the golden neuron
step, and the constructor checks of the lane and its fire units."""

import numpy as np
import pytest
import torch
from spikehq.golden.config import config_from_dict
from spikehq.golden.reference import neuron_step
from spikehq.rtl.neuron import BinaryLifUnit, NeuronLane, TernaryNeuronUnit
from spikehq.sim.amaranth_driver import run_comb


@pytest.mark.parametrize("neuron,membrane,reset,leak", [
    ("lif", "integer", "hard", 1), ("lif", "ternary", "soft", 0),
    ("ternary", "integer", "soft", 2), ("ternary", "ternary", "hard", 1),
    ("lif", "binary", "hard", 1), ("lif", "binary", "soft", 0)])
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
    stored_range = {"ternary": (-1, 2), "binary": (0, 2)}.get(membrane, (-w.membrane_bound // 2, w.membrane_bound // 2))
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


LANE = dict(neuron_type="lif", membrane="integer", reset="hard", leak_shift=1, current_width=10,
            membrane_width=12, bias_width=6, threshold_width=5)


@pytest.mark.parametrize("override,message", [
    ({"neuron_type": "izhikevich"}, r"^Neuron type must be 'lif' or 'ternary', not 'izhikevich'$"),
    ({"membrane": "float"}, r"^Membrane must be 'integer', 'ternary' or 'binary', not 'float'$"),
    ({"membrane": "binary", "neuron_type": "ternary"},
     r"^A binary membrane silences -1 spikes \(SpQuant eq. 20\): use neuron type 'lif'$"),
    ({"leak_shift": 17}, r"^Leak shift must be between 0 and 16, not 17$"),
    ({"reset": "none"}, r"^Reset must be 'hard' or 'soft', not 'none'$"),
])
def test_neuron_lane_constructor_checks(override, message):
    with pytest.raises(ValueError, match=message):
        NeuronLane(**{**LANE, **override})


@pytest.mark.parametrize("unit", [BinaryLifUnit, TernaryNeuronUnit])
def test_fire_unit_constructor_checks(unit):
    with pytest.raises(ValueError, match=r"^Reset must be 'hard' or 'soft', not 'zero'$"):
        unit(membrane_width=8, threshold_width=4, reset="zero")
