"""make gen WRAPPER=axis: the AXI4-Stream wrapper (rtl/axis.py) against the golden network with
cocotbext-axi on Verilator, and the FuseSoC core gen writes, checked by FuseSoC itself (core-info
and its Verilator lint target through edalize)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from spikehq.golden.network import load_network
from spikehq.rtl.axis import AxisNetwork, byte_width
from spikehq.rtl.gen import generate, main
from spikehq.rtl.verilog import to_verilog
from spikehq.sim.runner import run_verilog_test, verilator_env
from test_rtl_feedforward import write_network


@pytest.fixture(scope="module")
def network(tmp_path_factory):
    return write_network(tmp_path_factory.mktemp("ff"))


def test_tdata_is_whole_bytes(network):
    net = load_network(network)
    axis = AxisNetwork(config=net.config, weights=net.weights)
    assert len(axis.s_axis_tdata) == byte_width(axis.beat.size) and len(axis.s_axis_tdata) % 8 == 0
    assert len(axis.m_axis_tdata) == byte_width(axis.result.size) and len(axis.m_axis_tdata) % 8 == 0
    assert [name for name, _ in axis.beat] == ["y", "x", "c", "end"]


def test_gen_writes_wrapper_manifest_and_core(network, tmp_path):
    manifest = generate(network, tmp_path / "out", quiet=True, wrapper="axis")
    out = tmp_path / "out"
    assert manifest["wrapper"]["module"] == "spikehq_ff_axis"
    assert (out / "spikehq_ff_axis.v").read_text().count("module spikehq_ff_axis(") == 1
    assert manifest["wrapper"]["s_axis_tdata"]["fields"]["end"]["width"] == 1
    core = (out / "spikehq_ff.core").read_text()
    assert "toplevel: spikehq_ff_axis" in core and "- fc1.weights.hex" in core
    assert json.loads((out / "manifest.json").read_text())["fusesoc"] == "spikehq_ff.core"
    plain = generate(network, tmp_path / "plain", quiet=True)
    assert "wrapper" not in plain and "toplevel: spikehq_ff_top" in (tmp_path / "plain" / "spikehq_ff.core").read_text()


def test_wrapper_needs_a_graph(tmp_path, capsys):
    config = "configs/example_tiny.json"
    assert main(["--config", config, "--out", str(tmp_path / "o"), "--wrapper", "axis", "--quiet"]) == 2
    assert "--wrapper axis needs the network top" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def fusesoc(*args, cwd):
    env = {**os.environ, **verilator_env()}
    return subprocess.run([sys.executable, "-m", "fusesoc.main", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.verilator
def test_fusesoc_reads_the_core_and_lints_it(network, tmp_path):
    generate(network, tmp_path / "out", quiet=True, wrapper="axis")
    root = ["--cores-root", str(tmp_path / "out")]
    info = fusesoc(*root, "core-info", "spikehq:net:ff", cwd=tmp_path)
    assert info.returncode == 0, info.stderr
    assert "spikehq_ff.core" in info.stdout and "lint" in info.stdout
    lint = fusesoc(*root, "run", "--target", "lint", "spikehq:net:ff", cwd=tmp_path)
    assert lint.returncode == 0, lint.stdout[-2000:] + lint.stderr[-2000:]
    assert (tmp_path / "build" / "spikehq_net_ff_0.1.0" / "lint-verilator").is_dir()
    # a broken core is refused by FuseSoC (the check can fail)
    (tmp_path / "out" / "spikehq_ff.core").write_text((tmp_path / "out" / "spikehq_ff.core").read_text()
                                                     .replace("toplevel: spikehq_ff_axis", "toplevel: nothing_here"))
    assert fusesoc(*root, "run", "--target", "lint", "spikehq:net:ff", cwd=tmp_path).returncode != 0


@pytest.mark.verilator
def test_axis_wrapper_is_bit_exact_with_cocotbext_axi(network, stall_seed, tmp_path):
    net = load_network(network)
    seed = stall_seed
    text = to_verilog(AxisNetwork(config=net.config, weights=net.weights), "axis_dut")
    tests, failures = run_verilog_test(text, test_module="spikehq.sim.tb_axis", build_dir=tmp_path / "axis",
                                       toplevel="axis_dut",
                                       extra_env={"SPIKEHQ_NETWORK": str(network), "SPIKEHQ_SAMPLES": "0,1,2",
                                                  "SPIKEHQ_STALL_SEED": str(seed), "SPIKEHQ_STALL": "0.2"})
    assert (tests, failures) == (1, 0), f"stall seed {seed}: see {tmp_path / 'axis' / 'test.log'}"
