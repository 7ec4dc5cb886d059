"""Constraint files (pcf / lpf / xdc) for the synthesis harness, from the templates in ``constraints/``.

The harness (``synth/harness.py``) has four ports, ``clk``, ``rst``, ``sin``, ``sout``, placed on
real pins of a common board of each target; the clock target is a parameter.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from .targets import Target

__all__ = ["CONSTRAINTS_DIR", "HARNESS_PORTS", "render_constraints", "constrained_ports", "clock_of"]

CONSTRAINTS_DIR = Path(__file__).resolve().parent.parent / "constraints"
HARNESS_PORTS = ("clk", "rst", "sin", "sout")


def _check_clock(clock_mhz: float) -> float:
    if not isinstance(clock_mhz, (int, float)) or not math.isfinite(clock_mhz) or not 0 < clock_mhz <= 1000:
        raise ValueError(f"Clock target must be a frequency in MHz between 0 and 1000, not {clock_mhz!r}")
    return float(clock_mhz)


def render_constraints(target: Target, clock_mhz: float, *, directory: Path | None = None) -> str:
    """Constraint text for ``target`` at ``clock_mhz``."""
    clock_mhz = _check_clock(clock_mhz)
    template = (directory or CONSTRAINTS_DIR) / target.constraint_template
    if not template.is_file():
        raise FileNotFoundError(f"constraint template not found: {template}")
    text = template.read_text()
    return text.format(clock_mhz=f"{clock_mhz:g}", period_ns=f"{1000.0 / clock_mhz:.3f}")


_PORT_PATTERNS = {
    "pcf": re.compile(r"^\s*set_io\s+(?:-\S+\s+)*(\S+)\s+(\S+)", re.M),
    "lpf": re.compile(r'^\s*LOCATE\s+COMP\s+"([^"]+)"\s+SITE\s+"([^"]+)"', re.M),
    "xdc": re.compile(r"PACKAGE_PIN\s+(\S+).*\[get_ports\s+(\S+?)\]", re.M),
}


def constrained_ports(kind: str, text: str) -> dict[str, str]:
    """Port → pin of a constraint file (used by the tests and to check the harness fits)."""
    pairs = _PORT_PATTERNS[kind].findall(text)
    if kind == "xdc":
        pairs = [(port, pin) for pin, port in pairs]
    return dict(pairs)


def clock_of(kind: str, text: str) -> float | None:
    """Clock target in MHz written in a constraint file."""
    if kind == "pcf":
        m = re.search(r"^\s*set_frequency\s+clk\s+([0-9.]+)", text, re.M)
        return float(m.group(1)) if m else None
    if kind == "lpf":
        m = re.search(r'^\s*FREQUENCY\s+PORT\s+"clk"\s+([0-9.]+)\s*MHZ', text, re.M | re.I)
        return float(m.group(1)) if m else None
    m = re.search(r"create_clock\s.*-period\s+([0-9.]+)", text)
    return 1000.0 / float(m.group(1)) if m else None
