"""The FPGA cost fit (synth/fit_cost.py) on a fake synthesis result set: no yosys, no Verilator."""

import numpy as np
import pytest

from spikehq.golden.config import load_config, load_weights
from spikehq.search import fpga_cost
from spikehq.synth.fit_cost import GRIDS, fit_model, memory_table, sweep_points, write_point


def test_grid_covers_every_candidate_and_lanes():
    points = sweep_points("ecp5")
    assert len(points) == len(set(p.name for p in points)) == 4 * 4 * (4 + 2 * 2)    # binary: 4 shapes, multi-bit: 2
    assert {(p.scheme, p.bits) for p in points} == {("pot", 2), ("pot", 4), ("uniform", 2), ("uniform", 4)}
    assert {p.lanes for p in points} == set(GRIDS["ecp5"]["lanes"])


def test_fit_recovers_a_linear_truth(tmp_path):
    """Fake areas that are an exact linear function of the features: the fit reproduces them,
    reports ~0 % error, and the memory check flags the point whose fake BRAM disagrees."""
    rng = np.random.default_rng(4)
    points = sweep_points("ice40")[::3]
    base = {"memory": memory_table("ice40")}
    truth = {res: rng.uniform(0.5, 3.0, len(fpga_cost.FEATURE_NAMES)) for res in ("lut_equiv", "ff", "dsp")}
    rows = []
    for i, p in enumerate(points):
        config = write_point(p, tmp_path / p.name)
        layer = load_config(config).layers[0]
        vec, cells = fpga_cost.features(layer, layer.widths(load_weights(layer)), base)
        area = {res: float(np.dot(c, vec)) for res, c in truth.items()}
        area["bram"] = cells["bram"] + (1 if i == 0 else 0)
        rows.append({"name": p.name, "scheme": p.scheme, "bits": p.bits, "activation_bits": p.activation_bits,
                     "lanes": p.lanes, "shape": list(p.shape), "config": str(config), "area": area,
                     "activity": {"toggle_rate": 0.2, "mac_active_fraction": 0.5, "memory_active_fraction": 0.1}})
    model = fit_model(rows, "ice40")
    assert model["fit"]["errors"]["lut_equiv"]["in_sample_mean_abs_pct"] < 0.01
    assert model["fit"]["memory_check"]["mismatches"] == 1
    assert model["fit"]["memory_check"]["examples"][0]["name"] == points[0].name
    assert model["energy"]["activity"]["a1"]["toggle_rate"] == pytest.approx(0.2)
    layer = load_config(rows[5]["config"]).layers[0]
    pred = fpga_cost.predict(layer, layer.widths(load_weights(layer)), model)
    assert pred["lut_equiv"] == pytest.approx(rows[5]["area"]["lut_equiv"], rel=1e-4)
    assert pred["ff"] == pytest.approx(rows[5]["area"]["ff"], rel=1e-4)


def test_fit_needs_activity(tmp_path):
    p = sweep_points("ice40")[0]
    config = write_point(p, tmp_path / p.name)
    row = {"name": p.name, "scheme": p.scheme, "bits": p.bits, "activation_bits": p.activation_bits, "lanes": p.lanes,
           "shape": list(p.shape), "config": str(config), "area": {"lut_equiv": 1, "ff": 1, "dsp": 0, "bram": 0}}
    with pytest.raises(ValueError, match="activity"):
        fit_model([row], "ice40")
