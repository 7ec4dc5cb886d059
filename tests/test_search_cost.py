"""Cost model figures (search/cost.py): paper eq. 7–9, Table 1, storage of the paper model."""

import pytest

from spikehq.search import cost
from spikehq.search.model import paper_layers
from spikehq.golden.config import config_from_dict


def test_paper_fp32_storage():
    for classes, mb in ((11, 10.21), (101, 10.30)):
        c = cost.network_cost(paper_layers(classes), "fp32", 16)
        assert round(c["storage_mb"], 2) == mb
        assert c["avg_bits"] == 32
    assert cost.network_cost(paper_layers(11), "fp32", 16)["params"] == 2_553_152


def test_paper_structure_and_groups():
    layers = paper_layers(11)
    names = [l.name for l in layers]
    assert names[:5] == ["tok0", "tok1", "tok2", "tok3", "rpe"] and names[-1] == "head" and len(names) == 18
    c = cost.network_cost(layers, "uni4", 16)
    assert c["storage_mb"] == pytest.approx(10.212608 / 8)
    assert sum(g["storage_mb"] for g in c["groups"].values()) == pytest.approx(c["storage_mb"])
    assert sum(g["energy_mj"] for g in c["groups"].values()) == pytest.approx(c["energy_mj"])
    assert c["groups"]["attention"]["params"] == 2 * 4 * 256 * 256
    assert c["groups"]["mlp"]["params"] == 2 * 2 * 256 * 1024


def test_op_counts():
    conv = cost.LayerShape("c", "conv2d", 3, 8, kernel_size=3, padding=1, height=10, width=12)
    assert cost.layer_ops(conv) == 10 * 12 * 9 * 3 * 8
    conv_valid = cost.LayerShape("c", "conv2d", 3, 8, kernel_size=3, padding=0, height=10, width=12)
    assert cost.layer_ops(conv_valid) == 8 * 10 * 9 * 3 * 8
    lin = cost.LayerShape("l", "linear", 64, 32, height=16)
    assert cost.layer_ops(lin) == 16 * 64 * 32
    assert cost.storage_bits(lin, "pot2") == 2 * 64 * 32 and cost.storage_bits(lin, "fp32") == 32 * 64 * 32


def test_energy_per_op_and_per_bit():
    assert cost.op_energy_pj("fp32") == pytest.approx(3.7 + 1.1)
    assert cost.op_energy_pj("uni4") == pytest.approx(0.2 * 4 / 8 + 0.03)
    assert cost.op_energy_pj("uni2") == pytest.approx(0.2 * 2 / 8 + 0.03)
    assert cost.op_energy_pj("pot4") == pytest.approx(0.024 + 0.03)
    assert cost.op_energy_pj("pot2") == pytest.approx(0.03)
    assert cost.dram_energy_per_bit_pj("fp32") == pytest.approx(650 / 32)
    assert cost.dram_energy_per_bit_pj("uni2") == pytest.approx(163 / 8)
    lin = cost.LayerShape("l", "linear", 10, 20, height=3)
    e = cost.layer_energy_pj(lin, "uni4", time_steps=5)
    assert e == pytest.approx(5 * 3 * 200 * (0.1 + 0.03) + 4 * 200 * 163 / 8)
    order = [cost.layer_energy_pj(lin, c, 5) for c in ("fp32", "uni4", "pot4", "uni2", "pot2")]
    assert order == sorted(order, reverse=True)


def test_candidates_and_errors():
    assert [cost.candidate_scheme(c) for c in cost.CANDIDATES] == [
        ("fp32", 32), ("pot", 2), ("pot", 4), ("uniform", 2), ("uniform", 4)]
    assert cost.candidate_name("pot", 4) == "pot4"
    with pytest.raises(ValueError, match="Candidate must be one of"):
        cost.candidate_scheme("int8")


def test_mixed_choices_and_shapes_from_config():
    raw = {"format": "spikehq-searched", "version": 1, "name": "n", "time_steps": 2, "layers": [
        {"name": "a", "kind": "conv2d", "in_channels": 2, "out_channels": 4, "kernel_size": 3, "height": 8,
         "width": 8, "scheme": "pot", "bits": 2, "neuron": {"type": "lif", "threshold": 1}, "group": "tokenizer"},
        {"name": "b", "kind": "linear", "in_features": 4, "out_features": 3, "tokens": 64, "scheme": "uniform",
         "bits": 4, "neuron": {"type": "lif", "threshold": 1}, "group": "head"}]}
    shapes = cost.shapes_from_config(config_from_dict(raw))
    c = cost.network_cost(shapes, {"a": "pot2", "b": "uni4"}, 2)
    assert c["params"] == 72 + 12
    assert c["avg_bits"] == pytest.approx((72 * 2 + 12 * 4) / 84)
    assert c["groups"]["head"]["params"] == 12 and c["ops"] == 64 * 72 + 64 * 12


