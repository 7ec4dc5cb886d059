"""The supernet pieces: candidate mixture (paper eq. 12), hardware loss (eq. 13), neuron variants,
A2OS2A attention, activation widths, presets."""

import pytest
import torch
import torch.nn.functional as F

from spikehq.search.cost import CANDIDATES, LayerShape
from spikehq.search.model import (ChannelGate, ModelConfig, Neuron, QuantLayer, SpikingTransformer, bits_for_range,
                                  preset_config)


def test_mixture_equals_weighted_sum_of_quantized_layers():
    torch.manual_seed(0)
    layer = QuantLayer(LayerShape("l", "conv2d", 3, 4, kernel_size=3, padding=1, height=6, width=6))
    layer.init_scales()
    layer.choice = None
    g = F.softmax(torch.randn(5), 0)
    layer.sample = g
    x = torch.rand(2, 3, 6, 6)
    mixed = layer(x)
    parts = sum(g[i] * F.conv2d(x, layer.quant_weight(c), padding=1) for i, c in enumerate(CANDIDATES))
    assert torch.allclose(mixed, parts, atol=1e-5)
    layer.sample = None
    with pytest.raises(RuntimeError, match="Gumbel sample"):
        layer(x)


def test_hardware_loss_is_probability_weighted_cost():
    m = SpikingTransformer(preset_config("tiny", depth=1))
    for i, layer in enumerate(m.quant_layers()):
        layer.cost.copy_(torch.arange(5.0) + i)
        with torch.no_grad():
            layer.alpha.copy_(torch.tensor([0.0, 1.0, 0.0, -1.0, 2.0]))
    p = F.softmax(torch.tensor([0.0, 1.0, 0.0, -1.0, 2.0]), 0)
    expected = sum((p * (torch.arange(5.0) + i)).sum() for i in range(len(m.quant_layers())))
    assert torch.isclose(m.hardware_loss(), expected)
    m.hardware_loss().backward()
    assert all(layer.alpha.grad is not None for layer in m.quant_layers())


def test_neuron_variants():
    y = torch.tensor([[0.6], [0.8], [-1.5], [0.2]])
    lif = Neuron(kind="lif", membrane="float", leak_shift=1, reset="hard")
    assert lif(y, 1.0).flatten().tolist() == [0, 1, 0, 0]          # u = 0.6, 0.3 + 0.8, -1.5, -0.55
    ter = Neuron(kind="ternary", membrane="float", leak_shift=1, reset="hard")
    assert ter(y, 1.0).flatten().tolist()[2] == -1
    tm = Neuron(kind="lif", membrane="ternary", leak_shift=0, reset="hard")
    # ternary membrane: 0.6 → stored +1·θ; next step u = 1 + 0.6 fires
    assert tm(torch.tensor([[0.6], [0.6]]), 1.0).flatten().tolist() == [0, 1]
    soft = Neuron(kind="lif", membrane="float", leak_shift=0, reset="soft")
    assert soft(torch.tensor([[2.5], [0.0], [0.0]]), 1.0).flatten().tolist() == [1, 1, 0]


def test_integer_leak_rounds_toward_minus_infinity():
    n = Neuron(kind="lif", membrane="float", leak_shift=1, reset="hard")
    y = torch.tensor([[-3.0], [0.0], [5.0]])
    # integer: u0 = -3, u1 = floor(-1.5) = -2, u2 = floor(-1) + 5 = 4 ≥ 4 fires; float: -1.5 → 4.25 fires too
    assert n(y, 4.0, integer=True).flatten().tolist() == [0, 0, 1]
    # integer: 3, floor(1.5) + 2 = 3, 3 never reaches 3.5; float: 3, 1.5 + 2 = 3.5 fires
    y = torch.tensor([[3.0], [2.0], [2.0]])
    assert n(y, 3.5, integer=True).flatten().tolist() == [0, 0, 0]
    assert n(y, 3.5).flatten().tolist() == [0, 1, 0]


