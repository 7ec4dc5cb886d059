"""The golden model against hand-worked examples of docs/arithmetic.md and an independent
float64 convolution."""

import numpy as np
import pytest
import torch

from spikehq.golden import codes
from spikehq.golden.config import LayerWeights, config_from_dict
from spikehq.golden.reference import (binary_quantize, check_inputs, neuron_step, relu_key, run_layer,
                                      spatial_prune, synaptic_current, ternary_quantize)


def layer(**overrides):
    raw = {"name": "l", "kind": "linear", "in_features": 3, "out_features": 2, "scheme": "uniform", "bits": 4,
           "neuron": {"type": "lif", "threshold": 4, "leak_shift": 1, "reset": "hard"}}
    raw["neuron"].update(overrides.pop("neuron", {}))
    time_steps = overrides.pop("time_steps", 4)
    raw.update(overrides)
    return config_from_dict({"format": "spikehq-searched", "version": 1, "name": "t",
                             "time_steps": time_steps, "layers": [raw]}).layers[0]


# ---- §1 codes ---------------------------------------------------------------------------------

def test_code_tables():
    assert codes.levels("uniform", 2).tolist() == [-2, -1, 0, 1]
    assert codes.levels("uniform", 4).tolist() == list(range(-8, 8))
    assert codes.levels("pot", 2).tolist() == [-1, 0, 1]
    assert codes.levels("pot", 4).tolist() == [-64, -32, -16, -8, -4, -2, -1, 0, 1, 2, 4, 8, 16, 32, 64]
    assert codes.decode("pot", 4, [0b0000, 0b1000, 0b0001, 0b1001, 0b0111, 0b1111]).tolist() == [0, 0, 1, -1, 64, -64]
    assert codes.decode("uniform", 4, [0b0111, 0b1000, 0b1111]).tolist() == [7, -8, -1]


@pytest.mark.parametrize("scheme,bits", [("pot", 2), ("pot", 4), ("uniform", 2), ("uniform", 4)])
def test_encode_decode_round_trip(scheme, bits):
    values = codes.levels(scheme, bits)
    assert codes.decode(scheme, bits, codes.encode(scheme, bits, values)).tolist() == values.tolist()
    all_codes = np.arange(2 ** bits)
    decoded = codes.decode(scheme, bits, all_codes)
    assert set(decoded.tolist()) == set(values.tolist())


def test_encode_rejects_values_without_code():
    with pytest.raises(ValueError, match="pot 4-bit values must be 0 or"):
        codes.encode("pot", 4, [3])
    with pytest.raises(ValueError, match="pot 4-bit values must be 0 or"):
        codes.encode("pot", 4, [128])
    with pytest.raises(ValueError, match=r"uniform 2-bit values must lie in \[-2, 1\]"):
        codes.encode("uniform", 2, [2])


# ---- §6 ternary membrane -------------------------------------------------------------------------

@pytest.mark.parametrize("theta,h,q", [
    (4, 2, 1), (4, 1, 0), (4, 0, 0), (4, -2, 0), (4, -3, -1), (4, 100, 1), (4, -100, -1),
    (5, 3, 1), (5, 2, 0), (5, -2, 0), (5, -3, -1), (1, 1, 1), (1, 0, 0), (1, -1, -1),
])
def test_ternary_quantize_boundaries(theta, h, q):
    assert ternary_quantize(torch.tensor([h]), torch.tensor([theta])).item() == q


@pytest.mark.parametrize("theta,h,q", [(4, 2, 1), (4, 1, 0), (4, 0, 0), (4, -3, 0), (4, -100, 0), (5, 3, 1), (5, 2, 0)])
def test_binary_quantize_prunes_the_negative_level(theta, h, q):
    assert binary_quantize(torch.tensor([h]), torch.tensor([theta])).item() == q


def test_binary_membrane_restores_threshold_or_zero():
    lyr = layer(membrane="binary", neuron={"leak_shift": 1})
    # u=3 → q = 1; restore 4 >> 1 = 2, +(-5) → -3 → q = 0 (ternary would keep -1);
    # restore 0, +3 → 3 → q = 1; restore 2, +2 → 4 fires (hard reset) → q = 0
    assert steps(lyr, [3, -5, 3, 2]) == [(3, 0, 1), (-3, 0, 0), (3, 0, 1), (4, 1, 0)]


# ---- §4 neuron step ------------------------------------------------------------------------------

