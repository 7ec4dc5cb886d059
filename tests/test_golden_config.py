"""Every invalid searched.json field and weights-file field gets a one-line error naming it."""

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from spikehq.golden.config import ConfigError, config_from_dict, load_config, load_weights, signed_width


def base() -> dict:
    return {
        "format": "spikehq-searched", "version": 1, "name": "net", "time_steps": 4,
        "layers": [
            {"name": "fc", "kind": "linear", "in_features": 6, "out_features": 4, "scheme": "pot", "bits": 4,
             "neuron": {"type": "lif", "threshold": 5}},
            {"name": "conv", "kind": "conv2d", "in_channels": 2, "out_channels": 4, "kernel_size": 3,
             "height": 5, "width": 5, "scheme": "uniform", "bits": 2, "activation_bits": 3,
             "neuron": {"type": "ternary", "threshold": 2, "leak_shift": 0, "reset": "soft"},
             "membrane": "ternary"},
        ],
    }


def set_field(raw: dict, path: str, value) -> dict:
    """``raw`` with the field at dotted ``path`` (list indices as numbers) set, or deleted."""
    *parents, last = path.split(".")
    node = raw
    for key in parents:
        node = node[int(key)] if key.isdigit() else node[key]
    if value is DELETE:
        del node[int(last) if last.isdigit() else last]
    else:
        node[int(last) if last.isdigit() else last] = value
    return raw


def mutate(path: str, value):
    return set_field(base(), path, value)


class _Delete:
    def __repr__(self):
        return "<deleted>"


DELETE = _Delete()

INVALID = [
    ("format", "other", "format: expected \"spikehq-searched\", got \"other\""),
    ("version", 2, "version: expected 1, got 2"),
    ("name", "9net", "name: expected an identifier"),
    ("name", DELETE, "missing required field 'name'"),
    ("time_steps", 0, "time_steps: expected a value >= 1, got 0"),
    ("time_steps", "4", "time_steps: expected integer, got \"4\""),
    ("layers", [], "layers: must not be empty"),
    ("description", 5, "description: expected string, got 5"),
    ("metadata", [], "metadata: expected object, got []"),
    ("layers.0.out_features", -1, "layers[0].out_features: expected a value >= 1, got -1"),
    ("layers.0.tokens", 0, "layers[0].tokens: expected a value >= 1, got 0"),
    ("layers.0.group", 3, "layers[0].group: expected string, got 3"),
    ("layers.0.name", "", "layers[0].name: expected an identifier"),
    ("layers.1.in_channels", "2", "layers[1].in_channels: expected integer, got \"2\""),
    ("layers.1.out_channels", 0, "layers[1].out_channels: expected a value >= 1, got 0"),
    ("layers.1.width", 0, "layers[1].width: expected a value >= 1, got 0"),
    ("layers.1.padding", -1, "layers[1].padding: expected a value >= 0, got -1"),
    ("extra", 1, "unknown field 'extra'"),
    ("layers.0.kind", "conv3d", "layers[0].kind: expected one of \"linear\", \"conv2d\", got \"conv3d\""),
    ("layers.0.scheme", "int8", "layers[0].scheme: expected one of \"fp32\", \"pot\", \"uniform\", got \"int8\""),
    ("layers.0.bits", 3, "layers[0].bits: expected one of 2, 4, 32, got 3"),
    ("layers.0.bits", 32, "layers[0].bits: a pot layer takes 2 or 4 bits, got 32"),
    ("layers.0.bits", DELETE, "layers[0]: missing required field 'bits' for a pot layer"),
    ("layers.0.in_features", DELETE, "layers[0]: missing required field 'in_features' for a linear layer"),
    ("layers.0.in_features", 0, "layers[0].in_features: expected a value >= 1, got 0"),
    ("layers.0.kernel_size", 3, "layers[0].kernel_size: not a field of a linear layer"),
    ("layers.0.activation_bits", 9, "layers[0].activation_bits: expected a value <= 8, got 9"),
    ("layers.0.lanes", 3, "layers[0].lanes: must divide the 4 output channels, got 3"),
    ("layers.0.lanes", 0, "layers[0].lanes: expected a value >= 1, got 0"),
    ("layers.0.membrane", "float",
     "layers[0].membrane: expected one of \"integer\", \"ternary\", \"binary\", got \"float\""),
    ("layers.1.membrane", "binary", "layers[1].membrane: a binary membrane silences the -1 spikes (SpQuant eq. 20), "
     "which leaves a ternary neuron a binary LIF: use neuron type 'lif'"),
    ("layers.0.weights", "missing.json", "layers[0].weights: file not found"),
    ("layers.0.weight_scale", 0, "layers[0].weight_scale: expected a value > 0, got 0"),
    ("layers.0.neuron", DELETE, "layers[0]: missing required field 'neuron'"),
    ("layers.0.neuron.type", "izhikevich", "layers[0].neuron.type: expected one of \"lif\", \"ternary\""),
    ("layers.0.neuron.threshold", 0, "layers[0].neuron.threshold: expected a value >= 1, got 0"),
    ("layers.0.neuron.threshold", 1.5, "layers[0].neuron.threshold: expected integer, got 1.5"),
    ("layers.0.neuron.leak_shift", 17, "layers[0].neuron.leak_shift: expected a value <= 16, got 17"),
    ("layers.0.neuron.reset", "zero", "layers[0].neuron.reset: expected one of \"hard\", \"soft\", got \"zero\""),
    ("layers.0.neuron.tau", 2, "layers[0].neuron: unknown field 'tau'"),
    ("layers.0.neuron.bits", 2, "layers[0].neuron.bits: not a field of a lif neuron"),
    ("layers.0.neuron.type", "relu", "layers[0].neuron.bits: required for a relu neuron"),
    ("layers.0.neuron.bits", 5, "layers[0].neuron.bits: expected a value <= 4, got 5"),
    ("layers.0.neuron.bits", 0, "layers[0].neuron.bits: expected a value >= 1, got 0"),
    ("layers.1.name", "fc", "layers[1].name: duplicate layer name 'fc'"),
    ("layers.1.in_features", 3, "layers[1].in_features: not a field of a conv2d layer"),
    ("layers.1.height", DELETE, "layers[1]: missing required field 'height' for a conv2d layer"),
    ("layers.1.padding", 3, "layers[1].padding: expected at most kernel_size - 1 = 2, got 3"),
    ("layers.1.kernel_size", 16, "layers[1].kernel_size: expected a value <= 15, got 16"),
    ("layers.1.scheme", "fp32", "layers[1].bits: an fp32 layer has 32 bits, got 2"),
    ("layers.1.spatial_prune_k", -1, "layers[1].spatial_prune_k: expected a value >= 0, got -1"),
    ("layers.1.spatial_prune_k", 2.5, "layers[1].spatial_prune_k: expected integer, got 2.5"),
    ("layers.1.spatial_prune_k", 25, "layers[1].spatial_prune_k: expected 0 (off) or 1 … 24 (below the 25 output "
     "positions), got 25"),
    ("layers.0.spatial_prune_k", 1, "layers[0].spatial_prune_k: spatial pruning needs a conv2d layer with a spiking "
     "neuron, got a linear layer with a lif neuron (use 0)"),
]


