"""synth/harness.py: the pin-limited wrapper of a module for place and route."""

import re

import pytest

from spikehq.synth.harness import HARNESS_TOP, harness_overhead_ffs, harness_verilog

PE_PORTS = [{"name": "clk", "direction": "in", "width": 1}, {"name": "rst", "direction": "in", "width": 1},
            {"name": "i_spikes__payload", "direction": "in", "width": 9},
            {"name": "i_spikes__valid", "direction": "in", "width": 1},
            {"name": "i_spikes__ready", "direction": "out", "width": 1},
            {"name": "o_spikes__payload", "direction": "out", "width": 11},
            {"name": "o_spikes__valid", "direction": "out", "width": 1},
            {"name": "o_spikes__ready", "direction": "in", "width": 1}]


def test_harness_wires_every_port_once():
    text = harness_verilog("spikehq_x_tok", PE_PORTS)
    assert text.startswith("// spikehq synthesis harness")
    assert f"module {HARNESS_TOP} (input wire clk, input wire rst, input wire sin, output reg sout);" in text
    assert "reg [10:0] shift_in;" in text                       # 9 + 1 + 1 input bits
    assert "wire [12:0] outs;" in text                          # 1 + 11 + 1 output bits
    conns = dict(re.findall(r"\.(\w+)\(([^)]*)\)", text))
    assert conns["i_spikes__payload"] == "shift_in[8:0]" and conns["i_spikes__valid"] == "shift_in[9:9]"
    assert conns["o_spikes__ready"] == "shift_in[10:10]"
    assert conns["i_spikes__ready"] == "outs[0:0]" and conns["o_spikes__payload"] == "outs[11:1]"
    assert conns["clk"] == "clk" and conns["rst"] == "rst"
    assert harness_overhead_ffs(PE_PORTS) == 11 + 13 + 1


def test_harness_of_a_combinational_module_has_no_clock_port():
    ports = [{"name": "a", "direction": "in", "width": 4}, {"name": "y", "direction": "out", "width": 5}]
    text = harness_verilog("comb", ports)
    assert ".clk(" not in text and ".rst(" not in text
    with pytest.raises(ValueError, match="no outputs"):
        harness_verilog("sink", ports[:1])
