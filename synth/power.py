"""Activity-based power estimate from synthesized resources and Verilator toggle counts.

Everything here is an **estimate**. Energy per clock cycle::

    E = E_clk · s_clk                                   (clock network, per cycle)
      + α · (LUT-equivalents + FFs) · E_toggle          (logic and its local routing)
      + DSPs · d_mac · E_dsp                             (d_mac: cycles whose MAC inputs change)
      + BRAMs · d_mem · E_bram                           (d_mem: cycles whose memory ports change)
    P = E · f_clk  (+ static power where a measured figure exists)

``α`` is the mean toggles per signal bit per cycle of the design, counted in a Verilator VCD
of seeded input events (``synth/activity.py``); ``d_mac``/``d_mem`` come from the same VCD.

Coefficients. The base figures are **measured** on an iCE40 UP5K (core rail, 1.219 V, Joulescope
JS110) by tinyvision.ai, published at https://github.com/tinyvision-ai-inc/ice40_power (README
table, rows quoted in ``COEFFICIENT_SOURCES``). ECP5 and Artix-7 figures are **scaled
estimates** from them (C·V² scaling by core voltage and process node, clock network by die
size); block RAM figures are **scaled estimates** from Horowitz, "Computing's energy
problem", ISSCC 2014 (8 KB SRAM, 64-bit read ≈ 10 pJ at 45 nm, 0.9 V — the same table the
search's cost model uses). Static power is reported only where it is measured (iCE40).
Expect ±2–5× against a vendor tool (Lattice Radiant/Diamond Power Calculator, AMD XPE) and
more against a board measurement; use the figures to compare designs on one target, not as
a power budget.
"""

from __future__ import annotations

import math

__all__ = ["COEFFICIENTS", "COEFFICIENT_SOURCES", "estimate_power", "derive_ice40"]

# tinyvision-ai-inc/ice40_power, README "Results" (core current in µA at 1.219 V)
_V_ICE40 = 1.219
_MEAS = {
    "blank": 85.6,                 # Blank design
    "ext12_32lc": 613.5,           # External 12 MHz + 28 bit counter (32 LC's)
    "ext12_228lc": 641.3,          # External 12 MHz + 28*8 bit counter (228 LC's)
    "halted_28lc": 92.1,           # External halted clock (0 kHz) + 24 bit counter (28 LC's)
    "hf12_28lc": 645.0,            # HFOSC (12 MHz) + 24 bit counter (28 LC's)
    "hf12_math_nodsp_208lc": 996.0,  # HFOSC (12 MHz) + Math (no DSP) + 24 bit counter (208 LC's)
    "hf12_math_dsp_72lc": 882.0,     # HFOSC (12 MHz) + Math (1 DSP) + 24 bit counter (72 LC's)
}


def derive_ice40() -> dict:
    """Derive the iCE40 coefficients from the measured rows (pJ per event, mW static)."""
    f = 12e6
    uj = lambda ua: ua * 1e-6 * _V_ICE40 / f * 1e12        # µA at 12 MHz → pJ per cycle
    clock = uj(_MEAS["ext12_32lc"] - _MEAS["halted_28lc"])
    per_lc_cycle = uj(_MEAS["ext12_228lc"] - _MEAS["ext12_32lc"]) / (228 - 32)
    counter_toggle_rate = sum(2.0 ** -k for k in range(28)) / 28   # toggles per bit per count
    toggle = per_lc_cycle / counter_toggle_rate
    math_lc = uj(_MEAS["hf12_math_nodsp_208lc"] - _MEAS["hf12_28lc"]) / (208 - 28)
    dsp = uj(_MEAS["hf12_math_dsp_72lc"] - _MEAS["hf12_28lc"]) - math_lc * (72 - 28)
    return {"clock_pj": clock, "toggle_pj": toggle, "dsp_pj": dsp,
            "static_mw": _MEAS["blank"] * _V_ICE40 * 1e-3}


def _horowitz_bram_pj(kbits: float, node_nm: float, vdd: float) -> float:
    """10 pJ per 64-bit read of an 8 KB SRAM at 45 nm/0.9 V; ∝ √size (Horowitz's 8 KB → 32 KB → 1 MB
    figures, 10 → 20 → 100 pJ, follow √size); C·V² scaling to the node and voltage."""
    return 10.0 * math.sqrt(kbits / 64.0) * (node_nm / 45.0) * (vdd / 0.9) ** 2