@pytest.mark.parametrize("path,value,message", INVALID, ids=[f"{p}={v!r}"[:40] for p, v, _ in INVALID])
def test_invalid_field_names_the_field(path, value, message):
    with pytest.raises(ConfigError) as info:
        config_from_dict(mutate(path, value), source="cfg.json")
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith("cfg.json: ")
    assert message in text, text


def test_valid_config_and_defaults():
    net = config_from_dict(base())
    fc, conv = net.layers
    assert (fc.kind, fc.in_channels, fc.out_channels, fc.height, fc.width, fc.kernel_size) == ("linear", 6, 4, 1, 1, 1)
    assert fc.lanes == 4 and fc.activation_bits == 1 and fc.membrane == "integer"
    assert fc.neuron.leak_shift == 1 and fc.neuron.reset == "hard"
    assert conv.padding == 1 and (conv.out_height, conv.out_width) == (5, 5) and conv.fan_in == 18
    assert fc.spatial_prune_k == conv.spatial_prune_k == 0
    assert config_from_dict(mutate("layers.1.spatial_prune_k", 24)).layers[1].spatial_prune_k == 24


def test_widths_follow_the_contract():
    fc, conv = config_from_dict(base()).layers
    w = fc.widths()
    assert w.weight_max_abs == 64 and w.activation_max_abs == 1
    assert w.current_bound == 6 * 64 and w.membrane_bound == 4 * 6 * 64
    assert w.current_width == signed_width(384) == 10
    c = conv.widths()
    assert c.current_bound == 18 * 2 * 4 and c.membrane_bound == 2 + 18 * 2 * 4  # ternary: θ + B_I
    binary = config_from_dict(set_field(base(), "layers.0.membrane", "binary")).layers[0].widths()
    assert binary.membrane_bound == 5 + 6 * 64                                    # binary: θ + B_I