def test_a2os2a_trains_and_ternary_values():
    torch.manual_seed(0)
    m = SpikingTransformer(preset_config("tiny", attention="a2os2a", depth=1, time_steps=2))
    assert m.blocks[0].v.neuron.kind == "ternary" and not m.blocks[0].k.spiking
    x = (torch.rand(4, 2, 2, 8, 8) < 0.4).float()
    out = m(x)
    F.cross_entropy(out, torch.tensor([0, 1, 2, 3])).backward()
    assert m.blocks[0].k.layer.weight.grad.abs().sum() > 0
    v = m.blocks[0].v(torch.randn(2 * 4, 16, 64) * 3, 2)
    assert set(v.unique().tolist()) <= {-1.0, 0.0, 1.0} and (v == -1).any()
    k = m.blocks[0].k(torch.randn(2 * 4, 16, 64) * 3, 2)          # integer ReLU key, 2 bits
    assert set(k.unique().tolist()) == {0.0, 1.0, 2.0, 3.0}


def test_relu_key_quantizes_like_the_contract():
    """Float mode: clip(floor(ReLU(y)/δ), 0, 2^b − 1) with a straight-through floor (gradient
    1/δ inside the range, 0 where clipped or negative); bad key options are one-line errors."""
    m = SpikingTransformer(preset_config("tiny", attention="a2os2a", depth=1, time_steps=1, key_bits=2, key_step=0.5))
    unit = m.blocks[0].k
    y = torch.tensor([-1.0, 0.2, 0.5, 0.99, 1.2, 1.5, 9.0], requires_grad=True)
    out = unit.relu_key(y / unit.v_th)
    assert out.tolist() == [0, 0, 1, 1, 2, 3, 3]
    out.sum().backward()
    assert y.grad.tolist() == [0, 2, 2, 2, 2, 2, 0]         # 1.5/δ = 3 is still inside the clip
    for field, value in (("key_bits", 5), ("key_bits", 0), ("key_step", 0.0), ("key_step", float("nan"))):
        with pytest.raises(ValueError, match=f"model config {field}: expected"):
            preset_config("tiny", attention="a2os2a", **{field: value})


def test_activation_bits_and_presets():
    assert bits_for_range(0, 1) == 1 and bits_for_range(0, 2) == 3 and bits_for_range(-1, 1) == 2
    assert bits_for_range(0, 6) == 4 and bits_for_range(-6, 6) == 4 and bits_for_range(0, 8) == 5
    m = SpikingTransformer(preset_config("tiny"))
    bits = {l.name: l.activation_bits for l in m.quant_layers()}
    assert bits["tok0"] == 1 and bits["rpe"] == 1 and bits["b0_q"] == 3 and bits["b0_proj"] == 1
    assert bits["b1_q"] == 4 and bits["head"] == 4
    paper = preset_config("paper")
    assert paper.dim == 256 and paper.token_grid == (8, 8) and paper.time_steps == 16 and paper.heads == 16
    with pytest.raises(ValueError, match="heads"):
        preset_config("tiny", heads=5)
    with pytest.raises(ValueError, match="preset"):
        preset_config("huge")
    assert ModelConfig.from_dict(preset_config("tiny").to_dict()) == preset_config("tiny")


def test_paper_preset_runs_and_matches_the_cost_model():
    from spikehq.search.cost import network_cost
    from spikehq.search.model import paper_layers
    cfg = preset_config("paper", time_steps=1)
    m = SpikingTransformer(cfg)
    assert [s.name for s in m.layer_shapes()] == [s.name for s in paper_layers(11)]
    assert sum(p.numel() for l in m.quant_layers() for p in [l.weight]) == network_cost(paper_layers(11), "fp32", 16)["params"]
    with torch.no_grad():
        out = m((torch.rand(1, 1, 2, 128, 128, generator=torch.Generator().manual_seed(0)) < 0.05).float())
    assert out.shape == (1, 11)


@pytest.mark.parametrize("field,value,message", [
    ("membrane", "half", "model config membrane: expected 'float', 'ternary' or 'binary', got 'half'"),
    ("threshold_learning", "adam", "model config threshold_learning: expected 'fixed' or 'sgp', got 'adam'"),
    ("spatial_sparsity", 1.0, "model config spatial_sparsity: expected a share in [0, 1), got 1.0"),
    ("channel_threshold", -0.1, "model config channel_threshold: expected 0 (off) or a probability in (0, 1), got -0.1"),
])
def test_spquant_options_are_validated_in_one_line(field, value, message):
    with pytest.raises(ValueError) as e:
        preset_config("tiny", **{field: value})
    assert str(e.value) == message
    with pytest.raises(ValueError, match=r"^model config membrane: .*binary silences"):
        preset_config("tiny", membrane="binary", neuron="ternary")