def _scaled(base: dict, node_nm: float, vdd: float, clock_scale: float) -> dict:
    k = (node_nm / 40.0) * (vdd / _V_ICE40) ** 2
    return {"clock_pj": base["clock_pj"] * k * clock_scale, "toggle_pj": base["toggle_pj"] * k,
            "dsp_pj": base["dsp_pj"] * k, "static_mw": None}


_ICE40 = derive_ice40()
COEFFICIENTS = {
    # iCE40 UP5K: 40 nm, 1.2 V core; EBR 4 kbit
    ("ice40", "up5k"): {**_ICE40, "bram_pj": _horowitz_bram_pj(4, 40, 1.2)},
    # ECP5: 40 nm, 1.1 V core; DP16KD 18 kbit; clock network grows with √(die LUTs / 5280)
    ("ecp5", "25k"): {**_scaled(_ICE40, 40, 1.1, math.sqrt(24288 / 5280)), "bram_pj": _horowitz_bram_pj(18, 40, 1.1)},
    ("ecp5", "85k"): {**_scaled(_ICE40, 40, 1.1, math.sqrt(83640 / 5280)), "bram_pj": _horowitz_bram_pj(18, 40, 1.1)},
    # Artix-7: 28 nm, 1.0 V core; RAMB36 36 kbit
    ("xilinx", "xc7a35t"): {**_scaled(_ICE40, 28, 1.0, math.sqrt(20800 / 5280)), "bram_pj": _horowitz_bram_pj(36, 28, 1.0)},
    ("xilinx", "xc7a100t"): {**_scaled(_ICE40, 28, 1.0, math.sqrt(63400 / 5280)), "bram_pj": _horowitz_bram_pj(36, 28, 1.0)},
}

COEFFICIENT_SOURCES = {
    "clock_pj": "iCE40: measured, (613.5 − 92.1) µA × 1.219 V / 12 MHz (ext. 12 MHz clock + 32 LC counter vs halted clock) "
                "[tinyvision-ai-inc/ice40_power]; ECP5/Artix-7: scaled estimate, C·V² by node and core voltage × √(device LUTs / 5280)",
    "toggle_pj": "iCE40: measured, (641.3 − 613.5) µA × 1.219 V / 12 MHz / 196 counter LCs, divided by a binary counter's "
                 "2/28 toggles per bit per cycle [tinyvision-ai-inc/ice40_power]; ECP5/Artix-7: scaled estimate (C·V²)",
    "dsp_pj": "iCE40: measured, 8×8 multiply in one SB_MAC16 vs in 180 LCs at 12 MHz, LC share removed "
              "[tinyvision-ai-inc/ice40_power]; ECP5 MULT18X18D / Artix-7 DSP48E1: scaled estimate (C·V²)",
    "bram_pj": "estimate: Horowitz ISSCC 2014, 8 KB SRAM 64-bit read 10 pJ at 45 nm/0.9 V, ∝ √(block size), C·V² to node",
    "static_mw": "iCE40: measured, blank design 85.6 µA × 1.219 V [tinyvision-ai-inc/ice40_power]; "
                 "ECP5/Artix-7: not estimated (use the vendor power calculator)",
}


def estimate_power(target: str, device: str, area: dict, activity: dict, clock_mhz: float) -> dict:
    """Power breakdown (mW) and energy per cycle (pJ) of one module at ``clock_mhz``."""
    c = COEFFICIENTS[(target, device)]
    alpha = activity["toggle_rate"]
    logic = alpha * (area["lut_equiv"] + area["ff"]) * c["toggle_pj"]
    dsp = area["dsp"] * activity["mac_active_fraction"] * c["dsp_pj"]
    bram = area["bram"] * activity["memory_active_fraction"] * c["bram_pj"]
    parts = {"clock": c["clock_pj"], "logic": logic, "dsp": dsp, "bram": bram}
    energy = sum(parts.values())
    dynamic_mw = energy * 1e-12 * clock_mhz * 1e6 * 1e3
    out = {
        "clock_mhz": clock_mhz, "energy_per_cycle_pj": round(energy, 3),
        "breakdown_pj": {k: round(v, 3) for k, v in parts.items()},
        "dynamic_mw": round(dynamic_mw, 4),
        "static_mw": None if c["static_mw"] is None else round(c["static_mw"], 4),
        "toggle_rate": round(alpha, 5),
        "coefficients": {k: (None if v is None else round(v, 4)) for k, v in c.items()},
        "estimate": True,
    }
    cycles = activity.get("cycles_per_sample")
    if cycles:
        out["energy_per_sample_nj"] = round(energy * cycles * 1e-3, 3)
        out["energy_per_sample_excl_clock_nj"] = round((energy - parts["clock"]) * cycles * 1e-3, 3)
    return out
