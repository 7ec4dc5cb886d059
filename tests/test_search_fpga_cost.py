"""The search's FPGA cost model (search/fpga_cost.py): model file validation, the memory
geometry against the generated PE's Verilog, monotonicity of the committed ECP5 model, and the
search's per-candidate costs."""

import json

import pytest

from spikehq.golden.config import load_config, load_weights
from spikehq.rtl.lanes import apply_lanes
from spikehq.rtl.pe import SpikingPE
from spikehq.rtl.verilog import to_verilog
from spikehq.search import fpga_cost
from spikehq.search.cost import CANDIDATES, LayerShape
from spikehq.synth.fit_cost import memory_table
from spikehq.synth.memories import verilog_memories


@pytest.fixture(scope="module")
def ecp5():
    return fpga_cost.load_model("ecp5")


def test_missing_model_names_the_command(tmp_path):
    with pytest.raises(fpga_cost.FpgaCostError) as e:
        fpga_cost.load_model("ice40", tmp_path / "none.json")
    msg = str(e.value)
    assert len(msg.splitlines()) == 1 and "make fit-fpga-cost TARGET=ice40" in msg and "none.json" in msg


@pytest.mark.parametrize("mutate,field", [
    (lambda m: m.update(format="x"), "format"), (lambda m: m["coefficients"].update(ff=[1.0]), "coefficients.ff"),
    (lambda m: m["memory"].pop("bram_aspects"), "memory.bram_aspects"), (lambda m: m.update(features=["a"]), "features"),
    (lambda m: m["device"].update(bram=0), "device"), (lambda m: m.update(energy={}), "energy")])
def test_bad_model_one_line(tmp_path, ecp5, mutate, field):
    model = json.loads(json.dumps(ecp5))
    mutate(model)
    path = tmp_path / "m.json"
    path.write_text(json.dumps(model))
    with pytest.raises(fpga_cost.FpgaCostError) as e:
        fpga_cost.load_model("ecp5", path)
    assert len(str(e.value).splitlines()) == 1 and field in str(e.value)
    path.write_text("{")
    with pytest.raises(fpga_cost.FpgaCostError, match="not valid JSON"):
        fpga_cost.load_model("ecp5", path)
    with pytest.raises(fpga_cost.FpgaCostError, match="target: expected 'ice40'"):
        fpga_cost.load_model("ice40", fpga_cost.model_path("ecp5"))