def steps(lyr, currents, bias=0, threshold=4):
    state = torch.zeros(1, dtype=torch.int64)
    out = []
    for t, i in enumerate(currents):
        spike, state, u = neuron_step(lyr, state, torch.tensor([i]), torch.tensor([bias]),
                                      torch.tensor([threshold]), first_step=(t == 0))
        out.append((u.item(), spike.item(), state.item()))
    return out


def test_lif_hard_reset_and_leak_rounding():
    # u = (h >> 1) + I: 3 → 3; (3>>1)+2 = 3; (3>>1)+3 = 4 fires → 0; 0 + -5 = -5; (-5>>1) = -3
    assert steps(layer(), [3, 2, 3, -5, 0]) == [(3, 0, 3), (3, 0, 3), (4, 1, 0), (-5, 0, -5), (-3, 0, -3)]


def test_negative_one_never_leaks_away():
    assert [s[2] for s in steps(layer(neuron={"leak_shift": 3}), [-1, 0, 0, 0])] == [-1, -1, -1, -1]


def test_lif_soft_reset_and_bias():
    # bias 1: u = 9 + 1 = 10 ≥ 4 → 10 - 4 = 6; (6>>1)+1+0 = 4 → 0; 0+1+0 = 1
    assert steps(layer(neuron={"reset": "soft"}), [9, 0, 0], bias=1) == [(10, 1, 6), (4, 1, 0), (1, 0, 1)]


def test_ternary_neuron_soft_reset_integer_membrane():
    lyr = layer(neuron={"type": "ternary", "reset": "soft", "leak_shift": 0})
    # -9 ≤ -4 → -1, h = -5; -5 + 0 → -1, h = -1; -1 + 6 = 5 → +1, h = 1
    assert steps(lyr, [-9, 0, 6]) == [(-9, -1, -5), (-5, -1, -1), (5, 1, 1)]


def test_relu_key_floors_clips_and_zeroes_negatives():
    u = torch.tensor([-7, -1, 0, 2, 3, 5, 6, 8, 9, 100])
    # θ = 3, 2 bits: floor(u/3) = -3, -1, 0, 0, 1, 1, 2, 2, 3, 33 → clip to [0, 3]
    assert relu_key(u, torch.tensor(3), 2).tolist() == [0, 0, 0, 0, 1, 1, 2, 2, 3, 3]
    assert relu_key(u, torch.tensor(1), 1).tolist() == [0, 0, 0, 1, 1, 1, 1, 1, 1, 1]
    assert relu_key(torch.tensor([44, 45, 47, 10 ** 6]), torch.tensor(3), 4).tolist() == [14, 15, 15, 15]


def test_relu_key_neuron_is_stateless():
    """A relu neuron forgets everything: u = b + I every step, whatever leak, reset or membrane."""
    for extra in ({}, {"membrane": "ternary"}):
        lyr = layer(neuron={"type": "relu", "bits": 2, "leak_shift": 0, "reset": "soft"}, **extra)
        # bias 1, θ = 4: u = 1 + I; keys floor(u/4) clipped to 3; state stays 0
        assert steps(lyr, [7, 7, -9, 20, 0], bias=1) == [(8, 2, 0), (8, 2, 0), (-8, 0, 0), (21, 3, 0), (1, 0, 0)]


def test_ternary_membrane_restores_plus_minus_threshold():
    lyr = layer(membrane="ternary", neuron={"leak_shift": 1})
    # u=3 (no fire) → q = +1 (2·3 ≥ 4); restore 4 >> 1 = 2, +(-5) → -3 → q = -1 (−6 < −4);
    # restore -4 >> 1 = -2, +0 → -2 → q = 0 (−4 is not < −4)
    assert steps(lyr, [3, -5, 0]) == [(3, 0, 1), (-3, 0, -1), (-2, 0, 0)]


def test_first_step_of_a_sample_ignores_the_stored_state():
    lyr = layer()
    spike, state, u = neuron_step(lyr, torch.tensor([100]), torch.tensor([1]), torch.tensor([0]),
                                  torch.tensor([4]), first_step=True)
    assert (u.item(), state.item()) == (1, 1)


# ---- §3 current, run_layer ------------------------------------------------------------------------

