"""Run the reset testbench (``sim/tb_reset.py``) on the whole-network core under Verilator.

The model is the one :func:`sim.runner.run_network` builds (same Verilog, same build
directory ``build/sim/network_<hash>``), so either run reuses the other's build.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from cocotb_tools.runner import get_results, get_runner

from .runner import NETWORK_TOPLEVEL, _build, _locked, network_verilog, verilator_env

__all__ = ["run_network_reset"]


def run_network_reset(config_path: str | Path, samples: list[int], *, seed: int, stall: float = 0.2,
                      lanes: str = "balanced", build_root: Path = Path("build/sim")) -> tuple[int, int]:
    """Build the network core (once per distinct Verilog) and run ``sim/tb_reset.py``: digits
    test sample ``samples[0]`` whole, ``samples[1]`` cut by ``rst`` at a cycle drawn from
    ``seed``, the rest after it; return ``(tests, failures)``."""
    os.environ.update(verilator_env())
    text = network_verilog(config_path, lanes=lanes)
    build_dir = (build_root / f"network_{hashlib.sha256(text.encode()).hexdigest()[:16]}").resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    source = build_dir / f"{NETWORK_TOPLEVEL}.v"
    if not source.exists() or source.read_text() != text:
        source.write_text(text)
    runner = get_runner("verilator")
    with _locked(build_dir / ".build.lock"):
        _build(runner, source, build_dir, build_root.resolve(), False, toplevel=NETWORK_TOPLEVEL)
    env = {"SPIKEHQ_NETWORK": str(Path(config_path).resolve()), "SPIKEHQ_SAMPLES": ",".join(map(str, samples)),
           "SPIKEHQ_STALL_SEED": str(seed), "SPIKEHQ_STALL": str(stall), "SPIKEHQ_LANES": lanes}
    outcome = runner.test(test_module="spikehq.sim.tb_reset", hdl_toplevel=NETWORK_TOPLEVEL, build_dir=build_dir,
                          extra_env=env, log_file=build_dir / f"reset_{seed}.log",
                          results_xml=str(build_dir / f"reset_results_{seed}.xml"))
    return get_results(outcome)