def write_weights(tmp_path, **overrides):
    raw = base()
    raw["layers"][0]["weights"] = "w.json"
    content = {"format": "spikehq-weights", "version": 1, "layer": "fc",
               "codes": np.zeros((4, 6), dtype=int).tolist(), "bias": [0, 1, -1, 2], "threshold": [1, 2, 3, 4]}
    content.update(overrides)
    (tmp_path / "w.json").write_text(json.dumps(content))
    (tmp_path / "net.json").write_text(json.dumps(raw))
    return load_config(tmp_path / "net.json").layers[0]


WEIGHT_ERRORS = [
    ({"format": "x"}, "expected format 'spikehq-weights' version 1"),
    ({"layer": "other"}, "w.json.layer: expected 'fc', got 'other'"),
    ({"codes": [[0] * 6] * 3}, "w.json.codes: expected shape [4, 6], got [3, 6]"),
    ({"codes": [[16] * 6] * 4}, "w.json.codes: expected 4-bit code words in [0, 15], got 16"),
    ({"codes": [[0.5] * 6] * 4}, "w.json.codes: expected integers, got float64 values"),
    ({"codes": [[0] * 6, [0]] * 2}, "w.json.codes: expected a nested list of shape [4, 6]"),
    ({"bias": [0, 0]}, "w.json.bias: expected shape [4], got [2]"),
    ({"threshold": [1, 0, 1, 1]}, "w.json.threshold: expected integers >= 1, got 0"),
]


@pytest.mark.parametrize("overrides,message", WEIGHT_ERRORS, ids=[m[:30] for _, m in WEIGHT_ERRORS])
def test_invalid_weights_file(tmp_path, overrides, message):
    layer = write_weights(tmp_path, **overrides)
    with pytest.raises(ConfigError) as info:
        load_weights(layer)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_weights_load(tmp_path):
    weights = load_weights(write_weights(tmp_path))
    assert weights.codes.shape == (4, 6, 1, 1)
    assert weights.bias.tolist() == [0, 1, -1, 2] and weights.threshold.tolist() == [1, 2, 3, 4]


