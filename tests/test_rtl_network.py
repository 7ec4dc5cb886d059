"""Whole-network hardware: the generated top, the lanes policy, graph errors, and the end-to-end
runs on real digits test samples against the golden integer network (Verilator, and Icarus
Verilog with no X/Z on any output)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import warnings
from pathlib import Path

import pytest
import torch
from amaranth.hdl import UnusedElaboratable

from spikehq.golden.config import ConfigError, config_from_dict, load_config
from spikehq.golden.network import load_network
from spikehq.rtl.gen import generate, main
from spikehq.rtl.lanes import apply_lanes
from spikehq.rtl.network import SpikingNetwork, check_hardware
from spikehq.sim.runner import icarus_missing, run_network, verilator_env

SEARCHED = Path("configs/digits_searched/searched.json")
WAIVERS = Path("rtl/lint_waivers.vlt")
# CI-sized subset of the digits test set; `make e2e` runs all 360 in the C++ harness
E2E_SAMPLES = [0, 1, 2]
# the digits top on Icarus: about 155 k cycles in 70 s per sample (Icarus 11, 2-core machine)
ICARUS_SAMPLES = [0]


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen") / "digits"
    return out, generate(SEARCHED, out, quiet=True)


def test_gen_emits_the_network_top(generated):
    out, manifest = generated
    top = manifest["top"]
    text = (out / top["verilog"]).read_text()
    assert f"module {top['module']}(" in text
    ports = {p["name"] for p in top["ports"]}
    assert {"i_events__valid", "i_events__ready", "i_events__payload",
            "o_result__valid", "o_result__ready", "o_result__payload"} <= ports
    assert "o_trace" not in ports
    config = load_config(SEARCHED)
    assert top["engines"] == list(config.graph.layer_names)
    assert top["lanes"] == {layer.name: layer.lanes for layer in apply_lanes(config).layers}
    assert top["attention"]["lanes"] == apply_lanes(config).graph.attention.lanes == 2
    assert top["stream_fifo"] == 64 == config.graph.stream_fifo
    # weight ROM banks paired in block RAMs (so every digits regression runs shared ROMs)
    assert [[(p["engine"], p["bank"], p["offset"]) for p in rom["ports"]] for rom in top["shared_roms"]] == [
        [("rpe", 4, 0), ("tok2", 2, 512)], [("b0_q", 0, 0), ("b0_k", 0, 2048)], [("b0_v", 0, 0), ("b1_proj", 0, 2048)],
        [("b1_q", 0, 0), ("b1_k", 0, 1024)], [("b1_v", 0, 0), ("tok0", 0, 1024)]]
    for i, rom in enumerate(top["shared_roms"]):
        assert f"module \\{top['module']}.shared_rom{i} (" in text
    for entry in manifest["layers"]:                     # the per-layer modules use the same lanes
        assert entry["parameters"]["lanes"] == top["lanes"][entry["name"]]


def test_network_top_is_lint_clean(generated):
    out, manifest = generated
    result = subprocess.run(["verilator", "--lint-only", "-Wall", str(WAIVERS), str(out / manifest["top"]["verilog"])],
                            env={**verilator_env(), "HOME": str(Path.home())}, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]


def test_config_without_graph_gets_layers_only(tmp_path):
    manifest = generate("configs/example_tiny.json", tmp_path / "out", quiet=True)
    assert manifest["top"]["module"] is None and "layers only" in manifest["top"]["reason"]


def test_cli_lanes_error_is_one_line(tmp_path, capsys):
    assert main(["--config", str(SEARCHED), "--out", str(tmp_path / "out"), "--lanes", "b0_q=3", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: --lanes: b0_q=3 must divide its 64 output channels"
    assert not (tmp_path / "out").exists()


def test_check_hardware_refuses_fp32_ternary_pooling_and_no_graph():
    config = load_config(SEARCHED)
    assert check_hardware(config) is config.graph
    fp32 = dataclasses.replace(config, layers=tuple(
        dataclasses.replace(layer, scheme="fp32", bits=32) if layer.name == "b0_v" else layer for layer in config.layers))
    with pytest.raises(ConfigError, match=r"^configs/digits_searched/searched.json: layer 'b0_v': scheme fp32 has no "
                                          r"hardware; the network top needs every layer quantized \(docs/arithmetic.md §9\)$"):
        check_hardware(fp32)
    ternary = dataclasses.replace(config, layers=tuple(
        dataclasses.replace(layer, neuron=dataclasses.replace(layer.neuron, type="ternary"))
        if layer.name == "tok1" else layer for layer in config.layers))
    with pytest.raises(ConfigError, match=r"^configs/digits_searched/searched.json: layer 'tok1': 2×2 pooling in "
                                          r"hardware needs binary LIF spikes, got neuron type 'ternary'$"):
        check_hardware(ternary)
    with pytest.raises(ConfigError, match=r"^configs/example_tiny.json: metadata.network: missing \(the graph "
                                          r"written by spikehq.search.export\)$"):
        check_hardware(load_config("configs/example_tiny.json"))


@pytest.mark.verilator
def test_network_bit_exact_on_verilator(stall_seed, tmp_path):
    """Class, scores and every engine's spike count per step equal the golden model's."""
    results = tmp_path / "results.json"
    tests, failures = run_network(SEARCHED, E2E_SAMPLES, stall_seed=stall_seed, results=results)
    assert tests == 1 and failures == 0, "see build/sim/verilator/network_*/test_*.log"
    _check_results(results, E2E_SAMPLES)


@pytest.mark.icarus
@pytest.mark.skipif(icarus_missing() is not None, reason=str(icarus_missing()))
def test_network_bit_exact_on_icarus(stall_seed, tmp_path):
    """The same on the 4-state Icarus Verilog: every output 0/1 from reset on, results bit-exact."""
    results = tmp_path / "results.json"
    tests, failures = run_network(SEARCHED, ICARUS_SAMPLES, stall_seed=stall_seed, results=results, simulator="icarus")
    assert tests == 1 and failures == 0, "see build/sim/icarus/network_*/test_*.log"
    _check_results(results, ICARUS_SAMPLES)


@pytest.fixture(scope="module")
def small_network(tmp_path_factory):
    """A smaller exported Spikformer with every engine kind of the digits top (two tokenizer
    convs with pooling, rpe, two blocks of attention and MLP, head and readout), calibrated so
    its neurons fire, trained with SpQuant spatial pruning 0.35 (tok0, tok1 and rpe export
    k = ⌊0.35·H'·W'⌋: their PEs count, rank and gate positions every step; the unpruned PEs
    are in the digits and A2OS2A tops); about 20 k cycles per digits sample."""
    from spikehq.search.export import export_network
    from test_golden_network import calibrated_model
    model, _ = calibrated_model(3, spatial_sparsity=0.35)
    return export_network(model, tmp_path_factory.mktemp("small"), name="small")


def test_small_network_prunes_positions_on_its_samples(small_network):
    """The small top's spatial pruning acts on the two digits samples it runs: the golden rpe
    spikes differ from those of the same export with every spatial_prune_k set to 0."""
    from spikehq.golden.network import load_network
    from spikehq.search.data import load_dataset
    net = load_network(small_network)
    assert {l.name for l in net.config.layers if l.spatial_prune_k} == {"tok0", "tok1", "rpe"}
    _, test = load_dataset("digits", time_steps=net.config.time_steps)
    plain = dataclasses.replace(net.config, layers=tuple(dataclasses.replace(l, spatial_prune_k=0)
                                                         for l in net.config.layers))
    pruned = net.run(test.frames[:2], dump=True)[1]["rpe"]["spikes"]
    assert not torch.equal(pruned, type(net)(plain, net.weights).run(test.frames[:2], dump=True)[1]["rpe"]["spikes"])


@pytest.mark.parametrize("simulator", [pytest.param("verilator", marks=pytest.mark.verilator),
                                       pytest.param("icarus", marks=pytest.mark.icarus)])
def test_small_network_bit_exact_on_every_simulator(small_network, simulator, stall_seed, tmp_path):
    """The spatially pruned network top on both simulators (Icarus: no X or Z on any output
    from reset on), two samples one at a time and back to back."""
    if simulator == "icarus" and icarus_missing():
        pytest.skip(icarus_missing())
    results = tmp_path / "results.json"
    tests, failures = run_network(small_network, [0, 1], stall_seed=stall_seed, results=results, simulator=simulator)
    assert tests == 1 and failures == 0, f"see build/sim/{simulator}/network_*/test_*.log"
    _check_results(results, [0, 1])


@pytest.mark.verilator
def test_spquant_pruned_binary_membrane_network_bit_exact(stall_seed, tmp_path):
    """SpQuant in hardware: binary membranes everywhere but the head and attention, a lane group
    of tok0 and of each fc1 masked, so those layers and their readers are narrower (8 of 16 tok0
    channels, 16 of 24 fc1 ones); the network top equals the golden network on two samples."""
    from spikehq.search.export import export_network
    from test_golden_network import calibrated_model
    model, _ = calibrated_model(3, membrane="binary", channel_threshold=0.47, tokenizer_channels=(16, 16))
    for name, unit in model.units().items():
        if unit.gate is not None:
            prior = torch.ones(unit.gate.running_prior.shape)
            prior[:8] = 0.1
            unit.gate.running_prior.copy_(prior)
    searched = export_network(model, tmp_path / "pruned", name="pruned")
    raw = json.loads(searched.read_text())     # and no PE input FIFOs, one attention lane
    raw["metadata"]["network"]["stream_fifo"] = 0
    raw["metadata"]["network"]["attention"]["lanes"] = 1
    searched.write_text(json.dumps(raw))
    config = load_config(searched)
    assert config.graph.stream_fifo == 0 and config.graph.attention.lanes == 1
    assert config.layer("tok0").out_channels == 8 == config.layer("tok1").in_channels
    assert config.layer("b1_fc1").out_channels == 16 == config.layer("b1_fc2").in_channels
    assert config.layer("tok0").membrane == "binary"
    results = tmp_path / "results.json"
    tests, failures = run_network(searched, [0, 1], stall_seed=stall_seed, results=results)
    assert tests == 1 and failures == 0, "see build/sim/verilator/network_*/test_*.log"
    _check_results(results, [0, 1])


def test_stream_fifo_puts_a_fifo_before_every_pe(tmp_path):
    """``metadata.network.stream_fifo``: a FIFO of that depth in front of each PE but tok0 (the
    head's before its readout gate), none for 0; a negative depth is a one-line schema error."""
    raw = json.loads(SEARCHED.read_text())
    for layer in raw["layers"]:
        layer["weights"] = str((SEARCHED.parent / layer["weights"]).resolve())
    net = load_network(SEARCHED)
    for depth in (0, 16):
        raw["metadata"]["network"]["stream_fifo"] = depth
        config = config_from_dict(raw)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UnusedElaboratable)
            m = SpikingNetwork(config=apply_lanes(config), weights=net.weights).elaborate(None)
        for name in config.graph.layer_names[1:]:       # not tok0: the top's input keeps its reset sweep
            if depth:
                assert m.submodules[f"{name}_fifo"].depth == depth
            else:
                with pytest.raises(AttributeError, match="No submodule"):
                    m.submodules[f"{name}_fifo"]
        with pytest.raises(AttributeError, match="No submodule"):
            m.submodules["tok0_fifo"]
    raw["metadata"]["network"]["stream_fifo"] = -1
    with pytest.raises(ConfigError, match="stream_fifo"):
        config_from_dict(raw)


