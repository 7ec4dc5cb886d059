"""synth/power.py: the activity-based power estimate and the sources of its coefficients."""

import pytest

from spikehq.synth import power


def test_ice40_coefficients_follow_from_the_quoted_measurements():
    c = power.derive_ice40()
    assert c["clock_pj"] == pytest.approx((613.5 - 92.1) * 1e-6 * 1.219 / 12e6 * 1e12)
    assert c["static_mw"] == pytest.approx(85.6 * 1.219e-3)
    assert 0.15 < c["toggle_pj"] < 0.25 and 10 < c["dsp_pj"] < 20


def test_power_estimate_adds_up():
    area = {"lut_equiv": 100, "ff": 50, "dsp": 2, "bram": 3}
    act = {"toggle_rate": 0.1, "mac_active_fraction": 0.5, "memory_active_fraction": 0.25, "cycles_per_sample": 1000}
    c = power.COEFFICIENTS[("ecp5", "25k")]
    p = power.estimate_power("ecp5", "25k", area, act, 50.0)
    expected = c["clock_pj"] + 0.1 * 150 * c["toggle_pj"] + 2 * 0.5 * c["dsp_pj"] + 3 * 0.25 * c["bram_pj"]
    assert p["energy_per_cycle_pj"] == pytest.approx(expected, abs=1e-3)
    assert p["dynamic_mw"] == pytest.approx(expected * 50e6 * 1e-9, abs=1e-4)
    assert p["energy_per_sample_nj"] == pytest.approx(expected * 1000 * 1e-3, abs=1e-2)
    assert p["static_mw"] is None and p["estimate"] is True
    more = power.estimate_power("ecp5", "25k", dict(area, lut_equiv=200), act, 50.0)
    assert more["energy_per_cycle_pj"] > p["energy_per_cycle_pj"]
    assert power.estimate_power("ice40", "up5k", area, act, 50.0)["static_mw"] == pytest.approx(0.1043, abs=1e-4)


def test_every_coefficient_has_a_source():
    for key in ("clock_pj", "toggle_pj", "dsp_pj", "bram_pj", "static_mw"):
        assert key in power.COEFFICIENT_SOURCES
    for coeffs in power.COEFFICIENTS.values():
        assert set(coeffs) == set(power.COEFFICIENT_SOURCES)