def test_paper_convention_sops_per_spike_macs_for_multibit():
    lin = cost.LayerShape("l", "linear", 10, 20, height=3)
    dense = 5 * 3 * 200
    spikes = cost.Activity(input_rate=0.25, multibit=False)
    multi = cost.Activity(input_rate=0.25, multibit=True)
    storage = 4 * 200 * 163 / 8
    assert cost.layer_energy_pj(lin, "uni4", 5, spikes) == pytest.approx(dense * 0.25 * 0.03 + storage)
    assert cost.layer_energy_pj(lin, "uni4", 5, multi) == pytest.approx(dense * (0.1 + 0.03) + storage)
    assert cost.layer_energy_pj(lin, "fp32", 5, spikes) == pytest.approx(dense * 0.25 * 1.1 + 32 * 200 * 650 / 32)
    assert cost.layer_energy_pj(lin, "uni4", 5, multi) == cost.layer_energy_pj(lin, "uni4", 5)   # = dense
    c = cost.network_cost([lin], "fp32", 5, {"l": spikes})
    assert c["sops"] == dense * 0.25 and c["macs"] == 0 and c["convention"] == "paper"
    assert cost.network_cost([lin], "fp32", 5)["macs"] == dense


def test_layer_activity_and_rates_by_role():
    layers = paper_layers(11)
    bits = {l.name: (2 if l.name.split("_")[-1] in ("q", "k", "v", "fc1") or l.name == "head" else 1) for l in layers}
    rates = cost.rates_by_role({"tok0": 0.2, "tok1": 0.1, "tok2": 0.3, "rpe": 0.05, "b0_q": 0.4, "b0_k": 0.4,
                                "b0_v": 0.4, "b0_proj": 0.15, "b0_fc1": 0.4, "b0_fc2": 0.12, "b1_proj": 0.25,
                                "head": 0.5}, layers)
    assert rates["tok3"] == pytest.approx(0.2) and rates["b1_proj"] == pytest.approx(0.2) and rates["b1_fc2"] == 0.12
    act = cost.layer_activity(layers, rates, bits)
    assert act["tok0"].multibit and not act["tok1"].multibit and act["b1_q"].multibit and not act["b0_fc2"].multibit
    with pytest.raises(ValueError, match="'head'.*no measured rate"):
        cost.rates_by_role({"tok0": 0.1}, layers[-1:])
    with pytest.raises(ValueError, match="'tok0'.*in \\[0, 1\\]"):
        cost.layer_activity(layers[:1], {"tok0": 1.5}, bits)
    # at rate 0 only the dense MAC layers and DRAM remain; rate 1 is the bound of the convention
    e = lambda r: cost.network_cost(layers, "fp32", 16, cost.layer_activity(layers, {n: r for n in rates}, bits))
    assert e(0)["energy_mj"] < e(0.2)["energy_mj"] < e(1)["energy_mj"] < cost.network_cost(layers, "fp32", 16)["energy_mj"]


def test_spquant_memory_eq28_and_flops_eq30_by_hand():
    LayerShape, SpQuantLayer = cost.LayerShape, cost.SpQuantLayer
    conv = LayerShape(name="c", kind="conv2d", in_channels=2, out_channels=4, kernel_size=3, padding=1, height=4, width=4)
    fc = LayerShape(name="f", kind="linear", in_channels=8, out_channels=3, height=2)
    layers = [SpQuantLayer(shape=conv, weight_bits=4, membrane_bits=2, spatial_sparsity=0.25),
              SpQuantLayer(shape=fc, weight_bits=2, membrane_bits=11, spike_bits=2)]
    mem = cost.spquant_memory_bits(layers)
    # N_w: 4·2·9 = 72 and 3·8 = 24; N_f: 4·16 = 64 and 3·2 = 6
    assert mem == {"weights": 4 * 72 + 2 * 24, "membranes": 2 * 64 + 11 * 6, "spikes": 1 * 64 + 2 * 6,
                   "total": 336 + 194 + 76}
    # eq. 30: 2·C·W·H·k² + T·C·W·H·(1 − S_p), T = 4
    assert cost.spquant_flops(layers, 4) == (2 * 4 * 16 * 9 + 4 * 4 * 16 * 0.75) + (2 * 3 * 2 + 4 * 3 * 2)
