"""synth/tools.py: running the yowasp tools, one-line errors, kept logs."""

import sys
from pathlib import Path

import pytest

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
