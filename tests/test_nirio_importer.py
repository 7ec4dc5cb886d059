"""spikehq import-nir on hand-built NIR graphs: the mapping to the contract (leak shift, gain,
threshold, bias, activation bits, graph), one-line refusals naming node and field, and nothing
written on a refusal. The real exporters (snnTorch, Norse) are in test_search_frameworks.py."""

from __future__ import annotations

import json

import nir
import numpy as np
import pytest

from spikehq.golden.codes import decode
from spikehq.golden.config import load_weights
from spikehq.golden.network import load_network
from spikehq.nirio.cli import main
from spikehq.nirio.importer import ImportOptions, NirImportError, import_nir, quantize

SHAPE = (4, 8, 8)


def conv_net(seed: int = 0, **changes) -> nir.NIRGraph:
    """input [2, 8, 8] → conv 3×3 → LIF → sum pool 2 → flatten → affine → LIF → output;
    ``changes`` replaces nodes by name."""
    rng = np.random.default_rng(seed)
    nodes = {
        "input": nir.Input(np.array([2, 8, 8])),
        "conv": nir.Conv2d(input_shape=(8, 8), weight=rng.normal(size=(4, 2, 3, 3)), stride=1, padding=1,
                           dilation=1, groups=1, bias=np.zeros(4)),
        "lif1": nir.LIF(tau=np.full(SHAPE, 2e-4), r=np.full(SHAPE, 2.0), v_leak=np.zeros(SHAPE),
                        v_threshold=np.ones(SHAPE)),
        "pool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
        "flat": nir.Flatten(input_type={"input": np.array([4, 4, 4])}, start_dim=0),
        "fc": nir.Affine(weight=rng.normal(size=(10, 64)), bias=rng.normal(size=10) * 0.1),
        "lif2": nir.IF(r=np.full(10, 1.0), v_threshold=np.full(10, 1.5)),
        "output": nir.Output(np.array([10])),
    }
    nodes.update(changes)
    edges = [("input", "conv"), ("conv", "lif1"), ("lif1", "pool"), ("pool", "flat"), ("flat", "fc"),
             ("fc", "lif2"), ("lif2", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def test_quantize_matches_the_contract_codes():
    w = np.array([-1.0, -0.26, 0.0, 0.1, 0.49, 1.0])
    codes, scale = quantize(w, "uniform", 4)
    assert scale == pytest.approx(1 / 7)
    assert decode("uniform", 4, codes).tolist() == [-7, -2, 0, 1, 3, 7]
    codes, scale = quantize(w, "pot", 4)
    assert scale == 2.0 ** -6                       # α = 1 = s_w·2^6
    assert decode("pot", 4, codes).tolist() == [-64, -16, 0, 8, 32, 64]


def test_conv_net_maps_to_the_contract(tmp_path):
    config = import_nir(conv_net(), tmp_path / "out", ImportOptions(time_steps=4, scheme="uniform-4",
                                                                    layer_schemes={"fc": "pot-4"}))
    conv, fc = config.layer("conv"), config.layer("fc")
    assert (conv.kind, conv.padding, conv.scheme, conv.bits, conv.activation_bits) == ("conv2d", 1, "uniform", 4, 1)
    assert (fc.kind, fc.in_channels, fc.scheme, fc.activation_bits) == ("linear", 64, "pot", 4)   # pooled sums 0…4
    assert conv.neuron.leak_shift == 1 and fc.neuron.leak_shift == 0 and conv.neuron.reset == "hard"
    # gain r·dt/τ = 2·0.5 = 1, so v_th / s_w = 1 / s_w and θ = floor(1 / s_w) + 1
    w_conv = load_weights(conv)
    assert (w_conv.threshold == int(np.floor(1 / conv.weight_scale)) + 1).all()
    assert [(n.name, n.op) for n in config.graph.nodes] == [("conv", "layer"), ("pool", "sumpool"),
                                                            ("flat", "flatten"), ("fc", "layer")]
    w_fc = load_weights(fc)
    bias = conv_net().nodes["fc"].bias
    assert w_fc.bias.tolist() == np.round(bias / fc.weight_scale).astype(int).tolist()
    assert (w_fc.threshold == int(np.floor(1.5 / fc.weight_scale)) + 1).all()
    frames = np.random.default_rng(1).integers(0, 2, size=(3, 4, 2, 8, 8))
    import torch
    scores, _ = load_network(tmp_path / "out" / "searched.json").run(torch.from_numpy(frames))
    assert scores.shape == (3, 10)


def test_avgpool_scale_folds_into_the_next_layer(tmp_path):
    avg = nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0]))
    a = import_nir(conv_net(), tmp_path / "sum")
    b = import_nir(conv_net(pool=avg), tmp_path / "avg")
    t_sum, t_avg = load_weights(a.layer("fc")).threshold, load_weights(b.layer("fc")).threshold
    # v > v_th with inputs / 4  ⇔  4·v > 4·v_th: the threshold in integer units grows by 4
    assert np.allclose(t_avg - 1, 4 * (t_sum - 1), atol=4)


def test_residual_edges_become_adds(tmp_path):
    rng = np.random.default_rng(2)
    nodes = {"input": nir.Input(np.array([8])),
             "fc1": nir.Linear(weight=rng.normal(size=(8, 8))), "l1": nir.IF(r=np.ones(8), v_threshold=np.ones(8)),
             "fc2": nir.Linear(weight=rng.normal(size=(8, 8))), "l2": nir.IF(r=np.ones(8), v_threshold=np.ones(8)),
             "output": nir.Output(np.array([8]))}
    edges = [("input", "fc1"), ("fc1", "l1"), ("l1", "fc2"), ("input", "fc2"), ("fc2", "l2"), ("l2", "output")]
    config = import_nir(nir.NIRGraph(nodes=nodes, edges=edges, type_check=False), tmp_path / "out")
    ops = [(n.op, n.inputs) for n in config.graph.nodes]
    assert ops == [("layer", ("input",)), ("add", ("fc1", "input")), ("layer", ("fc2_add",))]
    assert config.layer("fc2").activation_bits == 3          # 0…2


