"""Export round trip: searched.json + weights load with the foundation loaders and hold exactly
the model's integers; the committed digits search output loads too."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from spikehq.golden import codes
from spikehq.golden.config import ConfigError, load_config, load_weights
from spikehq.search.cost import candidate_scheme
from spikehq.search.export import ExportError, export_network

from test_golden_network import calibrated_model

ROOT = Path(__file__).resolve().parents[1]


def test_round_trip_codes_bias_threshold(tmp_path):
    m, _ = calibrated_model(4)
    path = export_network(m, tmp_path, name="rt", metadata={"search": {"beta": 1.0}})
    cfg = load_config(path)
    assert cfg.time_steps == m.cfg.time_steps and cfg.metadata["search"]["beta"] == 1.0
    units = m.units()
    assert [l.name for l in cfg.layers] == [l.name for l in m.quant_layers()]
    for layer, q in zip(cfg.layers, m.quant_layers()):
        assert (layer.scheme, layer.bits) == candidate_scheme(q.candidate)
        assert layer.activation_bits == q.activation_bits and layer.group == q.shape.group
        w = load_weights(layer)
        values = codes.decode(layer.scheme, layer.bits, w.codes).reshape(q.weight.shape)
        assert np.array_equal(values, q.int_weight().detach().numpy().astype(np.int64))
        assert layer.weight_scale == pytest.approx(float(torch.as_tensor(q.scale(q.candidate)).detach()))
        if layer.name == "head":
            assert layer.neuron.leak_shift == 0 and layer.neuron.reset == "soft"
            assert layer.neuron.threshold == min(layer.widths(w).membrane_bound + 1, 2 ** 20 - 1)
            assert (w.bias == 0).all()
        else:
            b, th = (v.detach() for v in units[layer.name].folded())
            assert np.array_equal(w.bias, b.numpy().astype(np.int64))
            assert np.array_equal(w.threshold, th.numpy().astype(np.int64))
            assert (w.threshold >= 1).all()
    raw = json.loads(path.read_text())
    assert raw["metadata"]["network"]["attention"]["threshold"] == 4      # 0.5 / 2^-3


def test_export_records_measured_input_events(tmp_path):
    """With activity frames, every layer records the golden network's mean input events per
    sample (what the lanes policy needs); without them, none does."""
    from spikehq.golden.network import load_network
    m, _ = calibrated_model(4)
    frames = (torch.rand(6, m.cfg.time_steps, 2, 8, 8, generator=torch.Generator().manual_seed(7)) < 0.3).to(torch.uint8)
    cfg = load_config(export_network(m, tmp_path / "a", activity_frames=frames, activity_source="six random frames"))
    _, trace = load_network(tmp_path / "a" / "searched.json").run(frames, dump=True)
    for layer in cfg.layers:
        assert layer.input_events == float((trace[layer.name]["inputs"] != 0).sum()) / 6
    assert cfg.layer("tok0").input_events == float(frames.sum()) / 6
    assert cfg.metadata["activity"] == {"measured_by": "golden integer network", "samples": 6,
                                        "source": "six random frames"}
    plain = load_config(export_network(m, tmp_path / "b"))
    assert all(layer.input_events is None for layer in plain.layers) and "activity" not in plain.metadata


def test_fp32_layers_have_no_weights_and_search_mode_is_refused(tmp_path):
    m, _ = calibrated_model(5)
    choices = m.choices()
    choices["b0_fc1"] = "fp32"
    m.set_choices(choices)
    cfg = load_config(export_network(m, tmp_path / "a"))
    layer = cfg.layer("b0_fc1")
    assert layer.scheme == "fp32" and layer.bits == 32 and layer.weights_path is None
    assert not (tmp_path / "a" / "weights" / "b0_fc1.json").exists()
    from spikehq.golden.network import load_network
    with pytest.raises(ConfigError, match="b0_fc1.*fp32"):
        load_network(tmp_path / "a" / "searched.json")
    m.set_choices(None)
    with pytest.raises(ExportError, match="search mode"):
        export_network(m, tmp_path / "c")


def test_a2os2a_round_trip(tmp_path):
    """A2OS2A exports: relu keys with the model's key bits and folded key thresholds, ternary
    values, binary queries, variant a2os2a; the model's training settings include the key."""
    m, _ = calibrated_model(6, attention="a2os2a", key_bits=3, key_step=0.25)
    cfg = load_config(export_network(m, tmp_path))
    assert cfg.graph.attention.variant == "a2os2a" and cfg.graph.model["key_bits"] == 3
    units = m.units()
    for b in range(m.cfg.depth):
        key, value, query = (cfg.layer(f"b{b}_{n}") for n in ("k", "v", "q"))
        assert (key.neuron.type, key.neuron.bits, key.neuron.leak_shift, key.membrane) == ("relu", 3, 0, "integer")
        assert value.neuron.type == "ternary" and query.neuron.type == "lif"
        bias, threshold = (v.detach().numpy().astype(np.int64) for v in units[f"b{b}_k"].folded())
        w = load_weights(key)
        assert np.array_equal(w.bias, bias) and np.array_equal(w.threshold, threshold)
    ssa = load_config(export_network(calibrated_model(6)[0], tmp_path / "ssa"))
    assert "key_bits" not in ssa.graph.model and ssa.layer("b0_k").neuron.bits is None