def test_spatial_pruning_silences_the_least_important_positions():
    """Eq. 21–22: per sample and step, positions whose ‖Q(u)‖₂ is at most the k-th smallest
    (k = ⌊0.35·16⌋ = 5) neither spike nor keep state."""
    torch.manual_seed(0)
    y = torch.rand(3, 2, 4, 4, 4) * 2                       # [T, B, C, H, W], all positive
    n = Neuron(kind="lif", membrane="ternary", leak_shift=0, reset="hard", spatial_sparsity=0.35)
    s = n(y, 1.0)
    assert n.pruned_share >= 5 / 16
    plain = Neuron(kind="lif", membrane="ternary", leak_shift=0, reset="hard")(y, 1.0)
    silent = (s.sum(dim=2) == 0) & (plain.sum(dim=2) > 0)   # positions pruned although they would fire
    assert silent[0].flatten(1).sum(dim=1).min() >= 5
    # first step: importance = ‖Q(u)‖₂ over channels, so the pruned ones are the least important
    q = (2 * y[0] >= 1).float()
    imp = q.square().sum(1).sqrt().flatten(1)
    kth = imp.kthvalue(5, dim=1, keepdim=True).values
    assert torch.equal(s[0].sum(1).flatten(1) > 0, (imp > kth) & (plain[0].sum(1).flatten(1) > 0))


def test_channel_gate_masks_channels_below_the_prior_threshold_in_lane_groups():
    gate = ChannelGate(8, 0.47)
    gate.running_prior.copy_(torch.tensor([1.0, 1, 1, 1, 0.5, 0.5, 1.5, 1.5]))
    # z = prior / mean(prior) = prior; p = σ(4z − 4) ≥ 0.47 ⇔ z ≥ 0.97
    assert gate.kept().tolist() == [0, 1, 2, 3, 6, 7]
    gate.quantum = 4                                          # 6 rounded up to 8 by the most likely others
    assert gate.kept().tolist() == list(range(8))
    gate.running_prior.copy_(torch.tensor([1.0, 0.3, 0.25, 0.2, 0.15, 0.1, 0.05, 5]))
    assert gate.kept().tolist() == [0, 1, 2, 7]               # 2 kept → one quantum of 4
    cfg = preset_config("tiny", tokenizer_channels=(16, 16), pool_after=(False, True), depth=1, heads=2,
                        mlp_hidden=16, channel_threshold=0.47)
    m = SpikingTransformer(cfg)
    gated = {n: u.gate.quantum for n, u in m.units().items() if u.gate is not None}
    assert gated == {"tok0": 8, "b0_fc1": 8}                  # the layers no residual ties; their lanes
    unit = m.units()["tok0"]
    unit.gate.running_prior.copy_(torch.tensor([1.0, 0.5] * 8))
    assert unit.gate.kept().tolist() == list(range(0, 16, 2))
    m.set_choices("fp32")
    m.eval()
    frames = (torch.rand(4, cfg.time_steps, 2, 8, 8) < 0.5).float()
    s = unit(frames.transpose(0, 1).reshape(-1, 2, 8, 8), cfg.time_steps)
    assert s[:, :, 1::2].abs().sum() == 0 and s[:, :, 0::2].abs().sum() > 0


def test_sgp_threshold_is_learned():
    cfg = preset_config("tiny", tokenizer_channels=(8, 16), pool_after=(False, True), depth=1, heads=2,
                        mlp_hidden=16, threshold_learning="sgp")
    torch.manual_seed(0)
    m = SpikingTransformer(cfg)
    m.set_choices("fp32")
    unit = m.units()["tok1"]
    assert isinstance(unit.v_th, torch.nn.Parameter) and unit.v_th.item() == 1.0
    opt = torch.optim.SGD([u.v_th for u in m.units().values()], lr=0.5)
    frames = (torch.rand(16, cfg.time_steps, 2, 8, 8) < 0.5).float()
    labels = torch.arange(16) % 10
    for _ in range(3):
        opt.zero_grad()
        F.cross_entropy(m(frames), labels).backward()
        assert unit.v_th.grad is not None and unit.v_th.grad != 0
        opt.step()
    assert unit.v_th.item() != 1.0