def test_share_roms_off_keeps_every_bank_in_its_pe():
    """``share_roms=False``: no pairs, no SharedROM; on, each paired PE reads its bank through
    its ``weight_bank<b>`` port and builds no memory for it."""
    net = load_network(SEARCHED)
    config = apply_lanes(net.config)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedElaboratable)
        off = SpikingNetwork(config=config, weights=net.weights, share_roms=False)
        assert off.rom_pairs == []
        m = off.elaborate(None)
        with pytest.raises(AttributeError, match="No submodule"):
            m.submodules["shared_rom0"]
        on = SpikingNetwork(config=config, weights=net.weights)
        m = on.elaborate(None)
    assert len(on.rom_pairs) == 5
    for i, pair in enumerate(on.rom_pairs):
        assert m.submodules[f"shared_rom{i}"].pair == pair
        for bank in (pair.first, pair.second):
            pe = m.submodules[bank.owner]
            assert pe.shared_banks == [bank.index] and f"weight_bank{bank.index}" in pe.signature.members
            assert pe.signature.members[f"weight_bank{bank.index}"].signature.members["data"].shape == bank.width


@pytest.fixture(scope="module")
def small_a2os2a_network(tmp_path_factory):
    """The small Spikformer with A2OS2A attention: 2-bit integer ReLU keys (relu PEs), ternary
    values, binary queries into the attention unit's A2OS2A mode."""
    from spikehq.search.export import export_network
    from test_golden_network import calibrated_model
    model, _ = calibrated_model(3, attention="a2os2a")
    return export_network(model, tmp_path_factory.mktemp("small_a2os2a"), name="small_a2os2a")


