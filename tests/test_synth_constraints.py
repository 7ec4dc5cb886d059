"""synth/constraints.py: pcf / lpf / xdc for the harness, every port placed, the clock target carried."""

import pytest

from spikehq.synth.constraints import HARNESS_PORTS, clock_of, constrained_ports, render_constraints
from spikehq.synth.targets import TARGETS


@pytest.mark.parametrize("target, pins", [
    ("ice40", {"clk": "35", "rst": "10", "sin": "4", "sout": "11"}),
    ("ecp5", {"clk": "G2", "rst": "R1", "sin": "B11", "sout": "B2"}),
    ("xilinx", {"clk": "E3", "rst": "D9", "sin": "G13", "sout": "H5"}),
])
@pytest.mark.parametrize("clock_mhz", [12.0, 48.5, 100.0, 250.0])
def test_constraints_place_every_harness_port_and_carry_the_clock(target, pins, clock_mhz):
    tgt = TARGETS[target]
    text = render_constraints(tgt, clock_mhz)
    assert constrained_ports(tgt.constraint_kind, text) == pins
    assert set(pins) == set(HARNESS_PORTS)
    assert clock_of(tgt.constraint_kind, text) == pytest.approx(clock_mhz, rel=1e-4)
    assert "{" not in text.replace("{{", "").replace("}}", "") or tgt.constraint_kind == "xdc"


def test_xdc_has_a_real_create_clock():
    text = render_constraints(TARGETS["xilinx"], 125.0)
    assert "create_clock -name clk -period 8.000 [get_ports clk]" in text
    assert "set_property -dict { PACKAGE_PIN E3 IOSTANDARD LVCMOS33 } [get_ports clk]" in text


@pytest.mark.parametrize("bad", [0, -5, float("nan"), 5000, "100"])
def test_constraints_reject_bad_clock(bad):
    with pytest.raises(ValueError, match="Clock target must be a frequency in MHz"):
        render_constraints(TARGETS["ecp5"], bad)


def test_missing_template_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="ecp5_cabga381.lpf.in"):
        render_constraints(TARGETS["ecp5"], 100.0, directory=tmp_path)
