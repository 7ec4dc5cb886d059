"""Golden integer network (golden/network.py) against the integer-mode QAT forward and against
the per-layer reference model."""

import pytest
import torch

from spikehq.golden import reference
from spikehq.search.export import export_network
from spikehq.search.model import SpikingTransformer, preset_config
from spikehq.golden.network import load_network

SMALL = dict(time_steps=3, tokenizer_channels=(8, 16), pool_after=(True, False), depth=2, heads=2,
             mlp_hidden=24, classes=5)


def calibrated_model(seed=0, **overrides):
    """A small random model with BatchNorm statistics from a few forward passes, so neurons fire."""
    torch.manual_seed(seed)
    cfg = preset_config("tiny", **{**SMALL, **overrides})
    m = SpikingTransformer(cfg)
    names = [l.name for l in m.quant_layers()]
    choices = {n: ("pot2", "pot4", "uni2", "uni4")[i % 4] for i, n in enumerate(names)}
    m.init_scales()
    m.set_choices(choices)
    frames = (torch.rand(48, cfg.time_steps, 2, 8, 8, generator=torch.Generator().manual_seed(seed)) < 0.3).float()
    m.train()
    for u in m.units().values():
        u.bn.momentum = 1.0                 # running statistics = this batch's
    with torch.no_grad():
        for _ in range(2):
            m(frames)
    m.freeze_bn(True)
    m.eval()
    return m, frames


@pytest.mark.parametrize("overrides", [{}, {"neuron": "ternary", "membrane": "ternary"},
                                       {"reset": "soft", "leak_shift": 2},
                                       {"attention": "a2os2a"}, {"attention": "a2os2a", "key_bits": 3, "key_step": 0.3}],
                         ids=["lif", "ternary", "soft", "a2os2a", "a2os2a_key3"])
def test_integer_network_reproduces_integer_mode_model(tmp_path, overrides):
    m, frames = calibrated_model(1, **overrides)
    path = export_network(m, tmp_path)
    net = load_network(path)
    scores, trace = net.run(frames.to(torch.int64), dump=True)
    assert torch.equal(scores, m.integer_scores(frames).to(torch.int64))
    with torch.no_grad():
        assert torch.equal(net.predict(frames), m(frames, integer=True).argmax(1))
    # the network is not trivially silent: spikes in every block and distinct class scores
    active = [name for name, t in trace.items() if t["spikes"].abs().sum() > 0]
    assert len(active) >= len(trace) // 2, active
    assert "tok0" in active and "b0_q" in active and scores.abs().sum() > 0
    if overrides.get("attention") == "a2os2a":      # multi-level keys and both signs of v reach the attention
        key = net.config.layer("b0_k").neuron
        assert key.type == "relu" and key.bits == overrides.get("key_bits", 2)
        assert trace["b0_k"]["spikes"].max() >= 2 and (trace["b0_v"]["spikes"] == -1).any()


def test_dumped_layers_replay_on_the_reference(tmp_path):
    m, frames = calibrated_model(2)
    net = load_network(export_network(m, tmp_path))
    _, trace = net.run(frames[:2].to(torch.int64), dump=True)
    for layer in net.config.layers:
        x = trace[layer.name]["inputs"]
        for b in range(2):
            ref = reference.run_layer(layer, net.weights[layer.name], x[:, b])
            assert torch.equal(ref.spikes, trace[layer.name]["spikes"][:, b]), layer.name


def test_network_rejects_bad_input(tmp_path):
    m, frames = calibrated_model(3)
    net = load_network(export_network(m, tmp_path))
    with pytest.raises(ValueError, match="frames: expected"):
        net.run(frames[:, :2].to(torch.int64))
    with pytest.raises(ValueError, match="tok0.*1-bit activations"):
        net.run((frames[:1] * 2).to(torch.int64))


def test_head_readout_exact_when_the_head_fires(tmp_path):
    m, frames = calibrated_model(6)
    net = load_network(export_network(m, tmp_path))
    expected = m.integer_scores(frames).to(torch.int64)
    assert torch.equal(net.run(frames.to(torch.int64))[0], expected)
    w = net.weights["head"]
    small = type(w)(codes=w.codes, bias=w.bias, threshold=w.threshold * 0 + 3)
    net.weights["head"] = small                        # a reachable threshold: the head now fires
    scores, trace = net.run(frames.to(torch.int64), dump=True)
    assert trace["head"]["spikes"].sum() > 0
    assert torch.equal(scores, expected)


def test_engine_activity_counts_spikes_of_every_engine(tmp_path):
    m, frames = calibrated_model()
    path = export_network(m, tmp_path / "net")
    net = load_network(path)
    act = net.engine_activity(frames.to(torch.int64), batch_size=5)
    _, trace = net.run(frames.to(torch.int64), dump=True)
    assert set(act) == set(trace)
    for name, t in trace.items():
        assert act[name]["spikes"] == int((t["spikes"] != 0).sum())
        assert act[name]["spike_rate"] == pytest.approx(act[name]["spikes"] / t["spikes"].numel())
        assert act[name]["input_rate"] == pytest.approx(float((t["inputs"] != 0).float().mean()))
