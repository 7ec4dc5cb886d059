"""synth/targets.py: devices of each target and the grouping of cells into resources."""

import pytest

from spikehq.synth.targets import TARGETS, get_target, resource_summary


def test_unknown_cells_are_listed_not_dropped():
    area = resource_summary(TARGETS["xilinx"], {"LUT6": 10, "RAMB18E1": 3, "MYSTERY": 2, "FDRE": 4})
    assert (area["lut"], area["bram"], area["ff"]) == (10, 1.5, 4)
    assert area["unknown_cells"] == {"MYSTERY": 2}


def test_targets_and_devices():
    tgt, dev = get_target("ecp5", "85k")
    assert "--85k" in dev.pnr_args and dev.package == "CABGA381"
    assert get_target("ice40")[1].part.startswith("iCE40UP5K")
    assert get_target("xilinx")[0].pnr_tool is None
    with pytest.raises(ValueError, match="Target must be one of"):
        get_target("gowin")
    with pytest.raises(ValueError, match="Device for target ecp5 must be one of 25k, 85k, not '45k'"):
        get_target("ecp5", "45k")
