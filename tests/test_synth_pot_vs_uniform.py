"""benchmarks/pot_vs_uniform.py and benchmarks/pot_width.py (the PoT-vs-uniform experiments of
docs/synthesis.md, outside the package): their configs, the committed docs/pot_vs_uniform.*
rendered from its JSON and supporting the docs, the plot, and the width experiment's explicit
datapath override. No synthesis runs here (a cold comparison takes 18 minutes)."""

import importlib
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


@pytest.fixture(scope="module")
def bench():
    """The two benchmark scripts as modules (they import each other as scripts do: by file name)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        yield importlib.import_module("pot_vs_uniform"), importlib.import_module("pot_width")
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))


def _comparison():
    return json.loads((DOCS / "pot_vs_uniform.json").read_text())


@pytest.mark.parametrize("scheme, bits, act", [("pot", 4, 8), ("uniform", 2, 1)])
def test_comparison_configs_are_valid_searched_json(bench, tmp_path, scheme, bits, act):
    from spikehq.golden.config import load_config, load_weights
    cmp, _ = bench
    path = cmp.write_case_config(tmp_path, scheme, bits, act, seed=3)
    layer = load_config(path).layers[0]
    weights = load_weights(layer)
    assert (layer.scheme, layer.bits, layer.activation_bits, layer.lanes) == (scheme, bits, act, cmp.LANES)
    assert weights.codes.shape == (cmp.OUT_FEATURES, cmp.IN_FEATURES, 1, 1)
    assert len(set(weights.codes.reshape(-1).tolist())) > 2          # seeded random codes, not constant
    again = cmp.write_case_config(tmp_path / "again", scheme, bits, act, seed=3)
    assert again.read_text() == path.read_text()                      # deterministic


def test_committed_comparison_table_is_rendered_from_its_json(bench):
    cmp, _ = bench
    assert cmp.render_table(_comparison(), "python benchmarks/pot_vs_uniform.py --out docs") == \
        (DOCS / "pot_vs_uniform.md").read_text()


def test_committed_comparison_covers_the_grid_and_supports_the_docs(bench):
    cmp, _ = bench
    pts = _comparison()["points"]
    assert len(pts) == len(cmp.SCHEMES) * len(cmp.BITS) * len(cmp.ACTIVATIONS) * 2
    for act in (4, 8):   # docs/synthesis.md: PoT beats a LUT multiplier at multi-bit activations
        for bits in cmp.BITS:
            pot, uni = cmp.find_point(pts, "pot", bits, act, False), cmp.find_point(pts, "uniform", bits, act, False)
            for unit in ("mac", "pe"):
                assert pot[unit]["lut_equiv"] < uni[unit]["lut_equiv"] and pot[unit]["dsp"] == uni[unit]["dsp"] == 0
                assert cmp.design_mw(pot[unit]["power"]) < cmp.design_mw(uni[unit]["power"])
            assert cmp.find_point(pts, "uniform", bits, act, True)["pe"]["dsp"] == 8     # one multiplier per lane
    for p in pts:        # every activity figure comes from the same kind of trace: no memory words counted
        assert 0.2 < p["activity"]["toggle_rate"] < 0.4, p


def test_comparison_plot_renders(bench, tmp_path):
    cmp, _ = bench
    cmp.plot(_comparison(), tmp_path / "cmp.png")
    assert (tmp_path / "cmp.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [f.name for f in tmp_path.iterdir()] == ["cmp.png"]       # written atomically, nothing left beside


def test_width_experiment_rows_and_explicit_override(bench, tmp_path, monkeypatch):
    """Every MAC at both schemes' accumulator widths; the PoT PE as generated and with the uniform
    weight bound (``layer.widths(weights, weight_bound=8)`` passed to SpikingPE): its current
    width drops to the uniform PE's, the MACs' widths. Synthesis is stubbed out."""
    _, width = bench
    built = []
    monkeypatch.setattr(width, "area", lambda module, name, work: built.append((name, module)) or
                        {k: 0 for k in width.KEYS})
    rows = width.run(tmp_path)
    assert len(rows) == 12 and [n for n, _ in built].count("spikehq_width_pe") == 4
    pes = [m for n, m in built if n == "spikehq_width_pe"]
    assert [(pe.layer.activation_bits, pe.widths.current_width) for pe in pes] == [(4, 17), (4, 14), (8, 21), (8, 18)]
    assert pes[1].widths.weight_max_abs == 8 and pes[0].widths.weight_max_abs == 64
    assert "as generated: current 17" in rows[8][0] and "uniform widths (area only): current 14" in rows[9][0]


def test_benchmark_command_lines(bench, capsys):
    cmp, width = bench
    for module in (cmp, width):
        with pytest.raises(SystemExit) as e:
            module.main(["--help"])
        assert e.value.code == 0
    assert "benchmarks/pot_vs_uniform.py" in capsys.readouterr().out