def test_synaptic_current_matches_float_convolution():
    rng = np.random.default_rng(3)
    lyr = config_from_dict({"format": "spikehq-searched", "version": 1, "name": "t", "time_steps": 3, "layers": [
        {"name": "c", "kind": "conv2d", "in_channels": 3, "out_channels": 5, "kernel_size": 3, "padding": 1,
         "height": 6, "width": 4, "scheme": "pot", "bits": 4, "activation_bits": 4, "lanes": 5,
         "neuron": {"type": "lif", "threshold": 1}}]}).layers[0]
    values = rng.choice(codes.levels("pot", 4), size=(5, 3, 3, 3))
    weights = LayerWeights(codes.encode("pot", 4, values), np.zeros(5, dtype=np.int64), np.ones(5, dtype=np.int64))
    x = torch.from_numpy(rng.integers(-8, 8, size=(3, 6, 4, 3)))
    got = synaptic_current(lyr, weights, x)
    ref = torch.nn.functional.conv2d(x.permute(0, 3, 1, 2).double(), torch.from_numpy(values).double(), padding=1)
    assert torch.equal(got, ref.permute(0, 2, 3, 1).round().long())


def test_run_layer_hand_example():
    lyr = layer(time_steps=2)
    values = np.array([[1, 2, -1], [-8, 7, 0]])
    weights = LayerWeights(codes.encode("uniform", 4, values).reshape(2, 3, 1, 1),
                           np.array([0, 1]), np.array([4, 4]))
    x = torch.tensor([[1, 1, 0], [1, 1, 1]]).reshape(2, 1, 1, 3)
    trace = run_layer(lyr, weights, x)
    # step 0: I = [3, -1]; u = [3, 0]; step 1: I = [2, -1]; u = [(3>>1)+2, (0>>1)+1-1] = [3, 0]
    assert trace.currents.reshape(2, 2).tolist() == [[3, -1], [2, -1]]
    assert trace.spikes.reshape(2, 2).tolist() == [[0, 0], [0, 0]]
    assert trace.membranes.reshape(2, 2).tolist() == [[3, 0], [3, 0]]
    # the next step's base (r >> 1) + b after each step: what a PE's accumulator holds (§10)
    assert trace.bases.reshape(2, 2).tolist() == [[1, 1], [1, 1]]


def test_inputs_are_checked():
    lyr = layer()
    with pytest.raises(ValueError, match=r"inputs must have shape \[4, 1, 1, 3\]"):
        check_inputs(lyr, torch.zeros(4, 3, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"1-bit activations must lie in \[0, 1\]"):
        check_inputs(lyr, torch.full((4, 1, 1, 3), 2))
    with pytest.raises(ValueError, match="must be integers"):
        check_inputs(lyr, torch.zeros(4, 1, 1, 3))


# ---- §6.1 spatial pruning ----------------------------------------------------------------------

def test_spatial_prune_zeroes_the_k_smallest_counts_ties_included():
    """2×2 positions, 2 channels, θ = (2, 4): Q(u) ≠ 0 iff 2u ≥ θ or 2u < −θ. Counts 2, 1, 1, 0;
    k = 2 → the 2nd smallest count is 1, so three positions (the tie too) get u = 0; k = 1 →
    only the count-0 position. A pruned neuron neither fires nor keeps a membrane."""
    conv = dict(kind="conv2d", in_channels=1, out_channels=2, kernel_size=1, height=2, width=2)
    theta = torch.tensor([2, 4])
    u = torch.tensor([[[1, -3], [-1, 2]],          # (0,0): 2u=2 ≥ 2 and 2u=-6 < -4 → 2; (0,1): only 2u=4 ≥ 4 → 1
                      [[0, 5], [-1, -2]]])         # (1,0): only 2u=10 ≥ 4 → 1; (1,1): 2u = -2, -4 (not < -θ) → 0
    raw = {"name": "l", **conv, "scheme": "uniform", "bits": 4, "neuron": {"type": "lif", "threshold": 2}}
    for k, pruned in ((2, [(0, 1), (1, 0), (1, 1)]), (1, [(1, 1)])):
        lay = config_from_dict({"format": "spikehq-searched", "version": 1, "name": "t", "time_steps": 1,
                                "layers": [{**raw, "spatial_prune_k": k}]}).layers[0]
        expected = u.clone()
        for y, x in pruned:
            expected[y, x] = 0
        assert torch.equal(spatial_prune(lay, u, theta), expected)
        batch = torch.stack([u, torch.zeros_like(u)])                # each sample ranks its own positions
        assert torch.equal(spatial_prune(lay, batch, theta)[0], expected)
        spike, state, _ = neuron_step(lay, torch.zeros_like(u), u, torch.zeros(2, dtype=torch.int64), theta, True)
        for y, x in pruned:
            assert not spike[y, x].any() and not state[y, x].any()
    assert torch.equal(spatial_prune(layer(), u, theta), u)                     # k = 0: untouched