def test_unreadable_config_files(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{ not json")
    with pytest.raises(ConfigError, match=r"bad.json: not valid JSON \(line 1, column 3"):
        load_config(tmp_path / "bad.json")
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(ConfigError, match="expected a JSON object at the top level"):
        load_config(tmp_path / "list.json")


def test_shipped_example_is_valid():
    net = load_config("configs/example_tiny.json")
    for layer in net.layers:
        weights = load_weights(layer)
        assert (weights is None) == (layer.scheme == "fp32")
    assert copy.deepcopy(net) == net


# ---- metadata.network: the typed graph --------------------------------------------------------

DIGITS = Path("configs/digits_searched/searched.json")


def graph_config(path: str, value) -> dict:
    """The digits search export with one field under metadata.network changed (or deleted)."""
    return set_field(json.loads(DIGITS.read_text()), f"metadata.network.{path}", value)


G = "cfg.json: metadata.network"
GRAPH_INVALID = [
    ("architecture", "resnet", f"{G}.architecture: expected one of \"spikformer\", \"feedforward\", got \"resnet\""),
    ("architecture", DELETE, f"{G}: missing required field 'architecture'"),
    ("model", DELETE, f"{G}: missing required field 'model'"),
    ("model", [], f"{G}.model: expected object, got []"),
    ("model.pool_after", DELETE, f"{G}.model: missing required field 'pool_after'"),
    ("model.pool_after", [], f"{G}.model.pool_after: must not be empty"),
    ("model.pool_after.1", 1, f"{G}.model.pool_after[1]: expected boolean, got 1"),
    ("model.depth", -1, f"{G}.model.depth: expected a value >= 0, got -1"),
    ("model.depth", 3, f"{G}: layer 'b2_q' of the graph is missing from layers"),
    ("model.pool_after", [False, True, False, True], f"{G}: layer 'tok3' of the graph is missing from layers"),
    ("token_grid", [4], f"{G}.token_grid: expected at least 2 items, got 1"),
    ("token_grid", [4, 4, 1], f"{G}.token_grid: expected at most 2 items, got 3"),
    ("token_grid", [4, 0], f"{G}.token_grid[1]: expected a value >= 1, got 0"),
    ("token_grid", [2, 8], f"{G}.token_grid: expected the rpe layer's [4, 4], got [2, 8]"),
    ("tokens", 12, f"{G}.tokens: expected token_grid 4×4 = 16, got 12"),
    ("tokens", "16", f"{G}.tokens: expected integer, got \"16\""),
    ("readout", 1, f"{G}.readout: expected string, got 1"),
    ("extra", 1, f"{G}: unknown field 'extra'"),
    ("attention", DELETE, f"{G}: missing required field 'attention'"),
    ("attention.variant", "a2os2a", f"{G}: layer 'b0_k': neuron type 'lif' cannot be a a2os2a attention input "
                                    "(expected 'relu')"),
    ("attention.variant", "sdsa", f"{G}.attention.variant: expected one of \"ssa\", \"a2os2a\", got \"sdsa\""),
    ("attention.heads", 0, f"{G}.attention.heads: expected a value >= 1, got 0"),
    ("attention.heads", 5, f"{G}.attention.heads: must divide the 64 channels, got 5"),
    ("attention.threshold", 0, f"{G}.attention.threshold: expected a value >= 1, got 0"),
    ("attention.threshold", DELETE, f"{G}.attention: missing required field 'threshold'"),
    ("attention.membrane", "float", f"{G}.attention.membrane: expected one of \"integer\", \"ternary\", got \"float\""),
    ("attention.neuron.type", "izh", f"{G}.attention.neuron.type: expected one of \"lif\", \"ternary\", got \"izh\""),
    ("attention.neuron.leak_shift", 17, f"{G}.attention.neuron.leak_shift: expected a value <= 16, got 17"),
    ("attention.neuron.reset", DELETE, f"{G}.attention.neuron: missing required field 'reset'"),
    ("attention.neuron.threshold", 3, f"{G}.attention.neuron: unknown field 'threshold'"),
]


@pytest.mark.parametrize("path,value,message", GRAPH_INVALID, ids=[f"{p}={v!r}"[:40] for p, v, _ in GRAPH_INVALID])
def test_invalid_graph_field_names_the_field(path, value, message):
    with pytest.raises(ConfigError) as info:
        config_from_dict(graph_config(path, value), source="cfg.json", base_dir=DIGITS.parent)
    assert str(info.value) == message


def _digits_with_neuron(name: str, **neuron) -> dict:
    raw = json.loads(DIGITS.read_text())
    layer = next(l for l in raw["layers"] if l["name"] == name)
    layer["neuron"].update(neuron)
    return raw


@pytest.mark.parametrize("name,neuron,variant,message", [
    ("b1_k", {"type": "relu", "bits": 2}, "ssa", "layer 'b1_k': neuron type 'relu' cannot be a ssa attention input "
                                                 "(expected 'lif' or 'ternary')"),
    ("b0_fc1", {"type": "relu", "bits": 2}, "ssa", "layer 'b0_fc1': neuron type 'relu' cannot be a layer outside "
                                                   "the attention keys (expected 'lif' or 'ternary')"),
])
def test_attention_variant_checks_the_neuron_types(name, neuron, variant, message):
    raw = _digits_with_neuron(name, **neuron)
    raw["metadata"]["network"]["attention"]["variant"] = variant
    with pytest.raises(ConfigError) as info:
        config_from_dict(raw, source="cfg.json", base_dir=DIGITS.parent)
    assert str(info.value) == f"{G}: {message}"


def test_a2os2a_graph_loads_with_relu_keys():
    raw = json.loads(DIGITS.read_text())
    for layer in raw["layers"]:
        if layer["name"].endswith("_k"):
            layer["neuron"].update(type="relu", bits=3)
        if layer["name"].endswith("_v"):
            layer["neuron"]["type"] = "ternary"
    raw["metadata"]["network"]["attention"]["variant"] = "a2os2a"
    config = config_from_dict(raw, source="cfg.json", base_dir=DIGITS.parent)
    key = config.layer("b1_k").neuron
    assert config.graph.attention.variant == "a2os2a" and (key.type, key.bits, key.value_max) == ("relu", 3, 7)
    assert config.layer("b1_q").neuron.bits is None and config.layer("b1_q").neuron.value_max == 1


def test_graph_is_parsed_once_into_typed_objects():
    config = load_config(DIGITS)
    graph = config.graph
    assert graph.pool_after == (False, True, False) and graph.depth == 2 and graph.token_grid == (4, 4)
    assert graph.tokens == 16 and graph.after_block(-1) == "b0_q" and graph.after_block(1) == "head"
    assert graph.attention.heads == 4 and graph.attention.threshold == 4 and graph.attention.neuron.type == "lif"
    assert graph.layer_names[:4] == ("tok0", "tok1", "tok2", "rpe") and graph.layer_names[-1] == "head"
    assert set(graph.layer_names) == {layer.name for layer in config.layers}
    assert load_config("configs/example_tiny.json").graph is None


@pytest.mark.parametrize("value,message", [(-1.0, "expected a value >= 0, got -1.0"), ("5", "expected number, got \"5\"")])
def test_invalid_input_events(value, message):
    raw = base()
    raw["layers"][0]["input_events"] = value
    with pytest.raises(ConfigError) as info:
        config_from_dict(raw, source="cfg.json")
    assert str(info.value) == f"cfg.json: layers[0].input_events: {message}"


def feedforward(**changes) -> dict:
    """conv (2→4, 4×4) → sumpool 2 → flatten → fc (16 → 3, 4-bit inputs) with a feed-forward graph."""
    raw = {"format": "spikehq-searched", "version": 1, "name": "ff", "time_steps": 2,
           "layers": [{"name": "conv", "kind": "conv2d", "in_channels": 2, "out_channels": 4, "kernel_size": 3,
                       "height": 4, "width": 4, "scheme": "uniform", "bits": 4, "neuron": {"type": "lif", "threshold": 2}},
                      {"name": "fc", "kind": "linear", "in_features": 16, "out_features": 3, "tokens": 1,
                       "scheme": "pot", "bits": 4, "activation_bits": 4, "neuron": {"type": "lif", "threshold": 2}}],
           "metadata": {"network": {"architecture": "feedforward", "input": [2, 4, 4], "output": "fc",
                                    "nodes": [{"name": "conv", "op": "layer", "inputs": ["input"]},
                                              {"name": "pool", "op": "sumpool", "kernel": 2, "inputs": ["conv"]},
                                              {"name": "flat", "op": "flatten", "inputs": ["pool"]},
                                              {"name": "fc", "op": "layer", "inputs": ["flat"]}]}}}
    for path, value in changes.items():
        set_field(raw, path.replace("__", "."), value)
    return raw


F = "cfg.json: metadata.network"
FEEDFORWARD_INVALID = [
    ({"metadata__network__input": [2, 4]}, f"{F}.input: expected at least 3 items, got 2"),
    ({"metadata__network__nodes__1__inputs": ["fc"]}, f"{F}.nodes[1].inputs: 'fc' is not 'input' or an earlier node"),
    ({"metadata__network__nodes__1__kernel": 3}, f"{F}.nodes[1].kernel: must divide the input's 4×4 pixels, got 3"),
    ({"metadata__network__nodes__2__kernel": 2}, f"{F}.nodes[2].kernel: not a field of a flatten node"),
    ({"metadata__network__nodes__2__op": "add"}, f"{F}.nodes[2].inputs: a add node takes 2 input(s), got 1"),
    ({"layers__1__activation_bits": 3}, f"{F}.nodes[3]: layer 'fc': activation_bits 3 holds [-4, 3], its input carries [0, 4]"),
    ({"metadata__network__input": [3, 4, 4]},
     f"{F}.nodes[0].inputs: layer 'conv' takes [channels, height, width] [2, 4, 4], its input 'input' gives [3, 4, 4]"),
    ({"metadata__network__output": "pool"}, f"{F}.output: expected a layer node, got 'pool'"),
    ({"layers__0__name": "conv2"}, f"{F}.nodes[0].name: layer 'conv' of the graph is missing from layers"),
    ({"metadata__network__nodes__1__op": "maxpool"},
     f"{F}.nodes[1].op: expected one of \"layer\", \"sumpool\", \"flatten\", \"add\", got \"maxpool\""),
    ({"metadata__network__nodes": DELETE}, f"{F}: missing required field 'nodes'"),
    ({"layers__0__neuron": {"type": "relu", "bits": 2, "threshold": 2}},
     f"{F}.nodes[0]: layer 'conv': a relu neuron is only an A2OS2A attention key (feed-forward graphs take 'lif' or 'ternary')"),
]


@pytest.mark.parametrize("changes,message", FEEDFORWARD_INVALID, ids=[m[27:60] for _, m in FEEDFORWARD_INVALID])
def test_invalid_feedforward_graph_names_the_field(changes, message):
    with pytest.raises(ConfigError) as info:
        config_from_dict(feedforward(**changes), source="cfg.json")
    assert str(info.value) == message


def test_feedforward_graph_derives_shapes_and_ranges():
    graph = config_from_dict(feedforward(), source="cfg.json").graph
    assert graph.layer_names == ("conv", "fc") and graph.output == "fc"
    assert [(n.shape, n.value_range) for n in graph.nodes] == [((4, 4, 4), (0, 1)), ((4, 2, 2), (0, 4)),
                                                               ((16, 1, 1), (0, 4)), ((3, 1, 1), (0, 1))]
    assert [n.name for n in graph.consumers("conv")] == ["pool"]