@pytest.mark.parametrize("simulator", [pytest.param("verilator", marks=pytest.mark.verilator),
                                       pytest.param("icarus", marks=pytest.mark.icarus)])
def test_small_a2os2a_network_bit_exact_on_every_simulator(small_a2os2a_network, simulator, stall_seed, tmp_path):
    """A2OS2A network top, two samples (Icarus: one) one at a time and back to back: class, every score and
    every engine's event count per step (the keys' non-zero values included) equal the golden model's."""
    if simulator == "icarus" and icarus_missing():
        pytest.skip(icarus_missing())
    config = load_config(small_a2os2a_network)
    assert config.graph.attention.variant == "a2os2a" and config.layer("b0_k").neuron.type == "relu"
    results = tmp_path / "results.json"
    samples = [0, 1] if simulator == "verilator" else [0]          # Icarus is the slow one
    tests, failures = run_network(small_a2os2a_network, samples, stall_seed=stall_seed, results=results,
                                  simulator=simulator)
    assert tests == 1 and failures == 0, f"see build/sim/{simulator}/network_*/test_*.log"
    _check_results(results, samples)


def _check_results(results: Path, samples: list[int]) -> None:
    doc = json.loads(results.read_text())
    assert doc["back_to_back"]["mismatching_samples"] == 0
    records = doc["samples"]
    assert [r["index"] for r in records] == samples
    assert all(r["scores_match"] and r["counts_match"] and r["rtl_label"] == r["golden_label"] for r in records)


def test_e2e_cli_errors_are_one_line(capsys):
    from spikehq.sim.e2e import main as e2e_main
    assert e2e_main(["--config", "configs/example_tiny.json", "--samples", "1", "--out", "build/e2e/never.json"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: configs/example_tiny.json: metadata.network: missing (the graph written by spikehq.search.export)"
    assert "\n" not in err
    for args, message in [(["--samples", "0"], "--samples: expected at least 1, got 0"),
                          (["--first", "355", "--samples", "10"], "the digits test set has 360 samples")]:
        with pytest.raises(SystemExit) as exit_info:
            e2e_main(args)
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
