"""`make gen`: files, manifest, determinism, lint, fp32 handling and CLI errors."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from spikehq.golden.config import load_config, load_weights
from spikehq.rtl.gen import generate, main
from spikehq.rtl.lanes import apply_lanes
from spikehq.rtl.mac import PotMac, UniformMac
from spikehq.rtl.pe import SpikingPE, weight_rows
from spikehq.sim.runner import verilator_env

EXAMPLE = Path("configs/example_tiny.json")
WAIVERS = Path("rtl/lint_waivers.vlt")


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen") / "out"
    manifest = generate(EXAMPLE, out, quiet=True)
    return out, manifest


def test_writes_one_module_per_hardware_layer(generated):
    out, manifest = generated
    network = apply_lanes(load_config(EXAMPLE))
    assert [entry["name"] for entry in manifest["layers"]] == [layer.name for layer in network.layers]
    for layer, entry in zip(network.layers, manifest["layers"]):
        if layer.scheme == "fp32":
            assert entry["hardware"] is False and "host" in entry["reason"]
            assert not any(out.glob(f"*{layer.name}.v"))
            continue
        text = (out / entry["verilog"]).read_text()
        assert f"module {entry['module']}(" in text
        assert entry["parameters"]["lanes"] == layer.lanes
        ports = {p["name"]: p for p in entry["ports"]}
        assert {"clk", "rst", "i_spikes__valid", "i_spikes__ready", "i_spikes__payload",
                "o_spikes__valid", "o_spikes__ready", "o_spikes__payload"} <= set(ports)
        for port in ports.values():
            assert f"{'input' if port['direction'] == 'in' else 'output'} " in text
        assert sum(f["width"] for f in ports["i_spikes__payload"]["fields"].values()) == ports["i_spikes__payload"]["width"]


def test_weight_hex_matches_memory_rows(generated):
    out, manifest = generated
    network = apply_lanes(load_config(EXAMPLE))
    for layer in network.layers:
        if layer.scheme == "fp32":
            continue
        weights = load_weights(layer)
        lines = (out / f"{layer.name}.weights.hex").read_text().split()
        rows = weight_rows(layer, weights)
        assert len(lines) == len(rows) == layer.fan_in * layer.groups
        for line, row in zip(lines, rows):
            word = int(line, 16)
            assert [(word >> (l * layer.bits)) & (2 ** layer.bits - 1) for l in range(layer.lanes)] == row


def test_rerun_is_byte_identical(generated, tmp_path):
    out, _ = generated
    again = tmp_path / "again"
    generate(EXAMPLE, again, quiet=True)
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    second = {p.name: p.read_bytes() for p in again.iterdir()}
    assert first == second


def test_verilator_lint_clean(generated):
    out, manifest = generated
    env = {**verilator_env(), "HOME": str(Path.home())}
    for entry in manifest["layers"]:
        if entry["hardware"]:
            result = subprocess.run(["verilator", "--lint-only", "-Wall", str(WAIVERS), str(out / entry["verilog"])],
                                    env=env, capture_output=True, text=True)
            assert result.returncode == 0, result.stderr[-3000:]


def test_lint_without_waivers_is_not_clean(generated):
    """The waiver file is what makes lint pass: it is needed, and it is the only one."""
    out, manifest = generated
    entry = next(e for e in manifest["layers"] if e["hardware"])
    result = subprocess.run(["verilator", "--lint-only", "-Wall", str(out / entry["verilog"])],
                            env={**verilator_env(), "HOME": str(Path.home())}, capture_output=True, text=True)
    assert result.returncode != 0


def test_probe_port_only_on_request(tmp_path):
    layer = load_config(EXAMPLE).layers[1]
    assert "membrane_probe" not in SpikingPE(layer=layer, weights=load_weights(layer)).signature.members
    assert "membrane_probe" in SpikingPE(layer=layer, weights=load_weights(layer), probe=True).signature.members


def test_cli_bad_config_is_one_line_and_writes_nothing(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "spikehq-searched", "version": 1, "name": "x", "time_steps": 0, "layers": []}))
    out = tmp_path / "out"
    assert main(["--config", str(bad), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {bad}: time_steps: expected a value >= 1, got 0"
    assert not out.exists() and list(tmp_path.iterdir()) == [bad]


def test_cli_keeps_previous_output_on_failure(tmp_path, generated):
    out = tmp_path / "out"
    generate(EXAMPLE, out, quiet=True)
    before = sorted(p.name for p in out.iterdir())
    missing = tmp_path / "missing.json"
    assert main(["--config", str(missing), "--out", str(out), "--quiet"]) == 2
    assert sorted(p.name for p in out.iterdir()) == before


def test_cli_help_runs():
    result = subprocess.run([sys.executable, "-m", "spikehq.rtl.gen", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "--config" in result.stdout and "byte-identical" in result.stdout


@pytest.mark.parametrize("scheme,present,absent", [("pot", PotMac, UniformMac), ("uniform", UniformMac, PotMac)])
def test_pe_contains_only_the_mac_of_its_scheme(scheme, present, absent):
    layer = next(l for l in load_config(EXAMPLE).layers if l.scheme == scheme)
    module = SpikingPE(layer=layer, weights=load_weights(layer)).elaborate(platform=None)
    kinds = {type(sub) for sub, *_ in module._named_submodules.values()}
    assert present in kinds and absent not in kinds


def test_combinational_logic_runs_at_time_zero(generated):
    """amaranth #594: every ``always @*`` block of every module reads the module's time-zero
    trigger, which an ``initial #0`` kick sets in simulation only (not for synthesis, not for
    Verilator); the rest of the text is Amaranth's Verilog-2005, unchanged."""
    from amaranth.back import verilog
    from spikehq.rtl.verilog import TRIGGER, to_verilog
    out, manifest = generated
    for entry in manifest["layers"]:
        if entry["hardware"]:
            text = (out / entry["verilog"]).read_text()
            modules = text.count("\nmodule ")
            assert text.count(f"reg {TRIGGER}= 1'h0;") == modules == text.count(f"initial #0 {TRIGGER}= 1'h1;")
            assert text.count("always @*") == text.count(f"always @* begin\n    if ({TRIGGER}) begin end") > 0
            assert "`ifndef SYNTHESIS\n`ifndef VERILATOR\n" in text and "always_comb" not in text
    pe = SpikingPE(layer=load_config("configs/example_tiny.json").layers[0],
                   weights=load_weights(load_config("configs/example_tiny.json").layers[0]))
    plain, kicked = verilog.convert(pe, name="m", emit_src=False), to_verilog(pe, "m")
    assert len(kicked) > len(plain) and kicked.count("\n  assign ") == plain.count("\n  assign ")