COMMITTED = ["digits_searched", "digits_a2os2a"]


@pytest.mark.parametrize("folder", COMMITTED)
def test_committed_digits_search_output_loads(folder):
    path = ROOT / "configs" / folder / "searched.json"
    cfg = load_config(path)
    assert cfg.graph.attention.variant == {"digits_searched": "ssa", "digits_a2os2a": "a2os2a"}[folder]
    assert len(cfg.layers) >= 10
    assert {l.group for l in cfg.layers} == {"tokenizer", "attention", "mlp", "head"}
    for layer in cfg.layers:
        assert layer.is_hardware
        w = load_weights(layer)
        assert w is not None and w.codes.shape[0] == layer.out_channels
        layer.widths(w)


@pytest.mark.parametrize("folder", COMMITTED)
def test_committed_digits_search_output_reproduces_its_accuracy(folder):
    from spikehq.search.data import load_dataset
    from spikehq.golden.network import load_network
    net = load_network(ROOT / "configs" / folder / "searched.json")
    _, test = load_dataset("digits", time_steps=net.config.time_steps)
    accuracy = float((net.predict(test.frames) == test.labels).float().mean() * 100)
    assert accuracy == pytest.approx(net.config.metadata["search"]["accuracy"], abs=1e-4)


def test_learned_thresholds_fold_into_the_integer_thresholds(tmp_path):
    """SGP thresholds (SpQuant eq. 24–27): the exported per-channel θ is max(1, ceil(V_th/g))
    with the learned V_th, and the golden network equals the integer-mode model."""
    from spikehq.golden.network import load_network
    m, frames = calibrated_model(2, threshold_learning="sgp")
    units = m.units()
    with torch.no_grad():
        for i, u in enumerate(units.values()):
            u.v_th.fill_(0.6 + 0.17 * i)            # as if learned: a different V_th per layer
    path = export_network(m, tmp_path)
    changed = 0
    for layer in load_config(path).layers:
        if layer.name == "head":
            continue
        unit = units[layer.name]
        a, _ = unit.bn.fold()
        g = a * unit.layer.scale(unit.layer.candidate)
        cap = float(unit.FOLD_CAP * unit.layer.current_bound())
        learned = torch.ceil((unit.v_th.detach() / g).clamp(1.0, cap)).clamp_min(1).to(torch.int64)
        fixed = torch.ceil((1.0 / g).clamp(1.0, cap)).clamp_min(1).to(torch.int64)
        assert np.array_equal(load_weights(layer).threshold, learned.numpy())
        changed += int((learned != fixed).sum())
    assert changed > 0
    net = load_network(path)
    assert torch.equal(net.run(frames.to(torch.int64))[0], m.integer_scores(frames).to(torch.int64))