SHAPE10 = (10,)
REFUSED = [
    ({"conv": nir.Conv2d(input_shape=(8, 8), weight=np.ones((4, 2, 3, 3)), stride=2, padding=1, dilation=1,
                         groups=1, bias=np.zeros(4))}, "node 'conv'.stride: must be 1"),
    ({"conv": nir.Conv2d(input_shape=(8, 8), weight=np.ones((4, 2, 3, 3)), stride=1, padding=1, dilation=1,
                         groups=2, bias=np.zeros(4))}, "node 'conv'.groups: must be 1, got 2"),
    ({"lif1": nir.LIF(tau=np.full(SHAPE, 3e-4), r=np.ones(SHAPE), v_leak=np.zeros(SHAPE),
                      v_threshold=np.ones(SHAPE))}, "node 'lif1'.tau: the leak 1 - dt/tau = 0.666667 is not a power of two"),
    ({"lif1": nir.LIF(tau=np.full(SHAPE, 2e-4), r=np.ones(SHAPE), v_leak=np.zeros(SHAPE),
                      v_threshold=np.ones(SHAPE), v_reset=np.full(SHAPE, 0.5))}, "node 'lif1'.v_reset: the hardware resets to 0"),
    ({"lif2": nir.CubaLIF(tau_syn=np.full(10, 2e-4), tau_mem=np.full(10, 2e-4), r=np.ones(10), v_leak=np.zeros(10),
                          v_threshold=np.ones(10))}, "node 'lif2'.tau_syn: a synaptic current filter has no hardware"),
    ({"lif2": nir.LI(tau=np.full(10, 2e-4), r=np.ones(10), v_leak=np.zeros(10))},
     "node 'lif2': NIR type LI has no hardware"),
    ({"lif2": nir.IF(r=np.ones(10), v_threshold=np.full(10, -1.0))}, "node 'lif2'.v_threshold: must be positive"),
    ({"lif1": nir.LIF(tau=np.full(SHAPE, 2e-4), r=np.ones(SHAPE), v_leak=np.zeros(SHAPE),
                      v_threshold=np.arange(256.0).reshape(SHAPE))}, "node 'lif1'.v_threshold: differs between pixels"),
    ({"pool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([1, 1]), padding=np.array([0, 0]))},
     "node 'pool'.stride: must equal the kernel size 2"),
    ({"flat": nir.Flatten(input_type={"input": np.array([4, 4, 4])}, start_dim=2)}, "node 'flat'.start_dim"),
    ({"lif2": nir.IF(r=np.full(10, -1.0), v_threshold=np.ones(10))}, "node 'lif2'.r: the input gain must be positive"),
]


@pytest.mark.parametrize("changes,message", REFUSED, ids=[m[5:40] for _, m in REFUSED])
def test_refusals_name_node_and_field_and_write_nothing(tmp_path, changes, message):
    out = tmp_path / "out"
    with pytest.raises(NirImportError) as info:
        import_nir(conv_net(**changes), out)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_round_leak_rounds_to_the_nearest_shift(tmp_path):
    lif = nir.LIF(tau=np.full(SHAPE, 3e-4), r=np.ones(SHAPE), v_leak=np.zeros(SHAPE), v_threshold=np.ones(SHAPE))
    config = import_nir(conv_net(lif1=lif), tmp_path / "out", ImportOptions(round_leak=True))
    assert config.layer("conv").neuron.leak_shift == 1      # 2/3 → 1/2


def test_cli_writes_and_refuses(tmp_path, capsys):
    model = tmp_path / "net.nir"
    nir.write(model, conv_net())
    assert main([str(model), "--out", str(tmp_path / "out"), "--name", "tiny", "--scheme", "pot-2"]) == 0
    doc = json.loads((tmp_path / "out" / "searched.json").read_text())
    assert doc["name"] == "tiny" and {l["scheme"] for l in doc["layers"]} == {"pot"}
    assert doc["metadata"]["nir"]["layers"]["fc"] == {"synapse": "fc", "neuron": "lif2"}
    assert main([str(tmp_path / "missing.nir"), "--out", str(tmp_path / "o2")]) == 2
    assert "missing.nir: file not found" in capsys.readouterr().err
    assert main([str(model), "--out", str(tmp_path / "o3"), "--scheme", "int8"]) == 2
    assert "scheme: expected uniform-2, uniform-4, pot-2 or pot-4, got 'int8'" in capsys.readouterr().err
    assert not (tmp_path / "o2").exists() and not (tmp_path / "o3").exists()


def test_layer_scheme_must_name_a_layer_and_input_must_exist(tmp_path):
    with pytest.raises(NirImportError, match="layer scheme 'pool': no such synapse node or layer"):
        import_nir(conv_net(), tmp_path / "a", ImportOptions(layer_schemes={"pool": "pot-4"}))
    graph = conv_net()
    graph.nodes.pop("input")
    graph.edges = [e for e in graph.edges if e[0] != "input"]
    with pytest.raises(NirImportError, match="node 'conv': has no input edge"):
        import_nir(graph, tmp_path / "b")
    assert list(tmp_path.iterdir()) == []