@pytest.mark.parametrize("lanes", ["balanced", "config"])
def test_geometry_matches_the_generated_pe(lanes):
    """pe_memories lists exactly the memories (depth × word width) of the PE's Verilog; the
    weight memory as its banks. Fails when the PE's memories change (rerun make fit-fpga-cost)."""
    config = apply_lanes(load_config("configs/digits_searched/searched.json"), lanes)
    model = {"memory": memory_table("ecp5")}
    for layer in config.layers[:6]:
        weights = load_weights(layer)
        widths = layer.widths(weights)
        found = sorted((m["depth"], m["width"]) for m in verilog_memories(
            to_verilog(SpikingPE(layer=layer, weights=weights), "pe"), "pe"))
        expected = []
        for mem in fpga_cost.pe_memories(layer, widths):
            if mem.banked:
                n = min(fpga_cost.bank_words(mem.width, model["memory"]["bank_aspects"]), mem.depth)
                expected += [(max(min(n, mem.depth - b * n), 2), mem.width) for b in range(-(-mem.depth // n))]
            else:
                expected.append((mem.depth, mem.width))
        assert found == sorted(expected), layer.name


def test_bram_from_geometry():
    model = {"memory": memory_table("ecp5", rom_logic_max_bits=2048)}
    cells = lambda depth, width, **kw: fpga_cost.memory_cells(fpga_cost.Memory("m", depth, width, **kw), model)
    assert cells(512, 36, rom=False)["bram"] == 1 and cells(513, 36, rom=False)["bram"] == 2
    assert cells(256, 112, rom=False)["bram"] == 4            # 512×36 ×4 (1K×18 would take 7)
    assert cells(2048, 9, rom=False)["bram"] == 1 and cells(64, 8, rom=False) == dict(
        bram=0, bram_bits=0, lutram=8, logic_bits=0, bank_mux_bits=0)   # ≤ 64 words: LUT RAM, 16×4 cells
    assert cells(64, 8, rom=True)["logic_bits"] == 512
    banked = cells(576, 32, rom=True, banked=True)             # one 512-word bank + a 2048-bit bank left to logic
    assert banked["bram"] == 1 and banked["logic_bits"] == 64 * 32 and banked["bank_mux_bits"] == 32
    assert cells(1024, 2, rom=True)["logic_bits"] == 2048 and cells(1152, 2, rom=True)["bram"] == 1
    assert cells(1024, 2, rom=False)["bram"] == 1              # RAMs are never left to logic


def _shape(cin=64, cout=64):
    return LayerShape("b0_q", "linear", cin, cout, height=16, group="attention")


def test_committed_model_matches_yosys_on_its_sweep(ecp5):
    """The committed model's memory check and fit quality (measured when it was fitted)."""
    assert ecp5["fit"]["memory_check"]["mismatches"] == 0 and ecp5["fit"]["points"] >= 100
    assert ecp5["fit"]["errors"]["lut_equiv"]["in_sample_mean_abs_pct"] < 5
    assert ecp5["memory"]["rom_logic_max_bits"] == 2048


def test_monotone_in_lanes_and_bits(ecp5):
    for cand in CANDIDATES[1:]:
        for act in (1, 4):
            luts = [fpga_cost.candidate_cost(_shape(), cand, ecp5, activation_bits=act, lanes=L, time_steps=4,
                                             input_rate=0.1)["lut_equiv"] for L in (1, 2, 4, 8)]
            assert luts == sorted(luts) and luts[0] < luts[-1], (cand, act, luts)
    for scheme in ("pot", "uni"):
        for L in (1, 2, 4, 8):
            b2, b4 = (fpga_cost.candidate_cost(_shape(256, 64), f"{scheme}{b}", ecp5, activation_bits=1, lanes=L,
                                               time_steps=4, input_rate=0.1) for b in (2, 4))
            assert b4["bram_bits"] >= b2["bram_bits"] and b4["area"] > b2["area"]


def test_candidate_costs_and_fp32(ecp5):
    costs = {c: fpga_cost.candidate_cost(_shape(), c, ecp5, activation_bits=1, lanes=2, time_steps=4, input_rate=0.2)
             for c in CANDIDATES}
    uni4 = costs["uni4"]
    assert costs["fp32"]["lut_equiv"] == pytest.approx(fpga_cost.FP32_FACTOR * uni4["lut_equiv"])
    assert costs["fp32"]["area"] > uni4["area"]
    assert uni4["cycles"] == pytest.approx(4 * (0.2 * 64 * 16 * 32 + 16 * 32))     # T·(r·inputs·k²·G + H'W'G)
    assert uni4["energy_pj"] == pytest.approx(uni4["energy_per_cycle_pj"] * uni4["cycles"])
    dev = ecp5["device"]
    assert uni4["area"] == pytest.approx(uni4["lut_equiv"] + uni4["bram"] * dev["lut"] / dev["bram"]
                                         + uni4["dsp"] * dev["lut"] / dev["dsp"])


def test_search_lanes_follow_make_gen():
    """The search's lanes are make gen's balanced lanes for the same layers and input events."""
    config = load_config("configs/digits_searched/searched.json")
    hw = [l for l in config.layers if l.is_hardware]
    shapes = [LayerShape(l.name, l.kind, l.in_channels, l.out_channels, l.kernel_size, l.padding, l.height, l.width)
              for l in hw]
    T = config.time_steps
    rates = {l.name: l.input_events / (l.num_inputs * T) for l in hw}
    lanes = fpga_cost.search_lanes(shapes, rates, {l.name: l.activation_bits for l in hw}, T)
    expected = {l.name: l.lanes for l in apply_lanes(config, "balanced").layers if l.is_hardware}
    assert lanes == expected