def test_masked_channels_leave_the_exported_layers(tmp_path):
    """SpQuant channel masks: masked output channels are removed from the layer and from the
    input channels of its reader, in whole lane groups (8 of tok0's 16, 16 of fc1's 24); the
    golden network still equals the integer-mode model."""
    from spikehq.golden.network import load_network
    m, frames = calibrated_model(3, channel_threshold=0.47, tokenizer_channels=(16, 16))
    units = m.units()
    for name, low in (("tok0", slice(1, None, 2)), ("b0_fc1", slice(0, 8))):
        prior = torch.ones(units[name].gate.running_prior.shape)
        prior[low] = 0.1                                      # below the prior threshold
        units[name].gate.running_prior.copy_(prior)
    path = export_network(m, tmp_path)
    cfg = load_config(path)
    assert cfg.layer("tok0").out_channels == 8 and cfg.layer("tok1").in_channels == 8
    assert cfg.layer("b0_fc1").out_channels == 16 and cfg.layer("b0_fc2").in_channels == 16
    assert cfg.layer("tok0").lanes == cfg.layer("b0_fc1").lanes == 8           # whole lane groups left
    w = load_weights(cfg.layer("tok1"))
    full = units["tok1"].layer.int_weight().detach().to(torch.int64).numpy()
    keep = list(range(0, 16, 2))
    assert np.array_equal(codes.decode(cfg.layer("tok1").scheme, cfg.layer("tok1").bits, w.codes), full[:, keep])
    net = load_network(path)
    with torch.no_grad():
        assert torch.equal(net.run(frames.to(torch.int64))[0], m.integer_scores(frames).to(torch.int64))


def test_binary_membrane_exports(tmp_path):
    from spikehq.golden.network import load_network
    m, frames = calibrated_model(4, membrane="binary")
    path = export_network(m, tmp_path / "a")
    cfg = load_config(path)
    assert {l.membrane for l in cfg.layers if l.name != "head"} == {"binary"}
    assert cfg.graph.attention.membrane == "ternary"
    assert torch.equal(load_network(path).run(frames.to(torch.int64))[0], m.integer_scores(frames).to(torch.int64))


@pytest.mark.parametrize("overrides", [{}, {"neuron": "ternary", "membrane": "ternary", "reset": "soft"}],
                         ids=["lif_integer", "ternary"])
def test_spatial_pruning_exports_k_and_the_golden_network_equals_the_model(tmp_path, overrides):
    """SpQuant spatial pruning (eq. 21–22): tok* and rpe get spatial_prune_k = ⌊S·H'·W'⌋, the
    rest 0; the golden network equals the integer-mode model, positions are pruned in every
    pruned layer (not all), and the same export without the k's differs (so the k's matter)."""
    from spikehq.golden.network import load_network
    m, frames = calibrated_model(4, spatial_sparsity=0.35, **overrides)
    path = export_network(m, tmp_path / "a")
    cfg = load_config(path)
    ks = {l.name: l.spatial_prune_k for l in cfg.layers if l.spatial_prune_k}
    assert ks == {l.name: int(0.35 * l.out_height * l.out_width) for l in cfg.layers
                  if l.name.startswith("tok") or l.name == "rpe"}
    assert all(k >= 1 for k in ks.values())
    net = load_network(path)
    with torch.no_grad():
        expected = m.integer_scores(frames).to(torch.int64)
    scores, trace = net.run(frames.to(torch.int64), dump=True)
    assert torch.equal(scores, expected)
    for name in ks:
        silent = (trace[name]["spikes"] == 0).all(dim=-1)                     # [T, B, H', W']
        assert silent.any() and not silent.all(), name
    raw = json.loads(path.read_text())
    for entry in raw["layers"]:
        entry.pop("spatial_prune_k", None)
    unpruned = tmp_path / "a" / "unpruned.json"
    unpruned.write_text(json.dumps(raw))
    assert not torch.equal(load_network(unpruned).run(frames.to(torch.int64))[0], expected)


def test_spatial_pruning_with_channel_masks_is_refused(tmp_path):
    m, _ = calibrated_model(3, channel_threshold=0.47, tokenizer_channels=(16, 16), spatial_sparsity=0.35)
    gate = m.units()["tok0"].gate
    prior = torch.ones(gate.running_prior.shape)
    prior[1::2] = 0.1
    gate.running_prior.copy_(prior)
    with pytest.raises(ExportError, match=r"^layer 'tok0': spatial pruning and channel masks together do not export") as e:
        export_network(m, tmp_path / "b")
    assert "\n" not in str(e.value) and not (tmp_path / "b").exists()
