"""synth/tools.py: running the yowasp tools, one-line errors, kept logs."""

import sys
from pathlib import Path

import pytest

from spikehq.synth import tools
from spikehq.synth.tools import ToolError, ToolMissing, find_tool, run_tool


def test_missing_tool_is_one_line_naming_it():
    with pytest.raises(ToolMissing) as e:
        find_tool("yowasp-nextpnr-nonexistent")
    assert str(e.value).startswith("yowasp-nextpnr-nonexistent: not installed") and "\n" not in str(e.value)


def test_failing_tool_keeps_its_log(tmp_path):
    log = tmp_path / "fail.log"
    with pytest.raises(ToolError) as e:
        run_tool(Path(sys.executable).name, ["-c", "print('ERROR: bad input'); raise SystemExit(3)"],
                 cwd=tmp_path, log=log)
    assert "failed with exit code 3: ERROR: bad input" in str(e.value) and str(log) in str(e.value)
    assert "ERROR: bad input" in log.read_text()


def test_run_yosys_falls_back_to_classic_abc_on_the_abc9_assertion(tmp_path, monkeypatch):
    """yosys 0.70's abc9 reintegration assertion: the ECP5 script runs again with `abc -lut 4`
    between synth_ecp5's steps; any other failure is raised as is."""
    calls = []

    def fake_run_tool(name, args, *, cwd, log):
        calls.append(args[args.index("-p") + 1])
        if len(calls) == 1:
            (cwd / "y.log").write_text("3.46.14.7. Executing ABC_OPS_REINTEGRATE pass (reintegrate ABC mapped design).\n"
                                       "ERROR: Assert `wire' failed in passes/techmap/abc_ops_reintegrate.cc:596.\n")
            raise tools.ToolError(name, "failed with exit code 1", log)
        return 0

    monkeypatch.setattr(tools, "run_tool", fake_run_tool)
    args = ["-q", "-l", "y.log", "-p", "read_verilog -sv m.v; synth_ecp5 -top t; stat"]
    assert tools.run_yosys(args, cwd=tmp_path, log=tmp_path / "out") == tools.ABC9_FALLBACK
    assert calls[1] == ("read_verilog -sv m.v; synth_ecp5 -top t -run :map_luts; techmap -map "
                        "+/lattice/latches_map.v; abc -lut 4 -dress; clean; synth_ecp5 -top t -run map_cells:; stat")
    calls.clear()
    (tmp_path / "y.log").write_text("Executing ABC_OPS_REINTEGRATE pass.\nExecuting OPT pass.\nERROR: Assert `x' failed\n")
    monkeypatch.setattr(tools, "run_tool", lambda name, args, *, cwd, log: (_ for _ in ()).throw(
        tools.ToolError(name, "failed with exit code 1", log)))
    with pytest.raises(tools.ToolError):
        tools.run_yosys(args, cwd=tmp_path, log=tmp_path / "out")
