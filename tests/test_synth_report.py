"""synth/report.py: report.md rendered from a report dict (presentation only)."""

from spikehq.synth.report import render_markdown


def _report() -> dict:
    layer = {"name": "proj", "scheme": "pot", "bits": 4, "activation_bits": 1, "lanes": 4, "pnr": None,
             "area": {"lut": 120, "lut_equiv": 150, "ff": 60, "dsp": 0, "bram": 2.0},
             "analytic": {"energy_per_inference_nj": 3.5}}
    return {"network": "tiny", "family": "Xilinx 7 Series (Artix-7)", "device": "XC7A35T-1CSG324C",
            "config": "configs/tiny.json", "config_sha256": "0123456789abcdef" * 4, "clock_target_mhz": 100.0,
            "lanes_policy": "balanced", "layers": [layer], "skipped": [{"name": "head", "reason": "scheme fp32"}],
            "total": {"area": dict(layer["area"]), "fmax_mhz": None, "utilization_pct": {"lut": 0.58, "ff": 0.14}},
            "top": {"module": None, "synthesized": False, "reason": "no metadata.network graph"}}


def test_synthesis_only_report():
    text = render_markdown(_report())
    lines = text.splitlines()
    assert lines[0] == "# Synthesis report: tiny on Xilinx 7 Series (Artix-7) XC7A35T-1CSG324C"
    assert "(sha256 0123456789ab), clock target 100 MHz, lanes policy `balanced`" in text
    assert "No place and route for this target: no Fmax." in text and "Power:" not in text
    assert "| proj | pot4 | 1 | 4 | 120 | 150 | 60 | 0 | 2.0 | — | — | — | 3.5 |" in lines
    assert "| **total** | | | | 120 | 150 | 60 | 0 | 2.0 | — | — | — | — |" in lines
    assert "Device utilization of the total: LUT 0.58 %, FF 0.14 %." in lines
    assert "Layer `head` has no hardware: scheme fp32." in lines
    assert "Network top: no metadata.network graph." in lines
    assert "## Place and route" not in text and "## Power (estimates)" not in text and text.endswith(".\n")


def test_network_top_section():
    top = {"module": "spikehq_tiny_top", "synthesized": True, "engines": 3, "fits": True, "over_capacity": [],
           "area": {"lut": 900, "carry": 0, "lut_equiv": 900, "ff": 300, "dsp": 1, "bram": 4, "lutram": 12},
           "utilization_pct": {"lut": 4.33, "ff": 0.72}, "yosys_wall_s": 12.5, "cached": True}
    text = render_markdown(dict(_report(), top=top))
    assert "| **network top** (one design) | | | | 900 | 900 | 300 | 1 | 4 | — | | | |" in text
    assert "## Network top" in text and "| **network top** | 900 | 0 | 900 | 300 | 1 | 4 | 12 |" in text
    assert "Device utilization of the top on XC7A35T-1CSG324C: LUT 4.33 %, FF 0.72 %; it fits the device" in text
    assert "yosys wall time of the run that produced it: 12.5 s (read from the cache now)." in text
    assert "Place and route" not in text and "Memory efficiency" not in text


def test_network_top_place_and_route_and_memory_sections():
    hops = [{"type": "clk-to-q", "delay_ns": 5.6, "from": "dut.b0_q.weights.0.0", "to": "dut.b0_q.weights.0.0"},
            {"type": "setup", "delay_ns": 0.4, "from": "dut.b0_q.x", "to": "dut.b0_q.currents.0.0"}]
    total = {"needed_bits": 100, "allocated_bits": 200, "efficiency": 0.5, "bram": 1, "lutram": 0, "ff_bits": 0}
    top = {"module": "spikehq_tiny_top", "synthesized": True, "engines": 3, "fits": True, "over_capacity": [],
           "area": {"lut": 900, "carry": 0, "lut_equiv": 900, "ff": 300, "dsp": 1, "bram": 1, "lutram": 0},
           "utilization_pct": {"lut": 4.33}, "yosys_wall_s": 12.5, "cached": False,
           "pnr": {"placed": True, "device": "LFE5U-85F", "fmax_mhz": 45.23, "constraint_mhz": 100.0,
                   "meets_constraint": False, "nextpnr_wall_s": 10.0, "utilization": {"DP16KD": {"used": 1, "available": 208}},
                   "critical_path": {"delay_ns": 6.0, "routing_ns": 0.0, "logic_levels": 0, "engines": ["b0_q"],
                                     "hops": hops}},
           "memories": {"engines": [dict(total, engine="b0_q")], "total": total}}
    text = render_markdown(dict(_report(), top=top))
    assert "**Fmax 45.2 MHz** (target 100 MHz, meets target: no)" in text and "DP16KD 1/208" in text
    assert "through `b0_q`; from `dut.b0_q.weights.0.0` to `dut.b0_q.currents.0.0`." in text
    assert "| b0_q | 100 | 200 | 50.0 % | 1 | 0 | 0 |" in text and "| **total** | 100 | 200 | 50.0 % |" in text
    not_placed = dict(top, pnr={"placed": False, "device": "LFE5U-25F", "reason": "does not fit the device by cell "
                                "counts: BRAM 120/56"})
    assert "**Place and route** on LFE5U-25F: not run, does not fit the device by cell counts: BRAM 120/56." in \
        render_markdown(dict(_report(), top=not_placed))