def test_every_verilog_writer_is_to_verilog():
    """make gen, the cocotb runner, synthesis and the benchmarks all get the same Verilog."""
    root = Path(__file__).resolve().parents[1]
    calls = [f"{path.relative_to(root)}" for folder in ("rtl", "sim", "synth", "benchmarks")
             for path in sorted((root / folder).glob("*.py")) if "verilog.convert(" in path.read_text()]
    assert calls == ["rtl/verilog.py"]


def test_manifest_lists_spatial_pruning():
    """A spatially pruned layer's manifest entry names k, its count memory and the prune pass's
    cycles; an unpruned one has none of them."""
    import dataclasses
    from spikehq.rtl.gen import layer_manifest
    network = load_config(EXAMPLE)
    layer = network.layer("tokenizer")
    pruned = dataclasses.replace(layer, spatial_prune_k=3)
    pe = SpikingPE(layer=pruned, weights=load_weights(layer))
    entry = layer_manifest(network, pruned, pe)
    assert entry["parameters"]["spatial_prune_k"] == 3
    assert entry["memories"]["counts"] == {"depth": layer.out_height * layer.out_width,
                                           "word_bits": layer.out_channels.bit_length()}
    lo = pe.neuron_depth + SpikingPE.PRUNE_OVERHEAD_CYCLES
    assert entry["cycles"]["per_step_spatial_prune"] == [lo, lo + layer.out_channels]
    plain = layer_manifest(network, layer, SpikingPE(layer=layer, weights=load_weights(layer)))
    assert "spatial_prune_k" not in plain["parameters"] and "counts" not in plain["memories"]
    assert "per_step_spatial_prune" not in plain["cycles"]
